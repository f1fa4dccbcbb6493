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
    let now = state.clock.now();
    let window = crate::auth::throttle::Limits::of(&state.config).lockout;
    let mut conn = state.db.acquire().await?;
    crate::auth::store::purge_expired(
        &mut conn,
        &crate::clock::format(now),
        &crate::clock::format(now - window),
    )
    .await
}

/// Expired task leases are looked for this often. A dead worker's task waits its lease
/// length plus at most this before it is handed out again; the query is one indexed range.
pub const LEASE_REAP_EVERY: Duration = Duration::from_secs(2);

/// Sends running tasks whose lease ran out back to the queue (or to `dead`). Returns how many.
pub async fn lease_reaper_tick(
    state: &AppState,
) -> Result<usize, crate::tasks::actions::TaskError> {
    crate::tasks::actions::reap_expired(state).await
}

/// Local worker processes are checked this often: a crash is noticed within a second, and the
/// restart backoff (1 s doubling to 60 s) is counted in these steps.
pub const WORKER_SUPERVISION_EVERY: Duration = Duration::from_secs(1);

/// Notices exited supervised workers and restarts them after their backoff.
pub async fn worker_supervision_tick(state: &AppState) -> usize {
    state.tasks.supervisor().tick().await
}

/// Starts every loop; they end when `shutdown` turns true.
pub fn spawn_all(state: AppState, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let purge = state.clone();
    let reaper = state.clone();
    let supervised = state.clone();
    let mut handles = Vec::new();
    handles.extend(crate::errors::loops(&state, &shutdown));
    handles.extend(crate::nodes::loops(&state, &shutdown));
    handles.extend(crate::llm::loops(&state, &shutdown));
    handles.extend(crate::agents::loops(&state, &shutdown));
    handles.extend(crate::events::loops(&state, &shutdown));
    handles.extend([
        tokio::spawn(run_every(
            "session_purge",
            SESSION_PURGE_EVERY,
            shutdown.clone(),
            move || {
                let state = purge.clone();
                async move {
                    match purge_sessions_tick(&state).await {
                        Ok(n) if n > 0 => tracing::debug!(removed = n, "purged expired sessions"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "session purge failed"),
                    }
                }
            },
        )),
        tokio::spawn(run_every(
            "lease_reaper",
            LEASE_REAP_EVERY,
            shutdown.clone(),
            move || {
                let state = reaper.clone();
                async move {
                    match lease_reaper_tick(&state).await {
                        Ok(n) if n > 0 => {
                            tracing::info!(requeued = n, "expired task leases reaped")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "lease reaper failed"),
                    }
                }
            },
        )),
        tokio::spawn(async move {
            let ticking = supervised.clone();
            run_every(
                "worker_supervision",
                WORKER_SUPERVISION_EVERY,
                shutdown,
                move || {
                    let state = ticking.clone();
                    async move {
                        worker_supervision_tick(&state).await;
                    }
                },
            )
            .await;
            // serve is stopping: so do the workers it started (they release their tasks).
            for (token_id, owner) in supervised.tasks.supervisor().stop_all().await {
                crate::tasks::supervisor::revoke(&supervised, token_id, &owner).await;
            }
        }),
    ]);
    handles
}

/// Runs `tick` every `every` until `shutdown` turns true. Domains' loops use it too.
pub async fn run_every<F, Fut>(
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
