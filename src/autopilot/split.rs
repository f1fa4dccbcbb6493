//! The goal split: a run's goal becomes work items through the gateway (`llm::complete`, caller
//! `autopilot run N`, the project charged), the manager's part of the run — each item then goes
//! to its own worker session. The answer is taken only whole and only when it is strictly what
//! was asked: one JSON object `{"items": [{"title", "detail"}]}`, 1 to [`MAX_SPLIT`] items, every
//! title one non-empty line of at most [`MAX_TITLE`] characters and unique, every detail at most
//! [`MAX_DETAIL`] characters. Anything else — no provider, a timeout, a refusal, a malformed
//! answer — keeps the goal as one item, with the reason recorded in the planning step, unless
//! the run asked for the split to be required (`split_goal: on`), which blocks the run instead.

use super::*;
use crate::app::AppState;
use serde_json::{json, Value};

/// Most items one goal is split into.
pub const MAX_SPLIT: usize = 8;
/// An item title's longest length (characters).
pub const MAX_TITLE: usize = 120;
/// An item detail's longest length (characters).
pub const MAX_DETAIL: usize = 4_000;
/// The answer's token limit.
const MAX_TOKENS: u64 = 2_048;

const SYSTEM: &str = "You are the manager of a team of coding agents. Split the goal you are \
given into independent work items, each small enough for one agent to implement and test in \
its own git branch, in the order they should be merged. Do not invent work the goal does not \
ask for; a goal that is one piece of work is one item. Answer with ONE JSON object and nothing \
else: {\"items\": [{\"title\": \"one line, at most 120 characters\", \"detail\": \"what to \
change and how to know it works\"}]}, at most 8 items.";

crate::text_enum! {
    /// Whether a run's goal is split through the gateway.
    #[derive(Default)]
    pub enum SplitGoal ("split_goal") {
        /// When a provider of the gateway's chain has an API key.
        #[default]
        Auto = "auto",
        /// Always; no provider or a bad answer blocks the run.
        On = "on",
        /// Never: the goal is one work item.
        Off = "off",
    }
}

impl SplitGoal {
    pub fn is_auto(&self) -> bool {
        *self == SplitGoal::Auto
    }
}

/// The ledger's caller for a run's own requests (its agents' requests carry their tokens).
pub fn caller(run_id: i64) -> String {
    format!("autopilot run {run_id}")
}

/// One work item: title, detail.
pub type Piece = (String, String);

/// What the split made of a goal.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The model's items, and the model that answered.
    Split(Vec<Piece>, String),
    /// The goal stays one item, and why; whether the gateway was asked (and may have charged).
    Kept(String, bool),
}

/// The Anthropic Messages request for `goal`.
pub fn request(model: &str, project: &str, goal: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": MAX_TOKENS,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": format!("Project: {project}\n\nGoal:\n{goal}")}],
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    items: Vec<AnswerItem>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerItem {
    title: String,
    #[serde(default)]
    detail: String,
}

/// The items of a model's answer, or why it is refused.
pub fn parse(answer: &str) -> Result<Vec<Piece>, String> {
    let a: Answer = serde_json::from_str(crate::llm::completion::answer_json(answer))
        .map_err(|e| format!("the answer is not the JSON asked for: {e}"))?;
    if a.items.is_empty() {
        return Err("the answer holds no items".into());
    }
    if a.items.len() > MAX_SPLIT {
        return Err(format!(
            "the answer holds {} items, more than {MAX_SPLIT}",
            a.items.len()
        ));
    }
    let mut out: Vec<Piece> = Vec::new();
    for (n, i) in a.items.into_iter().enumerate() {
        let title = i.title.trim();
        if title.is_empty() || title.contains(['\n', '\r']) {
            return Err(format!(
                "item {}: the title is not one non-empty line",
                n + 1
            ));
        }
        if title.chars().count() > MAX_TITLE {
            return Err(format!(
                "item {}: the title is longer than {MAX_TITLE} characters",
                n + 1
            ));
        }
        if i.detail.chars().count() > MAX_DETAIL {
            return Err(format!(
                "item {}: the detail is longer than {MAX_DETAIL} characters",
                n + 1
            ));
        }
        if out.iter().any(|(t, _)| t == title) {
            return Err(format!(
                "item {}: the title '{title}' is given twice",
                n + 1
            ));
        }
        out.push((title.to_string(), i.detail.trim().to_string()));
    }
    Ok(out)
}

/// Whether the split is asked of the gateway, or why not.
fn wanted(state: &AppState, mode: SplitGoal) -> Result<(), String> {
    let reg = state.llm.client.registry();
    match mode {
        SplitGoal::Off => Err("the split is off (split_goal: off)".into()),
        SplitGoal::On if reg.has_configured_provider() => Ok(()),
        SplitGoal::On => Err("no LLM provider in the gateway's chain".into()),
        SplitGoal::Auto if reg.has_keyed_provider() => Ok(()),
        SplitGoal::Auto => Err("no LLM provider configured (an API key)".into()),
    }
}

/// Splits `run`'s goal through the gateway, or says why the goal stays one item.
pub async fn split(state: &AppState, run: &Run, project: &str) -> Outcome {
    if let Err(why) = wanted(state, run.constraints.split_goal) {
        return Outcome::Kept(why, false);
    }
    let model = state.config.llm.claude_model.clone();
    let req = request(&model, project, run.goal.trim());
    match crate::llm::complete(&state.llm_state(), &caller(run.id), Some(project), req).await {
        Err(e) => Outcome::Kept(format!("the gateway: {e}"), true),
        Ok(c) => match parse(&c.text()) {
            Ok(items) => Outcome::Split(items, c.model),
            Err(why) => Outcome::Kept(format!("the model's answer was refused: {why}"), true),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strict_answer_becomes_items_in_order() {
        let a = r#"```json
{"items": [{"title": "Add the parser", "detail": "src/parse.rs"}, {"title": "Wire the CLI"}]}
```"#;
        assert_eq!(
            parse(a).unwrap(),
            vec![
                ("Add the parser".to_string(), "src/parse.rs".to_string()),
                ("Wire the CLI".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let long = "x".repeat(MAX_TITLE + 1);
        let nine: Vec<Value> = (0..9).map(|n| json!({"title": format!("t{n}")})).collect();
        for (answer, why) in [
            ("Sure! Here is the plan.".to_string(), "not the JSON"),
            (r#"{"items": []}"#.to_string(), "no items"),
            (json!({ "items": nine }).to_string(), "more than 8"),
            (
                r#"{"items": [{"title": "a\nb"}]}"#.to_string(),
                "one non-empty line",
            ),
            (
                r#"{"items": [{"title": "  "}]}"#.to_string(),
                "one non-empty line",
            ),
            (
                json!({"items": [{"title": long}]}).to_string(),
                "longer than",
            ),
            (
                r#"{"items": [{"title": "a"}, {"title": "a"}]}"#.to_string(),
                "twice",
            ),
            (
                r#"{"items": [{"title": "a", "files": []}]}"#.to_string(),
                "unknown field",
            ),
        ] {
            let e = parse(&answer).unwrap_err();
            assert!(e.contains(why), "{answer}: {e}");
        }
    }

    #[test]
    fn the_request_names_the_project_and_the_goal() {
        let r = request("m", "shop", "make the tests pass");
        assert_eq!(r["model"], "m");
        let user = r["messages"][0]["content"].as_str().unwrap();
        assert!(user.contains("Project: shop") && user.contains("make the tests pass"));
    }
}
