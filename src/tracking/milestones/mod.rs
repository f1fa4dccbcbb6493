//! Milestones: the model, its statuses and the validation of every input.
//! SQL in [`store`], operations (one transaction with the activity row) in [`actions`].

pub mod actions;
pub mod store;

use super::*;
use crate::http::extract::double_option;
use serde::{Deserialize, Serialize};

crate::text_enum! {
    pub enum MilestoneStatus ("milestone status") {
        Planned = "planned",
        InProgress = "in_progress",
        Completed = "completed",
        Cancelled = "cancelled",
    }
}

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
