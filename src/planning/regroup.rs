//! The LLM pass over a plan: the request that asks the model to regroup and retitle the
//! deterministic plan's items, and the strict check of its answer.
//!
//! The model sees each milestone, phase and task with its items (id, kind, location, text,
//! clipped) and answers one JSON object: `{"milestones": [{"title", "phases": [{"name",
//! "tasks": [{"title", "items": [ids]}]}]}]}`. The answer is taken only whole: every id must be
//! an item of the plan, each placed at most once, every title one non-empty line of at most
//! [`plan::MAX_TITLE`] characters, no empty milestone, phase or task. Items the model leaves
//! out stay where the deterministic plan put them. Anything else keeps the deterministic plan,
//! with the reason. Nothing here can invent an item: tasks are built from the plan's own items.

use super::plan::{self, Draft, MAX_TITLE};
use super::{Grouping, Phase, PlanItem, PlanTask};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// More items than this are not sent (the prompt stays bounded); the plan stays deterministic.
pub const MAX_ITEMS: usize = 400;
/// An item's text is clipped to this many characters in the prompt.
const MAX_ITEM_TEXT: usize = 200;
/// The answer's token limit.
pub const MAX_TOKENS: u64 = 8192;

const SYSTEM: &str = "You organise a software project's open work items into a plan of \
milestones, each with phases, each with tasks. You are given the current plan as JSON; \
regroup its items the way an experienced engineer would (by goal and dependency, not by file) \
and give every milestone, phase and task a short, specific title. Answer with ONE JSON object \
and nothing else: {\"milestones\": [{\"title\": \"...\", \"phases\": [{\"name\": \"...\", \
\"tasks\": [{\"title\": \"...\", \"items\": [item ids]}]}]}]}. Use only the item ids given; \
place each item at most once; items you leave out stay where they are. Every title is one \
line of at most 150 characters.";

/// The Anthropic Messages request for `drafts`, or why none is sent.
pub fn request(
    model: &str,
    project: &str,
    drafts: &[Draft],
    items: &HashMap<i64, &PlanItem>,
) -> Result<Value, String> {
    let count: usize = drafts.iter().map(|d| draft_ids(d).len()).sum();
    if count > MAX_ITEMS {
        return Err(format!(
            "{count} items are more than one request may hold ({MAX_ITEMS})"
        ));
    }
    let plan: Vec<Value> = drafts
        .iter()
        .map(|d| {
            json!({
                "title": d.title,
                "phases": d.phases.iter().map(|p| json!({
                    "name": p.name,
                    "tasks": p.tasks.iter().map(|t| json!({
                        "title": t.title,
                        "items": t.items.iter().filter_map(|id| items.get(id)).map(|i| json!({
                            "id": i.id,
                            "kind": i.kind,
                            "at": i.location(),
                            "text": i.text.chars().take(MAX_ITEM_TEXT).collect::<String>(),
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let user = format!(
        "Project: {project}\n\nThe current plan:\n{}",
        serde_json::to_string(&json!({ "milestones": plan })).unwrap_or_default()
    );
    Ok(json!({
        "model": model,
        "max_tokens": MAX_TOKENS,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": user}],
    }))
}

/// Every item id of a draft.
pub fn draft_ids(d: &Draft) -> Vec<i64> {
    d.phases
        .iter()
        .flat_map(|p| p.tasks.iter().flat_map(|t| t.items.iter().copied()))
        .collect()
}

#[derive(Deserialize)]
struct Answer {
    milestones: Vec<AnswerMilestone>,
}

#[derive(Deserialize)]
struct AnswerMilestone {
    title: String,
    phases: Vec<AnswerPhase>,
}

#[derive(Deserialize)]
struct AnswerPhase {
    name: String,
    tasks: Vec<AnswerTask>,
}

#[derive(Deserialize)]
struct AnswerTask {
    title: String,
    items: Vec<i64>,
}

/// A title as the answer may give it: one non-empty line within [`MAX_TITLE`].
fn line(what: &str, s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("{what}: an empty title"));
    }
    if t.chars().any(char::is_control) {
        return Err(format!("{what}: the title is not one line"));
    }
    if t.chars().count() > MAX_TITLE {
        return Err(format!(
            "{what}: the title is longer than {MAX_TITLE} characters"
        ));
    }
    Ok(t.to_string())
}

/// The plan after the model's answer: its milestones (grouped by `llm`) and what is left of
/// the deterministic ones (items it did not place), heaviest first; or why the answer is
/// refused. Returns the plan and how many items the model placed.
pub fn apply(
    answer: &str,
    drafts: &[Draft],
    items: &HashMap<i64, &PlanItem>,
) -> Result<(Vec<Draft>, usize), String> {
    let a: Answer = serde_json::from_str(crate::llm::completion::answer_json(answer))
        .map_err(|e| format!("the answer is not the JSON asked for: {e}"))?;
    if a.milestones.is_empty() {
        return Err("the answer holds no milestones".into());
    }
    let in_plan: BTreeSet<i64> = drafts.iter().flat_map(draft_ids).collect();
    let mut placed = BTreeSet::new();
    let mut out = Vec::new();
    for (mi, m) in a.milestones.iter().enumerate() {
        let title = line(&format!("milestone {}", mi + 1), &m.title)?;
        if m.phases.is_empty() {
            return Err(format!("milestone '{title}' has no phases"));
        }
        let mut phases = Vec::new();
        let mut its: Vec<&PlanItem> = Vec::new();
        for p in &m.phases {
            let name = line(&format!("a phase of '{title}'"), &p.name)?;
            if p.tasks.is_empty() {
                return Err(format!("phase '{name}' has no tasks"));
            }
            let mut tasks = Vec::new();
            for t in &p.tasks {
                let tt = line(&format!("a task of '{name}'"), &t.title)?;
                if t.items.is_empty() {
                    return Err(format!("task '{tt}' has no items"));
                }
                let mut weight = 0;
                for id in &t.items {
                    let item = items
                        .get(id)
                        .filter(|_| in_plan.contains(id))
                        .ok_or_else(|| {
                            format!("the answer names item {id}, which is not in the plan")
                        })?;
                    if !placed.insert(*id) {
                        return Err(format!("the answer places item {id} more than once"));
                    }
                    weight = weight.max(item.weight);
                    its.push(item);
                }
                tasks.push(PlanTask {
                    title: tt,
                    priority: weight,
                    items: t.items.clone(),
                });
            }
            phases.push(Phase { name, tasks });
        }
        let mut d = plan::draft(title, phases, &its);
        d.grouping = Grouping::Llm;
        out.push(d);
    }
    // What the model left out stays where the deterministic plan put it.
    for d in drafts {
        let mut its: Vec<&PlanItem> = Vec::new();
        let phases: Vec<Phase> = d
            .phases
            .iter()
            .filter_map(|p| {
                let tasks: Vec<PlanTask> = p
                    .tasks
                    .iter()
                    .filter_map(|t| {
                        let left: Vec<i64> = t
                            .items
                            .iter()
                            .copied()
                            .filter(|id| !placed.contains(id))
                            .collect();
                        let left_items: Vec<&PlanItem> = left
                            .iter()
                            .filter_map(|id| items.get(id).copied())
                            .collect();
                        if left_items.is_empty() {
                            return None;
                        }
                        its.extend(left_items.iter().copied());
                        Some(PlanTask {
                            title: t.title.clone(),
                            priority: left_items.iter().map(|i| i.weight).max().unwrap_or(0),
                            items: left,
                        })
                    })
                    .collect();
                (!tasks.is_empty()).then(|| Phase {
                    name: p.name.clone(),
                    tasks,
                })
            })
            .collect();
        if !phases.is_empty() {
            out.push(plan::draft(d.title.clone(), phases, &its));
        }
    }
    out.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.title.cmp(&b.title)));
    Ok((out, placed.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::{ItemStatus, Source};

    fn item(id: i64, path: &str, w: i64) -> PlanItem {
        PlanItem {
            id,
            project_id: 1,
            kind: Source::Todo,
            path: Some(path.into()),
            line: Some(id),
            text: format!("note {id}"),
            heading: None,
            fingerprint: format!("fp{id}"),
            source_id: None,
            weight: w,
            status: ItemStatus::Open,
            author: None,
            authored_at: None,
            feature_id: None,
            first_seen_at: String::new(),
            last_seen_at: String::new(),
            done_at: None,
        }
    }

    fn fixture() -> (Vec<PlanItem>, Vec<Draft>) {
        let items = vec![
            item(1, "a/b/x.rs", 20),
            item(2, "a/b/y.rs", 40),
            item(3, "a/b/z.rs", 20),
            item(4, "q.rs", 20),
        ];
        let drafts = plan::build(&items);
        (items, drafts)
    }

    #[test]
    fn a_valid_answer_regroups_and_the_rest_stays_put() {
        let (items, drafts) = fixture();
        let by: HashMap<i64, &PlanItem> = items.iter().map(|i| (i.id, i)).collect();
        let a = json!({"milestones": [{"title": "Ship it", "phases": [{"name": "Now",
            "tasks": [{"title": "Do 2 and 4", "items": [2, 4]}]}]}]});
        let (plan, placed) = apply(&format!("```json\n{a}\n```"), &drafts, &by).unwrap();
        assert_eq!(placed, 2);
        assert_eq!(plan[0].title, "Ship it");
        assert_eq!(plan[0].grouping, Grouping::Llm);
        assert_eq!(plan[0].priority, 40);
        // Items 1 and 3 stay in their deterministic milestone, without 2.
        let rest: Vec<i64> = plan[1..].iter().flat_map(draft_ids).collect();
        assert_eq!(rest, vec![1, 3]);
        assert!(plan[1..]
            .iter()
            .all(|d| d.grouping == Grouping::Deterministic));
        let req = request("m", "p", &drafts, &by).unwrap();
        assert!(req["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("note 4"));
    }

    #[test]
    fn any_flaw_refuses_the_whole_answer() {
        let (items, drafts) = fixture();
        let by: HashMap<i64, &PlanItem> = items.iter().map(|i| (i.id, i)).collect();
        let bad = |v: Value| apply(&v.to_string(), &drafts, &by).unwrap_err();
        let one = |title: &str, ids: Value| {
            json!({"milestones": [{"title": title, "phases": [{"name": "P",
                "tasks": [{"title": "T", "items": ids}]}]}]})
        };
        assert!(bad(one("M", json!([1, 99]))).contains("item 99"));
        assert!(bad(one("M", json!([1, 1]))).contains("more than once"));
        assert!(bad(one("M", json!([]))).contains("no items"));
        assert!(bad(one("two\nlines", json!([1]))).contains("not one line"));
        assert!(bad(one(&"x".repeat(151), json!([1]))).contains("longer than"));
        assert!(bad(one(" ", json!([1]))).contains("empty title"));
        assert!(bad(json!({"milestones": []})).contains("no milestones"));
        assert!(bad(json!({"plan": []})).contains("not the JSON"));
        assert!(apply("no json here", &drafts, &by)
            .unwrap_err()
            .contains("not the JSON"));
        // An item of the project that is not in the plan sent is unknown too.
        let extra = item(5, "r.rs", 20);
        let mut by2 = by.clone();
        by2.insert(5, &extra);
        assert!(apply(&one("M", json!([5])).to_string(), &drafts, &by2)
            .unwrap_err()
            .contains("item 5"));
    }

    #[test]
    fn the_prompt_is_bounded() {
        let items: Vec<PlanItem> = (1..=(MAX_ITEMS as i64 + 1))
            .map(|i| item(i, "a/b/x.rs", 20))
            .collect();
        let by: HashMap<i64, &PlanItem> = items.iter().map(|i| (i.id, i)).collect();
        let drafts = plan::build(&items);
        assert!(request("m", "p", &drafts, &by)
            .unwrap_err()
            .contains("more than"));
    }
}
