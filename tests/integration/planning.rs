//! Planning over HTTP on a real git repository made in the test: scan → plan → files written →
//! approve (features linked to file:line) → rescan after edits (one item updated, none added, a
//! removed TODO done); suggestions confirmed into each target kind; the review queue filling
//! and emptying; bad input answered 4xx with nothing half-written; `architect milestones`.

use crate::support::git;
use crate::support::{until, Session, TestServer};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn write(dir: &Path, path: &str, content: &[u8]) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A repository with notes in code, a roadmap, vendored code and files the scanner skips.
fn repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.email", "ana@example.com"]);
    git(dir, &["config", "user.name", "Ana Author"]);
    write(
        dir,
        "src/api/handlers.rs",
        b"fn a() {\n    // TODO: validate the input\n}\n\nfn b() {\n    // FIXME: leaks a connection\n}\n",
    );
    write(
        dir,
        "src/api/routes.rs",
        b"// TODO: add pagination\nfn routes() {}\n",
    );
    write(
        dir,
        "src/main.rs",
        b"fn main() {\n    // HACK: sleep to wait for the socket\n}\n",
    );
    write(
        dir,
        "ROADMAP.md",
        b"# Roadmap\n\n## v2\n\n- [ ] sharding\n- [x] shipped already\n\n### API\n\n- [ ] webhooks\n",
    );
    write(dir, "vendor/lib.rs", b"// TODO: not ours\n");
    // A tracked symlink that leaves the repository is never followed.
    let outside = dir.parent().unwrap().join(format!(
        "outside-{}.rs",
        dir.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&outside, "// TODO: outside the repository\n").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("escape.rs")).unwrap();
    write(dir, "logo.bin", b"\x00\x01\x02TODO: in a binary\n");
    write(dir, "latin1.rs", b"// TODO: caf\xe9\n");
    let mut big = b"// TODO: in a huge file\n".to_vec();
    big.resize(1_100_000, b'x');
    write(dir, "data/huge.rs", &big);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "initial"]);
}

async fn project(s: &Session, name: &str, source: &Path) -> i64 {
    let r = s
        .post_json(
            "/api/projects",
            &json!({"name": name, "source_path": source.display().to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().unwrap()
}

fn by_title<'a>(list: &'a Value, title: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|m| m["title"] == title)
        .unwrap_or_else(|| panic!("no milestone '{title}' in {list}"))
}

async fn items(s: &Session, project: i64, status: &str) -> Vec<Value> {
    let r = s
        .get(&format!(
            "/api/planning/items?project_id={project}&status={status}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json.as_array().unwrap().clone()
}

async fn activity(s: &Session, entity: &str) -> Vec<Value> {
    let r = s.get(&format!("/api/activity?entity={entity}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_plan_files_approve_and_rescan_a_real_repository() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let pid = project(&s, "shop", dir.path()).await;
    let r = s
        .post_json(
            "/api/bugs",
            &json!({"project_id": pid, "title": "checkout double-charges", "severity": "high"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let bug = r.json["id"].as_i64().unwrap();
    let r = s
        .post_json(
            "/api/errors",
            &json!({"node_id": "n1", "error_type": "TimeoutError", "message": "charge timed out", "source": "shop"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let group = r.json["group_id"].as_i64().unwrap();
    until("the error group is stored", || async {
        (s.get(&format!("/api/errors/{group}")).await.status == 200).then_some(())
    })
    .await;

    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": pid}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let scan = &r.json["scan"];
    assert_eq!(scan["status"], "done");
    // 4 notes in code + 2 open boxes + the bug + the error group; vendored code left out.
    assert_eq!(scan["items"], 8, "{}", r.body);
    assert_eq!(scan["added"], 8);
    let skipped: Vec<(String, String)> = scan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["path"].as_str().unwrap().to_string(),
                x["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for path in ["logo.bin", "latin1.rs", "data/huge.rs"] {
        assert!(
            skipped.iter().any(|(p, _)| p == path),
            "{path} is reported as skipped: {skipped:?}"
        );
    }
    assert!(!r.body.contains("not ours"), "vendored code is not read");
    assert!(
        !r.body.contains("outside the repository"),
        "a symlink out of the repository is not followed"
    );

    // The plan files.
    let files: Vec<String> = r.json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(files.len(), 2, "{}", r.body);
    let json_file = files.iter().find(|f| f.ends_with(".json")).unwrap();
    assert!(
        json_file.contains("/milestones/shop_milestones_"),
        "{json_file}"
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(json_file).unwrap()).unwrap();
    assert_eq!(doc["project"]["name"], "shop");
    let summary =
        std::fs::read_to_string(t.state().config.data_dir.join("milestones/shop_summary.md"))
            .unwrap();
    assert!(
        summary.contains("`src/api/handlers.rs:6` leaks a connection"),
        "{summary}"
    );

    // The proposed milestones.
    let pending = s.get("/api/autopilot/milestones").await;
    assert_eq!(pending.status, 200, "{}", pending.body);
    let titles: Vec<&str> = pending
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        vec![
            "Fix open bugs and errors",
            "Code notes in src/api",
            "Code notes elsewhere",
            "ROADMAP.md › v2"
        ]
    );
    let code = by_title(&pending.json, "Code notes in src/api").clone();
    let code_id = code["id"].as_i64().unwrap();
    let detail = s.get(&format!("/api/autopilot/milestones/{code_id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.json["phases"][0]["name"], "Fix");
    assert_eq!(detail.json["phases"][1]["name"], "Tidy up");
    let authors: Vec<&str> = detail.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["author"].as_str())
        .collect();
    assert!(
        authors.contains(&"Ana Author"),
        "git blame names the author: {}",
        detail.body
    );

    // Approve: the milestone and one feature per task, linked back to file:line.
    let r = s
        .post_json(
            &format!("/api/autopilot/milestones/{code_id}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["status"], "approved");
    let milestone = r.json["milestone"]["id"].as_i64().unwrap();
    let features = s
        .get(&format!("/api/features?milestone_id={milestone}"))
        .await;
    let features = features.json.as_array().unwrap().clone();
    assert_eq!(features.len(), 3, "{features:?}");
    let fixme = features
        .iter()
        .find(|f| {
            f["description"]
                .as_str()
                .unwrap()
                .contains("src/api/handlers.rs:6")
        })
        .expect("a feature names the FIXME's file:line");
    assert!(fixme["description"]
        .as_str()
        .unwrap()
        .contains("leaks a connection"));
    let linked: Vec<Value> = items(&s, pid, "open")
        .await
        .into_iter()
        .filter(|i| !i["feature_id"].is_null())
        .collect();
    assert_eq!(linked.len(), 3, "the three items link to their features");
    // Approving twice, or a missing one.
    let again = s
        .post_json(
            &format!("/api/autopilot/milestones/{code_id}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(
        s.post_json("/api/autopilot/milestones/99999/approve", &json!({}))
            .await
            .status,
        404
    );
    assert!(activity(&s, "plan_milestone")
        .await
        .iter()
        .any(|a| a["action"] == "approve"));

    // Reject needs a reason, and keeps it.
    let roadmap = by_title(&pending.json, "ROADMAP.md › v2")["id"]
        .as_i64()
        .unwrap();
    let r = s
        .post_json(
            &format!("/api/autopilot/milestones/{roadmap}/reject"),
            &json!({"reason": " "}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("reason")),
        "{}",
        r.body
    );
    let r = s
        .post_json(
            &format!("/api/autopilot/milestones/{roadmap}/reject"),
            &json!({"reason": "not this quarter"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.json["status"].as_str(), r.json["reason"].as_str()),
        (Some("rejected"), Some("not this quarter"))
    );

    // Edit a TODO in place, remove the HACK, leave the rest: rescan.
    write(
        dir.path(),
        "src/api/routes.rs",
        b"// TODO: add cursor pagination\nfn routes() {}\n",
    );
    write(dir.path(), "src/main.rs", b"fn main() {\n}\n");
    let before = items(&s, pid, "open").await;
    let r = s
        .post_json("/api/planning/scan", &json!({"project": "SHOP"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let scan = &r.json["scan"];
    assert_eq!(
        (
            scan["added"].as_i64(),
            scan["edited"].as_i64(),
            scan["done"].as_i64()
        ),
        (Some(0), Some(1), Some(1)),
        "{}",
        r.body
    );
    assert_eq!(
        scan["files_read"], 2,
        "only the two changed files are read again"
    );
    let after = items(&s, pid, "open").await;
    assert_eq!(after.len(), before.len() - 1);
    let edited = after
        .iter()
        .find(|i| i["path"] == "src/api/routes.rs")
        .unwrap();
    let was = before
        .iter()
        .find(|i| i["path"] == "src/api/routes.rs")
        .unwrap();
    assert_eq!(edited["id"], was["id"], "the edited TODO is the same item");
    assert_eq!(edited["text"], "add cursor pagination");
    assert_eq!(
        edited["feature_id"], was["feature_id"],
        "still linked to its feature"
    );
    let done = items(&s, pid, "done").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["text"], "sleep to wait for the socket");
    // The rejected roadmap plan is not proposed again (its items did not change); the
    // "elsewhere" plan lost its only item and is superseded.
    let pending = s.get("/api/autopilot/milestones").await;
    let titles: Vec<&str> = pending
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["Fix open bugs and errors"], "{}", pending.body);

    // Resolving the bug makes its item done at the next scan.
    let r = s
        .put_json(&format!("/api/bugs/{bug}"), &json!({"status": "resolved"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": pid}))
        .await;
    assert_eq!(r.json["scan"]["done"], 1, "{}", r.body);
    assert_eq!(r.json["scan"]["files_read"], 0, "nothing changed on disk");
    assert!(activity(&s, "project")
        .await
        .iter()
        .any(|a| a["action"] == "scan"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_scans_are_4xx_and_one_scan_of_a_project_runs_at_a_time() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": 4242}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = s
        .post_json("/api/planning/scan", &json!({"project": "nope"}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("project")),
        "{}",
        r.body
    );
    let r = s.post_json("/api/planning/scan", &json!({})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": 1, "extra": 1}))
        .await;
    assert_eq!(r.status, 422, "unknown fields are refused: {}", r.body);
    // No source path; a source path that is not a directory; a directory that is not a repo.
    let r = s
        .post_json("/api/projects", &json!({"name": "nosrc"}))
        .await;
    let nosrc = r.json["id"].as_i64().unwrap();
    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": nosrc}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.json["error"].as_str().unwrap().contains("no source_path"));
    let plain = tempfile::tempdir().unwrap();
    let notrepo = project(&s, "notrepo", plain.path()).await;
    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": notrepo}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("source_path")),
        "{}",
        r.body
    );
    let gone = project(&s, "gone", &plain.path().join("missing")).await;
    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": gone}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // The failed scan is recorded as failed, and nothing was proposed.
    let st = s.get("/api/planning/status").await;
    let row = st.json["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "notrepo")
        .unwrap()
        .clone();
    assert_eq!(row["last_scan"]["status"], "failed", "{row}");
    assert_eq!(s.get("/api/autopilot/milestones").await.json, json!([]));

    // One scan per project at a time (the database's unique running row, across replicas):
    // a running scan makes the next one 409.
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let pid = project(&s, "busy", dir.path()).await;
    sqlx::query(
        "INSERT INTO plan_scans (project_id, status, started_by, started_at) VALUES ($1, 'running', 'other', $2)",
    )
    .bind(pid)
    .bind(t.state().clock.now_str())
    .execute(&t.state().db)
    .await
    .unwrap();
    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": pid}))
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (409, Some("conflict")),
        "{}",
        r.body
    );
    assert!(
        items(&s, pid, "open").await.is_empty(),
        "nothing half-written"
    );
    // Viewers read but cannot scan.
    let viewer = t.user("vera", "viewer").await;
    assert_eq!(viewer.get("/api/planning/status").await.status, 200);
    assert_eq!(
        viewer
            .post_json("/api/planning/scan", &json!({"project_id": pid}))
            .await
            .status,
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn suggestions_confirm_into_each_kind_and_the_queue_empties() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let pid = project(&s, "shop", dir.path()).await;
    s.post_json(
        "/api/bugs",
        &json!({"project_id": pid, "title": "cart empties", "severity": "critical"}),
    )
    .await;
    let r = s
        .post_json(
            "/api/errors",
            &json!({"node_id": "n1", "error_type": "KeyError", "message": "sku missing", "source": "shop"}),
        )
        .await;
    let group = r.json["group_id"].as_i64().unwrap();
    until("the error group is stored", || async {
        (s.get(&format!("/api/errors/{group}")).await.status == 200).then_some(())
    })
    .await;
    let r = s
        .post_json("/api/planning/scan", &json!({"project_id": pid}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let r = s
        .post_json("/api/tasks/suggest", &json!({"project_id": pid}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let created = r.json["created"].as_array().unwrap().clone();
    assert_eq!(
        created.len(),
        8,
        "6 notes + the bug + the error group: {}",
        r.body
    );
    let scores: Vec<i64> = created
        .iter()
        .map(|c| c["score"].as_i64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "ranked: {scores:?}"
    );
    assert!(created[0]["reason"]
        .as_str()
        .unwrap()
        .contains("critical bug"));
    // Asking again makes none twice.
    let r = s
        .post_json("/api/tasks/suggest", &json!({"project_id": pid}))
        .await;
    assert_eq!(r.json["created"], json!([]), "{}", r.body);
    let find = |source: &str, text: &str| {
        created
            .iter()
            .find(|c| c["source"] == source && c["title"].as_str().unwrap().contains(text))
            .unwrap_or_else(|| panic!("no {source} suggestion with {text}"))["id"]
            .as_i64()
            .unwrap()
    };

    // The queue shows the plans and the suggestions.
    let q = s.get("/api/autopilot/queue").await;
    assert_eq!(q.status, 200, "{}", q.body);
    let kinds: std::collections::BTreeSet<&str> = q.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("milestone") && kinds.contains("suggestion"),
        "{kinds:?}"
    );
    let before = q.json["total"].as_i64().unwrap();

    // Into a feature (a TODO), linked to its item.
    let todo = find("item", "validate the input");
    let r = s
        .post_json(&format!("/api/tasks/suggest/{todo}/confirm"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.json["status"].as_str(), r.json["result_kind"].as_str()),
        (Some("confirmed"), Some("feature"))
    );
    let feature = r.json["result_id"].as_i64().unwrap();
    let f = s.get(&format!("/api/features/{feature}")).await;
    assert!(f.body.contains("src/api/handlers.rs:2"), "{}", f.body);
    // Into a bug (the error group).
    let err = find("error_group", "sku missing");
    let r = s
        .post_json(&format!("/api/tasks/suggest/{err}/confirm"), &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json["result_kind"].as_str()),
        (200, Some("bug")),
        "{}",
        r.body
    );
    let b = s.get(&format!("/api/bugs/{}", r.json["result_id"])).await;
    assert_eq!(b.json["project_id"], pid);
    // Into a queued prompt (the FIXME), for any idle agent.
    let fixme = find("item", "leaks a connection");
    let r = s
        .post_json(&format!("/api/tasks/suggest/{fixme}/confirm"), &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json["result_kind"].as_str()),
        (200, Some("prompt")),
        "{}",
        r.body
    );
    let p = s
        .get(&format!("/api/assigner/prompts/{}", r.json["result_id"]))
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("leaks a connection"), "{}", p.body);
    // Into a task: the caller names its type; without one, 422 and nothing changes.
    let hack = find("item", "sleep to wait");
    let r = s
        .post_json(
            &format!("/api/tasks/suggest/{hack}/confirm"),
            &json!({"target": "task"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("type")),
        "{}",
        r.body
    );
    assert_eq!(
        s.get(&format!("/api/tasks/suggest/{hack}/status"))
            .await
            .json["status"],
        "pending"
    );
    let r = s
        .post_json(
            &format!("/api/tasks/suggest/{hack}/confirm"),
            &json!({"target": "task", "type": "shell", "payload": {"command": "true"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["result_kind"].as_str()),
        (200, Some("task")),
        "{}",
        r.body
    );
    let task = s.get(&format!("/api/tasks/{}", r.json["result_id"])).await;
    assert_eq!(
        task.json["task"]["project_id"]
            .as_i64()
            .or(task.json["project_id"].as_i64()),
        Some(pid),
        "{}",
        task.body
    );
    // Confirming twice is 409; an unknown target is 422.
    let r = s
        .post_json(&format!("/api/tasks/suggest/{todo}/confirm"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let other = find("item", "webhooks");
    let r = s
        .post_json(
            &format!("/api/tasks/suggest/{other}/confirm"),
            &json!({"target": "poem"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // Skip (with the reason kept), complete, and the history.
    let r = s
        .post_json(
            &format!("/api/tasks/suggest/{other}/skip"),
            &json!({"reason": "later"}),
        )
        .await;
    assert_eq!(r.json["status"], "skipped", "{}", r.body);
    let r = s
        .post_json(&format!("/api/tasks/suggest/{todo}/complete"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let st = s.get(&format!("/api/tasks/suggest/{todo}/status")).await;
    let history: Vec<&str> = st.json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, vec!["pending", "confirmed", "completed"]);
    assert_eq!(
        s.get(&format!("/api/tasks/suggest/{other}/status"))
            .await
            .json["history"][1]["note"],
        "later"
    );
    assert!(activity(&s, "suggestion").await.len() >= 5);

    // The queue shrank by what was handled; handle the rest and it is empty.
    let q = s.get("/api/autopilot/queue").await;
    assert_eq!(q.json["total"].as_i64().unwrap(), before - 5);
    for e in q.json["items"].as_array().unwrap() {
        let id = e["id"].as_i64().unwrap();
        match e["kind"].as_str().unwrap() {
            "milestone" => {
                let r = s
                    .post_json(
                        &format!("/api/autopilot/milestones/{id}/reject"),
                        &json!({"reason": "no"}),
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.body);
            }
            "suggestion" => {
                let r = s
                    .post_json(&format!("/api/tasks/suggest/{id}/skip"), &json!({}))
                    .await;
                assert_eq!(r.status, 200, "{}", r.body);
            }
            other => panic!("unexpected {other} in the queue: {e}"),
        }
    }
    let q = s.get("/api/autopilot/queue").await;
    assert_eq!(q.json["total"], 0, "{}", q.body);
    assert_eq!(q.json["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_holds_reviews_failed_prompts_and_permissions_too() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let r = s.post_json("/api/projects", &json!({"name": "p"})).await;
    let pid = r.json["id"].as_i64().unwrap();
    let f = s
        .post_json(
            "/api/features",
            &json!({"project_id": pid, "name": "search"}),
        )
        .await;
    let fid = f.json["id"].as_i64().unwrap();
    for st in ["spec", "in_progress", "review"] {
        let r = s
            .put_json(&format!("/api/features/{fid}"), &json!({"status": st}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let b = s
        .post_json("/api/bugs", &json!({"project_id": pid, "title": "typo"}))
        .await;
    let bid = b.json["id"].as_i64().unwrap();
    for st in ["in_progress", "review"] {
        let r = s
            .put_json(&format!("/api/bugs/{bid}"), &json!({"status": st}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let q = s.get("/api/autopilot/queue").await;
    let kinds: Vec<(&str, i64)> = q.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap(), i["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        vec![("feature_review", fid), ("bug_review", bid)],
        "{}",
        q.body
    );
    let item = &q.json["items"][0];
    assert_eq!(item["href"], format!("/features/{fid}"));
    assert_eq!(item["actions"][0]["url"], format!("/api/features/{fid}"));
    // The navigation count is the queue's length.
    let badges = s.get("/api/overview/badges").await;
    assert_eq!(badges.json["autopilot"], 2, "{}", badges.body);
    // Handled, they leave the queue.
    s.put_json(
        &format!("/api/features/{fid}"),
        &json!({"status": "completed"}),
    )
    .await;
    s.put_json(&format!("/api/bugs/{bid}"), &json!({"status": "resolved"}))
        .await;
    let q = s.get("/api/autopilot/queue").await;
    assert_eq!(q.json["total"], 0, "{}", q.body);
    let groups: Vec<&str> = q.json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect();
    for k in [
        "milestone",
        "suggestion",
        "permission",
        "failed_prompt",
        "error_review",
    ] {
        assert!(groups.contains(&k), "the queue counts {k}: {groups:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_autopilot_page_scans_approves_and_rejects_from_forms() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let empty = s.get("/autopilot").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(
        empty.body.contains("Nothing waits on you"),
        "empty state says what to do"
    );
    assert!(empty.body.contains("architect milestones --scan"));
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let pid = project(&s, "shop", dir.path()).await;
    let r = s
        .post_form("/autopilot/scan", &[("project_id", &pid.to_string())])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.headers["location"].to_str().unwrap().to_string();
    assert!(to.contains("notice="), "{to}");
    let page = s.get("/autopilot").await;
    assert!(page.body.contains("Code notes in src/api"), "{}", page.body);
    let list = s.get("/api/autopilot/milestones").await;
    let id = by_title(&list.json, "Code notes in src/api")["id"]
        .as_i64()
        .unwrap();
    let detail = s.get(&format!("/autopilot/milestones/{id}")).await;
    assert!(
        detail.body.contains("src/api/handlers.rs:6"),
        "items with file:line"
    );
    assert!(detail.body.contains("accesskey=\"a\""), "keyboard approve");
    let r = s
        .post_form(&format!("/autopilot/milestones/{id}/approve"), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.headers["location"]
        .to_str()
        .unwrap()
        .starts_with("/milestones/"));
    let other = by_title(&list.json, "ROADMAP.md › v2")["id"]
        .as_i64()
        .unwrap();
    let r = s
        .post_form(
            &format!("/autopilot/milestones/{other}/reject"),
            &[("reason", "")],
        )
        .await;
    assert!(
        r.headers["location"].to_str().unwrap().contains("error="),
        "a reason is required"
    );
    let r = s
        .post_form(
            &format!("/autopilot/milestones/{other}/reject"),
            &[("reason", "later")],
        )
        .await;
    assert!(r.headers["location"].to_str().unwrap().contains("notice="));
    // Suggestions from the page.
    let r = s
        .post_form("/autopilot/suggest", &[("project_id", &pid.to_string())])
        .await;
    assert_eq!(r.status, 303);
    let page = s.get("/autopilot").await;
    assert!(page.body.contains("id=\"suggestion-"), "suggestions listed");
    // A viewer sees the page without the buttons.
    let viewer = t.user("vic", "viewer").await;
    let page = viewer.get("/autopilot").await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("Scan now"),
        "no dead buttons for a viewer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn architect_milestones_scans_with_progress_and_reports_status() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    project(&s, "shop", dir.path()).await;
    let token = t.token("admin").await.token.clone().unwrap();
    let bin = env!("CARGO_BIN_EXE_architect");
    let run = |args: &[&str]| {
        Command::new(bin)
            .arg("milestones")
            .args(args)
            .env("ARCHITECT_URL", &t.url)
            .env("ARCHITECT_TOKEN", &token)
            .env("ARCHITECT_MILESTONES_PID_FILE", dir.path().join("m.pid"))
            .output()
            .unwrap()
    };
    let out = run(&["--scan", "--project", "shop"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("[1/1]") && err.contains("shop: 7 files"),
        "progress: {err}"
    );
    let out = run(&["--scan", "--project", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no active project named 'nope'"));
    let out = run(&["--status"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the background worker does not run"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("shop") && text.contains("done"), "{text}");
    let help = Command::new(bin)
        .args(["milestones", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--scan",
        "--project",
        "--daemon",
        "--status",
        "--stop",
        "--every",
    ] {
        assert!(help.contains(flag), "--help names {flag}");
    }
}

/// The Autopilot page and a proposed milestone in headless Chromium: screenshots
/// (`target/screenshots/planning-*.png`), no sideways scroll at phone width, and approving
/// with the keyboard (the Approve button has focus).
#[tokio::test(flavor = "multi_thread")]
async fn planning_browser_pages_fit_and_approve_with_the_keyboard() {
    use crate::browser::{browser_available, log_in, Browser, Driver};
    if !browser_available() {
        return;
    }
    let t = TestServer::start().await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let pid = project(&s, "shop", dir.path()).await;
    s.post_json(
        "/api/bugs",
        &json!({"project_id": pid, "title": "cart empties on reload", "severity": "critical"}),
    )
    .await;
    assert_eq!(
        s.post_json("/api/planning/scan", &json!({"project_id": pid}))
            .await
            .status,
        200
    );
    s.post_json("/api/tasks/suggest", &json!({"project_id": pid}))
        .await;
    let list = s.get("/api/autopilot/milestones").await;
    let id = by_title(&list.json, "Code notes in src/api")["id"]
        .as_i64()
        .unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open_with(&driver, &tmp.path().join("profile"), Some((1280, 1000))).await;
    log_in(&b, &t).await;
    b.goto(&format!("{}/autopilot", t.url)).await;
    b.element("#queue").await;
    b.screenshot("planning-autopilot").await;
    b.goto(&format!("{}/autopilot/milestones/{id}", t.url))
        .await;
    b.element("button[accesskey=a]").await;
    b.screenshot("planning-milestone").await;
    // The Approve button has focus: Enter approves.
    let focused = b
        .eval("return document.activeElement && document.activeElement.textContent;")
        .await;
    assert_eq!(focused.as_str(), Some("Approve"), "{focused}");
    b.eval("document.activeElement.click(); return true;").await;
    until("the milestone is approved", || async {
        let r = s.get(&format!("/api/autopilot/milestones/{id}")).await;
        (r.json["status"] == "approved").then_some(())
    })
    .await;

    let phone = Browser::open_with(&driver, &tmp.path().join("phone"), Some((390, 844))).await;
    log_in(&phone, &t).await;
    for path in [
        "/autopilot".to_string(),
        format!("/autopilot/milestones/{id}"),
    ] {
        phone.goto(&format!("{}{path}", t.url)).await;
        phone.element("main#content").await;
        let v = phone
            .eval("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        phone
            .screenshot(&format!("planning-phone{}", path.replace('/', "-")))
            .await;
        assert!(
            v[0].as_i64() <= v[1].as_i64(),
            "{path}: no sideways scroll at 390 px ({v})"
        );
    }
}
