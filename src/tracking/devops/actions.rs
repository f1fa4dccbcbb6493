//! Operations on devops tasks: each one transaction with its activity record.

use crate::db::Db;
use crate::tracking::actions::*;
use crate::tracking::store;
use crate::tracking::*;
use serde_json::json;

pub async fn create_devops_task(
    db: &Db,
    ctx: &Ctx<'_>,
    mut input: NewDevopsTask,
) -> Result<DevopsTask> {
    input.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    if let Some(p) = input.project_id {
        require_active_project(&mut tx, p, "project_id").await?;
    }
    let t = store::insert_devops_task(&mut tx, &input, ctx.now).await?;
    log(
        &mut tx,
        ctx,
        "create",
        "devops_task",
        t.id,
        json!({"title": t.title}),
    )
    .await?;
    tx.commit().await?;
    ctx.changed("devops_task", t.id);
    Ok(t)
}

pub async fn update_devops_task(
    db: &Db,
    ctx: &Ctx<'_>,
    id: i64,
    mut patch: DevopsPatch,
) -> Result<DevopsTask> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut t = store::lock_devops_task(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("devops task"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    if let Some(Some(p)) = patch.project_id {
        require_active_project(&mut tx, p, "project_id").await?;
    }
    if let Some(v) = patch.title {
        t.title = v;
    }
    if let Some(v) = patch.description {
        t.description = v;
    }
    if let Some(v) = patch.project_id {
        t.project_id = v;
    }
    if let Some(v) = patch.category {
        t.category = v;
    }
    if let Some(v) = patch.status {
        t.status = v;
    }
    if let Some(v) = patch.priority {
        t.priority = v;
    }
    if let Some(v) = patch.schedule {
        t.schedule = v;
    }
    store::save_devops_task(&mut tx, &t, ctx.now).await?;
    log(&mut tx, ctx, "update", "devops_task", id, changes).await?;
    let t = store::get_devops_task(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("devops task"))?;
    tx.commit().await?;
    ctx.changed("devops_task", t.id);
    Ok(t)
}
