//! This domain's background loop (started by `background::spawn_all`, unless `--assigner
//! false`): the assigner's dispatcher and the permission watch, one after the other on one
//! task, so they never read or press keys in a pane at the same time (both hold the dispatch
//! lock).
//!
//! - The dispatcher ticks every `--dispatch-interval-ms` and at once when woken (a prompt
//!   queued, a hook event), so an idle session gets a queued prompt well within a second. With
//!   prompts queued or running its tick reads every pane and records permission prompts.
//! - The watch covers the rest of the time: every agent pane is read for permission prompts
//!   whether or not a pattern is enabled or a prompt is in flight, so the Interactions panel
//!   shows every prompt a person must answer. A hook `Notification` (Claude Code's "needs
//!   your permission") wakes the loop, so that pane is read at once; pane reads every
//!   [`WATCH_EVERY`] are the fallback for agents without hooks. Its cost is bounded: one
//!   `list-sessions` and one capture per agent pane per watch tick, shells not captured, and
//!   nothing written unless a prompt is on screen.

use super::assigner::{self, dispatch};
use super::route::NodeRef;
use super::{interactions, sessions, AgentsError};
use crate::agents::AgentsState;
use crate::app::AppState;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the watch reads the agent panes while nothing is queued (a hook event reads them
/// at once).
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// One watch tick: with prompts queued or running the dispatcher's tick has read the panes
/// already; otherwise every agent pane is read and its permission prompt recorded (and decided
/// by a pattern when one applies). Returns the interactions decided by a pattern.
pub async fn watch_tick(state: &AgentsState) -> Result<Vec<i64>, AgentsError> {
    if !assigner::store::idle_queue(&state.db).await? {
        return Ok(Vec::new());
    }
    let _one_at_a_time = state.agents.dispatch_lock().await;
    let live = sessions::observe_agents(state, &NodeRef::Local).await?;
    interactions::scan(state, &live).await
}

/// The dispatcher and permission watch loop's name (logs, /health).
const LOOP_NAME: &str = "assigner_dispatch";

/// The dispatcher and the permission watch, leader-only (`background::leader_only`): they
/// decide for the whole queue, and two replicas typing into panes would race. A claim is a
/// conditional UPDATE made before any key (`assigner::store::claim`), so a prompt is typed
/// once even in the moment two replicas both believe they lead.
pub fn loops(state: &AppState, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    if !state.config.agents.assigner {
        return Vec::new();
    }
    let (loops, agents) = (state.loops.clone(), state.agents_state());
    vec![tokio::spawn(crate::background::leader_only(
        state.loops.clone(),
        LOOP_NAME,
        shutdown.clone(),
        move |stop| dispatch_loop(loops.clone(), agents.clone(), stop),
    ))]
}

/// The loop itself: runs until `shutdown` (or the loss of leadership) turns it true.
async fn dispatch_loop(
    loops: crate::background::Loops,
    state: AgentsState,
    mut shutdown: watch::Receiver<bool>,
) {
    let every = Duration::from_millis(state.config.agents.dispatch_interval_ms.max(10));
    use crate::background::guarded;
    let mut last_watch: Option<tokio::time::Instant> = None;
    let mut woken = true;
    loops.started(LOOP_NAME);
    loop {
        let tick = guarded(&loops, LOOP_NAME, dispatch::tick(&state), &mut shutdown);
        match tick.await.unwrap_or(Ok(dispatch::TickReport::default())) {
            Ok(r) if r != dispatch::TickReport::default() => {
                tracing::info!(report = ?r, "assigner dispatch")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "assigner dispatch failed"),
        }
        if woken || last_watch.is_none_or(|t| t.elapsed() >= WATCH_EVERY) {
            let tick = guarded(&loops, LOOP_NAME, watch_tick(&state), &mut shutdown);
            match tick.await.unwrap_or(Ok(Vec::new())) {
                Ok(d) if !d.is_empty() => {
                    tracing::info!(decided = ?d, "permission prompts decided by patterns")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "permission watch failed"),
            }
            last_watch = Some(tokio::time::Instant::now());
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => woken = false,
            _ = state.agents.dispatcher_woken() => woken = true,
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    tracing::debug!(loop_name = LOOP_NAME, "background loop stopped");
}
