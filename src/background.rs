//! The one list of background loops `serve` runs. Each is a named unit with an interval and a
//! `tick()` that tests call directly; all stop on the shared shutdown signal.

use crate::app::AppState;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Expired sessions and finished lockouts are deleted this often. Expiry is enforced on every
/// request regardless (by time comparison), so this only keeps the tables small.
pub const SESSION_PURGE_EVERY: Duration = Duration::from_secs(300);

/// Deletes expired sessions and stale login-throttle rows.
pub async fn purge_sessions_tick(state: &AppState) -> Result<u64, sqlx::Error> {
    let mut conn = state.db.acquire().await?;
    crate::auth::store::purge_expired(&mut conn, &state.clock.now_str()).await
}

/// Starts every loop; they end when `shutdown` turns true.
pub fn spawn_all(state: AppState, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(run_every(
        "session_purge",
        SESSION_PURGE_EVERY,
        shutdown,
        move || {
            let state = state.clone();
            async move {
                match purge_sessions_tick(&state).await {
                    Ok(n) if n > 0 => tracing::debug!(removed = n, "purged expired sessions"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "session purge failed"),
                }
            }
        },
    ))]
}

async fn run_every<F, Fut>(
    name: &'static str,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut tick: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => tick().await,
            _ = shutdown.changed() => break,
        }
    }
    tracing::debug!(loop_name = name, "background loop stopped");
}
