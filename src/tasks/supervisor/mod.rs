//! Local `architect worker` processes that `serve` starts on request
//! (`POST /api/workers/start/<type>`), keeps running — a crashed one is restarted after a
//! backoff that doubles from [`RESTART_BACKOFF_BASE`] to [`RESTART_BACKOFF_MAX`], jittered
//! (`backoff::Backoff`, the one every retry loop uses) — and stops on
//! `/stop/<type>` or when `serve` shuts down. The ones running when `serve` stops are started
//! again by the next `serve` ([`restore`]).
//!
//! Each started worker gets its own `worker`-scoped API token (in its environment, not its
//! command line), revoked when it is stopped. Only the processes of this `serve` are managed
//! here; workers on other nodes are started there.
//!
//! Replicas (several `serve` on one PostgreSQL database): `supervised_workers` records which
//! replica keeps each worker (`replica`, the id from its data dir, `db::leader::replica_id`),
//! one worker per type across the replicas. A replica restores only its own rows, and the
//! ones no replica is recorded for (rows from before migration 0029), adopting those with a
//! conditional UPDATE so only one replica does. It stops only its own workers: a start or
//! stop of a type another replica keeps answers 409 naming that replica, and the status list
//! shows those as `elsewhere`; the stop's `forget` clears the claim of a replica gone for good.
//! The row is claimed before the process is started, in one transaction with its activity row,
//! so two replicas never both start one. A worker ends with its `serve` (`process.rs`: the exec
//! guard), so a restart after a kill never runs a second one beside it.

use super::actions::TaskError;
use super::payload::BuiltinType;
use super::store::SupervisedClaim;
use super::TaskState;
use crate::auth::actions::NewApiToken;
use crate::auth::{AuthState, Identity, Scope};
use process::{describe, futures_join, spawn, stop_child, Launch};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Child;
use tokio::sync::Mutex;

mod process;
pub use process::STOP_GRACE;

/// First restart delay after a crash; doubles per crash in a row.
pub const RESTART_BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A worker that ran this long before crashing is considered healthy: its backoff resets.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

crate::text_enum! {
    pub enum SupervisedState ("supervised worker state") {
        Running = "running",
        /// Crashed; waiting out the backoff before the next start.
        Restarting = "restarting",
        Stopped = "stopped",
        /// Kept by another replica (`replica` names it); only that replica knows its process.
        Elsewhere = "elsewhere",
    }
}

/// What the supervisor's operations reach: the queue's state (its runtime holds the
/// processes and this replica's id), the auth domain's state (each worker's token is minted
/// at its start and revoked at its stop) and the settings workers are started with. Its own
/// state rather than more fields on `TaskState`: only these operations mint tokens or read
/// these settings, and `TaskState` is built for every claim. Built from `AppState` by
/// `FromRef` (app.rs); other callers pass `state.supervisor_state()`. Cheap to clone.
#[derive(Clone)]
pub struct SupervisorState {
    pub tasks: TaskState,
    pub auth: AuthState,
    /// `--worker-bin`; this executable when unset.
    pub worker_bin: Option<PathBuf>,
    /// `--worker-allow-shell`: whether workers that run programs may be started.
    pub allow_shell: bool,
    /// Where each worker's log goes (`<data-dir>/logs`).
    pub log_dir: PathBuf,
}

/// One supervised process, as `GET /api/workers/status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SupervisedStatus {
    #[serde(rename = "type")]
    pub task_type: String,
    pub state: SupervisedState,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// On the host of the replica that keeps it; empty for one kept `elsewhere`.
    pub log_file: String,
    /// The replica that keeps it (`db::leader::replica_id`).
    #[serde(default)]
    pub replica: String,
}

impl SupervisedStatus {
    /// Kept by another replica: nothing to stop here.
    pub fn elsewhere(&self) -> bool {
        self.state == SupervisedState::Elsewhere
    }
}

struct Slot {
    launch: Launch,
    child: Option<Child>,
    restarts: u32,
    /// Crashes in a row: the next restart's delay (`backoff`, jittered).
    backoff: crate::backoff::Backoff,
    next_start: Option<Instant>,
    started: Option<Instant>,
    last_exit: Option<String>,
    token_id: i64,
    owner: Identity,
}

impl Slot {
    fn status(&self, task_type: &str, replica: &str) -> SupervisedStatus {
        SupervisedStatus {
            task_type: task_type.to_string(),
            state: if self.child.is_some() {
                SupervisedState::Running
            } else {
                SupervisedState::Restarting
            },
            pid: self.child.as_ref().and_then(Child::id),
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
            log_file: self.launch.log_file.display().to_string(),
            replica: replica.to_string(),
        }
    }
}

/// The supervised processes of this `serve`, by task type.
pub struct Supervisor {
    slots: Mutex<BTreeMap<String, Slot>>,
    /// This replica's id: what `supervised_workers.replica` records for its workers.
    replica: Arc<str>,
}

impl Supervisor {
    pub fn new(replica: &str) -> Supervisor {
        Supervisor {
            slots: Mutex::default(),
            replica: Arc::from(replica),
        }
    }

    /// The replica whose processes these are.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// This replica's supervised processes.
    pub async fn statuses(&self) -> Vec<SupervisedStatus> {
        let slots = self.slots.lock().await;
        slots
            .iter()
            .map(|(t, s)| s.status(t, &self.replica))
            .collect()
    }

    /// One round of supervision: notices exits, schedules and performs restarts. Returns how
    /// many processes were (re)started.
    pub async fn tick(&self) -> usize {
        let mut slots = self.slots.lock().await;
        let now = Instant::now();
        let mut started = 0;
        for (t, slot) in slots.iter_mut() {
            if let Some(child) = slot.child.as_mut() {
                match child.try_wait() {
                    Ok(None) => continue,
                    Ok(Some(status)) => slot.last_exit = Some(describe(status)),
                    Err(e) => slot.last_exit = Some(e.to_string()),
                }
                slot.child = None;
                if slot.started.is_some_and(|s| now - s >= STABLE_AFTER) {
                    slot.backoff.reset();
                }
                let delay = slot.backoff.next_delay();
                slot.next_start = Some(now + delay);
                tracing::warn!(task_type = %t, last_exit = ?slot.last_exit, restart_in_ms = delay.as_millis(), "supervised worker exited; restarting after backoff");
            }
            if slot.next_start.is_some_and(|at| at <= now) {
                match spawn(t, &slot.launch) {
                    Ok(child) => {
                        slot.child = Some(child);
                        slot.started = Some(now);
                        slot.next_start = None;
                        slot.restarts += 1;
                        started += 1;
                    }
                    Err(e) => {
                        slot.last_exit = Some(format!("cannot start: {e}"));
                        slot.next_start = Some(now + RESTART_BACKOFF_MAX);
                    }
                }
            }
        }
        started
    }

    /// Stops every supervised process (serve is shutting down) and returns their tokens, to
    /// revoke.
    pub async fn stop_all(&self) -> Vec<(i64, Identity)> {
        let slots = std::mem::take(&mut *self.slots.lock().await);
        let mut tokens = Vec::new();
        let mut stopping = Vec::new();
        for (t, slot) in slots {
            tokens.push((slot.token_id, slot.owner));
            if let Some(child) = slot.child {
                stopping.push(async move { (t, stop_child(child).await) });
            }
        }
        for (t, how) in futures_join(stopping).await {
            tracing::info!(task_type = %t, exit = %how, "supervised worker stopped");
        }
        tokens
    }
}

fn builtin(task_type: &str) -> Result<BuiltinType, TaskError> {
    task_type.parse::<BuiltinType>().map_err(|_| {
        TaskError::Invalid(super::invalid(
            "type",
            format!(
                "'{task_type}' is not a built-in task type; serve starts workers for: {}",
                BuiltinType::names().join(", ")
            ),
        ))
    })
}

/// This replica's supervised workers, then the ones other replicas keep (state `elsewhere`),
/// as `GET /api/workers/status` lists them.
pub async fn statuses(state: &TaskState) -> Result<Vec<SupervisedStatus>, TaskError> {
    let sup = state.tasks.supervisor();
    let mut all = sup.statuses().await;
    for (task_type, replica) in super::store::supervised_elsewhere(&state.db, sup.replica()).await?
    {
        all.push(SupervisedStatus {
            task_type,
            state: SupervisedState::Elsewhere,
            pid: None,
            restarts: 0,
            last_exit: None,
            log_file: String::new(),
            replica,
        });
    }
    Ok(all)
}

fn kept_elsewhere(task_type: &str, owner: &str) -> TaskError {
    TaskError::Conflict(format!(
        "the local {task_type} worker is kept by replica {owner} (one per type across the replicas): start or stop it through that replica; if that replica is gone for good, POST /api/workers/stop/{task_type}?forget=true here forgets its claim"
    ))
}

/// Starts (or reports the already running) local worker for `task_type`.
pub async fn start_local(
    state: &SupervisorState,
    who: &Identity,
    task_type: &str,
) -> Result<SupervisedStatus, TaskError> {
    let t = builtin(task_type)?;
    if t.needs_exec() && !state.allow_shell {
        return Err(TaskError::Refused(format!(
            "{t} workers run programs on this host (they need --allow-exec): start serve with --worker-allow-shell (ARCHITECT_WORKER_ALLOW_SHELL) to allow them"
        )));
    }
    let tasks = &state.tasks;
    let sup = tasks.tasks.supervisor();
    let replica = sup.replica();
    let mut slots = sup.slots.lock().await;
    if let Some(slot) = slots.get(task_type) {
        return Ok(slot.status(task_type, replica));
    }
    let url = tasks
        .tasks
        .local_url()
        .ok_or_else(|| TaskError::Unavailable("the server is not listening yet".into()))?
        .to_string();
    let program = match &state.worker_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| {
            TaskError::Unavailable(format!("cannot find the architect binary: {e}"))
        })?,
    };
    // Claimed before anything starts: of two replicas asked at once, one starts it.
    let claim = claim(tasks, who, task_type).await?;
    if let SupervisedClaim::Theirs(owner) = &claim {
        return Err(kept_elsewhere(task_type, owner));
    }
    match launch(state, who, task_type, program, url, t.needs_exec()).await {
        Ok(slot) => {
            let status = slot.status(task_type, replica);
            slots.insert(task_type.to_string(), slot);
            tracing::info!(task_type, pid = ?status.pid, replica, "started a supervised worker");
            Ok(status)
        }
        Err(e) => {
            // A row this start made goes again; one kept from before stays (a restart of
            // serve tries again).
            if claim == SupervisedClaim::Inserted {
                let why = format!("could not start: {e}");
                if let Err(f) = forget(tasks, &who.actor(), task_type, &why).await {
                    tracing::warn!(task_type, error = %f, "could not forget a worker that did not start");
                }
            }
            Err(e)
        }
    }
}

/// Records that this replica keeps `task_type`'s worker, with its activity row when the row
/// is new or adopted.
async fn claim(
    tasks: &TaskState,
    who: &Identity,
    task_type: &str,
) -> Result<SupervisedClaim, TaskError> {
    let replica = tasks.tasks.supervisor().replica();
    let now = tasks.clock.now_str();
    let mut tx = crate::db::begin_write(&tasks.db).await?;
    let claim =
        super::store::claim_supervised(&mut tx, task_type, who.user_id, replica, &now).await?;
    let action = match claim {
        SupervisedClaim::Inserted => Some("start"),
        SupervisedClaim::Adopted => Some("adopt"),
        SupervisedClaim::Ours | SupervisedClaim::Theirs(_) => None,
    };
    if let Some(action) = action {
        crate::activity::store::record(
            &mut tx,
            &who.actor(),
            action,
            "supervised_worker",
            None,
            &serde_json::json!({"type": task_type, "replica": replica}),
            &now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(claim)
}

/// Forgets this replica's (or an unowned) row for `task_type`, with its activity row.
async fn forget(
    tasks: &TaskState,
    actor: &str,
    task_type: &str,
    why: &str,
) -> Result<(), sqlx::Error> {
    let replica = tasks.tasks.supervisor().replica();
    forget_of(tasks, actor, task_type, replica, why)
        .await
        .map(|_| ())
}

/// Forgets replica `replica`'s claim on `task_type` (and a claim that names none), with its
/// activity row; whether a claim went.
async fn forget_of(
    tasks: &TaskState,
    actor: &str,
    task_type: &str,
    replica: &str,
    why: &str,
) -> Result<bool, sqlx::Error> {
    let now = tasks.clock.now_str();
    let mut tx = crate::db::begin_write(&tasks.db).await?;
    let gone = super::store::forget_supervised(&mut tx, task_type, replica).await?;
    if gone {
        crate::activity::store::record(
            &mut tx,
            actor,
            "stop",
            "supervised_worker",
            None,
            &serde_json::json!({"type": task_type, "replica": replica, "why": why}),
            &now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(gone)
}

/// Mints the worker's token and starts its process.
async fn launch(
    state: &SupervisorState,
    who: &Identity,
    task_type: &str,
    program: PathBuf,
    url: String,
    allow_exec: bool,
) -> Result<Slot, TaskError> {
    let created = crate::auth::actions::create_token(
        &state.auth,
        who,
        NewApiToken {
            name: format!("serve-{task_type} worker"),
            scope: Scope::Worker,
            expires_in_days: None,
            user_id: None,
        },
    )
    .await
    .map_err(|e| TaskError::Unavailable(format!("cannot create the worker's token: {e}")))?;
    let launch = Launch {
        program,
        url,
        token: created.token,
        allow_exec,
        log_file: state.log_dir.join(format!("worker-{task_type}.log")),
    };
    let child = match spawn(task_type, &launch) {
        Ok(c) => c,
        Err(e) => {
            revoke(&state.auth, created.info.id, who).await;
            return Err(TaskError::Unavailable(format!(
                "cannot start the worker process: {e}"
            )));
        }
    };
    Ok(Slot {
        launch,
        child: Some(child),
        restarts: 0,
        backoff: crate::backoff::Backoff::new(RESTART_BACKOFF_BASE, RESTART_BACKOFF_MAX),
        next_start: None,
        started: Some(Instant::now()),
        last_exit: None,
        token_id: created.info.id,
        owner: who.clone(),
    })
}

/// Starts again the local workers this replica kept running when it last stopped (they were
/// started through the API and never stopped through it), each acting for the admin who
/// started it, and adopts the ones no replica is recorded for. Ones whose admin is gone,
/// disabled or no longer an admin are dropped.
pub async fn restore(state: &SupervisorState) {
    let tasks = &state.tasks;
    let replica = tasks.tasks.supervisor().replica();
    let kept = match super::store::list_supervised(&tasks.db, replica).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the supervised workers to restart");
            return;
        }
    };
    for (task_type, user_id) in kept {
        let user = crate::auth::store::get_user(&tasks.db, user_id).await;
        let who = match user {
            Ok(Some(u)) if !u.disabled && u.role == crate::auth::Role::Admin => Identity {
                user_id: u.id,
                username: u.username,
                role: u.role,
                // Acting for that admin with the admin's own rights, as the start did.
                via: crate::auth::AuthVia::Token {
                    token_id: 0,
                    scope: Scope::Admin,
                    session: None,
                },
            },
            Ok(_) => {
                tracing::warn!(task_type, user_id, "not restarting a supervised worker: the admin who started it is gone, disabled or no longer an admin");
                let why = "the admin who started it is gone, disabled or no longer an admin";
                if let Err(e) = forget(tasks, "system", &task_type, why).await {
                    tracing::warn!(task_type, error = %e, "could not forget a supervised worker");
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(task_type, error = %e, "could not restart a supervised worker");
                continue;
            }
        };
        match start_local(state, &who, &task_type).await {
            Ok(s) => {
                tracing::info!(task_type, pid = ?s.pid, replica, "restarted a supervised worker kept from the last run")
            }
            Err(TaskError::Conflict(why)) => {
                tracing::info!(
                    task_type,
                    replica,
                    why,
                    "not restarting a supervised worker: another replica adopted it first"
                )
            }
            Err(e) => {
                tracing::warn!(task_type, error = %e, "could not restart a supervised worker")
            }
        }
    }
}

/// Stops this replica's local worker for `task_type` (gracefully: it finishes or releases its
/// tasks) and revokes its token. One another replica keeps is a 409 naming it, unless
/// `forget_elsewhere`: then that replica's claim is forgotten (for a replica that is gone for
/// good, which would otherwise keep the type forever); a process it may still run is not
/// reached from here, and it is not restored when that replica starts again.
pub async fn stop_local(
    state: &SupervisorState,
    who: &Identity,
    task_type: &str,
    forget_elsewhere: bool,
) -> Result<SupervisedStatus, TaskError> {
    builtin(task_type)?;
    let tasks = &state.tasks;
    let sup = tasks.tasks.supervisor();
    let Some(slot) = sup.slots.lock().await.remove(task_type) else {
        return match super::store::supervised_owner(&tasks.db, task_type).await? {
            Some(Some(owner)) if owner != sup.replica() && forget_elsewhere => {
                let why = format!("forgotten by replica {}", sup.replica());
                if !forget_of(tasks, &who.actor(), task_type, &owner, &why).await? {
                    return Err(TaskError::NotFound("running local worker of that type"));
                }
                Ok(SupervisedStatus {
                    task_type: task_type.to_string(),
                    state: SupervisedState::Stopped,
                    pid: None,
                    restarts: 0,
                    last_exit: None,
                    log_file: String::new(),
                    replica: owner,
                })
            }
            Some(Some(owner)) if owner != sup.replica() => Err(kept_elsewhere(task_type, &owner)),
            _ => Err(TaskError::NotFound("running local worker of that type")),
        };
    };
    let log_file = slot.launch.log_file.display().to_string();
    let last_exit = match slot.child {
        Some(child) => Some(stop_child(child).await),
        None => slot.last_exit.clone(),
    };
    revoke(&state.auth, slot.token_id, &slot.owner).await;
    if let Err(e) = forget(tasks, &who.actor(), task_type, "stopped").await {
        tracing::warn!(task_type, error = %e, "could not forget the stopped worker; it will be started with serve");
    }
    Ok(SupervisedStatus {
        task_type: task_type.to_string(),
        state: SupervisedState::Stopped,
        pid: None,
        restarts: slot.restarts,
        last_exit,
        log_file,
        replica: sup.replica().to_string(),
    })
}

/// Revokes a supervised worker's token; a failure is logged (the token is useless once the
/// process is gone, but should not stay valid).
pub async fn revoke(auth: &AuthState, token_id: i64, owner: &Identity) {
    if let Err(e) = crate::auth::actions::revoke_token(auth, owner, token_id).await {
        tracing::warn!(token_id, error = %e, "could not revoke a supervised worker's token");
    }
}
