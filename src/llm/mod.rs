//! LLM gateway: providers, failover, circuit breakers, cost ledger, budgets, `/v1/messages` and `/v1/chat/completions`, and `UnifiedLlmClient`. Issue 7.

pub mod api;
pub mod config;
pub mod pages;

pub use config::LlmConfig;

use crate::app::AppState;
use crate::config::ServeConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runtime state of this domain held in `AppState` (caches, channels, handles).
#[derive(Clone, Default)]
pub struct LlmRuntime {}

impl LlmRuntime {
    pub fn new(_config: &ServeConfig) -> Self {
        Self::default()
    }
}

/// This domain's background loops, started by `background::spawn_all`.
pub fn loops(_state: &AppState, _shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    Vec::new()
}
