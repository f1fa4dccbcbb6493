//! The Interactions panel (`/interactions`) and the Assigner panel's delegation tree and
//! prompt pages, through their HTML forms, against a real server. Interactions and prompt
//! states are seeded through the domain's store where a real agent is not the point; one test
//! approves and denies a real (fake-agent) permission prompt from the page.

use crate::agents::{
    ask_permission, capture, fake_env, server, start_fake, wait_interaction, wait_state, with,
    PrivateTmux,
};
use crate::support::{until, Resp, Session, TestServer};
use architect::agents::assigner::store as prompts;
use architect::agents::permission_store::{self as pstore, NewInteraction};
use architect::agents::permissions::{Outcome, Request, Verdict};
use serde_json::{json, Value};

/// The flash a form's redirect carries (`notice` or `error`), decoded.
fn flash(r: &Resp, kind: &str) -> Option<String> {
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.headers["location"].to_str().unwrap();
    let q = loc.split_once('?').map(|x| x.1).unwrap_or("");
    url_pairs(q)
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, v)| v)
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(q).unwrap()
}

async fn patterns(s: &Session) -> Vec<Value> {
    s.get("/api/claude/patterns")
        .await
        .json
        .as_array()
        .unwrap()
        .clone()
}

/// Records an interaction as the pane scan would; `decided`: (status, by, reason).
async fn seed_interaction(
    t: &TestServer,
    session: &str,
    command: &str,
    decided: Option<(&str, &str, &str)>,
) -> i64 {
    let db = &t.state().db;
    let now = t.clock.now_str();
    let new = NewInteraction {
        node: "local",
        session,
        agent: "claude",
        tool: "Bash",
        command: Some(command),
        path: None,
        prompt_text: &format!(
            "Bash command\n\n  {command}\n\nDo you want to proceed?\n❯ 1. Yes\n  2. No"
        ),
        source: "pane",
        fingerprint: None,
    };
    let i = match decided {
        // Decided ones never held the session's one pending slot.
        Some((status, by, _)) => pstore::insert_decided_interaction(db, &new, status, by, &now)
            .await
            .unwrap(),
        None => pstore::insert_interaction(db, &new, &now)
            .await
            .unwrap()
            .expect("one pending interaction per session"),
    };
    if let Some((status, by, reason)) = decided {
        let outcome = if status == "approved" {
            Outcome::Approve
        } else {
            Outcome::Deny
        };
        pstore::audit(
            db,
            Some(i.id),
            &Request {
                session,
                tool: "Bash",
                subject: command,
                ..Default::default()
            },
            &Verdict {
                outcome,
                decided_by: by.into(),
                reason: reason.into(),
            },
            false,
            &now,
        )
        .await
        .unwrap();
    }
    i.id
}

fn assert_page(r: &Resp, needles: &[&str]) {
    assert_eq!(r.status, 200, "{}", r.body);
    for n in needles {
        assert!(r.body.contains(n), "page lacks {n:?}:\n{}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interactions_panel_pattern_editor_and_dry_runs() {
    // No tmux server behind this socket: nothing here touches the user's tmux.
    let t = TestServer::start_with(|c| {
        c.agents.assigner = false;
        c.agents.tmux_socket = Some(format!("arch-test-none-{:x}", rand::random::<u64>()));
    })
    .await;
    let admin = t.admin().await;

    // Empty states say what to do; the nav lists the panel next to the Assigner.
    let r = admin.get("/interactions").await;
    assert_page(
        &r,
        &[
            "No pending approvals — sessions waiting for permission appear here",
            "No patterns — create one",
            "href=\"/interactions\" class=\"active\"",
            "id=\"dry-run-form\"",
        ],
    );
    let nav = r.body.find("href=\"/assigner\"").unwrap();
    assert!(r.body[nav..].find("href=\"/interactions\"").unwrap() < 200);

    // Create through the form: saved as the API would save it.
    let r = admin
        .post_form(
            "/interactions/patterns",
            &[
                ("name", "echo is harmless"),
                ("tool_regex", "Bash"),
                ("subject_regex", "^echo "),
                ("session_scope", ""),
                ("role_scope", "worker"),
                ("decision", "approve"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert!(flash(&r, "notice").unwrap().contains("created"), "{r:?}");
    let ps = patterns(&admin).await;
    assert_eq!(ps.len(), 1);
    let id = ps[0]["id"].as_i64().unwrap();
    assert_eq!(
        (
            &ps[0]["subject_regex"],
            &ps[0]["role_scope"],
            &ps[0]["enabled"]
        ),
        (&json!("^echo "), &json!("worker"), &json!(1))
    );

    // Invalid regexes: a flash naming the field, nothing saved.
    let r = admin
        .post_form(
            "/interactions/patterns",
            &[
                ("name", "bad"),
                ("tool_regex", "("),
                ("decision", "approve"),
            ],
        )
        .await;
    let e = flash(&r, "error").unwrap();
    assert!(e.contains("tool_regex") && e.contains("regex"), "{e}");
    assert_eq!(patterns(&admin).await.len(), 1);
    let r = admin
        .post_form(
            &format!("/interactions/patterns/{id}"),
            &[
                ("name", "echo is harmless"),
                ("tool_regex", "Bash"),
                ("subject_regex", "["),
                ("decision", "approve"),
            ],
        )
        .await;
    assert!(flash(&r, "error").unwrap().contains("subject_regex"));
    assert!(r.headers["location"]
        .to_str()
        .unwrap()
        .starts_with(&format!("/interactions?edit={id}")));
    assert_eq!(patterns(&admin).await[0]["subject_regex"], "^echo ");
    let r = admin
        .post_form(
            "/interactions/patterns",
            &[("name", "x"), ("tool_regex", "Bash"), ("decision", "maybe")],
        )
        .await;
    assert!(flash(&r, "error").unwrap().contains("decision"));

    // Edit: the form shows the stored values; saving changes them (unticked: disabled).
    let r = admin.get(&format!("/interactions?edit={id}")).await;
    assert_page(&r, &[&format!("Edit pattern #{id}"), "value=\"^echo \""]);
    let r = admin
        .post_form(
            &format!("/interactions/patterns/{id}"),
            &[
                ("name", "echo and printf"),
                ("tool_regex", "Bash"),
                ("subject_regex", "^(echo|printf) "),
                ("role_scope", ""),
                ("decision", "approve"),
            ],
        )
        .await;
    assert!(flash(&r, "notice").unwrap().contains("saved"));
    let p = &patterns(&admin).await[0];
    assert_eq!(
        (&p["name"], &p["role_scope"], &p["enabled"]),
        (&json!("echo and printf"), &Value::Null, &json!(0))
    );
    let r = admin
        .post_form(&format!("/interactions/patterns/{id}/enable"), &[])
        .await;
    assert!(flash(&r, "notice").unwrap().contains("enabled"));
    assert_eq!(patterns(&admin).await[0]["enabled"], 1);
    let r = admin
        .post_form(&format!("/interactions/patterns/{id}/disable"), &[])
        .await;
    assert!(flash(&r, "notice").unwrap().contains("disabled"));
    assert_eq!(patterns(&admin).await[0]["enabled"], 0);
    admin
        .post_form(&format!("/interactions/patterns/{id}/enable"), &[])
        .await;

    // An approve-everything pattern says which never-list rules still ask a person.
    let r = admin
        .post_form(
            "/interactions/patterns",
            &[
                ("name", "anything goes"),
                ("tool_regex", ".*"),
                ("decision", "approve"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert!(flash(&r, "notice").is_some());
    let broad = patterns(&admin).await[1]["id"].as_i64().unwrap();
    let r = admin.get("/interactions").await;
    assert_page(
        &r,
        &[
            "never-auto-approve list keeps for a person",
            "force_push",
            "credential_files",
        ],
    );

    // Dry run of one request: the verdict and the pattern that decided.
    let r = admin
        .post_form(
            "/interactions/dry-run",
            &[
                ("tool", "Bash"),
                ("subject", "git push --force origin main"),
                ("session", "w1"),
                ("role", "worker"),
                ("mode", "request"),
            ],
        )
        .await;
    assert_page(
        &r,
        &[
            "id=\"dry-run-result\"",
            "ag-ask",
            "guard:force_push",
            "value=\"git push --force origin main\"",
        ],
    );
    // With a deny draft: the draft (pattern:0) decides; nothing is saved.
    let r = admin
        .post_form(
            "/interactions/dry-run",
            &[
                ("tool", "Bash"),
                ("subject", "echo hi"),
                ("draft_tool_regex", "Bash"),
                ("draft_subject_regex", "hi$"),
                ("draft_decision", "deny"),
                ("mode", "request"),
            ],
        )
        .await;
    assert_page(&r, &["ag-deny", "pattern:0", "(the draft)"]);
    assert_eq!(patterns(&admin).await.len(), 2);
    let r = admin
        .post_form(
            "/interactions/dry-run",
            &[
                ("tool", "Bash"),
                ("draft_tool_regex", "("),
                ("mode", "request"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("draft_tool_regex"), "{}", r.body);
    let r = admin
        .post_form("/interactions/dry-run", &[("mode", "request")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("tool must not be empty"));

    // Recorded interactions: pending ones with their prompt, decided ones with who decided.
    let pend = seed_interaction(&t, "w9", "rm -rf /tmp/x", None).await;
    let by_pattern = seed_interaction(
        &t,
        "w8",
        "echo hi",
        Some((
            "approved",
            &format!("pattern:{id}"),
            "approved by pattern 'echo'",
        )),
    )
    .await;
    let by_hand = seed_interaction(
        &t,
        "w9",
        "make deploy",
        Some(("denied", "user:alice", "deny by hand")),
    )
    .await;
    let r = admin.get("/interactions").await;
    assert_page(
        &r,
        &[
            &format!("id=\"interaction-{pend}\""),
            "rm -rf /tmp/x",
            "Do you want to proceed?",
            "value=\"approve_always\"",
            &format!("pattern #{id}"),
            "alice (by hand)",
            "deny by hand",
            "ix-denied",
        ],
    );
    seed_interaction(&t, "w7", "echo '<script>alert(1)</script>'", None).await;
    let r = admin.get("/interactions?session=w7").await;
    assert_page(&r, &["&#60;script&#62;alert(1)"]);
    assert!(!r.body.contains("<script>alert"));
    let r = admin.get("/interactions?session=w8").await;
    assert_page(&r, &["No pending approvals", "echo hi"]);
    assert!(!r.body.contains("make deploy"));
    let r = admin.get("/interactions?show=all&session=w9").await;
    assert_page(&r, &["Decided interactions", "make deploy"]);

    // Replay a draft over the recorded interactions: what it would have decided for each.
    let r = admin
        .post_form(
            "/interactions/dry-run",
            &[
                ("draft_tool_regex", "Bash"),
                ("draft_subject_regex", "^make "),
                ("draft_decision", "approve"),
                ("mode", "replay"),
                ("last_n", "10"),
            ],
        )
        .await;
    assert_page(&r, &["id=\"replay-table\"", "make deploy", "ix-changed"]);
    for id in [pend, by_pattern, by_hand] {
        assert!(r.body.contains(&format!("<td class=\"num\">{id}</td>")));
    }
    let r = admin
        .post_form(
            "/interactions/dry-run",
            &[("mode", "replay"), ("last_n", "0")],
        )
        .await;
    assert_eq!(r.status, 422);

    // Approving a prompt whose session is gone: an error flash, and the interaction is
    // closed as gone (nobody can answer it any more), never a 5xx.
    let r = admin
        .post_form(
            &format!("/interactions/{pend}/handle"),
            &[("action", "approve"), ("next", "/interactions?session=w9")],
        )
        .await;
    assert!(
        flash(&r, "error").unwrap().contains("no longer exists"),
        "{r:?}"
    );
    assert!(r.headers["location"]
        .to_str()
        .unwrap()
        .starts_with("/interactions?session=w9"));
    let i = admin.get(&format!("/api/claude/interactions/{pend}")).await;
    assert_eq!(
        (&i.json["status"], &i.json["decision_by"]),
        (&json!("gone"), &json!("session:gone"))
    );
    let r = admin.get("/interactions?session=w9").await;
    assert_page(&r, &["No pending approvals", "the session ended"]);
    let r = admin
        .post_form(
            &format!("/interactions/{by_hand}/handle"),
            &[("action", "deny")],
        )
        .await;
    assert!(flash(&r, "error").unwrap().contains("already denied"));
    let r = admin
        .post_form(
            &format!("/interactions/{pend}/handle"),
            &[("action", "maybe")],
        )
        .await;
    assert!(r.status >= 400 && r.status < 500, "{}", r.status);

    // Delete through the form.
    let r = admin
        .post_form(&format!("/interactions/patterns/{broad}/delete"), &[])
        .await;
    assert!(flash(&r, "notice").unwrap().contains("deleted"));
    assert_eq!(patterns(&admin).await.len(), 1);
    let r = admin
        .post_form(&format!("/interactions/patterns/{broad}/delete"), &[])
        .await;
    assert!(flash(&r, "error").is_some());

    // Viewers read the panel without forms and cannot post; visitors are sent to log in.
    let viewer = t.user("viewer1", "viewer").await;
    let r = viewer.get("/interactions").await;
    assert_page(&r, &["rm -rf /tmp/x"]);
    assert!(!r.body.contains("action=\"/interactions/patterns\""));
    assert!(!r.body.contains("value=\"approve_always\""));
    for (path, form) in [
        (
            "/interactions/patterns".to_string(),
            vec![("name", "v"), ("tool_regex", "B"), ("decision", "approve")],
        ),
        (format!("/interactions/patterns/{id}/disable"), vec![]),
        (format!("/interactions/patterns/{id}/delete"), vec![]),
        (
            format!("/interactions/{pend}/handle"),
            vec![("action", "deny")],
        ),
        (
            "/interactions/dry-run".to_string(),
            vec![("tool", "Bash"), ("mode", "request")],
        ),
    ] {
        let r = viewer.post_form(&path, &form).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    assert_eq!(patterns(&admin).await[0]["enabled"], 1);
    assert_eq!(t.anon().get("/interactions").await.status, 303);
    // A form without the CSRF token is refused.
    let r = admin
        .send(
            admin
                .http
                .post(format!("{}/interactions/patterns/{id}/disable", admin.base))
                .form(&[("x", "y")]),
        )
        .await;
    assert_eq!(r.status, 403);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn assigner_delegation_tree_prompt_page_and_reassign() {
    // The prompts' targets must be live sessions (docs/decisions/0006).
    let tmux = crate::agents::PrivateTmux::new();
    tmux.idle_sessions(&["mgr", "w1", "w2", "w3"]);
    let socket = tmux.socket.clone();
    let t = TestServer::start_with(move |c| {
        c.agents.assigner = false;
        c.agents.tmux_socket = Some(socket);
    })
    .await;
    let admin = t.admin().await;
    let w = t.token("admin").await;
    let r = admin.get("/assigner").await;
    assert_page(
        &r,
        &[
            "No delegations yet",
            "No prompts yet",
            "no approvals waiting",
        ],
    );

    let send = |body: Value| {
        let w = &w;
        async move {
            let r = w.post_json("/api/assigner/send", &body).await;
            assert_eq!(r.status, 201, "{}", r.body);
            r.json["prompt_id"].as_i64().unwrap()
        }
    };
    let root = send(json!({"content": "Plan the login rework", "target_session": "mgr"})).await;
    let child = send(
        json!({"content": "Write the token table migration", "target_session": "w1",
        "parent_id": root, "metadata": {"task_type": "code"}}),
    )
    .await;
    let grandchild = send(
        json!({"content": "Review the migration", "target_session": "w2", "parent_id": child}),
    )
    .await;
    let loner = send(json!({"content": "Unrelated chore"})).await;
    // The child ran and finished: its response's first line shows in the tree.
    let db = &t.state().db;
    let now = t.clock.now_str();
    assert!(prompts::claim(db, child, "local", "w1", "tok", &now)
        .await
        .unwrap());
    assert!(prompts::mark_completed(
        db,
        child,
        "hook:Stop",
        "\nMigration 0009 adds tokens(id, hash).\nTests pass.",
        Some("/tmp/w1-transcript.jsonl"),
        &now
    )
    .await
    .unwrap());
    seed_interaction(&t, "w1", "cargo test", None).await;

    let r = admin.get("/assigner").await;
    assert_page(
        &r,
        &[
            "id=\"delegation-tree\"",
            "Migration 0009 adds tokens(id, hash).",
            "1 waiting for approval",
            "href=\"/interactions\"",
        ],
    );
    assert!(!r.body.contains("Tests pass."), "only the first line");
    let tree = &r.body[r.body.find("id=\"delegation-tree\"").unwrap()..];
    let tree = &tree[..tree.find("</table>").unwrap()];
    let at = |id: i64| {
        tree.find(&format!("href=\"/assigner/prompts/{id}\""))
            .unwrap()
    };
    assert!(at(root) < at(child) && at(child) < at(grandchild), "{tree}");
    assert!(
        tree.contains("tree-d1") && tree.contains("tree-d2"),
        "{tree}"
    );
    assert!(!tree.contains(&format!("/assigner/prompts/{loner}\"")));
    // The approvals moved to their own panel: no approve buttons here.
    assert!(!r.body.contains("approve_always") && !r.body.contains("/handle"));

    // The prompt page: content, response, transcript, parent and children.
    let r = admin.get(&format!("/assigner/prompts/{child}")).await;
    assert_page(
        &r,
        &[
            "Write the token table migration",
            "Tests pass.",
            "/tmp/w1-transcript.jsonl",
            &format!("href=\"/assigner/prompts/{root}\""),
            &format!("href=\"/assigner/prompts/{grandchild}\""),
            "Review the migration",
            "task_type",
            "hook:Stop",
            "ag-completed",
        ],
    );
    let r = admin.get(&format!("/assigner/prompts/{root}")).await;
    assert_page(&r, &["Plan the login rework", "No response yet", "tree-d1"]);
    assert_eq!(admin.get("/assigner/prompts/9999").await.status, 404);
    assert_eq!(admin.get("/assigner/prompts/abc").await.status, 400);

    // Reassign from the panel and from the prompt page (back to where it came from).
    let r = admin
        .post_form(
            &format!("/assigner/prompts/{grandchild}/reassign"),
            &[("to", "w3")],
        )
        .await;
    assert!(flash(&r, "notice").unwrap().contains("w3"));
    let p = w.get(&format!("/api/assigner/prompts/{grandchild}")).await;
    assert_eq!(p.json["target_session"], "w3");
    let r = admin
        .post_form(
            &format!("/assigner/prompts/{grandchild}/reassign"),
            &[
                ("to", "a b"),
                ("next", &format!("/assigner/prompts/{grandchild}")),
            ],
        )
        .await;
    assert!(flash(&r, "error").is_some());
    assert!(r.headers["location"]
        .to_str()
        .unwrap()
        .starts_with(&format!("/assigner/prompts/{grandchild}?")));
    let r = admin
        .post_form(
            &format!("/assigner/prompts/{child}/reassign"),
            &[("to", "w3")],
        )
        .await;
    assert!(
        flash(&r, "error").is_some(),
        "a completed prompt stays completed"
    );
    let r = admin
        .post_form(
            &format!("/assigner/prompts/{loner}/cancel"),
            &[("next", "https://evil.example/")],
        )
        .await;
    assert!(flash(&r, "notice").is_some());
    assert!(r.headers["location"]
        .to_str()
        .unwrap()
        .starts_with("/assigner?"));

    let viewer = t.user("viewer1", "viewer").await;
    let r = viewer.get(&format!("/assigner/prompts/{child}")).await;
    assert_page(&r, &["Tests pass."]);
    assert!(!r.body.contains("/reassign"));
    let r = viewer
        .post_form(
            &format!("/assigner/prompts/{grandchild}/reassign"),
            &[("to", "w1")],
        )
        .await;
    assert_eq!(r.status, 403);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_and_deny_from_the_interactions_page() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (_log, _gate, env) = fake_env(dir.path());
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "w1", with(json!({"role": "worker"}), &env)).await;
    let admin = t.admin().await;

    // Deny from the page: Escape is pressed, the interaction is denied by this person.
    ask_permission(&w, "w1").await;
    wait_state(&w, "w1", "waiting_for_permission").await;
    w.post_json("/api/tmux/sessions/refresh", &json!({})).await;
    let i = wait_interaction(&w, "pending", 0).await;
    let id = i["id"].as_i64().unwrap();
    let page = admin.get("/interactions").await;
    assert_page(
        &page,
        &[
            &format!("id=\"interaction-{id}\""),
            "Do you want to proceed?",
        ],
    );
    let r = admin
        .post_form(&format!("/interactions/{id}/handle"), &[("action", "deny")])
        .await;
    assert_eq!(
        flash(&r, "notice").as_deref(),
        Some(format!("Interaction #{id} denied.").as_str())
    );
    let i = w.get(&format!("/api/claude/interactions/{id}")).await.json;
    assert_eq!(
        (&i["status"], &i["decision_by"]),
        (&json!("denied"), &json!("user:architect"))
    );
    until("the denial on screen", || async {
        capture(&w, "w1").await["output"]
            .as_str()
            .unwrap()
            .contains("Did not run 1 call")
            .then_some(())
    })
    .await;

    // Approve always: approved, and a pattern for exactly this command answers next time.
    // (The fake agent is idle again once the denial shows.)
    ask_permission(&w, "w1").await;
    wait_state(&w, "w1", "waiting_for_permission").await;
    w.post_json("/api/tmux/sessions/refresh", &json!({})).await;
    let i = wait_interaction(&w, "pending", id).await;
    let id2 = i["id"].as_i64().unwrap();
    let r = admin
        .post_form(
            &format!("/interactions/{id2}/handle"),
            &[("action", "approve_always")],
        )
        .await;
    assert!(flash(&r, "notice").unwrap().contains("approved"), "{r:?}");
    let i = w.get(&format!("/api/claude/interactions/{id2}")).await.json;
    assert_eq!(i["status"], "approved");
    let ps = patterns(&w).await;
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0]["tool_regex"], "Bash");
    let re = ps[0]["subject_regex"].as_str().unwrap();
    assert!(
        re.starts_with("^echo hi > /tmp/fake") && re.ends_with("txt$"),
        "{re}"
    );
    until("the approved command", || async {
        capture(&w, "w1").await["output"]
            .as_str()
            .unwrap()
            .contains("Ran 1 shell command")
            .then_some(())
    })
    .await;
    let page = admin.get("/interactions").await;
    assert_page(
        &page,
        &[
            "No pending approvals",
            "architect (by hand)",
            "approve_always by hand",
        ],
    );
    t.stop().await;
}
