//! An item's agent session: started (or found again by its name) in a new worktree and branch
//! through `agents::launch::start`, with a permission pattern scoped to it.

use super::super::runner::{finish, ACTOR};
use super::super::work::{Item, ItemState};
use super::super::*;
use super::block;
use crate::agents::launch::StartSession;
use crate::agents::SessionRole;
use crate::app::AppState;
use crate::auth::Identity;
use serde_json::json;

pub fn session_name(run: &Run, item: &Item) -> String {
    format!("ap{}-{}", run.id, item.seq)
}

fn branch_name(run: &Run, item: &Item) -> String {
    format!("autopilot/run-{}-{}", run.id, item.seq)
}

/// Starts (or finds again) the item's session in a new worktree, and scopes its permissions.
pub(super) async fn launch(
    state: &AppState,
    run: &Run,
    who: &Identity,
    source: &str,
    mut item: Item,
) -> RunResult<bool> {
    let key = format!("item:{}:session", item.seq);
    let name = session_name(run, &item);
    let known = crate::agents::store::session(&state.db, "local", &name).await?;
    let (cwd, branch) = match known {
        Some(s) if s.launched != 0 && s.gone_at.is_none() && s.branch.is_some() => {
            (s.cwd.unwrap_or_default(), s.branch.unwrap_or_default())
        }
        _ => {
            let spec = &run.agent;
            let req = StartSession {
                name: name.clone(),
                agent: spec.agent,
                cwd: Some(source.to_string()),
                node: None,
                role: Some(SessionRole::Worker),
                groups: vec![format!("autopilot-run-{}", run.id)],
                manager: None,
                worktree: true,
                branch: Some(branch_name(run, &item)),
                program: spec.program.clone(),
                args: spec.args.clone(),
                env: spec.env.clone(),
                no_gateway: spec.no_gateway,
            };
            match crate::agents::launch::start(&state.agents_state(), who, req).await {
                Ok(s) => (s.cwd.unwrap_or_default(), s.branch.unwrap_or_default()),
                Err(e) => {
                    item.reason = format!("cannot start its agent: {e}");
                    let reason = format!("item {}: cannot start its agent: {e}", item.seq);
                    return block(state, run, &key, Some(&item), &reason).await;
                }
            }
        }
    };
    item.token_id = crate::agents::store::hook_token(&state.db, "local", &name).await?;
    item.base_commit = super::git::head(&cwd).await.ok();
    scope_permissions(state, run, &item, &name, &cwd).await?;
    item.session = Some(name);
    item.branch = Some(branch);
    item.worktree = Some(cwd);
    item.state = ItemState::Implementing;
    item.prompt_id = None;
    let result = json!({"session": item.session, "branch": item.branch, "worktree": item.worktree});
    finish(state, run, &key, result, Some(&item), None).await
}

/// One pattern per item: approve file edits inside its worktree (and the run's allowed paths),
/// in its session only. Anything else still asks, and the never-list still refuses.
async fn scope_permissions(
    state: &AppState,
    run: &Run,
    item: &Item,
    session: &str,
    worktree: &str,
) -> RunResult<()> {
    use crate::agents::permission_store as pstore;
    let pattern_name = format!(
        "autopilot run {} item {}: edits in its worktree",
        run.id, item.seq
    );
    if pstore::patterns(&state.db)
        .await?
        .iter()
        .any(|p| p.name == pattern_name)
    {
        return Ok(());
    }
    let root = regex::escape(worktree.trim_end_matches('/'));
    let paths: Vec<String> = run
        .constraints
        .allowed_paths
        .iter()
        .map(|p| regex::escape(p.trim_end_matches('/')))
        .collect();
    let subject = if paths.is_empty() {
        format!("^{root}/")
    } else {
        format!("^{root}/({})(/|$)", paths.join("|"))
    };
    let fields = pstore::PatternFields {
        name: pattern_name,
        tool_regex: "^(Write|Edit|MultiEdit|NotebookEdit)$".into(),
        subject_regex: subject,
        session_scope: Some(session.to_string()),
        role_scope: None,
        decision: "approve".into(),
        enabled: true,
        override_guard: false,
    };
    pstore::insert_pattern(&state.db, &fields, ACTOR, &state.clock.now_str()).await?;
    Ok(())
}
