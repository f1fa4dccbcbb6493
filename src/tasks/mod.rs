//! Task queue: background work that any node's `architect worker` claims over HTTP.
//!
//! The guarantees: a claim is atomic and leased (a random lease token and an expiry); complete,
//! fail, release and heartbeat must present the current token, so a worker whose lease ran out
//! can never overwrite what its successor did; an expired lease sends the task back to the queue
//! with the attempt recorded; failures retry with exponential backoff and jitter until
//! `max_retries` is spent, then the task is `dead` (visible, re-queueable by hand). The status
//! rules are [`TaskStatus::next`], written once here.
//!
//! Files: `payload.rs` built-in task types and their payloads; `store.rs` SQL; `actions.rs`
//! the transactional operations; `queue.rs` long-poll wake-ups and the write gate; `api.rs` /
//! `pages.rs` HTTP; `supervisor/` local worker processes started by `serve` (`process.rs`: how
//! one is started and stopped), kept per replica; and the worker
//! side: `runner.rs` (claim loop), `handlers.rs` (handler registry, built-in handlers),
//! `process.rs` (process trees, bounded output).

pub mod actions;
pub mod api;
pub mod handlers;
mod lease;
pub mod pages;
pub mod payload;
pub mod process;
pub mod queue;
pub mod runner;
pub mod store;
mod suite_task;
pub mod supervisor;
pub mod waiting;
mod worker_pages;
mod workers;

pub use lease::*;
pub use queue::TaskRuntime;
pub use workers::*;

use serde::{Deserialize, Serialize};

/// What the queue's operations reach, and nothing else: the pool, the clock, the queue's
/// runtime (wake-ups, the write gate) and the live events its changes announce. Built from
/// `AppState` by `FromRef` (app.rs): handlers take `State<TaskState>`, other callers
/// `state.task_state()`. Cheap to clone.
#[derive(Clone)]
pub struct TaskState {
    pub db: crate::db::Db,
    pub clock: crate::clock::Clock,
    pub tasks: TaskRuntime,
    pub events: crate::events::Events,
}
use std::time::Duration;

crate::text_enum! {
    /// Where a task is in its life. See [`TaskStatus::next`] for the allowed moves.
    pub enum TaskStatus ("task status") {
        /// Queued; claimable once `run_after` has passed.
        Pending = "pending",
        /// Leased to a worker until `lease_expires_at`.
        Running = "running",
        Completed = "completed",
        /// Failed in a way retrying cannot fix (the worker said so: refused, unsupported,
        /// bad payload). Re-queueable by hand.
        Failed = "failed",
        /// Every retry was spent. Re-queueable by hand.
        Dead = "dead",
        Cancelled = "cancelled",
    }
}

impl TaskStatus {
    /// Every move a task may make. Running → pending covers a retryable failure with retries
    /// left, an expired lease and a release at worker shutdown. A completed task is final:
    /// re-running it would break "completed exactly once"; enqueue a new task instead.
    pub fn next(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Pending => &[Running, Cancelled],
            Running => &[Completed, Pending, Failed, Dead, Cancelled],
            Completed => &[],
            Failed | Dead | Cancelled => &[Pending],
        }
    }

    pub fn can_move_to(self, to: TaskStatus) -> bool {
        self.next().contains(&to)
    }

    /// Nothing more will happen to it unless someone re-queues it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Dead | TaskStatus::Cancelled
        )
    }
}

crate::text_enum! {
    /// How one attempt (one lease) ended.
    pub enum AttemptOutcome ("attempt outcome") {
        /// Still leased (shown for the current attempt; never stored).
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        /// The lease ran out: the worker died, hung or lost the network.
        Expired = "expired",
        Cancelled = "cancelled",
        /// The worker gave the task back (graceful shutdown).
        Released = "released",
    }
}

crate::text_enum! {
    /// A worker's state, computed from its heartbeats on every read.
    pub enum WorkerState ("worker state") {
        Online = "online",
        /// Not heard from for [`WORKER_OFFLINE_AFTER`]; its leases run out on their own.
        Offline = "offline",
        /// Said goodbye (graceful shutdown).
        Stopped = "stopped",
    }
}

// ---- limits and timings ----

pub const MAX_PRIORITY: i64 = 10;
pub const DEFAULT_MAX_RETRIES: i64 = 3;
pub const MAX_RETRIES: i64 = 100;
pub const DEFAULT_TIMEOUT_S: i64 = 3600;
/// A day: longer jobs belong in something other than a task queue.
pub const MAX_TIMEOUT_S: i64 = 86_400;
/// Lease length when a claim does not ask for one. Workers heartbeat well inside it, so it
/// only bounds how long a dead worker's task waits before it is handed out again.
pub const DEFAULT_LEASE_S: i64 = 60;
pub const MIN_LEASE_S: i64 = 2;
pub const MAX_LEASE_S: i64 = 3600;
/// Longest long-poll a claim may ask for; proxies commonly cut idle requests at 60 s.
pub const MAX_WAIT_S: f64 = 50.0;
/// First retry delay; each further failure doubles it (see [`retry_delay`]).
pub const BACKOFF_BASE_S: f64 = 5.0;
pub const BACKOFF_MAX_S: f64 = 3600.0;
/// A worker silent this long is shown offline (it heartbeats every 10 s).
pub const WORKER_OFFLINE_AFTER: time::Duration = time::Duration::seconds(45);
pub const MAX_TYPE: usize = 64;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG: usize = 50;
pub const MAX_NAME: usize = 100;
pub const MAX_CONCURRENCY: i64 = 256;
/// Payloads are instructions, not data transfer.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Output kept per task (the tail); workers cut to this before sending.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
pub const MAX_ERROR: usize = 4_000;
pub const MAX_RESULT_BYTES: usize = 256 * 1024;

/// The delay before retry number `attempt` (1 = first retry): `BACKOFF_BASE_S * 2^(attempt-1)`,
/// capped at `BACKOFF_MAX_S`, then scaled by a jitter in [0.5, 1.0) so that tasks that failed
/// together (a flapping dependency) do not all come back in the same instant. `jitter` is a
/// number in [0, 1), passed in so tests can pin it.
pub fn retry_delay(attempt: i64, jitter: f64) -> Duration {
    let failures = u32::try_from(attempt.clamp(1, 40) - 1).unwrap_or(0);
    crate::backoff::delay(
        Duration::from_secs_f64(BACKOFF_BASE_S),
        Duration::from_secs_f64(BACKOFF_MAX_S),
        failures,
        jitter.clamp(0.0, 0.999_999),
    )
}

pub use crate::validate::{invalid, Invalid};

/// A task type: lower-case letters, digits, `_`, `-`, `.`; starts with a letter.
pub fn check_type(field: &str, t: &str) -> Result<(), Invalid> {
    let ok = !t.is_empty()
        && t.len() <= MAX_TYPE
        && t.starts_with(|c: char| c.is_ascii_lowercase())
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{field} must be 1 to {MAX_TYPE} characters of a-z, 0-9, '_', '-', '.', starting with a letter"),
        ))
    }
}

/// Trims, de-duplicates and checks a tag list.
pub fn clean_tags(field: &str, tags: &[String]) -> Result<Vec<String>, Invalid> {
    if tags.len() > MAX_TAGS {
        return Err(invalid(field, format!("at most {MAX_TAGS} {field}")));
    }
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if t.is_empty() || t.chars().count() > MAX_TAG || t.chars().any(char::is_control) {
            return Err(invalid(
                field,
                format!("each of {field} must be 1 to {MAX_TAG} printable characters"),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// A short printable name (worker name, node).
pub fn clean_name(field: &str, v: &str) -> Result<String, Invalid> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > MAX_NAME || t.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} must be 1 to {MAX_NAME} printable characters"),
        ));
    }
    Ok(t.to_string())
}

fn check_range(field: &str, v: i64, lo: i64, hi: i64) -> Result<(), Invalid> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{field} must be between {lo} and {hi}"),
        ))
    }
}

/// Cuts text to at most `max` bytes, keeping the end (the end of a log says what went wrong)
/// and on a character boundary.
pub fn keep_tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

// ---- tasks ----

/// A task as the API shows it. The lease token is never part of it: only the claimer sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Task {
    pub id: i64,
    #[serde(rename = "type")]
    pub task_type: String,
    pub payload: serde_json::Value,
    pub priority: i64,
    pub status: TaskStatus,
    pub max_retries: i64,
    /// Claims since the task was created or last re-queued by hand.
    pub attempts: i64,
    pub timeout_s: i64,
    pub run_after: String,
    pub tags: Vec<String>,
    pub node: Option<String>,
    pub project_id: Option<i64>,
    pub worker_id: Option<i64>,
    pub lease_expires_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub result: Option<serde_json::Value>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<i64>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    /// Why nothing claims it, while it is pending (`waiting::reason`): no worker online for
    /// its type, none with the exec capability, none on its node or with its tags, all busy,
    /// or not due yet. Computed on every read of the API and the task page, never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
}

/// One attempt of a task: finished ones from history, plus the running one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub worker_id: Option<i64>,
    pub outcome: AttemptOutcome,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub output: Option<String>,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<i64>,
}

/// `GET /api/tasks/<id>`: the task with its attempts, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: Task,
    pub attempts_history: Vec<Attempt>,
}

/// `POST /api/tasks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    #[serde(rename = "type", alias = "task_type")]
    pub task_type: String,
    #[serde(default, alias = "task_data")]
    pub payload: Option<serde_json::Value>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub max_retries: Option<i64>,
    #[serde(default, alias = "timeout_seconds")]
    pub timeout_s: Option<i64>,
    /// RFC 3339; not claimable before then.
    #[serde(default)]
    pub run_after: Option<String>,
    /// A worker must offer every one of these tags to claim the task.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Only a worker registered on this node may claim the task.
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub project_id: Option<i64>,
}

impl NewTask {
    /// Why this task would run code of its creator's choosing on a worker — so creating it
    /// needs `Exec`, like every other way to run code: a shell, python, git or tmux task
    /// carries its program (git: a repository and its paths); a project command given an
    /// environment of its own can change what the command runs (`PATH`, `BASH_ENV`,
    /// `LD_PRELOAD`); a suite run given variables can change what a stored shell step runs
    /// (`POST /api/test-suites/{id}/run` knows the suite and asks only when it has one).
    /// `None`: it runs what someone with `Exec` chose (the project's commands, a stored suite)
    /// or a custom type's handler.
    pub fn runs_chosen_code(&self) -> Option<&'static str> {
        let builtin: payload::BuiltinType = self.task_type.parse().ok()?;
        let field = |name: &str| {
            self.payload
                .as_ref()
                .and_then(|p| p.get(name))
                .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
        };
        use payload::BuiltinType as B;
        match builtin {
            b if b.carries_program() => Some("carries the program it runs"),
            B::Test | B::Build | B::Deploy if field("env") => {
                Some("gives the project's command an environment of its own")
            }
            B::TestSuite if field("vars") => Some("gives the suite's steps variables"),
            _ => None,
        }
    }

    /// Checks everything but the project's existence (a store lookup, done in actions).
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.task_type = self.task_type.trim().to_string();
        check_type("type", &self.task_type)?;
        let payload = self.payload.get_or_insert_with(|| serde_json::json!({}));
        if !payload.is_object() {
            return Err(invalid("payload", "payload must be a JSON object"));
        }
        if payload.to_string().len() > MAX_PAYLOAD_BYTES {
            return Err(invalid(
                "payload",
                format!("payload must be at most {MAX_PAYLOAD_BYTES} bytes as JSON"),
            ));
        }
        payload::validate(&self.task_type, payload, self.project_id)?;
        check_range("priority", self.priority.unwrap_or(0), 0, MAX_PRIORITY)?;
        check_range(
            "max_retries",
            self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            0,
            MAX_RETRIES,
        )?;
        check_range(
            "timeout_s",
            self.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S),
            1,
            MAX_TIMEOUT_S,
        )?;
        if let Some(r) = &self.run_after {
            let t = crate::clock::parse(r).ok_or_else(|| {
                invalid(
                    "run_after",
                    "run_after must be an RFC 3339 time, e.g. 2030-01-02T03:04:05Z",
                )
            })?;
            self.run_after = Some(crate::clock::format(t));
        }
        if let Some(t) = &self.tags {
            self.tags = Some(clean_tags("tags", t)?);
        }
        if let Some(n) = &self.node {
            self.node = Some(clean_name("node", n)?);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskFilter {
    #[serde(default)]
    pub status: Option<TaskStatus>,
    #[serde(default, rename = "type")]
    pub task_type: Option<String>,
    #[serde(default, alias = "worker")]
    pub worker_id: Option<i64>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default, alias = "project")]
    pub project_id: Option<i64>,
}

/// Tasks by status, for the panel's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StatusCounts {
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub dead: i64,
    pub cancelled: i64,
}

impl StatusCounts {
    pub fn add(&mut self, status: TaskStatus, n: i64) {
        let slot = match status {
            TaskStatus::Pending => &mut self.pending,
            TaskStatus::Running => &mut self.running,
            TaskStatus::Completed => &mut self.completed,
            TaskStatus::Failed => &mut self.failed,
            TaskStatus::Dead => &mut self.dead,
            TaskStatus::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }

    pub fn get(&self, status: TaskStatus) -> i64 {
        match status {
            TaskStatus::Pending => self.pending,
            TaskStatus::Running => self.running,
            TaskStatus::Completed => self.completed,
            TaskStatus::Failed => self.failed,
            TaskStatus::Dead => self.dead,
            TaskStatus::Cancelled => self.cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_keep_completed_final_and_dead_requeueable() {
        use TaskStatus::*;
        assert!(Completed.next().is_empty());
        assert!(Dead.can_move_to(Pending));
        assert!(Failed.can_move_to(Pending));
        assert!(Running.can_move_to(Pending));
        assert!(!Pending.can_move_to(Completed));
        for s in TaskStatus::ALL {
            assert!(!s.can_move_to(*s), "{s} does not move to itself");
        }
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        assert_eq!(retry_delay(1, 0.0), Duration::from_secs_f64(2.5));
        assert_eq!(retry_delay(2, 0.0), Duration::from_secs_f64(5.0));
        assert!(retry_delay(3, 0.99) < Duration::from_secs(20));
        assert!(retry_delay(3, 0.99) > Duration::from_secs(19));
        assert!(retry_delay(50, 0.5) <= Duration::from_secs_f64(BACKOFF_MAX_S));
    }

    #[test]
    fn types_and_tails_are_checked() {
        assert!(check_type("type", "shell").is_ok());
        assert!(check_type("type", "my.custom-type_2").is_ok());
        assert!(check_type("type", "Shell").is_err());
        assert!(check_type("type", "").is_err());
        assert!(check_type("type", "1x").is_err());
        assert_eq!(keep_tail("héllo", 4), "llo");
        assert_eq!(keep_tail("abc", 10), "abc");
    }

    #[test]
    fn new_task_defaults_and_errors_name_the_field() {
        let mut t = NewTask {
            task_type: "custom".into(),
            ..Default::default()
        };
        t.validate().unwrap();
        assert_eq!(t.payload, Some(serde_json::json!({})));
        let mut t = NewTask {
            task_type: "custom".into(),
            priority: Some(11),
            ..Default::default()
        };
        assert_eq!(t.validate().unwrap_err().field, "priority");
        let mut t = NewTask {
            task_type: "shell".into(),
            payload: Some(serde_json::json!({"cmd": "ls"})),
            ..Default::default()
        };
        assert_eq!(t.validate().unwrap_err().field, "payload.cmd");
    }
}
