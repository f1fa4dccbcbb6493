//! Autopilot: per project, an autonomous development loop in one of four modes, run as a
//! durable state machine.
//!
//! - `POST /api/projects/{id}/autopilot {mode, goal, constraints, agent}` sets a project's mode
//!   (and starts a run when one is not active); `paused` is the project's own kill switch and
//!   `POST /api/autopilot/pause` the global one ([`hold`]: prompts not typed yet are held).
//! - A run moves `planning → implementing → testing → (deploying → monitoring) → done`, with
//!   `investigating`, `blocked`, `paused`, `failed` and `cancelled`; every transition is stored
//!   with its reason ([`store::transition`]), and every side effect is a step keyed by (run,
//!   step) done at most once ([`store::step_done`], [`runner::record`]), so a restarted `serve`
//!   resumes a run without repeating what it did.
//! - [`runner`] advances active runs (a leader-only background loop): planning (the planning
//!   domain's scan and suggestions; `observe` ends there), then [`phases`] (a worktree, branch
//!   and agent session per work item, its prompt, its test task, its change request) and
//!   [`deploy`] (staging, the production gate, monitoring, investigating). [`gates`] is where a
//!   person approves or rejects.

pub mod actions;
pub mod agent;
pub mod api;
pub mod deploy;
pub mod gates;
pub mod git;
pub mod hold;
pub mod pages;
pub mod phases;
pub mod runner;
pub mod split;
pub mod store;
pub mod work;

pub use agent::AgentSpec;
pub use split::SplitGoal;

use serde::{Deserialize, Serialize};

crate::text_enum! {
    pub enum Mode ("autopilot mode") {
        /// Off: no new runs.
        Off = "off",
        /// Detect and propose (no automatic action).
        Observe = "observe",
        /// Change, test and propose the change (no deploy).
        FixForward = "fix_forward",
        /// Deploy to staging after tests pass.
        AutoStaging = "auto_staging",
        /// Deploy to production after an approval gate.
        AutoProd = "auto_prod",
    }
}

crate::text_enum! {
    pub enum RunState ("run state") {
        Planning = "planning",
        Implementing = "implementing",
        Testing = "testing",
        Deploying = "deploying",
        Monitoring = "monitoring",
        Investigating = "investigating",
        /// Waiting on a person or a resource; `resume` continues it.
        Blocked = "blocked",
        Paused = "paused",
        Failed = "failed",
        Cancelled = "cancelled",
        Done = "done",
    }
}

impl RunState {
    /// A finished run never moves again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Done | RunState::Failed | RunState::Cancelled
        )
    }
    /// The runner works on runs in these states.
    pub fn is_working(self) -> bool {
        matches!(
            self,
            RunState::Planning
                | RunState::Implementing
                | RunState::Testing
                | RunState::Deploying
                | RunState::Monitoring
                | RunState::Investigating
        )
    }
}

/// What a run may do. Unknown fields are refused, so a misspelt limit is not silently ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    #[serde(default)]
    pub no_breaking_changes: bool,
    /// Agents working for the run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel_agents: Option<i64>,
    /// LLM cost the run may spend (USD, through the gateway's ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wall_minutes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<i64>,
    /// Paths (repository-relative prefixes) the run may change; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_paths: Vec<String>,
    /// Checks that must pass before a change is proposed (e.g. `tests`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_checks: Vec<String>,
    /// How long the project's errors are watched after a deploy (default 10; 0: not at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_minutes: Option<i64>,
    /// After a deploy, this many new or regressed error groups within the monitoring window
    /// run the project's rollback command (a `deploy` task with `rollback`) before the
    /// investigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_error_groups: Option<i64>,
    /// Whether the goal is split into work items through the gateway (see [`split`]).
    #[serde(default, skip_serializing_if = "SplitGoal::is_auto")]
    pub split_goal: SplitGoal,
}

impl Constraints {
    pub fn validate(&self) -> Result<(), crate::validate::Invalid> {
        use crate::validate::invalid;
        let positive = |field: &str, v: Option<i64>, max: i64| match v {
            Some(n) if n < 1 || n > max => Err(invalid(
                format!("constraints.{field}"),
                format!("{field} must be between 1 and {max}"),
            )),
            _ => Ok(()),
        };
        positive("max_parallel_agents", self.max_parallel_agents, 64)?;
        positive("max_wall_minutes", self.max_wall_minutes, 60 * 24 * 30)?;
        positive("max_iterations", self.max_iterations, 10_000)?;
        positive("rollback_error_groups", self.rollback_error_groups, 1_000)?;
        if self
            .monitor_minutes
            .is_some_and(|m| !(0..=24 * 60).contains(&m))
        {
            return Err(invalid(
                "constraints.monitor_minutes",
                "monitor_minutes must be between 0 and 1440",
            ));
        }
        if let Some(bad) = self
            .required_checks
            .iter()
            .find(|c| !matches!(c.as_str(), "tests"))
        {
            return Err(invalid(
                "constraints.required_checks",
                format!("'{bad}' is not a check architect runs (known: tests)"),
            ));
        }
        if let Some(b) = self.budget_usd {
            if !b.is_finite() || b < 0.0 {
                return Err(invalid(
                    "constraints.budget_usd",
                    "budget_usd must be a number of dollars, 0 or more",
                ));
            }
        }
        for p in &self.allowed_paths {
            if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == "..") {
                return Err(invalid(
                    "constraints.allowed_paths",
                    format!("'{p}': give repository-relative paths without '..'"),
                ));
            }
        }
        if self.allowed_paths.len() > 100 || self.required_checks.len() > 20 {
            return Err(invalid("constraints", "too many paths or checks"));
        }
        Ok(())
    }
}

/// A project's autopilot setting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectAutopilot {
    pub project_id: i64,
    pub mode: Mode,
    pub goal: String,
    pub constraints: Constraints,
    /// The agent each work item's session runs.
    #[serde(default)]
    pub agent: AgentSpec,
    pub paused: bool,
    pub updated_by: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub id: i64,
    pub project_id: i64,
    pub mode: Mode,
    pub goal: String,
    pub constraints: Constraints,
    #[serde(default)]
    pub agent: AgentSpec,
    pub state: RunState,
    pub reason: String,
    pub resume_to: Option<RunState>,
    pub started_by: String,
    /// Whose rights the run acts with (the person who configured it).
    #[serde(skip)]
    pub user_id: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transition {
    pub from: Option<RunState>,
    pub to: RunState,
    pub reason: String,
    pub actor: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub key: String,
    pub result: serde_json::Value,
    pub done_at: String,
}

/// `GET /api/autopilot/runs/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    pub project_name: String,
    pub transitions: Vec<Transition>,
    pub steps: Vec<Step>,
    /// Proposed milestones and suggestions of the project waiting on a person.
    pub proposals: i64,
    /// The work items: worktree, branch, session, prompts, test task, diff.
    pub items: Vec<work::Item>,
    pub gates: Vec<work::Gate>,
    /// LLM cost of the run's sessions, from the gateway's ledger.
    pub cost_usd: f64,
    pub llm_requests: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AutopilotError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", .0.message)]
    Invalid(crate::validate::Invalid),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<crate::validate::Invalid> for AutopilotError {
    fn from(v: crate::validate::Invalid) -> Self {
        AutopilotError::Invalid(v)
    }
}

impl From<AutopilotError> for crate::http::error::ApiError {
    fn from(e: AutopilotError) -> Self {
        use crate::http::error::ApiError;
        match e {
            AutopilotError::NotFound(what) => ApiError::not_found(what),
            AutopilotError::Invalid(crate::validate::Invalid { field, message }) => {
                ApiError::invalid(field, message)
            }
            AutopilotError::Conflict(m) => ApiError::conflict(m),
            AutopilotError::Forbidden(m) => ApiError::forbidden(m),
            AutopilotError::Db(e) => ApiError::from(e),
        }
    }
}

pub type RunResult<T> = std::result::Result<T, AutopilotError>;
