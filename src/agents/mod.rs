//! Agent sessions: the pane classifier, hooks, the assigner (prompt queue and dispatcher),
//! permission interactions and patterns. Issue 5. The tmux driver, the node half of a session
//! start and the task queue's `tmux` type are the `tmux` leaf (`tmux/mod.rs`, `spawn.rs`,
//! `task.rs`).
//!
//! Files: `route.rs` the one place a tmux operation is sent to the local driver or a remote node;
//! `classify.rs` the pane classifier and its built-in pattern table; `sessions.rs` tracking
//! sessions and their state (pane readings and hook events, each change with its signal);
//! `store.rs` SQL for sessions and pane patterns; `api.rs` / `pages.rs` HTTP; `assign_pages.rs`
//! the Assign box the item pages include (the prompts sent for an item; turning an item into a
//! prompt is the `assign` module's, which hears of a completed prompt through
//! [`AgentsRuntime::on_prompt_done`]: this domain knows no work item); `loops.rs` the background loop
//! (the assigner's dispatcher and the permission watch over every agent pane).

pub mod agents_api;
pub mod api;
pub mod assign_pages;
pub mod assigner;
pub mod classify;
pub mod config;
pub mod hooks;
pub mod interactions;
pub mod interactions_api;
pub mod interactions_pages;
pub mod launch;
pub mod loops;
pub mod pages;
pub mod pattern_api;
pub mod pattern_pages;
pub mod permission_actions;
pub mod permission_store;
pub mod permissions;
pub mod route;
pub mod sessions;
pub mod sessions_api;
pub mod store;

pub use config::AgentsConfig;
pub use loops::loops;

use crate::config::ServeConfig;
use crate::validate::Invalid;
use classify::Classifier;
use std::sync::{Arc, RwLock};

crate::text_enum! {
    /// A session's place in the delegation hierarchy (SPEC.md "Session Hierarchy").
    pub enum SessionRole ("session role") {
        HighLevel = "high_level",
        Manager = "manager",
        Worker = "worker",
    }
}

/// Every failure of this domain; mapped to HTTP in `api.rs`.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this (a capability the route's extractor cannot see, e.g. what
    /// a launch would run).
    #[error("{0}")]
    Forbidden(String),
    #[error("cannot move {what} from '{from}' to '{to}'")]
    Transition {
        what: &'static str,
        from: String,
        to: String,
        allowed: Vec<String>,
    },
    /// A remote node's command channel answered with an error (offline, timed out, failed).
    #[error(transparent)]
    Node(#[from] crate::nodes::actions::NodeError),
    #[error(transparent)]
    Tmux(#[from] crate::tmux::TmuxError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<crate::tmux::spawn::SpawnError> for AgentsError {
    fn from(e: crate::tmux::spawn::SpawnError) -> Self {
        use crate::tmux::spawn::SpawnError as S;
        match e {
            S::Invalid(i) => AgentsError::Invalid(i),
            S::Conflict(m) => AgentsError::Conflict(m),
            S::Tmux(t) => AgentsError::Tmux(t),
        }
    }
}

impl From<Invalid> for AgentsError {
    fn from(e: Invalid) -> Self {
        AgentsError::Invalid(e)
    }
}

/// What the agents domain's operations reach, built from `AppState` by `FromRef` (app.rs):
/// handlers take `State<AgentsState>`, other callers `state.agents_state()`. Sessions on
/// other nodes are reached through the nodes domain's state, a session's own token is minted
/// and revoked through auth's. Cheap to clone.
#[derive(Clone)]
pub struct AgentsState {
    pub db: crate::db::Db,
    pub clock: crate::clock::Clock,
    /// Settings (`config.agents`, the data dir, the worker binary); never mutated.
    pub config: std::sync::Arc<ServeConfig>,
    pub agents: AgentsRuntime,
    pub events: crate::events::Events,
    pub nodes: crate::nodes::NodesState,
    pub auth: crate::auth::AuthState,
    /// Only for the server's own URL (`local_url`, set once the listener binds): links in
    /// prompts and a session's dashboard URL.
    pub tasks: crate::tasks::TaskRuntime,
}

/// Runtime state of this domain held in `AppState`.
#[derive(Clone)]
pub struct AgentsRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    /// The local tmux server (`--tmux-socket`).
    tmux: crate::tmux::Tmux,
    /// The compiled classifier (user rows + built-ins); `None` until loaded and after a
    /// pattern change.
    classifier: RwLock<Option<Arc<Classifier>>>,
    /// Unverified built-in classifier rows turned on by name (`--classifier-enable`).
    classifier_enable: Vec<String>,
    /// Wakes the dispatcher at once (a prompt queued, a hook event) instead of at its next tick.
    wake: tokio::sync::Notify,
    /// Dispatcher ticks never overlap (the loop, tests and API-triggered ticks share it).
    dispatch: tokio::sync::Mutex<()>,
    /// What runs after a prompt completes ([`AgentsRuntime::on_prompt_done`]).
    prompt_done: RwLock<Vec<PromptDone>>,
}

/// A follow-up of a completed prompt (its id), registered at start by a module above this
/// domain (`assign::register`).
pub type PromptDone = Arc<
    dyn Fn(AgentsState, i64) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>>
        + Send
        + Sync,
>;

impl AgentsRuntime {
    pub fn new(config: &ServeConfig) -> Self {
        AgentsRuntime {
            inner: Arc::new(Inner {
                tmux: crate::tmux::Tmux::new(config.agents.tmux_socket.as_deref()),
                classifier: RwLock::new(None),
                classifier_enable: config.agents.classifier_enable.clone(),
                wake: tokio::sync::Notify::new(),
                dispatch: tokio::sync::Mutex::new(()),
                prompt_done: Default::default(),
            }),
        }
    }

    /// Adds a follow-up every completed prompt runs (after its completion is committed).
    pub fn on_prompt_done(&self, f: PromptDone) {
        self.inner
            .prompt_done
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    /// The registered follow-ups, in the order they were added.
    pub fn prompt_done_hooks(&self) -> Vec<PromptDone> {
        self.inner
            .prompt_done
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn tmux(&self) -> &crate::tmux::Tmux {
        &self.inner.tmux
    }

    /// The classifier with the stored user rows, compiled once per change of those rows.
    pub async fn classifier(&self, db: &crate::db::Db) -> Result<Arc<Classifier>, sqlx::Error> {
        if let Some(c) = self.inner.classifier.read().ok().and_then(|g| g.clone()) {
            return Ok(c);
        }
        let user = store::list_pane_patterns(db).await?;
        let (c, bad) = Classifier::new(user, &self.inner.classifier_enable);
        for name in classify::unknown_enable_names(&self.inner.classifier_enable) {
            tracing::warn!(%name, "--classifier-enable names no built-in row or agent");
        }
        for b in bad {
            tracing::warn!(pattern = %b.name, error = %b.error, "stored pane pattern skipped");
        }
        let c = Arc::new(c);
        if let Ok(mut g) = self.inner.classifier.write() {
            *g = Some(c.clone());
        }
        Ok(c)
    }

    /// Held for the whole of a dispatcher tick.
    pub async fn dispatch_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.dispatch.lock().await
    }

    /// Asks the dispatcher to look at the queue now.
    pub fn wake_dispatcher(&self) {
        self.inner.wake.notify_one();
    }

    /// Resolves when someone called [`AgentsRuntime::wake_dispatcher`].
    pub async fn dispatcher_woken(&self) {
        self.inner.wake.notified().await;
    }

    /// Drops the compiled classifier after the user rows changed.
    pub fn patterns_changed(&self) {
        if let Ok(mut g) = self.inner.classifier.write() {
            *g = None;
        }
    }
}
