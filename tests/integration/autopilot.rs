//! Autopilot runs over HTTP without an agent: the seed's enable call, `observe` planning from a
//! real git repository and changing nothing else, a run whose agent cannot start stopping
//! `blocked` and resuming without repeating a step, the kill switches, health, and bad input.
//! The runs with the real Claude Code are in autopilot_agents.rs.

use crate::support::git;
use crate::support::{until, Session, TestServer};
use serde_json::{json, Value};
use std::path::Path;

fn repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.email", "a@example.com"]);
    git(dir, &["config", "user.name", "A"]);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "// FIXME: off by one\npub fn f() {}\n",
    )
    .unwrap();
    std::fs::write(dir.join("TODO.md"), "# Todo\n\n- [ ] more tests\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "initial"]);
}

async fn project(s: &Session, name: &str, source: Option<&Path>) -> i64 {
    let r = s
        .post_json(
            "/api/projects",
            &json!({"name": name, "source_path": source.map(|p| p.display().to_string())}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().unwrap()
}

async fn run_in(s: &Session, id: i64, state: &str) -> Value {
    until(&format!("run {id} is {state}"), || async {
        let r = s.get(&format!("/api/autopilot/runs/{id}")).await;
        (r.json["state"] == state).then_some(r.json)
    })
    .await
}

fn steps(run: &Value) -> Vec<String> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn observe_plans_into_the_review_queue_and_changes_nothing_else() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let pid = project(&s, "app", Some(dir.path())).await;
    let head = git(dir.path(), &["rev-parse", "HEAD"]);

    // The seed's example, as written (with mode observe).
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "observe", "goal": "Improve test coverage to 80%", "constraints": {"no_breaking_changes": true}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (
            r.json["mode"].as_str(),
            r.json["constraints"]["no_breaking_changes"].as_bool()
        ),
        (Some("observe"), Some(true))
    );
    let run = r.json["run"]["id"].as_i64().expect("a run started");
    let done = run_in(&s, run, "done").await;
    assert_eq!(
        steps(&done),
        vec!["planning:scan", "planning:suggest", "planning:done"],
        "{done}"
    );
    let states: Vec<&str> = done["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["planning", "done"]);
    assert!(
        done["reason"].as_str().unwrap().contains("review queue"),
        "{done}"
    );
    assert!(done["proposals"].as_i64().unwrap() >= 2, "{done}");
    // The proposals wait in the queue.
    let q = s.get("/api/autopilot/queue").await;
    assert!(q.json["total"].as_i64().unwrap() >= 2, "{}", q.body);
    // Nothing else: no task, no prompt, no branch, no worktree, no change in the repository.
    assert_eq!(s.get("/api/tasks").await.json, json!([]));
    assert_eq!(
        s.get("/api/assigner/prompts")
            .await
            .json
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(git(dir.path(), &["rev-parse", "HEAD"]), head);
    assert_eq!(
        git(dir.path(), &["branch", "--format=%(refname:short)"]).trim(),
        "main"
    );
    assert_eq!(git(dir.path(), &["worktree", "list"]).lines().count(), 1);
    assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");
    // In the activity log with the run id; listed; healthy.
    let log = s.get("/api/activity?entity=autopilot_run").await;
    assert!(
        log.body.contains(&format!("\"run_id\":{run}")),
        "{}",
        log.body
    );
    let runs = s
        .get(&format!("/api/autopilot/runs?project_id={pid}"))
        .await;
    assert_eq!(runs.json[0]["id"], run);
    let h = s.get("/api/autopilot/health").await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.json["loop_alive"], true, "{}", h.body);
    assert_eq!(h.json["runs_by_state"]["done"], 1);
    assert_eq!(h.json["paused_globally"], false);
    // The dashboard: the run listed with its project's mode; its page shows the timeline.
    let page = s.get("/autopilot").await;
    assert!(
        page.body
            .contains(&format!("href=\"/autopilot/runs/{run}\"")),
        "{}",
        page.body
    );
    let page = s.get(&format!("/autopilot/runs/{run}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Timeline") && page.body.contains("planning:suggest"));
    assert!(
        !page.body.contains("Cancel the run"),
        "no control for a finished run"
    );
    // A done run cannot be resumed.
    let r = s
        .post_json(&format!("/api/autopilot/runs/{run}/resume"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_mode_blocks_after_planning_and_resumes_without_repeating_a_step() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let pid = project(&s, "app", Some(dir.path())).await;
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "fix_forward", "goal": "fix it",
                    "agent": {"agent": "claude", "program": "/nonexistent/claude"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run = r.json["run"]["id"].as_i64().unwrap();
    let blocked = run_in(&s, run, "blocked").await;
    assert!(
        blocked["reason"]
            .as_str()
            .unwrap()
            .contains("cannot start its agent"),
        "{blocked}"
    );
    assert_eq!(blocked["items"][0]["title"], "fix it", "{blocked}");
    let scans_before =
        s.get("/api/planning/status").await.json["projects"][0]["last_scan"]["id"].clone();
    // Enabling again does not start a second run while one is active.
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"goal": "fix it now"}),
        )
        .await;
    assert_eq!(r.json["run"]["id"], run, "{}", r.body);
    // Resume: back to implementing; planning is not repeated (no new scan), the agent is
    // tried again and blocks again.
    let r = s
        .post_json(
            &format!("/api/autopilot/runs/{run}/resume"),
            &json!({"reason": "try again"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let again = until("blocked a second time", || async {
        let r = s.get(&format!("/api/autopilot/runs/{run}")).await;
        (r.json["state"] == "blocked" && r.json["transitions"].as_array().unwrap().len() == 5)
            .then_some(r.json)
    })
    .await;
    assert_eq!(
        steps(&again),
        vec![
            "planning:scan",
            "planning:suggest",
            "planning:items",
            "item:1:session"
        ],
        "no step twice: {again}"
    );
    assert_eq!(
        s.get("/api/planning/status").await.json["projects"][0]["last_scan"]["id"],
        scans_before
    );
    assert_eq!(again["transitions"][3]["reason"], "try again");
    // Cancel from the run's page; then it is final.
    let page = s.get(&format!("/autopilot/runs/{run}")).await;
    assert!(
        page.body.contains("Resume") && page.body.contains("Cancel the run"),
        "{}",
        page.body
    );
    let r = s
        .post_form(&format!("/autopilot/runs/{run}/cancel"), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.headers["location"].to_str().unwrap().contains("notice="));
    assert_eq!(
        s.get(&format!("/api/autopilot/runs/{run}")).await.json["state"],
        "cancelled"
    );
    let r = s
        .post_json(&format!("/api/autopilot/runs/{run}/start"), &json!({}))
        .await;
    assert_eq!(r.status, 409);
    // Turning the autopilot off cancels an active run.
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "observe"}),
        )
        .await;
    let second = r.json["run"]["id"].as_i64().unwrap();
    assert_ne!(second, run);
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "off"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json["run"].is_null());
    let st = s.get(&format!("/api/autopilot/runs/{second}")).await.json["state"].clone();
    assert!(st == "cancelled" || st == "done", "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kill_switches_hold_new_and_working_runs() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let pid = project(&s, "app", Some(dir.path())).await;
    let r = s
        .post_json("/api/autopilot/pause", &json!({"paused": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "observe"}),
        )
        .await;
    let run = r.json["run"]["id"].as_i64().unwrap();
    assert_eq!(
        r.json["run"]["state"], "paused",
        "a new run waits under the kill switch: {}",
        r.body
    );
    let r = s
        .post_json(&format!("/api/autopilot/runs/{run}/start"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "not while paused globally: {}", r.body);
    assert_eq!(
        s.get("/api/autopilot/health").await.json["paused_globally"],
        true
    );
    let r = s
        .post_json("/api/autopilot/pause", &json!({"paused": false}))
        .await;
    assert_eq!(r.json["runs"], 1, "{}", r.body);
    run_in(&s, run, "done").await;
    // The project's own switch.
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "fix_forward", "paused": true}),
        )
        .await;
    let run2 = r.json["run"]["id"].as_i64().unwrap();
    assert_eq!(r.json["run"]["state"], "paused", "{}", r.body);
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"paused": false}),
        )
        .await;
    assert_eq!(r.json["run"]["state"], "planning", "{}", r.body);
    run_in(&s, run2, "blocked").await;
    let log = s.get("/api/activity?entity=autopilot").await;
    assert!(
        log.body.contains("\"pause\"") && log.body.contains("\"resume\""),
        "{}",
        log.body
    );
    // Pausing a run by status.
    let r = s
        .post_json(
            &format!("/api/autopilot/runs/{run2}/status"),
            &json!({"status": "paused"}),
        )
        .await;
    assert_eq!(r.status, 409, "a blocked run is not working: {}", r.body);
    let r = s
        .post_json(
            &format!("/api/autopilot/runs/{run2}/status"),
            &json!({"status": "done"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("status")),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_autopilot_input_is_4xx_and_changes_nothing() {
    let t = TestServer::start().await;
    let s = t.admin().await;
    let nosrc = project(&s, "nosrc", None).await;
    let dir = tempfile::tempdir().unwrap();
    repo(dir.path());
    let pid = project(&s, "app", Some(dir.path())).await;
    let cases = [
        (pid, json!({"mode": "yolo"}), 422),
        (nosrc, json!({"mode": "observe"}), 422),
        (
            pid,
            json!({"mode": "observe", "constraints": {"budget_usd": -1}}),
            422,
        ),
        (
            pid,
            json!({"mode": "observe", "constraints": {"max_parallel_agents": 0}}),
            422,
        ),
        (
            pid,
            json!({"mode": "observe", "constraints": {"allowed_paths": ["../etc"]}}),
            422,
        ),
        (
            pid,
            json!({"mode": "observe", "constraints": {"no_breaking": true}}),
            422,
        ),
        (pid, json!({"mode": "observe", "extra": 1}), 422),
        (9999, json!({"mode": "observe"}), 404),
        (
            pid,
            json!({"mode": "fix_forward", "agent": {"agent": "shell"}}),
            422,
        ),
        (
            pid,
            json!({"mode": "fix_forward", "agent": {"agent": "claude", "model": "x"}}),
            422,
        ),
        (
            pid,
            json!({"mode": "fix_forward", "agent": {"no_gateway": true},
                   "constraints": {"budget_usd": 1}}),
            422,
        ),
        (
            pid,
            json!({"mode": "observe", "constraints": {"required_checks": ["lint"]}}),
            422,
        ),
        (
            pid,
            json!({"mode": "observe", "constraints": {"monitor_minutes": -1}}),
            422,
        ),
        // A rollback threshold for a project without a rollback command; a threshold of 0.
        (
            pid,
            json!({"mode": "auto_staging", "constraints": {"rollback_error_groups": 1}}),
            422,
        ),
        (
            pid,
            json!({"mode": "auto_staging", "constraints": {"rollback_error_groups": 0}}),
            422,
        ),
    ];
    for (id, body, want) in cases {
        let r = s
            .post_json(&format!("/api/projects/{id}/autopilot"), &body)
            .await;
        assert_eq!(r.status, want, "{body}: {}", r.body);
        assert!(r.json["error"].is_string(), "{}", r.body);
    }
    assert_eq!(
        s.get("/api/autopilot/runs").await.json,
        json!([]),
        "nothing half-written"
    );
    assert_eq!(
        s.get("/api/autopilot/health").await.json["projects"],
        json!([])
    );
    for path in ["/api/autopilot/runs/77", "/api/autopilot/runs/77/resume"] {
        let r = if path.ends_with("resume") {
            s.post_json(path, &json!({})).await
        } else {
            s.get(path).await
        };
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    // Gates: unknown ones, a rejection without a reason, a state filter it does not serve.
    let r = s
        .post_json("/api/autopilot/gates/5/approve", &json!({}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = s
        .post_json("/api/autopilot/gates/5/reject", &json!({}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json["field"], "reason", "{}", r.body);
    assert_eq!(s.get("/api/autopilot/gates?state=all").await.status, 422);
    assert_eq!(s.get("/api/autopilot/gates").await.json, json!([]));
    assert_eq!(s.get("/api/autopilot/items/3/diff").await.status, 404);
    // A member may run the autopilot but not give its agent a program of their choosing.
    let member = t.user("mo", "member").await;
    let r = member
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "observe", "agent": {"agent": "claude", "env": {"X": "1"}}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(s.get("/api/autopilot/runs").await.json, json!([]));
    let viewer = t.user("vi", "viewer").await;
    assert_eq!(viewer.get("/api/autopilot/runs").await.status, 200);
    assert_eq!(
        viewer
            .post_json(
                &format!("/api/projects/{pid}/autopilot"),
                &json!({"mode": "observe"})
            )
            .await
            .status,
        403
    );
}
