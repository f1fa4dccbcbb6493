//! Bugs: the model, its statuses and the validation of every input.
//! SQL in [`store`], operations (one transaction with the activity row) in [`actions`].

pub mod actions;
pub mod store;

use super::*;
use crate::http::extract::double_option;
use serde::{Deserialize, Serialize};

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
