//! The first hour with architect, through the real `architect` binary against a real server:
//! `architect tasks`, names where ids are, client errors that say what to do, `session start`
//! that notices an agent dying at once, prompts refused for sessions that are not there, and a
//! pending task that says why nothing claims it.

use crate::agents::{write_exec, PrivateTmux};
use crate::cli::{client, run, table_rows_with, token_of};
use crate::support::{Session, TestServer};
use serde_json::{json, Value};

async fn register_worker(w: &Session, name: &str, types: &[&str], exec: bool) -> i64 {
    let caps: Vec<&str> = if exec { vec!["exec"] } else { Vec::new() };
    let r = w
        .post_json(
            "/api/workers/register",
            &json!({"name": name, "node": "n1", "types": types, "capabilities": caps,
                    "concurrency": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().unwrap()
}

async fn waiting_reason(s: &Session, id: i64) -> Value {
    let r = s.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json["waiting_reason"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_cli_adds_lists_shows_retries_and_cancels() {
    let t = TestServer::start().await;
    let api = t.token("admin").await;
    let tok = token_of(&api);
    let url = t.url.as_str();

    let help = run(&["tasks", "--help"]).await;
    help.assert_ok();
    for sub in ["list", "add", "show", "retry", "cancel"] {
        assert!(
            help.stdout.lines().any(|l| l.trim_start().starts_with(sub)),
            "tasks --help lists {sub}: {help:?}"
        );
    }
    let help = run(&["tasks", "add", "--help"]).await;
    assert!(
        help.stdout.contains("--command") && help.stdout.contains("architect tasks add shell"),
        "{help:?}"
    );

    // The README's example: the id on stdout, why it waits on stderr.
    let r = client(
        url,
        &tok,
        "tasks",
        &["add", "shell", "--command", "echo hi", "--priority", "3"],
    )
    .await;
    r.assert_ok();
    let id: i64 = r.stdout.trim().parse().unwrap_or_else(|_| panic!("{r:?}"));
    assert!(
        r.stderr
            .contains("waiting: no worker online for type 'shell'"),
        "{r:?}"
    );
    let task = api.get(&format!("/api/tasks/{id}")).await.json;
    assert_eq!(
        (&task["type"], &task["payload"], &task["priority"]),
        (&json!("shell"), &json!({"command": "echo hi"}), &json!(3))
    );

    // A bad payload is the server's 422, naming the field; nothing is queued.
    let r = client(url, &tok, "tasks", &["add", "shell", "--cwd", "/tmp"]).await;
    assert!(!r.ok() && r.stderr.contains("payload.command"), "{r:?}");
    let r = client(url, &tok, "tasks", &["add", "x", "--payload", "[1]"]).await;
    assert!(!r.ok() && r.stderr.contains("JSON object"), "{r:?}");

    // A custom type with --payload, --env, tags; then a second task done by a worker.
    let r = client(
        url,
        &tok,
        "tasks",
        &[
            "add",
            "report",
            "--payload",
            r#"{"month": "2030-01"}"#,
            "--env",
            "A=1",
            "--tag",
            "gpu",
        ],
    )
    .await;
    r.assert_ok();
    let report: i64 = r.stdout.trim().parse().unwrap();
    let task = api.get(&format!("/api/tasks/{report}")).await.json;
    assert_eq!(
        task["payload"],
        json!({"month": "2030-01", "env": {"A": "1"}})
    );
    assert_eq!(task["tags"], json!(["gpu"]));

    let list = client(url, &tok, "tasks", &["list"]).await;
    list.assert_ok();
    let row = table_rows_with(&list.stdout, &id.to_string());
    assert!(
        row.len() == 1 && row[0].contains("pending") && row[0].contains("no worker online"),
        "{list:?}"
    );
    let only = client(
        url,
        &tok,
        "tasks",
        &[
            "list", "--type", "report", "--status", "pending", "--limit", "5", "--json",
        ],
    )
    .await;
    only.assert_ok();
    let ids: Vec<i64> = only
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![report]);

    // A worker (any type, no exec) completes the report: show has the attempt and output.
    let w = t.token("worker").await;
    let wid = register_worker(&w, "box", &[], false).await;
    let c = w
        .post_json(
            "/api/tasks/claim",
            &json!({"worker_id": wid, "types": ["report"], "tags": ["gpu"]}),
        )
        .await;
    assert_eq!(c.json["task"]["id"], report, "{}", c.body);
    let lease = c.json["task"]["lease_token"].as_str().unwrap();
    let r = w
        .post_json(
            &format!("/api/tasks/{report}/complete"),
            &json!({"lease_token": lease, "result": {"rows": 12}, "output": "report done\n",
                    "exit_code": 0, "duration_ms": 40}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let show = client(url, &tok, "tasks", &["show", &report.to_string()]).await;
    show.assert_ok();
    for want in [
        "completed",
        "report done",
        "\"rows\": 12",
        "exit code",
        "OUTCOME",
    ] {
        assert!(show.stdout.contains(want), "{want}: {show:?}");
    }
    assert!(!show.stdout.contains("waiting"), "{show:?}");
    let show = client(url, &tok, "tasks", &["show", &id.to_string()]).await;
    assert!(
        show.stdout
            .contains("waiting  no online worker has the exec capability a 'shell' task needs"),
        "{show:?}"
    );

    // Cancel, then retry; each says the new state; a wrong move is the server's 409.
    let r = client(url, &tok, "tasks", &["cancel", &id.to_string()]).await;
    assert!(
        r.ok() && r.stdout.contains(&format!("task {id} is now cancelled")),
        "{r:?}"
    );
    let r = client(url, &tok, "tasks", &["retry", &id.to_string()]).await;
    assert!(
        r.ok() && r.stdout.contains(&format!("task {id} is now pending")),
        "{r:?}"
    );
    let r = client(url, &tok, "tasks", &["retry", &report.to_string()]).await;
    assert!(!r.ok() && r.stderr.contains("409"), "{r:?}");
    let r = client(url, &tok, "tasks", &["show", "999"]).await;
    assert!(!r.ok() && r.stderr.contains("404"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_task_says_why_nothing_claims_it() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let r = admin
        .post_json(
            "/api/tasks",
            &json!({"type": "shell", "payload": {"command": "true"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json["id"].as_i64().unwrap();
    let why = waiting_reason(&admin, id).await;
    assert!(
        why.as_str()
            .unwrap()
            .starts_with("no worker online for type 'shell'"),
        "{why}"
    );

    // Workers online, but none may run programs.
    register_worker(&w, "reports", &["report"], false).await;
    let why = waiting_reason(&admin, id).await;
    assert!(
        why.as_str()
            .unwrap()
            .starts_with("no online worker has the exec capability"),
        "{why}"
    );
    // The list carries it too.
    let list = admin.get("/api/tasks?status=pending").await;
    assert_eq!(list.json[0]["waiting_reason"], why, "{}", list.body);

    // An exec worker for shell: nothing to explain; once it is busy, that is the reason.
    let sh = register_worker(&w, "shell-box", &["shell"], true).await;
    assert!(waiting_reason(&admin, id).await.is_null());
    let c = w
        .post_json("/api/tasks/claim", &json!({"worker_id": sh}))
        .await;
    assert_eq!(c.json["task"]["id"], id, "{}", c.body);
    let r = admin
        .post_json(
            "/api/tasks",
            &json!({"type": "shell", "payload": {"command": "true"}}),
        )
        .await;
    let next = r.json["id"].as_i64().unwrap();
    assert_eq!(
        waiting_reason(&admin, next).await,
        json!("all 1 matching worker is busy")
    );
    assert!(
        waiting_reason(&admin, id).await.is_null(),
        "running: no reason"
    );

    // The task page shows it.
    let page = t.admin().await.get(&format!("/tasks/{next}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"waiting-reason\"")
            && page.body.contains("all 1 matching worker is busy"),
        "{}",
        page.body
    );
    let page = t.admin().await.get(&format!("/tasks/{id}")).await;
    assert!(!page.body.contains("waiting-reason"));
    // So does the Tasks list, under the pending task's badge.
    let list = t.admin().await.get("/tasks").await;
    assert!(
        list.body
            .contains("class=\"muted task-waiting\">all 1 matching worker is busy"),
        "{}",
        list.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn project_and_milestone_names_work_where_ids_do() {
    let t = TestServer::start().await;
    let api = t.token("admin").await;
    let tok = token_of(&api);
    let url = t.url.as_str();
    client(url, &tok, "projects", &["add", "Shop"])
        .await
        .assert_ok();
    client(url, &tok, "projects", &["add", "Blog"])
        .await
        .assert_ok();
    let shop = api.get("/api/projects?q=Shop").await.json[0]["id"]
        .as_i64()
        .unwrap();
    let blog = api.get("/api/projects?q=Blog").await.json[0]["id"]
        .as_i64()
        .unwrap();
    for (project, name) in [(shop, "V1"), (blog, "v1"), (shop, "later")] {
        let r = api
            .post_json(
                "/api/milestones",
                &json!({"project_id": project, "name": name}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let shop_v1 = api
        .get(&format!("/api/milestones?project_id={shop}"))
        .await
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "V1")
        .unwrap()["id"]
        .as_i64()
        .unwrap();

    // Project by name in any case; milestone by name within it.
    let r = client(
        url,
        &tok,
        "features",
        &[
            "add",
            "--project",
            "shop",
            "--milestone",
            "v1",
            "Checkout",
            "--json",
        ],
    )
    .await;
    r.assert_ok();
    let f = r.json();
    assert_eq!(
        (f["project_id"].as_i64(), f["milestone_id"].as_i64()),
        (Some(shop), Some(shop_v1))
    );
    let fid = f["id"].as_i64().unwrap().to_string();
    let r = client(
        url,
        &tok,
        "features",
        &["set", &fid, "--milestone", "LATER", "--json"],
    )
    .await;
    r.assert_ok();
    assert_ne!(r.json()["milestone_id"].as_i64(), Some(shop_v1));
    let r = client(
        url,
        &tok,
        "features",
        &["set", &fid, "--milestone", "0", "--json"],
    )
    .await;
    assert!(r.json()["milestone_id"].is_null(), "{r:?}");
    let r = client(
        url,
        &tok,
        "bugs",
        &["add", "--project", "SHOP", "Crash on save", "--json"],
    )
    .await;
    assert_eq!(r.json()["project_id"].as_i64(), Some(shop), "{r:?}");
    client(url, &tok, "bugs", &["add", "--project", "blog", "Typo"])
        .await
        .assert_ok();
    let r = client(url, &tok, "bugs", &["list", "--project", "Shop", "--json"]).await;
    let bugs = r.json();
    assert!(
        bugs.as_array().unwrap().len() == 1 && bugs[0]["title"] == "Crash on save",
        "{r:?}"
    );
    let r = client(
        url,
        &tok,
        "devops",
        &["add", "Rotate backups", "--project", "shop", "--json"],
    )
    .await;
    assert_eq!(r.json()["project_id"].as_i64(), Some(shop), "{r:?}");
    let r = client(
        url,
        &tok,
        "tasks",
        &["add", "report", "--project", "blog", "--json"],
    )
    .await;
    assert_eq!(r.json()["project_id"].as_i64(), Some(blog), "{r:?}");
    let r = client(url, &tok, "tasks", &["list", "--project", "Blog", "--json"]).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{r:?}");
    let r = client(url, &tok, "projects", &["show", "blog", "--json"]).await;
    assert_eq!(r.json()["id"].as_i64(), Some(blog), "{r:?}");
    // Ids still work.
    let r = client(
        url,
        &tok,
        "features",
        &["list", "--project", &shop.to_string(), "--json"],
    )
    .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{r:?}");

    // Unknown and ambiguous names fail and say what to do; nothing is created.
    let r = client(url, &tok, "bugs", &["add", "--project", "nope", "X"]).await;
    assert!(
        !r.ok()
            && r.stderr.contains("no project named 'nope'")
            && r.stderr.contains("projects list"),
        "{r:?}"
    );
    let r = client(url, &tok, "features", &["list", "--milestone", "v1"]).await;
    assert!(
        !r.ok() && r.stderr.contains("'v1' names 2 milestones") && r.stderr.contains("--project"),
        "{r:?}"
    );
    let r = client(
        url,
        &tok,
        "features",
        &["add", "--project", "blog", "--milestone", "later", "Y"],
    )
    .await;
    assert!(
        !r.ok()
            && r.stderr
                .contains(&format!("no milestone named 'later' in project {blog}")),
        "{r:?}"
    );
    assert_eq!(api.get("/api/bugs").await.json.as_array().unwrap().len(), 2);
    assert_eq!(
        api.get("/api/features")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_say_what_to_do() {
    let t = TestServer::start().await;
    let read = t.token("read").await;

    // Server down: one line, the URL once, and how to get a server.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let r = client(&dead, &token_of(&read), "tasks", &["list"]).await;
    assert!(!r.ok(), "{r:?}");
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {r:?}");
    assert_eq!(r.stderr.matches(&dead).count(), 1, "the URL once: {r:?}");
    assert!(
        r.stderr.contains("architect serve") && r.stderr.contains("ARCHITECT_URL"),
        "{r:?}"
    );

    // 401: how to get a token.
    let r = client(&t.url, "not-a-token", "projects", &["list"]).await;
    assert!(!r.ok() && r.stderr.contains("401"), "{r:?}");
    assert!(
        r.stderr.contains("architect token create") && r.stderr.contains("ARCHITECT_TOKEN"),
        "{r:?}"
    );

    // 403 by scope: the scope, what is missing, which scope has it.
    let r = client(&t.url, &token_of(&read), "projects", &["add", "X"]).await;
    assert!(!r.ok() && r.stderr.contains("403"), "{r:?}");
    assert!(
        r.stderr.contains("scope 'read'")
            && r.stderr.contains("needs Write")
            && r.stderr.contains("--scope admin"),
        "{r:?}"
    );

    // 403 by role: a member's admin-scope token asking for an admin's action.
    let member = t.user("mia", "member").await;
    let made = member
        .post_json("/api/tokens", &json!({"name": "cli", "scope": "admin"}))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let mt = made.json["token"].as_str().unwrap();
    let r = client(&t.url, mt, "vault", &["rotate-key"]).await;
    assert!(!r.ok() && r.stderr.contains("403"), "{r:?}");
    assert!(
        r.stderr.contains("role 'member'")
            && r.stderr.contains("needs Admin, which role admin has")
            && r.stderr.contains("ask an admin"),
        "{r:?}"
    );
}

/// A server on a private tmux server, with an admin token.
async fn tmux_server(tmux: &PrivateTmux) -> (TestServer, Session) {
    let t = crate::agents::server(tmux).await;
    let w = t.token("admin").await;
    (t, w)
}

#[tokio::test(flavor = "multi_thread")]
async fn session_start_fails_when_the_agent_dies_at_once() {
    let tmux = PrivateTmux::new();
    let (t, w) = tmux_server(&tmux).await;
    let tok = token_of(&w);
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().display().to_string();

    // An agent that prints its complaint, lingers, and exits: the complaint is shown.
    let crash = dir.path().join("crash.sh");
    write_exec(
        &crash,
        "#!/bin/sh\necho 'fatal: no API key configured'\nsleep 2\nexit 3\n",
    );
    let r = client(
        &t.url,
        &tok,
        "session",
        &[
            "start",
            "crash1",
            "--agent",
            "shell",
            "--cwd",
            &cwd,
            "--program",
            &crash.display().to_string(),
            "--check-secs",
            "20",
        ],
    )
    .await;
    assert!(!r.ok(), "{r:?}");
    assert!(
        r.stderr.contains("session 'crash1' on local ended within")
            && r.stderr.contains("| fatal: no API key configured"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("started"), "{r:?}");

    // One that exits before anything could be read: the command to run by hand.
    let quick = dir.path().join("quick.sh");
    write_exec(&quick, "#!/bin/sh\nexit 1\n");
    let r = client(
        &t.url,
        &tok,
        "session",
        &[
            "start",
            "crash2",
            "--agent",
            "shell",
            "--cwd",
            &cwd,
            "--program",
            &quick.display().to_string(),
        ],
    )
    .await;
    assert!(!r.ok(), "{r:?}");
    assert!(
        r.stderr.contains("session 'crash2' on local ended within")
            && r.stderr.contains(&quick.display().to_string()),
        "{r:?}"
    );

    // One that keeps running is started, after its first second.
    let r = client(
        &t.url,
        &tok,
        "session",
        &[
            "start",
            "fine",
            "--agent",
            "shell",
            "--cwd",
            &cwd,
            "--check-secs",
            "1",
        ],
    )
    .await;
    assert!(r.ok() && r.stdout.contains("started fine"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn prompts_for_unknown_or_ended_sessions_are_refused() {
    let tmux = PrivateTmux::new();
    let (t, w) = tmux_server(&tmux).await;
    let tok = token_of(&w);
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().display().to_string();

    // Unknown: 404, over the API and the CLI; nothing queued.
    let r = w
        .post_json(
            "/api/assigner/send",
            &json!({"content": "hi", "target_session": "nobody"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (404, Some("not_found")),
        "{}",
        r.body
    );
    assert!(r.json["error"].as_str().unwrap().contains("'nobody'"));
    let r = client(
        &t.url,
        &tok,
        "assigner",
        &["--send", "hi", "--target", "nobody"],
    )
    .await;
    assert!(!r.ok() && r.stderr.contains("404"), "{r:?}");
    let r = w
        .post_json(
            "/api/agents/send",
            &json!({"session": "nobody", "message": "hi"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        w.get("/api/assigner/prompts").await.json,
        json!([]),
        "nothing queued"
    );

    // Live (a shell, which an admin may target): queued. Then it ends: 409.
    let r = w
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "gone", "agent": "shell", "cwd": cwd}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = w
        .post_json(
            "/api/assigner/send",
            &json!({"content": "true", "target_session": "gone"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let queued = r.json["prompt_id"].as_i64().unwrap();
    tmux.run(&["kill-session", "-t", "=gone"]);
    let r = w
        .post_json(
            "/api/assigner/send",
            &json!({"content": "true", "target_session": "gone"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (409, Some("conflict")),
        "{}",
        r.body
    );
    assert!(
        r.json["error"].as_str().unwrap().contains("no longer live"),
        "{}",
        r.body
    );
    let r = client(
        &t.url,
        &tok,
        "assigner",
        &["--send", "again", "--target", "gone"],
    )
    .await;
    assert!(
        !r.ok() && r.stderr.contains("409") && r.stderr.contains("session start"),
        "{r:?}"
    );
    // Reassigning follows the same rule.
    let r = w
        .post_json(
            &format!("/api/assigner/prompts/{queued}/reassign"),
            &json!({"to": "ghost"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
}
