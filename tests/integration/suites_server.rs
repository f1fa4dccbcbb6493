//! Test suites on the server (issue 19 items 4 and 5): suites uploaded or read from a
//! project's `test_suites/` folder, run by a real `architect worker` process as `test_suite`
//! tasks, their runs and per-case results kept as history (GET endpoints, the Testing panel),
//! a project's `test_command = "suite:NAME"`, vault references read with the worker's own
//! rights and never stored, and the `tmux` step on a private tmux server.

use crate::support::{until, PrivateTmux, Session, TestServer};
use crate::tasks::{final_task, WorkerProc};
use serde_json::{json, Value};

async fn project(s: &Session, name: &str, source: Option<&std::path::Path>) -> i64 {
    let mut body = json!({"name": name});
    if let Some(p) = source {
        body["source_path"] = json!(p.display().to_string());
    }
    let r = s.post_json("/api/projects", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().unwrap()
}

async fn upload(s: &Session, pid: i64, content: &str) -> Value {
    let r = s
        .post_json(
            &format!("/api/projects/{pid}/test-suites"),
            &json!({"content": content}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json
}

/// A suite against the server itself: one case passes, one fails on a named assertion, one
/// reads a variable given at run time.
fn api_suite(base: &str) -> String {
    format!(
        "name: api smoke
variables:
  base: {base}
cases:
  - name: health answers
    tags: [smoke]
    steps:
      - http: {{url: '{{{{base}}}}/health'}}
        capture:
          st: {{jsonpath: $.status}}
        assert:
          - {{that: status, equals: 200}}
          - {{that: var st, exists: true}}
  - name: a missing page is 200
    steps:
      - name: fetch missing
        http: {{url: '{{{{base}}}}/api/no-such-thing'}}
        assert:
          - {{that: status, equals: 200}}
  - name: run-time variable
    steps:
      - http: {{url: '{{{{base}}}}/health', headers: {{x-probe: '{{{{probe}}}}'}}}}
        assert:
          - {{that: status, equals: 200}}
"
    )
}

/// The run of `suite_id` once it is no longer queued.
async fn finished_run(s: &Session, suite_id: i64) -> Value {
    until(&format!("a finished run of suite {suite_id}"), || async {
        let r = s.get(&format!("/api/test-suites/{suite_id}/runs")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json
            .as_array()
            .and_then(|a| a.first().cloned())
            .filter(|run| run["status"] != "queued")
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suite_run_by_a_real_worker_lands_in_history_with_its_failing_assertion() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let member = t.user("mia", "member").await;
    let w = t.token("worker").await;
    let pid = project(&admin, "app", None).await;
    let suite = upload(&member, pid, &api_suite(&t.url)).await;
    let sid = suite["id"].as_i64().unwrap();
    assert_eq!(suite["cases"], 3);
    assert_eq!(suite["runs_code"], false);

    let _worker = WorkerProc::start(&t.url, w.token.as_deref().unwrap(), &["--allow-exec"]);
    let q = member
        .post_json(
            &format!("/api/test-suites/{sid}/run"),
            &json!({"vars": {"probe": "p-1"}}),
        )
        .await;
    assert_eq!(q.status, 201, "{}", q.body);
    assert_eq!(q.json["run"]["status"], "queued");
    let task_id = q.json["task_id"].as_i64().unwrap();

    let run = finished_run(&member, sid).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["passed"], 2, "{run}");
    assert_eq!(run["failed"], 1, "{run}");
    assert_eq!(run["task_id"], task_id);
    let detail = member.get(&format!("/api/test-runs/{}", run["id"])).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.json["suite_name"], "api smoke");
    let cases = detail.json["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    let failed = cases
        .iter()
        .find(|c| c["name"] == "a missing page is 200")
        .unwrap();
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["attempts"], 1);
    let failure = failed["failure"].as_str().unwrap();
    assert!(
        failure.contains("fetch missing") && failure.contains("status equals 200"),
        "{failure}"
    );
    let excerpt = failed["excerpt"].as_str().unwrap();
    assert!(
        excerpt.contains("/api/no-such-thing") && excerpt.contains("HTTP 404"),
        "{excerpt}"
    );
    assert!(cases
        .iter()
        .filter(|c| c["name"] != "a missing page is 200")
        .all(|c| c["outcome"] == "passed" && c["failure"].is_null()));

    // The task failed (a failing suite is an answer, not retried) with the summary as output.
    let task = final_task(&member, task_id).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        task["output"]
            .as_str()
            .unwrap()
            .contains("FAILED a missing page is 200"),
        "{task}"
    );

    // Per-case history over runs.
    let history = member.get(&format!("/api/test-suites/{sid}/cases")).await;
    assert_eq!(history.status, 200, "{}", history.body);
    let h = history.json.as_array().unwrap();
    assert_eq!(h.len(), 3);
    let missing = h
        .iter()
        .find(|c| c["name"] == "a missing page is 200")
        .unwrap();
    assert_eq!(missing["failed"], 1);
    assert_eq!(missing["is_flaky"], false);
    assert!(missing["last_failure"]
        .as_str()
        .unwrap()
        .contains("status equals 200"));

    // The list shows the last result; the activity log has the run and its record.
    let list = member
        .get(&format!("/api/test-suites?project_id={pid}"))
        .await;
    assert_eq!(
        list.json[0]["last_run"]["status"], "failed",
        "{}",
        list.body
    );
    let act = admin
        .get(&format!(
            "/api/activity?entity=test_run&entity_id={}",
            run["id"]
        ))
        .await;
    assert_eq!(act.json.as_array().unwrap().len(), 1, "{}", act.body);

    // The Testing panel shows it: last result, trend chart, the failing assertion.
    let page = member.get("/testing").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("api smoke") && page.body.contains("1 failed"));
    let page = member.get(&format!("/testing/suites/{sid}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<svg") && page.body.contains("class=\"llm-bar\""));
    assert!(page.body.contains("fetch missing"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_checked_and_suites_that_run_code_need_exec() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let member = t.user("mia", "member").await;
    let pid = project(&admin, "app", None).await;

    // A bad file: 422 naming the line and the field.
    let r = member
        .post_json(
            &format!("/api/projects/{pid}/test-suites"),
            &json!({"content": "name: s\ncases:\n  - name: c\n    steps:\n      - grpc: {url: x}\n"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json["field"], "content");
    let msg = r.json["error"].as_str().unwrap();
    assert!(
        msg.contains("upload:5") && msg.contains("cases[0].steps[0]") && msg.contains("grpc"),
        "{msg}"
    );
    let r = member
        .post_json(
            &format!("/api/projects/{pid}/test-suites"),
            &json!({"text": "x"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = member
        .post_json(
            "/api/projects/999/test-suites",
            &json!({"content": api_suite("http://x")}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // Shell and tmux steps are code others run later: admins only.
    let shell = "name: sh\ncases:\n  - name: c\n    steps:\n      - shell: {command: 'true'}\n";
    let r = member
        .post_json(
            &format!("/api/projects/{pid}/test-suites"),
            &json!({"content": shell}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let tmux = "name: tm\ncases:\n  - name: c\n    steps:\n      - wait_until:\n          step: {tmux: {session: s, expect: x}}\n";
    let r = member
        .post_json(
            &format!("/api/projects/{pid}/test-suites"),
            &json!({"content": tmux}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let s = upload(&admin, pid, shell).await;
    assert_eq!(s["runs_code"], true);
    // Same name again: replaced, not duplicated.
    upload(&admin, pid, shell).await;
    let list = member.get("/api/test-suites").await;
    assert_eq!(list.json.as_array().unwrap().len(), 1, "{}", list.body);

    // Bad run requests and unknown ids: 4xx JSON.
    let sid = s["id"].as_i64().unwrap();
    let r = member
        .post_json(
            &format!("/api/test-suites/{sid}/run"),
            &json!({"vars": {"a b": "1"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("vars")),
        "{}",
        r.body
    );
    let r = member
        .post_json(&format!("/api/test-suites/{sid}/run"), &json!({"tags": 5}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    for path in [
        "/api/test-suites/999",
        "/api/test-suites/999/runs",
        "/api/test-suites/999/cases",
        "/api/test-runs/999",
    ] {
        let r = member.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.json["code"], "not_found");
    }
    let r = member
        .post_json("/api/test-suites/999/run", &json!({}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = member.get("/api/test-suites?project_id=x").await;
    assert!([400, 422].contains(&r.status), "{}", r.body);
    assert!(r.json["code"].is_string(), "{}", r.body);

    // A report without the task's live lease writes nothing.
    let w = t.token("worker").await;
    let q = member
        .post_json(&format!("/api/test-suites/{sid}/run"), &json!({}))
        .await;
    assert_eq!(q.status, 201, "{}", q.body);
    let r = w
        .post_json(
            "/api/test-runs/report",
            &json!({"task_id": q.json["task_id"], "lease_token": "guess", "suite_id": sid,
                    "passed": 1, "failed": 0, "flaky": 0, "duration_ms": 1, "error": null,
                    "cases": []}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (409, Some("lease_lost")),
        "{}",
        r.body
    );
    let runs = member.get(&format!("/api/test-suites/{sid}/runs")).await;
    assert_eq!(runs.json[0]["status"], "queued", "{}", runs.body);
    // Its task cancelled: no report can come, and the run says so.
    let r = member
        .post_json(
            &format!("/api/tasks/{}/cancel", q.json["task_id"]),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let runs = member.get(&format!("/api/test-suites/{sid}/runs")).await;
    assert_eq!(runs.json[0]["status"], "error", "{}", runs.body);
    assert!(
        runs.json[0]["error"]
            .as_str()
            .unwrap()
            .contains("ended cancelled without reporting results"),
        "{}",
        runs.body
    );

    // Deleting takes its history with it.
    let r = member.delete(&format!("/api/test-suites/{sid}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        member.get(&format!("/api/test-suites/{sid}")).await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn folder_suites_are_read_and_a_suite_test_command_runs_one_with_vault_values_hidden() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("gitrepos");
    let src = top.join("app");
    std::fs::create_dir_all(src.join("test_suites")).unwrap();
    let root = top.display().to_string();
    let t = TestServer::start_with(move |c| c.sources.roots = vec![root]).await;
    let admin = t.admin().await;
    let pid = project(&admin, "app", Some(&src)).await;
    let secret = "s3cr3t-suite-value-91";
    let r = admin
        .post_json(
            "/api/secrets",
            &json!({"name": "PROBE_KEY", "value": secret}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    std::fs::write(
        src.join("test_suites/smoke.yaml"),
        format!(
            "name: folder smoke\nvariables:\n  base: {}\n  key: vault:PROBE_KEY\ncases:\n  - name: echo key\n    steps:\n      - http: {{url: '{{{{base}}}}/health', headers: {{x-key: '{{{{key}}}}'}}}}\n        assert:\n          - {{that: status, equals: 200}}\n          - {{that: var key, equals: nope}}\n",
            t.url
        ),
    )
    .unwrap();
    std::fs::write(src.join("test_suites/broken.yml"), "name: [\n").unwrap();
    let r = admin
        .post_json(
            &format!("/api/projects/{pid}/test-suites/rescan"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["stored"][0]["name"], "folder smoke", "{}", r.body);
    assert_eq!(r.json["stored"][0]["path"], "test_suites/smoke.yaml");
    assert_eq!(
        r.json["errors"][0]["path"], "test_suites/broken.yml",
        "{}",
        r.body
    );
    assert!(r.json["errors"][0]["error"]
        .as_str()
        .unwrap()
        .contains("broken.yml:"));

    // The project's test command names the suite; a worker whose token may read the vault
    // (the admin's) runs it as the project's test.
    let r = admin
        .put_json(
            &format!("/api/projects/{pid}/commands"),
            &json!({"test_command": "suite:folder smoke"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let admin_token = t.token("admin").await;
    let _worker = WorkerProc::start(
        &t.url,
        admin_token.token.as_deref().unwrap(),
        &["--allow-exec"],
    );
    let id = crate::tasks::enqueue(
        &admin,
        json!({"type": "test", "project_id": pid, "max_retries": 0}),
    )
    .await;
    let task = final_task(&admin, id).await;
    // The case fails on purpose (the key is not "nope"): the failure shows, the value never.
    assert_eq!(task["status"], "failed", "{task}");
    let output = task["output"].as_str().unwrap();
    assert!(output.contains("FAILED echo key"), "{output}");
    let suites = admin
        .get(&format!("/api/test-suites?project_id={pid}"))
        .await;
    let sid = suites.json[0]["id"].as_i64().unwrap();
    let run = finished_run(&admin, sid).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["task_id"], id);
    let detail = admin.get(&format!("/api/test-runs/{}", run["id"])).await;
    let everything = format!(
        "{}{}{}",
        detail.body,
        serde_json::to_string(&task).unwrap(),
        admin
            .get(&format!("/api/test-suites/{sid}/cases"))
            .await
            .body
    );
    assert!(everything.contains("[redacted]"), "{everything}");
    assert!(
        !everything.contains(secret),
        "the vault value leaked: {everything}"
    );
    let page = admin.get(&format!("/testing/runs/{}", run["id"])).await;
    assert!(!page.body.contains(secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_whose_token_may_not_read_a_vault_secret_fails_the_run_saying_so() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let w = t.token("worker").await;
    let pid = project(&admin, "app", None).await;
    let r = admin
        .post_json(
            "/api/secrets",
            &json!({"name": "API_KEY", "value": "v-123-hidden"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let s = upload(
        &admin,
        pid,
        &format!(
            "name: keyed\nvariables:\n  base: {}\n  key: vault:API_KEY\ncases:\n  - name: c\n    steps:\n      - http: {{url: '{{{{base}}}}/health'}}\n",
            t.url
        ),
    )
    .await;
    let sid = s["id"].as_i64().unwrap();
    let _worker = WorkerProc::start(&t.url, w.token.as_deref().unwrap(), &["--allow-exec"]);
    let q = admin
        .post_json(&format!("/api/test-suites/{sid}/run"), &json!({}))
        .await;
    assert_eq!(q.status, 201, "{}", q.body);
    let run = finished_run(&admin, sid).await;
    assert_eq!(run["status"], "error", "{run}");
    let e = run["error"].as_str().unwrap();
    assert!(
        e.contains("vault secret `API_KEY`") && e.contains("403"),
        "{e}"
    );
    let task = final_task(&admin, q.json["task_id"].as_i64().unwrap()).await;
    assert_eq!(task["status"], "failed");
    assert!(!serde_json::to_string(&task)
        .unwrap()
        .contains("v-123-hidden"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tmux_step_types_into_a_private_tmux_session_and_waits_for_the_screen() {
    if which("tmux").is_none() {
        panic!("tmux is missing: apt-get install -y tmux");
    }
    let tmux = PrivateTmux::new();
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "probe",
        "-x",
        "120",
        "-y",
        "30",
        "sh",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tmux.yaml");
    std::fs::write(
        &file,
        format!(
            "name: tmux\ncases:\n  - name: echo shows\n    steps:\n      - tmux: {{session: probe, socket: {s}, send: 'echo tmux-$((6*7))', expect: tmux-42, timeout: 10}}\n        capture:\n          shown: {{regex: 'tmux-(\\d+)'}}\n        assert:\n          - {{that: var shown, equals: '42'}}\n          - {{that: body, contains: tmux-42}}\n  - name: a screen that never shows fails in time\n    steps:\n      - tmux: {{session: probe, socket: {s}, expect_regex: 'never-[0-9]{{3}}', timeout: 0.5}}\n",
            s = tmux.socket
        ),
    )
    .unwrap();
    let out = crate::cli::run_env(&["test", "run", file.to_str().unwrap(), "--json"], &[]).await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let cases = v[0]["cases"].as_array().unwrap();
    assert_eq!(cases[0]["outcome"], "passed", "{}", cases[0]);
    assert_eq!(cases[1]["outcome"], "failed", "{}", cases[1]);
    assert!(
        cases[1]["failure"]
            .as_str()
            .unwrap()
            .contains("the screen did not show a match of `never-[0-9]{3}`"),
        "{}",
        cases[1]
    );
    assert_eq!(out.code, Some(1), "{out:?}");
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_case_that_passes_on_a_retry_is_flagged_flaky_on_the_panel() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let w = t.token("worker").await;
    let pid = project(&admin, "app", None).await;
    let empty = admin.get("/testing").await;
    assert_eq!(empty.status, 200);
    assert!(
        empty.body.contains("No test suites yet") && empty.body.contains("test_suites/"),
        "{}",
        empty.body
    );
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("mark");
    let s = upload(
        &admin,
        pid,
        &format!(
            "name: flaky\ncases:\n  - name: second time lucky\n    retries: 1\n    steps:\n      - shell: {{command: 'test -f {m} || {{ touch {m}; exit 3; }}'}}\n        assert:\n          - {{that: exit_code, equals: 0}}\n  - name: steady\n    steps:\n      - shell: {{command: 'echo ok'}}\n        assert:\n          - {{that: stdout, contains: ok}}\n",
            m = mark.display()
        ),
    )
    .await;
    let sid = s["id"].as_i64().unwrap();
    let _worker = WorkerProc::start(&t.url, w.token.as_deref().unwrap(), &["--allow-exec"]);
    // The panel's run button: a plain form post with the session's CSRF token.
    let page = admin.get(&format!("/testing/suites/{sid}")).await;
    let csrf = page
        .body
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let r = admin
        .post_form(
            &format!("/testing/suites/{sid}/run"),
            &[("csrf_token", &csrf), ("node", ""), ("tags", "")],
        )
        .await;
    assert!([302, 303].contains(&r.status), "{}", r.body);
    let run = finished_run(&admin, sid).await;
    assert_eq!(run["status"], "passed", "{run}");
    assert_eq!(run["flaky"], 1, "{run}");
    let h = admin.get(&format!("/api/test-suites/{sid}/cases")).await;
    let lucky = h
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "second time lucky")
        .cloned()
        .unwrap();
    assert_eq!(lucky["is_flaky"], true, "{lucky}");
    assert_eq!(lucky["flaky"], 1);
    let detail = admin.get(&format!("/api/test-runs/{}", run["id"])).await;
    let c = &detail.json["cases"][0];
    assert_eq!(
        (c["outcome"].as_str(), c["attempts"].as_i64()),
        (Some("flaky"), Some(2))
    );
    let page = admin.get(&format!("/testing/suites/{sid}")).await;
    assert!(
        page.body.contains("title=\"passed after a retry"),
        "the flaky badge: {}",
        page.body
    );
    let page = admin.get("/testing").await;
    assert!(page.body.contains("1 flaky"), "{}", page.body);
}

/// The Testing panel in Chromium: the empty state, a suite stored through the upload form,
/// run twice with the Run button by a real worker, the trend chart, case history and a run.
#[tokio::test(flavor = "multi_thread")]
async fn the_testing_panel_in_the_browser() {
    use crate::browser::{browser_available, log_in, Browser, Driver};
    if !browser_available() {
        return;
    }
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let w = server.token("worker").await;
    project(&admin, "shop", None).await;
    let tmp = tempfile::tempdir().unwrap();
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &tmp.path().join("profile")).await;
    log_in(&b, &server).await;
    b.resize(1300, 1100).await;
    b.goto(&format!("{}/testing", server.url)).await;
    b.wait_text("#testing-empty", "No test suites yet").await;
    b.screenshot("testing-empty").await;

    let suite = api_suite(&server.url).replace("{{probe}}", "browser");
    b.script(&format!(
        "document.querySelector('#upload-suite textarea').value = {}; return 1",
        serde_json::to_string(&suite).unwrap()
    ))
    .await;
    b.click("#upload-suite button[type=submit]").await;
    b.wait_text(".flash", "Suite api smoke stored.").await;
    let _worker = WorkerProc::start(&server.url, w.token.as_deref().unwrap(), &["--allow-exec"]);
    for n in 1..=2 {
        b.click("#run-suite button[type=submit]").await;
        b.wait_text(".flash", "queued as task").await;
        let sid: i64 = b
            .current_url()
            .await
            .rsplit('/')
            .next()
            .and_then(|s| s.split('?').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        until("the run to finish", || async {
            let r = admin.get(&format!("/api/test-suites/{sid}/runs")).await;
            let runs = r.json.as_array().cloned().unwrap_or_default();
            (runs.len() == n && runs[0]["status"] != "queued").then_some(())
        })
        .await;
        let here = b.current_url().await;
        b.goto(here.split('?').next().unwrap()).await;
    }
    b.wait_text("#trend figcaption", "Pass rate").await;
    let bars = b
        .script("return document.querySelectorAll('#trend rect.llm-bar').length")
        .await;
    assert_eq!(bars, 2, "one bar per finished run");
    assert!(b
        .text("#cases")
        .await
        .unwrap()
        .contains("status equals 200"));
    b.screenshot("testing-suite").await;
    b.goto(&format!("{}/testing", server.url)).await;
    b.wait_text("#test-suites", "api smoke").await;
    b.screenshot("testing-list").await;
    b.click("#test-suites td a[href^='/testing/runs/']").await;
    b.wait_text("#run", "fetch missing").await;
    b.screenshot("testing-run").await;
}

/// The autopilot's contract for a `suite:NAME` test: the task's worktree (checked to be the
/// project's) reaches the suite as `{{worktree}}`; one that is not the project's is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_suite_test_command_runs_in_the_tasks_worktree() {
    use crate::support::git;
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("gitrepos");
    let src = top.join("app");
    std::fs::create_dir_all(src.join("test_suites")).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(
        src.join("test_suites/where.yaml"),
        "name: where\ncases:\n  - name: in the worktree\n    steps:\n      - shell: {command: 'git rev-parse --abbrev-ref HEAD', cwd: '{{worktree}}'}\n        assert:\n          - {that: stdout, contains: feature-1}\n",
    )
    .unwrap();
    git(&src, &["add", "-A"]);
    git(
        &src,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-qm",
            "suite",
        ],
    );
    let wt = top.join("app-wt");
    git(
        &src,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "feature-1",
            wt.to_str().unwrap(),
        ],
    );
    let root = top.display().to_string();
    let t = TestServer::start_with(move |c| c.sources.roots = vec![root]).await;
    let admin = t.admin().await;
    let pid = project(&admin, "app", Some(&src)).await;
    let r = admin
        .post_json(
            &format!("/api/projects/{pid}/test-suites/rescan"),
            &json!({}),
        )
        .await;
    assert_eq!(r.json["stored"][0]["runs_code"], true, "{}", r.body);
    let r = admin
        .put_json(
            &format!("/api/projects/{pid}/commands"),
            &json!({"test_command": "suite:where"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let w = t.token("worker").await;
    let _worker = WorkerProc::start(&t.url, w.token.as_deref().unwrap(), &["--allow-exec"]);
    let id = crate::tasks::enqueue(
        &admin,
        json!({"type": "test", "project_id": pid, "max_retries": 0,
               "payload": {"worktree": wt.display().to_string()}}),
    )
    .await;
    let task = final_task(&admin, id).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert!(
        task["output"]
            .as_str()
            .unwrap()
            .contains("passed in the worktree"),
        "{task}"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    git(elsewhere.path(), &["init", "-q"]);
    let id = crate::tasks::enqueue(
        &admin,
        json!({"type": "test", "project_id": pid, "max_retries": 0,
               "payload": {"worktree": elsewhere.path().display().to_string()}}),
    )
    .await;
    let task = final_task(&admin, id).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("is not a git worktree of the project's repository"),
        "{task}"
    );
}
