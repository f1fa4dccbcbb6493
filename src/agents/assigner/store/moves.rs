//! The prompt queue's changes: every status move, the delivery marks and clearing, each one
//! `UPDATE ... WHERE id = $1 AND status IN (...)` (so two writers never both move a prompt),
//! committed with its activity row (`change`). The moves are checked against
//! `PromptStatus::next` by a test that reads this file.

use crate::db::Db;

/// Runs one change of a prompt and, when it changed a row, its activity-log row, in one
/// transaction.
async fn change<'q>(
    db: &Db,
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    log: Log<'_>,
) -> Result<u64, sqlx::Error> {
    let entry = crate::activity::store::Entry {
        actor: log.actor,
        action: log.action,
        entity_type: "prompt",
        entity_id: log.id,
        details: log.details,
        now: log.now,
    };
    crate::activity::store::execute_logged(db, q, entry).await
}

/// The activity row of a change: who, what, which prompt (none for many), details.
struct Log<'a> {
    actor: &'a str,
    action: &'a str,
    id: Option<i64>,
    details: serde_json::Value,
    now: &'a str,
}

/// The dispatcher's moves are the assigner's.
const ASSIGNER: &str = "assigner";

fn log<'a>(
    actor: &'a str,
    action: &'a str,
    id: i64,
    details: serde_json::Value,
    now: &'a str,
) -> Log<'a> {
    Log {
        actor,
        action,
        id: Some(id),
        details,
        now,
    }
}

/// Claims a pending prompt for `session`, unless the session already holds an active one.
/// False when another claim won: the prompt is no longer pending (two dispatchers raced for
/// it), or the session took another prompt meanwhile (the NOT EXISTS re-check on SQLite, the
/// unique index `assigner_prompts_one_active_per_session` where claims run concurrently).
pub async fn claim(
    db: &Db,
    id: i64,
    node: &str,
    session: &str,
    token: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let q = sqlx::query(
        "UPDATE assigner_prompts SET status = 'assigned', assigned_session = $3, \
            dispatch_token = $4, assigned_at = $5, typed_at = NULL, enter_presses = 0, \
            entered_at = NULL, started_at = NULL, \
            accepted_by = NULL, error = NULL, updated_at = $5 \
         WHERE id = $1 AND status = 'pending' AND NOT EXISTS ( \
            SELECT 1 FROM assigner_prompts a WHERE a.node = $2 AND a.assigned_session = $3 \
              AND a.status IN ('assigned', 'in_progress'))",
    )
    .bind(id)
    .bind(node)
    .bind(session)
    .bind(token)
    .bind(now);
    let changed = change(
        db,
        q,
        log(
            ASSIGNER,
            "assign",
            id,
            serde_json::json!({"session": session, "node": node}),
            now,
        ),
    )
    .await;
    match changed {
        Ok(n) => Ok(n > 0),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The text was typed and the first Enter pressed.
pub async fn mark_typed(db: &Db, id: i64, token: &str, now: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE assigner_prompts SET typed_at = $3, enter_presses = 1, entered_at = $3, \
            updated_at = $3 WHERE id = $1 AND status = 'assigned' AND dispatch_token = $2",
    )
    .bind(id)
    .bind(token)
    .bind(now)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Enter pressed again for a typed prompt whose text still sat in the input line.
pub async fn pressed_enter(db: &Db, id: i64, now: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE assigner_prompts SET enter_presses = enter_presses + 1, entered_at = $2, \
            updated_at = $2 WHERE id = $1 AND status = 'assigned' AND typed_at IS NOT NULL",
    )
    .bind(id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn mark_started(db: &Db, id: i64, by: &str, now: &str) -> Result<bool, sqlx::Error> {
    let q = sqlx::query(
        "UPDATE assigner_prompts SET status = 'in_progress', started_at = $3, accepted_by = $2, \
            updated_at = $3 WHERE id = $1 AND status = 'assigned'",
    )
    .bind(id)
    .bind(by)
    .bind(now);
    Ok(change(
        db,
        q,
        log(ASSIGNER, "start", id, serde_json::json!({"by": by}), now),
    )
    .await?
        > 0)
}

pub async fn mark_completed(
    db: &Db,
    id: i64,
    by: &str,
    response: &str,
    transcript: Option<&str>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let q = sqlx::query(
        "UPDATE assigner_prompts SET status = 'completed', completed_at = $3, completed_by = $2, \
            response = $4, transcript_path = $5, \
            started_at = COALESCE(started_at, $3), accepted_by = COALESCE(accepted_by, $2), \
            updated_at = $3 WHERE id = $1 AND status IN ('assigned', 'in_progress')",
    )
    .bind(id)
    .bind(by)
    .bind(now)
    .bind(response)
    .bind(transcript);
    Ok(change(
        db,
        q,
        log(ASSIGNER, "complete", id, serde_json::json!({"by": by}), now),
    )
    .await?
        > 0)
}

/// Fails an active prompt; with `requeue` (retries left) it goes back to pending instead.
pub async fn fail_active(
    db: &Db,
    id: i64,
    error: &str,
    requeue: bool,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let sql = if requeue {
        "UPDATE assigner_prompts SET status = 'pending', retries = retries + 1, error = $2, \
            assigned_session = NULL, dispatch_token = NULL, assigned_at = NULL, typed_at = NULL, \
            enter_presses = 0, entered_at = NULL, updated_at = $3 \
         WHERE id = $1 AND status IN ('assigned', 'in_progress')"
    } else {
        "UPDATE assigner_prompts SET status = 'failed', error = $2, completed_at = $3, \
            updated_at = $3 WHERE id = $1 AND status IN ('assigned', 'in_progress')"
    };
    let q = sqlx::query(sql).bind(id).bind(error).bind(now);
    let action = if requeue { "requeue" } else { "fail" };
    let details = serde_json::json!({"error": error});
    Ok(change(db, q, log(ASSIGNER, action, id, details, now)).await? > 0)
}

/// An assigned prompt whose text was never typed (serve stopped in between) goes back to
/// pending without spending a retry.
pub async fn unclaim_untyped(db: &Db, id: i64, now: &str) -> Result<bool, sqlx::Error> {
    let q = sqlx::query(
        "UPDATE assigner_prompts SET status = 'pending', assigned_session = NULL, \
            dispatch_token = NULL, assigned_at = NULL, updated_at = $2 \
         WHERE id = $1 AND status = 'assigned' AND typed_at IS NULL",
    )
    .bind(id)
    .bind(now);
    Ok(change(
        db,
        q,
        log(
            ASSIGNER,
            "requeue",
            id,
            serde_json::json!({"why": "never typed (restart)"}),
            now,
        ),
    )
    .await?
        > 0)
}

pub async fn escalate(db: &Db, id: i64, to: &str, now: &str) -> Result<(), sqlx::Error> {
    let q = sqlx::query(
        "UPDATE assigner_prompts SET escalated_to = $2, escalated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(to)
    .bind(now);
    let details = serde_json::json!({"to": to});
    change(db, q, log(ASSIGNER, "escalate", id, details, now))
        .await
        .map(|_| ())
}

pub async fn cancel(db: &Db, actor: &str, id: i64, now: &str) -> Result<bool, sqlx::Error> {
    let q = sqlx::query(
        "UPDATE assigner_prompts SET status = 'cancelled', completed_at = $2, updated_at = $2 \
         WHERE id = $1 AND status IN ('pending', 'assigned', 'in_progress')",
    )
    .bind(id)
    .bind(now);
    Ok(change(db, q, log(actor, "cancel", id, serde_json::json!({}), now)).await? > 0)
}

/// Failed or cancelled → pending, spending a retry; refused once `max_retries` are spent.
pub async fn retry(db: &Db, actor: &str, id: i64, now: &str) -> Result<bool, sqlx::Error> {
    let q = sqlx::query(
        "UPDATE assigner_prompts SET status = 'pending', retries = retries + 1, \
            assigned_session = NULL, dispatch_token = NULL, assigned_at = NULL, typed_at = NULL, \
            enter_presses = 0, entered_at = NULL, started_at = NULL, completed_at = NULL, \
            updated_at = $2 \
         WHERE id = $1 AND status IN ('failed', 'cancelled') AND retries < max_retries",
    )
    .bind(id)
    .bind(now);
    Ok(change(db, q, log(actor, "retry", id, serde_json::json!({}), now)).await? > 0)
}

pub async fn retry_all(db: &Db, actor: &str, now: &str) -> Result<u64, sqlx::Error> {
    let q = sqlx::query(
        "UPDATE assigner_prompts SET status = 'pending', retries = retries + 1, \
            assigned_session = NULL, dispatch_token = NULL, assigned_at = NULL, typed_at = NULL, \
            enter_presses = 0, entered_at = NULL, started_at = NULL, completed_at = NULL, \
            updated_at = $1 \
         WHERE status = 'failed' AND retries < max_retries",
    )
    .bind(now);
    let log = Log {
        actor,
        action: "retry_all",
        id: None,
        details: serde_json::json!({}),
        now,
    };
    change(db, q, log).await
}

/// Back to pending, targeted at `to` (or untargeted), from any status but in_progress and
/// completed.
pub async fn reassign(
    db: &Db,
    actor: &str,
    id: i64,
    to: Option<&str>,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let q = sqlx::query(
        "UPDATE assigner_prompts SET status = 'pending', target_session = $2, \
            target_role = CASE WHEN $2 IS NULL THEN target_role ELSE NULL END, \
            target_group = CASE WHEN $2 IS NULL THEN target_group ELSE NULL END, \
            assigned_session = NULL, dispatch_token = NULL, assigned_at = NULL, typed_at = NULL, \
            enter_presses = 0, entered_at = NULL, started_at = NULL, completed_at = NULL, \
            updated_at = $3 \
         WHERE id = $1 AND status IN ('pending', 'assigned', 'failed', 'cancelled')",
    )
    .bind(id)
    .bind(to)
    .bind(now);
    Ok(change(
        db,
        q,
        log(actor, "reassign", id, serde_json::json!({"to": to}), now),
    )
    .await?
        > 0)
}

/// Deletes completed and cancelled prompts (updated before `before`, when given) that no
/// other prompt names as its parent.
pub async fn clear(
    db: &Db,
    actor: &str,
    before: Option<&str>,
    now: &str,
) -> Result<u64, sqlx::Error> {
    let q = sqlx::query(
        "DELETE FROM assigner_prompts WHERE status IN ('completed', 'cancelled') \
           AND ($1 IS NULL OR updated_at < $1) \
           AND id NOT IN (SELECT parent_id FROM assigner_prompts WHERE parent_id IS NOT NULL)",
    )
    .bind(before);
    let log = Log {
        actor,
        action: "clear",
        id: None,
        details: serde_json::json!({"before": before}),
        now,
    };
    change(db, q, log).await
}

/// After a restart: the pane shows the text of a claimed prompt, so it was typed.
pub async fn mark_typed_after_restart(db: &Db, id: i64, now: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE assigner_prompts SET typed_at = $2, entered_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'assigned' AND typed_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}
