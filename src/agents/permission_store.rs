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
    sqlx::query_as(&format!(
        "INSERT INTO permission_patterns (name, tool_regex, subject_regex, session_scope, \
            role_scope, decision, enabled, override_guard, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING {PATTERN_COLS}"
    ))
    .bind(&f.name)
    .bind(&f.tool_regex)
    .bind(&f.subject_regex)
    .bind(&f.session_scope)
    .bind(&f.role_scope)
    .bind(&f.decision)
    .bind(i64::from(f.enabled))
    .bind(i64::from(f.override_guard))
    .bind(by)
    .bind(now)
    .fetch_one(db)
    .await
}

pub async fn update_pattern(
    db: &Db,
    id: i64,
    f: &PatternFields,
    now: &str,
) -> Result<Option<PermissionPattern>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE permission_patterns SET name = $2, tool_regex = $3, subject_regex = $4, \
            session_scope = $5, role_scope = $6, decision = $7, enabled = $8, \
            override_guard = $9, updated_at = $10 \
         WHERE id = $1 RETURNING {PATTERN_COLS}"
    ))
    .bind(id)
    .bind(&f.name)
    .bind(&f.tool_regex)
    .bind(&f.subject_regex)
    .bind(&f.session_scope)
    .bind(&f.role_scope)
    .bind(&f.decision)
    .bind(i64::from(f.enabled))
    .bind(i64::from(f.override_guard))
    .bind(now)
    .fetch_optional(db)
    .await
}

pub async fn delete_pattern(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM permission_patterns WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Writes one audit row.
pub async fn audit(
    db: &Db,
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
