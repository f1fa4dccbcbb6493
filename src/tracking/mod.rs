//! Project tracking: projects, milestones, features, bugs and devops tasks.
//!
//! The rules live here: status enums with their allowed transitions written beside them,
//! field limits, and the validation every input passes before any SQL runs.

pub mod actions;
pub mod api;
pub mod pages;
pub mod store;

use crate::http::extract::double_option;
use serde::{Deserialize, Serialize};

crate::text_enum! {
    pub enum ProjectStatus ("project status") {
        Active = "active",
        Paused = "paused",
        Completed = "completed",
    }
}

crate::text_enum! {
    pub enum MilestoneStatus ("milestone status") {
        Planned = "planned",
        InProgress = "in_progress",
        Completed = "completed",
        Cancelled = "cancelled",
    }
}

crate::text_enum! {
    /// The feature workflow: draft → spec → in_progress → review → completed, with blocked and
    /// cancelled reachable from the active states. See [`FeatureStatus::next`].
    pub enum FeatureStatus ("feature status") {
        Draft = "draft",
        Spec = "spec",
        InProgress = "in_progress",
        Review = "review",
        Completed = "completed",
        Blocked = "blocked",
        Cancelled = "cancelled",
    }
}

impl FeatureStatus {
    pub const INITIAL: FeatureStatus = FeatureStatus::Draft;

    /// The statuses a feature may move to from `self`. This table is the whole workflow.
    pub fn next(self) -> &'static [FeatureStatus] {
        use FeatureStatus::*;
        match self {
            // The usual next step comes first: forms offer it as the default choice.
            Draft => &[Spec, InProgress, Blocked, Cancelled],
            Spec => &[InProgress, Draft, Blocked, Cancelled],
            InProgress => &[Review, Spec, Blocked, Cancelled],
            Review => &[Completed, InProgress, Blocked, Cancelled],
            // Reopening a finished feature sends it back to work.
            Completed => &[InProgress],
            Blocked => &[InProgress, Draft, Spec, Review, Cancelled],
            Cancelled => &[Draft],
        }
    }

    pub fn can_move_to(self, to: FeatureStatus) -> bool {
        self.next().contains(&to)
    }
}

crate::text_enum! {
    pub enum BugSeverity ("bug severity") {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

crate::text_enum! {
    /// The bug workflow: open → in_progress → (review →) resolved → closed, with wont_fix;
    /// `review` is a fix waiting for a person's check (an agent's assigned prompt completed).
    /// See [`BugStatus::next`].
    pub enum BugStatus ("bug status") {
        Open = "open",
        InProgress = "in_progress",
        Review = "review",
        Resolved = "resolved",
        Closed = "closed",
        WontFix = "wont_fix",
    }
}

impl BugStatus {
    /// Allowed bug status changes; any finished bug can be reopened. This table is the whole
    /// workflow. A fix in review is accepted (resolved), sent back to work, reopened or closed.
    pub fn next(self) -> &'static [BugStatus] {
        use BugStatus::*;
        match self {
            Open => &[InProgress, Resolved, Closed, WontFix],
            InProgress => &[Resolved, Review, Open, Closed, WontFix],
            Review => &[Resolved, InProgress, Open, Closed],
            Resolved => &[Closed, Open],
            Closed => &[Open],
            WontFix => &[Open, Closed],
        }
    }

    pub fn can_move_to(self, to: BugStatus) -> bool {
        self.next().contains(&to)
    }

    /// Resolved and closed count as done for milestone progress.
    pub fn is_done(self) -> bool {
        matches!(self, BugStatus::Resolved | BugStatus::Closed)
    }
}

crate::text_enum! {
    pub enum DevopsCategory ("devops category") {
        Maintenance = "maintenance",
        Deployment = "deployment",
        Monitoring = "monitoring",
        Backup = "backup",
        Security = "security",
        Infrastructure = "infrastructure",
        Other = "other",
    }
}

crate::text_enum! {
    pub enum DevopsStatus ("devops task status") {
        Pending = "pending",
        InProgress = "in_progress",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

// ---- limits ----
pub const MAX_NAME: usize = 200;
pub const MAX_DESCRIPTION: usize = 20_000;
pub const MAX_PATH: usize = 1024;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG: usize = 50;
pub const MAX_ASSIGNEE: usize = 100;
pub const MAX_COMMENT: usize = 2_000;
pub const MAX_PRIORITY: i64 = 10;

pub use crate::validate::{invalid, Invalid};

/// Trims and checks a required name or title.
pub fn clean_name(field: &'static str, v: &str) -> Result<String, Invalid> {
    let t = v.trim();
    if t.is_empty() {
        return Err(invalid(field, format!("{field} must not be empty")));
    }
    if t.chars().count() > MAX_NAME {
        return Err(invalid(
            field,
            format!("{field} must be at most {MAX_NAME} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(t.to_string())
}

pub fn check_len(field: &'static str, v: &str, max: usize) -> Result<(), Invalid> {
    if v.chars().count() > max {
        return Err(invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(())
}

pub fn check_priority(p: i64) -> Result<(), Invalid> {
    if !(0..=MAX_PRIORITY).contains(&p) {
        return Err(invalid(
            "priority",
            format!("priority must be between 0 and {MAX_PRIORITY}"),
        ));
    }
    Ok(())
}

pub fn clean_tags(tags: &[String]) -> Result<Vec<String>, Invalid> {
    if tags.len() > MAX_TAGS {
        return Err(invalid("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if t.is_empty() || t.chars().count() > MAX_TAG {
            return Err(invalid(
                "tags",
                format!("each tag must be 1 to {MAX_TAG} characters"),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// Optional text that may be cleared: empty or blank means "none".
pub fn clean_optional(
    field: &'static str,
    v: Option<&str>,
    max: usize,
) -> Result<Option<String>, Invalid> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            check_len(field, s, max)?;
            Ok(Some(s.to_string()))
        }
    }
}

/// A `YYYY-MM-DD` date.
pub fn check_date(field: &'static str, v: &str) -> Result<(), Invalid> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(v, fmt)
        .map(|_| ())
        .map_err(|_| invalid(field, format!("{field} must be a date as YYYY-MM-DD")))
}

// ---- projects ----

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub source_path: Option<String>,
    pub status: ProjectStatus,
    pub tags: Vec<String>,
    pub archived: bool,
    pub archived_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub source_path: Option<String>,
    #[serde(default)]
    pub status: Option<ProjectStatus>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

impl NewProject {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.name = clean_name("name", &self.name)?;
        check_len(
            "description",
            self.description.as_deref().unwrap_or(""),
            MAX_DESCRIPTION,
        )?;
        self.source_path = clean_optional("source_path", self.source_path.as_deref(), MAX_PATH)?;
        if let Some(t) = &self.tags {
            self.tags = Some(clean_tags(t)?);
        }
        Ok(())
    }
}

/// `PUT /api/projects/<id>`: every field optional; `archived: false` unarchives.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_path: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ProjectStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
}

impl ProjectPatch {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if let Some(n) = &self.name {
            self.name = Some(clean_name("name", n)?);
        }
        if let Some(d) = &self.description {
            check_len("description", d, MAX_DESCRIPTION)?;
        }
        if let Some(p) = &self.source_path {
            self.source_path = Some(clean_optional("source_path", p.as_deref(), MAX_PATH)?);
        }
        if let Some(t) = &self.tags {
            self.tags = Some(clean_tags(t)?);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProjectFilter {
    pub status: Option<ProjectStatus>,
    pub q: Option<String>,
    #[serde(default)]
    pub include_archived: Option<bool>,
}

// ---- milestones ----

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Milestone {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub description: String,
    pub target_date: Option<String>,
    pub status: MilestoneStatus,
    /// Percent (0–100) of the milestone's work done: completed features plus resolved or
    /// closed bugs, over all its features and bugs except cancelled features and won't-fix
    /// bugs. Computed on every read, never stored.
    pub progress: f64,
    pub features_total: i64,
    pub features_completed: i64,
    pub bugs_total: i64,
    pub bugs_resolved: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMilestone {
    pub project_id: i64,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub target_date: Option<String>,
    #[serde(default)]
    pub status: Option<MilestoneStatus>,
}

impl NewMilestone {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.name = clean_name("name", &self.name)?;
        check_len(
            "description",
            self.description.as_deref().unwrap_or(""),
            MAX_DESCRIPTION,
        )?;
        self.target_date = clean_optional("target_date", self.target_date.as_deref(), 10)?;
        if let Some(d) = &self.target_date {
            check_date("target_date", d)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilestonePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_date: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MilestoneStatus>,
}

impl MilestonePatch {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if let Some(n) = &self.name {
            self.name = Some(clean_name("name", n)?);
        }
        if let Some(d) = &self.description {
            check_len("description", d, MAX_DESCRIPTION)?;
        }
        if let Some(d) = &self.target_date {
            let d = clean_optional("target_date", d.as_deref(), 10)?;
            if let Some(d) = &d {
                check_date("target_date", d)?;
            }
            self.target_date = Some(d);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MilestoneFilter {
    pub project_id: Option<i64>,
    pub status: Option<MilestoneStatus>,
}

// ---- features ----

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Feature {
    pub id: i64,
    pub project_id: i64,
    pub milestone_id: Option<i64>,
    pub name: String,
    pub description: String,
    pub status: FeatureStatus,
    pub priority: i64,
    pub assignee: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow)]
pub struct StatusChange {
    pub from_status: Option<String>,
    pub to_status: String,
    pub comment: Option<String>,
    pub actor: String,
    pub changed_at: String,
}

/// A feature with its status history (single-item GET).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureDetail {
    #[serde(flatten)]
    pub feature: Feature,
    pub history: Vec<StatusChange>,
    pub allowed_next: Vec<FeatureStatus>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFeature {
    pub project_id: i64,
    pub name: String,
    #[serde(default)]
    pub milestone_id: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub assignee: Option<String>,
}

impl NewFeature {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.name = clean_name("name", &self.name)?;
        check_len(
            "description",
            self.description.as_deref().unwrap_or(""),
            MAX_DESCRIPTION,
        )?;
        check_priority(self.priority.unwrap_or(0))?;
        self.assignee = clean_optional("assignee", self.assignee.as_deref(), MAX_ASSIGNEE)?;
        Ok(())
    }
}

/// `PUT /api/features/<id>`. A `status` change is checked against the workflow and kept in
/// the history with the optional `comment`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub milestone_id: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub assignee: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<FeatureStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl FeaturePatch {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if let Some(n) = &self.name {
            self.name = Some(clean_name("name", n)?);
        }
        if let Some(d) = &self.description {
            check_len("description", d, MAX_DESCRIPTION)?;
        }
        if let Some(p) = self.priority {
            check_priority(p)?;
        }
        if let Some(a) = &self.assignee {
            self.assignee = Some(clean_optional("assignee", a.as_deref(), MAX_ASSIGNEE)?);
        }
        self.comment = clean_optional("comment", self.comment.as_deref(), MAX_COMMENT)?;
        if self.comment.is_some() && self.status.is_none() {
            return Err(invalid(
                "comment",
                "a comment goes with a status change; add 'status'",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FeatureFilter {
    pub project_id: Option<i64>,
    pub milestone_id: Option<i64>,
    pub status: Option<FeatureStatus>,
    pub q: Option<String>,
}

/// `GET /api/features/workflow`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workflow {
    pub initial: FeatureStatus,
    pub statuses: Vec<FeatureStatus>,
    pub transitions: std::collections::BTreeMap<String, Vec<FeatureStatus>>,
}

impl Workflow {
    pub fn describe() -> Workflow {
        Workflow {
            initial: FeatureStatus::INITIAL,
            statuses: FeatureStatus::ALL.to_vec(),
            transitions: FeatureStatus::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), s.next().to_vec()))
                .collect(),
        }
    }
}

// ---- bugs ----

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Bug {
    pub id: i64,
    pub project_id: i64,
    pub milestone_id: Option<i64>,
    pub title: String,
    pub description: String,
    pub severity: BugSeverity,
    pub status: BugStatus,
    pub assignee: Option<String>,
    pub resolved_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBug {
    pub project_id: i64,
    pub title: String,
    #[serde(default)]
    pub milestone_id: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub severity: Option<BugSeverity>,
    #[serde(default)]
    pub assignee: Option<String>,
}

impl NewBug {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.title = clean_name("title", &self.title)?;
        check_len(
            "description",
            self.description.as_deref().unwrap_or(""),
            MAX_DESCRIPTION,
        )?;
        self.assignee = clean_optional("assignee", self.assignee.as_deref(), MAX_ASSIGNEE)?;
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BugPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub milestone_id: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<BugSeverity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BugStatus>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub assignee: Option<Option<String>>,
    /// Kept with a status change in the bug's activity record (its history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl BugPatch {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.comment = clean_optional("comment", self.comment.as_deref(), MAX_COMMENT)?;
        if self.comment.is_some() && self.status.is_none() {
            return Err(invalid(
                "comment",
                "a comment goes with a status change; add 'status'",
            ));
        }
        if let Some(n) = &self.title {
            self.title = Some(clean_name("title", n)?);
        }
        if let Some(d) = &self.description {
            check_len("description", d, MAX_DESCRIPTION)?;
        }
        if let Some(a) = &self.assignee {
            self.assignee = Some(clean_optional("assignee", a.as_deref(), MAX_ASSIGNEE)?);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BugFilter {
    pub project_id: Option<i64>,
    pub milestone_id: Option<i64>,
    pub status: Option<BugStatus>,
    pub severity: Option<BugSeverity>,
    pub q: Option<String>,
}

// ---- devops tasks ----

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DevopsTask {
    pub id: i64,
    pub project_id: Option<i64>,
    pub title: String,
    pub description: String,
    pub category: DevopsCategory,
    pub status: DevopsStatus,
    pub priority: i64,
    /// Free text, e.g. a cron expression or "weekly".
    pub schedule: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDevopsTask {
    pub title: String,
    #[serde(default)]
    pub project_id: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub category: Option<DevopsCategory>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub schedule: Option<String>,
}

impl NewDevopsTask {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.title = clean_name("title", &self.title)?;
        check_len(
            "description",
            self.description.as_deref().unwrap_or(""),
            MAX_DESCRIPTION,
        )?;
        check_priority(self.priority.unwrap_or(0))?;
        self.schedule = clean_optional("schedule", self.schedule.as_deref(), MAX_TAG * 2)?;
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevopsPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<Option<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<DevopsCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DevopsStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub schedule: Option<Option<String>>,
}

impl DevopsPatch {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if let Some(n) = &self.title {
            self.title = Some(clean_name("title", n)?);
        }
        if let Some(d) = &self.description {
            check_len("description", d, MAX_DESCRIPTION)?;
        }
        if let Some(p) = self.priority {
            check_priority(p)?;
        }
        if let Some(s) = &self.schedule {
            self.schedule = Some(clean_optional("schedule", s.as_deref(), MAX_TAG * 2)?);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DevopsFilter {
    pub project_id: Option<i64>,
    pub status: Option<DevopsStatus>,
    pub category: Option<DevopsCategory>,
}

/// `GET /api/stats`: counts by status for each entity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub projects: std::collections::BTreeMap<String, i64>,
    pub milestones: std::collections::BTreeMap<String, i64>,
    pub features: std::collections::BTreeMap<String, i64>,
    pub bugs: std::collections::BTreeMap<String, i64>,
    pub devops_tasks: std::collections::BTreeMap<String, i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_is_connected_and_has_no_self_loops() {
        for s in FeatureStatus::ALL {
            assert!(!s.next().contains(s), "{s} -> itself");
            assert!(!s.next().is_empty(), "{s} is a dead end");
        }
        assert!(FeatureStatus::Draft.can_move_to(FeatureStatus::Spec));
        assert!(!FeatureStatus::Draft.can_move_to(FeatureStatus::Completed));
        assert!(FeatureStatus::Review.can_move_to(FeatureStatus::Completed));
        for s in BugStatus::ALL {
            assert!(!s.next().contains(s), "{s} -> itself");
            assert!(!s.next().is_empty(), "{s} is a dead end");
        }
        use BugStatus as B;
        assert!(B::InProgress.can_move_to(B::Review));
        assert!(!B::Open.can_move_to(B::Review), "review follows work");
        for to in [B::Resolved, B::InProgress, B::Open, B::Closed] {
            assert!(B::Review.can_move_to(to), "review -> {to}");
        }
        assert!(!B::Review.is_done());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("name", "  x ").unwrap(), "x");
        assert!(clean_name("name", "   ").is_err());
        assert!(clean_name("name", &"a".repeat(MAX_NAME + 1)).is_err());
        assert!(clean_name("name", "a\u{0}b").is_err());
    }

    #[test]
    fn unknown_enum_value_lists_valid_ones() {
        let e = serde_json::from_str::<FeatureStatus>("\"done\"").unwrap_err();
        assert!(e.to_string().contains("draft, spec, in_progress"), "{e}");
    }
}
