//! Operations on features: each one transaction with its activity record.

use crate::db::Db;
use crate::tracking::actions::*;
use crate::tracking::store;
use crate::tracking::*;
use serde_json::json;
use sqlx::AnyConnection;

pub async fn feature_detail(db: &Db, id: i64) -> Result<FeatureDetail> {
    let feature = store::get_feature(db, id)
        .await?
        .ok_or(TrackingError::NotFound("feature"))?;
    let history = store::feature_history(db, id).await?;
    Ok(FeatureDetail {
        allowed_next: feature.status.next().to_vec(),
        feature,
        history,
    })
}

pub async fn create_feature(db: &Db, ctx: &Ctx<'_>, input: NewFeature) -> Result<Feature> {
    let mut tx = crate::db::begin_write(db).await?;
    let f = create_feature_in(&mut tx, ctx, input).await?;
    tx.commit().await?;
    ctx.changed("feature", f.id);
    Ok(f)
}

/// [`create_feature`] inside the caller's transaction (with its history and activity rows);
/// the caller commits and then announces it (`Ctx::changed`).
pub async fn create_feature_in(
    conn: &mut AnyConnection,
    ctx: &Ctx<'_>,
    mut input: NewFeature,
) -> Result<Feature> {
    input.validate()?;
    require_active_project(&mut *conn, input.project_id, "project_id").await?;
    if let Some(m) = input.milestone_id {
        require_milestone_in(&mut *conn, m, input.project_id).await?;
    }
    let f = store::insert_feature(&mut *conn, &input, ctx.now).await?;
    store::record_feature_status(&mut *conn, f.id, None, f.status, None, ctx.actor, ctx.now)
        .await?;
    log(
        conn,
        ctx,
        "create",
        "feature",
        f.id,
        json!({"name": f.name, "project_id": f.project_id}),
    )
    .await?;
    Ok(f)
}

pub async fn update_feature(
    db: &Db,
    ctx: &Ctx<'_>,
    id: i64,
    mut patch: FeaturePatch,
) -> Result<Feature> {
    patch.validate()?;
    let mut tx = crate::db::begin_write(db).await?;
    let mut f = store::lock_feature(&mut tx, id, ctx.now)
        .await?
        .ok_or(TrackingError::NotFound("feature"))?;
    let changes = serde_json::to_value(&patch).unwrap_or_default();
    if let Some(Some(m)) = patch.milestone_id {
        require_milestone_in(&mut tx, m, f.project_id).await?;
    }
    let from = f.status;
    let status_change = match patch.status {
        Some(to) if to != from => {
            if !from.can_move_to(to) {
                return Err(TrackingError::Transition {
                    from: from.to_string(),
                    to: to.to_string(),
                    allowed: from.next().iter().map(|s| s.to_string()).collect(),
                });
            }
            f.status = to;
            true
        }
        _ => false,
    };
    if let Some(n) = patch.name {
        f.name = n;
    }
    if let Some(d) = patch.description {
        f.description = d;
    }
    if let Some(m) = patch.milestone_id {
        f.milestone_id = m;
    }
    if let Some(p) = patch.priority {
        f.priority = p;
    }
    if let Some(a) = patch.assignee {
        f.assignee = a;
    }
    store::save_feature(&mut tx, &f, ctx.now).await?;
    if status_change {
        store::record_feature_status(
            &mut tx,
            id,
            Some(from),
            f.status,
            patch.comment.as_deref(),
            ctx.actor,
            ctx.now,
        )
        .await?;
    }
    log(&mut tx, ctx, "update", "feature", id, changes).await?;
    let f = store::get_feature(&mut *tx, id)
        .await?
        .ok_or(TrackingError::NotFound("feature"))?;
    tx.commit().await?;
    ctx.changed("feature", f.id);
    Ok(f)
}
