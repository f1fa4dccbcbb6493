//! The one list of background loops `serve` runs. Each is a named unit with an interval and a
//! `tick()` that tests call directly; all stop on the shared shutdown signal.
//!
//! Each loop is one of two kinds, said where it is spawned (ARCHITECTURE.md has the table):
//! - per replica ([`run_every`]): it serves this process (its write-behind buffers, its local
//!   worker processes, its own gauges and watchers) and runs on every `serve`;
//! - leader-only ([`run_every_on_leader`], [`leader_only`]): it decides for the whole database
//!   (reapers, retention, purges, the assigner's dispatcher) and runs only on the replica that
//!   leads (`db::leader`): it starts when this replica becomes leader and stops when it stops
//!   leading. On SQLite the one process always leads.

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
    crate::tasks::actions::reap_expired(&state.task_state()).await
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
    let counts = state.clone();
    let mut handles = vec![tokio::spawn(leadership_log(
        state.clone(),
        shutdown.clone(),
    ))];
    handles.extend(crate::errors::loops(&state, &shutdown));
    handles.extend(crate::nodes::loops(&state, &shutdown));
    handles.extend(crate::llm::loops(&state, &shutdown));
    handles.extend(crate::agents::loops(&state, &shutdown));
    handles.extend(crate::planning::loops(&state, &shutdown));
    handles.extend(crate::autopilot::runner::loops(&state, &shutdown));
    handles.extend([
        tokio::spawn(run_every_on_leader(
            state.loops.clone(),
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
        tokio::spawn(run_every_on_leader(
            state.loops.clone(),
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
        tokio::spawn(run_every_on_leader(
            state.loops.clone(),
            "task_counts_fold",
            crate::tasks::store::FOLD_EVERY,
            shutdown.clone(),
            move || {
                let state = counts.clone();
                async move {
                    if let Err(e) = crate::tasks::store::fold_status_deltas(&state.db).await {
                        tracing::warn!(error = %e, "folding the task count deltas failed");
                    }
                }
            },
        )),
        tokio::spawn(async move {
            let ticking = supervised.clone();
            run_every(
                ticking.loops.clone(),
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
                crate::tasks::supervisor::revoke(&supervised.auth_state(), token_id, &owner).await;
            }
        }),
    ]);
    handles
}

/// Logs every change of this replica's leadership and writes its activity row (actor
/// `system`, entity `replica`): who led when is a question after an incident. A row that cannot
/// be written (leadership is lost when the database is unreachable) is a warning. Nothing on
/// SQLite, where the one process always leads.
async fn leadership_log(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if !state.leadership.is_elected() {
        return;
    }
    let mut leading = state.leadership.watch();
    let mut was = false;
    loop {
        let now = *leading.borrow_and_update();
        if now != was {
            was = now;
            let replica = state.leadership.replica();
            tracing::info!(replica, leader = now, "leadership changed");
            let action = if now { "lead" } else { "stop_leading" };
            let details = serde_json::json!({ "replica": replica });
            let at = state.clock.now_str();
            let written = async {
                let mut conn = state.db.acquire().await?;
                crate::activity::store::record(
                    &mut conn, "system", action, "replica", None, &details, &at,
                )
                .await
            };
            if let Err(e) = written.await {
                tracing::warn!(replica, leader = now, error = %e, "the leadership change's activity row was not written");
            }
        }
        tokio::select! {
            _ = leading.changed() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
}

/// [`run_every`] for a leader-only loop: it ticks only while this replica leads
/// ([`leader_only`]).
pub async fn run_every_on_leader<F, Fut>(
    loops: Loops,
    name: &'static str,
    every: Duration,
    shutdown: watch::Receiver<bool>,
    tick: F,
) where
    F: FnMut() -> Fut + Clone,
    Fut: std::future::Future<Output = ()>,
{
    let inner = loops.clone();
    leader_only(loops, name, shutdown, move |stop| {
        run_every(inner.clone(), name, every, stop, tick.clone())
    })
    .await
}

/// The one gate of the leader-only loops. Waits until this replica leads, then runs
/// `body(stop)`, a loop that must end when `stop` turns true; `stop` turns true when this
/// replica stops leading or `shutdown` does. After a loss it waits to lead again. A tick in
/// flight when leadership goes is finished, not cut (its writes are conditional: see
/// `db::leader`); no new one starts. /health shows the loop `standby` while it waits.
pub async fn leader_only<F, Fut>(
    loops: Loops,
    name: &'static str,
    mut shutdown: watch::Receiver<bool>,
    mut body: F,
) where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut leading = loops.leadership.watch();
    loop {
        loops.standby(name);
        tokio::select! {
            _ = leading.wait_for(|l| *l) => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        let (stop, stop_rx) = watch::channel(false);
        let run = body(stop_rx);
        tokio::pin!(run);
        let ended = tokio::select! {
            _ = &mut run => true,
            _ = leading.wait_for(|l| !*l) => false,
            _ = shutdown.wait_for(|s| *s) => false,
        };
        if !ended {
            let _ = stop.send(true);
            run.await;
        }
        if *shutdown.borrow() {
            break;
        }
    }
    tracing::debug!(loop_name = name, "leader-only loop stopped");
}

/// Runs `tick` every `every` until `shutdown` turns true, on every replica. Domains' loops use
/// it too; a loop that decides for the whole database uses [`run_every_on_leader`].
pub async fn run_every<F, Fut>(
    loops: Loops,
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
    loops.started(name);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if guarded(&loops, name, tick(), &mut shutdown).await.is_none() {
                    interval.reset();
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    tracing::debug!(loop_name = name, "background loop stopped");
}

/// Runs one tick of the loop `name`, catching a panic: the panic is logged as an error with the
/// loop's name, counted (`background_loop_panics_total`), shown by /health, and the loop waits
/// a backoff (1 s doubling to [`MAX_BACKOFF`] while ticks keep panicking, cut short by
/// `shutdown`) before it goes on. `None` when the tick panicked.
pub async fn guarded<Fut: std::future::Future>(
    loops: &Loops,
    name: &'static str,
    tick: Fut,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Fut::Output> {
    use futures_util::FutureExt as _;
    match std::panic::AssertUnwindSafe(tick).catch_unwind().await {
        Ok(v) => {
            loops.ticked(name);
            Some(v)
        }
        Err(panic) => {
            let message = crate::db::group_commit::panic_message(panic.as_ref());
            let wait = loops.panicked(name, &message);
            metrics::counter!("background_loop_panics_total", "loop" => name).increment(1);
            tracing::error!(loop_name = name, panic = %message, retry_in_s = wait.as_secs(), "a background loop's tick panicked; the loop goes on after a backoff");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            None
        }
    }
}

/// The longest wait after a panicking tick.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What `serve` knows about its loops, for /health: each loop's ticks and panics. Cheap to
/// clone; one per server.
#[derive(Clone)]
pub struct Loops {
    states: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<&'static str, LoopState>>>,
    /// Whether this replica leads: what [`leader_only`] waits on.
    leadership: crate::db::leader::Leadership,
}

impl Default for Loops {
    /// Loops of a process that always leads (SQLite, unit tests).
    fn default() -> Loops {
        Loops::new(crate::db::leader::Leadership::always())
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoopState {
    /// `up`; `restarting` while it waits out the backoff after a panic; `standby` for a
    /// leader-only loop while this replica does not lead.
    pub status: &'static str,
    pub ticks: u64,
    pub panics: u64,
    /// Panics since the last tick that finished.
    #[serde(skip)]
    pub consecutive: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_panic: Option<String>,
}

impl Loops {
    pub fn new(leadership: crate::db::leader::Leadership) -> Loops {
        Loops {
            states: Default::default(),
            leadership,
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut std::collections::BTreeMap<&'static str, LoopState>) -> T,
    ) -> T {
        let mut m = self.states.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m)
    }

    /// A leader-only loop waits for leadership.
    fn standby(&self, name: &'static str) {
        self.with(|m| {
            m.entry(name).or_default().status = "standby";
        });
    }

    pub fn started(&self, name: &'static str) {
        self.with(|m| {
            m.entry(name).or_default().status = "up";
        });
    }

    fn ticked(&self, name: &'static str) {
        self.with(|m| {
            let l = m.entry(name).or_default();
            l.status = "up";
            l.ticks += 1;
            l.consecutive = 0;
        });
    }

    /// Records a panic; returns how long the loop waits before its next tick.
    fn panicked(&self, name: &'static str, message: &str) -> Duration {
        self.with(|m| {
            let l = m.entry(name).or_default();
            l.status = "restarting";
            l.panics += 1;
            l.consecutive = l.consecutive.saturating_add(1);
            l.last_panic = Some(message.chars().take(500).collect());
            crate::backoff::delay(Duration::from_secs(1), MAX_BACKOFF, l.consecutive - 1, 1.0)
        })
    }

    /// Every loop by name.
    pub fn snapshot(&self) -> std::collections::BTreeMap<&'static str, LoopState> {
        self.with(|m| m.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_tick_is_counted_and_the_loop_goes_on() {
        let loops = Loops::default();
        let (stop, rx) = watch::channel(false);
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let task = tokio::spawn(run_every(
            loops.clone(),
            "flaky",
            Duration::from_millis(100),
            rx,
            move || {
                let c = c.clone();
                async move {
                    if c.fetch_add(1, Ordering::SeqCst) == 1 {
                        panic!("tick two breaks");
                    }
                }
            },
        ));
        // Tick one works; tick two panics; the loop waits 1 s and ticks again.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let s = loops.snapshot()["flaky"].clone();
        assert_eq!((s.status, s.panics), ("restarting", 1), "{s:?}");
        assert_eq!(s.last_panic.as_deref(), Some("tick two breaks"));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let s = loops.snapshot()["flaky"].clone();
        assert_eq!(s.status, "up", "{s:?}");
        assert!(calls.load(Ordering::SeqCst) >= 3, "the loop went on");
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_only_loop_ticks_only_while_this_replica_leads() {
        let leadership = crate::db::leader::Leadership::always();
        leadership.set(false);
        let loops = Loops::new(leadership.clone());
        let (stop, rx) = watch::channel(false);
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let task = tokio::spawn(run_every_on_leader(
            loops.clone(),
            "reaper",
            Duration::from_millis(100),
            rx,
            move || {
                let c = c.clone();
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            },
        ));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0, "no tick while not leading");
        assert_eq!(loops.snapshot()["reaper"].status, "standby");
        leadership.set(true);
        tokio::time::sleep(Duration::from_millis(350)).await;
        let led = calls.load(Ordering::SeqCst);
        assert!((3..=5).contains(&led), "ticks while leading: {led}");
        assert_eq!(loops.snapshot()["reaper"].status, "up");
        leadership.set(false);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            led,
            "no tick after leadership is lost"
        );
        assert_eq!(loops.snapshot()["reaper"].status, "standby");
        leadership.set(true);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            calls.load(Ordering::SeqCst) > led,
            "ticks again on leading again"
        );
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let loops = Loops::default();
        let waits: Vec<u64> = (0..9)
            .map(|_| loops.panicked("x", "boom").as_secs())
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        loops.ticked("x");
        assert_eq!(loops.panicked("x", "again").as_secs(), 1);
    }
}
