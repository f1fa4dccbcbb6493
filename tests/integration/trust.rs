//! Trust boundaries of agent sessions (issue 12): a session's own token acts for that session
//! only, an explicit prompt target must be an agent, and typing into a shell, creating tmux
//! sessions or launching arbitrary programs is for admins. Real tmux, real server.

use crate::agents::{create_fake, fixtures, server, session_env, wait_state, PrivateTmux};
use crate::support::{until, Session, TestServer};
use serde_json::json;

/// Launches a Claude-like session (the fake agent behind `--settings`) as the admin and
/// returns a client holding that session's own token.
async fn launched(t: &TestServer, tmux: &PrivateTmux, admin: &Session, name: &str) -> Session {
    let fake = fixtures().join("fake_agent.py").display().to_string();
    let r = admin
        .post_json(
            "/api/agents/sessions",
            &json!({"name": name, "agent": "claude", "program": fake}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = until("the session's token in its environment", || async {
        Some(session_env(tmux, name, "ARCHITECT_TOKEN")).filter(|t| t.starts_with("arch_"))
    })
    .await;
    Session::new(&t.url, Some(token))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_token_acts_for_its_own_session_only() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let admin = t.admin().await;
    let one = launched(&t, &tmux, &admin, "trust-one").await;
    let _two = launched(&t, &tmux, &admin, "trust-two").await;

    // The token is in the agent's environment only: in no process's command line (the tmux
    // server's included), not in tmux's environment, not left in a file.
    let token = one.token.clone().unwrap();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(&token),
                "the token is in the command line of pid {:?}: {}",
                entry.file_name(),
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            );
        }
    }
    assert!(!tmux.run(&["show-environment", "-g"]).contains(&token));
    assert!(!tmux
        .run(&["show-environment", "-t", "=trust-one"])
        .contains(&token));
    let session_dir = t.data_dir.join("agents/trust-one");
    until("the environment file to be deleted", || async {
        let left = std::fs::read_dir(&session_dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("env-"));
        (!left).then_some(())
    })
    .await;
    create_fake(&admin, "plain-agent", json!({})).await;
    wait_state(&admin, "plain-agent", "idle").await;
    let r = admin
        .post_json(
            "/api/tmux/create",
            &json!({"name": "plain-bash", "command": ["bash"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Its own pane: yes. Another session's pane: no.
    let r = one
        .post_json("/api/tmux/capture", &json!({"session": "trust-one"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = one
        .post_json("/api/tmux/capture", &json!({"session": "trust-two"}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Hook reports: for itself only; no ghost sessions.
    let r = one
        .post_json(
            "/api/agents/hooks/stop",
            &json!({"session": "trust-one", "payload": {}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for other in ["trust-two", "ghost"] {
        let r = one
            .post_json(
                "/api/agents/hooks/user-prompt-submit",
                &json!({"session": other, "payload": {"transcript_path": "/etc/shadow"}}),
            )
            .await;
        assert_eq!(r.status, 403, "{other}: {}", r.body);
    }
    let r = admin.get("/api/agents/sessions/ghost").await;
    assert_eq!(r.status, 404, "no ghost session was created: {}", r.body);
    let r = admin.get("/api/agents/sessions/trust-two").await;
    assert_ne!(r.json["session"]["transcript_path"], "/etc/shadow");

    // Queueing: an explicit target must be an agent session.
    let r = one
        .post_json(
            "/api/assigner/send",
            &json!({"content": "echo pwned", "target_session": "plain-bash"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json["field"], "target_session");
    let r = one
        .post_json(
            "/api/assigner/send",
            &json!({"content": "delegated", "target_session": "trust-two"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mine = r.json["prompt_id"].as_i64().unwrap();

    // It changes only the prompts it queued, and never the whole queue.
    let r = admin
        .post_json("/api/assigner/send", &json!({"content": "the admin's"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let theirs = r.json["prompt_id"].as_i64().unwrap();
    let r = one.delete(&format!("/api/assigner/prompts/{theirs}")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = one
        .post_json(&format!("/api/assigner/prompts/{theirs}/retry"), &json!({}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    for path in ["/api/assigner/retry-all", "/api/assigner/clear"] {
        let r = one.post_json(path, &json!({})).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let r = one.delete(&format!("/api/assigner/prompts/{mine}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let p = admin.get(&format!("/api/assigner/prompts/{theirs}")).await;
    assert_eq!(p.json["status"], "pending", "{}", p.body);

    // Nothing of a node agent's or a person's.
    for (path, body) in [
        ("/api/nodes", json!({"name": "evil"})),
        (
            "/api/tmux/send",
            json!({"session": "trust-two", "text": "x"}),
        ),
        ("/api/tmux/kill", json!({"session": "trust-two"})),
        ("/api/projects", json!({"name": "x"})),
    ] {
        let r = one.post_json(path, &body).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_tokens_and_members_cannot_reach_a_shell() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let admin = t.admin().await;
    create_fake(&admin, "plain-agent", json!({})).await;
    wait_state(&admin, "plain-agent", "idle").await;
    let marker = t.data_dir.join("typed-into-bash");
    let r = admin
        .post_json(
            "/api/tmux/create",
            &json!({"name": "plain-bash", "command": ["bash", "--norc"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let evil = format!("touch '{}'", marker.display());

    // A node agent's token queues nothing, and reports no hooks.
    let agent = t.token("agent").await;
    let r = agent
        .post_json(
            "/api/assigner/send",
            &json!({"content": evil, "target_session": "plain-bash"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = agent
        .post_json(
            "/api/agents/hooks/stop",
            &json!({"session": "plain-agent", "payload": {}}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // A member: agents yes, shells no.
    let member = t.user("trust-member", "member").await;
    let r = member
        .post_json(
            "/api/assigner/send",
            &json!({"content": evil, "target_session": "plain-bash"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = member
        .post_json(
            "/api/tmux/send",
            &json!({"session": "plain-bash", "text": evil}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = member
        .post_json(
            "/api/tmux/send",
            &json!({"session": "plain-agent", "text": "hello"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = member
        .post_json(
            "/api/tmux/create",
            &json!({"name": "mine", "command": ["sh", "-c", evil]}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    for extra in [
        json!({"agent": "shell"}),
        json!({"agent": "claude", "program": "/bin/sh"}),
        json!({"agent": "claude", "args": ["--settings", "/tmp/evil.json"]}),
        json!({"agent": "codex", "env": {"NODE_OPTIONS": "--require /tmp/x.js"}}),
    ] {
        let mut body = json!({"name": "m-session"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = member.post_json("/api/agents/sessions", &body).await;
        assert_eq!(r.status, 403, "{extra}: {}", r.body);
    }
    assert!(!marker.exists(), "nothing ran in the shell");

    // An admin may, and the prompt says who allowed it.
    let r = admin
        .post_json(
            "/api/assigner/send",
            &json!({"content": "true", "target_session": "plain-bash",
                    "metadata": {"to_shell": false}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let p = admin
        .get(&format!("/api/assigner/prompts/{}", r.json["prompt_id"]))
        .await;
    assert_eq!(p.json["metadata"]["to_shell"], true, "{}", p.body);
    // A member cannot forge the mark.
    let r = member
        .post_json(
            "/api/assigner/send",
            &json!({"content": "x", "metadata": {"to_shell": true}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let p = admin
        .get(&format!("/api/assigner/prompts/{}", r.json["prompt_id"]))
        .await;
    assert!(p.json["metadata"].get("to_shell").is_none(), "{}", p.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn session_start_refuses_a_missing_program_or_directory_before_anything_runs() {
    let tmux = PrivateTmux::new();
    let t = server(&tmux).await;
    let admin = t.admin().await;
    for (body, field) in [
        (
            json!({"name": "ghost-bin", "agent": "claude", "program": "/nonexistent/claude"}),
            "program",
        ),
        (
            json!({"name": "ghost-bin", "agent": "codex", "program": "no-such-agent-binary"}),
            "program",
        ),
        (
            json!({"name": "ghost-dir", "agent": "shell", "cwd": "/nonexistent/dir"}),
            "cwd",
        ),
    ] {
        let r = admin.post_json("/api/agents/sessions", &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.json["field"], field, "{}", r.body);
    }
    assert!(
        !tmux
            .run(&["list-sessions", "-F", "#{session_name}"])
            .contains("ghost"),
        "no session was started"
    );
    // The tokens minted for the attempts were revoked with them.
    let tokens = admin.get("/api/tokens").await;
    let minted: Vec<_> = tokens
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| {
            k["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("session ghost")
        })
        .collect();
    assert_eq!(minted.len(), 3, "{}", tokens.body);
    assert!(
        minted.iter().all(|k| k["status"] == "revoked"),
        "{}",
        tokens.body
    );
}

/// A task that carries its own program (shell, python, git, tmux), a project command given an
/// environment of its own, or suite variables, runs code of its creator's choosing on a worker:
/// creating one needs `Exec`, through the API, the Tasks form and a confirmed suggestion
/// alike. Tasks that run what an admin chose (the project's commands) stay open to `Write`.
#[tokio::test(flavor = "multi_thread")]
async fn members_cannot_queue_code_of_their_choosing_for_workers() {
    let t = TestServer::start().await;
    let admin = t.admin().await;
    let member = t.user("task-member", "member").await;
    let r = admin
        .post_json(
            "/api/projects",
            &json!({"name": "tp", "source_path": "/tmp"}),
        )
        .await;
    let pid = r.json["id"].as_i64().unwrap();
    for body in [
        json!({"type": "shell", "payload": {"command": "id"}}),
        json!({"type": "python", "payload": {"code": "print(1)"}}),
        json!({"type": "git", "payload": {"op": "pull", "path": "/tmp"}}),
        json!({"type": "test", "project_id": pid, "payload": {"env": {"BASH_ENV": "/tmp/x"}}}),
        json!({"type": "test_suite", "payload": {"suite_id": 1, "vars": {"a": "b"}}}),
    ] {
        let r = member.post_json("/api/tasks", &body).await;
        assert_eq!(r.status, 403, "{body}: {}", r.body);
        assert!(r.body.contains("exec capability"), "{}", r.body);
    }
    // The project's own command, as an admin set it: a member may queue it.
    let r = member
        .post_json("/api/tasks", &json!({"type": "test", "project_id": pid}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // An admin may queue code.
    let r = admin
        .post_json(
            "/api/tasks",
            &json!({"type": "shell", "payload": {"command": "id"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Nothing was queued by the refusals: the two accepted tasks only.
    let all = admin.get("/api/tasks").await;
    assert_eq!(all.json.as_array().map(Vec::len), Some(2), "{}", all.body);
    // The Tasks form offers a member only the types it may queue; an admin sees them all.
    let page = member.get("/tasks").await;
    assert!(
        page.body.contains(r#"<option value="test""#)
            && !page.body.contains(r#"<option value="shell""#),
        "{}",
        page.body
    );
    assert!(admin
        .get("/tasks")
        .await
        .body
        .contains(r#"<option value="shell""#));
    // Typed by hand anyway, the form says the same as the API, and queues nothing.
    let r = member
        .post_form("/tasks", &[("type", "shell"), ("command", "id")])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("exec capability"), "{}", r.body);
    let all = admin.get("/api/tasks").await;
    assert_eq!(all.json.as_array().map(Vec::len), Some(2), "{}", all.body);
}
