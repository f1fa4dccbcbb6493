//! SQL for planning: scans, items, proposed milestones, suggestions and their history. Nothing
//! else touches these tables.

use super::*;
use sqlx::{Any, AnyConnection, Executor};

fn parse<T: std::str::FromStr>(s: &str, or: T) -> T {
    s.parse().unwrap_or(or)
}

// ---- scans ----

#[derive(sqlx::FromRow)]
struct ScanRow {
    id: i64,
    project_id: i64,
    status: String,
    started_by: String,
    started_at: String,
    finished_at: Option<String>,
    files: i64,
    files_read: i64,
    items: i64,
    added: i64,
    edited: i64,
    done: i64,
    skipped: String,
    skipped_count: i64,
    error: Option<String>,
}

impl From<ScanRow> for ScanRun {
    fn from(r: ScanRow) -> Self {
        ScanRun {
            id: r.id,
            project_id: r.project_id,
            status: parse(&r.status, ScanStatus::Failed),
            started_by: r.started_by,
            started_at: r.started_at,
            finished_at: r.finished_at,
            files: r.files,
            files_read: r.files_read,
            items: r.items,
            added: r.added,
            edited: r.edited,
            done: r.done,
            skipped: serde_json::from_str(&r.skipped).unwrap_or_default(),
            skipped_count: r.skipped_count,
            error: r.error,
        }
    }
}

const SCAN_COLS: &str = "id, project_id, status, started_by, started_at, finished_at, files, files_read, items, added, edited, done, skipped, skipped_count, error";

/// Starts a scan row (`running`). A second running scan of the project violates the unique
/// index `plan_scans_one_running` (the caller answers 409).
pub async fn insert_scan(
    conn: &mut AnyConnection,
    project_id: i64,
    actor: &str,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO plan_scans (project_id, status, started_by, started_at)
         VALUES ($1, 'running', $2, $3) RETURNING id",
    )
    .bind(project_id)
    .bind(actor)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Scans still `running` that started before `before` died with their process: failed.
pub async fn fail_stale_scans(
    conn: &mut AnyConnection,
    project_id: i64,
    before: &str,
    now: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE plan_scans SET status = 'failed', finished_at = $1,
                error = 'interrupted (the server stopped during the scan)'
         WHERE project_id = $2 AND status = 'running' AND started_at < $3",
    )
    .bind(now)
    .bind(project_id)
    .bind(before)
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

pub async fn running_scan<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM plan_scans WHERE project_id = $1 AND status = 'running'")
        .bind(project_id)
        .fetch_optional(ex)
        .await
}

pub async fn finish_scan(conn: &mut AnyConnection, s: &ScanRun) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE plan_scans SET status = $1, finished_at = $2, files = $3, files_read = $4,
                items = $5, added = $6, edited = $7, done = $8, skipped = $9, skipped_count = $10,
                error = $11
         WHERE id = $12",
    )
    .bind(s.status.as_str())
    .bind(s.finished_at.as_deref())
    .bind(s.files)
    .bind(s.files_read)
    .bind(s.items)
    .bind(s.added)
    .bind(s.edited)
    .bind(s.done)
    .bind(serde_json::to_string(&s.skipped).unwrap_or_else(|_| "[]".into()))
    .bind(s.skipped_count)
    .bind(s.error.as_deref())
    .bind(s.id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_scan<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<ScanRun>, sqlx::Error> {
    let row: Option<ScanRow> =
        sqlx::query_as(&format!("SELECT {SCAN_COLS} FROM plan_scans WHERE id = $1"))
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(Into::into))
}

/// The latest scan of each project (or of one).
pub async fn latest_scans<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: Option<i64>,
) -> Result<Vec<ScanRun>, sqlx::Error> {
    let rows: Vec<ScanRow> = sqlx::query_as(&format!(
        "SELECT {SCAN_COLS} FROM plan_scans s
         WHERE id = (SELECT MAX(id) FROM plan_scans t WHERE t.project_id = s.project_id)
           AND ($1 IS NULL OR project_id = $1)
         ORDER BY project_id"
    ))
    .bind(project_id)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

// ---- items ----

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: i64,
    project_id: i64,
    kind: String,
    path: Option<String>,
    line: Option<i64>,
    text: String,
    heading: Option<String>,
    fingerprint: String,
    source_id: Option<i64>,
    weight: i64,
    status: String,
    author: Option<String>,
    authored_at: Option<String>,
    feature_id: Option<i64>,
    first_seen_at: String,
    last_seen_at: String,
    done_at: Option<String>,
}

impl From<ItemRow> for PlanItem {
    fn from(r: ItemRow) -> Self {
        PlanItem {
            id: r.id,
            project_id: r.project_id,
            kind: parse(&r.kind, Source::Todo),
            path: r.path,
            line: r.line,
            text: r.text,
            heading: r.heading,
            fingerprint: r.fingerprint,
            source_id: r.source_id,
            weight: r.weight,
            status: parse(&r.status, ItemStatus::Open),
            author: r.author,
            authored_at: r.authored_at,
            feature_id: r.feature_id,
            first_seen_at: r.first_seen_at,
            last_seen_at: r.last_seen_at,
            done_at: r.done_at,
        }
    }
}

const ITEM_COLS: &str = "id, project_id, kind, path, line, text, heading, fingerprint, source_id, weight, status, author, authored_at, feature_id, first_seen_at, last_seen_at, done_at";

/// An item as found now, to store.
pub struct Found<'a> {
    pub kind: Source,
    pub path: Option<&'a str>,
    pub line: Option<i64>,
    pub text: &'a str,
    pub heading: Option<&'a str>,
    pub fingerprint: &'a str,
    pub source_id: Option<i64>,
    pub weight: i64,
}

/// Stores a new item, or reopens the done one with the same fingerprint (a note that came
/// back). Returns its id.
pub async fn upsert_item(
    conn: &mut AnyConnection,
    project_id: i64,
    f: &Found<'_>,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO plan_items (project_id, kind, path, line, text, heading, fingerprint, source_id,
                                 weight, status, first_seen_at, last_seen_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $10, $10)
         ON CONFLICT (project_id, fingerprint) DO UPDATE SET
             kind = excluded.kind, path = excluded.path, line = excluded.line, text = excluded.text,
             heading = excluded.heading, source_id = excluded.source_id, weight = excluded.weight,
             status = 'open', done_at = NULL, last_seen_at = excluded.last_seen_at,
             updated_at = excluded.updated_at
         RETURNING id",
    )
    .bind(project_id)
    .bind(f.kind.as_str())
    .bind(f.path)
    .bind(f.line)
    .bind(f.text)
    .bind(f.heading)
    .bind(f.fingerprint)
    .bind(f.source_id)
    .bind(f.weight)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// An item found again (maybe moved or edited): its new place, text and fingerprint. A done
/// item that already holds the new fingerprint (the same note, closed earlier) gives way.
pub async fn update_item(
    conn: &mut AnyConnection,
    id: i64,
    project_id: i64,
    f: &Found<'_>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM plan_items WHERE project_id = $1 AND fingerprint = $2 AND id <> $3
           AND status = 'done'",
    )
    .bind(project_id)
    .bind(f.fingerprint)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE plan_items SET path = $1, line = $2, text = $3, heading = $4, fingerprint = $5,
                weight = $6, status = 'open', done_at = NULL, last_seen_at = $7, updated_at = $7
         WHERE id = $8",
    )
    .bind(f.path)
    .bind(f.line)
    .bind(f.text)
    .bind(f.heading)
    .bind(f.fingerprint)
    .bind(f.weight)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Found again unchanged: only `last_seen_at` (and a moved line) change.
pub async fn seen_again(
    conn: &mut AnyConnection,
    id: i64,
    line: Option<i64>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE plan_items SET line = $1, last_seen_at = $2 WHERE id = $3")
        .bind(line)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_author(
    conn: &mut AnyConnection,
    id: i64,
    author: &str,
    at: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE plan_items SET author = $1, authored_at = $2 WHERE id = $3")
        .bind(author)
        .bind(at)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_done(
    conn: &mut AnyConnection,
    ids: &[i64],
    now: &str,
) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE plan_items SET status = 'done', done_at = $1, updated_at = $1
             WHERE status = 'open' AND id IN ({})",
            crate::db::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(now);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The project's open items of one origin: found in files (`file = true`) or bugs/errors.
pub async fn open_items(
    conn: &mut AnyConnection,
    project_id: i64,
) -> Result<Vec<PlanItem>, sqlx::Error> {
    let rows: Vec<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLS} FROM plan_items WHERE project_id = $1 AND status = 'open' ORDER BY id"
    ))
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemFilter {
    pub project_id: Option<i64>,
    pub status: Option<ItemStatus>,
    pub kind: Option<Source>,
    pub path: Option<String>,
}

pub async fn list_items<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &ItemFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<PlanItem>, sqlx::Error> {
    let rows: Vec<ItemRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLS} FROM plan_items
         WHERE ($1 IS NULL OR project_id = $1) AND ($2 IS NULL OR status = $2)
           AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR path = $4)
         ORDER BY weight DESC, id LIMIT $5 OFFSET $6"
    ))
    .bind(f.project_id)
    .bind(f.status.map(ItemStatus::as_str))
    .bind(f.kind.map(Source::as_str))
    .bind(f.path.as_deref())
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn items_by_ids(
    conn: &mut AnyConnection,
    ids: &[i64],
) -> Result<Vec<PlanItem>, sqlx::Error> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {ITEM_COLS} FROM plan_items WHERE id IN ({}) ORDER BY id",
            crate::db::placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, ItemRow>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        out.extend(
            q.fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(PlanItem::from),
        );
    }
    Ok(out)
}

pub async fn get_item<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<PlanItem>, sqlx::Error> {
    let row: Option<ItemRow> =
        sqlx::query_as(&format!("SELECT {ITEM_COLS} FROM plan_items WHERE id = $1"))
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(Into::into))
}

pub async fn link_feature(
    conn: &mut AnyConnection,
    ids: &[i64],
    feature_id: i64,
    now: &str,
) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE plan_items SET feature_id = $1, updated_at = $2 WHERE id IN ({})",
            crate::db::placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(feature_id).bind(now);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

// ---- proposed milestones ----

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: i64,
    project_id: i64,
    scan_id: Option<i64>,
    title: String,
    description: String,
    priority: i64,
    phases: String,
    items_key: String,
    status: String,
    reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<String>,
    milestone_id: Option<i64>,
    created_at: String,
    updated_at: String,
}

impl From<PlanRow> for PlanMilestone {
    fn from(r: PlanRow) -> Self {
        PlanMilestone {
            id: r.id,
            project_id: r.project_id,
            scan_id: r.scan_id,
            title: r.title,
            description: r.description,
            priority: r.priority,
            phases: serde_json::from_str(&r.phases).unwrap_or_default(),
            items_key: r.items_key,
            status: parse(&r.status, PlanStatus::Superseded),
            reason: r.reason,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            milestone_id: r.milestone_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const PLAN_COLS: &str = "id, project_id, scan_id, title, description, priority, phases, items_key, status, reason, decided_by, decided_at, milestone_id, created_at, updated_at";

pub async fn insert_plan(
    conn: &mut AnyConnection,
    project_id: i64,
    scan_id: i64,
    d: &plan::Draft,
    now: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO plan_milestones (project_id, scan_id, title, description, priority, phases,
                                      items_key, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending_approval', $8, $8) RETURNING id",
    )
    .bind(project_id)
    .bind(scan_id)
    .bind(&d.title)
    .bind(&d.description)
    .bind(d.priority)
    .bind(serde_json::to_string(&d.phases).unwrap_or_else(|_| "[]".into()))
    .bind(&d.items_key)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// Every proposed milestone of a project that still decides what a new plan may propose:
/// pending, approved and rejected ones.
pub async fn decided_or_pending(
    conn: &mut AnyConnection,
    project_id: i64,
) -> Result<Vec<PlanMilestone>, sqlx::Error> {
    let rows: Vec<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLS} FROM plan_milestones
         WHERE project_id = $1 AND status IN ('pending_approval', 'approved', 'rejected')
         ORDER BY id"
    ))
    .bind(project_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn set_plan_status(
    conn: &mut AnyConnection,
    id: i64,
    status: PlanStatus,
    reason: Option<&str>,
    by: Option<&str>,
    milestone_id: Option<i64>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE plan_milestones SET status = $1, reason = COALESCE($2, reason),
                decided_by = COALESCE($3, decided_by),
                decided_at = CASE WHEN $3 IS NULL THEN decided_at ELSE $4 END,
                milestone_id = COALESCE($5, milestone_id), updated_at = $4
         WHERE id = $6",
    )
    .bind(status.as_str())
    .bind(reason)
    .bind(by)
    .bind(now)
    .bind(milestone_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the row lock first (the transaction's write lock before it reads).
pub async fn lock_plan(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<PlanMilestone>, sqlx::Error> {
    sqlx::query("UPDATE plan_milestones SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_plan(conn, id).await
}

pub async fn get_plan<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<PlanMilestone>, sqlx::Error> {
    let row: Option<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLS} FROM plan_milestones WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFilter {
    pub project_id: Option<i64>,
    /// Default: `pending_approval`.
    pub status: Option<PlanStatus>,
}

pub async fn list_plans<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &PlanFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<PlanMilestone>, sqlx::Error> {
    let rows: Vec<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLS} FROM plan_milestones
         WHERE ($1 IS NULL OR project_id = $1) AND status = $2
         ORDER BY priority DESC, id LIMIT $3 OFFSET $4"
    ))
    .bind(f.project_id)
    .bind(f.status.unwrap_or(PlanStatus::PendingApproval).as_str())
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

// ---- suggestions ----

#[derive(sqlx::FromRow)]
struct SuggestionRow {
    id: i64,
    project_id: i64,
    source: String,
    source_id: i64,
    title: String,
    reason: String,
    score: i64,
    proposed: String,
    status: String,
    result_kind: Option<String>,
    result_id: Option<i64>,
    created_at: String,
    updated_at: String,
}

impl From<SuggestionRow> for Suggestion {
    fn from(r: SuggestionRow) -> Self {
        Suggestion {
            id: r.id,
            project_id: r.project_id,
            source: parse(&r.source, SuggestionSource::Item),
            source_id: r.source_id,
            title: r.title,
            reason: r.reason,
            score: r.score,
            proposed: parse(&r.proposed, Target::Feature),
            status: parse(&r.status, SuggestionStatus::Pending),
            result_kind: r.result_kind.and_then(|k| k.parse().ok()),
            result_id: r.result_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SUGGESTION_COLS: &str = "id, project_id, source, source_id, title, reason, score, proposed, status, result_kind, result_id, created_at, updated_at";

pub struct NewSuggestion {
    pub project_id: i64,
    pub source: SuggestionSource,
    pub source_id: i64,
    pub title: String,
    pub reason: String,
    pub score: i64,
    pub proposed: Target,
}

/// Stores a suggestion unless its source was suggested before (whatever became of it).
/// Returns the new id, or None.
pub async fn insert_suggestion(
    conn: &mut AnyConnection,
    s: &NewSuggestion,
    now: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO suggestions (project_id, source, source_id, title, reason, score, proposed,
                                  status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)
         ON CONFLICT (source, source_id) DO NOTHING RETURNING id",
    )
    .bind(s.project_id)
    .bind(s.source.as_str())
    .bind(s.source_id)
    .bind(&s.title)
    .bind(&s.reason)
    .bind(s.score)
    .bind(s.proposed.as_str())
    .bind(now)
    .fetch_optional(conn)
    .await
}

pub async fn get_suggestion<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<Suggestion>, sqlx::Error> {
    let row: Option<SuggestionRow> = sqlx::query_as(&format!(
        "SELECT {SUGGESTION_COLS} FROM suggestions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

pub async fn lock_suggestion(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<Suggestion>, sqlx::Error> {
    sqlx::query("UPDATE suggestions SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_suggestion(conn, id).await
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestionFilter {
    pub project_id: Option<i64>,
    /// Default: `pending`.
    pub status: Option<SuggestionStatus>,
}

pub async fn list_suggestions<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &SuggestionFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Suggestion>, sqlx::Error> {
    let rows: Vec<SuggestionRow> = sqlx::query_as(&format!(
        "SELECT {SUGGESTION_COLS} FROM suggestions
         WHERE ($1 IS NULL OR project_id = $1) AND status = $2
         ORDER BY score DESC, id LIMIT $3 OFFSET $4"
    ))
    .bind(f.project_id)
    .bind(f.status.unwrap_or(SuggestionStatus::Pending).as_str())
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn set_suggestion_status(
    conn: &mut AnyConnection,
    id: i64,
    status: SuggestionStatus,
    result: Option<(Target, i64)>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE suggestions SET status = $1, result_kind = COALESCE($2, result_kind),
                result_id = COALESCE($3, result_id), updated_at = $4
         WHERE id = $5",
    )
    .bind(status.as_str())
    .bind(result.map(|(k, _)| k.as_str()))
    .bind(result.map(|(_, id)| id))
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn record_history(
    conn: &mut AnyConnection,
    id: i64,
    status: SuggestionStatus,
    actor: &str,
    note: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO suggestion_history (suggestion_id, status, actor, note, at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(actor)
    .bind(note)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn history<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Vec<SuggestionEvent>, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT status, actor, note, at FROM suggestion_history WHERE suggestion_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(status, actor, note, at)| SuggestionEvent {
            status: parse(&status, SuggestionStatus::Pending),
            actor,
            note,
            at,
        })
        .collect())
}

/// Counts for the review queue's badge and the status answer.
pub async fn pending_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM plan_milestones WHERE status = 'pending_approval'),
                (SELECT COUNT(*) FROM suggestions WHERE status = 'pending')",
    )
    .fetch_one(ex)
    .await
}
