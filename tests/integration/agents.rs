//! Integration tests of the agents domain: real tmux on a private socket per test (killed by a
//! Drop guard, pass or fail), a small fake agent drawing Claude-like screens for fast
//! deterministic runs, and the real Claude Code, Codex and Gemini CLIs against mock_llm.py.

use crate::support::{until, DEADLINE};
use crate::support::{Session, TestServer};
use serde_json::{json, Value};
use std::path::PathBuf;

pub use crate::support::{write_exec, MockLlm, PrivateTmux, RealCli};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents")
}

pub fn fake_agent_argv() -> Vec<String> {
    vec![
        "python3".into(),
        fixtures().join("fake_agent.py").display().to_string(),
    ]
}

/// A server managing the private tmux server `tmux`.
pub async fn server(tmux: &PrivateTmux) -> TestServer {
    let socket = tmux.socket.clone();
    TestServer::start_with(move |c| c.agents.tmux_socket = Some(socket)).await
}

pub async fn create_fake(s: &Session, name: &str, env: Value) -> Value {
    let r = s
        .post_json(
            "/api/tmux/create",
            &json!({"name": name, "command": fake_agent_argv(), "env": env,
                    "width": 120, "height": 40}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json
}

pub async fn capture(s: &Session, name: &str) -> Value {
    let r = s
        .post_json("/api/tmux/capture", &json!({"session": name, "lines": 200}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json
}

/// Waits until the session's pane shows the fake agent (a Claude-like screen) in `state`.
pub async fn wait_state(s: &Session, name: &str, state: &str) -> Value {
    until(&format!("{name} to be {state}"), || async {
        let c = capture(s, name).await;
        (c["classification"]["state"] == state && c["classification"]["agent"] == "claude")
            .then_some(c)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn tmux_api_drives_a_session_on_a_private_socket() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    let r = create_fake(&w, "fake-1", json!({"FAKE_AGENT_MARK": "x"})).await;
    assert_eq!(
        (r["node"].as_str(), r["session"].as_str()),
        (Some("local"), Some("fake-1"))
    );
    assert!(tmux
        .run(&["list-sessions", "-F", "#{session_name}"])
        .contains("fake-1"));

    let c = wait_state(&w, "fake-1", "idle").await;
    assert_eq!(
        c["classification"]["agent"], "claude",
        "fake agent draws Claude's footer"
    );
    assert_eq!(c["classification"]["input"], "empty");

    let list = w.get("/api/tmux/sessions").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let s = &list.json["sessions"][0];
    assert_eq!(
        (s["node"].as_str(), s["name"].as_str()),
        (Some("local"), Some("fake-1"))
    );
    assert_eq!(
        (s["state"].as_str(), s["windows"].as_i64()),
        (Some("idle"), Some(1))
    );
    assert!(s["created"].as_i64().unwrap() > 0 && s["current_command"].is_string());

    // Text is typed literally and submitted; multi-line text arrives as one paste.
    let r = w
        .post_json(
            "/api/tmux/send",
            &json!({"session": "fake-1", "text": "hello $(id) C-c"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until("the answer", || async {
        let c = capture(&w, "fake-1").await;
        c["output"]
            .as_str()
            .unwrap()
            .contains("answer: hello $(id) C-c")
            .then_some(())
    })
    .await;
    let r = w
        .post_json(
            "/api/tmux/send",
            &json!({"session": "fake-1", "text": "first\nsecond", "enter": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = until("the pasted text", || async {
        let c = capture(&w, "fake-1").await;
        c["output"]
            .as_str()
            .unwrap()
            .contains("first ⏎ second")
            .then_some(c)
    })
    .await;
    // Idle with text in the input line: not ready for a prompt.
    assert_eq!(c["classification"]["input"], "has_text", "{c}");
    let r = w
        .post_json(
            "/api/tmux/send",
            &json!({"session": "fake-1", "keys": ["Enter"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until("the pasted prompt's answer", || async {
        let c = capture(&w, "fake-1").await;
        c["output"]
            .as_str()
            .unwrap()
            .contains("answer: first ⏎ second")
            .then_some(())
    })
    .await;

    // Refresh stores the state with the signal that decided it.
    let r = w.post_json("/api/tmux/sessions/refresh", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json["sessions"][0]["state_by"]
        .as_str()
        .unwrap()
        .starts_with("pane:"));

    let r = w
        .post_json("/api/tmux/kill", &json!({"session": "fake-1"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = w.get("/api/tmux/sessions").await;
    assert_eq!(list.json["sessions"], json!([]));
    t.stop().await;
}

/// tmux only hangs up on a pane's process; a program that ignores SIGHUP (as the Gemini CLI's
/// node processes do) must still end when its session is killed.
#[tokio::test(flavor = "multi_thread")]
async fn killing_a_session_ends_programs_that_ignore_sighup() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!(
        "import os, signal, time\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\n\
         open({:?}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n",
        pidfile.display().to_string()
    );
    let r = w
        .post_json(
            "/api/tmux/create",
            &json!({"name": "stubborn", "command": ["python3", "-c", script]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let pid: i32 = until("the program's pid", || async {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok())
    })
    .await;
    let alive = |pid: i32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(alive(pid));
    let r = w
        .post_json("/api/tmux/kill", &json!({"session": "stubborn"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until("the program to end", || async {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for its (gone) parent to be reaped by init.
        (!alive(pid) || state.split_whitespace().nth(2) == Some("Z")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tmux_api_refuses_bad_input_and_checks_auth() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    let r = t.token("read").await;
    create_fake(&w, "ok", json!({})).await;

    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("/api/tmux/create", json!({"name": "a b"}), 422, "name"),
        (
            "/api/tmux/create",
            json!({"name": "x;rm -rf /"}),
            422,
            "name",
        ),
        ("/api/tmux/create", json!({"name": "ok"}), 409, "name"),
        (
            "/api/tmux/create",
            json!({"name": "e", "env": {"A=B": "x"}}),
            422,
            "env",
        ),
        (
            "/api/tmux/create",
            json!({"name": "e", "cwd": "relative"}),
            422,
            "cwd",
        ),
        (
            "/api/tmux/create",
            json!({"name": "e", "surprise": 1}),
            422,
            "surprise",
        ),
        ("/api/tmux/create", json!({"name": 5}), 422, "name"),
        ("/api/tmux/send", json!({"session": "ok"}), 422, "text"),
        (
            "/api/tmux/send",
            json!({"session": "nope", "text": "x"}),
            404,
            "session",
        ),
        (
            "/api/tmux/send",
            json!({"session": "ok", "keys": ["Enter; kill-server"]}),
            422,
            "body",
        ),
        (
            "/api/tmux/send",
            json!({"session": "ok", "keys": []}),
            422,
            "body",
        ),
        (
            "/api/tmux/send",
            json!({"session": "ok", "text": "a\u{0}b"}),
            422,
            "text",
        ),
        (
            "/api/tmux/capture",
            json!({"session": "ok", "lines": 0}),
            422,
            "lines",
        ),
        (
            "/api/tmux/capture",
            json!({"session": "ok", "lines": -1}),
            422,
            "lines",
        ),
        (
            "/api/tmux/capture",
            json!({"session": "../x"}),
            422,
            "session",
        ),
        ("/api/tmux/kill", json!({"session": "nope"}), 404, "session"),
        (
            "/api/tmux/kill",
            json!({"session": "ok", "node": "bad node"}),
            422,
            "node",
        ),
    ];
    for (path, body, status, field) in cases {
        let resp = w.post_json(path, &body).await;
        assert_eq!(resp.status, status, "{path} {body}: {}", resp.body);
        assert_eq!(resp.json["field"], field, "{path} {body}: {}", resp.body);
        assert!(resp.json["code"].is_string());
    }
    // A node that does not exist is the caller's mistake, named as such.
    let resp = w
        .post_json(
            "/api/tmux/send",
            &json!({"session": "ok", "text": "x", "node": "gpu-1"}),
        )
        .await;
    assert_eq!(resp.status, 422, "{}", resp.body);
    assert_eq!(resp.json["field"], "node");
    let list = w.get("/api/tmux/sessions?node=gpu-1").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json["errors"][0]["node"], "gpu-1");
    // Malformed JSON and wrong media type.
    let resp = w
        .send(
            w.request(reqwest::Method::POST, "/api/tmux/send")
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_eq!(resp.status, 400);

    // Auth: anonymous 401; a read token reads but cannot type.
    assert_eq!(t.anon().get("/api/tmux/sessions").await.status, 401);
    assert_eq!(r.get("/api/tmux/sessions").await.status, 200);
    let resp = r
        .post_json("/api/tmux/send", &json!({"session": "ok", "text": "x"}))
        .await;
    assert_eq!(resp.status, 403, "{}", resp.body);
    for path in [
        "/api/tmux/create",
        "/api/tmux/kill",
        "/api/tmux/sessions/refresh",
    ] {
        assert_eq!(r.post_json(path, &json!({})).await.status, 403, "{path}");
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pane_patterns_are_data_editable_through_the_api() {
    let t = TestServer::start().await;
    let w = t.token("admin").await;
    let r = w.get("/api/agents/pane-patterns").await;
    assert_eq!(r.status, 200);
    assert!(r.json["builtin"].as_array().unwrap().len() > 20);
    assert_eq!(r.json["user"], json!([]));

    let screen = "my-agent v2\n\n[ready]>";
    let c = w
        .post_json("/api/agents/classify", &json!({"screen": screen}))
        .await;
    assert_eq!(c.json["state"], "unknown", "{}", c.body);

    let row = |name: &str, agent: &str, signal: &str, regex: &str| {
        json!({"name": name, "agent": agent, "signal": signal, "source": "tail",
               "tail_lines": 2, "regex": regex})
    };
    for body in [
        row("mine_detect", "other", "detect", r"my-agent v\d"),
        row("mine_idle", "other", "idle", r"\[ready\]>$"),
        row("mine_empty", "other", "input_empty", r"\[ready\]>$"),
    ] {
        let r = w.post_json("/api/agents/pane-patterns", &body).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let c = w
        .post_json("/api/agents/classify", &json!({"screen": screen}))
        .await;
    assert_eq!(
        (c.json["state"].as_str(), c.json["input"].as_str()),
        (Some("idle"), Some("empty"))
    );
    assert_eq!(c.json["state_by"], "mine_idle");

    // Bad rows are refused with the field named.
    for (body, field) in [
        (row("bad", "other", "idle", "("), "regex"),
        (row("bad", "martian", "idle", "x"), "agent"),
        (row("bad", "other", "sleepy", "x"), "signal"),
        (row("mine_idle", "other", "idle", "x"), "name"),
        (json!({"name": "x"}), "agent"),
    ] {
        let r = w.post_json("/api/agents/pane-patterns", &body).await;
        assert!(r.status == 422 || r.status == 409, "{body}: {}", r.body);
        assert_eq!(r.json["field"], field, "{body}: {}", r.body);
    }
    let user = w.get("/api/agents/pane-patterns").await.json["user"].clone();
    let id = user[1]["id"].as_i64().unwrap();
    let r = w
        .put_json(&format!("/api/agents/pane-patterns/{id}"), &{
            let mut b = row("mine_idle", "other", "busy", r"\[ready\]>$");
            b["enabled"] = json!(true);
            b
        })
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = w
        .post_json("/api/agents/classify", &json!({"screen": screen}))
        .await;
    assert_eq!(c.json["state"], "busy");
    assert_eq!(
        w.delete(&format!("/api/agents/pane-patterns/{id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        w.delete(&format!("/api/agents/pane-patterns/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(w.delete("/api/agents/pane-patterns/abc").await.status, 400);
    let c = w
        .post_json("/api/agents/classify", &json!({"screen": screen}))
        .await;
    assert_eq!(
        c.json["state"], "unknown",
        "no idle row left for it: {}",
        c.body
    );
    let ro = t.token("read").await;
    assert_eq!(
        ro.post_json("/api/agents/pane-patterns", &row("z", "other", "idle", "x"))
            .await
            .status,
        403
    );
    t.stop().await;
}

pub const BIN: &str = env!("CARGO_BIN_EXE_architect");

/// The value of `VAR` in a tmux session's environment.
/// A variable of the environment the session's program runs with (read from /proc: the
/// secrets a session gets are never on a tmux command line or in tmux's own environment).
pub fn session_env(tmux: &PrivateTmux, session: &str, var: &str) -> String {
    // Until the pane's process has exec'd its program, /proc shows the environment it was
    // forked with: wait up to 10 s for the variable.
    let start = std::time::Instant::now();
    loop {
        let pid = tmux.run(&[
            "list-panes",
            "-t",
            &format!("={session}"),
            "-F",
            "#{pane_pid}",
        ]);
        let environ = std::fs::read(format!("/proc/{}/environ", pid.trim())).unwrap_or_default();
        let found = environ
            .split(|b| *b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix(&format!("{var}=")))
            .map(str::to_string);
        match found {
            Some(v) => return v,
            None if start.elapsed() > std::time::Duration::from_secs(10) => return String::new(),
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// Runs `architect hook <event>` as Claude Code would: the session's environment, the event
/// JSON on stdin. Returns stdout.
async fn run_hook(tmux: &PrivateTmux, session: &str, event: &str, stdin: Value) -> String {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["hook", event]).env_clear();
    for var in [
        "ARCHITECT_URL",
        "ARCHITECT_TOKEN",
        "ARCHITECT_SESSION",
        "ARCHITECT_NODE",
    ] {
        cmd.env(var, session_env(tmux, session, var));
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.to_string().as_bytes()).await.unwrap();
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn session_start_installs_hooks_that_report_state_with_their_signal() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().display().to_string();
    let fake = fixtures().join("fake_agent.py").display().to_string();
    let r = w
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "claude-1", "agent": "claude", "cwd": cwd, "role": "worker",
                    "groups": ["backend"], "program": fake}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let settings: Value = serde_json::from_str(
        &std::fs::read_to_string(r.json["settings_path"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    for event in ["UserPromptSubmit", "Stop", "Notification", "PreToolUse"] {
        let cmd = settings["hooks"][event][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert!(cmd.contains(" hook "), "{event}: {cmd}");
    }
    assert_eq!(
        session_env(&tmux, "claude-1", "ARCHITECT_SESSION"),
        "claude-1"
    );
    assert_eq!(session_env(&tmux, "claude-1", "ARCHITECT_URL"), t.url);
    wait_state(&w, "claude-1", "idle").await;

    // Hooks are positive events, each recorded with its signal.
    run_hook(
        &tmux,
        "claude-1",
        "user-prompt-submit",
        json!({"prompt": "x"}),
    )
    .await;
    let s = w.get("/api/agents/sessions/claude-1").await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.json["session"]["state"], "busy");
    assert_eq!(s.json["session"]["state_by"], "hook:UserPromptSubmit");
    assert_eq!(s.json["session"]["role"], "worker");
    run_hook(
        &tmux,
        "claude-1",
        "stop",
        json!({"transcript_path": "/tmp/t.jsonl", "hook_event_name": "Stop"}),
    )
    .await;
    let s = w.get("/api/agents/sessions/claude-1").await;
    assert_eq!(s.json["session"]["state"], "idle");
    assert_eq!(s.json["session"]["transcript_path"], "/tmp/t.jsonl");
    assert_eq!(s.json["changes"][0]["signal"], "hook:Stop");
    assert_eq!(s.json["changes"][1]["signal"], "hook:UserPromptSubmit");

    // Pre-tool-use with no pattern: no decision printed (Claude asks as usual).
    let out = run_hook(
        &tmux,
        "claude-1",
        "pre-tool-use",
        json!({"tool_name": "Bash", "tool_input": {"command": "ls"}}),
    )
    .await;
    assert_eq!(out.trim(), "");

    // Bad input and auth.
    let agent_token = session_env(&tmux, "claude-1", "ARCHITECT_TOKEN");
    let a = Session::new(&t.url, Some(agent_token));
    let resp = a
        .post_json("/api/agents/hooks/explode", &json!({"session": "claude-1"}))
        .await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let resp = a
        .post_json("/api/agents/hooks/stop", &json!({"session": "a b"}))
        .await;
    assert_eq!(resp.status, 422, "{}", resp.body);
    // The session's agent token reports hooks but cannot type into panes.
    let resp = a
        .post_json(
            "/api/tmux/send",
            &json!({"session": "claude-1", "text": "x"}),
        )
        .await;
    assert_eq!(resp.status, 403);
    let ro = t.token("read").await;
    let resp = ro
        .post_json("/api/agents/hooks/stop", &json!({"session": "claude-1"}))
        .await;
    assert_eq!(resp.status, 403);
    for (body, field) in [
        (json!({"name": "claude-1", "agent": "claude"}), "name"),
        (json!({"name": "x", "agent": "vim"}), "agent"),
        (json!({"name": "x", "agent": "shell", "cwd": "rel"}), "cwd"),
        (
            json!({"name": "x", "agent": "shell", "groups": ["a b"]}),
            "groups",
        ),
        (
            json!({"name": "x", "agent": "shell", "role": "boss"}),
            "role",
        ),
        (
            json!({"name": "x", "agent": "shell", "worktree": true}),
            "cwd",
        ),
    ] {
        let resp = w.post_json("/api/agents/sessions", &body).await;
        assert!(
            resp.status == 422 || resp.status == 409,
            "{body}: {}",
            resp.body
        );
        assert_eq!(
            resp.json["field"].as_str().unwrap_or("name"),
            field,
            "{body}: {}",
            resp.body
        );
    }
    // Killing the session revokes its hook token.
    let resp = w
        .post_json("/api/tmux/kill", &json!({"session": "claude-1"}))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let resp = a
        .post_json("/api/agents/hooks/stop", &json!({"session": "claude-1"}))
        .await;
    assert_eq!(resp.status, 401, "{}", resp.body);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn session_start_can_give_a_session_its_own_worktree() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(repo.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&[
        "-c",
        "user.email=t@t",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    ]);
    let r = w
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "wt-1", "agent": "shell", "cwd": repo.path().display().to_string(),
                    "worktree": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let branch = r.json["branch"].as_str().unwrap();
    assert!(branch.starts_with("feature/wt-1-") && branch.len() == "feature/wt-1-MMDD".len());
    let cwd = r.json["cwd"].as_str().unwrap();
    assert!(std::path::Path::new(cwd).join(".git").exists(), "{cwd}");
    let pane_path = until("the pane's path", || async {
        let p = tmux.run(&[
            "display-message",
            "-p",
            "-t",
            "=wt-1:",
            "#{pane_current_path}",
        ]);
        (!p.trim().is_empty()).then_some(p)
    })
    .await;
    assert_eq!(
        pane_path.trim(),
        std::fs::canonicalize(cwd).unwrap().display().to_string()
    );
    t.stop().await;
}

// ---------------------------------------------------------------------------------------------
// the assigner
// ---------------------------------------------------------------------------------------------

use architect::agents::assigner::dispatch;

/// Starts a fake agent via `session start` (so architect knows it is a Claude-like agent),
/// logging each prompt it receives to `log`; SLOW prompts wait for `gate` to hold "release".
pub async fn start_fake(w: &Session, name: &str, extra: Value) {
    let mut body = json!({"name": name, "agent": "claude",
        "program": fixtures().join("fake_agent.py").display().to_string()});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = w.post_json("/api/agents/sessions", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    wait_state(w, name, "idle").await;
}

/// Where a fake agent logs prompts and waits for its gate (`extra` env of `start_fake`).
pub fn fake_env(dir: &std::path::Path) -> (PathBuf, PathBuf, Value) {
    let log = dir.join("prompts.jsonl");
    let gate = dir.join("gate");
    let env = json!({"env": {"FAKE_AGENT_LOG": log.display().to_string(),
                             "FAKE_AGENT_GATE": gate.display().to_string()}});
    (log, gate, env)
}

/// `a` with the fields of `b` added.
pub fn with(a: Value, b: &Value) -> Value {
    let mut a = a;
    if let (Some(x), Some(y)) = (a.as_object_mut(), b.as_object()) {
        x.extend(y.clone());
    }
    a
}

pub fn delivered(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<String>(l).unwrap())
        .collect()
}

pub async fn send_prompt(s: &Session, body: Value) -> i64 {
    let r = s.post_json("/api/assigner/send", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["success"], true);
    r.json["prompt_id"].as_i64().unwrap()
}

pub async fn prompt(s: &Session, id: i64) -> Value {
    let r = s.get(&format!("/api/assigner/prompts/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json
}

pub async fn wait_prompt(s: &Session, id: i64, status: &str) -> Value {
    until(&format!("prompt {id} to be {status}"), || async {
        let p = prompt(s, id).await;
        (p["status"] == status).then_some(p)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_prompt_is_typed_into_an_idle_session_and_completed() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (log, _, env) = fake_env(dir.path());
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "w1", with(json!({"role": "worker"}), &env)).await;
    let id = send_prompt(&w, json!({"content": "fix the login bug", "priority": 5})).await;
    let p = wait_prompt(&w, id, "completed").await;
    assert_eq!(p["assigned_session"], "w1");
    assert!(
        p["response"]
            .as_str()
            .unwrap()
            .contains("answer: fix the login bug"),
        "{p}"
    );
    assert!(
        p["completed_by"].as_str().unwrap().starts_with("pane:"),
        "{p}"
    );
    assert!(p["typed_at"].is_string() && p["started_at"].is_string());
    assert_eq!(delivered(&log), vec!["fix the login bug"]);

    // Multi-line prompts arrive as one submission.
    let id = send_prompt(
        &w,
        json!({"content": "line one\nline two", "target_session": "w1"}),
    )
    .await;
    wait_prompt(&w, id, "completed").await;
    assert_eq!(delivered(&log)[1], "line one\nline two");

    // /api/agents lists it with its state; send and broadcast go through the queue.
    let a = w.get("/api/agents").await;
    assert_eq!(a.json["agents"][0]["name"], "w1", "{}", a.body);
    assert_eq!(a.json["agents"][0]["agent"], "claude");
    let r = w
        .post_json(
            "/api/agents/send",
            &json!({"session": "w1", "message": "via agents"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    wait_prompt(&w, r.json["prompt_ids"][0].as_i64().unwrap(), "completed").await;
    let r = w
        .post_json(
            "/api/agents/broadcast",
            &json!({"message": "to all", "role": "worker"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["prompt_ids"].as_array().unwrap().len()),
        (201, 1),
        "{}",
        r.body
    );
    wait_prompt(&w, r.json["prompt_ids"][0].as_i64().unwrap(), "completed").await;
    let r = w
        .post_json("/api/agents/send", &json!({"session": "w1", "message": ""}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("message")),
        "{}",
        r.body
    );
    let r = w
        .post_json(
            "/api/agents/broadcast",
            &json!({"message": "x", "role": "boss"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("role")),
        "{}",
        r.body
    );

    // assign-to-tmux: the feature's details go to the session; completion moves it to review.
    let proj = w
        .post_json("/api/projects", &json!({"name": "agents-proj"}))
        .await;
    assert_eq!(proj.status, 201, "{}", proj.body);
    let f = w
        .post_json(
            "/api/features",
            &json!({"project_id": proj.json["id"], "name": "Login page", "description": "Add a login page"}),
        )
        .await;
    assert_eq!(f.status, 201, "{}", f.body);
    let fid = f.json["id"].as_i64().unwrap();
    let r = w
        .post_json(
            "/api/assign-to-tmux",
            &json!({"kind": "feature", "id": fid, "session": "w1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json["content"]
        .as_str()
        .unwrap()
        .contains(&format!("/features/{fid}")));
    let p = wait_prompt(&w, r.json["prompt_id"].as_i64().unwrap(), "completed").await;
    assert_eq!(
        (p["source_kind"].as_str(), p["source_id"].as_i64()),
        (Some("feature"), Some(fid))
    );
    let feature = until("the feature in review", || async {
        let f = w.get(&format!("/api/features/{fid}")).await;
        (f.json["status"] == "review").then_some(f.json)
    })
    .await;
    assert!(
        feature["history"].to_string().contains("assigner prompt"),
        "{feature}"
    );
    let r = w
        .post_json(
            "/api/assign-to-tmux",
            &json!({"kind": "feature", "id": 999}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = w
        .post_json("/api/assign-to-tmux", &json!({"kind": "devops", "id": 1}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("kind")),
        "{}",
        r.body
    );

    // Status and sessions views.
    let st = w.get("/api/assigner/status").await;
    assert_eq!(st.json["counts"]["completed"], 5, "{}", st.body);
    assert_eq!(st.json["dispatcher"], true);
    let ss = w.get("/api/assigner/sessions").await;
    assert_eq!(ss.json[0]["name"], "w1", "{}", ss.body);
    assert_eq!(ss.json[0]["role"], "worker");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dispatcher_never_types_into_busy_or_half_typed_sessions() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (log, gate, env) = fake_env(dir.path());
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "w1", env.clone()).await;

    // A person's half-typed text: the prompt waits.
    let r = w
        .post_json(
            "/api/tmux/send",
            &json!({"session": "w1", "text": "my own thought", "enter": false}),
        )
        .await;
    assert_eq!(r.status, 200);
    until("the half-typed text", || async {
        (capture(&w, "w1").await["classification"]["input"] == "has_text").then_some(())
    })
    .await;
    let first = send_prompt(&w, json!({"content": "SLOW first"})).await;
    let report = dispatch::tick(&t.state().agents_state()).await.unwrap();
    assert!(report.dispatched.is_empty(), "{report:?}");
    assert_eq!(prompt(&w, first).await["status"], "pending");

    // The person submits their text; once idle again, the queued prompt goes in.
    w.post_json(
        "/api/tmux/send",
        &json!({"session": "w1", "keys": ["Enter"]}),
    )
    .await;
    let p = wait_prompt(&w, first, "in_progress").await;
    assert!(
        p["accepted_by"].as_str().unwrap().starts_with("pane:"),
        "{p}"
    );

    // Busy: a second and third prompt wait; the higher priority goes first afterwards.
    let low = send_prompt(&w, json!({"content": "low one", "priority": 1})).await;
    let high = send_prompt(&w, json!({"content": "high one", "priority": 9})).await;
    let report = dispatch::tick(&t.state().agents_state()).await.unwrap();
    assert!(
        report.dispatched.is_empty(),
        "one prompt per session: {report:?}"
    );
    std::fs::write(&gate, "release").unwrap();
    wait_prompt(&w, low, "completed").await;
    assert_eq!(prompt(&w, first).await["status"], "completed");
    assert_eq!(
        delivered(&log),
        vec!["my own thought", "SLOW first", "high one", "low one"]
    );
    assert_eq!(prompt(&w, high).await["status"], "completed");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_prompt_is_lost_or_sent_twice_across_a_restart() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (log, gate, env) = fake_env(dir.path());
    let data = tempfile::tempdir().unwrap();
    let cfg = || {
        let mut c = crate::support::config(data.path());
        c.agents.tmux_socket = Some(tmux.socket.clone());
        c
    };
    let clock = architect::clock::Clock::manual();
    let s1 = architect::serve::start(cfg(), clock.clone()).await.unwrap();
    let url = format!("http://{}", s1.addr);
    let admin = login(&url).await;
    start_fake(&admin, "w1", env.clone()).await;
    start_fake(&admin, "w2", env.clone()).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(send_prompt(&admin, json!({"content": format!("SLOW job {i}")})).await);
    }
    until("two prompts running", || async {
        let r = admin.get("/api/assigner/prompts?status=in_progress").await;
        (r.json.as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    s1.shutdown().await.unwrap();
    std::fs::write(&gate, "release").unwrap();

    let s2 = architect::serve::start(cfg(), clock).await.unwrap();
    let admin = login(&format!("http://{}", s2.addr)).await;
    for id in &ids {
        wait_prompt(&admin, *id, "completed").await;
    }
    let mut got = delivered(&log);
    got.sort();
    assert_eq!(
        got,
        vec!["SLOW job 0", "SLOW job 1", "SLOW job 2", "SLOW job 3"]
    );
    s2.shutdown().await.unwrap();
}

pub async fn login(url: &str) -> Session {
    let mut s = Session::new(url, None);
    let r = s
        .post_json(
            "/login",
            &json!({"username": crate::support::ADMIN, "password": crate::support::ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.csrf = r.json["csrf_token"].as_str().unwrap().to_string();
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_prompts_time_out_and_escalate_to_the_manager() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (_log, _gate, env) = fake_env(dir.path());
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "boss", with(json!({"role": "manager"}), &env)).await;
    start_fake(
        &w,
        "w1",
        with(json!({"role": "worker", "manager": "boss"}), &env),
    )
    .await;
    // The manager is kept busy so the escalation stays queued where we can see it.
    let busy_boss = send_prompt(
        &w,
        json!({"content": "SLOW plan", "target_session": "boss"}),
    )
    .await;
    wait_prompt(&w, busy_boss, "in_progress").await;
    let id = send_prompt(
        &w,
        json!({"content": "SLOW stuck", "target_session": "w1", "timeout_minutes": 30, "parent_id": busy_boss}),
    )
    .await;
    wait_prompt(&w, id, "in_progress").await;
    t.clock.advance(31 * 60);
    let report = dispatch::tick(&t.state().agents_state()).await.unwrap();
    assert!(report.failed.contains(&id), "{report:?}");
    let p = prompt(&w, id).await;
    assert_eq!(p["status"], "failed");
    assert!(p["error"].as_str().unwrap().contains("timed out"), "{p}");
    assert_eq!(p["escalated_to"], "boss");
    let esc = &p["children"][0];
    assert_eq!(esc["target_session"], "boss");
    assert!(esc["content"].as_str().unwrap().contains(&format!("#{id}")));
    // The delegation tree: the manager's prompt lists the stalled one.
    let tree = prompt(&w, busy_boss).await;
    assert!(tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == id));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn assigner_api_lifecycle_bad_input_and_auth() {
    let tmux = PrivateTmux::new();
    tmux.idle_sessions(&["nobody", "w9", "x"]);
    let socket = tmux.socket.clone();
    let t = TestServer::start_with(move |c| {
        c.agents.assigner = false;
        c.agents.tmux_socket = Some(socket);
    })
    .await;
    let w = t.token("admin").await;
    let id = send_prompt(&w, json!({"content": "x", "target_session": "nobody"})).await;
    // cancel, then retry spends a retry; reassign; retry-all; clear.
    let r = w.delete(&format!("/api/assigner/prompts/{id}")).await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("cancelled"))
    );
    let r = w.delete(&format!("/api/assigner/prompts/{id}")).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (409, Some("invalid_transition"))
    );
    let r = w
        .post_json(&format!("/api/assigner/prompts/{id}/retry"), &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json["retries"].as_i64()),
        (200, Some(1)),
        "{}",
        r.body
    );
    let r = w
        .post_json(
            &format!("/api/assigner/prompts/{id}/reassign"),
            &json!({"to": "w9"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["target_session"].as_str()),
        (200, Some("w9")),
        "{}",
        r.body
    );
    let one = send_prompt(&w, json!({"content": "y", "max_retries": 0})).await;
    w.delete(&format!("/api/assigner/prompts/{one}")).await;
    let r = w
        .post_json(&format!("/api/assigner/prompts/{one}/retry"), &json!({}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (409, Some("retries")),
        "{}",
        r.body
    );
    let r = w.post_json("/api/assigner/retry-all", &json!({})).await;
    assert_eq!(r.status, 200);
    let r = w
        .post_json("/api/assigner/clear", &json!({"days": 1}))
        .await;
    assert_eq!(r.json["count"], 0, "{}", r.body);
    let r = w.post_json("/api/assigner/clear", &json!({})).await;
    assert_eq!(r.json["count"], 1, "{}", r.body);
    let list = w.get("/api/assigner/prompts?status=pending").await;
    assert_eq!(list.json.as_array().unwrap().len(), 1, "{}", list.body);

    // Routing rules are data: untargeted prompts take the first matching rule's group.
    let r = w
        .post_json(
            "/api/assigner/routing-rules",
            &json!({"name": "debugging", "content_regex": "\\b(bug|crash)\\b", "target_group": "debug"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let routed = send_prompt(&w, json!({"content": "Diagnose the crash in the reader"})).await;
    let p = prompt(&w, routed).await;
    assert_eq!(
        (
            p["target_group"].as_str(),
            p["metadata"]["routed_by"].as_str()
        ),
        (Some("debug"), Some("debugging"))
    );
    let direct = send_prompt(&w, json!({"content": "a bug", "target_session": "x"})).await;
    assert!(prompt(&w, direct).await["target_group"].is_null());
    for (body, field) in [
        (
            json!({"name": "x", "content_regex": "(", "target_group": "g"}),
            "content_regex",
        ),
        (json!({"name": "x"}), "target_role"),
        (json!({"name": "x", "target_role": "boss"}), "target_role"),
    ] {
        let r = w.post_json("/api/assigner/routing-rules", &body).await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (422, Some(field)),
            "{body}: {}",
            r.body
        );
    }
    assert_eq!(
        w.get("/api/assigner/routing-rules")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for id in [routed, direct] {
        w.delete(&format!("/api/assigner/prompts/{id}")).await;
    }

    for (body, field) in [
        (json!({"content": ""}), "content"),
        (json!({"content": "x", "priority": 11}), "priority"),
        (json!({"content": "x", "priority": "high"}), "priority"),
        (
            json!({"content": "x", "timeout_minutes": 0}),
            "timeout_minutes",
        ),
        (
            json!({"content": "x", "target_session": "a b"}),
            "target_session",
        ),
        (
            json!({"content": "x", "target_role": "boss"}),
            "target_role",
        ),
        (json!({"content": "x", "metadata": "m"}), "metadata"),
        (json!({"content": "x", "parent_id": 999}), "parent_id"),
        (json!({"content": "x", "node": "a b"}), "node"),
        (json!({"content": "x", "bogus": 1}), "bogus"),
    ] {
        let r = w.post_json("/api/assigner/send", &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.json["field"], field, "{body}: {}", r.body);
    }
    assert_eq!(w.get("/api/assigner/prompts/999").await.status, 404);
    assert_eq!(w.get("/api/assigner/prompts/x").await.status, 400);
    assert_eq!(w.get("/api/assigner/prompts?status=nope").await.status, 422);
    assert_eq!(w.get("/api/assigner/prompts?limit=0").await.status, 422);
    let r = w
        .post_json("/api/assigner/clear", &json!({"days": -1}))
        .await;
    assert_eq!(r.status, 422);

    // Reads need Read; changes need write or an agent token.
    assert_eq!(t.anon().get("/api/assigner/status").await.status, 401);
    let ro = t.token("read").await;
    assert_eq!(ro.get("/api/assigner/prompts").await.status, 200);
    assert_eq!(
        ro.post_json("/api/assigner/send", &json!({"content": "x"}))
            .await
            .status,
        403
    );
    // A node agent's token does not queue (a session's own token may: tests/integration/
    // trust.rs).
    let agent = t.token("agent").await;
    assert_eq!(
        agent
            .post_json("/api/assigner/send", &json!({"content": "x"}))
            .await
            .status,
        403
    );
    assert_eq!(
        t.token("admin")
            .await
            .post_json("/api/assigner/send", &json!({"content": "x"}))
            .await
            .status,
        201
    );
    t.stop().await;
}

// ---------------------------------------------------------------------------------------------
// permission prompts
// ---------------------------------------------------------------------------------------------

/// Waits for an interaction newer than `after` with `status`.
pub async fn wait_interaction(s: &Session, status: &str, after: i64) -> Value {
    until(&format!("an interaction {status}"), || async {
        let r = s
            .get(&format!("/api/claude/interactions?status={status}"))
            .await;
        r.json
            .as_array()
            .and_then(|a| a.first().cloned())
            .filter(|i| i["id"].as_i64().unwrap() > after)
    })
    .await
}

pub async fn ask_permission(w: &Session, session: &str) {
    let r = w
        .post_json(
            "/api/tmux/send",
            &json!({"session": session, "text": "PERMIT please"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn permission_prompts_are_recorded_and_decided_by_patterns() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (_log, _gate, env) = fake_env(dir.path());
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "w1", with(json!({"role": "worker"}), &env)).await;

    // No pattern: the prompt is recorded and waits for a person.
    ask_permission(&w, "w1").await;
    wait_state(&w, "w1", "waiting_for_permission").await;
    w.post_json("/api/tmux/sessions/refresh", &json!({})).await;
    let i = wait_interaction(&w, "pending", 0).await;
    assert_eq!(
        (i["tool"].as_str(), i["agent"].as_str()),
        (Some("Bash"), Some("claude"))
    );
    assert_eq!(i["command"], "echo hi > /tmp/fake-agent-x.txt");
    assert!(i["prompt_text"]
        .as_str()
        .unwrap()
        .contains("Do you want to proceed?"));
    let id = i["id"].as_i64().unwrap();
    let r = w
        .post_json(
            &format!("/api/claude/interactions/{id}/handle"),
            &json!({"action": "approve"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["status"].as_str()),
        (200, Some("approved")),
        "{}",
        r.body
    );
    assert_eq!(r.json["decision_by"], "user:architect");
    until("the approved command", || async {
        capture(&w, "w1").await["output"]
            .as_str()
            .unwrap()
            .contains("Ran 1 shell command")
            .then_some(())
    })
    .await;
    let r = w
        .post_json(
            &format!("/api/claude/interactions/{id}/handle"),
            &json!({"action": "deny"}),
        )
        .await;
    assert_eq!(r.status, 409, "already decided: {}", r.body);

    // An approve pattern answers with Claude's key ('1').
    let r = w
        .post_json(
            "/api/claude/patterns",
            &json!({"name": "echo ok", "tool_regex": "Bash", "subject_regex": "^echo hi ", "decision": "approve"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let approve_id = r.json["id"].as_i64().unwrap();
    wait_state(&w, "w1", "idle").await;
    ask_permission(&w, "w1").await;
    let i = wait_interaction(&w, "approved", id).await;
    assert_eq!(i["decision_by"], format!("pattern:{approve_id}"));

    // Deny beats approve: Escape.
    let r = w
        .post_json(
            "/api/claude/patterns",
            &json!({"name": "no tmp writes", "tool_regex": "Bash", "subject_regex": "/tmp/", "decision": "deny"}),
        )
        .await;
    let deny_id = r.json["id"].as_i64().unwrap();
    wait_state(&w, "w1", "idle").await;
    ask_permission(&w, "w1").await;
    let i = wait_interaction(&w, "denied", id).await;
    assert_eq!(i["decision_by"], format!("pattern:{deny_id}"));
    until("the denial on screen", || async {
        capture(&w, "w1").await["output"]
            .as_str()
            .unwrap()
            .contains("Did not run 1 call")
            .then_some(())
    })
    .await;
    let audit = w.get("/api/claude/audit").await;
    let decisions: Vec<&str> = audit
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["decision"].as_str().unwrap())
        .collect();
    assert!(
        decisions.contains(&"deny") && decisions.contains(&"approve") && decisions.contains(&"ask"),
        "{decisions:?}"
    );

    // Dry run: what would happen, audited as such, nothing pressed.
    let r = w
        .post_json(
            "/api/claude/patterns/dry-run",
            &json!({"tool": "Bash", "subject": "git push --force", "session": "w1",
                    "candidate": {"name": "all", "tool_regex": ".*", "decision": "approve"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["verdict"]["outcome"], "ask");
    assert_eq!(r.json["guard"], "force_push");
    let audit = w.get("/api/claude/audit?limit=1").await;
    assert_eq!(audit.json[0]["dry_run"], 1);

    // Bad input and auth.
    for (body, field) in [
        (
            json!({"name": "x", "tool_regex": "(", "decision": "approve"}),
            "tool_regex",
        ),
        (
            json!({"name": "x", "tool_regex": "Bash", "subject_regex": "[", "decision": "approve"}),
            "subject_regex",
        ),
        (
            json!({"name": "x", "tool_regex": "Bash", "decision": "maybe"}),
            "decision",
        ),
        (
            json!({"name": "x", "tool_regex": "Bash", "decision": "deny", "override_guard": true}),
            "override_guard",
        ),
        (
            json!({"name": "x", "tool_regex": "Bash", "decision": "approve", "role_scope": "boss"}),
            "role_scope",
        ),
        (
            json!({"name": "", "tool_regex": "Bash", "decision": "approve"}),
            "name",
        ),
    ] {
        let r = w.post_json("/api/claude/patterns", &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.json["field"], field, "{body}: {}", r.body);
    }
    let r = w
        .post_json(
            &format!("/api/claude/interactions/{id}/handle"),
            &json!({"action": "maybe"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(w.get("/api/claude/interactions/999").await.status, 404);
    assert_eq!(
        w.get("/api/claude/interactions?status=odd").await.status,
        422
    );
    assert_eq!(w.delete("/api/claude/patterns/999").await.status, 404);
    let ro = t.token("read").await;
    assert_eq!(ro.get("/api/claude/patterns").await.status, 200);
    let r = ro
        .post_json(
            "/api/claude/patterns",
            &json!({"name": "x", "tool_regex": "B", "decision": "approve"}),
        )
        .await;
    assert_eq!(r.status, 403);
    t.stop().await;
}

// ---------------------------------------------------------------------------------------------
// the real Claude Code 2.1.332 and Codex 0.169.0 CLIs against mock_llm.py
// ---------------------------------------------------------------------------------------------

/// A server on the private tmux server `tmux` whose LLM gateway has one provider, Claude,
/// answered by `mock` (the real agent CLIs' tests point their sessions at it).
pub async fn gateway_server(tmux: &PrivateTmux, mock: &MockLlm) -> TestServer {
    let socket = tmux.socket.clone();
    let mock_url = format!("http://127.0.0.1:{}", mock.port);
    TestServer::start_with(move |c| {
        c.agents.tmux_socket = Some(socket);
        c.worker_bin = Some(PathBuf::from(BIN));
        c.llm = architect::llm::LlmConfig {
            chain: "claude".into(),
            default_provider: "claude".into(),
            anthropic_api_key: Some("sk-gateway-provider-key".into()),
            anthropic_base_url: mock_url,
            ..architect::llm::LlmConfig::default()
        };
    })
    .await
}

pub async fn real_server(tmux: &PrivateTmux) -> TestServer {
    let socket = tmux.socket.clone();
    TestServer::start_with(move |c| {
        c.agents.tmux_socket = Some(socket);
        // Hooks run this binary (the test binary is not architect).
        c.worker_bin = Some(PathBuf::from(BIN));
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn real_claude_code_prompts_complete_by_hook_and_permissions_follow_patterns() {
    let Some(cli) = RealCli::start("claude").await else {
        return;
    };
    let (tmux, work, work_s) = (&cli.tmux, &cli.work, cli.work_s());
    let launcher = cli.direct_launcher();
    let t = real_server(tmux).await;
    let w = t.token("admin").await;
    let r = w
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "claude", "agent": "claude", "cwd": work_s, "no_gateway": true,
                    "program": launcher.display().to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    until("Claude Code's idle prompt", || async {
        let c = capture(&w, "claude").await;
        (c["classification"]["state"] == "idle" && c["classification"]["input"] == "empty")
            .then_some(())
    })
    .await;

    // A prompt: dispatched, accepted, completed on the Stop hook, answer stored.
    let id = send_prompt(&w, json!({"content": "say hello"})).await;
    let p = wait_prompt(&w, id, "completed").await;
    assert!(
        p["response"]
            .as_str()
            .unwrap()
            .contains("Hello from the mock LLM"),
        "{p}"
    );
    let s = w.get("/api/agents/sessions/claude").await;
    let signals: Vec<&str> = s.json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["signal"].as_str().unwrap())
        .collect();
    assert!(
        signals.contains(&"hook:UserPromptSubmit") && signals.contains(&"hook:Stop"),
        "{signals:?}"
    );
    assert!(
        s.json["session"]["transcript_path"].is_string(),
        "{}",
        s.body
    );

    // Approved by a pattern, in the pre-tool-use hook: the command runs, no prompt is shown.
    let r = w
        .post_json("/api/claude/patterns", &json!({"name": "echo", "tool_regex": "Bash", "subject_regex": "^echo hi", "decision": "approve"}))
        .await;
    let approve = r.json["id"].as_i64().unwrap();
    let id = send_prompt(&w, json!({"content": "RUNBASH please"})).await;
    let p = wait_prompt(&w, id, "completed").await;
    assert!(work.join("x.txt").exists(), "the approved command ran: {p}");
    let i = wait_interaction(&w, "approved", 0).await;
    assert_eq!(
        (i["source"].as_str(), i["decision_by"].clone()),
        (Some("hook"), json!(format!("pattern:{approve}")))
    );

    // Denied by a pattern (deny beats approve): recorded, the command does not run.
    std::fs::remove_file(work.join("x.txt")).unwrap();
    let r = w
        .post_json("/api/claude/patterns", &json!({"name": "no x", "tool_regex": "Bash", "subject_regex": "x\\.txt", "decision": "deny"}))
        .await;
    let deny = r.json["id"].as_i64().unwrap();
    let id = send_prompt(&w, json!({"content": "RUNBASH again"})).await;
    wait_prompt(&w, id, "completed").await;
    let i = wait_interaction(&w, "denied", 0).await;
    assert_eq!(i["decision_by"], format!("pattern:{deny}"));
    assert!(!work.join("x.txt").exists());
    t.stop().await;
}

/// `session start --agent claude` with no provider settings at all: Claude Code talks to
/// architect's gateway (ANTHROPIC_BASE_URL, the session's token), whose only provider is
/// mock_llm.py; the mock sees the gateway's key, never the session's token, and the ledger
/// holds the turn under the session's token.
#[tokio::test(flavor = "multi_thread")]
async fn real_claude_code_started_by_session_start_goes_through_the_gateway() {
    let Some(cli) = RealCli::start("claude").await else {
        return;
    };
    let (tmux, work_s) = (&cli.tmux, cli.work_s());
    let t = gateway_server(tmux, &cli.mock).await;
    let w = t.token("admin").await;
    let r = w
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "gw", "agent": "claude", "cwd": work_s,
                    "program": cli.bin.display().to_string(), "env": cli.session_env()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["gateway"], true, "{}", r.body);
    // The token is in the session's environment, never on its command line.
    let token = session_env(tmux, "gw", "ANTHROPIC_AUTH_TOKEN");
    assert!(!token.is_empty());
    assert!(!r.body.contains(&token));
    assert_eq!(session_env(tmux, "gw", "ANTHROPIC_BASE_URL"), t.url);
    assert_eq!(session_env(tmux, "gw", "ARCHITECT_TOKEN"), token);
    until("Claude Code's idle prompt", || async {
        let c = capture(&w, "gw").await;
        (c["classification"]["state"] == "idle" && c["classification"]["input"] == "empty")
            .then_some(())
    })
    .await;
    let id = send_prompt(&w, json!({"content": "say hello"})).await;
    let p = wait_prompt(&w, id, "completed").await;
    assert!(
        p["response"]
            .as_str()
            .unwrap()
            .contains("Hello from the mock LLM"),
        "{p}"
    );
    let log = cli.mock.requests();
    let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(
        first["path"].as_str().unwrap().starts_with("/v1/messages"),
        "{first}"
    );
    assert!(
        log.contains("sk-gateway-provider-key") && !log.contains(&token),
        "the mock sees the gateway's provider key, not the session's token: {log}"
    );
    let costs = w.get("/api/llm-metrics/costs?by=caller").await;
    assert_eq!(costs.status, 200, "{}", costs.body);
    let summary = w.get("/api/llm-metrics/summary").await;
    assert!(
        summary.json["total_requests"].as_i64().unwrap() >= 1,
        "the turn is in the gateway's ledger: {}",
        summary.body
    );
    // Killing the session revokes its token: the gateway refuses it from then on.
    let r = w
        .post_json("/api/tmux/kill", &json!({"session": "gw"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = t
        .anon()
        .send(
            t.anon()
                .http
                .post(format!("{}/v1/messages", t.url))
                .header("x-api-key", &token)
                .json(&json!({"model": "m", "max_tokens": 5,
                              "messages": [{"role": "user", "content": "hi"}]})),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.body);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_codex_prompts_complete_and_approvals_use_codex_keys() {
    let Some(cli) = RealCli::start("codex").await else {
        return;
    };
    let (tmux, work, work_s) = (&cli.tmux, &cli.work, cli.work_s());
    let launcher = cli.direct_launcher();
    let t = real_server(tmux).await;
    let w = t.token("admin").await;
    let r = w
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "codex", "agent": "codex", "cwd": work_s, "no_gateway": true,
                    "program": launcher.display().to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json["command"]
        .as_array()
        .unwrap()
        .contains(&json!("--no-daemon")));
    until("Codex's idle prompt", || async {
        let c = capture(&w, "codex").await;
        (c["classification"]["agent"] == "codex"
            && c["classification"]["state"] == "idle"
            && c["classification"]["input"] == "empty")
            .then_some(())
    })
    .await;

    let id = send_prompt(&w, json!({"content": "say hello"})).await;
    let p = wait_prompt(&w, id, "completed").await;
    assert!(
        p["response"]
            .as_str()
            .unwrap()
            .contains("Hello from the mock LLM"),
        "{p}"
    );

    // Approved by a pattern on the pane: 'y'.
    let r = w
        .post_json("/api/claude/patterns", &json!({"name": "echo", "tool_regex": "exec", "subject_regex": "^echo hi", "decision": "approve"}))
        .await;
    let approve = r.json["id"].as_i64().unwrap();
    let id = send_prompt(&w, json!({"content": "RUNBASH please"})).await;
    let i = wait_interaction(&w, "approved", 0).await;
    assert_eq!(i["decision_by"], format!("pattern:{approve}"));
    wait_prompt(&w, id, "completed").await;
    assert!(work.join("x.txt").exists());

    // Denied by a pattern: Escape; the denial is recorded.
    let r = w
        .post_json("/api/claude/patterns", &json!({"name": "no x", "tool_regex": "exec", "subject_regex": "x\\.txt", "decision": "deny"}))
        .await;
    let deny = r.json["id"].as_i64().unwrap();
    let id = send_prompt(&w, json!({"content": "RUNBASH again"})).await;
    let i = wait_interaction(&w, "denied", 0).await;
    assert_eq!(i["decision_by"], format!("pattern:{deny}"));
    wait_prompt(&w, id, "completed").await;
    until("Codex to show the cancelled run", || async {
        capture(&w, "codex").await["output"]
            .as_str()
            .unwrap()
            .contains("You canceled the request")
            .then_some(())
    })
    .await;
    t.stop().await;
}

/// The real Gemini CLI 0.61.0 against mock_llm.py's Gemini API (recipe:
/// tests/fixtures/agents/README.md): the classifier follows it idle → busy → idle →
/// waiting_for_permission → idle, from the screen alone.
#[tokio::test(flavor = "multi_thread")]
async fn real_gemini_cli_is_classified_idle_busy_and_waiting_for_permission() {
    let Some(cli) = RealCli::start("gemini").await else {
        return;
    };
    let (tmux, work) = (&cli.tmux, &cli.work);
    let launcher = cli.direct_launcher();
    let t = real_server(tmux).await;
    let w = t.token("admin").await;
    let r = w
        .post_json(
            "/api/tmux/create",
            &json!({"name": "gemini", "command": [launcher.display().to_string()],
                    "width": 120, "height": 40}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let state = |want: &'static str, input: Option<&'static str>| {
        let w = &w;
        async move {
            until(&format!("Gemini CLI to be {want}"), || async {
                let c = capture(w, "gemini").await;
                let k = &c["classification"];
                (k["agent"] == "gemini"
                    && k["state"] == want
                    && input.is_none_or(|i| k["input"] == i))
                .then_some(c)
            })
            .await
        }
    };
    // Typed text, then a separate Enter once Gemini shows the text, after a pause (README
    // pitfall: an Enter sent at once was once dropped; on a loaded machine Gemini can read the
    // text and the Enter in one go, as a paste whose Enter is a newline).
    let prompt = |text: &'static str| {
        let state = &state;
        async move {
            tmux.run(&["send-keys", "-t", "gemini", "-l", text]);
            state("idle", Some("has_text")).await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            tmux.run(&["send-keys", "-t", "gemini", "Enter"]);
        }
    };
    state("idle", Some("empty")).await;
    tmux.run(&["send-keys", "-t", "gemini", "-l", "half a thought"]);
    state("idle", Some("has_text")).await;
    tmux.run(&["send-keys", "-t", "gemini", "C-u"]);
    state("idle", Some("empty")).await;

    // SLOW: the mock holds the answer 5 s.
    prompt("SLOW please").await;
    state("busy", None).await;
    let c = state("idle", Some("empty")).await;
    assert!(
        c["output"]
            .as_str()
            .unwrap()
            .contains("delayed by the mock"),
        "{c}"
    );

    // RUNBASH: a run_shell_command call, which Gemini asks about; `1` allows it once.
    prompt("RUNBASH please").await;
    let c = state("waiting_for_permission", None).await;
    assert!(
        c["output"].as_str().unwrap().contains("Allow execution of"),
        "{c}"
    );
    assert!(!work.join("x.txt").exists());
    tmux.run(&["send-keys", "-t", "gemini", "1"]);
    let c = state("idle", Some("empty")).await;
    assert!(work.join("x.txt").exists(), "{c}");
    let log = cli.mock.requests();
    assert!(log.contains(":streamGenerateContent?alt=sse"), "{log}");
    t.stop().await;
}

/// `session start --agent codex` with no provider of its own: Codex's provider becomes the
/// gateway's `/v1/responses` (its token from ARCHITECT_TOKEN), which serves the turn from the
/// gateway's chain (here mock_llm.py's Anthropic Messages) and streams it back as Responses
/// events.
#[tokio::test(flavor = "multi_thread")]
async fn real_codex_started_by_session_start_goes_through_the_gateway() {
    let Some(cli) = RealCli::start("codex").await else {
        return;
    };
    let (tmux, work_s) = (&cli.tmux, cli.work_s());
    let t = gateway_server(tmux, &cli.mock).await;
    let w = t.token("admin").await;
    let r = w
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "cx", "agent": "codex", "cwd": work_s,
                    "program": cli.bin.display().to_string(), "env": cli.session_env()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["gateway"], true, "{}", r.body);
    let token = session_env(tmux, "cx", "ARCHITECT_TOKEN");
    assert!(!token.is_empty() && !r.body.contains(&token));
    until("Codex's idle prompt", || async {
        let c = capture(&w, "cx").await;
        (c["classification"]["agent"] == "codex"
            && c["classification"]["state"] == "idle"
            && c["classification"]["input"] == "empty")
            .then_some(())
    })
    .await;
    let id = send_prompt(&w, json!({"content": "say hello"})).await;
    let p = wait_prompt(&w, id, "completed").await;
    assert!(
        p["response"]
            .as_str()
            .unwrap()
            .contains("Hello from the mock LLM"),
        "{p}"
    );
    let log = cli.mock.requests();
    assert!(
        log.lines().all(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["path"].as_str().unwrap().starts_with("/v1/messages")
        }),
        "every request reached the mock as Anthropic Messages through the gateway: {log}"
    );
    assert!(!log.contains(&token));
    let summary = w.get("/api/llm-metrics/summary").await;
    assert!(
        summary.json["total_requests"].as_i64().unwrap() >= 1,
        "{}",
        summary.body
    );
    t.stop().await;
}

/// `session start --agent chat` runs `architect chat --worker --session NAME`, which reaches the
/// gateway with the session's URL and token, and shows its ready marker.
#[tokio::test(flavor = "multi_thread")]
async fn session_start_runs_a_chat_worker_named_after_its_session() {
    let tmux = PrivateTmux::new();
    let t = real_server(&tmux).await;
    let w = t.token("admin").await;
    let r = w
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "ch", "agent": "chat", "cwd": "/tmp"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["gateway"], true);
    assert_eq!(
        r.json["command"].as_array().unwrap()[1..],
        [
            json!("chat"),
            json!("--worker"),
            json!("--session"),
            json!("ch")
        ]
    );
    assert_eq!(session_env(&tmux, "ch", "ARCHITECT_URL"), t.url);
    until("the chat worker's ready marker", || async {
        capture(&w, "ch").await["output"]
            .as_str()?
            .contains("ARCHITECT-CHAT READY session=ch")
            .then_some(())
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn assigner_and_terminal_cli() {
    let tmux = PrivateTmux::new();
    tmux.idle_sessions(&["dev", "other"]);
    let socket = tmux.socket.clone();
    let t = TestServer::start_with(move |c| {
        c.agents.assigner = false;
        c.agents.tmux_socket = Some(socket);
    })
    .await;
    let w = t.token("admin").await;
    let token = w.token.clone().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .env("ARCHITECT_URL", &t.url)
            .env("ARCHITECT_TOKEN", &token)
            .env_remove("ARCHITECT_SESSION")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run(&[
        "assigner",
        "--send",
        "Fix the bug in login.py",
        "--priority",
        "5",
        "--target",
        "dev",
        "--timeout",
        "60",
    ]);
    assert!(ok && out.contains("queued prompt 1"), "{out}");
    let (ok, out) = run(&["terminal", "--send", "Refactor the API"]);
    assert!(ok && out.contains("queued prompt 2"), "{out}");
    let (ok, out) = run(&["assigner", "--prompts", "--json"]);
    let ps: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}"));
    assert!(ok);
    let first = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == 1)
        .unwrap();
    assert_eq!(
        (
            first["priority"].as_i64(),
            first["target_session"].as_str(),
            first["timeout_minutes"].as_i64()
        ),
        (Some(5), Some("dev"), Some(60))
    );
    let (ok, out) = run(&["assigner", "--cancel", "1"]);
    assert!(ok && out.contains("prompt 1 is now cancelled"), "{out}");
    let (ok, out) = run(&["assigner", "--reassign", "1", "--to", "other"]);
    assert!(ok && out.contains("pending"), "{out}");
    let (ok, out) = run(&["assigner", "--status"]);
    assert!(ok && out.contains("pending 2"), "{out}");
    let (ok, out) = run(&["terminal", "--status"]);
    assert!(ok && out.contains("queue: pending 2"), "{out}");
    let (ok, out) = run(&["assigner", "--send", "x", "--priority", "11"]);
    assert!(!ok && out.contains("priority"), "{out}");
    let (ok, out) = run(&["assigner", "--daemon"]);
    assert!(ok && out.contains("inside `architect serve`"), "{out}");
    let (ok, out) = run(&["assigner", "--retry", "1", "--cancel", "2"]);
    assert!(!ok && out.contains("cannot be used with"), "{out}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tmux_and_assigner_panels() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (_log, _gate, env) = fake_env(dir.path());
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "w1", with(json!({"role": "worker"}), &env)).await;
    let admin = t.admin().await;

    let page = admin.get("/tmux").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("href=\"/tmux/view/w1\"") && page.body.contains("tmux-idle"),
        "{}",
        page.body
    );
    let r = admin
        .post_form(
            "/tmux/send",
            &[("session", "w1"), ("text", "from the panel")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    until("the panel's text", || async {
        capture(&w, "w1").await["output"]
            .as_str()
            .unwrap()
            .contains("answer: from the panel")
            .then_some(())
    })
    .await;
    let r = admin
        .post_form("/tmux/send", &[("session", "a b"), ("text", "x")])
        .await;
    assert!(
        r.headers["location"].to_str().unwrap().contains("error="),
        "{:?}",
        r.headers
    );

    // The live pane view: the page, and a server-sent `pane` event with the screen.
    let page = admin.get("/tmux/view/w1").await;
    assert!(
        page.status == 200 && page.body.contains("answer: from the panel"),
        "{}",
        page.body
    );
    let resp = admin
        .request(reqwest::Method::GET, "/tmux/view/w1/stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut resp = resp;
    let first = tokio::time::timeout(DEADLINE, resp.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.starts_with("event: pane") && text.contains("manual mode on"),
        "{text}"
    );
    drop(resp);

    let r = admin
        .post_form(
            "/assigner/send",
            &[
                ("content", "panel prompt"),
                ("target_session", "w1"),
                ("priority", "3"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    until("the panel prompt to complete", || async {
        let r = w.get("/api/assigner/prompts?status=completed").await;
        r.json
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["content"] == "panel prompt")
            .then_some(())
    })
    .await;
    let page = admin.get("/assigner").await;
    assert!(
        page.status == 200
            && page.body.contains("panel prompt")
            && page.body.contains("ag-completed"),
        "{}",
        page.body
    );
    let page = admin.get("/assigner?status=failed").await;
    assert!(page.status == 200 && !page.body.contains("panel prompt"));

    // Viewers read the panels but get no forms; anonymous visitors are sent to log in.
    let viewer = t.user("viewer1", "viewer").await;
    let page = viewer.get("/assigner").await;
    assert!(page.status == 200 && !page.body.contains("/assigner/send"));
    let r = viewer.post_form("/tmux/kill", &[("session", "w1")]).await;
    assert_eq!(r.status, 403);
    assert_eq!(t.anon().get("/tmux").await.status, 303);
    t.stop().await;
}
