//! The domain's in-process runtime (`AppState.nodes`: start time, long-poll wake-ups, the local
//! node's id, the shutdown flag) and its background loops.
//!
//! Nothing here is a source of truth: the database is. A command queued, or answered, through
//! another replica wakes the long-polls here too: [`NodesRuntime::follow`] announces this
//! process's wake-ups as events (the internal topic `node_commands`, which `events::replicas`
//! carries to the others) and wakes on theirs. A wake-up lost anyway costs at most one
//! re-check interval of the waiting long-poll.

use super::{actions, agent, retention};
use crate::app::AppState;
use crate::clock::Clock;
use crate::config::ServeConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// What this domain's operations reach, and nothing else: the pool, the clock, the node
/// runtime (wake-ups, this host's node), the live events, the default agent interval and the
/// auth domain's state (adding a node mints its `agent` token, removing one revokes it). Built
/// from `AppState` by `FromRef` (app.rs); callers outside a handler use `state.nodes_state()`.
/// Cheap to clone.
#[derive(Clone)]
pub struct NodesState {
    pub db: crate::db::Db,
    pub clock: Clock,
    pub nodes: NodesRuntime,
    pub events: crate::events::Events,
    /// `--node-interval`: the heartbeat interval of an agent that names none (seconds).
    pub node_interval: i64,
    /// For the node tokens minted and revoked here (`actions::add_node_with_token`,
    /// `actions::delete_node`).
    pub auth: crate::auth::AuthState,
}

/// Runtime state of this domain held in `AppState`. Cheap to clone; clones share it.
#[derive(Clone)]
pub struct NodesRuntime(Arc<RuntimeInner>);

struct RuntimeInner {
    /// When this server started (by its clock): node ages count from here at the earliest.
    started: OffsetDateTime,
    /// Notified when a command is queued: long-polling agents re-check their queue.
    queued: Notify,
    /// Notified when a command reaches a final state: callers awaiting a result re-check.
    finished: Notify,
    /// The id of this host's node once the in-process agent registered it.
    local_node: OnceLock<i64>,
    /// Set when `serve` begins shutting down: long-polls answer at once, so a graceful
    /// shutdown does not wait out every agent's 25 s poll.
    closing: AtomicBool,
    /// Where this process's wake-ups are announced to other replicas ([`NodesRuntime::follow`]).
    events: OnceLock<crate::events::Events>,
}

/// The actions of topic `node_commands`: a command was queued, or reached a final state.
const QUEUED: &str = "queued";
const FINISHED: &str = "finished";

impl NodesRuntime {
    pub fn new(_config: &ServeConfig, clock: &Clock) -> Self {
        NodesRuntime(Arc::new(RuntimeInner {
            started: clock.now(),
            queued: Notify::new(),
            finished: Notify::new(),
            local_node: OnceLock::new(),
            closing: AtomicBool::new(false),
            events: OnceLock::new(),
        }))
    }

    pub fn started(&self) -> OffsetDateTime {
        self.0.started
    }

    /// Wakes the agents' long-polls here and in every other replica.
    pub fn wake_pollers(&self) {
        self.0.queued.notify_waiters();
        self.announce(QUEUED);
    }

    /// Create (and `enable`) before checking the queue, so a command queued in between wakes.
    pub fn queued(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.queued.notified()
    }

    /// Wakes the callers awaiting a command's result here and in every other replica.
    pub fn wake_result_waiters(&self) {
        self.0.finished.notify_waiters();
        self.announce(FINISHED);
    }

    fn announce(&self, action: &'static str) {
        if let Some(events) = self.0.events.get() {
            events.emit_many(crate::events::Topic::NodeCommands, action);
        }
    }

    /// Announces this process's wake-ups to other replicas and wakes on theirs (and on a
    /// `resync`: both kinds of waiter re-check). Called once, by `serve`.
    pub fn follow(&self, events: &crate::events::Events) {
        let _ = self.0.events.set(events.clone());
        let runtime = self.clone();
        events.on_remote(Arc::new(move |e: &crate::events::Event| {
            if e.topic != crate::events::Topic::NodeCommands {
                return;
            }
            let action = e.action.as_ref();
            if action == QUEUED || action == "resync" {
                runtime.0.queued.notify_waiters();
            }
            if action == FINISHED || action == "resync" {
                runtime.0.finished.notify_waiters();
            }
        }));
    }

    pub fn finished(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.finished.notified()
    }

    pub fn local_node(&self) -> Option<i64> {
        self.0.local_node.get().copied()
    }

    pub fn set_local_node(&self, id: i64) {
        let _ = self.0.local_node.set(id);
    }

    /// Ends every long-poll now and every later one at once (server shutdown).
    pub fn close(&self) {
        self.0.closing.store(true, Ordering::SeqCst);
        // This process's waiters only: the other replicas go on.
        self.0.queued.notify_waiters();
        self.0.finished.notify_waiters();
    }

    pub fn is_closing(&self) -> bool {
        self.0.closing.load(Ordering::SeqCst)
    }
}

/// Command deadlines are enforced this often (and on every read of a command, so this only
/// bounds how late a `timed_out` shows on lists).
pub const COMMAND_EXPIRY_EVERY: Duration = Duration::from_secs(1);
/// Metric history is rolled up and pruned this often; the roll-up boundary is 24 h, so a row
/// lives at most this much longer in raw form.
pub const RETENTION_EVERY: Duration = Duration::from_secs(300);
/// `/metrics` node gauges are recomputed this often.
pub const GAUGES_EVERY: Duration = Duration::from_secs(5);

/// Node states change with time alone (stale, then offline, when heartbeats stop): they are
/// looked at this often and announced to live pages when they changed.
pub const STATES_EVERY: Duration = Duration::from_secs(5);

/// Announces (topic `nodes`, action `status`) that node states moved since `last`; returns the
/// counts to compare with next time.
pub async fn announce_states(
    state: &NodesState,
    last: Option<Vec<(super::NodeStatus, u64)>>,
) -> Option<Vec<(super::NodeStatus, u64)>> {
    match actions::status_counts(state).await {
        Ok(now) => {
            if last.as_ref().is_some_and(|l| *l != now) {
                state
                    .events
                    .emit_many(crate::events::Topic::Nodes, "status");
            }
            Some(now)
        }
        Err(e) => {
            tracing::debug!(error = %e, "reading node states for live pages failed");
            last
        }
    }
}

/// This domain's background loops, started by `background::spawn_all`: command expiry and
/// metric retention (leader-only), the state announcements to this replica's watchers, the
/// `/metrics` gauges and (unless `--local-node false`) this host's own agent (per replica).
pub fn loops(state: &AppState, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    use crate::background::{run_every, run_every_on_leader};
    let ns = state.nodes_state();
    let (a, b, c) = (ns.clone(), ns.clone(), ns.clone());
    let mut handles = vec![
        tokio::spawn(run_every_on_leader(
            state.loops.clone(),
            "node_command_expiry",
            COMMAND_EXPIRY_EVERY,
            shutdown.clone(),
            move || {
                let state = a.clone();
                async move {
                    if let Err(e) = actions::expire_commands(&state).await {
                        tracing::warn!(error = %e, "node command expiry failed");
                    }
                }
            },
        )),
        tokio::spawn(run_every_on_leader(
            state.loops.clone(),
            "node_metric_retention",
            RETENTION_EVERY,
            shutdown.clone(),
            move || {
                let state = b.clone();
                async move {
                    match retention::tick(&state).await {
                        Ok(r) if r.rolled_up + r.pruned > 0 => tracing::debug!(
                            rolled_up = r.rolled_up,
                            pruned = r.pruned,
                            "node metric history compacted"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "node metric retention failed"),
                    }
                }
            },
        )),
        tokio::spawn(run_every(
            state.loops.clone(),
            "node_states_announced",
            STATES_EVERY,
            shutdown.clone(),
            {
                let state = ns.clone();
                let last = std::sync::Arc::new(tokio::sync::Mutex::new(None));
                move || {
                    let state = state.clone();
                    let last = last.clone();
                    async move {
                        let mut l = last.lock().await;
                        let prev = l.take();
                        *l = announce_states(&state, prev).await;
                    }
                }
            },
        )),
        tokio::spawn(run_every(
            state.loops.clone(),
            "node_gauges",
            GAUGES_EVERY,
            shutdown.clone(),
            move || {
                let state = c.clone();
                async move {
                    if let Err(e) = actions::export_gauges(&state).await {
                        tracing::debug!(error = %e, "node gauges not updated");
                    }
                }
            },
        )),
    ];
    let closing = state.clone();
    let mut closing_signal = shutdown.clone();
    handles.push(tokio::spawn(async move {
        let _ = closing_signal.changed().await;
        closing.nodes.close();
    }));
    if state.config.nodes.local_node {
        let local = agent::Agent::local(state.clone());
        let mut stop = shutdown.clone();
        handles.push(tokio::spawn(async move {
            local
                .run_until(async move {
                    let _ = stop.changed().await;
                })
                .await;
        }));
    }
    handles
}
