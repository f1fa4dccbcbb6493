//! SQL for `suggestions` and `suggestion_history`.

use super::parse;
use crate::planning::*;
use sqlx::{Any, AnyConnection, Executor};

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

/// How many proposed milestones and suggestions wait on a person, of one project or all.
pub async fn pending_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    project_id: Option<i64>,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM plan_milestones
                  WHERE status = 'pending_approval' AND ($1 IS NULL OR project_id = $1)),
                (SELECT COUNT(*) FROM suggestions
                  WHERE status = 'pending' AND ($1 IS NULL OR project_id = $1))",
    )
    .bind(project_id)
    .fetch_one(ex)
    .await
}
