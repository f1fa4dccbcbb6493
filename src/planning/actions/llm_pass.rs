//! The scan's LLM pass (see [`crate::planning::regroup`]): one request through the gateway in
//! process (`llm::complete`, caller `planning`, the project charged), after the deterministic
//! plan is stored. A valid answer supersedes this scan's new proposals with the model's
//! regrouping; anything else keeps them. Either way the scan row says what happened and one
//! activity row (`plan_regrouped` or `plan_regroup_failed`) records it, in the same transaction.

use super::*;
use crate::config::MilestoneLlm;
use crate::llm::LlmError;
use crate::planning::regroup;

/// The ledger's caller for the planner's requests.
pub const CALLER: &str = "planning";

/// This scan's new (deterministic) proposals: their rows and drafts.
pub(super) struct Proposal {
    pub ids: Vec<i64>,
    pub drafts: Vec<plan::Draft>,
}

/// Whether the pass runs (`ARCHITECT_MILESTONE_LLM`), or why not.
pub(super) fn wanted(state: &AppState) -> std::result::Result<(), String> {
    let reg = state.llm.client.registry();
    match state.config.milestone_llm {
        MilestoneLlm::Off => Err("the LLM pass is off (ARCHITECT_MILESTONE_LLM=off)".into()),
        MilestoneLlm::On if reg.has_configured_provider() => Ok(()),
        MilestoneLlm::On => Err("no LLM provider in the gateway's chain".into()),
        MilestoneLlm::Auto if reg.has_keyed_provider() => Ok(()),
        MilestoneLlm::Auto => Err(
            "no LLM provider configured (an API key; ARCHITECT_MILESTONE_LLM=on for a keyless Ollama)"
                .into(),
        ),
    }
}

/// Asks the model and applies or records its answer. Never fails the scan: the deterministic
/// plan is stored already.
pub(super) async fn run(
    state: &AppState,
    actor: &str,
    project: &Project,
    scan_id: i64,
    proposal: &Proposal,
    items: &HashMap<i64, &PlanItem>,
) {
    let model = state.config.llm.claude_model.clone();
    let outcome = match regroup::request(&model, &project.name, &proposal.drafts, items) {
        Err(why) => Err(why),
        Ok(req) => {
            match crate::llm::complete(&state.llm_state(), CALLER, Some(&project.name), req).await {
                Err(LlmError::Failed { message, kinds }) if kinds.contains(&"timeout") => {
                    Err(format!("the provider timed out: {message}"))
                }
                Err(e) => Err(format!("the gateway: {e}")),
                Ok(c) => regroup::apply(&c.text(), &proposal.drafts, items)
                    .map(|(drafts, placed)| (drafts, placed, c.model))
                    .map_err(|why| format!("the model's answer was refused: {why}")),
            }
        }
    };
    let result = match outcome {
        Ok((drafts, placed, model)) => {
            match apply(
                state, actor, project.id, scan_id, proposal, &drafts, placed, &model,
            )
            .await
            {
                Ok(true) => return,
                Ok(false) => "a proposal was decided while the model answered".to_string(),
                Err(e) => format!("storing the model's plan failed: {e}"),
            }
        }
        Err(why) => why,
    };
    tracing::warn!(project = %project.name, scan_id, reason = %result, "planning: deterministic plan kept");
    if let Err(e) = kept(state, actor, project.id, scan_id, &result).await {
        tracing::warn!(project = %project.name, error = %e, "planning: recording the LLM pass failed");
    }
}

/// Replaces the proposals with the model's plan; false (nothing written) when one of them was
/// decided in the meantime.
#[allow(clippy::too_many_arguments)]
async fn apply(
    state: &AppState,
    actor: &str,
    project_id: i64,
    scan_id: i64,
    proposal: &Proposal,
    drafts: &[plan::Draft],
    placed: usize,
    model: &str,
) -> Result<bool> {
    let now = crate::clock::format(state.clock.now());
    let mut tx = crate::db::begin_write(&state.db).await?;
    for id in &proposal.ids {
        if !store::supersede_pending(&mut tx, *id, &now).await? {
            return Ok(false);
        }
    }
    // A regrouped milestone someone decided before (same items) is not proposed again.
    let decided: HashSet<String> = store::decided_or_pending(&mut tx, project_id)
        .await?
        .into_iter()
        .map(|m| m.items_key)
        .collect();
    let mut ids = Vec::new();
    for d in drafts.iter().filter(|d| !decided.contains(&d.items_key)) {
        ids.push(store::insert_plan(&mut tx, project_id, scan_id, d, &now).await?);
    }
    let regrouped = drafts
        .iter()
        .filter(|d| d.grouping == Grouping::Llm)
        .count();
    let note = format!(
        "{model} regrouped {placed} item{} into {regrouped} milestone{}",
        if placed == 1 { "" } else { "s" },
        if regrouped == 1 { "" } else { "s" }
    );
    store::set_scan_grouping(&mut tx, scan_id, Grouping::Llm, &note).await?;
    log(
        &mut tx,
        actor,
        "plan_regrouped",
        "project",
        project_id,
        json!({"scan_id": scan_id, "model": model, "items": placed, "milestones": ids,
               "superseded": proposal.ids, "note": note}),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

async fn kept(
    state: &AppState,
    actor: &str,
    project_id: i64,
    scan_id: i64,
    why: &str,
) -> Result<()> {
    let now = crate::clock::format(state.clock.now());
    let note = format!("deterministic plan kept: {why}");
    let mut tx = crate::db::begin_write(&state.db).await?;
    store::set_scan_grouping(&mut tx, scan_id, Grouping::Deterministic, &note).await?;
    log(
        &mut tx,
        actor,
        "plan_regroup_failed",
        "project",
        project_id,
        json!({"scan_id": scan_id, "reason": why}),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
