//! SQL for tracked agent sessions, their state changes and the user rows of the pane
//! classifier. Nothing else touches these tables.

use super::classify::PanePattern;
use crate::db::Db;
use serde::{Deserialize, Serialize};

/// A session architect tracks (launched by it, or seen in tmux).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SessionRow {
    pub id: i64,
    pub node: String,
    pub name: String,
    pub agent: Option<String>,
    pub launched: i64,
    pub role: Option<String>,
    pub groups: String,
    pub manager: Option<String>,
    pub cwd: Option<String>,
    pub branch: Option<String>,
    pub state: String,
    pub input: String,
    pub state_by: Option<String>,
    pub state_changed_at: Option<String>,
    pub last_busy_at: Option<String>,
    pub last_seen_at: Option<String>,
    pub gone_at: Option<String>,
    pub transcript_path: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl SessionRow {
    pub fn groups(&self) -> Vec<String> {
        serde_json::from_str(&self.groups).unwrap_or_default()
    }
}

const SESSION_COLS: &str = "id, node, name, agent, launched, role, groups, manager, cwd, branch, \
    state, input, state_by, state_changed_at, last_busy_at, last_seen_at, gone_at, \
    transcript_path, created_at, updated_at";

pub async fn session(db: &Db, node: &str, name: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLS} FROM agent_sessions WHERE node = $1 AND name = $2"
    ))
    .bind(node)
    .bind(name)
    .fetch_optional(db)
    .await
}

pub async fn sessions(db: &Db) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SESSION_COLS} FROM agent_sessions ORDER BY node, name"
    ))
    .fetch_all(db)
    .await
}

/// What `architect session start` (or a person) says about a session.
#[derive(Debug, Clone, Default)]
pub struct SessionFacts {
    pub agent: Option<String>,
    pub launched: bool,
    pub role: Option<String>,
    pub groups: Vec<String>,
    pub manager: Option<String>,
    pub cwd: Option<String>,
    pub branch: Option<String>,
}

/// Records (or updates) the facts of a session, keeping its state.
/// Registers (or refreshes) a launched session. With `log` (actor, action) the change commits
/// its activity row too.
pub async fn register_session(
    db: &Db,
    node: &str,
    name: &str,
    f: &SessionFacts,
    now: &str,
    log: Option<(&str, &str)>,
) -> Result<SessionRow, sqlx::Error> {
    let groups = serde_json::to_string(&f.groups).unwrap_or_else(|_| "[]".into());
    let sql = format!(
        "INSERT INTO agent_sessions (node, name, agent, launched, role, groups, manager, cwd, \
            branch, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (node, name) DO UPDATE SET agent = COALESCE($3, agent_sessions.agent), \
            launched = $4, role = COALESCE($5, agent_sessions.role), groups = $6, \
            manager = COALESCE($7, agent_sessions.manager), cwd = COALESCE($8, agent_sessions.cwd), \
            branch = COALESCE($9, agent_sessions.branch), gone_at = NULL, updated_at = $10 \
         RETURNING {SESSION_COLS}"
    );
    let q = sqlx::query_as(&sql)
        .bind(node)
        .bind(name)
        .bind(&f.agent)
        .bind(i64::from(f.launched))
        .bind(&f.role)
        .bind(groups)
        .bind(&f.manager)
        .bind(&f.cwd)
        .bind(&f.branch)
        .bind(now);
    let Some((actor, action)) = log else {
        return q.fetch_one(db).await;
    };
    crate::activity::store::fetch_logged(db, q, |row: &SessionRow| crate::activity::store::Entry {
        actor,
        action,
        entity_type: "agent_session",
        entity_id: Some(row.id),
        details: serde_json::json!({
            "node": row.node, "session": row.name, "agent": row.agent, "role": row.role,
            "cwd": row.cwd, "branch": row.branch,
        }),
        now,
    })
    .await?
    .ok_or(sqlx::Error::RowNotFound)
}

/// Remembers the agent token `session start` made for a session's hooks.
pub async fn set_hook_token(db: &Db, id: i64, token_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE agent_sessions SET hook_token_id = $2 WHERE id = $1")
        .bind(id)
        .bind(token_id)
        .execute(db)
        .await
        .map(|_| ())
}

/// A one-time claim for the token of the session `(session_node, session_name)`, redeemable
/// by the agent of node `node_id` until `expires_at` (see `launch::launch_remote`).
pub struct NewClaim<'a> {
    pub claim_hash: &'a str,
    pub node_id: i64,
    pub session_node: &'a str,
    pub session_name: &'a str,
    pub user_id: i64,
    pub now: &'a str,
    pub expires_at: &'a str,
}

pub async fn insert_claim(db: &Db, c: &NewClaim<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_token_claims (claim_hash, node_id, session_node, session_name, \
         user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(c.claim_hash)
    .bind(c.node_id)
    .bind(c.session_node)
    .bind(c.session_name)
    .bind(c.user_id)
    .bind(c.now)
    .bind(c.expires_at)
    .execute(db)
    .await
    .map(|_| ())
}

/// What a redeemed claim is for.
#[derive(Debug, sqlx::FromRow)]
pub struct RedeemedClaim {
    pub node_id: i64,
    pub session_node: String,
    pub session_name: String,
    pub user_id: i64,
}

/// Marks the live claim with this hash used and returns it; `None` when there is no such
/// claim, it was used, or it expired. One statement, so a claim is redeemed at most once.
pub async fn redeem_claim(
    db: &Db,
    claim_hash: &str,
    now: &str,
) -> Result<Option<RedeemedClaim>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE session_token_claims SET redeemed_at = $2 \
         WHERE claim_hash = $1 AND redeemed_at IS NULL AND expires_at > $2 \
         RETURNING node_id, session_node, session_name, user_id",
    )
    .bind(claim_hash)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// The node a live (unused, unexpired) claim is for.
pub async fn claim_node(db: &Db, claim_hash: &str, now: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT node_id FROM session_token_claims \
         WHERE claim_hash = $1 AND redeemed_at IS NULL AND expires_at > $2",
    )
    .bind(claim_hash)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Forgets the claims of a session (its start failed or finished) and expired ones.
pub async fn drop_claims(db: &Db, node: &str, name: &str, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM session_token_claims \
         WHERE (session_node = $1 AND session_name = $2) OR expires_at <= $3",
    )
    .bind(node)
    .bind(name)
    .bind(now)
    .execute(db)
    .await
    .map(|_| ())
}

/// Takes (and clears) the hook token of a session that ended.
/// The session's own token (its id), without taking it.
pub async fn hook_token(db: &Db, node: &str, name: &str) -> Result<Option<i64>, sqlx::Error> {
    let id: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT hook_token_id FROM agent_sessions WHERE node = $1 AND name = $2",
    )
    .bind(node)
    .bind(name)
    .fetch_optional(db)
    .await?;
    Ok(id.flatten())
}

pub async fn take_hook_token(db: &Db, node: &str, name: &str) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = crate::db::begin_write(db).await?;
    // RETURNING gives the new (NULL) value, so read first, inside the write transaction.
    sqlx::query("UPDATE agent_sessions SET updated_at = updated_at WHERE node = $1 AND name = $2")
        .bind(node)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let id: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT hook_token_id FROM agent_sessions WHERE node = $1 AND name = $2",
    )
    .bind(node)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query("UPDATE agent_sessions SET hook_token_id = NULL WHERE node = $1 AND name = $2")
        .bind(node)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id.flatten())
}

/// A session tmux lists right now: created on first sight, its cwd and last-seen refreshed.
pub async fn saw_session(
    db: &Db,
    node: &str,
    name: &str,
    agent: Option<&str>,
    cwd: &str,
    now: &str,
) -> Result<SessionRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO agent_sessions (node, name, agent, cwd, last_seen_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5, $5) \
         ON CONFLICT (node, name) DO UPDATE SET \
            agent = CASE WHEN agent_sessions.launched = 1 THEN agent_sessions.agent \
                ELSE COALESCE($3, agent_sessions.agent) END, \
            cwd = $4, last_seen_at = $5, gone_at = NULL \
         RETURNING {SESSION_COLS}"
    ))
    .bind(node)
    .bind(name)
    .bind(agent)
    .bind(cwd)
    .bind(now)
    .fetch_one(db)
    .await
}

/// Marks sessions of `node` that tmux no longer lists (revoking their hook tokens). Returns
/// how many were marked.
pub async fn mark_gone_except(
    db: &Db,
    node: &str,
    present: &[String],
    now: &str,
) -> Result<usize, sqlx::Error> {
    let mut gone = 0;
    let known: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, name FROM agent_sessions WHERE node = $1 AND gone_at IS NULL")
            .bind(node)
            .fetch_all(db)
            .await?;
    for (id, name) in known {
        if !present.contains(&name) {
            revoke_hook_token(db, node, &name, now).await?;
            gone += 1;
            sqlx::query(
                "UPDATE agent_sessions SET gone_at = $2, state = 'unknown', input = 'unknown', \
                    updated_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(db)
            .await?;
        }
    }
    Ok(gone)
}

/// Sets a session's state and input line; a change of state (and every hook event) is recorded
/// with its signal. Returns true when the state changed.
pub async fn set_state(
    db: &Db,
    id: i64,
    state: &str,
    input: &str,
    signal: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = crate::db::begin_write(db).await?;
    let old: Option<String> = sqlx::query_scalar("SELECT state FROM agent_sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(old) = old else {
        return Ok(false);
    };
    let changed = old != state;
    // Hook events are positive signals: recorded even when the pane already showed the state.
    if changed || signal.starts_with("hook:") {
        sqlx::query(
            "UPDATE agent_sessions SET state = $2, input = $3, state_by = $4, \
                state_changed_at = $5, updated_at = $5, \
                last_busy_at = CASE WHEN $2 = 'busy' OR state = 'busy' THEN $5 ELSE last_busy_at END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(input)
        .bind(signal)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO agent_state_changes (session_id, from_state, to_state, signal, at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(&old)
        .bind(state)
        .bind(signal)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query("UPDATE agent_sessions SET input = $2 WHERE id = $1 AND input <> $2")
            .bind(id)
            .bind(input)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

pub async fn set_transcript(db: &Db, id: i64, path: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE agent_sessions SET transcript_path = $2 WHERE id = $1")
        .bind(id)
        .bind(path)
        .execute(db)
        .await
        .map(|_| ())
}

/// One recorded state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StateChange {
    pub from_state: String,
    pub to_state: String,
    pub signal: String,
    pub at: String,
}

pub async fn state_changes(
    db: &Db,
    session_id: i64,
    limit: i64,
) -> Result<Vec<StateChange>, sqlx::Error> {
    sqlx::query_as(
        "SELECT from_state, to_state, signal, at FROM agent_state_changes \
         WHERE session_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(session_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Hook signals recorded for a session since `since` (oldest first).
pub async fn hook_signals_since(
    db: &Db,
    session_id: i64,
    since: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT signal, at FROM agent_state_changes WHERE session_id = $1 AND at >= $2 \
           AND signal LIKE 'hook:%' ORDER BY id",
    )
    .bind(session_id)
    .bind(since)
    .fetch_all(db)
    .await
}

// ---- pane patterns ----

#[derive(sqlx::FromRow)]
struct PatternRow {
    id: i64,
    name: String,
    agent: String,
    signal: String,
    source: String,
    tail_lines: i64,
    regex: String,
    enabled: i64,
    note: String,
}

impl PatternRow {
    fn into_pattern(self) -> Option<PanePattern> {
        Some(PanePattern {
            id: Some(self.id),
            name: self.name,
            agent: self.agent.parse().ok()?,
            signal: self.signal.parse().ok()?,
            source: self.source.parse().ok()?,
            tail_lines: self.tail_lines,
            regex: self.regex,
            enabled: self.enabled != 0,
            note: self.note,
        })
    }
}

const PATTERN_COLS: &str = "id, name, agent, signal, source, tail_lines, regex, enabled, note";

/// The user rows in evaluation order.
pub async fn list_pane_patterns(db: &Db) -> Result<Vec<PanePattern>, sqlx::Error> {
    let rows: Vec<PatternRow> = sqlx::query_as(&format!(
        "SELECT {PATTERN_COLS} FROM pane_patterns ORDER BY position, id"
    ))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(PatternRow::into_pattern)
        .collect())
}

pub async fn pane_pattern(db: &Db, id: i64) -> Result<Option<PanePattern>, sqlx::Error> {
    let row: Option<PatternRow> = sqlx::query_as(&format!(
        "SELECT {PATTERN_COLS} FROM pane_patterns WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(PatternRow::into_pattern))
}

pub async fn insert_pane_pattern(
    db: &Db,
    p: &PanePattern,
    position: i64,
    by: &str,
    now: &str,
) -> Result<i64, sqlx::Error> {
    let q = sqlx::query_as::<_, (i64,)>(
        "INSERT INTO pane_patterns (name, agent, signal, source, tail_lines, regex, enabled, \
            note, position, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
    )
    .bind(&p.name)
    .bind(p.agent.as_str())
    .bind(p.signal.as_str())
    .bind(p.source.as_str())
    .bind(p.tail_lines)
    .bind(&p.regex)
    .bind(i64::from(p.enabled))
    .bind(&p.note)
    .bind(position)
    .bind(by)
    .bind(now);
    let row = crate::activity::store::fetch_logged(db, q, |r: &(i64,)| {
        pane_pattern_entry(by, "create", r.0, p, now)
    })
    .await?;
    row.map(|r| r.0).ok_or(sqlx::Error::RowNotFound)
}

/// The activity row of a pane pattern change.
fn pane_pattern_entry<'a>(
    actor: &'a str,
    action: &'a str,
    id: i64,
    p: &PanePattern,
    now: &'a str,
) -> crate::activity::store::Entry<'a> {
    crate::activity::store::Entry {
        actor,
        action,
        entity_type: "pane_pattern",
        entity_id: Some(id),
        details: serde_json::json!({
            "name": p.name, "agent": p.agent.as_str(), "signal": p.signal.as_str(),
            "regex": p.regex, "enabled": p.enabled,
        }),
        now,
    }
}

pub async fn update_pane_pattern(
    db: &Db,
    actor: &str,
    id: i64,
    p: &PanePattern,
    position: i64,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let q = sqlx::query(
        "UPDATE pane_patterns SET name = $2, agent = $3, signal = $4, source = $5, \
            tail_lines = $6, regex = $7, enabled = $8, note = $9, position = $10, updated_at = $11 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(&p.name)
    .bind(p.agent.as_str())
    .bind(p.signal.as_str())
    .bind(p.source.as_str())
    .bind(p.tail_lines)
    .bind(&p.regex)
    .bind(i64::from(p.enabled))
    .bind(&p.note)
    .bind(position)
    .bind(now);
    let entry = pane_pattern_entry(actor, "update", id, p, now);
    Ok(crate::activity::store::execute_logged(db, q, entry).await? > 0)
}

pub async fn delete_pane_pattern(
    db: &Db,
    actor: &str,
    id: i64,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let q = sqlx::query("DELETE FROM pane_patterns WHERE id = $1").bind(id);
    let entry = crate::activity::store::Entry::deleted(actor, "pane_pattern", id, now);
    Ok(crate::activity::store::execute_logged(db, q, entry).await? > 0)
}

/// Revokes the hook token of a session that ended (its agent token has nothing left to report).
pub async fn revoke_hook_token(
    db: &Db,
    node: &str,
    name: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    if let Some(token_id) = take_hook_token(db, node, name).await? {
        let mut conn = db.acquire().await?;
        crate::auth::store::revoke_token(&mut conn, token_id, now).await?;
    }
    Ok(())
}
