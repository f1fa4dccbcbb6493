//! The command channel: the agent's long-poll and answers, queueing, waiting for results, and
//! [`run_command`], the Rust entry point other domains call.

use super::super::store::{self, InsertCommand};
use super::*;
use serde_json::{json, Value};
use std::time::Instant;

/// The agent's long-poll: waits up to `wait_s` for commands and hands each out once.
pub async fn poll_commands(
    state: &NodesState,
    caller: &AgentCaller,
    id: i64,
    wait_s: f64,
) -> Result<CommandBatch> {
    agent_node(state, caller, id).await?;
    let wait = std::time::Duration::from_secs_f64(wait_s.clamp(0.0, MAX_WAIT_S));
    let deadline = Instant::now() + wait;
    loop {
        let notified = state.nodes.queued();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (_, now) = now_pair(state);
        let mut conn = state.db.acquire().await?;
        let commands = store::claim_commands(&mut conn, id, &now, MAX_CLAIM).await?;
        drop(conn);
        if !commands.is_empty() {
            return Ok(CommandBatch { commands });
        }
        if state.nodes.is_closing() {
            // A 503, not an empty answer: the agent backs off instead of polling again at once.
            return Err(NodeError::Unavailable(
                "the server is shutting down; poll again shortly".into(),
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(CommandBatch::default());
        }
        // Re-check at least every 5 s: a wake-up lost between replicas costs no more.
        let _ = tokio::time::timeout(left.min(std::time::Duration::from_secs(5)), notified).await;
        // The node may have been removed meanwhile.
        if store::get_node(&state.db, id).await?.is_none() {
            return Err(NodeError::NotFound("node"));
        }
    }
}

/// The agent's answer to a delivered command.
pub async fn post_result(
    state: &NodesState,
    caller: &AgentCaller,
    node_id: i64,
    cid: i64,
    answer: CommandResult,
) -> Result<NodeCommand> {
    answer.validate()?;
    agent_node(state, caller, node_id).await?;
    let (_, now) = now_pair(state);
    let status = if answer.error.is_some() {
        CommandStatus::Failed
    } else {
        CommandStatus::Succeeded
    };
    let mut tx = crate::db::begin_write(&state.db).await?;
    let done = store::finish_command(
        &mut tx,
        node_id,
        cid,
        status,
        answer.result.as_ref(),
        answer.error.as_deref(),
        &now,
    )
    .await?;
    let cmd = store::get_command(&mut *tx, node_id, cid)
        .await?
        .ok_or(NodeError::NotFound("command"))?;
    if !done {
        return Err(match cmd.status {
            CommandStatus::TimedOut => NodeError::TimedOut(format!(
                "command {cid} timed out before this answer; it was not stored"
            )),
            CommandStatus::Delivered => NodeError::TimedOut(format!(
                "command {cid} is past its deadline; the answer was not stored"
            )),
            s => NodeError::Conflict(format!(
                "command {cid} is {s}; only a delivered command takes an answer"
            )),
        });
    }
    tx.commit().await?;
    state.nodes.wake_result_waiters();
    Ok(cmd)
}

/// Queues a command for a node's agent (`POST /api/nodes/{id}/commands`).
pub async fn enqueue_command(
    state: &NodesState,
    actor: &str,
    node_id: i64,
    input: NewCommand,
) -> Result<NodeCommand> {
    input.validate()?;
    store::get_node(&state.db, node_id)
        .await?
        .ok_or(NodeError::NotFound("node"))?;
    let (now, now_s) = now_pair(state);
    let timeout_s = input.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
    let expires = crate::clock::format(now + time::Duration::seconds(timeout_s));
    let args = input.args.unwrap_or_else(|| json!({}));
    let mut conn = state.db.acquire().await?;
    let cmd = store::insert_command(
        &mut conn,
        InsertCommand {
            node_id,
            command: &input.command,
            args: &args,
            timeout_s,
            created_by: actor,
            now: &now_s,
            expires_at: &expires,
        },
    )
    .await
    .map_err(raced)?;
    drop(conn);
    state.nodes.wake_pollers();
    Ok(cmd)
}

/// A command, after waiting up to `wait_s` for it to reach a final state.
pub async fn command(
    state: &NodesState,
    node_id: i64,
    cid: i64,
    wait_s: f64,
) -> Result<NodeCommand> {
    let wait = std::time::Duration::from_secs_f64(wait_s.clamp(0.0, MAX_WAIT_S));
    let deadline = Instant::now() + wait;
    loop {
        let notified = state.nodes.finished();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let cmd = store::get_command(&state.db, node_id, cid)
            .await?
            .ok_or(NodeError::NotFound("command"))?;
        if cmd.status.is_final() {
            return Ok(cmd);
        }
        let (_, now) = now_pair(state);
        if cmd.expires_at <= now {
            expire_commands(state).await?;
            continue;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || state.nodes.is_closing() {
            return Ok(cmd);
        }
        // Re-check every second: the deadline is on the (possibly manual) clock.
        let _ = tokio::time::timeout(left.min(std::time::Duration::from_secs(1)), notified).await;
    }
}

/// Runs `command` on node `node_id` through its agent and returns the agent's result: queues
/// it durably, then waits for the answer. The entry point for other domains (remote tmux
/// operations, task dispatch).
///
/// Errors: [`NodeError::NotFound`] (no such node), [`NodeError::Invalid`] (bad name, args or
/// timeout), [`NodeError::Unavailable`] (the node is offline or never connected: fails at once
/// instead of waiting out the timeout), [`NodeError::CommandFailed`] (the agent's handler
/// failed; its message), [`NodeError::TimedOut`] (no answer within `timeout_s`).
///
/// Arguments are stored and readable by every reader of node commands: never put a secret in
/// them (a remote session start sends a one-time claim, see `agents::launch`).
pub async fn run_command(
    state: &NodesState,
    actor: &str,
    node_id: i64,
    command: &str,
    args: Value,
    timeout_s: i64,
) -> Result<Value> {
    let n = node(state, node_id).await?;
    if matches!(n.status, NodeStatus::Offline | NodeStatus::Waiting) {
        return Err(NodeError::Unavailable(format!(
            "node '{}' is {}: its agent is not connected",
            n.name, n.status
        )));
    }
    let cmd = enqueue_command(
        state,
        actor,
        node_id,
        NewCommand {
            command: command.to_string(),
            args: Some(args),
            timeout_s: Some(timeout_s),
        },
    )
    .await?;
    wait_for_answer(state, node_id, cmd.id, timeout_s).await
}

async fn wait_for_answer(
    state: &NodesState,
    node_id: i64,
    cid: i64,
    timeout_s: i64,
) -> Result<Value> {
    let deadline = Instant::now() + std::time::Duration::from_secs(timeout_s.max(1) as u64 + 2);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let c = self::command(state, node_id, cid, left.as_secs_f64().min(MAX_WAIT_S)).await?;
        match c.status {
            CommandStatus::Succeeded => return Ok(c.result.unwrap_or(Value::Null)),
            CommandStatus::Failed => {
                return Err(NodeError::CommandFailed(c.error.unwrap_or_default()))
            }
            CommandStatus::TimedOut => {
                return Err(NodeError::TimedOut(
                    c.error.unwrap_or_else(|| "timed out".into()),
                ))
            }
            CommandStatus::Pending | CommandStatus::Delivered if state.nodes.is_closing() => {
                return Err(NodeError::Unavailable(
                    "the server is shutting down; the command stays queued until its deadline"
                        .into(),
                ));
            }
            CommandStatus::Pending | CommandStatus::Delivered if left.is_zero() => {
                // Real time ran out before the clock's deadline (a manual clock): say so.
                return Err(NodeError::TimedOut(format!(
                    "command {} not answered within {timeout_s} s",
                    c.id
                )));
            }
            _ => {}
        }
    }
}

/// Marks unanswered commands past their deadline `timed_out`; wakes whoever waits on them.
pub async fn expire_commands(state: &NodesState) -> Result<u64> {
    let (_, now) = now_pair(state);
    let mut conn = state.db.acquire().await?;
    let n = store::expire_commands(&mut conn, &now).await?;
    drop(conn);
    if n > 0 {
        state.nodes.wake_result_waiters();
    }
    Ok(n)
}
