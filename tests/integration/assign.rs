//! Assigning features, bugs and error groups to agent sessions: `POST /api/assign-to-tmux` and
//! the Assign form on each item's page (one code path), bad input as 4xx JSON, viewers kept
//! out, the assignments on the item pages, and what completion does: a bug moves to review,
//! an error group is marked in review (real tmux with the fake agent).

use crate::agents::{fixtures, server, wait_state, PrivateTmux};
use crate::support::{until, Session, TestServer};
use serde_json::{json, Value};

async fn created(s: &Session, path: &str, body: Value) -> i64 {
    let r = s.post_json(path, &body).await;
    assert_eq!(r.status, 201, "{path}: {}", r.body);
    r.json["id"].as_i64().unwrap()
}

/// A project with one feature and one bug, and an error group: (feature, bug, group).
async fn items(t: &TestServer, s: &Session) -> (i64, i64, i64) {
    let p = created(s, "/api/projects", json!({"name": "assign-proj"})).await;
    let f = created(
        s,
        "/api/features",
        json!({"project_id": p, "name": "Login page", "description": "Add a login page"}),
    )
    .await;
    let b = created(
        s,
        "/api/bugs",
        json!({"project_id": p, "title": "Crash on save", "description": "saving crashes"}),
    )
    .await;
    let r = t
        .anon()
        .post_json(
            "/api/errors",
            &json!({"node_id": "web-1", "error_type": "KeyError", "message": "'user_42' missing",
                    "source": "api", "stack_trace": "Traceback:\n  File \"app.py\", line 3, in save"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    (f, b, r.json["group_id"].as_i64().unwrap())
}

async fn prompt(s: &Session, id: i64) -> Value {
    let r = s.get(&format!("/api/assigner/prompts/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json
}

async fn prompt_count(s: &Session) -> usize {
    let r = s.get("/api/assigner/prompts?limit=1000").await;
    r.json.as_array().map(Vec::len).unwrap_or(0)
}

fn location(r: &crate::support::Resp) -> String {
    r.headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The flash of a form's redirect: ("notice" | "error", text).
fn flash(r: &crate::support::Resp) -> (String, String) {
    let loc = location(r);
    let q = loc.split_once('?').map(|x| x.1).unwrap_or("");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap_or_default();
    pairs.into_iter().next().unwrap_or_default()
}

/// The prompt id of an "Assigned as prompt #N." notice.
fn assigned_id(r: &crate::support::Resp) -> i64 {
    let (kind, text) = flash(r);
    assert_eq!(kind, "notice", "{}", location(r));
    text.trim_start_matches("Assigned as prompt #")
        .trim_end_matches('.')
        .parse()
        .unwrap_or_else(|_| panic!("notice: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn assign_api_and_page_forms_queue_prompts_for_features_bugs_and_error_groups() {
    let t = TestServer::start_with(|c| c.agents.assigner = false).await;
    let admin = t.admin().await;
    let (fid, bid, gid) = items(&t, &admin).await;

    // The API: each kind gets its details and a link back, and the item on the prompt.
    let r = admin
        .post_json(
            "/api/assign-to-tmux",
            &json!({"kind": "feature", "id": fid, "priority": 7}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json["content"]
        .as_str()
        .unwrap()
        .contains(&format!("/features/{fid}")));
    let p = prompt(&admin, r.json["prompt_id"].as_i64().unwrap()).await;
    assert_eq!(
        (
            &p["source_kind"],
            &p["source_id"],
            &p["priority"],
            &p["status"]
        ),
        (&json!("feature"), &json!(fid), &json!(7), &json!("pending")),
        "{p}"
    );
    let r = admin
        .post_json(
            "/api/assign-to-tmux",
            &json!({"kind": "bug", "id": bid, "role": "worker"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let p = prompt(&admin, r.json["prompt_id"].as_i64().unwrap()).await;
    assert_eq!(
        (&p["source_kind"], &p["target_role"], &p["priority"]),
        (&json!("bug"), &json!("worker"), &json!(5)),
        "the default priority is 5: {p}"
    );
    assert!(p["content"].as_str().unwrap().contains("Crash on save"));
    let r = admin
        .post_json("/api/assign-to-tmux", &json!({"kind": "error", "id": gid}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let content = r.json["content"].as_str().unwrap();
    for part in [
        format!("Fix error group #{gid}: KeyError: 'user_42' missing"),
        "Seen 1 times".to_string(),
        "web-1 (1)".to_string(),
        "line 3, in save".to_string(),
        format!("/errors/{gid}"),
    ] {
        assert!(content.contains(&part), "{part} in {content}");
    }
    let error_prompt = r.json["prompt_id"].as_i64().unwrap();
    let p = prompt(&admin, error_prompt).await;
    assert_eq!(
        (&p["source_kind"], &p["source_id"]),
        (&json!("error"), &json!(gid))
    );

    // Bad input is a 4xx JSON error naming the field, never a 5xx, and queues nothing.
    let before = prompt_count(&admin).await;
    for (body, status, field) in [
        (json!({"kind": "devops", "id": 1}), 422, Some("kind")),
        (
            json!({"kind": "bug", "id": bid, "priority": 11}),
            422,
            Some("priority"),
        ),
        (
            json!({"kind": "bug", "id": bid, "priority": -1}),
            422,
            Some("priority"),
        ),
        (
            json!({"kind": "bug", "id": bid, "session": "nobody"}),
            422,
            Some("session"),
        ),
        (
            json!({"kind": "bug", "id": bid, "role": "boss"}),
            422,
            Some("role"),
        ),
        (
            json!({"kind": "bug", "id": bid, "group": "a b"}),
            422,
            Some("target_group"),
        ),
        (
            json!({"kind": "bug", "id": bid, "message": " "}),
            422,
            Some("content"),
        ),
        (json!({"kind": "error", "id": 9999}), 404, Some("id")),
        (json!({"kind": "bug", "id": 9999}), 404, Some("id")),
    ] {
        let r = admin.post_json("/api/assign-to-tmux", &body).await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (status, field),
            "{body}: {}",
            r.body
        );
        assert!(r.json["code"].is_string(), "{}", r.body);
    }
    for body in [
        json!({"kind": "bug"}),
        json!({"id": bid}),
        json!({"kind": "bug", "id": "x"}),
        json!({"kind": "bug", "id": bid, "extra": 1}),
    ] {
        let r = admin.post_json("/api/assign-to-tmux", &body).await;
        assert!(
            (400..500).contains(&r.status) && r.json["code"].is_string(),
            "{body}: {} {}",
            r.status,
            r.body
        );
    }
    assert_eq!(prompt_count(&admin).await, before);

    // The page forms call the same code and come back with a notice.
    let r = admin
        .post_form(
            &format!("/features/{fid}/assign"),
            &[("target", "auto"), ("priority", "3"), ("message", "")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(location(&r).starts_with(&format!("/features/{fid}?notice=")));
    let feature_prompt = assigned_id(&r);
    let p = prompt(&admin, feature_prompt).await;
    assert_eq!(
        (&p["source_kind"], &p["source_id"], &p["priority"]),
        (&json!("feature"), &json!(fid), &json!(3))
    );
    assert!(p["content"].as_str().unwrap().contains("Implement feature"));
    let r = admin
        .post_form(
            &format!("/bugs/{bid}/assign"),
            &[
                ("target", "role:manager"),
                ("priority", "5"),
                ("message", "look at the save path"),
            ],
        )
        .await;
    let bug_prompt = assigned_id(&r);
    let p = prompt(&admin, bug_prompt).await;
    assert_eq!(
        (&p["content"], &p["target_role"], &p["source_kind"]),
        (
            &json!("look at the save path"),
            &json!("manager"),
            &json!("bug")
        )
    );
    let r = admin
        .post_form(&format!("/errors/{gid}/assign"), &[("target", "auto")])
        .await;
    assert!(location(&r).starts_with(&format!("/errors/{gid}?notice=")));
    assigned_id(&r);

    // Bad form input comes back as an error flash on the item; nothing is queued.
    let before = prompt_count(&admin).await;
    for (fields, says) in [
        (vec![("priority", "11")], "priority must be 0-10"),
        (vec![("priority", "x")], "priority must be 0-10"),
        (vec![("target", "session:nobody")], "no live agent session"),
        (vec![("target", "somewhere")], "target must be"),
        (vec![("target", "role:boss")], "unknown session role"),
    ] {
        let r = admin
            .post_form(&format!("/bugs/{bid}/assign"), &fields)
            .await;
        assert_eq!(r.status, 303, "{fields:?}: {}", r.body);
        let (kind, text) = flash(&r);
        assert!(
            kind == "error" && text.contains(says),
            "{fields:?}: {kind}={text}"
        );
        assert!(location(&r).starts_with(&format!("/bugs/{bid}?")));
    }
    let r = admin
        .post_form("/features/9999/assign", &[("target", "auto")])
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = admin
        .http
        .post(format!("{}/bugs/{bid}/assign", admin.base))
        .form(&[("target", "auto")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF field");
    assert_eq!(prompt_count(&admin).await, before);

    // Each page shows the button (a real form) and its assignments with their status.
    for (page, ids) in [
        (format!("/features/{fid}"), vec![feature_prompt]),
        (format!("/bugs/{bid}"), vec![bug_prompt]),
        (format!("/errors/{gid}"), vec![error_prompt]),
    ] {
        let r = admin.get(&page).await;
        assert_eq!(r.status, 200, "{page}: {}", r.body);
        assert!(
            r.body.contains(&format!(r#"action="{page}/assign""#))
                && r.body.contains(r#"id="assign-submit""#)
                && r.body.contains(r#"name="csrf_token""#),
            "{page} has the Assign form"
        );
        for id in ids {
            assert!(r.body.contains(&format!("#{id}</a>")), "{page} lists #{id}");
        }
        assert!(
            r.body.contains("badge ag-pending"),
            "{page} shows the status"
        );
        let on_done = if page.starts_with("/errors") {
            "is marked in review until someone resolves it"
        } else {
            "moves to review"
        };
        assert!(r.body.contains(on_done), "{page} says what completion does");
    }

    // A viewer sees the assignments but no working button, and is refused.
    let viewer = t.user("vera", "viewer").await;
    let r = viewer.get(&format!("/bugs/{bid}")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(&format!("#{bug_prompt}</a>")));
    assert!(!r.body.contains("assign-form") && !r.body.contains("/assign\""));
    assert!(r.body.contains("Read-only: assigning needs write access"));
    let r = viewer
        .post_json("/api/assign-to-tmux", &json!({"kind": "bug", "id": bid}))
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (403, Some("forbidden"))
    );
    let r = viewer
        .post_form(&format!("/bugs/{bid}/assign"), &[("target", "auto")])
        .await;
    assert_eq!(r.status, 403);
    let ro = t.token("read").await;
    let r = ro
        .post_json(
            "/api/assign-to-tmux",
            &json!({"kind": "feature", "id": fid}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(prompt_count(&admin).await, before);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn completed_prompts_move_a_bug_to_review_and_mark_an_error_group_in_review() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    let r = w
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "w1", "agent": "claude",
                    "program": fixtures().join("fake_agent.py").display().to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    wait_state(&w, "w1", "idle").await;
    let (_, bid, gid) = items(&t, &w).await;

    // An open bug goes open -> in_progress -> review, each step naming the prompt.
    let r = w
        .post_json(
            "/api/assign-to-tmux",
            &json!({"kind": "bug", "id": bid, "session": "w1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pid = r.json["prompt_id"].as_i64().unwrap();
    let bug = until("the bug in review", || async {
        let b = w.get(&format!("/api/bugs/{bid}")).await;
        (b.json["status"] == "review").then_some(b.json)
    })
    .await;
    assert!(bug["resolved_at"].is_null(), "{bug}");
    assert_eq!(prompt(&w, pid).await["status"], "completed");
    let log = w
        .get(&format!("/api/activity?entity=bug&entity_id={bid}"))
        .await;
    let comment = format!("assigner prompt #{pid} completed in session w1");
    let steps: Vec<&str> = log
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["comment"] == comment.as_str())
        .filter_map(|e| e["details"]["status"].as_str())
        .collect();
    assert_eq!(steps, ["review", "in_progress"], "{}", log.body);
    let stats = w.get("/api/stats").await;
    assert_eq!(stats.json["bugs"]["review"], 1, "{}", stats.body);
    let listed = w.get("/api/bugs?status=review").await;
    assert_eq!(listed.json[0]["id"], bid, "{}", listed.body);

    // The page shows the history and the completed assignment; review -> resolved works.
    let admin = t.admin().await;
    let page = admin.get(&format!("/bugs/{bid}")).await;
    assert!(page.body.contains(&comment), "bug history names the prompt");
    assert!(page.body.contains(&format!("#{pid}</a>")) && page.body.contains("badge ag-completed"));
    let r = admin
        .post_form(
            &format!("/bugs/{bid}/status"),
            &[("status", "resolved"), ("comment", "checked the fix")],
        )
        .await;
    assert_eq!(flash(&r).0, "notice", "{}", location(&r));
    assert_eq!(
        w.get(&format!("/api/bugs/{bid}")).await.json["status"],
        "resolved"
    );

    // An error group stays open and is marked in review until it is resolved.
    let r = w
        .post_json(
            "/api/assign-to-tmux",
            &json!({"kind": "error", "id": gid, "session": "w1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pid = r.json["prompt_id"].as_i64().unwrap();
    let g = until("the error group in review", || async {
        let g = w.get(&format!("/api/errors/{gid}")).await;
        (g.json["review_prompt_id"] == pid).then_some(g.json)
    })
    .await;
    assert_eq!(g["status"], "open", "{g}");
    assert!(g["review_at"].is_string(), "{g}");
    let page = admin.get(&format!("/errors/{gid}")).await;
    assert!(page.body.contains(r#"id="error-review""#));
    let r = w
        .post_json(&format!("/api/errors/{gid}/resolve"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let g = w.get(&format!("/api/errors/{gid}")).await.json;
    assert!(g["review_at"].is_null() && g["status"] == "resolved", "{g}");
    t.stop().await;
}

/// Every change of a prompt is in the activity log with who made it: sending, cancelling,
/// retrying, clearing (the dispatcher's moves are the assigner's).
#[tokio::test]
async fn prompt_changes_are_in_the_activity_log() {
    let t = TestServer::start_with(|c| c.agents.assigner = false).await;
    let admin = t.token("admin").await;
    let r = admin
        .post_json(
            "/api/assigner/send",
            &json!({"content": "tidy the README", "max_retries": 2}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json["prompt_id"].as_i64().unwrap();
    let path = format!("/api/assigner/prompts/{id}");
    assert_eq!(admin.delete(&path).await.status, 200);
    assert_eq!(
        admin
            .post_json(&format!("{path}/retry"), &json!({}))
            .await
            .status,
        200
    );
    assert_eq!(admin.delete(&path).await.status, 200);
    let r = admin.post_json("/api/assigner/clear", &json!({})).await;
    assert_eq!(
        (r.status, r.json["count"].as_u64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    let log = admin.get("/api/activity?entity=prompt").await;
    assert_eq!(log.status, 200, "{}", log.body);
    let rows: Vec<(String, Option<i64>)> = log
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["entity_id"].as_i64(),
            )
        })
        .collect();
    let want: Vec<(String, Option<i64>)> = [
        ("clear", None),
        ("cancel", Some(id)),
        ("retry", Some(id)),
        ("cancel", Some(id)),
        ("create", Some(id)),
    ]
    .iter()
    .map(|(a, i)| (a.to_string(), *i))
    .collect();
    assert_eq!(rows, want, "{}", log.body);
    assert!(
        log.json
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["actor"].as_str().is_some_and(|s| !s.is_empty())),
        "{}",
        log.body
    );
    t.stop().await;
}

/// Permission patterns (what gets approved on its own), pane patterns and routing rules:
/// every change is in the activity log, with who made it and what the rule says.
#[tokio::test]
async fn agent_rule_changes_are_in_the_activity_log() {
    let t = TestServer::start_with(|c| c.agents.assigner = false).await;
    let admin = t.token("admin").await;
    let r = admin
        .post_json(
            "/api/claude/patterns",
            &json!({"name": "cargo", "tool_regex": "Bash", "subject_regex": "^cargo test", "decision": "approve"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pat = r.json["id"].as_i64().unwrap();
    let r = admin
        .put_json(
            &format!("/api/claude/patterns/{pat}"),
            &json!({"name": "cargo", "tool_regex": "Bash", "subject_regex": "^cargo (test|check)", "decision": "approve"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        admin
            .delete(&format!("/api/claude/patterns/{pat}"))
            .await
            .status,
        200
    );
    let r = admin
        .post_json(
            "/api/agents/pane-patterns",
            &json!({"name": "mine", "agent": "other", "signal": "idle", "source": "tail", "tail_lines": 2, "regex": "ready>$"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pane = r.json["id"].as_i64().unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/agents/pane-patterns/{pane}"))
            .await
            .status,
        200
    );
    let r = admin
        .post_json(
            "/api/assigner/routing-rules",
            &json!({"name": "bugs", "content_regex": "\\bbug\\b", "target_group": "debug"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rule = r.json["id"].as_i64().unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/assigner/routing-rules/{rule}"))
            .await
            .status,
        200
    );

    let log = admin.get("/api/activity?limit=50").await;
    let rows: Vec<(String, String, Option<i64>)> = log
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            ["permission_pattern", "pane_pattern", "routing_rule"]
                .contains(&a["entity_type"].as_str().unwrap_or(""))
        })
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["entity_type"].as_str().unwrap().to_string(),
                a["entity_id"].as_i64(),
            )
        })
        .collect();
    let want: Vec<(String, String, Option<i64>)> = [
        ("delete", "routing_rule", rule),
        ("create", "routing_rule", rule),
        ("delete", "pane_pattern", pane),
        ("create", "pane_pattern", pane),
        ("delete", "permission_pattern", pat),
        ("update", "permission_pattern", pat),
        ("create", "permission_pattern", pat),
    ]
    .iter()
    .map(|(a, e, i)| (a.to_string(), e.to_string(), Some(*i)))
    .collect();
    assert_eq!(rows, want, "{}", log.body);
    let update = log
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "update")
        .unwrap();
    assert_eq!(
        update["details"]["subject_regex"], "^cargo (test|check)",
        "{update}"
    );
    t.stop().await;
}

/// Starting, creating and killing sessions is in the activity log with who did it (the
/// command line is not: it may carry secrets).
#[tokio::test]
async fn session_starts_and_kills_are_in_the_activity_log() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let admin = t.token("admin").await;
    let cwd = std::env::temp_dir().display().to_string();
    let r = admin
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "logged-1", "agent": "shell", "cwd": cwd}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin
        .post_json(
            "/api/tmux/create",
            &json!({"name": "logged-2", "command": ["sleep", "300"], "env": {"API_KEY": "s3cret"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    for name in ["logged-1", "logged-2"] {
        let r = admin
            .post_json("/api/tmux/kill", &json!({"session": name}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let log = admin.get("/api/activity?limit=20").await;
    let rows: Vec<(String, String, String)> = log
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["entity_type"]
                .as_str()
                .is_some_and(|e| e.ends_with("_session"))
        })
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["entity_type"].as_str().unwrap().to_string(),
                a["details"]["session"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("kill", "agent_session", "logged-2"),
        ("kill", "agent_session", "logged-1"),
        ("create", "tmux_session", "logged-2"),
        ("start", "agent_session", "logged-1"),
    ]
    .iter()
    .map(|(a, e, n)| (a.to_string(), e.to_string(), n.to_string()))
    .collect();
    assert_eq!(rows, want, "{}", log.body);
    assert!(
        !log.body.contains("s3cret") && !log.body.contains("sleep"),
        "{}",
        log.body
    );
    t.stop().await;
}
