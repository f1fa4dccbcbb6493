//! Changing how a node is reached (`reach.rs`): by an admin (`PUT /api/nodes/{id}`, the node
//! page's form) or as part of a registration (the agent's reported addresses, the original's
//! `ip_address`, `ssh_port`, ...). One transaction with its activity row.

use super::*;
use crate::nodes::reach::{Reach, ReachChange};

/// Merges `change` (checked) into the node's reach inside `tx`; the row is touched first so
/// the read below is under the write lock.
pub(super) async fn apply_reach(
    conn: &mut sqlx::AnyConnection,
    row: NodeRow,
    change: &ReachChange,
) -> Result<NodeRow> {
    if change.is_empty() {
        return Ok(row);
    }
    if !store::touch_node(conn, row.id).await? {
        return Err(NodeError::NotFound("node"));
    }
    let current = store::get_node(&mut *conn, row.id)
        .await?
        .ok_or(NodeError::NotFound("node"))?;
    let mut reach: Reach = current.reach();
    reach.apply(change);
    Ok(store::set_reach(conn, row.id, &reach).await?)
}

/// `PUT /api/nodes/{id}`: an admin sets how the node is reached. The activity row names the
/// fields changed (an `ssh_secret` is a vault reference, never a value).
pub async fn change_reach(
    state: &NodesState,
    who: &Identity,
    id: i64,
    mut change: ReachChange,
) -> Result<Node> {
    change.validate()?;
    let (_, now) = now_pair(state);
    let mut tx = crate::db::begin_write(&state.db).await?;
    let row = store::get_node(&mut *tx, id)
        .await?
        .ok_or(NodeError::NotFound("node"))?;
    let before = row.reach();
    let row = apply_reach(&mut tx, row, &change).await?;
    let after = row.reach();
    activity::store::record(
        &mut tx,
        &who.actor(),
        "update",
        "node",
        Some(id),
        &json!({"name": row.name, "reach": {"before": before, "after": after}}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Nodes, "updated", id);
    Ok(view(state, row))
}
