//! The autopilot's goal split through the real gateway in process, against a local provider
//! speaking the Anthropic Messages wire format: a strict answer becomes the run's work items
//! (one ledger row with the run as caller, counted in the run's spend); a refused answer keeps
//! the goal as one item with the reason; `split_goal: off` asks nothing; `split_goal: on`
//! without a provider blocks the run with the reason, and a resume plans again.

use crate::support::mock_anthropic::{self, Act, Mock};
use crate::support::{git, until, Session, TestServer};
use architect::config::MilestoneLlm;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

fn repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.email", "a@example.com"]);
    git(dir, &["config", "user.name", "A"]);
    std::fs::write(dir.join("lib.rs"), "pub fn f() {}\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "initial"]);
}

/// A server whose gateway asks the mock at `mock_url` (the planner's own pass, which would ask
/// the same provider first, off).
async fn server(mock_url: &str, key: Option<&str>) -> TestServer {
    mock_anthropic::server(mock_url, key, MilestoneLlm::Off, |_| {}).await
}

/// A fix_forward run on a new project over a fresh repository: its id. The agent cannot start,
/// so the run stops `blocked` right after planning.
async fn start_run(s: &Session, name: &str, dir: &Path, constraints: Value) -> i64 {
    repo(dir);
    let r = s
        .post_json(
            "/api/projects",
            &json!({"name": name, "source_path": dir.display().to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pid = r.json["id"].as_i64().unwrap();
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "fix_forward", "goal": "Make checkout work offline",
                    "constraints": constraints,
                    "agent": {"agent": "claude", "program": "/nonexistent/claude"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json["run"]["id"].as_i64().unwrap()
}

async fn blocked(s: &Session, run: i64) -> Value {
    until(&format!("run {run} is blocked"), || async {
        let r = s.get(&format!("/api/autopilot/runs/{run}")).await;
        (r.json["state"] == "blocked").then_some(r.json)
    })
    .await
}

fn step<'a>(run: &'a Value, prefix: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no step {prefix}: {run}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strict_answer_splits_the_goal_and_its_cost_is_the_runs() {
    let (mock, url) = Mock::start().await;
    let t = server(&url, Some("sk-mock")).await;
    let s = t.admin().await;
    mock.push(Act::Reply(Arc::new(|body: &Value| {
        // The request names the project and the goal.
        let user = body["messages"][0]["content"].as_str().unwrap_or("");
        assert!(user.contains("Project: shop") && user.contains("Make checkout work offline"));
        "```json\n{\"items\": [{\"title\": \"Cache the cart locally\", \"detail\": \"store it in IndexedDB\"}, {\"title\": \"Queue orders while offline\"}]}\n```".into()
    })));
    let dir = tempfile::tempdir().unwrap();
    let run = start_run(&s, "shop", dir.path(), json!({"budget_usd": 5})).await;
    let b = blocked(&s, run).await;
    assert_eq!(mock.hits(), 1, "one request");
    let titles: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        vec!["Cache the cart locally", "Queue orders while offline"],
        "{b}"
    );
    let detail = b["items"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("store it in IndexedDB") && detail.contains("Part 1 of 2"),
        "{detail}"
    );
    let items = &step(&b, "planning:items")["result"];
    assert_eq!(
        (items["items"].as_i64(), items["split"]["by"].as_str()),
        (Some(2), Some("llm")),
        "{items}"
    );
    // The ledger names the run as the caller and charges the project; the run counts it.
    let st = t.state();
    st.llm.ledger.flush(&st.db).await.unwrap();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT caller, project FROM llm_ledger ORDER BY id")
            .fetch_all(&st.db)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![(format!("autopilot run {run}"), Some("shop".to_string()))]
    );
    let d = s.get(&format!("/api/autopilot/runs/{run}")).await.json;
    assert_eq!(d["llm_requests"], 1, "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_answer_keeps_the_goal_as_one_item_with_the_reason() {
    let (mock, url) = Mock::start().await;
    let t = server(&url, Some("sk-mock")).await;
    let s = t.admin().await;
    mock.push(Act::Reply(Arc::new(|_: &Value| {
        "{\"items\": [{\"title\": \"a\"}, {\"title\": \"a\"}]}".into()
    })));
    let dir = tempfile::tempdir().unwrap();
    let run = start_run(&s, "shop", dir.path(), json!({})).await;
    let b = blocked(&s, run).await;
    assert_eq!(b["items"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["items"][0]["title"], "Make checkout work offline");
    let split = &step(&b, "planning:items")["result"]["split"];
    assert_eq!(split["by"], "goal", "{split}");
    assert!(
        split["why"].as_str().unwrap().contains("refused")
            && split["why"].as_str().unwrap().contains("twice"),
        "{split}"
    );
    // A provider that never answers within the gateway's time limit: the same.
    mock.push(Act::Hang);
    let dir2 = tempfile::tempdir().unwrap();
    let run2 = start_run(&s, "shop2", dir2.path(), json!({})).await;
    let b = blocked(&s, run2).await;
    assert_eq!(b["items"].as_array().unwrap().len(), 1, "{b}");
    assert!(
        step(&b, "planning:items")["result"]["split"]["why"]
            .as_str()
            .unwrap()
            .contains("gateway"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn off_asks_nothing_and_on_without_a_provider_blocks_until_resumed() {
    let (mock, url) = Mock::start().await;
    let t = server(&url, None).await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    let run = start_run(&s, "shop", dir.path(), json!({"split_goal": "off"})).await;
    let b = blocked(&s, run).await;
    assert_eq!(b["items"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["constraints"]["split_goal"], "off", "{b}");

    let dir2 = tempfile::tempdir().unwrap();
    let run2 = start_run(&s, "shop2", dir2.path(), json!({"split_goal": "on"})).await;
    let b = blocked(&s, run2).await;
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .contains("could not be split (split_goal: on): no LLM provider"),
        "{b}"
    );
    assert_eq!(b["items"], json!([]), "no item: {b}");
    assert_eq!(mock.hits(), 0, "no request reached the provider");
    // A resume plans again (and blocks again, for the same reason): not stuck on a step.
    let r = s
        .post_json(
            &format!("/api/autopilot/runs/{run2}/resume"),
            &json!({"reason": "retry"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until("planned again", || async {
        let r = s.get(&format!("/api/autopilot/runs/{run2}")).await;
        let empties = r.json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["key"].as_str().unwrap().starts_with("planning:empty:"))
            .count();
        (r.json["state"] == "blocked" && empties == 2).then_some(())
    })
    .await;
    // A bad value is a 4xx naming the field.
    let pid = s.get("/api/projects").await.json[0]["id"].as_i64().unwrap();
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"constraints": {"split_goal": "sometimes"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("split_goal"), "{}", r.body);
}
