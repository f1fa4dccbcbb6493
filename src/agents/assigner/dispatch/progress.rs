//! After typing: a typed prompt's progress (taken, Enter again, cleared, completed, timed
//! out) and escalation to its session's manager.

use super::*;

/// Moves one active prompt along: timeout, lost session, acceptance, completion.
pub(super) async fn progress(
    state: &AgentsState,
    p: &Prompt,
    live: &[LiveSession],
    rows: &HashMap<String, SessionRow>,
    report: &mut TickReport,
) -> Result<(), AgentsError> {
    let now = state.clock.now();
    let now_s = crate::clock::format(now);
    let Some(name) = p.assigned_session.clone() else {
        return Ok(());
    };
    let requeue = p.retries < p.max_retries;
    let Some(sess) = live.iter().find(|s| s.tmux.name == name) else {
        store::fail_active(
            &state.db,
            p.id,
            &format!("session {name} is gone"),
            requeue,
            &now_s,
        )
        .await?;
        push(report, p.id, requeue);
        return Ok(());
    };
    if let Some(at) = parse(&p.assigned_at) {
        if now - at > time::Duration::minutes(p.timeout_minutes) {
            let msg = format!("timed out after {} minutes in {name}", p.timeout_minutes);
            store::fail_active(&state.db, p.id, &msg, false, &now_s).await?;
            escalate(state, p, rows.get(&name), &now_s).await?;
            report.failed.push(p.id);
            return Ok(());
        }
    }
    let session = SessionName::parse(&name)?;
    let Some(typed_at) = parse(&p.typed_at) else {
        // serve stopped between the claim and typing: typed if the pane shows the text, or
        // text sits in the input line the claim found empty (a long paste shows as a
        // placeholder); step 5 then submits or clears it.
        let screen = state
            .agents
            .tmux()
            .capture(&session, 200, CaptureMode::Plain)
            .await?;
        let h = head(&p.content);
        let sitting = sess.state == PaneState::Idle && sess.input == InputLine::HasText;
        if sitting || (!h.is_empty() && screen.contains(&h)) {
            store::mark_typed_after_restart(&state.db, p.id, &now_s).await?;
        } else {
            store::unclaim_untyped(&state.db, p.id, &now_s).await?;
        }
        return Ok(());
    };
    let hook_signals = match rows.get(&name) {
        Some(row) => {
            session_store::hook_signals_since(&state.db, row.id, &crate::clock::format(typed_at))
                .await?
        }
        None => Vec::new(),
    };
    let hook_submitted = hook_signals
        .iter()
        .any(|(s, _)| s == "hook:UserPromptSubmit");
    // The Stop hook can arrive before the agent has drawn its answer (a fast turn): the pane
    // is the cross-check, so the prompt completes once the pane looks finished too, or
    // STOP_REDRAW after the hook whatever the pane shows (an unrecognised screen).
    let hook_stopped = hook_signals
        .iter()
        .filter(|(s, _)| s == "hook:Stop")
        .filter_map(|(_, at)| crate::clock::parse(at))
        .any(|at| sess.ready_for_prompt() || now - at >= STOP_REDRAW);
    let pane_finished =
        sess.state == PaneState::Idle && sess.input == InputLine::Empty && now - typed_at >= SETTLE;
    let finished_by = if hook_stopped {
        Some("hook:Stop".to_string())
    } else if pane_finished {
        Some(sess.state_by.clone())
    } else {
        None
    };
    if p.status == PromptStatus::Assigned {
        let accepted_by = if hook_submitted {
            Some("hook:UserPromptSubmit".to_string())
        } else if matches!(
            sess.state,
            PaneState::Busy | PaneState::WaitingForPermission
        ) {
            Some(sess.state_by.clone())
        } else {
            None
        };
        if let Some(by) = accepted_by {
            if finished_by.is_none() {
                store::mark_started(&state.db, p.id, &by, &now_s).await?;
                report.started.push(p.id);
                return Ok(());
            }
        } else if finished_by.is_some() && !hook_stopped {
            // Idle again without ever being seen busy: a turn faster than a tick, or text the
            // agent dropped. Only the prompt echoed on screen tells them apart; without it the
            // prompt is failed (never retyped: it may have run) for a person to look at.
            let screen = state
                .agents
                .tmux()
                .capture(&session, RESPONSE_LINES, CaptureMode::Plain)
                .await?;
            let h = head(&p.content);
            if h.is_empty() || !screen.contains(&h) {
                if now - typed_at > ACCEPT_WITHIN {
                    let msg = format!(
                        "{name} went idle without being seen busy and the prompt is not on screen; it may not have run (retry to send it again)"
                    );
                    store::fail_active(&state.db, p.id, &msg, false, &now_s).await?;
                    report.failed.push(p.id);
                }
                return Ok(());
            }
        } else if finished_by.is_none() {
            if sess.state == PaneState::Idle && sess.input != InputLine::Empty {
                // Step 5: the text (or something) sits in the input line, not submitted.
                return undelivered(state, p, sess, typed_at, report).await;
            }
            if now - typed_at > ACCEPT_WITHIN {
                // Whether the text sits in the pane cannot be read: a person looks; it is
                // never retyped elsewhere.
                let msg = format!(
                    "not accepted by {name} within {} s (pane: {}, input {}); not sent elsewhere (look at the pane, then retry)",
                    ACCEPT_WITHIN.whole_seconds(),
                    sess.state,
                    sess.input
                );
                store::fail_active(&state.db, p.id, &msg, false, &now_s).await?;
                report.failed.push(p.id);
            }
            return Ok(());
        }
    }
    if let Some(by) = finished_by {
        let response = state
            .agents
            .tmux()
            .capture(&session, RESPONSE_LINES, CaptureMode::Plain)
            .await?;
        let transcript = rows.get(&name).and_then(|r| r.transcript_path.clone());
        if store::mark_completed(
            &state.db,
            p.id,
            &by,
            &response,
            transcript.as_deref(),
            &now_s,
        )
        .await?
        {
            report.completed.push(p.id);
            crate::agents::assigner::api::on_completed(state, p.id).await;
        }
    }
    Ok(())
}

/// Step 5: `p` was typed into `sess`, which reads idle with text in its input line and no
/// submit hook came: Enter again (bounded, spaced, after a fresh reading), then clear.
pub(super) async fn undelivered(
    state: &AgentsState,
    p: &Prompt,
    sess: &LiveSession,
    typed_at: OffsetDateTime,
    report: &mut TickReport,
) -> Result<(), AgentsError> {
    let now = state.clock.now();
    let last = parse(&p.entered_at).unwrap_or(typed_at);
    if now - last < ENTER_SPACING {
        return Ok(());
    }
    // A fresh reading and the hooks once more: the turn may have started since the tick read.
    match read(state, sess).await? {
        Some((c, _)) if c.state == PaneState::Idle && c.input != InputLine::Empty => {}
        _ => return Ok(()),
    }
    let session_id = session_store::session(&state.db, LOCAL_NODE, &sess.tmux.name)
        .await?
        .map(|r| r.id);
    if let Some(id) = session_id {
        let since = crate::clock::format(typed_at);
        if session_store::hook_signals_since(&state.db, id, &since)
            .await?
            .iter()
            .any(|(s, _)| s == "hook:UserPromptSubmit")
        {
            return Ok(());
        }
    }
    if p.enter_presses < MAX_ENTERS {
        let name = SessionName::parse(&sess.tmux.name)?;
        state.agents.tmux().send_keys(&name, &["Enter"]).await?;
        store::pressed_enter(&state.db, p.id, &crate::clock::format(now)).await?;
        report.entered_again.push(p.id);
        return Ok(());
    }
    let why = format!(
        "not submitted in {} after {} presses of Enter; its input line was cleared",
        sess.tmux.name, p.enter_presses
    );
    release(state, p, sess, &why, report).await
}

pub(super) fn push(report: &mut TickReport, id: i64, requeued: bool) {
    if requeued {
        report.requeued.push(id);
    } else {
        report.failed.push(id);
    }
}

/// A stalled prompt goes to the session's manager (a new prompt, child of the stalled one),
/// or to the dashboard when the session has none.
pub(super) async fn escalate(
    state: &AgentsState,
    p: &Prompt,
    row: Option<&SessionRow>,
    now: &str,
) -> Result<(), AgentsError> {
    let manager = row.and_then(|r| r.manager.clone());
    match manager {
        Some(m) => {
            let content = format!(
                "Escalation: prompt #{} sent to {} stalled past its {}-minute timeout. Decide what to do with it. Original prompt: {}",
                p.id,
                p.assigned_session.as_deref().unwrap_or("?"),
                p.timeout_minutes,
                p.content.chars().take(500).collect::<String>()
            );
            store::insert(
                &state.db,
                &store::Insert {
                    content: &content,
                    priority: p.priority.max(5),
                    target_session: Some(&m),
                    target_role: None,
                    target_group: None,
                    node: &p.node,
                    timeout_minutes: p.timeout_minutes,
                    max_retries: p.max_retries,
                    metadata: &serde_json::json!({"escalation_of": p.id}),
                    parent_id: Some(p.id),
                    source: None,
                    created_by: "assigner",
                },
                now,
            )
            .await?;
            store::escalate(&state.db, p.id, &m, now).await?;
        }
        None => store::escalate(&state.db, p.id, "dashboard", now).await?,
    }
    Ok(())
}
