//! Agent sessions: the tmux driver, the pane classifier, hooks, the assigner (prompt queue and dispatcher), permission interactions and patterns. Issue 5.

pub mod api;
pub mod classify;
pub mod config;
pub mod pages;
pub mod tmux;
pub mod tmux_task;

pub use config::AgentsConfig;

use crate::app::AppState;
use crate::config::ServeConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runtime state of this domain held in `AppState` (caches, channels, handles).
#[derive(Clone, Default)]
pub struct AgentsRuntime {}

impl AgentsRuntime {
    pub fn new(_config: &ServeConfig) -> Self {
        Self::default()
    }
}

/// This domain's background loops, started by `background::spawn_all`.
pub fn loops(_state: &AppState, _shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    Vec::new()
}
