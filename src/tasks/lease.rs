//! The lease protocol's request and response shapes: claim, heartbeat, complete, fail,
//! release. The rules behind them are in `actions::lease` and `store`.

use super::*;
use serde::{Deserialize, Serialize};

// ---- the lease protocol ----

/// `POST /api/tasks/claim`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub worker_id: i64,
    /// Types this claim accepts; default: the worker's registered types (none = any).
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Tags this worker offers; default: its registered tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Seconds to wait for a task when none is ready (long-poll), up to [`MAX_WAIT_S`].
    #[serde(default)]
    pub wait_s: Option<f64>,
    /// Lease length asked for; default [`DEFAULT_LEASE_S`].
    #[serde(default)]
    pub lease_s: Option<i64>,
    /// Lease up to this many tasks in one call (default 1, at most [`MAX_CLAIM_BATCH`]), each
    /// with its own lease token. A worker with several free slots saves a round trip per task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks: Option<i64>,
}

/// The most tasks one claim may lease.
pub const MAX_CLAIM_BATCH: i64 = 100;

impl ClaimRequest {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if let Some(types) = &self.types {
            if types.len() > MAX_TAGS {
                return Err(invalid("types", format!("at most {MAX_TAGS} types")));
            }
            for t in types {
                check_type("types", t)?;
            }
        }
        if let Some(t) = &self.tags {
            self.tags = Some(clean_tags("tags", t)?);
        }
        if let Some(w) = self.wait_s {
            if !(0.0..=MAX_WAIT_S).contains(&w) {
                return Err(invalid(
                    "wait_s",
                    format!("wait_s must be between 0 and {MAX_WAIT_S}"),
                ));
            }
        }
        check_range("max_tasks", self.max_tasks.unwrap_or(1), 1, MAX_CLAIM_BATCH)?;
        check_range(
            "lease_s",
            self.lease_s.unwrap_or(DEFAULT_LEASE_S),
            MIN_LEASE_S,
            MAX_LEASE_S,
        )
    }
}

/// A claimed task: the task plus the lease token that every later call must present.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClaimedTask {
    #[serde(flatten)]
    pub task: Task,
    pub lease_token: String,
}

/// The claim's answer; `task` is null when nothing was ready within `wait_s`. When the claim
/// set `max_tasks`, `tasks` lists every task leased (best first, `task` being the first), and
/// each must be completed, failed or released under its own `lease_token`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClaimResponse {
    pub task: Option<ClaimedTask>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<ClaimedTask>,
}

impl ClaimResponse {
    /// Every leased task, whichever of `task` / `tasks` the server filled.
    pub fn into_tasks(self) -> Vec<ClaimedTask> {
        if self.tasks.is_empty() {
            self.task.into_iter().collect()
        } else {
            self.tasks
        }
    }
}

/// `POST /api/tasks/<id>/heartbeat` and `/release`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    pub lease_token: String,
    /// New lease length from now; default [`DEFAULT_LEASE_S`].
    #[serde(default)]
    pub lease_s: Option<i64>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lease {
    pub task_id: i64,
    pub lease_expires_at: String,
}

/// `POST /api/tasks/<id>/complete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub lease_token: String,
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// Lease this worker's next task in the same round trip and the same transaction: a claim
    /// that never waits (`wait_s` must be left out). Its tasks come back in the answer's
    /// `next`. A worker that keeps its slots busy this way costs the queue one request per
    /// task instead of two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<ClaimRequest>,
}

/// One task's result in `POST /api/tasks/complete` (the fields of [`CompleteRequest`] plus the
/// task id).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletedTask {
    pub id: i64,
    pub lease_token: String,
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub duration_ms: Option<i64>,
}

/// `POST /api/tasks/complete`: several tasks' results in one request and one transaction,
/// optionally leasing the worker's next tasks too (`next`, as on a single completion). A
/// worker whose slots finish together reports them together.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteBatch {
    pub results: Vec<CompletedTask>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<ClaimRequest>,
}

/// The most results one `POST /api/tasks/complete` may carry.
pub const MAX_COMPLETE_BATCH: usize = 100;

impl CompleteBatch {
    /// Checks every result before anything is written: one bad result refuses the request.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.results.is_empty() || self.results.len() > MAX_COMPLETE_BATCH {
            return Err(invalid(
                "results",
                format!("send between 1 and {MAX_COMPLETE_BATCH} results"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.results.iter().enumerate() {
            if !seen.insert(r.id) {
                return Err(invalid(
                    format!("results[{i}].id"),
                    format!("task {} appears twice", r.id),
                ));
            }
            check_report(r.output.as_deref(), r.duration_ms, r.result.as_ref())
                .map_err(|e| invalid(format!("results[{i}].{}", e.field), e.message))?;
        }
        Ok(())
    }
}

/// A result the server did not take: the lease had expired or been replaced (the task may
/// have gone to another worker). The batch's other results are committed regardless.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefusedResult {
    pub id: i64,
    pub error: String,
}

/// The answer to `POST /api/tasks/complete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BatchOutcome {
    /// Ids of the tasks now `completed`, in request order.
    pub completed: Vec<i64>,
    pub refused: Vec<RefusedResult>,
    /// Tasks leased by `next`, best first.
    #[serde(default)]
    pub next: Vec<ClaimedTask>,
}

/// `POST /api/tasks/<id>/fail`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub lease_token: String,
    pub error: String,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub duration_ms: Option<i64>,
    /// False when retrying cannot help (refused, unsupported, bad payload): the task goes
    /// straight to `failed`. Default true.
    #[serde(default)]
    pub retryable: Option<bool>,
}

/// What a worker reports about a finished attempt, checked once for both complete and fail.
pub fn check_report(
    output: Option<&str>,
    duration_ms: Option<i64>,
    result: Option<&serde_json::Value>,
) -> Result<(), Invalid> {
    if output.is_some_and(|o| o.len() > MAX_OUTPUT_BYTES) {
        return Err(invalid(
            "output",
            format!("output must be at most {MAX_OUTPUT_BYTES} bytes (send the tail)"),
        ));
    }
    if duration_ms.is_some_and(|d| d < 0) {
        return Err(invalid("duration_ms", "duration_ms must be 0 or more"));
    }
    if result.is_some_and(|r| r.to_string().len() > MAX_RESULT_BYTES) {
        return Err(invalid(
            "result",
            format!("result must be at most {MAX_RESULT_BYTES} bytes as JSON"),
        ));
    }
    Ok(())
}
