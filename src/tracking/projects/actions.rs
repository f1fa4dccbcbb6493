//! Operations on projects: each one transaction with its activity record.

use crate::db::{is_unique_violation, Db};
use crate::tracking::actions::*;
use crate::tracking::store;
use crate::tracking::*;
use serde_json::json;

pub async fn create_project(db: &Db, ctx: &Ctx<'_>, mut input: NewProject) -> Result<Project> {
    input.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let p = match store::insert_project(&mut tx, &input, ctx.now).await {
        Ok(p) => p,
        Err(e) if is_unique_violation(&e) => return Err(name_taken(&input.name)),
        Err(e) => return Err(e.into()),
    };
    log(
        &mut tx,
        ctx,
        "create",
        "project",
        p.id,
        json!({"name": p.name}),
    )
    .await?;
    tx.commit().await?;
    ctx.changed("project", p.id);
    Ok(p)
}

pub async fn update_project(
    db: &Db,
    ctx: &Ctx<'_>,
    id: i64,
    mut patch: ProjectPatch,
) -> Result<Project> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut p = store::lock_project(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("project"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    if let Some(n) = patch.name {
        p.name = n;
    }
    if let Some(d) = patch.description {
        p.description = d;
    }
    if let Some(s) = patch.source_path {
        p.source_path = s;
    }
    if let Some(s) = patch.status {
        p.status = s;
    }
    if let Some(t) = patch.tags {
        p.tags = t;
    }
    match patch.archived {
        Some(true) if p.archived_at.is_none() => p.archived_at = Some(ctx.now.to_string()),
        Some(false) => p.archived_at = None,
        _ => {}
    }
    p.archived = p.archived_at.is_some();
    match store::save_project(&mut tx, &p, ctx.now).await {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => return Err(name_taken(&p.name)),
        Err(e) => return Err(e.into()),
    }
    log(&mut tx, ctx, "update", "project", id, changes).await?;
    let p = store::get_project(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("project"))?;
    tx.commit().await?;
    ctx.changed("project", p.id);
    Ok(p)
}

/// DELETE archives: the project is hidden from lists unless asked for, and can be restored.
pub async fn archive_project(db: &Db, ctx: &Ctx<'_>, id: i64) -> Result<Project> {
    let mut tx = crate::db::begin_write(db).await?;
    let mut p = store::lock_project(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("project"))?;
    if p.archived_at.is_none() {
        p.archived_at = Some(ctx.now.to_string());
        p.archived = true;
        store::save_project(&mut tx, &p, ctx.now).await?;
        log(
            &mut tx,
            ctx,
            "archive",
            "project",
            id,
            json!({"name": p.name}),
        )
        .await?;
    }
    tx.commit().await?;
    ctx.changed("project", p.id);
    Ok(p)
}
