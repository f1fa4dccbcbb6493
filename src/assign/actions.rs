//! The operations: an item's prompt, queueing it, and its follow-up when it completes.

use super::{AssignRequest, Assigned, PROMPT_MESSAGE_BYTES, PROMPT_NODES, PROMPT_STACK_BYTES};
use crate::agents::assigner::api::enqueue;
use crate::agents::assigner::{ItemKind, NewPrompt, DEFAULT_PRIORITY};
use crate::agents::route::NodeRef;
use crate::agents::{AgentsState, SessionRole};
use crate::http::error::ApiError;
use crate::tracking::{BugPatch, BugStatus, FeaturePatch, FeatureStatus};

/// Checks the request, writes the item's prompt and queues it. Shared by the API and the
/// dashboard form. `who` is recorded as the prompt's creator.
pub async fn assign_item(
    state: &AgentsState,
    who: &crate::auth::Identity,
    r: AssignRequest,
) -> Result<Assigned, ApiError> {
    let generated = prompt_for(state, r.kind, r.id).await?;
    if let Some(role) = &r.role {
        role.parse::<SessionRole>()
            .map_err(|m| ApiError::invalid("role", m))?;
    }
    let node = NodeRef::parse(None).map_err(|e| ApiError::invalid("session", e.message))?;
    if let Some(name) = &r.session {
        let live = crate::agents::store::session(&state.db, node.name(), name)
            .await?
            .is_some_and(|row| row.gone_at.is_none());
        if !live {
            return Err(ApiError::invalid(
                "session",
                format!("no live agent session named '{name}' on this server"),
            ));
        }
    }
    let content = r.message.unwrap_or(generated);
    let id = enqueue(
        state,
        who,
        NewPrompt {
            content: content.clone(),
            priority: Some(r.priority.unwrap_or(DEFAULT_PRIORITY)),
            target_session: r.session,
            target_role: r.role,
            target_group: r.group,
            ..Default::default()
        },
        Some((r.kind.as_str(), r.id)),
    )
    .await?;
    Ok(Assigned {
        prompt_id: id,
        success: true,
        content,
    })
}

/// The generated prompt for an item: what it is, its details and the link back. 404 (field
/// `id`) when the item does not exist.
pub async fn prompt_for(state: &AgentsState, kind: ItemKind, id: i64) -> Result<String, ApiError> {
    let base = state.tasks.local_url().unwrap_or("").to_string();
    let link = format!("{base}{}", kind.page(id));
    Ok(match kind {
        ItemKind::Feature => {
            let f = crate::tracking::store::get_feature(&state.db, id)
                .await?
                .ok_or_else(|| ApiError::not_found("feature").with_field("id"))?;
            format!(
                "Implement feature #{} (priority {}): {}\n\n{}\n\nDetails: {link}",
                f.id, f.priority, f.name, f.description
            )
        }
        ItemKind::Bug => {
            let b = crate::tracking::store::get_bug(&state.db, id)
                .await?
                .ok_or_else(|| ApiError::not_found("bug").with_field("id"))?;
            format!(
                "Fix bug #{} ({}): {}\n\n{}\n\nDetails: {link}",
                b.id, b.severity, b.title, b.description
            )
        }
        ItemKind::Error => {
            let (g, stack) = crate::errors::actions::group_with_stack(&state.db, id)
                .await
                .map_err(|e| ApiError::from(e).with_field("id"))?;
            error_prompt(&g, stack.as_deref(), &link)
        }
    })
}

/// An error group as a prompt, bounded: the message and stack trace are cut (head and tail
/// kept) and at most [`PROMPT_NODES`] nodes are named.
pub fn error_prompt(g: &crate::errors::ErrorGroup, stack: Option<&str>, link: &str) -> String {
    use crate::errors::cut;
    let mut nodes: Vec<String> = g
        .nodes
        .iter()
        .take(PROMPT_NODES)
        .map(|n| format!("{} ({})", n.node_id, n.count))
        .collect();
    if g.nodes.len() > PROMPT_NODES {
        nodes.push(format!("and {} more", g.nodes.len() - PROMPT_NODES));
    }
    let mut p = format!(
        "Fix error group #{id}: {t}: {m}\n\nSource: {s}; level: {l}; status: {st}\nSeen {c} times, first {f}, last {ls}\nNodes: {n}\nGrouped as: {title}\n",
        id = g.id,
        t = g.error_type,
        m = cut(&g.message, PROMPT_MESSAGE_BYTES),
        s = g.source,
        l = g.level,
        st = g.status,
        c = g.count,
        f = g.first_seen,
        ls = g.last_seen,
        n = if nodes.is_empty() { "—".to_string() } else { nodes.join(", ") },
        title = cut(&g.title, PROMPT_MESSAGE_BYTES),
    );
    if let Some(st) = stack {
        p.push_str("\nStack trace of a recent occurrence:\n");
        p.push_str(&cut(st, PROMPT_STACK_BYTES));
        p.push('\n');
    }
    p.push_str(&format!("\nDetails: {link}"));
    p
}

/// The moves that take an item from `from` to `review`: straight there when its workflow
/// allows, else through `in_progress`; none when it is in review already or neither move is
/// allowed (a finished or cancelled item keeps its status).
fn path_to_review<S: Copy + PartialEq>(
    from: S,
    review: S,
    in_progress: S,
    can: impl Fn(S, S) -> bool,
) -> Vec<S> {
    if from == review {
        Vec::new()
    } else if can(from, review) {
        vec![review]
    } else if can(from, in_progress) && can(in_progress, review) {
        vec![in_progress, review]
    } else {
        Vec::new()
    }
}

/// Runs the follow-ups of prompt `id`, which just completed.
pub async fn prompt_completed(state: &AgentsState, id: i64) -> Result<(), anyhow::Error> {
    let Some(p) = crate::agents::assigner::store::get(&state.db, id).await? else {
        return Ok(());
    };
    let kind = p.source_kind.as_deref().and_then(|k| k.parse().ok());
    let (Some(kind), Some(item)) = (kind, p.source_id) else {
        return Ok(());
    };
    let now = state.clock.now_str();
    let ctx = crate::tracking::actions::Ctx {
        actor: "assigner",
        now: &now,
        events: &state.events,
    };
    let comment = format!(
        "assigner prompt #{id} completed in session {}",
        p.assigned_session.as_deref().unwrap_or("?")
    );
    match kind {
        ItemKind::Feature => {
            let Some(f) = crate::tracking::store::get_feature(&state.db, item).await? else {
                return Ok(());
            };
            let steps = path_to_review(
                f.status,
                FeatureStatus::Review,
                FeatureStatus::InProgress,
                FeatureStatus::can_move_to,
            );
            for step in steps {
                let patch = FeaturePatch {
                    status: Some(step),
                    comment: Some(comment.clone()),
                    ..Default::default()
                };
                crate::tracking::actions::update_feature(&state.db, &ctx, item, patch)
                    .await
                    .map_err(|e| anyhow::anyhow!("moving feature {item}: {e}"))?;
            }
        }
        ItemKind::Bug => {
            let Some(b) = crate::tracking::store::get_bug(&state.db, item).await? else {
                return Ok(());
            };
            let steps = path_to_review(
                b.status,
                BugStatus::Review,
                BugStatus::InProgress,
                BugStatus::can_move_to,
            );
            for step in steps {
                let patch = BugPatch {
                    status: Some(step),
                    comment: Some(comment.clone()),
                    ..Default::default()
                };
                crate::tracking::actions::update_bug(&state.db, &ctx, item, patch)
                    .await
                    .map_err(|e| anyhow::anyhow!("moving bug {item}: {e}"))?;
            }
        }
        ItemKind::Error => {
            match crate::errors::actions::mark_in_review(&state.db, "assigner", &now, item, id)
                .await
            {
                Ok(_) | Err(crate::errors::actions::ErrorsError::NotFound(_)) => {}
                Err(e) => return Err(anyhow::anyhow!("marking error group {item}: {e}")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_to_review_follows_each_workflow() {
        use BugStatus as B;
        use FeatureStatus as F;
        let bug = |from| path_to_review(from, B::Review, B::InProgress, B::can_move_to);
        assert_eq!(bug(B::Open), [B::InProgress, B::Review]);
        assert_eq!(bug(B::InProgress), [B::Review]);
        assert!(bug(B::Review).is_empty());
        assert!(bug(B::Resolved).is_empty() && bug(B::Closed).is_empty());
        let feature = |from| path_to_review(from, F::Review, F::InProgress, F::can_move_to);
        assert_eq!(feature(F::Draft), [F::InProgress, F::Review]);
        assert_eq!(feature(F::Blocked), [F::Review]);
        assert!(feature(F::Review).is_empty() && feature(F::Cancelled).is_empty());
    }

    #[test]
    fn error_prompts_are_bounded_and_link_back() {
        let g = crate::errors::ErrorGroup {
            id: 7,
            fingerprint: "f".into(),
            error_type: "KeyError".into(),
            source: "api".into(),
            title: "t".into(),
            message: "m".repeat(100_000),
            level: crate::errors::ErrorLevel::Error,
            status: crate::errors::GroupStatus::Open,
            regressed: false,
            count: 3,
            first_seen: "2026-11-26T10:00:00.000000Z".into(),
            last_seen: "2026-11-26T11:00:00.000000Z".into(),
            last_node: "n1".into(),
            resolved_at: None,
            resolved_by: None,
            bug_id: None,
            review_at: None,
            review_prompt_id: None,
            nodes: (0..20)
                .map(|i| crate::errors::NodeCount {
                    node_id: format!("n{i}"),
                    count: 1,
                    first_seen: String::new(),
                    last_seen: String::new(),
                })
                .collect(),
        };
        let stack = "frame\n".repeat(50_000);
        let p = error_prompt(&g, Some(&stack), "http://h/errors/7");
        assert!(
            p.len() < PROMPT_MESSAGE_BYTES * 2 + PROMPT_STACK_BYTES + 2_000,
            "{}",
            p.len()
        );
        assert!(p.starts_with("Fix error group #7: KeyError: "));
        assert!(p.contains("Seen 3 times") && p.contains("n9 (1), and 10 more"));
        assert!(p.contains("Stack trace of a recent occurrence:\nframe"));
        assert!(p.ends_with("Details: http://h/errors/7"));
    }
}
