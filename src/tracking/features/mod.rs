//! Features: the model, its statuses and the validation of every input.
//! SQL in [`store`], operations (one transaction with the activity row) in [`actions`].

pub mod actions;
pub mod store;

use super::*;
use crate::http::extract::double_option;
use serde::{Deserialize, Serialize};

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
