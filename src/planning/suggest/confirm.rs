//! Deciding on a suggestion: confirm it into a feature, bug, prompt or task; skip; complete.

use super::*;

/// Confirms a pending suggestion into its target. Features and bugs are made in the same
/// transaction as the status change; a prompt or a task goes through its own domain first
/// (the assigner's and the task queue's checks apply), then the suggestion records it.
pub async fn confirm(
    state: &AppState,
    who: &Identity,
    id: i64,
    req: ConfirmRequest,
) -> Result<SuggestionStatusView> {
    let actor = who.actor();
    let note = check_note(&req.note)?;
    let s = store::get_suggestion(&state.db, id)
        .await?
        .ok_or(PlanningError::NotFound("suggestion"))?;
    if s.status != SuggestionStatus::Pending {
        return Err(wrong_state(&s, "pending"));
    }
    let target = req.target.unwrap_or(s.proposed);
    let project = crate::tracking::store::get_project(&state.db, s.project_id)
        .await?
        .ok_or(PlanningError::NotFound("project"))?;
    let item = match s.source {
        SuggestionSource::Item => store::get_item(&state.db, s.source_id).await?,
        _ => None,
    };
    let body = describe(&s, item.as_ref(), &project);
    // Made outside the suggestion's transaction: a prompt or a task.
    let made_outside = match target {
        Target::Prompt => {
            let source = match s.source {
                SuggestionSource::Bug => Some(("bug", s.source_id)),
                SuggestionSource::ErrorGroup => Some(("error", s.source_id)),
                _ => None,
            };
            let mut metadata = json!({"project": project.name, "suggestion_id": s.id});
            if let Some(path) = &project.source_path {
                metadata["cwd"] = json!(path);
            }
            let prompt = crate::agents::assigner::NewPrompt {
                content: body.clone(),
                priority: Some((s.score / 10).clamp(0, 10)),
                target_session: req.target_session.clone(),
                target_role: req.target_role.clone(),
                target_group: None,
                timeout_minutes: None,
                max_retries: None,
                metadata: Some(metadata),
                parent_id: None,
                from_session: None,
                node: req.node.clone(),
            };
            let pid =
                crate::agents::assigner::api::enqueue(&state.agents_state(), who, prompt, source)
                    .await?;
            Some(pid)
        }
        Target::Task => {
            let t = match (s.source, &req.task_type) {
                (_, Some(task_type)) => {
                    let task = crate::tasks::NewTask {
                        task_type: task_type.clone(),
                        payload: req.payload.clone(),
                        priority: None,
                        max_retries: None,
                        timeout_s: None,
                        run_after: None,
                        tags: None,
                        node: req.node.clone(),
                        project_id: Some(project.id),
                    };
                    crate::tasks::actions::may_create(who, &task)?;
                    crate::tasks::actions::create_task(&state.task_state(), &actor, task).await?
                }
                (SuggestionSource::FailedTask, None) => {
                    crate::tasks::actions::retry(&state.task_state(), &actor, s.source_id).await?
                }
                (_, None) => {
                    return Err(crate::validate::invalid(
                        "type",
                        "a task needs its type (and payload): {\"target\": \"task\", \"type\": \"shell\", \"payload\": {...}}",
                    )
                    .into())
                }
            };
            Some(t.id)
        }
        Target::Feature | Target::Bug => None,
    };
    let now = state.clock.now_str();
    let ctx = Ctx {
        actor: &actor,
        now: &now,
        events: &state.events,
    };
    let mut tx = crate::db::begin_write(&state.db).await?;
    let s = store::lock_suggestion(&mut tx, id, &now)
        .await?
        .ok_or(PlanningError::NotFound("suggestion"))?;
    if s.status != SuggestionStatus::Pending {
        return Err(wrong_state(&s, "pending"));
    }
    let mut announce = None;
    let result_id = match (target, made_outside) {
        (_, Some(id)) => id,
        (Target::Feature, None) => {
            let f = crate::tracking::actions::create_feature_in(
                &mut tx,
                &ctx,
                crate::tracking::NewFeature {
                    project_id: project.id,
                    name: s.title.clone(),
                    milestone_id: None,
                    description: Some(actions::clip_chars(&body, crate::tracking::MAX_DESCRIPTION)),
                    priority: Some((s.score / 10).clamp(0, crate::tracking::MAX_PRIORITY)),
                    assignee: None,
                },
            )
            .await?;
            if let Some(i) = &item {
                store::link_feature(&mut tx, &[i.id], f.id, &now).await?;
            }
            announce = Some(("feature", f.id));
            f.id
        }
        (_, None) => {
            let severity = match s.score {
                x if x >= 60 => crate::tracking::BugSeverity::High,
                x if x >= 30 => crate::tracking::BugSeverity::Medium,
                _ => crate::tracking::BugSeverity::Low,
            };
            let b = crate::tracking::actions::create_bug_in(
                &mut tx,
                &ctx,
                crate::tracking::NewBug {
                    project_id: project.id,
                    title: s.title.trim_start_matches("File a bug for: ").to_string(),
                    milestone_id: None,
                    description: Some(actions::clip_chars(&body, crate::tracking::MAX_DESCRIPTION)),
                    severity: Some(severity),
                    assignee: None,
                },
            )
            .await?;
            announce = Some(("bug", b.id));
            b.id
        }
    };
    store::set_suggestion_status(
        &mut tx,
        id,
        SuggestionStatus::Confirmed,
        Some((target, result_id)),
        &now,
    )
    .await?;
    store::record_history(
        &mut tx,
        id,
        SuggestionStatus::Confirmed,
        &actor,
        Some(&note.unwrap_or_else(|| format!("{target} #{result_id}"))),
        &now,
    )
    .await?;
    crate::activity::store::record(
        &mut tx,
        &actor,
        "confirm",
        "suggestion",
        Some(id),
        &json!({"target": target, "result_id": result_id}),
        &now,
    )
    .await?;
    tx.commit().await?;
    if let Some((entity, eid)) = announce {
        ctx.changed(entity, eid);
    }
    state
        .events
        .emit(crate::events::Topic::Work, "suggestion", id);
    status(state, id).await
}

/// The text a confirmed suggestion carries into its feature, bug or prompt.
fn describe(s: &Suggestion, item: Option<&PlanItem>, project: &crate::tracking::Project) -> String {
    let mut d = format!(
        "{}\n\nWhy: {}\nProject: {}",
        s.title, s.reason, project.name
    );
    if let Some(p) = &project.source_path {
        d.push_str(&format!(" ({p})"));
    }
    if let Some(i) = item {
        d.push_str(&format!("\nWhere: {} — {}", i.location(), i.text));
        if let Some(h) = &i.heading {
            d.push_str(&format!("\nUnder: {h}"));
        }
    }
    d.push_str(&format!("\n\nFrom task suggestion #{}.", s.id));
    d
}

/// Skips a pending suggestion (the reason is kept); it is not suggested again.
pub async fn skip(
    state: &AppState,
    actor: &str,
    id: i64,
    req: NoteRequest,
) -> Result<SuggestionStatusView> {
    change(
        state,
        actor,
        id,
        req,
        SuggestionStatus::Skipped,
        &[SuggestionStatus::Pending],
    )
    .await
}

/// Marks a suggestion done (pending or confirmed).
pub async fn complete(
    state: &AppState,
    actor: &str,
    id: i64,
    req: NoteRequest,
) -> Result<SuggestionStatusView> {
    change(
        state,
        actor,
        id,
        req,
        SuggestionStatus::Completed,
        &[SuggestionStatus::Pending, SuggestionStatus::Confirmed],
    )
    .await
}

async fn change(
    state: &AppState,
    actor: &str,
    id: i64,
    req: NoteRequest,
    to: SuggestionStatus,
    from: &[SuggestionStatus],
) -> Result<SuggestionStatusView> {
    let note = check_note(&req.note)?;
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let s = store::lock_suggestion(&mut tx, id, &now)
        .await?
        .ok_or(PlanningError::NotFound("suggestion"))?;
    if !from.contains(&s.status) {
        let names: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        return Err(wrong_state(&s, &names.join(" or ")));
    }
    store::set_suggestion_status(&mut tx, id, to, None, &now).await?;
    store::record_history(&mut tx, id, to, actor, note.as_deref(), &now).await?;
    crate::activity::store::record(
        &mut tx,
        actor,
        to.as_str(),
        "suggestion",
        Some(id),
        &json!({"note": note}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state
        .events
        .emit(crate::events::Topic::Work, "suggestion", id);
    status(state, id).await
}
