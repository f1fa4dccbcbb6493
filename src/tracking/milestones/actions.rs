//! Operations on milestones: each one transaction with its activity record.

use crate::db::Db;
use crate::tracking::actions::*;
use crate::tracking::store;
use crate::tracking::*;
use serde_json::json;
use sqlx::AnyConnection;

pub async fn create_milestone(db: &Db, ctx: &Ctx<'_>, input: NewMilestone) -> Result<Milestone> {
    let mut tx = crate::db::begin_write(db).await?;
    let m = create_milestone_in(&mut tx, ctx, input).await?;
    tx.commit().await?;
    ctx.changed("milestone", m.id);
    Ok(m)
}

/// [`create_milestone`] inside the caller's transaction (with its activity row); the caller
/// commits and then announces it (`Ctx::changed`).
pub async fn create_milestone_in(
    conn: &mut AnyConnection,
    ctx: &Ctx<'_>,
    mut input: NewMilestone,
) -> Result<Milestone> {
    input.validate()?;
    require_active_project(&mut *conn, input.project_id, "project_id").await?;
    let m = store::insert_milestone(&mut *conn, &input, ctx.now).await?;
    log(
        conn,
        ctx,
        "create",
        "milestone",
        m.id,
        json!({"name": m.name, "project_id": m.project_id}),
    )
    .await?;
    Ok(m)
}

pub async fn update_milestone(
    db: &Db,
    ctx: &Ctx<'_>,
    id: i64,
    mut patch: MilestonePatch,
) -> Result<Milestone> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut m = store::lock_milestone(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("milestone"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    if let Some(n) = patch.name {
        m.name = n;
    }
    if let Some(d) = patch.description {
        m.description = d;
    }
    if let Some(d) = patch.target_date {
        m.target_date = d;
    }
    if let Some(s) = patch.status {
        m.status = s;
    }
    store::save_milestone(&mut tx, &m, ctx.now).await?;
    log(&mut tx, ctx, "update", "milestone", id, changes).await?;
    let m = store::get_milestone(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("milestone"))?;
    tx.commit().await?;
    ctx.changed("milestone", m.id);
    Ok(m)
}
