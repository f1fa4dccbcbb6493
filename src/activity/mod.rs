//! The activity log: who did what to which entity, when. Every mutation in every domain calls
//! [`store::record`] inside the same transaction as the change, so the log and the data never
//! disagree.
//!
//! A leaf: it uses no domain. Reading it over HTTP (`GET`/`POST /api/activity`, the Activity
//! page) is the dashboard's view in `overview/` (`activity_api.rs`, `activity_pages.rs`).

pub mod store;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActivityEntry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<i64>,
    pub details: serde_json::Value,
    pub created_at: String,
}

/// `POST /api/activity`: a client (script, agent) logging its own activity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewActivity {
    pub action: String,
    pub entity_type: String,
    #[serde(default)]
    pub entity_id: Option<i64>,
    /// An object; the original's text is kept as `{"message": text}` (`crate::wire`).
    #[serde(default, deserialize_with = "crate::wire::object_or_text")]
    pub details: Option<serde_json::Value>,
}

pub const MAX_ACTION_LEN: usize = 100;
pub const MAX_DETAILS_BYTES: usize = 16 * 1024;

impl NewActivity {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, v) in [("action", &self.action), ("entity_type", &self.entity_type)] {
            if v.trim().is_empty() || v.chars().count() > MAX_ACTION_LEN {
                return Err((
                    field,
                    format!("{field} must be 1 to {MAX_ACTION_LEN} characters"),
                ));
            }
        }
        if let Some(d) = &self.details {
            if !d.is_object() {
                return Err(("details", "details must be a JSON object".into()));
            }
            if d.to_string().len() > MAX_DETAILS_BYTES {
                return Err((
                    "details",
                    format!("details must be at most {MAX_DETAILS_BYTES} bytes"),
                ));
            }
        }
        Ok(())
    }
}

/// Filters for `GET /api/activity`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActivityFilter {
    pub entity: Option<String>,
    pub entity_id: Option<i64>,
    pub actor: Option<String>,
    /// RFC 3339 time; only entries at or after it.
    pub since: Option<String>,
}
