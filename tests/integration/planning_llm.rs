//! The planner's LLM pass over HTTP, on a real git repository, through the real gateway in
//! process, with a local mock provider speaking the Anthropic Messages wire format: a good
//! regrouping is applied and stored (API, plan files, milestone page, ledger row with caller
//! `planning` and the project); an unknown item id, a malformed answer, an item placed twice, a title
//! of two lines and a provider that times out each keep the deterministic plan with the reason; without a provider (or with the
//! pass off) no request is made at all.

use crate::support::mock_anthropic::{self, Act, Mock};
use crate::support::{git, until, Session, TestServer};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

/// The items the prompt lists: text → id.
fn prompt_items(body: &Value) -> Vec<(String, i64)> {
    let user = body["messages"][0]["content"].as_str().unwrap();
    let plan: Value =
        serde_json::from_str(user.split_once("The current plan:\n").unwrap().1).unwrap();
    let mut out = Vec::new();
    for m in plan["milestones"].as_array().unwrap() {
        for p in m["phases"].as_array().unwrap() {
            for t in p["tasks"].as_array().unwrap() {
                for i in t["items"].as_array().unwrap() {
                    out.push((
                        i["text"].as_str().unwrap().to_string(),
                        i["id"].as_i64().unwrap(),
                    ));
                }
            }
        }
    }
    out
}

fn id_of(items: &[(String, i64)], text: &str) -> i64 {
    items
        .iter()
        .find(|(t, _)| t.contains(text))
        .unwrap_or_else(|| panic!("no item '{text}' in {items:?}"))
        .1
}

/// Three notes in one component and two roadmap boxes: two deterministic milestones.
fn repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.email", "ana@example.com"]);
    git(dir, &["config", "user.name", "Ana Author"]);
    let files: [(&str, &str); 3] = [
        (
            "src/api/handlers.rs",
            "fn a() {\n    // TODO: validate the input\n}\n\nfn b() {\n    // FIXME: leaks a connection\n}\n",
        ),
        ("src/api/routes.rs", "// TODO: add pagination\nfn r() {}\n"),
        (
            "ROADMAP.md",
            "# Roadmap\n\n## v2\n\n- [ ] sharding\n- [ ] webhooks\n",
        ),
    ];
    for (p, c) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "initial"]);
}

/// A server whose gateway asks the mock at `mock_url` as `claude` and as Ollama (which needs no
/// key: it must not count as "configured" in auto mode), with a 1 s timeout.
async fn server(
    mock_url: &str,
    key: Option<&str>,
    pass: architect::config::MilestoneLlm,
) -> TestServer {
    mock_anthropic::server(mock_url, key, pass, |l| {
        l.chain = "claude,ollama".into();
        l.ollama_endpoint = mock_url.to_string();
        l.request_timeout_secs = 1;
    })
    .await
}

/// A project over a fresh repository, scanned once: the scan's answer.
async fn scan_new(s: &Session, name: &str, dir: &Path) -> Value {
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
        .post_json("/api/planning/scan", &json!({"project_id": pid}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["scan"]["status"], "done", "{}", r.body);
    r.json
}

async fn pending(s: &Session, pid: i64) -> Vec<Value> {
    let r = s
        .get(&format!("/api/autopilot/milestones?project_id={pid}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json.as_array().unwrap().clone()
}

async fn activity_actions(s: &Session) -> Vec<Value> {
    let r = s.get("/api/activity?entity=project").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json.as_array().cloned().unwrap_or_default()
}

/// (caller, caller_token_id, project, outcome) of every ledger row.
async fn ledger(t: &TestServer) -> Vec<(String, Option<i64>, Option<String>, String)> {
    let st = t.state();
    st.llm.ledger.flush(&st.db).await.unwrap();
    sqlx::query_as("SELECT caller, caller_token_id, project, outcome FROM llm_ledger ORDER BY id")
        .fetch_all(&st.db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_good_regrouping_is_applied_stored_and_kept_on_rescan() {
    let (mock, url) = Mock::start().await;
    let t = server(&url, Some("sk-mock"), Default::default()).await;
    let s = t.admin().await;
    mock.push(Act::Reply(Arc::new(|body: &Value| {
        let items = prompt_items(body);
        let (leak, input, paging) = (
            id_of(&items, "leaks a connection"),
            id_of(&items, "validate the input"),
            id_of(&items, "add pagination"),
        );
        // The roadmap boxes are left out: they stay where the deterministic plan put them.
        format!(
            "```json\n{}\n```",
            json!({"milestones": [{"title": "Harden the API", "phases": [
                {"name": "Stop the bleeding", "tasks": [{"title": "Close leaked connections", "items": [leak]}]},
                {"name": "Polish", "tasks": [{"title": "Validate and paginate requests", "items": [input, paging]}]}
            ]}]})
        )
    })));
    let dir = tempfile::tempdir().unwrap();
    let r = scan_new(&s, "shop", dir.path()).await;
    let pid = r["project_id"].as_i64().unwrap();
    assert_eq!(mock.hits(), 1, "one request per scan");
    assert_eq!(r["scan"]["grouping"], "llm", "{r}");
    let note = r["scan"]["grouping_note"].as_str().unwrap();
    assert!(
        note.contains("regrouped 3 items into 1 milestone"),
        "{note}"
    );

    let list = pending(&s, pid).await;
    let titles: Vec<(&str, &str)> = list
        .iter()
        .map(|m| {
            (
                m["title"].as_str().unwrap(),
                m["grouping"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        titles,
        vec![
            ("Harden the API", "llm"),
            ("ROADMAP.md › v2", "deterministic")
        ],
        "the regrouped milestone and the untouched one"
    );
    let harden = &list[0];
    assert_eq!(harden["priority"], 40, "the FIXME's weight");
    assert_eq!(
        harden["phases"][1]["tasks"][0]["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The deterministic proposal it replaces is superseded, not lost.
    let r2 = s
        .get(&format!(
            "/api/autopilot/milestones?project_id={pid}&status=superseded"
        ))
        .await;
    let sup: Vec<&str> = r2
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap())
        .collect();
    assert!(sup.contains(&"Code notes in src/api"), "{sup:?}");

    // The files and the page say which pass grouped the plan.
    let json_file = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f.as_str().unwrap().ends_with(".json"))
        .unwrap();
    let doc: Value =
        serde_json::from_slice(&std::fs::read(json_file.as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(doc["grouping"], "llm");
    assert_eq!(doc["milestones"][0]["grouping"], "llm");
    let md = std::fs::read_to_string(t.state().config.data_dir.join("milestones/shop_summary.md"))
        .unwrap();
    assert!(md.contains("Grouping: llm"), "{md}");
    assert!(
        md.contains("## Harden the API (priority 40, grouped by llm)"),
        "{md}"
    );
    let page = s
        .get(&format!("/autopilot/milestones/{}", harden["id"]))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("regrouped by the model"),
        "the milestone page says so"
    );

    // The activity row, and the ledger's row for the request: caller planning, the project.
    let acts = activity_actions(&s).await;
    assert!(
        acts.iter().any(|a| a["action"] == "plan_regrouped"),
        "{acts:?}"
    );
    let rows = until("the ledger row is written", || async {
        let rows = ledger(&t).await;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(
        rows,
        vec![(
            "planning".to_string(),
            None,
            Some("shop".to_string()),
            "ok".to_string()
        )]
    );

    // A rescan with nothing changed keeps the model's plan and asks nothing.
    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": pid}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(mock.hits(), 1, "no second request for the same items");
    assert_eq!(r.json["scan"]["grouping"], "llm");
    let again = pending(&s, pid).await;
    assert_eq!(
        again.iter().map(|m| &m["id"]).collect::<Vec<_>>(),
        list.iter().map(|m| &m["id"]).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_answers_and_a_timeout_keep_the_deterministic_plan_with_the_reason() {
    let (mock, url) = Mock::start().await;
    let t = server(&url, Some("sk-mock"), Default::default()).await;
    let s = t.admin().await;
    let cases: Vec<(&str, Act, &str)> = vec![
        (
            "unknown",
            Act::Reply(Arc::new(|body: &Value| {
                let items = prompt_items(body);
                let real = id_of(&items, "leaks a connection");
                json!({"milestones": [{"title": "Made up", "phases": [{"name": "P", "tasks": [
                    {"title": "Real", "items": [real]}, {"title": "Invented", "items": [999999]}]}]}]})
                .to_string()
            })),
            "item 999999, which is not in the plan",
        ),
        (
            "malformed",
            Act::Reply(Arc::new(|_: &Value| {
                "Sure! Here is a plan: {milestones: [".to_string()
            })),
            "not the JSON asked for",
        ),
        (
            "twice",
            Act::Reply(Arc::new(|body: &Value| {
                let leak = id_of(&prompt_items(body), "leaks a connection");
                json!({"milestones": [{"title": "A", "phases": [{"name": "P", "tasks": [
                    {"title": "One", "items": [leak]}, {"title": "Two", "items": [leak]}]}]}]})
                .to_string()
            })),
            "more than once",
        ),
        (
            "twolines",
            Act::Reply(Arc::new(|body: &Value| {
                let leak = id_of(&prompt_items(body), "leaks a connection");
                json!({"milestones": [{"title": "Harden\nthe API", "phases": [{"name": "P", "tasks": [
                    {"title": "One", "items": [leak]}]}]}]})
                .to_string()
            })),
            "not one line",
        ),
        ("timeout", Act::Hang, "timed out"),
    ];
    for (name, act, reason) in cases {
        mock.push(act);
        let hits = mock.hits();
        let dir = tempfile::tempdir().unwrap();
        let r = scan_new(&s, name, dir.path()).await;
        assert_eq!(mock.hits(), hits + 1, "{name}: one request");
        let scan = &r["scan"];
        assert_eq!(scan["grouping"], "deterministic", "{name}: {r}");
        let note = scan["grouping_note"].as_str().unwrap();
        assert!(note.contains(reason), "{name}: {note}");
        let pid = r["project_id"].as_i64().unwrap();
        let list = pending(&s, pid).await;
        let titles: Vec<&str> = list.iter().map(|m| m["title"].as_str().unwrap()).collect();
        assert_eq!(
            titles,
            vec!["Code notes in src/api", "ROADMAP.md › v2"],
            "{name}"
        );
        assert!(list.iter().all(|m| m["grouping"] == "deterministic"));
        // The scan's own row says the same (GET /api/planning/scans/{id}).
        let r = s.get(&format!("/api/planning/scans/{}", scan["id"])).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains(reason), "{name}: {}", r.body);
        let acts = activity_actions(&s).await;
        assert!(
            acts.iter().any(|a| a["action"] == "plan_regroup_failed"
                && a["entity_id"] == pid
                && a["details"]["reason"]
                    .as_str()
                    .is_some_and(|x| x.contains(reason))),
            "{name}: {acts:?}"
        );
    }
    let rows = until("five ledger rows", || async {
        let rows = ledger(&t).await;
        (rows.len() == 5).then_some(rows)
    })
    .await;
    let outcomes: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.2.as_deref().unwrap(), r.3.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("unknown", "ok"),
            ("malformed", "ok"),
            ("twice", "ok"),
            ("twolines", "ok"),
            ("timeout", "failed")
        ]
    );
    assert!(rows.iter().all(|r| r.0 == "planning" && r.1.is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_provider_or_the_pass_off_means_no_request_at_all() {
    use architect::config::MilestoneLlm;
    let (mock, url) = Mock::start().await;
    // No key: Claude is not configured, and a keyless Ollama does not count in auto mode.
    let t = server(&url, None, MilestoneLlm::Auto).await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    let r = scan_new(&s, "nokey", dir.path()).await;
    assert_eq!(r["scan"]["grouping"], "deterministic");
    assert!(
        r["scan"]["grouping_note"]
            .as_str()
            .unwrap()
            .contains("no LLM provider configured"),
        "{r}"
    );
    assert_eq!(
        pending(&s, r["project_id"].as_i64().unwrap()).await.len(),
        2
    );
    assert!(ledger(&t).await.is_empty());
    t.stop().await;
    // A key, but the pass turned off.
    let t = server(&url, Some("sk-mock"), MilestoneLlm::Off).await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    let r = scan_new(&s, "off", dir.path()).await;
    assert!(
        r["scan"]["grouping_note"]
            .as_str()
            .unwrap()
            .contains("ARCHITECT_MILESTONE_LLM=off"),
        "{r}"
    );
    assert!(ledger(&t).await.is_empty());
    assert_eq!(mock.hits(), 0, "no request reached the provider");
}
