//! Error aggregation: ingestion (JSON and Sentry), grouping by fingerprint, groups, occurrences, bugs from errors. Issue 3.

pub mod api;
pub mod config;
pub mod pages;

pub use config::ErrorsConfig;

use crate::app::AppState;
use crate::config::ServeConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runtime state of this domain held in `AppState` (caches, channels, handles).
#[derive(Clone, Default)]
pub struct ErrorsRuntime {}

impl ErrorsRuntime {
    pub fn new(_config: &ServeConfig) -> Self {
        Self::default()
    }
}

/// This domain's background loops, started by `background::spawn_all`.
pub fn loops(_state: &AppState, _shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    Vec::new()
}
