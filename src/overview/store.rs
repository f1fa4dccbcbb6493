//! The overview's SQL: counts over other domains' tables, read only. Each query is one
//! indexed range or one `GROUP BY` over a status column, so the page stays cheap.

use crate::db::Db;

/// `(status, n)` rows of one table (a closed set of statements: no table name from input).
pub async fn counts_by(db: &Db, what: Counted) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = match what {
        Counted::Bugs => "SELECT status, COUNT(*) FROM bugs GROUP BY status",
        Counted::Features => "SELECT status, COUNT(*) FROM features GROUP BY status",
        // The queue's counters (migration 0021), as tasks::store::status_counts reads them.
        Counted::Tasks => {
            "SELECT status, CAST(SUM(n) AS BIGINT) FROM (
                 SELECT status, n FROM task_status_counts
                 UNION ALL SELECT status, n FROM task_status_deltas) c
             GROUP BY status"
        }
        Counted::Prompts => "SELECT status, COUNT(*) FROM assigner_prompts GROUP BY status",
        Counted::Sessions => {
            "SELECT state, COUNT(*) FROM agent_sessions WHERE gone_at IS NULL GROUP BY state"
        }
    };
    sqlx::query_as(sql).fetch_all(db).await
}

#[derive(Debug, Clone, Copy)]
pub enum Counted {
    Bugs,
    Features,
    Tasks,
    Prompts,
    Sessions,
}

/// Error groups: unresolved, regressed (and unresolved), new since `since`, in review.
#[derive(Debug, Default, sqlx::FromRow)]
pub struct ErrorCounts {
    pub unresolved: i64,
    pub regressed: i64,
    pub new_since: i64,
    pub in_review: i64,
    /// Unresolved and regressed or first seen since `since`: the Errors badge.
    pub attention: i64,
}

pub async fn error_counts(db: &Db, since: &str) -> Result<ErrorCounts, sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END), 0) AS unresolved,
                COALESCE(SUM(CASE WHEN status = 'open' AND regressed = 1 THEN 1 ELSE 0 END), 0) AS regressed,
                COALESCE(SUM(CASE WHEN status = 'open' AND first_seen >= $1 THEN 1 ELSE 0 END), 0) AS new_since,
                COALESCE(SUM(CASE WHEN status = 'open' AND review_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS in_review,
                COALESCE(SUM(CASE WHEN status = 'open' AND (regressed = 1 OR first_seen >= $1) THEN 1 ELSE 0 END), 0) AS attention
         FROM errors",
    )
    .bind(since)
    .fetch_one(db)
    .await
}

/// Error occurrences counted per hour bucket from `from_hour` on (the `error_hours` table).
pub async fn occurrences_since(db: &Db, from_hour: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(occurrences), 0) AS BIGINT) FROM error_hours WHERE hour >= $1",
    )
    .bind(from_hour)
    .fetch_one(db)
    .await
}

/// Error occurrences in the hours `[from_hour, to_hour)`.
pub async fn occurrences_between(
    db: &Db,
    from_hour: &str,
    to_hour: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(occurrences), 0) AS BIGINT) FROM error_hours WHERE hour >= $1 AND hour < $2",
    )
    .bind(from_hour)
    .bind(to_hour)
    .fetch_one(db)
    .await
}

/// Rows created (or resolved) since a time, for the trends.
pub async fn bugs_opened_since(db: &Db, since: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM bugs WHERE created_at >= $1")
        .bind(since)
        .fetch_one(db)
        .await
}

pub async fn bugs_resolved_since(db: &Db, since: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM bugs WHERE resolved_at >= $1")
        .bind(since)
        .fetch_one(db)
        .await
}

pub async fn tasks_finished_since(db: &Db, status: &str, since: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM task_queue WHERE status = $1 AND finished_at >= $2")
        .bind(status)
        .bind(since)
        .fetch_one(db)
        .await
}

/// One entry of the "needs you" list as stored: what, which, a title and since when.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttentionRow {
    pub id: i64,
    pub title: String,
    pub detail: Option<String>,
    pub since: String,
}

/// The newest `limit` rows of one kind of item waiting on a person.
pub async fn attention(db: &Db, kind: Kind, limit: i64) -> Result<Vec<AttentionRow>, sqlx::Error> {
    let sql = match kind {
        Kind::Permission => {
            "SELECT id, session AS title, COALESCE(command, path, tool) AS detail, created_at AS since
             FROM agent_interactions WHERE status = 'pending' ORDER BY id DESC LIMIT $1"
        }
        Kind::FailedPrompt => {
            "SELECT id, '#' || id || ' ' || content AS title, error AS detail, updated_at AS since
             FROM assigner_prompts WHERE status = 'failed' ORDER BY updated_at DESC, id DESC LIMIT $1"
        }
        Kind::DeadTask => {
            "SELECT id, '#' || id || ' ' || task_type AS title, error AS detail, COALESCE(finished_at, updated_at) AS since
             FROM task_queue WHERE status = 'dead' ORDER BY updated_at DESC, id DESC LIMIT $1"
        }
        Kind::RegressedError => {
            "SELECT id, title, source AS detail, last_seen AS since
             FROM errors WHERE status = 'open' AND regressed = 1 ORDER BY last_seen DESC LIMIT $1"
        }
        Kind::FeatureReview => {
            "SELECT id, name AS title, NULL AS detail, updated_at AS since
             FROM features WHERE status = 'review' ORDER BY updated_at DESC LIMIT $1"
        }
        Kind::BugReview => {
            "SELECT id, title, severity AS detail, updated_at AS since
             FROM bugs WHERE status = 'review' ORDER BY updated_at DESC LIMIT $1"
        }
        Kind::ErrorReview => {
            "SELECT id, title, source AS detail, review_at AS since
             FROM errors WHERE status = 'open' AND review_at IS NOT NULL ORDER BY review_at DESC LIMIT $1"
        }
        Kind::PlanApproval => {
            "SELECT m.id, m.title, p.name || ' · ' || m.description AS detail, m.created_at AS since
             FROM plan_milestones m JOIN projects p ON p.id = m.project_id
             WHERE m.status = 'pending_approval' ORDER BY m.priority DESC, m.id DESC LIMIT $1"
        }
        Kind::Suggestion => {
            "SELECT s.id, s.title, p.name || ' · ' || s.reason AS detail, s.created_at AS since
             FROM suggestions s JOIN projects p ON p.id = s.project_id
             WHERE s.status = 'pending' ORDER BY s.score DESC, s.id DESC LIMIT $1"
        }
        Kind::AutopilotGate => {
            "SELECT g.id,
                    CASE g.kind WHEN 'change_request' THEN 'Change request: ' || COALESCE(i.title, '')
                         ELSE 'Deploy to production: run ' || g.run_id END AS title,
                    p.name || ' · run ' || g.run_id || COALESCE(' · ' || i.branch, '') AS detail,
                    g.created_at AS since
             FROM autopilot_gates g JOIN autopilot_runs r ON r.id = g.run_id
             JOIN projects p ON p.id = r.project_id
             LEFT JOIN autopilot_items i ON i.id = g.item_id
             WHERE g.state = 'pending' ORDER BY g.id LIMIT $1"
        }
    };
    sqlx::query_as(sql).bind(limit).fetch_all(db).await
}

/// How many of one kind wait in all (the list shows only the newest).
pub async fn attention_count(db: &Db, kind: Kind) -> Result<i64, sqlx::Error> {
    let sql = match kind {
        Kind::Permission => "SELECT COUNT(*) FROM agent_interactions WHERE status = 'pending'",
        Kind::FailedPrompt => "SELECT COUNT(*) FROM assigner_prompts WHERE status = 'failed'",
        Kind::DeadTask => "SELECT COUNT(*) FROM task_queue WHERE status = 'dead'",
        Kind::RegressedError => {
            "SELECT COUNT(*) FROM errors WHERE status = 'open' AND regressed = 1"
        }
        Kind::FeatureReview => "SELECT COUNT(*) FROM features WHERE status = 'review'",
        Kind::BugReview => "SELECT COUNT(*) FROM bugs WHERE status = 'review'",
        Kind::ErrorReview => {
            "SELECT COUNT(*) FROM errors WHERE status = 'open' AND review_at IS NOT NULL"
        }
        Kind::PlanApproval => {
            "SELECT COUNT(*) FROM plan_milestones WHERE status = 'pending_approval'"
        }
        Kind::Suggestion => "SELECT COUNT(*) FROM suggestions WHERE status = 'pending'",
        Kind::AutopilotGate => "SELECT COUNT(*) FROM autopilot_gates WHERE state = 'pending'",
    };
    sqlx::query_scalar(sql).fetch_one(db).await
}

/// Kinds of items that wait on a person (offline nodes come from the nodes domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Permission,
    FailedPrompt,
    DeadTask,
    RegressedError,
    FeatureReview,
    BugReview,
    ErrorReview,
    /// A proposed milestone waiting for approval (planning).
    PlanApproval,
    /// A task suggestion waiting to be confirmed or skipped (planning).
    Suggestion,
    /// An autopilot change request or production deploy waiting for a person.
    AutopilotGate,
}
