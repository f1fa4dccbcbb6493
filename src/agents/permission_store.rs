//! SQL for permission patterns, the permission audit and recorded interactions.

use super::permissions::{PermissionPattern, Request, Verdict};
use crate::db::Db;
use serde::{Deserialize, Serialize};

const PATTERN_COLS: &str = "id, name, tool_regex, subject_regex, session_scope, role_scope, \
    decision, enabled, override_guard, created_by, created_at, updated_at";

pub async fn patterns(db: &Db) -> Result<Vec<PermissionPattern>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PATTERN_COLS} FROM permission_patterns ORDER BY id"
    ))
    .fetch_all(db)
    .await
}

pub async fn pattern(db: &Db, id: i64) -> Result<Option<PermissionPattern>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PATTERN_COLS} FROM permission_patterns WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The writable fields of a pattern.
#[derive(Debug, Clone)]
pub struct PatternFields {
    pub name: String,
    pub tool_regex: String,
    pub subject_regex: String,
    pub session_scope: Option<String>,
    pub role_scope: Option<String>,
    pub decision: String,
    pub enabled: bool,
    pub override_guard: bool,
}

pub async fn insert_pattern(
    db: &Db,
    f: &PatternFields,
    by: &str,
    now: &str,
) -> Result<PermissionPattern, sqlx::Error> {
    let sql = format!(
        "INSERT INTO permission_patterns (name, tool_regex, subject_regex, session_scope, \
            role_scope, decision, enabled, override_guard, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING {PATTERN_COLS}"
    );
    let q = sqlx::query_as(&sql)
        .bind(&f.name)
        .bind(&f.tool_regex)
        .bind(&f.subject_regex)
        .bind(&f.session_scope)
        .bind(&f.role_scope)
        .bind(&f.decision)
        .bind(i64::from(f.enabled))
        .bind(i64::from(f.override_guard))
        .bind(by)
        .bind(now);
    crate::activity::store::fetch_logged(db, q, |p: &PermissionPattern| {
        pattern_entry(by, "create", p, now)
    })
    .await?
    .ok_or(sqlx::Error::RowNotFound)
}

/// The activity row of a permission pattern change: what it approves or denies.
fn pattern_entry<'a>(
    actor: &'a str,
    action: &'a str,
    p: &PermissionPattern,
    now: &'a str,
) -> crate::activity::store::Entry<'a> {
    crate::activity::store::Entry {
        actor,
        action,
        entity_type: "permission_pattern",
        entity_id: Some(p.id),
        details: serde_json::json!({
            "name": p.name, "tool_regex": p.tool_regex, "subject_regex": p.subject_regex,
            "decision": p.decision, "enabled": p.enabled, "override_guard": p.override_guard,
        }),
        now,
    }
}

pub async fn update_pattern(
    db: &Db,
    actor: &str,
    id: i64,
    f: &PatternFields,
    now: &str,
) -> Result<Option<PermissionPattern>, sqlx::Error> {
    let sql = format!(
        "UPDATE permission_patterns SET name = $2, tool_regex = $3, subject_regex = $4, \
            session_scope = $5, role_scope = $6, decision = $7, enabled = $8, \
            override_guard = $9, updated_at = $10 \
         WHERE id = $1 RETURNING {PATTERN_COLS}"
    );
    let q = sqlx::query_as(&sql)
        .bind(id)
        .bind(&f.name)
        .bind(&f.tool_regex)
        .bind(&f.subject_regex)
        .bind(&f.session_scope)
        .bind(&f.role_scope)
        .bind(&f.decision)
        .bind(i64::from(f.enabled))
        .bind(i64::from(f.override_guard))
        .bind(now);
    crate::activity::store::fetch_logged(db, q, |p: &PermissionPattern| {
        pattern_entry(actor, "update", p, now)
    })
    .await
}

pub async fn delete_pattern(db: &Db, actor: &str, id: i64, now: &str) -> Result<bool, sqlx::Error> {
    let q = sqlx::query("DELETE FROM permission_patterns WHERE id = $1").bind(id);
    let entry = crate::activity::store::Entry::deleted(actor, "permission_pattern", id, now);
    Ok(crate::activity::store::execute_logged(db, q, entry).await? > 0)
}

/// Writes one audit row (on the pool, or inside a caller's transaction).
pub async fn audit<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    db: E,
    interaction_id: Option<i64>,
    r: &Request<'_>,
    v: &Verdict,
    dry_run: bool,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO permission_audit (interaction_id, session, tool, subject, decision, \
            decided_by, dry_run, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(interaction_id)
    .bind(r.session)
    .bind(r.tool)
    .bind(r.subject)
    .bind(v.outcome.as_str())
    .bind(&v.decided_by)
    .bind(i64::from(dry_run))
    .bind(&v.reason)
    .bind(now)
    .execute(db)
    .await
    .map(|_| ())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub interaction_id: Option<i64>,
    pub session: String,
    pub tool: String,
    pub subject: Option<String>,
    pub decision: String,
    pub decided_by: String,
    pub dry_run: i64,
    pub reason: String,
    pub at: String,
}

pub async fn audit_log(db: &Db, limit: i64) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, interaction_id, session, tool, subject, decision, decided_by, dry_run, \
            reason, at FROM permission_audit ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A permission prompt seen in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Interaction {
    pub id: i64,
    pub node: String,
    pub session: String,
    pub agent: String,
    pub tool: String,
    pub command: Option<String>,
    pub path: Option<String>,
    pub prompt_text: String,
    pub source: String,
    pub status: String,
    pub decision_by: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
    /// Which prompt on screen this is (`classify::PermissionRequest::fingerprint`); `None` for
    /// a hook's request not seen on screen (yet).
    pub fingerprint: Option<String>,
    /// The whole screen (`classify::screen_hash`) a key was pressed on for this interaction.
    pub screen_hash: Option<String>,
    /// When the pane was seen without this prompt after it was decided.
    pub screen_left_at: Option<String>,
}

const INTERACTION_COLS: &str = "id, node, session, agent, tool, command, path, prompt_text, \
    source, status, decision_by, created_at, decided_at, fingerprint, screen_hash, \
    screen_left_at";

pub struct NewInteraction<'a> {
    pub node: &'a str,
    pub session: &'a str,
    pub agent: &'a str,
    pub tool: &'a str,
    pub command: Option<&'a str>,
    pub path: Option<&'a str>,
    pub prompt_text: &'a str,
    pub source: &'a str,
    pub fingerprint: Option<&'a str>,
}

/// Records a pending interaction; `None` when the session already has one (the unique index
/// `agent_interactions_one_pending`: one prompt on screen is one interaction).
pub async fn insert_interaction<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    db: E,
    i: &NewInteraction<'_>,
    now: &str,
) -> Result<Option<Interaction>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO agent_interactions (node, session, agent, tool, command, path, prompt_text, \
            source, status, created_at, fingerprint) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10) \
         ON CONFLICT DO NOTHING RETURNING {INTERACTION_COLS}"
    ))
    .bind(i.node)
    .bind(i.session)
    .bind(i.agent)
    .bind(i.tool)
    .bind(i.command)
    .bind(i.path)
    .bind(i.prompt_text)
    .bind(i.source)
    .bind(now)
    .bind(i.fingerprint)
    .fetch_optional(db)
    .await
}

/// Records an interaction a hook decided before anything reached the screen: never pending.
pub async fn insert_decided_interaction<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    db: E,
    i: &NewInteraction<'_>,
    status: &str,
    by: &str,
    now: &str,
) -> Result<Interaction, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO agent_interactions (node, session, agent, tool, command, path, prompt_text, \
            source, status, decision_by, created_at, decided_at, fingerprint) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) \
         RETURNING {INTERACTION_COLS}"
    ))
    .bind(i.node)
    .bind(i.session)
    .bind(i.agent)
    .bind(i.tool)
    .bind(i.command)
    .bind(i.path)
    .bind(i.prompt_text)
    .bind(i.source)
    .bind(status)
    .bind(by)
    .bind(now)
    .bind(i.fingerprint)
    .fetch_one(db)
    .await
}

/// Closes the session's pending interaction (if any) as gone: the agent moved on to another
/// request.
pub async fn supersede_pending<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    db: E,
    node: &str,
    session: &str,
    by: &str,
    now: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE agent_interactions SET status = 'gone', decision_by = $3, decided_at = $4, \
            screen_left_at = $4 \
         WHERE node = $1 AND session = $2 AND status = 'pending'",
    )
    .bind(node)
    .bind(session)
    .bind(by)
    .bind(now)
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}

/// A pre-tool-use hook's request, in one transaction: the session's older pending interaction
/// is superseded (the agent moved on to another tool call), this one recorded — decided
/// (`decided`: approved / denied) or, for "ask", pending with the agent's exact command or path
/// — and the decision audited. The pane scan later attaches the prompt it sees on screen to a
/// pending one, and never decides it automatically.
pub async fn record_hook(
    db: &Db,
    i: &NewInteraction<'_>,
    decided: Option<&str>,
    r: &Request<'_>,
    v: &Verdict,
    now: &str,
) -> Result<Option<Interaction>, sqlx::Error> {
    let mut tx = crate::db::begin_write(db).await?;
    supersede_pending(&mut *tx, i.node, i.session, "hook:superseded", now).await?;
    let row = match decided {
        Some(status) => {
            Some(insert_decided_interaction(&mut *tx, i, status, &v.decided_by, now).await?)
        }
        None => insert_interaction(&mut *tx, i, now).await?,
    };
    audit(&mut *tx, row.as_ref().map(|x| x.id), r, v, false, now).await?;
    tx.commit().await?;
    Ok(row)
}

/// The session's newest interaction, whatever its status.
pub async fn latest_interaction(
    db: &Db,
    node: &str,
    session: &str,
) -> Result<Option<Interaction>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INTERACTION_COLS} FROM agent_interactions \
         WHERE node = $1 AND session = $2 ORDER BY id DESC LIMIT 1"
    ))
    .bind(node)
    .bind(session)
    .fetch_optional(db)
    .await
}

/// The pane shows the prompt of a pending interaction that had none yet (a hook's request):
/// remember which prompt it is and what the screen says.
pub async fn attach_screen(
    db: &Db,
    id: i64,
    fingerprint: &str,
    prompt_text: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE agent_interactions SET fingerprint = $2, prompt_text = $3 \
         WHERE id = $1 AND status = 'pending' AND fingerprint IS NULL",
    )
    .bind(id)
    .bind(fingerprint)
    .bind(prompt_text)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// pending → approved / denied by a key about to be pressed on the screen `screen_hash`; false
/// when it was no longer pending (another caller pressed, or it closed): then no key.
pub async fn claim_for_key(
    db: &Db,
    id: i64,
    status: &str,
    by: &str,
    screen_hash: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE agent_interactions SET status = $2, decision_by = $3, decided_at = $4, \
            screen_hash = $5 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(by)
    .bind(now)
    .bind(screen_hash)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// The pane was seen without the prompt of decided interaction `id`.
pub async fn mark_screen_left(db: &Db, id: i64, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE agent_interactions SET screen_left_at = $2 \
         WHERE id = $1 AND screen_left_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn interaction(db: &Db, id: i64) -> Result<Option<Interaction>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INTERACTION_COLS} FROM agent_interactions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn pending_interaction(
    db: &Db,
    node: &str,
    session: &str,
) -> Result<Option<Interaction>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INTERACTION_COLS} FROM agent_interactions \
         WHERE node = $1 AND session = $2 AND status = 'pending' ORDER BY id DESC LIMIT 1"
    ))
    .bind(node)
    .bind(session)
    .fetch_optional(db)
    .await
}

pub async fn interactions(
    db: &Db,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Interaction>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INTERACTION_COLS} FROM agent_interactions WHERE ($1 IS NULL OR status = $1) \
         ORDER BY id DESC LIMIT $2"
    ))
    .bind(status)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// pending → approved / denied / gone; false when it was no longer pending (so of two
/// callers deciding at once, exactly one gets true: the one that may press a key).
pub async fn decide_interaction(
    db: &Db,
    id: i64,
    status: &str,
    by: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE agent_interactions SET status = $2, decision_by = $3, decided_at = $4, \
            screen_left_at = CASE WHEN $2 = 'gone' THEN $4 END \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(status)
    .bind(by)
    .bind(now)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn enabled_pattern_count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM permission_patterns WHERE enabled = 1")
        .fetch_one(db)
        .await
}

/// An interaction with the reason of its latest real (not dry-run) audit row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditedInteraction {
    #[sqlx(flatten)]
    pub interaction: Interaction,
    pub reason: Option<String>,
}

/// The dashboard's lists: pending interactions (`pending`), or decided and gone ones, newest
/// first, optionally of one session.
pub async fn audited_interactions(
    db: &Db,
    pending: bool,
    session: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditedInteraction>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INTERACTION_COLS}, (SELECT a.reason FROM permission_audit a \
             WHERE a.interaction_id = agent_interactions.id AND a.dry_run = 0 \
             ORDER BY a.id DESC LIMIT 1) AS reason \
         FROM agent_interactions \
         WHERE (($1 = 1 AND status = 'pending') OR ($1 = 0 AND status <> 'pending')) \
           AND ($2 IS NULL OR session = $2) \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(i64::from(pending))
    .bind(session)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Sessions that have had a permission prompt (the dashboard's session filter).
pub async fn interaction_sessions(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT session FROM agent_interactions ORDER BY session")
        .fetch_all(db)
        .await
}

pub async fn pending_count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM agent_interactions WHERE status = 'pending'")
        .fetch_one(db)
        .await
}

/// How many real (not dry-run) decisions each pattern made: `(pattern id, count)`.
pub async fn pattern_hits(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT decided_by, COUNT(*) FROM permission_audit \
         WHERE dry_run = 0 AND decided_by LIKE 'pattern:%' GROUP BY decided_by",
    )
    .fetch_all(db)
    .await
}
