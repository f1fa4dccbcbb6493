//! Assigning work to agent sessions: `POST /api/assign-to-tmux` (`api.rs`) and the item
//! pages' Assign forms (`pages.rs`) both call [`actions::assign_item`], which turns a feature,
//! a bug or an error group into a prompt (its details, bounded, and a link back) and queues it
//! with the item recorded on the prompt (`source_kind`, `source_id`; the item pages list their
//! prompts from there, through `agents::assign_pages::AssignBox`).
//!
//! When that prompt completes ([`actions::prompt_completed`], registered with the agents
//! domain at start by [`register`]) the item moves to review: a feature or a bug to `review`
//! (through `in_progress` when its workflow requires it) with a comment naming the prompt in
//! its history; an error group is marked *in review* (`errors::actions::mark_in_review`; why
//! not a status: see `errors`). An item that is finished meanwhile (completed, resolved,
//! closed, cancelled) keeps its status.
//!
//! An orchestrator above `agents`, `tracking` and `errors` (like `planning`): the agents domain
//! runs prompts and knows no work item; what a prompt was for is this module's concern.

pub mod actions;
pub mod api;
pub mod pages;

use crate::agents::assigner::ItemKind;
use serde::{Deserialize, Serialize};

/// Bounds of an error group's prompt (bytes): its message, its stack trace, and nodes listed.
pub const PROMPT_MESSAGE_BYTES: usize = 2 * 1024;
pub const PROMPT_STACK_BYTES: usize = 8 * 1024;
pub const PROMPT_NODES: usize = 10;

/// `POST /api/assign-to-tmux`. Without `session`, `role` or `group` the assigner picks an
/// idle session (routing rules apply).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    pub kind: ItemKind,
    pub id: i64,
    /// A live session on this server's node.
    #[serde(default)]
    pub session: Option<String>,
    /// Any session with this role (high_level, manager, worker).
    #[serde(default)]
    pub role: Option<String>,
    /// Any session in this group.
    #[serde(default)]
    pub group: Option<String>,
    /// Replaces the generated message.
    #[serde(default)]
    pub message: Option<String>,
    /// 0–10; default [`crate::agents::assigner::DEFAULT_PRIORITY`].
    #[serde(default)]
    pub priority: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Assigned {
    pub prompt_id: i64,
    pub success: bool,
    pub content: String,
}

/// Registers the follow-up of a completed prompt with the agents domain (called once at
/// start, by `serve`).
pub fn register(agents: &crate::agents::AgentsRuntime) {
    agents.on_prompt_done(std::sync::Arc::new(|state, id| {
        Box::pin(async move { actions::prompt_completed(&state, id).await })
    }));
}
