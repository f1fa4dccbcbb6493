//! Operations on milestones: each one transaction with its activity record.

use crate::db::Db;
use crate::tracking::actions::*;
use crate::tracking::store;
use crate::tracking::*;
use serde_json::json;

pub async fn create_milestone(
    db: &Db,
    ctx: &Ctx<'_>,
    mut input: NewMilestone,
) -> Result<Milestone> {
    input.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    require_active_project(&mut tx, input.project_id, "project_id").await?;
    let m = store::insert_milestone(&mut tx, &input, ctx.now).await?;
    log(
        &mut tx,
        ctx,
        "create",
        "milestone",
        m.id,
        json!({"name": m.name, "project_id": m.project_id}),
    )
    .await?;
    tx.commit().await?;
    ctx.changed("milestone", m.id);
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
