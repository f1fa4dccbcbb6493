//! Autopilot runs end to end with the real Claude Code (pinned, in tmux, through architect's
//! gateway to tests/fixtures/mock_llm.py scripted to fix one file) and real `architect worker`
//! processes: a small git repository whose test fails, the goal "make the tests pass".
//! `fix_forward` plans, the agent edits the file in its own worktree (approved by the run's
//! pattern), the test task passes, a change request appears, approving merges it, the run is
//! `done` and its cost is the ledger's sum. `auto_prod` deploys to staging by itself and waits
//! at the production gate until a person approves it.

use crate::agents::{gateway_server, session_env};
use crate::support::git;
use crate::support::serve_proc::ServeProc;
use crate::support::RealCli;
use crate::support::Session;
use crate::tasks::{token, WorkerProc};
use serde_json::{json, Value};
use std::path::Path;

const BROKEN: &str = "def add(a, b):\n    return a - b\n";
const FIXED: &str = "def add(a, b):\n    return a + b\n";
const TEST: &str = "python3 -c 'import calc; assert calc.add(2, 2) == 4, \"add is wrong\"'";

/// A repository whose one test fails.
fn failing_repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["config", "user.email", "a@example.com"]);
    git(dir, &["config", "user.name", "A"]);
    std::fs::write(dir.join("calc.py"), BROKEN).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "initial"]);
}

/// Claude Code's state file in `home`, trusting each of `dirs` (the worktrees the runs will
/// make: `<data-dir>/worktrees/ap<run>-<item>`).
fn trust(home: &Path, dirs: &[String]) {
    let projects: serde_json::Map<String, Value> = dirs
        .iter()
        .map(|d| {
            (
                d.clone(),
                json!({"hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true,
                       "allowedTools": []}),
            )
        })
        .collect();
    std::fs::write(
        home.join(".claude.json"),
        json!({"hasCompletedOnboarding": true, "lastOnboardingVersion": "2.1.332",
               "lastReleaseNotesSeen": "2.1.332", "hasSeenAutoDefaultNotice": true,
               "hasSeenAutoDefaultNudge": true, "theme": "dark", "autoUpdates": false,
               "customApiKeyResponses": {"approved": ["sk-test"], "rejected": []},
               "projects": projects})
        .to_string(),
    )
    .unwrap();
}

async fn project(s: &Session, name: &str, dir: &Path, deploy: Option<&str>) -> i64 {
    let r = s
        .post_json(
            "/api/projects",
            &json!({"name": name, "source_path": dir.display().to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pid = r.json["id"].as_i64().unwrap();
    let r = s
        .put_json(
            &format!("/api/projects/{pid}/commands"),
            &json!({"test_command": TEST, "deploy_command": deploy}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    pid
}

async fn run_where(s: &Session, id: i64, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let r = s.get(&format!("/api/autopilot/runs/{id}")).await;
        if ok(&r.json) {
            return r.json;
        }
        assert!(
            start.elapsed() < crate::support::DEADLINE,
            "timed out waiting for {what}; the run: {}",
            r.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fix_forward_with_real_claude_code_proposes_a_tested_change_and_approving_merges_it() {
    let script_dir = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("script.json");
    std::fs::write(
        &script,
        json!({"when": "make the tests pass", "read": "calc.py",
               "write": {"path": "calc.py", "content": FIXED},
               "done": "Fixed add in calc.py: it adds now."})
        .to_string(),
    )
    .unwrap();
    let script_s = script.display().to_string();
    let Some(cli) = RealCli::start_with("claude", &[("MOCK_SCRIPT", &script_s)]).await else {
        return;
    };
    let t = gateway_server(&cli.tmux, &cli.mock).await;
    let admin = t.token("admin").await;
    let worker_token = token(&t.token("worker").await);
    let _worker = WorkerProc::start(&t.url, &worker_token, &["--allow-exec"]);
    let worktrees = t.data_dir.join("worktrees");
    let worktrees = std::path::absolute(&worktrees).unwrap();
    trust(
        &cli.home,
        &[
            worktrees.join("ap1-1").display().to_string(),
            worktrees.join("ap2-1").display().to_string(),
        ],
    );
    let src = tempfile::tempdir().unwrap();
    let repo = src.path().join("app");
    failing_repo(&repo);
    let pid = project(&admin, "app", &repo, None).await;
    let agent = json!({"agent": "claude", "program": cli.bin.display().to_string(),
                       "env": cli.session_env()});

    // A member may not give the agent a program of their choosing (that runs code).
    let member = t.user("mia", "member").await;
    let r = member
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "fix_forward", "goal": "make the tests pass", "agent": agent}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    let r = admin
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "fix_forward", "goal": "make the tests pass", "agent": agent,
                    "constraints": {"budget_usd": 5.0, "required_checks": ["tests"]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run = r.json["run"]["id"].as_i64().unwrap();
    assert_eq!(run, 1, "the worktree trusted above is ap1-1");

    // Planned, implemented, tested: blocked on its change request.
    let blocked = run_where(&admin, run, "the change request", |r| {
        r["state"] == "blocked" && r["items"][0]["state"] == "review"
    })
    .await;
    let item = &blocked["items"][0];
    assert_eq!(item["attempts"], 1, "{blocked}");
    assert_eq!(item["branch"], "autopilot/run-1-1");
    assert!(
        item["summary"].as_str().unwrap().contains("Fixed add"),
        "{item}"
    );
    assert!(
        item["diff_stat"].as_str().unwrap().contains("calc.py"),
        "{item}"
    );
    let wt = item["worktree"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(Path::new(wt).join("calc.py")).unwrap(),
        FIXED
    );
    // The project's own checkout is untouched until a person approves.
    assert_eq!(
        std::fs::read_to_string(repo.join("calc.py")).unwrap(),
        BROKEN
    );
    // The edit was approved by the run's pattern, in the hook, in that session only.
    let i = admin.get("/api/claude/interactions?limit=100").await;
    let write = i.json["items"]
        .as_array()
        .or(i.json.as_array())
        .unwrap()
        .iter()
        .find(|x| x["tool"] == "Write")
        .cloned()
        .unwrap_or_else(|| panic!("a Write interaction: {}", i.body));
    assert_eq!(write["status"], "approved", "{write}");
    assert!(
        write["decision_by"]
            .as_str()
            .unwrap()
            .starts_with("pattern:"),
        "{write}"
    );
    // The test task ran in the worktree and passed.
    let task = admin.get(&format!("/api/tasks/{}", item["task_id"])).await;
    assert_eq!(task.json["status"], "completed", "{}", task.body);
    assert_eq!(task.json["payload"]["worktree"], wt);
    let gate = &blocked["gates"][0];
    assert_eq!(
        (gate["kind"].as_str(), gate["state"].as_str()),
        (Some("change_request"), Some("pending"))
    );
    let gid = gate["id"].as_i64().unwrap();
    let diff = admin
        .get(&format!("/api/autopilot/items/{}/diff", item["id"]))
        .await;
    assert!(
        diff.json["diff"]
            .as_str()
            .unwrap()
            .contains("+    return a + b"),
        "{}",
        diff.body
    );
    // The same diff as a page, each line classed for its colour.
    let page = t
        .admin()
        .await
        .get(&format!("/autopilot/items/{}/diff", item["id"]))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(r#"<span class="add">+    return a + b</span>"#)
            && page
                .body
                .contains(r#"<span class="del">-    return a - b</span>"#),
        "{}",
        page.body
    );
    // The review queue shows it.
    let q = admin.get("/api/autopilot/queue").await;
    assert!(
        q.body.contains("change_request") || q.body.contains("Change request"),
        "{}",
        q.body
    );

    // The agent's own token cannot approve its own gate.
    let agent_token = session_env(&cli.tmux, "ap1-1", "ARCHITECT_TOKEN");
    assert!(!agent_token.is_empty());
    let as_agent = Session::new(&t.url, Some(agent_token));
    let r = as_agent
        .post_json(&format!("/api/autopilot/gates/{gid}/approve"), &json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Cost: the ledger's sum over the run's session.
    let with_cost = run_where(&admin, run, "the run's cost", |r| {
        r["llm_requests"].as_i64().unwrap_or(0) >= 3
    })
    .await;
    let summary = admin.get("/api/llm-metrics/summary").await;
    assert_eq!(
        with_cost["llm_requests"], summary.json["total_requests"],
        "only the run's session used the gateway: {}",
        summary.body
    );
    let ledger_cost = summary.json["total_cost"].as_f64().unwrap_or(-1.0);
    assert!(
        (with_cost["cost_usd"].as_f64().unwrap() - ledger_cost).abs() < 1e-9,
        "run {} vs ledger {ledger_cost}",
        with_cost["cost_usd"]
    );

    // Approving on the run's page (headless Chromium) merges the branch into the project's
    // checkout; the run is done.
    if crate::browser::browser_available() {
        let tmp = tempfile::tempdir().unwrap();
        let driver = crate::browser::Driver::start(tmp.path()).await;
        let b = crate::browser::Browser::open(&driver, &tmp.path().join("profile")).await;
        crate::browser::log_in(&b, &t).await;
        b.resize(1400, 1500).await;
        b.goto(&format!("{}/autopilot/runs/{run}", t.url)).await;
        b.wait_text(&format!("#gate-{gid}"), "change request").await;
        b.screenshot("autopilot-run-change-request").await;
        b.goto(&format!("{}/autopilot/items/{}/diff", t.url, item["id"]))
            .await;
        b.wait_text("pre.diff", "return a + b").await;
        b.screenshot("autopilot-item-diff").await;
        b.goto(&format!("{}/autopilot/runs/{run}", t.url)).await;
        b.wait_text(&format!("#gate-{gid}"), "change request").await;
        b.click(&format!("#gate-{gid} button.primary")).await;
        b.wait_text(".flash", &format!("Gate #{gid} approved"))
            .await;
        b.screenshot("autopilot-run-merged").await;
        b.quit().await;
    } else {
        let r = admin
            .post_json(
                &format!("/api/autopilot/gates/{gid}/approve"),
                &json!({"reason": "looks right"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let decided = admin.get(&format!("/api/autopilot/runs/{run}")).await;
    assert_eq!(
        decided.json["gates"][0]["state"], "approved",
        "{}",
        decided.body
    );
    let r = admin
        .post_json(&format!("/api/autopilot/gates/{gid}/approve"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "approving twice: {}", r.body);
    let done = run_where(&admin, run, "done", |r| r["state"] == "done").await;
    assert_eq!(done["items"][0]["state"], "merged");
    assert_eq!(
        std::fs::read_to_string(repo.join("calc.py")).unwrap(),
        FIXED
    );
    assert!(git(&repo, &["log", "--oneline", "-1"]).contains("Merge autopilot/run-1-1"));
    assert!(
        !Path::new(wt).exists(),
        "the merged item's worktree is removed"
    );
    let r = admin
        .post_json(&format!("/api/autopilot/runs/{run}/resume"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "resuming a done run: {}", r.body);

    // auto_prod on another repository: staging by itself, production only after the gate.
    let repo2 = src.path().join("svc");
    failing_repo(&repo2);
    let deploys = src.path().join("deploys.log");
    let deploy = format!("echo \"$DEPLOY_TARGET\" >> {}", deploys.display());
    let pid2 = project(&admin, "svc", &repo2, Some(&deploy)).await;
    let rollback = format!("echo \"rollback $DEPLOY_TARGET\" >> {}", deploys.display());
    let r = admin
        .put_json(
            &format!("/api/projects/{pid2}/commands"),
            &json!({"test_command": TEST, "deploy_command": deploy, "rollback_command": rollback}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin
        .post_json(
            &format!("/api/projects/{pid2}/autopilot"),
            &json!({"mode": "auto_prod", "goal": "make the tests pass", "agent": agent,
                    "constraints": {"monitor_minutes": 5, "rollback_error_groups": 1}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run2 = r.json["run"]["id"].as_i64().unwrap();
    assert_eq!(run2, 2);
    let review = run_where(&admin, run2, "svc's change request", |r| {
        r["state"] == "blocked" && r["items"][0]["state"] == "review"
    })
    .await;
    let cr = review["gates"][0]["id"].as_i64().unwrap();
    let r = admin
        .post_json(&format!("/api/autopilot/gates/{cr}/approve"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Deployed to staging, then its errors are watched for 5 minutes (the test's clock).
    run_where(&admin, run2, "watching staging", |r| {
        r["state"] == "monitoring"
    })
    .await;
    assert_eq!(std::fs::read_to_string(&deploys).unwrap(), "staging\n");
    t.clock.advance(6 * 60);
    let at_gate = run_where(&admin, run2, "the production gate", |r| {
        r["state"] == "blocked"
            && r["gates"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["kind"] == "deploy_production")
    })
    .await;
    assert_eq!(std::fs::read_to_string(&deploys).unwrap(), "staging\n");
    // Resuming by hand does not get past the gate.
    let r = admin
        .post_json(&format!("/api/autopilot/runs/{run2}/resume"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    run_where(&admin, run2, "blocked again at the gate", |r| {
        r["state"] == "blocked"
            && r["transitions"].as_array().unwrap().len()
                > at_gate["transitions"].as_array().unwrap().len()
    })
    .await;
    assert_eq!(std::fs::read_to_string(&deploys).unwrap(), "staging\n");
    let prod = at_gate["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "deploy_production")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = admin
        .post_json(&format!("/api/autopilot/gates/{prod}/approve"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    run_where(&admin, run2, "watching production", |r| {
        r["state"] == "monitoring"
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&deploys).unwrap(),
        "staging\nproduction\n"
    );
    // A new error group of the project after the deploy crosses the run's threshold (1): the
    // rollback command runs for production, then the group is investigated into a bug and a
    // follow-up fix_forward run.
    let r = admin
        .post_json(
            "/api/errors",
            &json!({"node_id": "web1", "error_type": "ZeroDivisionError",
                    "message": "division by zero in add", "source": "svc"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let group = r.json["group_id"].as_i64().unwrap();
    let done = run_where(&admin, run2, "investigated", |r| r["state"] == "done").await;
    let step = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "investigate")
        .unwrap_or_else(|| panic!("an investigate step: {done}"))
        .clone();
    assert_eq!(step["result"]["group"], group, "{step}");
    assert_eq!(
        std::fs::read_to_string(&deploys).unwrap(),
        "staging\nproduction\nrollback production\n"
    );
    assert!(
        done["reason"]
            .as_str()
            .unwrap_or("")
            .contains("rolled production back")
            || done["transitions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("rolled production back")),
        "{done}"
    );
    let bug = step["result"]["bug_id"].as_i64().unwrap();
    let b = admin.get(&format!("/api/bugs/{bug}")).await;
    assert_eq!(b.status, 200, "{}", b.body);
    let next = step["result"]["follow_up_run"].as_i64().unwrap();
    // Hold the follow-up run: this test ends here.
    let r = admin
        .post_json(
            &format!("/api/projects/{pid2}/autopilot"),
            &json!({"paused": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let follow = admin.get(&format!("/api/autopilot/runs/{next}")).await;
    assert_eq!(follow.json["mode"], "fix_forward", "{}", follow.body);
    assert!(
        follow.json["goal"]
            .as_str()
            .unwrap()
            .contains(&format!("error group #{group}")),
        "{}",
        follow.body
    );
    t.stop().await;
}

/// The test fails after the agent's first edit: its output goes back to the agent in a second
/// prompt, which fixes it. The real `serve` is killed with SIGKILL while the agent works on the
/// first prompt and started again: the run goes on from where it was, and no prompt is typed
/// twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_test_goes_back_to_the_agent_and_a_restart_mid_implementing_repeats_nothing() {
    let script_dir = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("script.json");
    std::fs::write(
        &script,
        json!({"when": "make the tests pass", "read": "calc.py", "delay": 4,
               "first_write": {"path": "calc.py", "content": "def add(a, b):\n    return a + b + 1\n"},
               "write": {"path": "calc.py", "content": FIXED},
               "done": "Changed add in calc.py."})
        .to_string(),
    )
    .unwrap();
    let script_s = script.display().to_string();
    let Some(cli) = RealCli::start_with("claude", &[("MOCK_SCRIPT", &script_s)]).await else {
        return;
    };
    // The real binary, so that it can be killed the hard way below.
    let tmp = tempfile::tempdir().unwrap();
    let mut serve = ServeProc::start(
        &tmp.path().join("data"),
        &[
            ("ARCHITECT_TMUX_SOCKET", cli.tmux.socket.clone()),
            ("LLM_FAILOVER_CHAIN", "claude".into()),
            ("LLM_DEFAULT_PROVIDER", "claude".into()),
            ("ANTHROPIC_API_KEY", "sk-gateway-provider-key".into()),
            ("LLM_ANTHROPIC_BASE_URL", cli.mock_url()),
        ],
    )
    .await;
    let admin = serve.token("admin").await;
    let worker_token = token(&serve.token("worker").await);
    let _worker = WorkerProc::start(&serve.url, &worker_token, &["--allow-exec"]);
    let worktrees = serve.data_dir.join("worktrees");
    trust(&cli.home, &[worktrees.join("ap1-1").display().to_string()]);
    let src = tempfile::tempdir().unwrap();
    let repo = src.path().join("app");
    failing_repo(&repo);
    let pid = project(&admin, "app", &repo, None).await;
    let r = admin
        .post_json(
            &format!("/api/projects/{pid}/autopilot"),
            &json!({"mode": "fix_forward", "goal": "make the tests pass",
                    "agent": {"agent": "claude", "program": cli.bin.display().to_string(),
                              "env": cli.session_env()}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run = r.json["run"]["id"].as_i64().unwrap();

    // The first prompt is typed and the agent is at work (the mock holds its answer 4 s).
    let working = run_where(&admin, run, "the first prompt", |r| {
        r["items"][0]["prompt_id"].is_i64()
    })
    .await;
    let first = working["items"][0]["prompt_id"].as_i64().unwrap();
    crate::support::until("the first prompt typed", || async {
        let p = admin.get(&format!("/api/assigner/prompts/{first}")).await;
        (p.json["status"] == "in_progress").then_some(())
    })
    .await;
    // kill -9 mid-implementing: no shutdown, no flush; the same binary starts again on the
    // same port and data (the agent's hooks, the worker and this test reconnect to it).
    serve.kill9().await;
    serve.restart().await;

    let review = run_where(&admin, run, "the change request after a retry", |r| {
        r["items"][0]["state"] == "review"
    })
    .await;
    let item = &review["items"][0];
    assert_eq!(item["attempts"], 2, "{review}");
    assert_eq!(
        std::fs::read_to_string(Path::new(item["worktree"].as_str().unwrap()).join("calc.py"))
            .unwrap(),
        FIXED
    );
    // Two prompts for the item, each typed once; the second carries the failing output.
    let prompts = admin.get("/api/assigner/prompts?limit=100").await;
    let mine: Vec<&Value> = prompts.json["prompts"]
        .as_array()
        .or(prompts.json.as_array())
        .unwrap()
        .iter()
        .filter(|p| p["source_kind"] == "autopilot_item")
        .collect();
    assert_eq!(mine.len(), 2, "{}", prompts.body);
    for p in &mine {
        assert_eq!(p["status"], "completed", "{p}");
        assert_eq!(p["enter_presses"], 1, "typed once: {p}");
    }
    let retry = mine.iter().find(|p| p["id"] != first).unwrap();
    assert!(
        retry["content"].as_str().unwrap().contains("add is wrong"),
        "the failing output went back to the agent: {retry}"
    );
    let steps: Vec<String> = review["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_string())
        .collect();
    for key in [
        "item:1:prompt:1",
        "item:1:test:1",
        "item:1:test-failed:1",
        "item:1:prompt:2",
        "item:1:test:2",
        "item:1:proposed",
    ] {
        assert_eq!(
            steps.iter().filter(|k| *k == key).count(),
            1,
            "{key} once: {steps:?}"
        );
    }
    assert!(
        !serve.log().contains("panicked"),
        "serve's log: {}",
        serve.log()
    );
}
