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

mod claim;
mod drain;
mod job;
mod report;
use claim::*;
use drain::*;
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

    /// What this worker registers as, claiming `types`.
    fn registration(&self, types: &[String]) -> RegisterWorker {
        let o = &self.options;
        RegisterWorker {
            name: o.name.clone(),
            node: o.node.clone(),
            types: types.to_vec(),
            tags: o.tags.clone(),
            capabilities: self.capabilities(),
            concurrency: i64::try_from(o.concurrency).unwrap_or(1),
            pid: Some(i64::from(std::process::id())),
            version: Some(crate::VERSION.to_string()),
        }
    }

    /// Runs until `shutdown` completes, then stops gracefully: register, then claim for the
    /// free slots ([`claim::free_slots`]), act on the answer ([`claim::step`]), and at the end
    /// [`drain::drain`] the running slots.
    pub async fn run_until<S: Future<Output = ()> + Send>(
        self,
        shutdown: S,
    ) -> anyhow::Result<RunSummary> {
        let types = self.claim_types().map_err(anyhow::Error::msg)?;
        let register = self.registration(&types);
        let o = Arc::new(self.options);
        let plan = ClaimPlan {
            types: types.clone(),
            tags: o.tags.clone(),
            lease_s: o.lease_s,
            wait_s: o.wait_s,
        };
        let client = Client::new(&o.dashboard, Some(&o.token));
        tokio::pin!(shutdown);
        let Some(mut worker) = register_until(&client, &register, &mut shutdown).await? else {
            return Ok(RunSummary::default());
        };
        tracing::info!(worker_id = worker.id, name = %worker.name, types = %types.join(","), concurrency = o.concurrency, "worker registered; claiming tasks");
        let beat = tokio::spawn(heartbeat_worker(client.clone(), worker.id));
        let (stop_tx, stop_rx) = watch::channel(false);
        // Turns true when shutdown begins: slots stop leasing their next task.
        let (draining_tx, draining_rx) = watch::channel(false);
        let (reports, report_rx) = mpsc::unbounded_channel();
        // The worker's id as of now (a re-registration may change it).
        let worker_id = Arc::new(std::sync::atomic::AtomicI64::new(worker.id));
        let reporter = tokio::spawn(report_completions(
            client.clone(),
            plan.next_claim(worker.id),
            worker_id.clone(),
            o.lease_s,
            report_rx,
        ));
        let job = Job {
            client: client.clone(),
            registry: Arc::new(self.registry),
            settings: Arc::new(o.settings.clone()),
            lease_s: o.lease_s,
            stop: stop_rx,
            draining: draining_rx,
            reports,
        };
        let slots = Arc::new(Semaphore::new(o.concurrency.max(1)));
        // Each entry is a slot: its first task and the ones leased with each completion.
        let mut running: JoinSet<Vec<Ran>> = JoinSet::new();
        let mut summary = RunSummary::default();
        let mut backoff = crate::backoff::Backoff::new(Duration::from_millis(500), MAX_BACKOFF);
        loop {
            reap(&mut running, &mut summary);
            let first = tokio::select! {
                p = slots.clone().acquire_owned() => p?,
                _ = &mut shutdown => break,
            };
            let permits = free_slots(&slots, first);
            let req = plan.claim(worker.id, permits.len());
            // Dropping an in-flight claim at shutdown is safe: if the server leased a task in
            // that instant, the lease runs out and the task is handed out again.
            let answer = tokio::select! {
                a = client.claim_task(&req) => a,
                _ = &mut shutdown => break,
            };
            match step(answer, &mut backoff) {
                // The server leases at most `max_tasks`, so there is a permit for each.
                Step::Run(claimed) => {
                    for (claimed, permit) in claimed.into_iter().zip(permits) {
                        running.spawn(run_slot(job.clone(), claimed, permit));
                    }
                }
                Step::Register => match register_until(&client, &register, &mut shutdown).await? {
                    Some(w) => {
                        worker_id.store(w.id, Ordering::SeqCst);
                        worker = w;
                    }
                    None => break,
                },
                Step::Retry(e, wait) => {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "claim failed");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {},
                        _ = &mut shutdown => break,
                    }
                }
            }
        }
        drain(
            &mut running,
            &mut summary,
            o.shutdown_grace,
            &draining_tx,
            &stop_tx,
        )
        .await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_registers_its_claim_types_slots_and_exec_capability() {
        let mut o = WorkerOptions::new("http://127.0.0.1:1", "t");
        o.concurrency = 4;
        o.tags = vec!["gpu".into()];
        let w = Worker::new(o.clone());
        let types = w
            .claim_types()
            .expect_err("no --allow-exec: nothing to run");
        assert!(types.contains("--allow-exec"), "{types}");
        o.settings.allow_exec = true;
        o.types = Some(vec!["shell".into()]);
        let w = Worker::new(o);
        let types = w.claim_types().expect("types");
        let r = w.registration(&types);
        assert_eq!(r.types, ["shell"]);
        assert_eq!(
            (r.concurrency, r.tags.as_slice()),
            (4, &["gpu".to_string()][..])
        );
        assert_eq!(r.capabilities, [WorkerCapability::Exec]);
        assert_eq!(r.pid, Some(i64::from(std::process::id())));
    }
}
