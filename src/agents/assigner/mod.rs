//! The assigner: a durable prompt queue and the dispatcher that types queued prompts into idle
//! agent sessions (SPEC.md "Assigner Worker").
//!
//! Lifecycle (the allowed moves are [`PromptStatus::next`]): `pending` → `assigned` (a session
//! was chosen and the text typed) → `in_progress` (the agent accepted it: it turned busy or a
//! hook reported the submission) → `completed` (the turn-finished signal; the final pane text
//! is the response) or `failed` (timeout, session gone, not accepted after retries) or
//! `cancelled`. Failed and cancelled prompts can be retried (up to `max_retries`) or
//! reassigned. Priority 0–10, higher first, then oldest.
//!
//! Files: `store/` SQL (`moves.rs` every change of a prompt); `dispatch.rs` the dispatcher loop's tick; `api.rs` HTTP;
//! `pages.rs` the dashboard panel.

pub mod api;
pub mod dispatch;
pub mod pages;
pub mod routing;
pub mod store;

use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// What a prompt may be for (its `source_kind`): a work item, assigned through `assign`.
    pub enum ItemKind ("item kind") {
        Feature = "feature",
        Bug = "bug",
        Error = "error",
    }
}

impl ItemKind {
    /// The item's dashboard page.
    pub fn page(self, id: i64) -> String {
        match self {
            ItemKind::Feature => format!("/features/{id}"),
            ItemKind::Bug => format!("/bugs/{id}"),
            ItemKind::Error => format!("/errors/{id}"),
        }
    }
}

/// Priority of an assignment that names none (the queue's range is 0–10).
pub const DEFAULT_PRIORITY: i64 = 5;

crate::text_enum! {
    /// Where a prompt is in its life.
    pub enum PromptStatus ("prompt status") {
        Pending = "pending",
        Assigned = "assigned",
        InProgress = "in_progress",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl PromptStatus {
    /// Every move a prompt may make; the store's SQL is checked against this table (a test
    /// reads every status change in `store/moves.rs`). Assigned or in progress → pending is a failure
    /// with retries left (the session went away, the text was not accepted) or a restart that
    /// finds the text was never typed; assigned → completed is a turn that finished before a
    /// reading saw it busy. Pending → pending is a reassignment (a new target).
    pub fn next(self) -> &'static [PromptStatus] {
        use PromptStatus::*;
        match self {
            Pending => &[Assigned, Cancelled, Pending],
            Assigned => &[InProgress, Completed, Pending, Failed, Cancelled],
            InProgress => &[Completed, Pending, Failed, Cancelled],
            Completed => &[],
            Failed | Cancelled => &[Pending],
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, PromptStatus::Assigned | PromptStatus::InProgress)
    }
}

/// One prompt as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub id: i64,
    pub content: String,
    pub priority: i64,
    pub status: PromptStatus,
    pub target_session: Option<String>,
    pub target_role: Option<String>,
    pub target_group: Option<String>,
    pub node: String,
    pub timeout_minutes: i64,
    pub max_retries: i64,
    pub retries: i64,
    pub metadata: serde_json::Value,
    pub parent_id: Option<i64>,
    pub assigned_session: Option<String>,
    pub assigned_at: Option<String>,
    pub typed_at: Option<String>,
    /// How often Enter was pressed for it (the first with the text, then again while the text
    /// still sat in the input line), and when last.
    #[serde(default)]
    pub enter_presses: i64,
    #[serde(default)]
    pub entered_at: Option<String>,
    pub started_at: Option<String>,
    pub accepted_by: Option<String>,
    pub completed_at: Option<String>,
    pub completed_by: Option<String>,
    pub response: Option<String>,
    pub transcript_path: Option<String>,
    pub error: Option<String>,
    pub escalated_to: Option<String>,
    pub escalated_at: Option<String>,
    pub source_kind: Option<String>,
    pub source_id: Option<i64>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /api/assigner/send`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPrompt {
    pub content: String,
    pub priority: Option<i64>,
    pub target_session: Option<String>,
    pub target_role: Option<String>,
    pub target_group: Option<String>,
    pub timeout_minutes: Option<i64>,
    pub max_retries: Option<i64>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// The prompt this one was delegated from.
    pub parent_id: Option<i64>,
    /// The session sending it (a manager delegating): its active prompt becomes the parent.
    pub from_session: Option<String>,
    pub node: Option<String>,
}

/// Longest prompt accepted (bytes).
pub const MAX_CONTENT_BYTES: usize = 100 * 1024;

fn check_name(field: &str, v: &Option<String>) -> Result<(), Invalid> {
    if let Some(v) = v {
        let ok = !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(invalid(
                field,
                format!("{field} must be 1-64 letters, digits, '_' or '-'"),
            ));
        }
    }
    Ok(())
}

impl NewPrompt {
    /// Checks the fields; returns (priority, timeout_minutes, max_retries) with defaults.
    pub fn check(
        &self,
        default_timeout: i64,
        default_retries: i64,
    ) -> Result<(i64, i64, i64), Invalid> {
        if self.content.trim().is_empty() {
            return Err(invalid("content", "content must not be empty"));
        }
        if self.content.len() > MAX_CONTENT_BYTES {
            return Err(invalid(
                "content",
                format!("content is longer than {MAX_CONTENT_BYTES} bytes"),
            ));
        }
        if self.content.contains('\0') {
            return Err(invalid("content", "content contains a NUL character"));
        }
        let priority = self.priority.unwrap_or(0);
        if !(0..=10).contains(&priority) {
            return Err(invalid("priority", "priority must be 0-10"));
        }
        let timeout = self.timeout_minutes.unwrap_or(default_timeout);
        if !(1..=7 * 24 * 60).contains(&timeout) {
            return Err(invalid(
                "timeout_minutes",
                "timeout_minutes must be 1-10080",
            ));
        }
        let retries = self.max_retries.unwrap_or(default_retries);
        if !(0..=20).contains(&retries) {
            return Err(invalid("max_retries", "max_retries must be 0-20"));
        }
        check_name("target_session", &self.target_session)?;
        check_name("target_group", &self.target_group)?;
        check_name("from_session", &self.from_session)?;
        if let Some(role) = &self.target_role {
            role.parse::<super::SessionRole>()
                .map_err(|e| invalid("target_role", e))?;
        }
        if let Some(m) = &self.metadata {
            if !m.is_object() {
                return Err(invalid("metadata", "metadata must be a JSON object"));
            }
        }
        Ok((priority, timeout, retries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_are_written_once() {
        use PromptStatus::*;
        assert!(Pending.next().contains(&Assigned));
        assert!(!Pending.next().contains(&Completed));
        assert!(Completed.next().is_empty());
        assert!(Failed.next().contains(&Pending));
        assert!(Assigned.is_active() && InProgress.is_active() && !Pending.is_active());
    }

    /// Every status change the store makes (`SET status = 'to' ... WHERE ... status IN
    /// (from...)`) is a move [`PromptStatus::next`] allows: the table is the one truth, and
    /// a new UPDATE that strays from it fails here.
    #[test]
    fn the_store_moves_prompts_only_as_the_table_allows() {
        let sql = include_str!("store/moves.rs");
        let set = regex::Regex::new(r"(?s)UPDATE assigner_prompts SET status = '(\w+)'(.*?)\x22")
            .unwrap();
        let from = regex::Regex::new(r"(?:WHERE|AND) status (?:= '(\w+)'|IN \(([^)]*)\))").unwrap();
        let mut checked = 0;
        for m in set.captures_iter(sql) {
            let to: PromptStatus = m[1].parse().unwrap();
            let rest = &m[2];
            let f = from
                .captures(rest)
                .unwrap_or_else(|| panic!("an UPDATE to '{to}' without a status guard: {rest}"));
            let sources: Vec<PromptStatus> = match (f.get(1), f.get(2)) {
                (Some(one), _) => vec![one.as_str().parse().unwrap()],
                (_, Some(list)) => list
                    .as_str()
                    .split(',')
                    .map(|s| s.trim().trim_matches('\'').parse().unwrap())
                    .collect(),
                _ => unreachable!(),
            };
            for s in sources {
                assert!(
                    s.next().contains(&to),
                    "store/moves.rs moves a prompt {s} -> {to}, which PromptStatus::next does not allow"
                );
                checked += 1;
            }
        }
        assert!(
            checked >= 12,
            "only {checked} moves found: is the pattern still right?"
        );
    }

    #[test]
    fn new_prompts_are_checked() {
        let ok = NewPrompt {
            content: "do it".into(),
            ..Default::default()
        };
        assert_eq!(ok.check(30, 3).unwrap(), (0, 30, 3));
        let bad = |f: fn(&mut NewPrompt)| {
            let mut p = ok.clone();
            f(&mut p);
            p.check(30, 3).unwrap_err().field
        };
        assert_eq!(bad(|p| p.content = " ".into()), "content");
        assert_eq!(bad(|p| p.priority = Some(11)), "priority");
        assert_eq!(bad(|p| p.priority = Some(-1)), "priority");
        assert_eq!(bad(|p| p.timeout_minutes = Some(0)), "timeout_minutes");
        assert_eq!(
            bad(|p| p.target_session = Some("a b".into())),
            "target_session"
        );
        assert_eq!(bad(|p| p.target_role = Some("boss".into())), "target_role");
        assert_eq!(
            bad(|p| p.metadata = Some(serde_json::json!([1]))),
            "metadata"
        );
    }
}
