//! SQL for the prompt queue. Every status change is one `UPDATE ... WHERE id = $1 AND status
//! IN (...)`, so two writers (the dispatcher, an API call) can never both move a prompt; the
//! claim also refuses a session that already holds an active prompt.

use super::{Prompt, PromptStatus};
use crate::db::Db;

mod moves;
pub use moves::*;

#[derive(sqlx::FromRow)]
struct PromptRow {
    id: i64,
    content: String,
    priority: i64,
    status: String,
    target_session: Option<String>,
    target_role: Option<String>,
    target_group: Option<String>,
    node: String,
    timeout_minutes: i64,
    max_retries: i64,
    retries: i64,
    metadata: String,
    parent_id: Option<i64>,
    assigned_session: Option<String>,
    assigned_at: Option<String>,
    typed_at: Option<String>,
    enter_presses: i64,
    entered_at: Option<String>,
    started_at: Option<String>,
    accepted_by: Option<String>,
    completed_at: Option<String>,
    completed_by: Option<String>,
    response: Option<String>,
    transcript_path: Option<String>,
    error: Option<String>,
    escalated_to: Option<String>,
    escalated_at: Option<String>,
    source_kind: Option<String>,
    source_id: Option<i64>,
    created_by: String,
    created_at: String,
    updated_at: String,
}

impl From<PromptRow> for Prompt {
    fn from(r: PromptRow) -> Prompt {
        Prompt {
            id: r.id,
            content: r.content,
            priority: r.priority,
            status: r.status.parse().unwrap_or(PromptStatus::Failed),
            target_session: r.target_session,
            target_role: r.target_role,
            target_group: r.target_group,
            node: r.node,
            timeout_minutes: r.timeout_minutes,
            max_retries: r.max_retries,
            retries: r.retries,
            metadata: serde_json::from_str(&r.metadata).unwrap_or_default(),
            parent_id: r.parent_id,
            assigned_session: r.assigned_session,
            assigned_at: r.assigned_at,
            typed_at: r.typed_at,
            enter_presses: r.enter_presses,
            entered_at: r.entered_at,
            started_at: r.started_at,
            accepted_by: r.accepted_by,
            completed_at: r.completed_at,
            completed_by: r.completed_by,
            response: r.response,
            transcript_path: r.transcript_path,
            error: r.error,
            escalated_to: r.escalated_to,
            escalated_at: r.escalated_at,
            source_kind: r.source_kind,
            source_id: r.source_id,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLS: &str = "id, content, priority, status, target_session, target_role, target_group, \
    node, timeout_minutes, max_retries, retries, metadata, parent_id, assigned_session, \
    assigned_at, typed_at, enter_presses, entered_at, started_at, accepted_by, completed_at, \
    completed_by, response, \
    transcript_path, error, escalated_to, escalated_at, source_kind, source_id, created_by, \
    created_at, updated_at";

/// Insert values of a prompt.
pub struct Insert<'a> {
    pub content: &'a str,
    pub priority: i64,
    pub target_session: Option<&'a str>,
    pub target_role: Option<&'a str>,
    pub target_group: Option<&'a str>,
    pub node: &'a str,
    pub timeout_minutes: i64,
    pub max_retries: i64,
    pub metadata: &'a serde_json::Value,
    pub parent_id: Option<i64>,
    pub source: Option<(&'a str, i64)>,
    pub created_by: &'a str,
}

pub async fn insert(db: &Db, p: &Insert<'_>, now: &str) -> Result<i64, sqlx::Error> {
    let mut tx = crate::db::begin_write(db).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO assigner_prompts (content, priority, status, target_session, target_role, \
            target_group, node, timeout_minutes, max_retries, metadata, parent_id, source_kind, \
            source_id, created_by, created_at, updated_at) \
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) \
         RETURNING id",
    )
    .bind(p.content)
    .bind(p.priority)
    .bind(p.target_session)
    .bind(p.target_role)
    .bind(p.target_group)
    .bind(p.node)
    .bind(p.timeout_minutes)
    .bind(p.max_retries)
    .bind(p.metadata.to_string())
    .bind(p.parent_id)
    .bind(p.source.map(|s| s.0))
    .bind(p.source.map(|s| s.1))
    .bind(p.created_by)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let details = serde_json::json!({
        "target_session": p.target_session, "target_role": p.target_role,
        "target_group": p.target_group, "node": p.node, "priority": p.priority,
        "parent_id": p.parent_id,
    });
    crate::activity::store::record(
        &mut tx,
        p.created_by,
        "create",
        "prompt",
        Some(id),
        &details,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Prompt>, sqlx::Error> {
    let row: Option<PromptRow> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM assigner_prompts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Prompt::from))
}

/// List filters.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PromptFilter {
    pub status: Option<PromptStatus>,
    pub session: Option<String>,
    pub parent_id: Option<i64>,
    pub limit: Option<i64>,
}

pub async fn list(db: &Db, f: &PromptFilter) -> Result<Vec<Prompt>, sqlx::Error> {
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let rows: Vec<PromptRow> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM assigner_prompts \
         WHERE ($1 IS NULL OR status = $1) \
           AND ($2 IS NULL OR assigned_session = $2 OR target_session = $2) \
           AND ($3 IS NULL OR parent_id = $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(f.status.map(|s| s.as_str()))
    .bind(f.session.as_deref())
    .bind(f.parent_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Prompt::from).collect())
}

/// The prompts sent for one item (`source_kind` feature | bug | error), newest first.
pub async fn of_source(
    db: &Db,
    kind: &str,
    id: i64,
    limit: i64,
) -> Result<Vec<Prompt>, sqlx::Error> {
    let rows: Vec<PromptRow> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM assigner_prompts WHERE source_kind = $1 AND source_id = $2 \
         ORDER BY id DESC LIMIT $3"
    ))
    .bind(kind)
    .bind(id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Prompt::from).collect())
}

/// Pending prompts in dispatch order: priority, then age.
pub async fn pending(db: &Db, limit: i64) -> Result<Vec<Prompt>, sqlx::Error> {
    let rows: Vec<PromptRow> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM assigner_prompts WHERE status = 'pending' \
         ORDER BY priority DESC, id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Prompt::from).collect())
}

pub async fn active(db: &Db) -> Result<Vec<Prompt>, sqlx::Error> {
    let rows: Vec<PromptRow> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM assigner_prompts WHERE status IN ('assigned', 'in_progress') ORDER BY id"
    ))
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Prompt::from).collect())
}

/// True when nothing is queued or running (the dispatcher then leaves tmux alone).
pub async fn idle_queue(db: &Db) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM assigner_prompts WHERE status IN ('pending', 'assigned', 'in_progress')",
    )
    .fetch_one(db)
    .await?;
    Ok(n == 0)
}

pub async fn counts(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT status, COUNT(*) FROM assigner_prompts GROUP BY status ORDER BY status")
        .fetch_all(db)
        .await
}

/// The active prompt of a session, if any.
pub async fn active_on(db: &Db, node: &str, session: &str) -> Result<Option<Prompt>, sqlx::Error> {
    let row: Option<PromptRow> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM assigner_prompts WHERE node = $1 AND assigned_session = $2 \
           AND status IN ('assigned', 'in_progress') ORDER BY id LIMIT 1"
    ))
    .bind(node)
    .bind(session)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Prompt::from))
}

/// The newest prompts that started a delegation: no parent, at least one child.
pub async fn delegation_roots(db: &Db, limit: i64) -> Result<Vec<Prompt>, sqlx::Error> {
    let rows: Vec<PromptRow> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM assigner_prompts WHERE parent_id IS NULL AND id IN \
            (SELECT parent_id FROM assigner_prompts WHERE parent_id IS NOT NULL) \
         ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Prompt::from).collect())
}

/// The prompts delegated from `parent`, oldest first.
pub async fn children(db: &Db, parent: i64, limit: i64) -> Result<Vec<Prompt>, sqlx::Error> {
    let rows: Vec<PromptRow> = sqlx::query_as(&format!(
        "SELECT {COLS} FROM assigner_prompts WHERE parent_id = $1 ORDER BY id LIMIT $2"
    ))
    .bind(parent)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Prompt::from).collect())
}
