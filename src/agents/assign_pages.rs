//! The dashboard's Assign box: each item page (feature, bug, error group) includes
//! `templates/agents/assign_box.html` with an [`AssignBox`], which lists the prompts sent for
//! the item (this domain's own rows: prompts by `source_kind`/`source_id`, live sessions) and,
//! for people who may write, a form posting to `/{features|bugs|errors}/{id}/assign` (handled
//! by `assign::pages`, which turns the item into a prompt).

use super::assigner::store as prompts;
use super::assigner::{ItemKind, DEFAULT_PRIORITY};
use super::route::NodeRef;
use super::SessionRole;
use crate::http::error::ApiError;

/// Prompts listed on an item's page (its newest).
const SHOWN_PROMPTS: i64 = 20;

/// One prompt sent for the item, as its page shows it.
pub struct Assignment {
    pub id: i64,
    pub status: String,
    /// The session that took it, or the one it waits for, or "".
    pub session: String,
    pub created_at: String,
    pub created_by: String,
}

/// What an item page needs for its Assign box.
pub struct AssignBox {
    /// Where the form posts.
    pub action: String,
    pub assignments: Vec<Assignment>,
    /// Live sessions on this server's node, by name.
    pub sessions: Vec<String>,
    pub roles: &'static [SessionRole],
    /// Groups of those sessions.
    pub groups: Vec<String>,
    pub default_priority: i64,
    /// What happens to the item when its prompt completes.
    pub on_done: &'static str,
}

impl AssignBox {
    /// Reads only this domain's rows (the item's prompts, the live sessions).
    pub async fn load(db: &crate::db::Db, kind: ItemKind, id: i64) -> Result<AssignBox, ApiError> {
        let assignments = prompts::of_source(db, kind.as_str(), id, SHOWN_PROMPTS)
            .await?
            .into_iter()
            .map(|p| Assignment {
                id: p.id,
                status: p.status.to_string(),
                session: p.assigned_session.or(p.target_session).unwrap_or_default(),
                created_at: p.created_at,
                created_by: p.created_by,
            })
            .collect();
        let node = NodeRef::parse(None).map_err(|e| ApiError::invalid("node", e.message))?;
        let live: Vec<_> = super::store::sessions(db)
            .await?
            .into_iter()
            .filter(|r| r.gone_at.is_none() && r.node == node.name())
            .collect();
        let mut groups: Vec<String> = live.iter().flat_map(|r| r.groups()).collect();
        groups.sort();
        groups.dedup();
        Ok(AssignBox {
            action: format!("{}/assign", kind.page(id)),
            assignments,
            sessions: live.into_iter().map(|r| r.name).collect(),
            roles: SessionRole::ALL,
            groups,
            default_priority: DEFAULT_PRIORITY,
            on_done: match kind {
                ItemKind::Feature | ItemKind::Bug => "moves to review",
                ItemKind::Error => "is marked in review until someone resolves it",
            },
        })
    }
}
