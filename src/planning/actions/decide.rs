//! Deciding on a proposed milestone: approve (the tracking milestone and its features, in
//! planning's transaction) or reject (with the reason kept); and one milestone's detail.

use super::*;

/// Approves a proposed milestone: creates the tracking milestone and one feature per task
/// (its description lists the items, `path:line`), links the items to their features.
pub async fn approve(
    state: &AppState,
    actor: &str,
    id: i64,
) -> Result<(PlanMilestone, crate::tracking::Milestone)> {
    let now = state.clock.now_str();
    let c = ctx(state, actor, &now);
    let mut tx = crate::db::begin_write(&state.db).await?;
    let plan = store::lock_plan(&mut tx, id, &now)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))?;
    if plan.status != PlanStatus::PendingApproval {
        return Err(PlanningError::Conflict(format!(
            "proposed milestone {id} is {}, not pending_approval",
            plan.status
        )));
    }
    let items = store::items_by_ids(&mut tx, &plan.item_ids()).await?;
    let by_id: HashMap<i64, &PlanItem> = items.iter().map(|i| (i.id, i)).collect();
    let milestone = crate::tracking::actions::create_milestone_in(
        &mut tx,
        &c,
        NewMilestone {
            project_id: plan.project_id,
            name: plan.title.clone(),
            description: Some(format!(
                "{}\n\nFrom proposed milestone #{} (/autopilot/milestones/{}).",
                plan.description, plan.id, plan.id
            )),
            target_date: None,
            status: None,
        },
    )
    .await?;
    let mut features = Vec::new();
    for phase in &plan.phases {
        for task in &phase.tasks {
            let mut description = format!("Phase: {}\n\nFrom:\n", phase.name);
            for i in task.items.iter().filter_map(|i| by_id.get(i)) {
                description.push_str(&format!("- {} ({}): {}\n", i.location(), i.kind, i.text));
            }
            let f = crate::tracking::actions::create_feature_in(
                &mut tx,
                &c,
                NewFeature {
                    project_id: plan.project_id,
                    name: task.title.clone(),
                    milestone_id: Some(milestone.id),
                    description: Some(clip_chars(&description, crate::tracking::MAX_DESCRIPTION)),
                    priority: Some((task.priority / 10).clamp(0, crate::tracking::MAX_PRIORITY)),
                    assignee: None,
                },
            )
            .await?;
            store::link_feature(&mut tx, &task.items, f.id, &now).await?;
            features.push(f.id);
        }
    }
    store::set_plan_status(
        &mut tx,
        id,
        PlanStatus::Approved,
        None,
        Some(actor),
        Some(milestone.id),
        &now,
    )
    .await?;
    log(
        &mut tx,
        actor,
        "approve",
        "plan_milestone",
        id,
        json!({"milestone_id": milestone.id, "features": features}),
        &now,
    )
    .await?;
    tx.commit().await?;
    c.changed("milestone", milestone.id);
    for f in &features {
        c.changed("feature", *f);
    }
    let plan = store::get_plan(&state.db, id)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))?;
    Ok((plan, milestone))
}

/// Rejects a proposed milestone with a reason (kept); the same items are not proposed again.
pub async fn reject(state: &AppState, actor: &str, id: i64, reason: &str) -> Result<PlanMilestone> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(crate::validate::invalid(
            "reason",
            "a reason of 1-2000 characters is required",
        )
        .into());
    }
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let plan = store::lock_plan(&mut tx, id, &now)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))?;
    if plan.status != PlanStatus::PendingApproval {
        return Err(PlanningError::Conflict(format!(
            "proposed milestone {id} is {}, not pending_approval",
            plan.status
        )));
    }
    store::set_plan_status(
        &mut tx,
        id,
        PlanStatus::Rejected,
        Some(reason),
        Some(actor),
        None,
        &now,
    )
    .await?;
    log(
        &mut tx,
        actor,
        "reject",
        "plan_milestone",
        id,
        json!({"reason": reason}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state.events.emit(crate::events::Topic::Work, "plan", id);
    store::get_plan(&state.db, id)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))
}

pub async fn plan_detail(state: &AppState, id: i64) -> Result<PlanMilestoneDetail> {
    let milestone = store::get_plan(&state.db, id)
        .await?
        .ok_or(PlanningError::NotFound("proposed milestone"))?;
    let mut conn = state.db.acquire().await?;
    let items = store::items_by_ids(&mut conn, &milestone.item_ids()).await?;
    let project_name = crate::tracking::store::get_project(&mut *conn, milestone.project_id)
        .await?
        .map(|p| p.name)
        .unwrap_or_default();
    Ok(PlanMilestoneDetail {
        milestone,
        project_name,
        items,
    })
}

pub(crate) fn clip_chars(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(4);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n…", &s[..end])
}
