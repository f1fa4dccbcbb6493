//! An item's prompts: what the agent is asked (with the failing output on a retry), typed
//! through the assigner and found again by its source after a restart; and the agent's answer.

use super::super::runner::finish;
use super::super::work::{self, Item, ItemState};
use super::super::*;
use super::{block, PROMPT_SOURCE};
use crate::app::AppState;
use crate::auth::Identity;
use serde_json::json;

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
pub(super) async fn prompt(
    state: &AppState,
    run: &Run,
    who: &Identity,
    mut item: Item,
) -> RunResult<bool> {
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
            let test_command =
                crate::tasks::actions::project_commands(&state.task_state(), run.project_id)
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
                &state.agents_state(),
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
