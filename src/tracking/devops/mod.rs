//! Devops tasks: the model, its statuses and the validation of every input.
//! SQL in [`store`], operations (one transaction with the activity row) in [`actions`].

pub mod actions;
pub mod store;

use super::*;
use crate::http::extract::double_option;
use serde::{Deserialize, Serialize};

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
