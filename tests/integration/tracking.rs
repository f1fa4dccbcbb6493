//! Projects, milestones, features, bugs, devops tasks, stats and the activity log over HTTP.

use crate::support::{Session, TestServer};
use serde_json::{json, Value};

async fn project(s: &Session, name: &str) -> i64 {
    let r = s.post_json("/api/projects", &json!({"name": name})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().unwrap()
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn projects_crud_archive_and_unique_names() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let r = s
        .post_json(
            "/api/projects",
            &json!({"name": "  Alpha ", "description": "d", "source_path": "/src/alpha", "tags": ["rust", "rust", "web"], "status": "active"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json["id"].as_i64().unwrap();
    assert_eq!(r.json["name"], "Alpha", "names are trimmed");
    assert_eq!(r.json["tags"], json!(["rust", "web"]), "tags deduplicated");
    assert_eq!(
        s.get(&format!("/api/projects/{id}")).await.json["source_path"],
        "/src/alpha"
    );
    // Names are unique among active projects, case-insensitively.
    let dup = s
        .post_json("/api/projects", &json!({"name": "alpha"}))
        .await;
    assert_eq!(
        (dup.status, dup.json["code"].as_str()),
        (409, Some("conflict"))
    );
    // Update, including clearing a field with null.
    let r = s
        .put_json(
            &format!("/api/projects/{id}"),
            &json!({"status": "paused", "source_path": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.json["status"].as_str(), r.json["source_path"].is_null()),
        (Some("paused"), true)
    );
    assert_eq!(r.json["description"], "d", "untouched fields stay");
    // DELETE archives.
    let r = s.delete(&format!("/api/projects/{id}")).await;
    assert_eq!((r.status, r.json["archived"].as_bool()), (200, Some(true)));
    assert!(s
        .get("/api/projects")
        .await
        .json
        .as_array()
        .unwrap()
        .is_empty());
    let all = s.get("/api/projects?include_archived=true").await;
    assert_eq!(names(&all.json, "name"), ["Alpha"]);
    assert_eq!(
        s.get(&format!("/api/projects/{id}")).await.status,
        200,
        "archived stays readable"
    );
    // The name is free again while archived; unarchiving then conflicts.
    let other = project(&s, "ALPHA").await;
    let r = s
        .put_json(&format!("/api/projects/{id}"), &json!({"archived": false}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    s.delete(&format!("/api/projects/{other}")).await;
    let r = s
        .put_json(&format!("/api/projects/{id}"), &json!({"archived": false}))
        .await;
    assert_eq!((r.status, r.json["archived"].as_bool()), (200, Some(false)));
    assert_eq!(s.get("/api/projects/99999").await.status, 404);
    assert_eq!(
        s.put_json("/api/projects/99999", &json!({"name": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(s.delete("/api/projects/99999").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn project_filters_and_pagination() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    for i in 0..5 {
        project(&s, &format!("proj-{i}")).await;
    }
    s.post_json(
        "/api/projects",
        &json!({"name": "special 50%_off", "status": "completed"}),
    )
    .await;
    let page = s.get("/api/projects?limit=2&offset=1").await;
    assert_eq!(names(&page.json, "name"), ["proj-1", "proj-2"]);
    let q = s.get("/api/projects?q=50%25_").await;
    assert_eq!(
        names(&q.json, "name"),
        ["special 50%_off"],
        "LIKE wildcards are escaped"
    );
    let st = s.get("/api/projects?status=completed").await;
    assert_eq!(st.json.as_array().unwrap().len(), 1);
    let bad = s.get("/api/projects?limit=0").await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (422, Some("limit"))
    );
    assert_eq!(s.get("/api/projects?limit=5000").await.status, 422);
    assert_eq!(s.get("/api/projects?offset=-1").await.status, 422);
    let bad = s.get("/api/projects?status=frozen").await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (422, Some("status"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn feature_workflow_history_and_illegal_transitions() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let p = project(&s, "p").await;
    let wf = s.get("/api/features/workflow").await;
    assert_eq!(wf.json["initial"], "draft");
    assert_eq!(
        wf.json["transitions"]["review"],
        json!(["completed", "in_progress", "blocked", "cancelled"])
    );
    assert_eq!(wf.json["statuses"].as_array().unwrap().len(), 7);
    let r = s
        .post_json(
            "/api/features",
            &json!({"project_id": p, "name": "login", "priority": 7}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let f = r.json["id"].as_i64().unwrap();
    assert_eq!(r.json["status"], "draft");
    let path = format!("/api/features/{f}");
    let r = s.put_json(&path, &json!({"status": "completed"})).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (409, Some("invalid_transition"))
    );
    assert_eq!(
        r.json["allowed"],
        json!(["spec", "in_progress", "blocked", "cancelled"])
    );
    assert!(r.json["error"]
        .as_str()
        .unwrap()
        .contains("spec, in_progress"));
    for (to, comment) in [
        ("spec", Some("written")),
        ("in_progress", None),
        ("review", None),
        ("completed", Some("shipped")),
    ] {
        let mut body = json!({"status": to});
        if let Some(c) = comment {
            body["comment"] = json!(c);
        }
        let r = s.put_json(&path, &body).await;
        assert_eq!(
            (r.status, r.json["status"].as_str()),
            (200, Some(to)),
            "{}",
            r.body
        );
    }
    let d = s.get(&path).await;
    let hist = d.json["history"].as_array().unwrap();
    assert_eq!(hist.len(), 5, "creation plus four transitions");
    assert_eq!(hist[0]["to_status"], "draft");
    assert_eq!(hist[1]["comment"], "written");
    assert_eq!(hist[4]["from_status"], "review");
    assert_eq!(hist[4]["actor"], "architect");
    assert_eq!(d.json["allowed_next"], json!(["in_progress"]));
    // A comment without a status change is refused; so is an unknown status.
    let r = s.put_json(&path, &json!({"comment": "hi"})).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("comment")));
    let r = s.put_json(&path, &json!({"status": "done"})).await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("status")));
    assert!(r.json["error"]
        .as_str()
        .unwrap()
        .contains("expected one of"));
    // A feature needs an existing, active project; 404 for unknown features.
    let r = s
        .post_json("/api/features", &json!({"project_id": 999, "name": "x"}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("project_id"))
    );
    assert_eq!(s.get("/api/features/999").await.status, 404);
    assert_eq!(
        s.put_json("/api/features/999", &json!({"name": "x"}))
            .await
            .status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn feature_filters() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let a = project(&s, "a").await;
    let b = project(&s, "b").await;
    for (p, name) in [(a, "search box"), (a, "login"), (b, "search api")] {
        s.post_json("/api/features", &json!({"project_id": p, "name": name}))
            .await;
    }
    let r = s.get(&format!("/api/features?project_id={a}")).await;
    assert_eq!(r.json.as_array().unwrap().len(), 2);
    let r = s.get("/api/features?q=SEARCH").await;
    assert_eq!(r.json.as_array().unwrap().len(), 2);
    let r = s
        .get(&format!(
            "/api/features?project_id={a}&q=search&status=draft"
        ))
        .await;
    assert_eq!(names(&r.json, "name"), ["search box"]);
    assert!(s
        .get("/api/features?status=review")
        .await
        .json
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn milestone_progress_is_computed_from_features_and_bugs() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let p = project(&s, "p").await;
    let r = s
        .post_json(
            "/api/milestones",
            &json!({"project_id": p, "name": "v1", "target_date": "2027-01-31"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let m = r.json["id"].as_i64().unwrap();
    assert_eq!(
        (r.json["progress"].as_f64(), r.json["status"].as_str()),
        (Some(0.0), Some("planned"))
    );
    let mut features = vec![];
    for i in 0..3 {
        let r = s
            .post_json(
                "/api/features",
                &json!({"project_id": p, "milestone_id": m, "name": format!("f{i}")}),
            )
            .await;
        features.push(r.json["id"].as_i64().unwrap());
    }
    let bug = s
        .post_json(
            "/api/bugs",
            &json!({"project_id": p, "milestone_id": m, "title": "b"}),
        )
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    // Complete one feature, resolve the bug, cancel one feature (leaves the denominator).
    for st in ["in_progress", "review", "completed"] {
        s.put_json(
            &format!("/api/features/{}", features[0]),
            &json!({"status": st}),
        )
        .await;
    }
    s.put_json(&format!("/api/bugs/{bug}"), &json!({"status": "resolved"}))
        .await;
    s.put_json(
        &format!("/api/features/{}", features[1]),
        &json!({"status": "cancelled"}),
    )
    .await;
    let r = s.get(&format!("/api/milestones/{m}")).await;
    // done: 1 feature + 1 bug; total: 2 features (one cancelled) + 1 bug = 3.
    assert_eq!(r.json["progress"].as_f64(), Some(66.7), "{}", r.body);
    assert_eq!(
        (
            r.json["features_total"].as_i64(),
            r.json["bugs_resolved"].as_i64()
        ),
        (Some(2), Some(1))
    );
    // Reopening the bug lowers progress at once: nothing is stored stale.
    s.put_json(&format!("/api/bugs/{bug}"), &json!({"status": "open"}))
        .await;
    assert_eq!(
        s.get(&format!("/api/milestones/{m}")).await.json["progress"].as_f64(),
        Some(33.3)
    );
    // Updates, filters and validation.
    let r = s
        .put_json(
            &format!("/api/milestones/{m}"),
            &json!({"status": "in_progress", "target_date": null}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["target_date"].is_null()),
        (200, true),
        "{}",
        r.body
    );
    let r = s
        .put_json(
            &format!("/api/milestones/{m}"),
            &json!({"target_date": "31/01/2027"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("target_date"))
    );
    assert_eq!(
        s.get(&format!("/api/milestones?project_id={p}"))
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get("/api/milestones?status=completed")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(s.get("/api/milestones/999").await.status, 404);
    // A feature cannot join another project's milestone.
    let q = project(&s, "q").await;
    let r = s
        .post_json(
            "/api/features",
            &json!({"project_id": q, "milestone_id": m, "name": "x"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("milestone_id"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bugs_lifecycle_and_filters() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let p = project(&s, "p").await;
    let r = s
        .post_json(
            "/api/bugs",
            &json!({"project_id": p, "title": "crash on save", "severity": "critical"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.json["status"].as_str(), r.json["severity"].as_str()),
        (Some("open"), Some("critical"))
    );
    let b = r.json["id"].as_i64().unwrap();
    s.post_json("/api/bugs", &json!({"project_id": p, "title": "typo"}))
        .await;
    let r = s
        .put_json(&format!("/api/bugs/{b}"), &json!({"status": "resolved"}))
        .await;
    assert!(r.json["resolved_at"].is_string(), "{}", r.body);
    let r = s
        .put_json(&format!("/api/bugs/{b}"), &json!({"status": "in_progress"}))
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (409, Some("invalid_transition"))
    );
    let r = s
        .put_json(&format!("/api/bugs/{b}"), &json!({"status": "open"}))
        .await;
    assert!(r.json["resolved_at"].is_null());
    assert_eq!(
        s.get("/api/bugs?severity=critical")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get("/api/bugs?severity=medium")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get("/api/bugs?q=CRASH&status=open")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get(&format!("/api/bugs?project_id={p}"))
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let order = s.get("/api/bugs").await;
    assert_eq!(
        names(&order.json, "title")[0],
        "crash on save",
        "most severe first"
    );
    let r = s
        .post_json(
            "/api/bugs",
            &json!({"project_id": p, "title": "x", "severity": "urgent"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("severity"))
    );
    assert_eq!(s.get("/api/bugs/999").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn devops_tasks_crud() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let r = s
        .post_json(
            "/api/devops-tasks",
            &json!({"title": "rotate backups", "category": "backup", "schedule": "weekly"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json["id"].as_i64().unwrap();
    assert_eq!(r.json["status"], "pending");
    let r = s
        .put_json(
            &format!("/api/devops-tasks/{id}"),
            &json!({"status": "completed", "priority": 3}),
        )
        .await;
    assert_eq!(
        (r.json["status"].as_str(), r.json["priority"].as_i64()),
        (Some("completed"), Some(3))
    );
    let r = s
        .put_json(&format!("/api/devops-tasks/{id}"), &json!({"priority": 11}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("priority"))
    );
    assert_eq!(
        s.get("/api/devops-tasks?category=backup")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get(&format!("/api/devops-tasks/{id}")).await.json["schedule"],
        "weekly"
    );
    assert_eq!(s.get("/api/devops-tasks/999").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_count_by_status() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let p = project(&s, "p").await;
    let gone = project(&s, "gone").await;
    s.delete(&format!("/api/projects/{gone}")).await;
    s.post_json("/api/features", &json!({"project_id": p, "name": "f"}))
        .await;
    s.post_json("/api/bugs", &json!({"project_id": p, "title": "b"}))
        .await;
    let r = s.get("/api/stats").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json["projects"],
        json!({"active": 1, "archived": 1, "total": 2})
    );
    assert_eq!(r.json["features"], json!({"draft": 1, "total": 1}));
    assert_eq!(r.json["bugs"], json!({"open": 1, "total": 1}));
    assert_eq!(r.json["devops_tasks"], json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_is_in_the_activity_log() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let p = project(&s, "p").await;
    let f = s
        .post_json("/api/features", &json!({"project_id": p, "name": "f"}))
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    s.put_json(&format!("/api/features/{f}"), &json!({"status": "spec"}))
        .await;
    let tok = t.token("admin").await;
    tok.post_json("/api/bugs", &json!({"project_id": p, "title": "b"}))
        .await;
    let log = s.get("/api/activity").await;
    let entries = log.json.as_array().unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
                e["entity_type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(summary.contains(&("architect".into(), "create".into(), "project".into())));
    assert!(summary.contains(&("architect".into(), "update".into(), "feature".into())));
    assert!(summary
        .iter()
        .any(|(a, act, e)| a.starts_with("architect (token") && act == "create" && e == "bug"));
    let only = s.get("/api/activity?entity=feature").await;
    assert!(only
        .json
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["entity_type"] == "feature"));
    let future = s.get("/api/activity?since=2999-01-01T00:00:00Z").await;
    assert!(future.json.as_array().unwrap().is_empty());
    let bad = s.get("/api/activity?since=yesterday").await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (422, Some("since"))
    );
    // Clients can log their own activity.
    let r = s.post_json("/api/activity", &json!({"action": "deploy", "entity_type": "project", "entity_id": p, "details": {"env": "staging"}})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mine = s.get("/api/activity?actor=architect&entity=project").await;
    assert_eq!(mine.json[0]["details"]["env"], "staging");
    let r = s
        .post_json(
            "/api/activity",
            &json!({"action": "x", "entity_type": "y", "details": [1]}),
        )
        .await;
    assert_eq!((r.status, r.json["field"].as_str()), (422, Some("details")));
}
