//! The worker runtime behind `architect worker` (and any program that registers its own
//! handlers): register, then claim → run → report, up to `concurrency` tasks at a time.
//!
//! * Claims long-poll (`wait_s`), so an idle worker costs one open request, not a busy loop.
//! * Each running task heartbeats its lease every [`TASK_HEARTBEAT_MAX`] at most; a 409 on a
//!   heartbeat means the lease is gone (cancelled, or expired and handed to someone else), so
//!   the handler is stopped (its process tree killed) and its result is dropped, never reported.
//! * Completions go through one reporter per worker: results that finish while its previous
//!   report is in flight share the next request (`POST /api/tasks/complete`), which also leases
//!   a next task for each slot that wants one, so a busy worker costs the queue one request
//!   per batch of tasks, and an idle one a request per task, never more.
//! * Reports that fail in transit are retried while the lease may still be live.
//! * Shutdown (SIGTERM, Ctrl-C, or the future given to [`Worker::run_until`]) stops claiming,
//!   lets running tasks finish for `shutdown_grace`, then stops them and releases their leases
//!   so another worker takes them at once.

use super::handlers::{HandlerResult, HandlerSettings, Registry, TaskContext, TaskFailure};
use super::payload::BuiltinType;
use super::*;
use crate::client::{Client, ClientError};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

mod job;
mod report;
use job::*;
use report::*;

/// A running task renews its lease at least this often; it is also how quickly a cancel
/// reaches the process (the cancel shows as a refused heartbeat).
pub const TASK_HEARTBEAT_MAX: Duration = Duration::from_secs(2);
/// The worker's own sign of life; the server shows it offline after 45 s of silence.
pub const WORKER_HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A handler that ignores its cancel signal is abandoned this long after it.
const HANDLER_GRACE: Duration = Duration::from_secs(5);
/// Longest pause between attempts to reach an unreachable server.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a worker runs. [`WorkerOptions::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub dashboard: String,
    pub token: String,
    /// Default `<host>-<pid>`. Re-registering the same name on the same node keeps the id.
    pub name: String,
    /// Default: the host name.
    pub node: String,
    /// Types to claim. Default: every registered handler, less the built-in types unless
    /// `settings.allow_exec` (they all run programs: [`BuiltinType::needs_exec`]).
    pub types: Option<Vec<String>>,
    /// Tags this worker offers (a task with tags needs all of them).
    pub tags: Vec<String>,
    pub concurrency: usize,
    pub lease_s: i64,
    /// Long-poll length of each claim.
    pub wait_s: f64,
    /// How long running tasks may finish after a shutdown signal before they are stopped.
    pub shutdown_grace: Duration,
    pub settings: HandlerSettings,
}

/// This machine's host name ("localhost" when it cannot be read).
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl WorkerOptions {
    pub fn new(dashboard: &str, token: &str) -> WorkerOptions {
        let node = host_name();
        WorkerOptions {
            dashboard: dashboard.to_string(),
            token: token.to_string(),
            name: format!("{node}-{}", std::process::id()),
            node,
            types: None,
            tags: Vec::new(),
            concurrency: 1,
            lease_s: DEFAULT_LEASE_S,
            wait_s: 20.0,
            shutdown_grace: Duration::from_secs(30),
            settings: HandlerSettings::default(),
        }
    }
}

/// What a run did, returned when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub worker_id: i64,
    pub completed: u64,
    pub failed: u64,
    /// Given back at shutdown.
    pub released: u64,
    /// Lease lost (cancelled or expired) or the report was refused: nothing recorded.
    pub lost: u64,
}

enum Ran {
    Completed,
    Failed,
    Released,
    Lost,
}

/// A task-queue worker: a handler registry plus the claim loop.
pub struct Worker {
    options: WorkerOptions,
    registry: Registry,
}

impl Worker {
    /// A worker with the built-in handlers.
    pub fn new(options: WorkerOptions) -> Worker {
        Worker {
            options,
            registry: Registry::with_builtins(),
        }
    }

    /// Adds a handler for a task type (SPEC.md's `register_handler`).
    pub fn register_handler<F, Fut>(&mut self, task_type: &str, handler: F) -> &mut Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.registry.register(task_type, handler);
        self
    }

    /// The capabilities this worker reports at registration.
    pub fn capabilities(&self) -> Vec<WorkerCapability> {
        let mut c = Vec::new();
        if self.options.settings.allow_exec {
            c.push(WorkerCapability::Exec);
        }
        c
    }

    /// The types this worker will claim, or why the options are contradictory. Never empty: an
    /// empty list would ask the server for tasks of any type.
    pub fn claim_types(&self) -> Result<Vec<String>, String> {
        let allow = self.options.settings.allow_exec;
        let gated = |t: &str| t.parse::<BuiltinType>().is_ok_and(BuiltinType::needs_exec);
        let types: Vec<String> = match &self.options.types {
            None => self
                .registry
                .types()
                .into_iter()
                .filter(|t| allow || !gated(t))
                .collect(),
            Some(types) => {
                for t in types {
                    if !self.registry.has(t) {
                        return Err(format!(
                            "no handler for task type '{t}'; this worker knows: {}",
                            self.registry.types().join(", ")
                        ));
                    }
                    if gated(t) && !allow {
                        return Err(format!(
                            "'{t}' tasks run programs on this machine: start the worker with --allow-exec to run them"
                        ));
                    }
                }
                types.clone()
            }
        };
        if types.is_empty() {
            return Err(
                "this worker may run no task type: every built-in type runs programs on this machine, so start it with --allow-exec (or register custom handlers)".into(),
            );
        }
        Ok(types)
    }

    /// Runs until `shutdown` completes, then stops gracefully.
    pub async fn run_until<S: Future<Output = ()> + Send>(
        self,
        shutdown: S,
    ) -> anyhow::Result<RunSummary> {
        let types = self.claim_types().map_err(anyhow::Error::msg)?;
        let capabilities = self.capabilities();
        let o = Arc::new(self.options);
        let registry = Arc::new(self.registry);
        let settings = Arc::new(o.settings.clone());
        let client = Client::new(&o.dashboard, Some(&o.token));
        tokio::pin!(shutdown);
        let register = RegisterWorker {
            name: o.name.clone(),
            node: o.node.clone(),
            types: types.clone(),
            tags: o.tags.clone(),
            capabilities,
            concurrency: i64::try_from(o.concurrency).unwrap_or(1),
            pid: Some(i64::from(std::process::id())),
            version: Some(crate::VERSION.to_string()),
        };
        let Some(mut worker) = register_until(&client, &register, &mut shutdown).await? else {
            return Ok(RunSummary::default());
        };
        tracing::info!(worker_id = worker.id, name = %worker.name, types = %types.join(","), concurrency = o.concurrency, "worker registered; claiming tasks");
        let beat = tokio::spawn(heartbeat_worker(client.clone(), worker.id));
        let (stop_tx, stop_rx) = watch::channel(false);
        // Turns true when shutdown begins: slots stop leasing their next task.
        let (draining_tx, draining_rx) = watch::channel(false);
        let next_claim = ClaimRequest {
            worker_id: worker.id,
            types: Some(types.clone()),
            tags: Some(o.tags.clone()),
            wait_s: None,
            lease_s: Some(o.lease_s),
            max_tasks: None,
        };
        let (reports, report_rx) = mpsc::unbounded_channel();
        // The worker's id as of now (a re-registration may change it).
        let worker_id = Arc::new(std::sync::atomic::AtomicI64::new(worker.id));
        let reporter = tokio::spawn(report_completions(
            client.clone(),
            next_claim.clone(),
            worker_id.clone(),
            o.lease_s,
            report_rx,
        ));
        let slots = Arc::new(Semaphore::new(o.concurrency.max(1)));
        // Each entry is a slot: its first task and the ones leased with each completion.
        let mut running: JoinSet<Vec<Ran>> = JoinSet::new();
        let mut summary = RunSummary::default();
        let mut backoff = crate::backoff::Backoff::new(Duration::from_millis(500), MAX_BACKOFF);
        loop {
            while let Some(r) = running.try_join_next() {
                tally(&mut summary, r);
            }
            let first = tokio::select! {
                p = slots.clone().acquire_owned() => p?,
                _ = &mut shutdown => break,
            };
            // Claim for every free slot in one request (a round trip per batch instead of per
            // task); unused permits go back when `permits` is dropped.
            let mut permits = vec![first];
            while permits.len() < MAX_CLAIM_BATCH as usize {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let req = ClaimRequest {
                worker_id: worker.id,
                types: Some(types.clone()),
                tags: Some(o.tags.clone()),
                wait_s: Some(o.wait_s),
                lease_s: Some(o.lease_s),
                // Left out for a single slot, so the request stays the plain claim.
                max_tasks: (permits.len() > 1).then_some(permits.len() as i64),
            };
            // Dropping an in-flight claim at shutdown is safe: if the server leased a task in
            // that instant, the lease runs out and the task is handed out again.
            let answer = tokio::select! {
                a = client.claim_task(&req) => a,
                _ = &mut shutdown => break,
            };
            match answer {
                Ok(claim) => {
                    let claimed = claim.into_tasks();
                    if !claimed.is_empty() {
                        backoff.reset();
                    }
                    // The server leases at most `max_tasks`, so there is a permit for each.
                    for (claimed, permit) in claimed.into_iter().zip(permits) {
                        tracing::info!(task_id = claimed.task.id, task_type = %claimed.task.task_type, attempt = claimed.task.attempts, "claimed");
                        let job = Job {
                            client: client.clone(),
                            registry: registry.clone(),
                            settings: settings.clone(),
                            lease_s: o.lease_s,
                            stop: stop_rx.clone(),
                            draining: draining_rx.clone(),
                            reports: reports.clone(),
                        };
                        running.spawn(async move {
                            // The slot keeps going while each completion leases a next task.
                            let mut ran = Vec::new();
                            let mut task = Some(claimed);
                            while let Some(t) = task.take() {
                                let (r, next) = job.run(t).await;
                                ran.push(r);
                                task = next;
                            }
                            drop(permit);
                            ran
                        });
                    }
                }
                Err(ClientError::Api {
                    status: 422,
                    field: Some(f),
                    ..
                }) if f == "worker_id" => {
                    // The server no longer knows us (e.g. a fresh database): register again.
                    match register_until(&client, &register, &mut shutdown).await? {
                        Some(w) => {
                            worker_id.store(w.id, Ordering::SeqCst);
                            worker = w;
                        }
                        None => break,
                    }
                }
                Err(e) => {
                    let wait = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "claim failed");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {},
                        _ = &mut shutdown => break,
                    }
                }
            }
        }
        let _ = draining_tx.send(true);
        // Count only tasks still running, not finished ones the loop has not reaped yet.
        while let Some(r) = running.try_join_next() {
            tally(&mut summary, r);
        }
        tracing::info!(
            running = running.len(),
            grace_s = o.shutdown_grace.as_secs(),
            "stopping: no new claims; letting running tasks finish"
        );
        let finish = async {
            while let Some(r) = running.join_next().await {
                tally(&mut summary, r);
            }
        };
        if tokio::time::timeout(o.shutdown_grace, finish)
            .await
            .is_err()
        {
            tracing::warn!("grace period over: stopping running tasks and releasing them");
            let _ = stop_tx.send(true);
            while let Some(r) = running.join_next().await {
                tally(&mut summary, r);
            }
        }
        beat.abort();
        // Every slot has its answer by now; nothing is left in the reporter.
        reporter.abort();
        if let Err(e) = client.heartbeat_worker(worker.id, true).await {
            tracing::warn!(error = %e, "could not tell the server this worker stopped");
        }
        summary.worker_id = worker.id;
        tracing::info!(?summary, "worker stopped");
        Ok(summary)
    }
}

fn tally(s: &mut RunSummary, r: Result<Vec<Ran>, tokio::task::JoinError>) {
    let Ok(ran) = r else {
        s.lost += 1;
        return;
    };
    for r in ran {
        match r {
            Ran::Completed => s.completed += 1,
            Ran::Failed => s.failed += 1,
            Ran::Released => s.released += 1,
            Ran::Lost => s.lost += 1,
        }
    }
}

/// Registers, retrying with backoff while the server is unreachable. `None` if shut down first.
async fn register_until<S: Future<Output = ()>>(
    client: &Client,
    w: &RegisterWorker,
    shutdown: &mut std::pin::Pin<&mut S>,
) -> anyhow::Result<Option<super::Worker>> {
    let mut backoff = crate::backoff::Backoff::new(Duration::from_millis(500), MAX_BACKOFF);
    loop {
        match client.register_worker(w).await {
            Ok(worker) => return Ok(Some(worker)),
            // Wrong token or scope: retrying will not help.
            Err(
                e @ ClientError::Api {
                    status: 400..=499, ..
                },
            ) => {
                anyhow::bail!("the server refused to register this worker: {e}")
            }
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot register yet");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {},
                    _ = shutdown.as_mut() => return Ok(None),
                }
            }
        }
    }
}

async fn heartbeat_worker(client: Client, id: i64) {
    let mut every = tokio::time::interval(WORKER_HEARTBEAT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = client.heartbeat_worker(id, false).await {
            tracing::warn!(error = %e, "worker heartbeat failed");
        }
    }
}

/// Completes when `rx` turns true (or its sender is gone).
async fn fired(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
