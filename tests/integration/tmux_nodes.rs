//! Every node's sessions on the tmux panel (issue 13, item 3), against real parts: a real
//! `architect agent` process with its own private tmux server, the server's own private tmux
//! server, the node command channel between them, and headless Chromium for the panel.
//!
//! - the session list (`GET /api/tmux/sessions`, `/tmux`) names each session's node and joins
//!   what the registry knows; a node that does not answer is named with why, and does not
//!   keep the others from being listed;
//! - pane pages for a session on another node (`/tmux/view/NAME?node=NODE`): capture, the
//!   live stream, send and kill go to that node; a dead session is a 404 page;
//! - the start form starts an agent session on the chosen node through the launch code, and
//!   a refused start shows the form again as typed.

use crate::agents::PrivateTmux;
use crate::browser::{browser_available, log_in, Browser, Driver};
use crate::nodes::{agent_token, metrics, online, register, AgentProc};
use crate::support::{until, Session, TestServer, DEADLINE};
use serde_json::{json, Value};
use std::path::Path;

/// A server on its own private tmux server, without the in-process local node (so every
/// node in its lists is one a test made).
async fn server(tmux: &PrivateTmux) -> TestServer {
    let sock = tmux.socket.clone();
    TestServer::start_with(move |c| {
        c.nodes.local_node = false;
        c.agents.tmux_socket = Some(sock);
    })
    .await
}

/// A real `architect agent` named `name` on the private tmux server `tmux`, online.
async fn remote_node(
    t: &TestServer,
    admin: &Session,
    tmux: &PrivateTmux,
    name: &str,
    dir: &Path,
) -> AgentProc {
    let token = agent_token(admin, &format!("agent {name}")).await;
    let data = dir.join(format!("{name}-data"));
    let agent = AgentProc::start_with(
        &t.url,
        &token,
        name,
        dir,
        &[
            "--tmux-socket",
            &tmux.socket,
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    online(admin, name).await;
    agent
}

/// A session on `tmux` (set up behind architect's back) that prints `marker` and waits.
fn session_printing(tmux: &PrivateTmux, name: &str, marker: &str) {
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        name,
        "-x",
        "120",
        "-y",
        "30",
        &format!("echo {marker}; exec sleep 600"),
    ]);
    assert!(
        tmux.run(&["list-sessions", "-F", "#{session_name}"])
            .lines()
            .any(|l| l == name),
        "set-up: session {name} on {}",
        tmux.socket
    );
}

/// A bash session on `tmux`, once its prompt shows (keys typed earlier may be dropped).
async fn bash_session(tmux: &PrivateTmux, name: &str) {
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        name,
        "-x",
        "100",
        "-y",
        "20",
        "PS1='ready$ ' bash --norc --noprofile",
    ]);
    until(&format!("the prompt of {name}"), || async {
        tmux.run(&["capture-pane", "-p", "-t", &format!("={name}:")])
            .contains("ready$")
            .then_some(())
    })
    .await;
}

fn lists(tmux: &PrivateTmux, name: &str) -> bool {
    tmux.run(&["list-sessions", "-F", "#{session_name}"])
        .lines()
        .any(|l| l == name)
}

fn has_session(list: &Value, node: &str, name: &str) -> bool {
    list["sessions"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["node"] == node && s["name"] == name))
}

/// A node that is online by its heartbeat but whose agent never polls for commands.
async fn silent_node(t: &TestServer, name: &str) {
    let agent = t.token("agent").await;
    let (status, node) = register(&agent, name, 60).await;
    assert_eq!(status, 201, "{node}");
    let id = node["id"].as_i64().unwrap();
    let hb = agent
        .post_json(&format!("/api/nodes/{id}/heartbeat"), &metrics(1.0))
        .await;
    assert_eq!(hb.status, 200, "{}", hb.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_nodes_sessions_are_listed_with_their_node_and_their_panes_open() {
    let node_tmux = PrivateTmux::new();
    let server_tmux = PrivateTmux::new();
    let t = server(&server_tmux).await;
    let admin = t.admin().await;
    let tmp = tempfile::tempdir().unwrap();
    let _agent = remote_node(&t, &admin, &node_tmux, "it-remote", tmp.path()).await;
    session_printing(&node_tmux, "far-1", "marker-from-the-far-node");
    session_printing(&server_tmux, "near-1", "marker-from-here");

    // The list: both machines' sessions, each with its node.
    let started = std::time::Instant::now();
    let list = admin.get("/api/tmux/sessions").await;
    eprintln!(
        "GET /api/tmux/sessions, one remote node: {:?}",
        started.elapsed()
    );
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        has_session(&list.json, "it-remote", "far-1"),
        "{}",
        list.body
    );
    assert!(has_session(&list.json, "local", "near-1"), "{}", list.body);
    assert_eq!(list.json["errors"], json!([]), "{}", list.body);

    // The pane API captures it through the node.
    let c = admin
        .post_json(
            "/api/tmux/capture",
            &json!({"node": "it-remote", "session": "far-1", "lines": 50}),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.json["node"], "it-remote");
    assert!(
        c.json["output"]
            .as_str()
            .unwrap()
            .contains("marker-from-the-far-node"),
        "{}",
        c.body
    );

    // The panel lists it, linked to its node-qualified pane page; local links stay as they were.
    let started = std::time::Instant::now();
    let page = admin.get("/tmux").await;
    eprintln!("GET /tmux, one remote node: {:?}", started.elapsed());
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("href=\"/tmux/view/far-1?node=it-remote\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("data-node=\"it-remote\" data-session=\"far-1\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("href=\"/tmux/view/near-1\""));
    assert!(page
        .body
        .contains("data-confirm=\"Kill session far-1 on it-remote?"));

    // Its pane page and live stream read the pane on the node.
    let pane = admin.get("/tmux/view/far-1?node=it-remote").await;
    assert_eq!(pane.status, 200, "{}", pane.body);
    assert!(
        pane.body.contains("marker-from-the-far-node"),
        "{}",
        pane.body
    );
    assert!(pane
        .body
        .contains("data-stream=\"/tmux/view/far-1/stream?node=it-remote\""));
    let mut resp = admin
        .request(
            reqwest::Method::GET,
            "/tmux/view/far-1/stream?node=it-remote",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let first = tokio::time::timeout(DEADLINE, resp.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&first);
    assert!(
        text.starts_with("event: pane") && text.contains("marker-from-the-far-node"),
        "{text}"
    );
    drop(resp);

    // The same name on this machine is another session: the local page does not show it.
    let here = admin.get("/tmux/view/far-1").await;
    assert_eq!(here.status, 404, "{}", here.body);

    // A session the node does not have is a 404 page, not JSON; so is an unknown node's.
    for path in [
        "/tmux/view/nope?node=it-remote",
        "/tmux/view/nope/stream?node=no-such-node",
    ] {
        let r = admin.get(path).await;
        assert!(r.status == 404 || r.status == 422, "{path}: {}", r.status);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}: {:?}",
            r.headers
        );
        assert!(r.json.is_null(), "{path}: {}", r.body);
    }
    let r = admin.get("/tmux/view/nope?node=it-remote").await;
    assert_eq!(r.status, 404);
    assert!(
        r.body.contains("nope") && r.body.contains("not found"),
        "{}",
        r.body
    );

    // Send from the pane page goes to the node, and back to the pane page.
    let bash = "bash-1";
    node_tmux.run(&["new-session", "-d", "-s", bash, "bash --norc --noprofile"]);
    let r = admin
        .post_form(
            "/tmux/send",
            &[
                ("node", "it-remote"),
                ("session", bash),
                ("text", "echo typed-$((40+2))"),
                ("from", "pane"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.headers["location"].to_str().unwrap();
    assert!(
        to.starts_with("/tmux/view/bash-1?node=it-remote&notice="),
        "{to}"
    );
    until("the node's pane to show what the panel typed", || async {
        node_tmux
            .run(&["capture-pane", "-p", "-t", "=bash-1:"])
            .contains("typed-42")
            .then_some(())
    })
    .await;

    // The pane page's keys go there too: Up, Enter runs the last command again.
    for key in ["Up", "Enter"] {
        let r = admin
            .post_form(
                "/tmux/send",
                &[
                    ("node", "it-remote"),
                    ("session", bash),
                    ("key", key),
                    ("from", "pane"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let to = r.headers["location"].to_str().unwrap();
        assert!(to.contains("notice=Pressed"), "{to}");
    }
    until("the command to run again", || async {
        (node_tmux
            .run(&["capture-pane", "-p", "-t", "=bash-1:"])
            .lines()
            .filter(|l| l.trim() == "typed-42")
            .count()
            == 2)
            .then_some(())
    })
    .await;
    let r = admin
        .post_form(
            "/tmux/send",
            &[("node", "it-remote"), ("session", bash), ("key", "F13;rm")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.headers["location"].to_str().unwrap().contains("error="));

    // Kill from the panel kills it on the node, not here.
    let r = admin
        .post_form("/tmux/kill", &[("node", "it-remote"), ("session", "far-1")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!lists(&node_tmux, "far-1"));
    assert!(lists(&server_tmux, "near-1"));
    let list = admin.get("/api/tmux/sessions").await;
    assert!(
        !has_session(&list.json, "it-remote", "far-1"),
        "{}",
        list.body
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_does_not_answer_is_named_and_does_not_hold_up_the_others() {
    let server_tmux = PrivateTmux::new();
    let t = server(&server_tmux).await;
    let admin = t.admin().await;
    session_printing(&server_tmux, "near-1", "marker-from-here");
    silent_node(&t, "silent-1").await;
    // A node an admin added whose agent never came.
    let r = admin
        .post_json("/api/nodes", &json!({"name": "never-1"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // The registry knows a session on the silent node (started there earlier).
    architect::agents::store::register_session(
        &t.state().db,
        "silent-1",
        "ghost-1",
        &architect::agents::store::SessionFacts {
            agent: Some("claude".into()),
            launched: true,
            role: Some("worker".into()),
            ..Default::default()
        },
        &t.clock.now_str(),
        None,
    )
    .await
    .unwrap();

    let started = std::time::Instant::now();
    let list = admin.get("/api/tmux/sessions").await;
    eprintln!(
        "GET /api/tmux/sessions with a silent node: {:?}",
        started.elapsed()
    );
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(has_session(&list.json, "local", "near-1"), "{}", list.body);
    let errors = list.json["errors"].as_array().unwrap();
    let why = |node: &str| {
        errors
            .iter()
            .find(|e| e["node"] == node)
            .and_then(|e| e["error"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(why("silent-1").contains("did not answer"), "{}", list.body);
    assert!(why("never-1").contains("waiting"), "{}", list.body);
    let ghost = list.json["known"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "ghost-1")
        .cloned()
        .unwrap_or_default();
    assert_eq!(ghost["node"], "silent-1", "{}", list.body);
    assert_eq!(ghost["agent"], "claude");
    assert_eq!(ghost["role"], "worker");
    assert!(
        ghost["why"].as_str().unwrap().contains("did not answer"),
        "{ghost}"
    );

    // The panel: the local session, the silent node named with why, the known session.
    let started = std::time::Instant::now();
    let page = admin.get("/tmux").await;
    eprintln!("GET /tmux with a silent node: {:?}", started.elapsed());
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("data-session=\"near-1\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<li data-node=\"silent-1\">"),
        "{}",
        page.body
    );
    assert!(page.body.contains("did not answer within"), "{}", page.body);
    assert!(
        page.body.contains("<li data-node=\"never-1\">"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<tr data-node=\"silent-1\" data-session=\"ghost-1\">"),
        "{}",
        page.body
    );
    t.stop().await;
}

/// A git checkout with one commit, for a worktree.
fn git_repo(dir: &Path) {
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "-c",
            "user.email=t@t",
            "-c",
            "user.name=t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
    ] {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_start_form_starts_on_the_chosen_node_and_keeps_what_was_typed() {
    let node_tmux = PrivateTmux::new();
    let server_tmux = PrivateTmux::new();
    let t = server(&server_tmux).await;
    let admin = t.admin().await;
    let tmp = tempfile::tempdir().unwrap();
    let _agent = remote_node(&t, &admin, &node_tmux, "it-form", tmp.path()).await;
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git_repo(&repo);
    let cwd = repo.display().to_string();

    // The form offers the agents, roles and nodes.
    let page = admin.get("/tmux").await;
    for want in [
        "<option value=\"claude\"",
        "<option value=\"shell\"",
        "<option value=\"worker\"",
        "<option value=\"it-form\">it-form (online)</option>",
        "<option value=\"local\">local (this server)</option>",
        "name=\"cwd\"",
        "name=\"branch\"",
    ] {
        assert!(page.body.contains(want), "{want}: {}", page.body);
    }

    // Start a shell with a role, a directory and a worktree branch on the remote node.
    let form = |name: &'static str, branch: &'static str| {
        vec![
            ("name", name),
            ("agent", "shell"),
            ("role", "worker"),
            ("node", "it-form"),
            ("cwd", cwd.as_str()),
            ("worktree", "1"),
            ("branch", branch),
        ]
    };
    let r = admin
        .post_form("/tmux/create", &form("form-1", "feature/from-the-form"))
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let to = r.headers["location"].to_str().unwrap();
    assert!(to.starts_with("/tmux?notice=Started"), "{to}");
    assert!(lists(&node_tmux, "form-1"), "started on the chosen node");
    assert!(!lists(&server_tmux, "form-1"), "not here");
    let s = admin.get("/api/agents/sessions/form-1?node=it-form").await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.json["session"]["role"], "worker", "{}", s.body);
    assert_eq!(s.json["session"]["agent"], "shell");
    assert_eq!(s.json["session"]["launched"], 1);
    assert_eq!(s.json["session"]["branch"], "feature/from-the-form");
    let wt = tmp.path().join("it-form-data/worktrees/form-1");
    assert!(wt.is_dir(), "the worktree on the node: {}", wt.display());
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--abbrev-ref", "HEAD"])
        .current_dir(&wt)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&head.stdout).trim(),
        "feature/from-the-form"
    );
    let list = admin.get("/api/tmux/sessions").await;
    assert!(
        has_session(&list.json, "it-form", "form-1"),
        "{}",
        list.body
    );

    // `architect session start --branch` is the same start (and implies --worktree).
    let out = tokio::process::Command::new(crate::agents::BIN)
        .args([
            "session",
            "start",
            "cli-1",
            "--agent",
            "shell",
            "--node",
            "it-form",
            "--cwd",
            &cwd,
            "--branch",
            "fix/from-the-cli",
            "--check-secs",
            "0",
            "--url",
            &t.url,
            "--json",
        ])
        .env_remove("ARCHITECT_URL")
        .env("ARCHITECT_TOKEN", t.token("admin").await.token.unwrap())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(started["branch"], "fix/from-the-cli", "{started}");
    assert!(tmp.path().join("it-form-data/worktrees/cli-1").is_dir());

    // Refusals show the form again with what was typed and why.
    let kept = |r: &crate::support::Resp, name: &str| {
        for want in [
            format!("value=\"{name}\""),
            format!("value=\"{cwd}\""),
            "<option value=\"it-form\" selected>".to_string(),
            "<option value=\"worker\" selected>".to_string(),
            "<option value=\"shell\" selected>".to_string(),
            "checked".to_string(),
            "id=\"start-error\"".to_string(),
        ] {
            assert!(r.body.contains(&want), "{want}: {}", r.body);
        }
    };
    // A name taken on that node.
    let r = admin
        .post_form("/tmux/create", &form("form-1", "feature/again"))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    kept(&r, "form-1");
    assert!(r.body.contains("already exists"), "{}", r.body);
    // A bad name.
    let r = admin
        .post_form("/tmux/create", &form("no spaces", "feature/x"))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    kept(&r, "no spaces");
    assert!(r.body.contains("data-field=\"name\""), "{}", r.body);
    // A branch git would read as an option.
    let r = admin
        .post_form("/tmux/create", &form("form-2", "--force"))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    kept(&r, "form-2");
    assert!(r.body.contains("data-field=\"branch\""), "{}", r.body);
    assert!(!lists(&node_tmux, "form-2"));

    // A member starts agents, but not a shell (Exec), and is not offered one.
    let member = t.user("form-member", "member").await;
    let page = member.get("/tmux").await;
    assert!(page.body.contains("id=\"start-form\""), "{}", page.body);
    assert!(
        !page.body.contains("<option value=\"shell\""),
        "{}",
        page.body
    );
    let r = member
        .post_form(
            "/tmux/create",
            &[("name", "m-1"), ("agent", "shell"), ("node", "it-form")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("value=\"m-1\""), "{}", r.body);
    assert!(!lists(&node_tmux, "m-1"));
    // A viewer gets no form and cannot post one.
    let viewer = t.user("form-viewer", "viewer").await;
    assert!(!viewer.get("/tmux").await.body.contains("id=\"start-form\""));
    let r = viewer
        .post_form("/tmux/create", &[("name", "v-1"), ("agent", "claude")])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_lists_a_remote_nodes_session_and_opens_its_pane() {
    if !browser_available() {
        return;
    }
    let node_tmux = PrivateTmux::new();
    let server_tmux = PrivateTmux::new();
    let t = server(&server_tmux).await;
    let admin = t.admin().await;
    let tmp = tempfile::tempdir().unwrap();
    let _agent = remote_node(&t, &admin, &node_tmux, "it-browser", tmp.path()).await;
    bash_session(&node_tmux, "far-1").await;
    node_tmux.run(&["send-keys", "-t", "=far-1:", "-l", "echo first-$((6*7))"]);
    node_tmux.run(&["send-keys", "-t", "=far-1:", "Enter"]);
    session_printing(&server_tmux, "near-1", "marker-from-here");
    silent_node(&t, "silent-1").await;
    architect::agents::store::register_session(
        &t.state().db,
        "silent-1",
        "ghost-1",
        &architect::agents::store::SessionFacts {
            agent: Some("claude".into()),
            launched: true,
            role: Some("manager".into()),
            ..Default::default()
        },
        &t.clock.now_str(),
        None,
    )
    .await
    .unwrap();

    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &tmp.path().join("profile")).await;
    log_in(&b, &t).await;

    b.resize(1400, 1300).await;
    b.goto(&format!("{}/tmux", t.url)).await;
    let row = b
        .wait_text(
            "#sessions-table tr[data-node='it-browser'][data-session='far-1']",
            "far-1",
        )
        .await;
    assert!(row.contains("it-browser"), "{row}");
    b.wait_text("#sessions-table", "near-1").await;
    b.wait_text("#node-failures", "silent-1").await;
    b.wait_text("#known-table", "ghost-1").await;
    b.screenshot("tmux-nodes-panel").await;

    // A refused start shows the form again, as typed.
    b.type_into("#start-form input[name=name]", "near-1").await;
    b.click("#start-form select[name=agent] option[value='shell']")
        .await;
    b.click("#start-form select[name=role] option[value='worker']")
        .await;
    b.type_into("#start-form input[name=cwd]", "/tmp").await;
    b.click("#start-form button[type=submit]").await;
    b.wait_text("#start-error", "already exists").await;
    let kept = b
        .script(
            "const f = document.getElementById('start-form'); \
             return [f.name.value, f.agent.value, f.role.value, f.cwd.value].join('|');",
        )
        .await;
    assert_eq!(kept, "near-1|shell|worker|/tmp");
    b.screenshot("tmux-nodes-start-refused").await;

    // Kill asks first: dismissed, nothing happens.
    b.click("#sessions-table tr[data-session='far-1'] form[action='/tmux/kill'] button")
        .await;
    let alert = b
        .wait("the kill confirmation", || async {
            b.cmd(reqwest::Method::GET, "/alert/text", None).await.ok()
        })
        .await;
    assert!(
        alert
            .as_str()
            .unwrap_or_default()
            .contains("Kill session far-1 on it-browser"),
        "{alert}"
    );
    b.cmd(reqwest::Method::POST, "/alert/dismiss", Some(json!({})))
        .await
        .unwrap();
    assert!(lists(&node_tmux, "far-1"), "a dismissed kill kills nothing");

    // The pane page of the remote session, live.
    b.click("#sessions-table a[href='/tmux/view/far-1?node=it-browser']")
        .await;
    b.wait_url(&format!("{}/tmux/view/far-1?node=it-browser", t.url))
        .await;
    b.wait_text("#tmux-pane", "first-42").await;
    node_tmux.run(&["send-keys", "-t", "=far-1:", "-l", "echo second-$((6*9))"]);
    node_tmux.run(&["send-keys", "-t", "=far-1:", "Enter"]);
    b.wait_text("#tmux-pane", "second-54").await;
    b.wait_text("#tmux-live", "(live)").await;
    b.screenshot("tmux-nodes-pane").await;

    // Typed from the pane page, it runs on the node and shows in the stream.
    b.type_into("#pane-send input[name=text]", "echo third-$((7*7))")
        .await;
    b.click("#pane-send button").await;
    b.wait_text(".flash.ok", "Sent to far-1.").await;
    b.wait_text("#tmux-pane", "third-49").await;

    // Kill from the pane page, confirmed: gone from the node.
    b.click("#pane-kill button").await;
    b.wait("the kill confirmation", || async {
        b.cmd(reqwest::Method::GET, "/alert/text", None).await.ok()
    })
    .await;
    b.cmd(reqwest::Method::POST, "/alert/accept", Some(json!({})))
        .await
        .unwrap();
    b.wait_text(".flash.ok", "Killed far-1 on it-browser").await;
    assert!(!lists(&node_tmux, "far-1"));
    b.screenshot("tmux-nodes-after-kill").await;

    // A session started elsewhere on the node appears on the open panel by itself.
    let r = admin
        .post_json(
            "/api/agents/sessions",
            &json!({"name": "later-1", "agent": "shell", "node": "it-browser", "cwd": "/tmp"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    b.wait_text("#sessions-table", "later-1").await;

    // On a phone: neither the panel nor a remote pane page scrolls sideways.
    b.resize(390, 844).await;
    for (path, ready, shot) in [
        ("/tmux".to_string(), "#sessions-table", "tmux-nodes-390"),
        (
            "/tmux/view/later-1?node=it-browser".to_string(),
            "#tmux-pane",
            "tmux-nodes-pane-390",
        ),
    ] {
        b.goto(&format!("{}{path}", t.url)).await;
        b.element(ready).await;
        let (scroll, inner) = (
            b.script("return document.documentElement.scrollWidth")
                .await,
            b.script("return window.innerWidth").await,
        );
        b.screenshot(shot).await;
        assert!(
            scroll.as_i64() <= inner.as_i64(),
            "{path} scrolls sideways at 390 px: {scroll} > {inner}"
        );
    }

    b.quit().await;
    drop(driver);
    t.stop().await;
}

/// A `serve` started with no locale at all (as systemd or `env -i` start it) still reads
/// tmux: its sessions are listed by name, and a captured screen keeps its non-ASCII text
/// (tmux escapes both for a client it thinks cannot take UTF-8).
#[tokio::test(flavor = "multi_thread")]
async fn a_serve_without_a_locale_lists_sessions_and_captures_utf8() {
    let tmux = PrivateTmux::new();
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "plain",
        "printf 'caf\\303\\251 \\342\\235\\257 ready\\n'; sleep 600",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    // ServeProc clears the environment: no LANG, LC_ALL or LC_CTYPE.
    let serve = crate::support::serve_proc::ServeProc::start(
        &tmp.path().join("data"),
        &[("ARCHITECT_TMUX_SOCKET", tmux.socket.clone())],
    )
    .await;
    let admin = serve.admin().await;
    let names = until("the session listed", || async {
        let r = admin.get("/api/tmux/sessions").await;
        let names: Vec<String> = r.json["sessions"]
            .as_array()
            .or(r.json.as_array())
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect();
        (!names.is_empty()).then_some(names)
    })
    .await;
    assert_eq!(names, vec!["plain".to_string()]);
    let shot = until("the screen printed", || async {
        let r = admin
            .post_json("/api/tmux/capture", &json!({"session": "plain"}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let out = r.json["output"].as_str().unwrap_or("").to_string();
        out.contains("ready").then_some(out)
    })
    .await;
    assert!(shot.contains("café ❯ ready"), "{shot:?}");
}
