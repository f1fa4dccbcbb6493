//! Execution is one capability (issue 12): a worker runs programs for tasks only when started
//! with `--allow-exec`; git and tmux payloads that would run code are refused at enqueue; only
//! admins set a project's commands; a task's processes die with their worker, even on
//! `kill -9`. Real server, real `architect worker` processes, real git and tmux.

use crate::support::{until, TestServer, DEADLINE};
use crate::tasks::{enqueue, pid_alive, task, token, WorkerProc, BIN};
use serde_json::{json, Value};
use std::path::Path;

/// Runs `architect worker` with `extra` until it exits (or [`DEADLINE`]: then it is killed and
/// the answer is None).
async fn worker_run(url: &str, token: &str, extra: &[&str]) -> Option<std::process::Output> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args([
        "worker",
        "--dashboard",
        url,
        "--token",
        token,
        "--wait-s",
        "1",
    ])
    .args(extra)
    .env_remove("ARCHITECT_TOKEN")
    .env_remove("ARCHITECT_URL")
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .ok()
        .map(|o| o.expect("worker runs"))
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_without_exec_runs_no_program_from_a_members_task() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let member = t.user("mia", "member").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let p = admin
        .post_json(
            "/api/projects",
            &json!({"name": "p", "source_path": src.display().to_string()}),
        )
        .await;
    let pid = p.json["id"].as_i64().unwrap();
    let r = admin
        .put_json(
            &format!("/api/projects/{pid}/commands"),
            &json!({"test_command": "touch ../ran-test", "build_command": "touch ../ran-build",
                    "deploy_command": "touch ../ran-deploy"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let socket = format!("arch-exec-{:x}", rand::random::<u64>());
    let mark = |name: &str| dir.join(name).display().to_string();
    let mut ids = Vec::new();
    for ty in ["test", "build", "deploy"] {
        ids.push(enqueue(&member, json!({"type": ty, "project_id": pid})).await);
    }
    let d = dir.display().to_string();
    for payload in [
        json!({"op": "create", "session": "cmd", "socket": socket,
               "command": ["sh", "-c", format!("touch {}", mark("ran-tmux-command"))]}),
        // tmux expands #(...) in -c: the driver must never see this on a worker without exec.
        json!({"op": "create", "session": "cwd", "socket": socket,
               "cwd": format!("{d}/#(touch {})", mark("ran-tmux-cwd"))}),
    ] {
        // Only Exec may queue a tmux or git task (`trust::members_cannot_queue_…`); the
        // worker without exec must still refuse an admin's.
        ids.push(enqueue(&admin, json!({"type": "tmux", "payload": payload})).await);
    }
    std::process::Command::new("git")
        .args(["init", "-q", &mark("origin")])
        .status()
        .unwrap();
    ids.push(
        enqueue(
            &admin,
            json!({"type": "git", "payload": {"op": "clone", "url": mark("origin"), "dest": mark("ran-git")}}),
        )
        .await,
    );

    // A worker with no capability has nothing it may claim: it says so and stops.
    let out = worker_run(&t.url, &token(&w), &[])
        .await
        .expect("a worker without --allow-exec stops at once instead of running tasks");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--allow-exec"),
        "{out:?}"
    );
    // Naming a type that runs programs does not get around it.
    for ty in ["test", "git", "tmux", "shell"] {
        let out = worker_run(&t.url, &token(&w), &["--types", ty])
            .await
            .expect("refused at once");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("--allow-exec"),
            "{ty}: {out:?}"
        );
    }
    for id in ids {
        assert_eq!(task(&admin, id).await["status"], "pending", "task {id}");
    }
    for f in [
        "ran-test",
        "ran-build",
        "ran-deploy",
        "ran-tmux-command",
        "ran-tmux-cwd",
        "ran-git",
    ] {
        assert!(!dir.join(f).exists(), "{f} ran");
    }
    let ls = std::process::Command::new("tmux")
        .args(["-L", &socket, "ls"])
        .output()
        .unwrap();
    assert!(!ls.status.success(), "no tmux server was started");
}

#[tokio::test(flavor = "multi_thread")]
async fn git_and_tmux_payloads_that_would_run_code_are_422_naming_the_field() {
    let t = TestServer::start().await;
    // Even an admin's task (only Exec may queue code: trust::members_cannot_queue_…) is
    // refused a payload that would run more than it says.
    let admin = t.admin().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"op": "commit", "repo": "/r", "message": "m",
                   "env": {"GIT_SSH_COMMAND": "touch /tmp/pwned"}}),
            "payload.env",
        ),
        (
            json!({"op": "commit", "repo": "/r", "message": "m",
                   "env": {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.sshCommand",
                           "GIT_CONFIG_VALUE_0": "touch /tmp/pwned"}}),
            "payload.env",
        ),
        (
            json!({"op": "clone", "url": "ext::sh -c touch% /tmp/pwned", "dest": "/tmp/d",
                   "env": {"GIT_ALLOW_PROTOCOL": "ext"}}),
            "payload.url",
        ),
        (
            json!({"op": "clone", "url": "fd::3", "dest": "/tmp/d"}),
            "payload.url",
        ),
        (
            json!({"op": "clone", "url": "ssh://-oProxyCommand=touch%20x/r", "dest": "/tmp/d"}),
            "payload.url",
        ),
        (
            json!({"op": "clone", "url": "/srv/r", "dest": "--upload-pack=touch /tmp/pwned"}),
            "payload.dest",
        ),
        (
            json!({"op": "pull", "repo": "/r", "remote": "ext::sh -c touch% /tmp/pwned"}),
            "payload.remote",
        ),
        (
            json!({"op": "pull", "repo": "/r", "remote": "origin", "branch": "--upload-pack=x"}),
            "payload.branch",
        ),
    ];
    for (payload, field) in cases {
        let r = admin
            .post_json("/api/tasks", &json!({"type": "git", "payload": payload}))
            .await;
        assert_eq!(
            (r.status, r.json["field"].as_str(), r.json["code"].as_str()),
            (422, Some(field), Some("invalid_field")),
            "{payload}: {}",
            r.body
        );
    }
    for cwd in [json!("relative/dir"), json!("/tmp/a\nb")] {
        let r = admin
            .post_json(
                "/api/tasks",
                &json!({"type": "tmux", "payload": {"op": "create", "cwd": cwd}}),
            )
            .await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (422, Some("payload.cwd")),
            "{cwd}: {}",
            r.body
        );
    }
    // The allowed shapes still go in.
    let r = admin
        .post_json(
            "/api/tasks",
            &json!({"type": "git", "payload": {"op": "clone", "url": "https://[::1]/r.git",
                    "dest": "/tmp/d", "env": {"GIT_AUTHOR_NAME": "a"}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_set_a_projects_commands() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let p = admin
        .post_json(
            "/api/projects",
            &json!({"name": "p", "source_path": "/tmp"}),
        )
        .await;
    let pid = p.json["id"].as_i64().unwrap();
    let path = format!("/api/projects/{pid}/commands");
    let member = t.user("max", "member").await;
    let r = member
        .put_json(&path, &json!({"test_command": "touch /tmp/pwned"}))
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (403, Some("forbidden")),
        "{}",
        r.body
    );
    let r = member
        .post_form(
            &format!("/tasks/commands/{pid}"),
            &[
                ("test_command", "touch /tmp/pwned"),
                ("build_command", ""),
                ("deploy_command", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let page = member.get("/tasks/commands").await;
    assert!(
        page.status == 200 && !page.body.contains("name=\"test_command\""),
        "a member sees the commands, not the form"
    );
    let c = member.get(&path).await;
    assert_eq!(c.json["test_command"], Value::Null, "{}", c.body);
    let r = admin
        .put_json(&path, &json!({"test_command": "cargo test"}))
        .await;
    assert_eq!(
        (r.status, r.json["test_command"].as_str()),
        (200, Some("cargo test"))
    );
    assert!(admin
        .get("/tasks/commands")
        .await
        .body
        .contains("name=\"test_command\""));
    // A member still runs them: enqueueing a test task is a Write.
    let r = member
        .post_json("/api/tasks", &json!({"type": "test", "project_id": pid}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tasks_processes_die_with_their_kill_9ed_worker() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // The shell and a background child of it: the whole tree must go, not just the shell.
    let id = enqueue(
        &admin,
        json!({"type": "shell", "payload": {"cwd": dir.display().to_string(),
               "command": "sleep 300 & echo $! > bg.pid; echo $$ > sh.pid; wait"}}),
    )
    .await;
    // The old flag name still gives the exec capability.
    let mut worker = WorkerProc::start(&t.url, &token(&w), &["--allow-shell", "--name", "doomed"]);
    let (sh, bg) = until("the task to start its processes", || async {
        Some((
            read_pid(&dir.join("sh.pid"))?,
            read_pid(&dir.join("bg.pid"))?,
        ))
    })
    .await;
    assert!(pid_alive(sh) && pid_alive(bg));
    assert_eq!(task(&admin, id).await["status"], "running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker.pid()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    worker.child.wait().await.unwrap();
    until(
        "the task's shell and its child to die with the worker",
        || async { (!pid_alive(sh) && !pid_alive(bg)).then_some(()) },
    )
    .await;
    // The server knows what the worker was allowed to do.
    let workers = admin.get("/api/workers").await;
    let me = workers
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "doomed")
        .cloned()
        .unwrap();
    assert_eq!(me["capabilities"], json!(["exec"]), "{me}");
    let page = t.admin().await.get("/workers").await;
    assert!(page.body.contains("Capabilities") && page.body.contains(">exec<"));
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_guard_ends_like_its_program_and_never_outlives_its_parent() {
    let guard = |args: &[&str]| {
        std::process::Command::new(BIN)
            .arg("exec-guard")
            .args(args)
            // The task's environment, not the main CLI's settings: never in the guard's way.
            .env("ARCHITECT_LOG_FORMAT", "not-a-format")
            .output()
            .unwrap()
    };
    use std::os::unix::process::ExitStatusExt;
    let me = std::process::id().to_string();
    let o = guard(&[
        "--die-with-parent",
        "--expect-parent",
        &me,
        "--",
        "sh",
        "-c",
        "echo hi; exit 7",
    ]);
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stdout).trim()),
        (Some(7), "hi")
    );
    // Killed by a signal: the guard dies of the same one, or (for the ones it watches itself)
    // exits 128 + the signal, as a shell would report it.
    let o = guard(&["--", "sh", "-c", "kill -USR1 $$"]);
    assert_eq!(o.status.signal(), Some(10), "{o:?}");
    let o = guard(&["--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(o.status.code(), Some(143), "{o:?}");
    let o = guard(&["--", "/no/such/program"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot start /no/such/program"));
    // Started for a parent that is not its parent (it died in between): the program never runs.
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran");
    let o = guard(&[
        "--die-with-parent",
        "--expect-parent",
        "1",
        "--",
        "touch",
        &marker.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(127), "{o:?}");
    assert!(!marker.exists());
    // No program at all is a usage error.
    assert!(!guard(&[]).status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_never_sees_its_workers_token() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let w = t.token("worker").await;
    let id = enqueue(
        &admin,
        json!({"type": "shell", "payload": {"command": "echo \"token=${ARCHITECT_TOKEN:-none}\""}}),
    )
    .await;
    // The usual way to hand a worker its token: the environment, as `serve` does for its own.
    let _worker = tokio::process::Command::new(BIN)
        .args([
            "worker",
            "--dashboard",
            &t.url,
            "--allow-shell",
            "--wait-s",
            "1",
        ])
        .env("ARCHITECT_TOKEN", token(&w))
        .env_remove("ARCHITECT_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let d = crate::tasks::final_task(&admin, id).await;
    assert_eq!(d["status"], "completed", "{d}");
    assert_eq!(
        d["output"].as_str().map(str::trim),
        Some("token=none"),
        "{d}"
    );
}
