//! Operations on bugs: each one transaction with its activity record.

use crate::db::Db;
use crate::tracking::actions::*;
use crate::tracking::store;
use crate::tracking::*;
use serde_json::json;
use sqlx::AnyConnection;

pub async fn create_bug(db: &Db, ctx: &Ctx<'_>, input: NewBug) -> Result<Bug> {
    let mut tx = crate::db::begin_write(db).await?;
    let b = create_bug_in(&mut tx, ctx, input).await?;
    tx.commit().await?;
    ctx.changed("bug", b.id);
    Ok(b)
}

/// [`create_bug`] inside the caller's transaction (with its activity row); the caller commits
/// and then announces it (`Ctx::changed`).
pub async fn create_bug_in(
    conn: &mut AnyConnection,
    ctx: &Ctx<'_>,
    mut input: NewBug,
) -> Result<Bug> {
    input.validate()?;
    require_active_project(&mut *conn, input.project_id, "project_id").await?;
    if let Some(m) = input.milestone_id {
        require_milestone_in(&mut *conn, m, input.project_id).await?;
    }
    let b = store::insert_bug(&mut *conn, &input, ctx.now).await?;
    log(
        conn,
        ctx,
        "create",
        "bug",
        b.id,
        json!({"title": b.title, "severity": b.severity}),
    )
    .await?;
    Ok(b)
}

pub async fn update_bug(db: &Db, ctx: &Ctx<'_>, id: i64, mut patch: BugPatch) -> Result<Bug> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut b = store::lock_bug(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("bug"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    let was = b.status;
    if let Some(Some(m)) = patch.milestone_id {
        require_milestone_in(&mut tx, m, b.project_id).await?;
    }
    if let Some(to) = patch.status {
        if to != b.status {
            if !b.status.next().contains(&to) {
                return Err(TrackingError::Transition {
                    from: b.status.to_string(),
                    to: to.to_string(),
                    allowed: b.status.next().iter().map(|s| s.to_string()).collect(),
                });
            }
            b.resolved_at = if to.is_done() {
                b.resolved_at.or_else(|| Some(ctx.now.to_string()))
            } else {
                None
            };
            b.status = to;
        }
    }
    if let Some(t) = patch.title {
        b.title = t;
    }
    if let Some(d) = patch.description {
        b.description = d;
    }
    if let Some(m) = patch.milestone_id {
        b.milestone_id = m;
    }
    if let Some(s) = patch.severity {
        b.severity = s;
    }
    if let Some(a) = patch.assignee {
        b.assignee = a;
    }
    let finished_now = patch.status.is_some_and(|to| to.is_done()) && was != b.status;
    store::save_bug(&mut tx, &b, ctx.now).await?;
    log(&mut tx, ctx, "update", "bug", id, changes).await?;
    if finished_now {
        // The error groups this bug was created from are resolved with it (a later
        // occurrence reopens them as regressed).
        crate::errors::actions::resolve_groups_of_bug(&mut tx, ctx.actor, ctx.now, id).await?;
    }
    let b = store::get_bug(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("bug"))?;
    tx.commit().await?;
    ctx.changed("bug", b.id);
    Ok(b)
}
