//! Implementing and testing: each work item gets a worktree, a branch and an agent session of
//! its own (`agents::launch::start`, the path of `session start`), a permission pattern that
//! approves edits inside its worktree only (the never-list stays on), a prompt through the
//! assigner, then the project's test command as a `test` task in the worktree. A failure goes
//! back to the agent with the output, [`MAX_ATTEMPTS`] times, then the run is `blocked`; a pass
//! is committed on the branch and proposed as a change request (a gate) in the review queue.
//!
//! Every side effect is found again after a restart before it is made again: the session by
//! its name, the prompt by its source (the item), the task by its creator text, the pattern by
//! its name, the commit by the worktree's state. The step that records it commits with the item
//! and the activity row ([`super::runner::finish`]).

use super::runner::{finish, ACTOR};
use super::work::{self, GateKind, Item, ItemState};
use super::*;
use crate::agents::launch::StartSession;
use crate::agents::SessionRole;
use crate::app::AppState;
use crate::auth::Identity;
use serde_json::json;

/// Prompts an item gets before a failing test blocks the run (each resume gives as many more).
pub const MAX_ATTEMPTS: i64 = 3;
/// The tail of a test run's output kept on the item and typed back to the agent.
const OUTPUT_TAIL: usize = 4_000;
/// What the agent's prompt source says (assigner `source_kind`).
pub const PROMPT_SOURCE: &str = "autopilot_item";

pub fn session_name(run: &Run, item: &Item) -> String {
    format!("ap{}-{}", run.id, item.seq)
}

fn branch_name(run: &Run, item: &Item) -> String {
    format!("autopilot/run-{}-{}", run.id, item.seq)
}

fn tail(s: &str) -> String {
    let s = s.trim();
    if s.len() <= OUTPUT_TAIL {
        return s.to_string();
    }
    let mut from = s.len() - OUTPUT_TAIL;
    while !s.is_char_boundary(from) {
        from += 1;
    }
    format!("…{}", &s[from..])
}

/// Blocks the run with `reason` (the item saved with it, when given).
async fn block(
    state: &AppState,
    run: &Run,
    key: &str,
    item: Option<&Item>,
    reason: &str,
) -> RunResult<bool> {
    finish(
        state,
        run,
        key,
        json!({"blocked": reason}),
        item,
        Some((RunState::Blocked, reason)),
    )
    .await
}

/// One pass over a run in `implementing` or `testing`.
pub async fn work(state: &AppState, run: &Run) -> RunResult<bool> {
    let Some(who) = super::agent::run_identity(state, run.user_id).await? else {
        return block(
            state,
            run,
            "identity",
            None,
            "the person who configured this run is disabled or gone: configure the project's autopilot again",
        )
        .await;
    };
    let project = crate::tracking::store::get_project(&state.db, run.project_id)
        .await?
        .ok_or(AutopilotError::NotFound("project"))?;
    let Some(source) = project.source_path.clone().filter(|p| !p.trim().is_empty()) else {
        return block(state, run, "source", None, "the project has no source_path").await;
    };
    let items = work::items(&state.db, run.id).await?;
    let max_parallel = run.constraints.max_parallel_agents.unwrap_or(1).max(1) as usize;
    let mut active = items
        .iter()
        .filter(|i| matches!(i.state, ItemState::Implementing | ItemState::Testing))
        .count();
    for item in items {
        let moved = match item.state {
            ItemState::Pending if active < max_parallel => {
                active += 1;
                launch(state, run, &who, &source, item).await?
            }
            ItemState::Implementing => prompt(state, run, &who, item).await?,
            ItemState::Testing => test(state, run, item).await?,
            _ => false,
        };
        // A step that blocked the run ends this pass: the rest waits for a person.
        if moved {
            if let Some(r) = super::store::get_run(&state.db, run.id).await? {
                if r.state != run.state {
                    return Ok(true);
                }
            }
        }
    }
    settle(state, run).await
}

/// Moves the run when its items say so: all in review → `blocked` on the change requests; all
/// settled → the next phase; otherwise `implementing` or `testing` by what is going on.
async fn settle(state: &AppState, run: &Run) -> RunResult<bool> {
    let items = work::items(&state.db, run.id).await?;
    let working = |s: ItemState| items.iter().any(|i| i.state == s);
    let (to, reason) = if working(ItemState::Pending) || working(ItemState::Implementing) {
        (
            RunState::Implementing,
            "agents are working on the items".to_string(),
        )
    } else if working(ItemState::Testing) {
        (
            RunState::Testing,
            "the items' tests are running".to_string(),
        )
    } else if working(ItemState::Review) {
        let n = items
            .iter()
            .filter(|i| i.state == ItemState::Review)
            .count();
        (
            RunState::Blocked,
            format!("{n} change request(s) wait for review: approve to merge, reject to keep the branch"),
        )
    } else {
        after_review(run, &items)
    };
    if to == run.state {
        return Ok(false);
    }
    finish(
        state,
        run,
        &format!("settle:{}", run.state),
        json!({}),
        None,
        Some((to, &reason)),
    )
    .await
}

/// Where a run goes once none of its items is working or in review.
pub fn after_review(run: &Run, items: &[Item]) -> (RunState, String) {
    let merged = items
        .iter()
        .filter(|i| i.state == ItemState::Merged)
        .count();
    if merged == 0 {
        let why: Vec<String> = items
            .iter()
            .map(|i| format!("item {} {}: {}", i.seq, i.state, i.reason))
            .collect();
        return (
            RunState::Done,
            format!("nothing merged ({})", why.join("; ")),
        );
    }
    match run.mode {
        Mode::AutoStaging | Mode::AutoProd => (
            RunState::Deploying,
            format!("{merged} change(s) merged: deploying to staging"),
        ),
        _ => (
            RunState::Done,
            format!("{merged} of {} change request(s) merged", items.len()),
        ),
    }
}

/// Starts (or finds again) the item's session in a new worktree, and scopes its permissions.
async fn launch(
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
            match crate::agents::launch::start(state, who, req).await {
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

fn prompt_text(run: &Run, item: &Item, test_command: Option<&str>) -> String {
    let mut t = format!(
        "Autopilot run {}, work item {}: {}\n",
        run.id, item.seq, item.title
    );
    if !item.detail.trim().is_empty() {
        t.push_str(&format!("\n{}\n", item.detail.trim()));
    }
    if !run.goal.trim().is_empty() && run.goal.trim() != item.title.trim() {
        t.push_str(&format!("\nThe run's goal: {}\n", run.goal.trim()));
    }
    t.push_str(&format!(
        "\nWorktree: {} (branch {}). Change files only inside it",
        item.worktree.as_deref().unwrap_or("?"),
        item.branch.as_deref().unwrap_or("?")
    ));
    if !run.constraints.allowed_paths.is_empty() {
        t.push_str(&format!(
            ", and only under: {}",
            run.constraints.allowed_paths.join(", ")
        ));
    }
    t.push_str(".\n");
    if run.constraints.no_breaking_changes {
        t.push_str("Make no breaking change to public interfaces.\n");
    }
    if let Some(c) = test_command {
        t.push_str(&format!("The tests run with: {c}\n"));
    }
    if item.attempts > 0 && !item.test_output.trim().is_empty() {
        t.push_str(&format!(
            "\nThe tests failed after your last change (attempt {}). Their output (tail):\n```\n{}\n```\nFix the code so the tests pass.\n",
            item.attempts,
            item.test_output.trim()
        ));
    }
    t.push_str("Do not commit: architect commits, tests and proposes the change. When you are done, answer with a short summary of what you changed.");
    t
}

/// Types the item's next prompt, or waits for its answer.
async fn prompt(state: &AppState, run: &Run, who: &Identity, mut item: Item) -> RunResult<bool> {
    let Some(pid) = item.prompt_id else {
        if let Some(max) = run.constraints.max_iterations {
            let used: i64 = work::items(&state.db, run.id)
                .await?
                .iter()
                .map(|i| i.attempts)
                .sum();
            if used >= max {
                let key = format!("iterations:{used}");
                let reason = format!(
                    "the run used its {max} iterations (prompts): raise max_iterations and resume"
                );
                return block(state, run, &key, None, &reason).await;
            }
        }
        let n = item.attempts + 1;
        let key = format!("item:{}:prompt:{n}", item.seq);
        // Made already (a restart between typing and recording it)? The newest of its source.
        let sent =
            crate::agents::assigner::store::of_source(&state.db, PROMPT_SOURCE, item.id, 100)
                .await?;
        let id = if sent.len() as i64 >= n {
            sent[0].id
        } else {
            let test_command = crate::tasks::actions::project_commands(state, run.project_id)
                .await
                .ok()
                .and_then(|c| c.test_command);
            let p = crate::agents::assigner::NewPrompt {
                content: prompt_text(run, &item, test_command.as_deref()),
                target_session: item.session.clone(),
                metadata: Some(json!({"autopilot_run": run.id, "item": item.seq, "attempt": n})),
                ..Default::default()
            };
            match crate::agents::assigner::api::enqueue(
                state,
                who,
                p,
                Some((PROMPT_SOURCE, item.id)),
            )
            .await
            {
                Ok(id) => id,
                Err(e) => {
                    let reason = format!("item {}: cannot queue its prompt: {e}", item.seq);
                    return block(state, run, &key, None, &reason).await;
                }
            }
        };
        item.prompt_id = Some(id);
        item.attempts = n;
        return finish(
            state,
            run,
            &key,
            json!({"prompt_id": id}),
            Some(&item),
            None,
        )
        .await;
    };
    let Some(p) = crate::agents::assigner::store::get(&state.db, pid).await? else {
        item.prompt_id = None;
        return finish(
            state,
            run,
            &format!("item:{}:prompt-gone:{pid}", item.seq),
            json!({}),
            Some(&item),
            None,
        )
        .await;
    };
    use crate::agents::assigner::PromptStatus as P;
    match p.status {
        P::Completed => {
            item.summary = summary_of(&p);
            item.state = ItemState::Testing;
            item.task_id = None;
            let key = format!("item:{}:answered:{}", item.seq, item.attempts);
            finish(
                state,
                run,
                &key,
                json!({"prompt_id": pid}),
                Some(&item),
                None,
            )
            .await
        }
        P::Failed | P::Cancelled => {
            let why = p.error.clone().unwrap_or_else(|| p.status.to_string());
            item.reason = format!("prompt {pid} {}: {why}", p.status);
            // A resume types a new prompt.
            item.prompt_id = None;
            let reason = format!("item {}: its prompt {pid} {}: {why}", item.seq, p.status);
            block(
                state,
                run,
                &format!("item:{}:prompt-failed:{pid}", item.seq),
                Some(&item),
                &reason,
            )
            .await
        }
        _ => Ok(false),
    }
}

/// Runs the project's test command in the item's worktree, or reads its result.
async fn test(state: &AppState, run: &Run, mut item: Item) -> RunResult<bool> {
    let commands = crate::tasks::actions::project_commands(state, run.project_id)
        .await
        .map_err(|e| AutopilotError::Conflict(e.to_string()))?;
    let required = run.constraints.required_checks.iter().any(|c| c == "tests");
    if commands.test_command.is_none() {
        if required {
            let reason = "the project has no test command, and 'tests' is a required check: set one (PUT /api/projects/{id}/commands) and resume";
            return block(state, run, "tests:missing", None, reason).await;
        }
        return propose(
            state,
            run,
            item,
            "no test command: the change is untested".into(),
        )
        .await;
    }
    let n = item.attempts;
    let Some(task_id) = item.task_id else {
        let key = format!("item:{}:test:{n}", item.seq);
        let creator = format!("autopilot (run {}, item {}, test {n})", run.id, item.seq);
        let task = match crate::tasks::store::by_creator(&state.db, run.project_id, &creator)
            .await?
        {
            Some(t) => t,
            None => crate::tasks::actions::create_task(
                state,
                &creator,
                crate::tasks::NewTask {
                    task_type: "test".into(),
                    payload: Some(json!({"worktree": item.worktree})),
                    max_retries: Some(0),
                    project_id: Some(run.project_id),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| AutopilotError::Conflict(format!("cannot queue the test task: {e}")))?,
        };
        item.task_id = Some(task.id);
        return finish(
            state,
            run,
            &key,
            json!({"task_id": task.id}),
            Some(&item),
            None,
        )
        .await;
    };
    let Some(task) = crate::tasks::store::get_task(&state.db, task_id).await? else {
        item.task_id = None;
        return finish(
            state,
            run,
            &format!("item:{}:test-gone:{task_id}", item.seq),
            json!({}),
            Some(&item),
            None,
        )
        .await;
    };
    use crate::tasks::TaskStatus as T;
    let output = || {
        let mut o = task.output.clone().unwrap_or_default();
        if let Some(e) = &task.error {
            o.push('\n');
            o.push_str(e);
        }
        tail(&o)
    };
    match task.status {
        T::Completed => propose(state, run, item, output()).await,
        T::Failed | T::Dead | T::Cancelled => {
            item.test_output = output();
            let blocked_key = format!("item:{}:blocked:{n}", item.seq);
            let block_now = n % MAX_ATTEMPTS == 0
                && super::store::step_done(&state.db, run.id, &blocked_key)
                    .await?
                    .is_none();
            if block_now {
                let reason = format!(
                    "item {}: the tests still fail after {n} attempts (task {task_id}); resume to give the agent {MAX_ATTEMPTS} more",
                    item.seq
                );
                return block(state, run, &blocked_key, Some(&item), &reason).await;
            }
            // Back to the agent with the output.
            item.state = ItemState::Implementing;
            item.prompt_id = None;
            item.task_id = None;
            let key = format!("item:{}:test-failed:{n}", item.seq);
            finish(
                state,
                run,
                &key,
                json!({"task_id": task_id, "status": task.status}),
                Some(&item),
                None,
            )
            .await
        }
        T::Pending | T::Running => Ok(false),
    }
}

/// Commits the worktree on its branch and opens the change request.
async fn propose(
    state: &AppState,
    run: &Run,
    mut item: Item,
    test_output: String,
) -> RunResult<bool> {
    let key = format!("item:{}:proposed", item.seq);
    let wt = item.worktree.clone().unwrap_or_default();
    let message = format!("autopilot run {} item {}: {}", run.id, item.seq, item.title);
    let head = match super::git::commit_all(&wt, &message).await {
        Ok(h) => h,
        Err(e) => {
            let reason = format!("item {}: cannot commit its worktree: {e}", item.seq);
            return block(state, run, &key, Some(&item), &reason).await;
        }
    };
    item.test_output = test_output;
    let base = item.base_commit.clone().unwrap_or_default();
    if head == base {
        item.state = ItemState::Failed;
        item.reason = "the agent changed nothing: no change to propose".into();
        return finish(state, run, &key, json!({"head": head}), Some(&item), None).await;
    }
    item.diff_stat = super::git::diff_stat(&wt, &base, &head)
        .await
        .unwrap_or_default();
    item.head_commit = Some(head.clone());
    item.state = ItemState::Review;
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let gate = work::open_gate(
        &mut tx,
        run.id,
        Some(item.id),
        GateKind::ChangeRequest,
        &now,
    )
    .await?;
    tx.commit().await?;
    finish(
        state,
        run,
        &key,
        json!({"head": head, "gate": gate.id}),
        Some(&item),
        None,
    )
    .await
}

/// The agent's answer: the last assistant text of its transcript (Claude Code's JSONL, as its
/// Stop hook reported it), else the end of the pane the turn left.
fn summary_of(p: &crate::agents::assigner::Prompt) -> String {
    if let Some(t) = p.transcript_path.as_deref().and_then(last_assistant_text) {
        return t;
    }
    let pane = p.response.as_deref().unwrap_or("");
    let lines: Vec<&str> = pane.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines.len().saturating_sub(12);
    lines[from..].join("\n")
}

/// Only a `.jsonl` file of at most 20 MB, and only the `text` of its `assistant` lines: the
/// path comes from the agent's own hook, so nothing else of a file it names is ever shown.
fn last_assistant_text(path: &str) -> Option<String> {
    if !path.ends_with(".jsonl") {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 20 * 1024 * 1024 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v["type"] != "assistant" {
            return None;
        }
        let parts: Vec<&str> = v["message"]["content"]
            .as_array()?
            .iter()
            .filter(|c| c["type"] == "text")
            .filter_map(|c| c["text"].as_str())
            .collect();
        let t = parts.join("\n");
        (!t.trim().is_empty()).then(|| t.trim().chars().take(4_000).collect())
    })
}
