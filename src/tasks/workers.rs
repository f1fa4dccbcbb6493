//! Worker registrations, their status view, and the per-project commands that `test`,
//! `build` and `deploy` tasks run.

use super::*;
use serde::{Deserialize, Serialize};

// ---- workers ----

crate::text_enum! {
    /// What a worker was started to allow, reported at registration and shown on the Workers
    /// page. The worker enforces it (it never claims, and refuses, what it may not run); the
    /// server records it.
    pub enum WorkerCapability ("worker capability") {
        /// Run programs for tasks: every built-in type (`--allow-exec`, alias
        /// `--allow-shell`). See `payload::BuiltinType::needs_exec`.
        Exec = "exec",
    }
}

/// A registered worker as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Worker {
    pub id: i64,
    pub name: String,
    pub node: String,
    pub types: Vec<String>,
    pub tags: Vec<String>,
    pub capabilities: Vec<WorkerCapability>,
    pub concurrency: i64,
    pub pid: Option<i64>,
    pub version: Option<String>,
    pub state: WorkerState,
    pub registered_at: String,
    pub last_heartbeat_at: String,
    /// Seconds since the last heartbeat, at the time of the answer.
    pub heartbeat_age_s: i64,
    pub stopped_at: Option<String>,
}

/// `POST /api/workers/register`. Registering again with the same name and node reuses the id.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterWorker {
    #[serde(alias = "id")]
    pub name: String,
    #[serde(alias = "node_id")]
    pub node: String,
    /// The original's `worker_type` (one type) is accepted as a one-item list.
    #[serde(
        default,
        alias = "worker_type",
        deserialize_with = "crate::wire::one_or_many"
    )]
    pub types: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// What the worker was started to allow (none when absent).
    #[serde(default)]
    pub capabilities: Vec<WorkerCapability>,
    #[serde(default = "one")]
    pub concurrency: i64,
    #[serde(default)]
    pub pid: Option<i64>,
    #[serde(default)]
    pub version: Option<String>,
}

fn one() -> i64 {
    1
}

impl RegisterWorker {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.name = clean_name("name", &self.name)?;
        self.node = clean_name("node", &self.node)?;
        if self.types.len() > MAX_TAGS {
            return Err(invalid("types", format!("at most {MAX_TAGS} types")));
        }
        for t in &self.types {
            check_type("types", t)?;
        }
        self.tags = clean_tags("tags", &self.tags)?;
        self.capabilities.sort_by_key(|c| c.as_str());
        self.capabilities.dedup();
        check_range("concurrency", self.concurrency, 1, MAX_CONCURRENCY)?;
        if let Some(v) = &self.version {
            self.version = Some(clean_name("version", v)?);
        }
        Ok(())
    }
}

/// `POST /api/workers/<id>/heartbeat`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerHeartbeat {
    /// True when the worker is shutting down gracefully: it is then shown as stopped.
    #[serde(default)]
    pub stopping: bool,
}

/// One worker in `GET /api/workers/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerStatus {
    #[serde(flatten)]
    pub worker: Worker,
    pub current_tasks: Vec<CurrentTask>,
    pub completed: i64,
    pub failed: i64,
    /// Tasks completed in the last [`THROUGHPUT_WINDOW_MIN`] minutes, per minute.
    pub throughput_per_min: f64,
}

pub const THROUGHPUT_WINDOW_MIN: i64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CurrentTask {
    pub id: i64,
    #[serde(rename = "type")]
    pub task_type: String,
    pub started_at: Option<String>,
    pub lease_expires_at: Option<String>,
}

/// `GET /api/workers/status`: every worker with its work, plus the local processes `serve`
/// supervises.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkersOverview {
    pub workers: Vec<WorkerStatus>,
    pub queue: StatusCounts,
    pub supervised: Vec<supervisor::SupervisedStatus>,
}

// ---- project commands ----

/// The commands `test`, `build` and `deploy` tasks run for a project, in its source_path (and
/// `deploy` tasks with `payload.rollback`, the rollback command).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProjectCommands {
    pub project_id: i64,
    pub test_command: Option<String>,
    pub build_command: Option<String>,
    pub deploy_command: Option<String>,
    /// Undoes the last deploy (`deploy` tasks with `payload.rollback`; the autopilot's
    /// monitoring runs it when a run's error threshold is crossed).
    #[serde(default)]
    pub rollback_command: Option<String>,
    /// The project's source_path (from tracking), where the command runs.
    pub source_path: Option<String>,
    pub updated_at: Option<String>,
}

/// `PUT /api/projects/<id>/commands`: each field replaces the stored one; empty clears it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetProjectCommands {
    #[serde(default)]
    pub test_command: Option<String>,
    #[serde(default)]
    pub build_command: Option<String>,
    #[serde(default)]
    pub deploy_command: Option<String>,
    #[serde(default)]
    pub rollback_command: Option<String>,
}

pub const MAX_COMMAND: usize = 4_000;

impl SetProjectCommands {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        for (field, v) in [
            ("test_command", &mut self.test_command),
            ("build_command", &mut self.build_command),
            ("deploy_command", &mut self.deploy_command),
            ("rollback_command", &mut self.rollback_command),
        ] {
            *v = v
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from);
            if v.as_deref().is_some_and(|s| s.len() > MAX_COMMAND) {
                return Err(invalid(
                    field,
                    format!("{field} must be at most {MAX_COMMAND} bytes"),
                ));
            }
        }
        Ok(())
    }
}
