//! Projects: the model, its statuses and the validation of every input.
//! SQL in [`store`], operations (one transaction with the activity row) in [`actions`].

pub mod actions;
pub mod store;

use super::*;
use crate::http::extract::double_option;
use serde::{Deserialize, Serialize};

crate::text_enum! {
    pub enum ProjectStatus ("project status") {
        Active = "active",
        Paused = "paused",
        Completed = "completed",
    }
}

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
