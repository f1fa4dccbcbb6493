//! Planning (issue 16): the work a project writes down about itself, turned into plans a person
//! approves and suggestions a person confirms.
//!
//! - [`scan`] finds the items in a repository (TODO-style comments, unchecked boxes in planning
//!   Markdown) and decides what a rescan changed.
//! - [`actions::scan_project`] stores them with the project's open bugs and error groups (one
//!   `plan_items` row per item, a stable fingerprint each, done when it disappears), then
//!   [`plan`] groups the open items into milestones → phases → tasks, stored as milestones
//!   `pending_approval` and written to `<data-dir>/milestones/`. When a provider is configured,
//!   [`regroup`] asks the model (through the gateway, in process) to regroup and retitle the
//!   new proposals; an answer that fails its strict check keeps the deterministic plan, with why.
//! - Approving a milestone creates the tracking milestone and one feature per task, linked back
//!   to the items; rejecting keeps the reason, and the same set of items is not proposed again.
//! - [`suggest`]: ranked suggestions from the same sources, confirmed into a feature, a bug, a
//!   queued prompt or a task.
//! - The review queue (`overview::queue`) lists what waits on a person across domains,
//!   these proposals and suggestions included.

pub mod actions;
pub mod api;
pub mod plan;
pub mod regroup;
pub mod scan;
pub mod store;
pub mod suggest;

use crate::app::AppState;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

crate::text_enum! {
    /// What a stored item is: a scanner marker (see `scan::ItemKind`), an open bug or an
    /// unresolved error group.
    pub enum Source ("item kind") {
        Fixme = "fixme",
        Hack = "hack",
        Xxx = "xxx",
        Todo = "todo",
        Checkbox = "checkbox",
        Bug = "bug",
        Error = "error",
    }
}

impl From<scan::ItemKind> for Source {
    fn from(k: scan::ItemKind) -> Self {
        match k {
            scan::ItemKind::Fixme => Source::Fixme,
            scan::ItemKind::Hack => Source::Hack,
            scan::ItemKind::Xxx => Source::Xxx,
            scan::ItemKind::Todo => Source::Todo,
            scan::ItemKind::Checkbox => Source::Checkbox,
        }
    }
}

impl Source {
    /// Found in a file (the scanner's own kinds).
    pub fn is_file(self) -> bool {
        !matches!(self, Source::Bug | Source::Error)
    }
    /// The weight a marker gives its item (bugs and errors are weighed by severity and count).
    pub fn marker_weight(self) -> i64 {
        match self {
            Source::Fixme => 40,
            Source::Xxx => 35,
            Source::Hack => 30,
            Source::Checkbox => 25,
            Source::Todo => 20,
            Source::Bug | Source::Error => 30,
        }
    }
}

crate::text_enum! {
    pub enum ItemStatus ("item status") {
        Open = "open",
        Done = "done",
    }
}

crate::text_enum! {
    pub enum ScanStatus ("scan status") {
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

crate::text_enum! {
    /// A proposed milestone: waits for a person, then approved (in tracking) or rejected (kept
    /// with the reason); a newer plan without its items supersedes it.
    pub enum PlanStatus ("plan status") {
        PendingApproval = "pending_approval",
        Approved = "approved",
        Rejected = "rejected",
        Superseded = "superseded",
    }
}

crate::text_enum! {
    /// Which pass grouped a plan: the deterministic planner ([`plan`]) or the model's
    /// regrouping of it ([`regroup`], through the gateway).
    pub enum Grouping ("grouping") {
        Deterministic = "deterministic",
        Llm = "llm",
    }
}

crate::text_enum! {
    pub enum SuggestionStatus ("suggestion status") {
        Pending = "pending",
        Confirmed = "confirmed",
        Skipped = "skipped",
        Completed = "completed",
    }
}

crate::text_enum! {
    /// What a suggestion was made from.
    pub enum SuggestionSource ("suggestion source") {
        Item = "item",
        Bug = "bug",
        ErrorGroup = "error_group",
        FailedTask = "failed_task",
    }
}

crate::text_enum! {
    /// What confirming a suggestion makes.
    pub enum Target ("suggestion target") {
        Feature = "feature",
        Bug = "bug",
        Prompt = "prompt",
        Task = "task",
    }
}

/// One stored work item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlanItem {
    pub id: i64,
    pub project_id: i64,
    pub kind: Source,
    pub path: Option<String>,
    pub line: Option<i64>,
    pub text: String,
    pub heading: Option<String>,
    pub fingerprint: String,
    /// The bug or error group this item stands for.
    pub source_id: Option<i64>,
    pub weight: i64,
    pub status: ItemStatus,
    pub author: Option<String>,
    pub authored_at: Option<String>,
    /// The feature an approved plan made of it.
    pub feature_id: Option<i64>,
    pub first_seen_at: String,
    pub last_seen_at: String,
    pub done_at: Option<String>,
}

impl PlanItem {
    /// `path:line`, or `bug #N` / `error group #N`.
    pub fn location(&self) -> String {
        match (self.kind, &self.path, self.line, self.source_id) {
            (_, Some(p), Some(l), _) => format!("{p}:{l}"),
            (_, Some(p), None, _) => p.clone(),
            (Source::Bug, _, _, Some(id)) => format!("bug #{id}"),
            (Source::Error, _, _, Some(id)) => format!("error group #{id}"),
            _ => String::new(),
        }
    }
}

/// One scan of a project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanRun {
    pub id: i64,
    pub project_id: i64,
    pub status: ScanStatus,
    pub started_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub files: i64,
    pub files_read: i64,
    pub items: i64,
    pub added: i64,
    pub edited: i64,
    pub done: i64,
    pub skipped: Vec<scan::Skipped>,
    pub skipped_count: i64,
    pub error: Option<String>,
    /// Which pass grouped the plan this scan proposed.
    pub grouping: Grouping,
    /// What the LLM pass did, or why the deterministic plan was kept.
    pub grouping_note: Option<String>,
}

/// A task of a proposed milestone: the items it would close.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlanTask {
    pub title: String,
    pub priority: i64,
    pub items: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Phase {
    pub name: String,
    pub tasks: Vec<PlanTask>,
}

/// A proposed milestone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanMilestone {
    pub id: i64,
    pub project_id: i64,
    pub scan_id: Option<i64>,
    pub title: String,
    pub description: String,
    pub priority: i64,
    pub phases: Vec<Phase>,
    pub items_key: String,
    /// Which pass grouped it.
    pub grouping: Grouping,
    pub status: PlanStatus,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// The tracking milestone approving it made.
    pub milestone_id: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl PlanMilestone {
    pub fn item_ids(&self) -> Vec<i64> {
        self.phases
            .iter()
            .flat_map(|p| p.tasks.iter().flat_map(|t| t.items.iter().copied()))
            .collect()
    }
}

/// A milestone with its items, for one milestone's answer and page.
#[derive(Debug, Clone, Serialize)]
pub struct PlanMilestoneDetail {
    #[serde(flatten)]
    pub milestone: PlanMilestone,
    pub project_name: String,
    pub items: Vec<PlanItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suggestion {
    pub id: i64,
    pub project_id: i64,
    pub source: SuggestionSource,
    pub source_id: i64,
    pub title: String,
    /// Why it is suggested (and ranked where it is).
    pub reason: String,
    pub score: i64,
    /// What confirming makes unless the caller picks another target.
    pub proposed: Target,
    pub status: SuggestionStatus,
    pub result_kind: Option<Target>,
    pub result_id: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuggestionEvent {
    pub status: SuggestionStatus,
    pub actor: String,
    pub note: Option<String>,
    pub at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanningError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", .0.message)]
    Invalid(crate::validate::Invalid),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Tracking(#[from] crate::tracking::actions::TrackingError),
    #[error("{0}")]
    Agents(#[from] crate::agents::AgentsError),
    #[error("{0}")]
    Tasks(#[from] crate::tasks::actions::TaskError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<crate::validate::Invalid> for PlanningError {
    fn from(v: crate::validate::Invalid) -> Self {
        PlanningError::Invalid(v)
    }
}

impl From<PlanningError> for crate::http::error::ApiError {
    fn from(e: PlanningError) -> Self {
        use crate::http::error::ApiError;
        match e {
            PlanningError::NotFound(what) => ApiError::not_found(what),
            PlanningError::Invalid(crate::validate::Invalid { field, message }) => {
                ApiError::invalid(field, message)
            }
            PlanningError::Conflict(msg) => ApiError::conflict(msg),
            PlanningError::Tracking(e) => e.into(),
            PlanningError::Agents(e) => e.into(),
            PlanningError::Tasks(e) => e.into(),
            PlanningError::Db(e) => ApiError::from(e),
        }
    }
}

pub type PlanResult<T> = std::result::Result<T, PlanningError>;

/// What planning keeps in memory: each project's scanner cache (blob id → items), so a rescan
/// reads only the files whose content changed.
#[derive(Clone, Default)]
pub struct PlanningRuntime {
    caches: Arc<Mutex<HashMap<i64, scan::Cache>>>,
}

impl PlanningRuntime {
    /// Takes the project's cache out for one scan (a scan of the same project at the same time
    /// is refused by the database, so it is never needed twice at once).
    pub fn take_cache(&self, project_id: i64) -> scan::Cache {
        self.caches
            .lock()
            .map(|mut c| c.remove(&project_id).unwrap_or_default())
            .unwrap_or_default()
    }
    pub fn put_cache(&self, project_id: i64, cache: scan::Cache) {
        if let Ok(mut c) = self.caches.lock() {
            c.insert(project_id, cache);
        }
    }
}

/// The milestone worker inside `serve` (on the leading replica): every project with a source path is scanned this often
/// when `ARCHITECT_MILESTONE_SCAN_MINUTES` is set (0 or unset: off; `architect milestones`
/// runs the same scans from outside).
pub fn loops(state: &AppState, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let minutes = state.config.milestone_scan_minutes;
    if minutes == 0 {
        return Vec::new();
    }
    let st = state.clone();
    vec![tokio::spawn(crate::background::run_every_on_leader(
        state.loops.clone(),
        "milestone_worker",
        Duration::from_secs(minutes * 60),
        shutdown.clone(),
        move || {
            let state = st.clone();
            async move {
                match actions::scan_all(&state, "milestone_worker").await {
                    Ok(reports) => tracing::info!(projects = reports.len(), "milestone scan"),
                    Err(e) => tracing::warn!(error = %e, "milestone scan failed"),
                }
            }
        },
    ))]
}
