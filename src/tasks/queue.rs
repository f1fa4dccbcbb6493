//! The queue's in-process runtime, held in `AppState`: the signal that wakes long-polling
//! claimers, the write gate, the local worker supervisor and the server's own URL.
//!
//! Nothing here is a source of truth: the database is. A lost wake-up costs at most one
//! long-poll interval (waiters also wake when a delayed task falls due), and the write gate
//! only orders this process's writers. A task made claimable through another replica wakes
//! the claimers here too ([`TaskRuntime::follow`], over `events::replicas`).

use super::supervisor::Supervisor;
use crate::db::group_commit::GroupCommit;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio::sync::{MutexGuard, Notify};

/// Cheap to clone; every clone shares the same state.
#[derive(Clone)]
pub struct TaskRuntime(Arc<Inner>);

struct Inner {
    /// Notified whenever a task becomes claimable (created, re-queued, released, expired).
    claimable: Notify,
    /// Claim checks begun ([`TaskRuntime::claimable`] calls): each has its wake-up armed.
    checks: std::sync::atomic::AtomicU64,
    /// The queue's writes: the hot ones (enqueue, claim, heartbeat, complete) are group
    /// committed, the rest take its gate. SQLite allows one writer at a time and makes the
    /// others sleep in its busy handler (1 ms, 2 ms, 5 ms, ...); queuing them here instead keeps
    /// claim and complete latency low under load, and sharing commits lets the queue go faster
    /// than one commit per request. Harmless on PostgreSQL.
    writer: GroupCommit,
    supervisor: Supervisor,
    /// `http://127.0.0.1:<port>` once `serve` has bound, for the workers it starts.
    local_url: OnceLock<String>,
    /// Worker id → node, for claims that name their types and tags (the runner's always do)
    /// and so need nothing else from the worker row. Never stale: a worker's node is part of
    /// its identity (`(name, node)` is unique, re-registering keeps both) and worker rows are
    /// never deleted, so this saves a SELECT per claim without any expiry.
    worker_nodes: std::sync::Mutex<HashMap<i64, String>>,
}

impl Inner {
    fn new(replica: &str) -> Self {
        Inner {
            claimable: Notify::default(),
            checks: std::sync::atomic::AtomicU64::new(0),
            writer: GroupCommit::new("task_queue_writer"),
            supervisor: Supervisor::new(replica),
            local_url: OnceLock::new(),
            worker_nodes: std::sync::Mutex::default(),
        }
    }
}

/// Bound on `worker_nodes`; past it the map starts over (workers re-fill it on their claim).
const MAX_CACHED_WORKERS: usize = 10_000;

impl TaskRuntime {
    /// The queue's runtime on replica `replica` (`db::leader::Leadership::replica`): the
    /// supervised workers it keeps are recorded under that id.
    pub fn new(replica: &str) -> TaskRuntime {
        TaskRuntime(Arc::new(Inner::new(replica)))
    }

    /// Wakes every waiting claimer; each re-checks the queue and the losers wait again.
    pub fn wake_claimers(&self) {
        self.0.claimable.notify_waiters();
    }

    /// Wakes this process's claimers when another replica announces a task that may be
    /// claimable now (`created`, back to `pending`), or that its events may have been missed
    /// (`resync`). Called once, by `serve`.
    pub fn follow(&self, events: &crate::events::Events) {
        let runtime = self.clone();
        events.on_remote(Arc::new(move |e: &crate::events::Event| {
            if e.topic == crate::events::Topic::Tasks
                && matches!(e.action.as_ref(), "created" | "pending" | "resync")
            {
                runtime.wake_claimers();
            }
        }));
    }

    /// A future that completes on the next [`wake_claimers`](Self::wake_claimers). Create it
    /// (and `enable` it) before checking the queue, so a task enqueued in between still wakes.
    pub fn claimable(&self) -> tokio::sync::futures::Notified<'_> {
        let woken = self.0.claimable.notified();
        // Counted once the future exists: from then on a wake-up reaches it (`Notify`).
        self.0
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        woken
    }

    /// How many claim checks began so far (each with its wake-up armed): a test waits for it
    /// to move to know a long-poll is listening.
    pub fn checks(&self) -> u64 {
        self.0.checks.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// For writes that are not group committed: one writer at a time with the batches.
    pub async fn write_gate(&self) -> MutexGuard<'_, ()> {
        self.0.writer.gate().await
    }

    /// The group-commit writer for the queue's hot writes (see `db::group_commit`).
    pub fn writer(&self) -> &GroupCommit {
        &self.0.writer
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.0.supervisor
    }

    /// Set once by `serve` after binding. A wildcard bind (0.0.0.0) is reached on loopback.
    pub fn set_local_addr(&self, addr: std::net::SocketAddr) {
        let ip = if addr.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            addr.ip()
        };
        let _ = self.0.local_url.set(format!(
            "http://{}",
            std::net::SocketAddr::new(ip, addr.port())
        ));
    }

    /// The node of worker `id`, if a claim already read its row.
    pub fn worker_node(&self, id: i64) -> Option<String> {
        self.worker_nodes().get(&id).cloned()
    }

    pub fn remember_worker_node(&self, id: i64, node: &str) {
        let mut m = self.worker_nodes();
        if m.len() >= MAX_CACHED_WORKERS {
            m.clear();
        }
        m.insert(id, node.to_string());
    }

    fn worker_nodes(&self) -> std::sync::MutexGuard<'_, HashMap<i64, String>> {
        // Plain data: a panic while holding the lock cannot leave it half-updated.
        self.0
            .worker_nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn local_url(&self) -> Option<&str> {
        self.0.local_url.get().map(String::as_str)
    }
}
