//! Exactly-once delivery into a pane, and every agent pane watched for permission prompts
//! (issue 12, items 6 and 11): the fake agent dropping Enters the way real agents do, and a
//! short soak of the real Claude Code 2.1.332 against mock_llm.py (the long one is
//! `cargo bench --bench soak`).

use crate::agents::{
    ask_permission, capture, delivered, fake_env, login, prompt, real_server, send_prompt, server,
    start_fake, wait_interaction, wait_prompt, with, PrivateTmux,
};
use crate::support::{until, RealCli, Session};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The input line of `name` as the classifier reads it.
async fn input_line(s: &Session, name: &str) -> String {
    let c = capture(s, name).await;
    format!(
        "{}/{}",
        c["classification"]["state"].as_str().unwrap_or(""),
        c["classification"]["input"].as_str().unwrap_or("")
    )
}

/// Claude Code drops an Enter that arrives together with the text: the fake agent here
/// ignores an Enter less than 150 ms after the last typed character. Today's main typed text
/// and Enter back to back, the text stayed in the input line and the prompt never ran.
#[tokio::test(flavor = "multi_thread")]
async fn an_enter_right_after_the_text_is_not_lost() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (log, _, env) = fake_env(dir.path());
    let env = with(
        env.clone(),
        &json!({"env": with(env["env"].clone(), &json!({"FAKE_AGENT_ENTER_GAP_MS": "150"}))}),
    );
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "w1", env).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(send_prompt(&w, json!({"content": format!("job {i}")})).await);
    }
    for id in &ids {
        let p = wait_prompt(&w, *id, "completed").await;
        assert_eq!(p["enter_presses"], 1, "{p}");
    }
    assert_eq!(delivered(&log), vec!["job 0", "job 1", "job 2"]);
    assert_eq!(input_line(&w, "w1").await, "idle/empty");
    t.stop().await;
}

/// An Enter the agent ignored is pressed again (after a fresh reading), and the prompt runs
/// once. Today's main left the text in the input line and requeued the prompt after 15 s.
#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_enter_is_pressed_again_and_the_prompt_runs_once() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (log, _, env) = fake_env(dir.path());
    let env = with(
        env.clone(),
        &json!({"env": with(env["env"].clone(), &json!({"FAKE_AGENT_DROP_ENTERS": "2"}))}),
    );
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "w1", env).await;
    let id = send_prompt(&w, json!({"content": "fix the login bug"})).await;
    let p = wait_prompt(&w, id, "completed").await;
    assert_eq!(p["enter_presses"], 3, "{p}");
    assert_eq!(p["retries"], 0, "{p}");
    let second = send_prompt(&w, json!({"content": "and the logout bug"})).await;
    wait_prompt(&w, second, "completed").await;
    assert_eq!(
        delivered(&log),
        vec!["fix the login bug", "and the logout bug"]
    );
    assert_eq!(input_line(&w, "w1").await, "idle/empty");
    t.stop().await;
}

/// Text the agent never takes is cleared from its input line before the prompt moves on
/// (requeued, here failed once its retries are spent): no text left behind for a later Enter
/// to run. Today's main left it in the line.
#[tokio::test(flavor = "multi_thread")]
async fn text_that_is_never_submitted_is_cleared_before_the_prompt_moves_on() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (log, _, env) = fake_env(dir.path());
    let env = with(
        env.clone(),
        &json!({"env": with(env["env"].clone(), &json!({"FAKE_AGENT_DROP_ENTERS": "all"}))}),
    );
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "w1", env).await;
    let id = send_prompt(
        &w,
        json!({"content": "line one\nline two", "target_session": "w1", "max_retries": 1}),
    )
    .await;
    let p = wait_prompt(&w, id, "failed").await;
    assert_eq!(p["retries"], 1, "requeued once, then failed: {p}");
    assert!(
        p["error"].as_str().unwrap().contains("cleared"),
        "{}",
        p["error"]
    );
    assert_eq!(input_line(&w, "w1").await, "idle/empty");
    assert!(delivered(&log).is_empty());
    t.stop().await;
}

/// serve stops while a typed prompt's text sits in the input line (its Enter dropped): the next
/// serve goes on from the stored Enter count and never types the text a second time.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_with_text_in_the_input_line_neither_retypes_nor_loses_it() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (log, _, env) = fake_env(dir.path());
    let env = with(
        env.clone(),
        &json!({"env": with(env["env"].clone(), &json!({"FAKE_AGENT_DROP_ENTERS": "2"}))}),
    );
    let data = tempfile::tempdir().unwrap();
    let cfg = || {
        let mut c = crate::support::config(data.path());
        c.agents.tmux_socket = Some(tmux.socket.clone());
        c
    };
    let clock = architect::clock::Clock::manual();
    let s1 = architect::serve::start(cfg(), clock.clone()).await.unwrap();
    let admin = login(&format!("http://{}", s1.addr)).await;
    start_fake(&admin, "w1", env).await;
    let id = send_prompt(&admin, json!({"content": "only once please"})).await;
    until("the text typed and its first Enter dropped", || async {
        let p = prompt(&admin, id).await;
        (p["typed_at"].is_string() && p["status"] == "assigned").then_some(())
    })
    .await;
    s1.shutdown().await.unwrap();
    let screen = tmux.run(&["capture-pane", "-p", "-t", "w1"]);
    assert!(screen.contains("❯\u{a0}only once please"), "{screen}");

    let s2 = architect::serve::start(cfg(), clock).await.unwrap();
    let admin = login(&format!("http://{}", s2.addr)).await;
    let p = wait_prompt(&admin, id, "completed").await;
    assert_eq!(p["enter_presses"], 3, "{p}");
    assert_eq!(delivered(&log), vec!["only once please"]);
    s2.shutdown().await.unwrap();
}

/// With no pattern enabled and nothing queued, a permission prompt on screen is recorded for a
/// person (today's main read panes only while a pattern or a prompt existed).
#[tokio::test(flavor = "multi_thread")]
async fn a_permission_prompt_is_recorded_with_no_pattern_and_nothing_queued() {
    let tmux = PrivateTmux::new();
    let dir = tempfile::tempdir().unwrap();
    let (_, _, env) = fake_env(dir.path());
    let t = server(&tmux).await;
    let w = t.token("admin").await;
    start_fake(&w, "w1", env).await;
    // A plain shell beside it: never captured by the watch, never an interaction.
    let r = w
        .post_json(
            "/api/tmux/create",
            &json!({"name": "sh1", "command": ["bash", "--norc"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        w.get("/api/claude/patterns").await.json,
        json!([]),
        "no pattern"
    );
    ask_permission(&w, "w1").await;
    let i = wait_interaction(&w, "pending", 0).await;
    assert_eq!(
        (i["session"].as_str(), i["source"].as_str()),
        (Some("w1"), Some("pane")),
        "{i}"
    );
    let st = w.get("/api/assigner/status").await;
    assert!(
        st.json["counts"].as_object().is_none_or(|c| c.is_empty()),
        "nothing was queued: {}",
        st.body
    );
    let all = w.get("/api/claude/interactions").await;
    assert_eq!(all.json.as_array().unwrap().len(), 1, "{}", all.body);
    t.stop().await;
}

// ---------------------------------------------------------------------------------------------
// the real Claude Code
// ---------------------------------------------------------------------------------------------

/// The last user text of each request the mock got (Claude Code's prompt turns; tool_result
/// follow-ups carry none).
pub fn prompts_received(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|r| {
            let msgs = r["body"]["messages"].as_array()?.clone();
            let last = msgs.iter().rev().find(|m| m["role"] == "user")?.clone();
            let text: Vec<String> = match &last["content"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter(|c| c["type"] == "text")
                    .filter_map(|c| c["text"].as_str())
                    .filter(|t| !t.trim_start().starts_with("<system-reminder>"))
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            };
            let text = text.join("\n").trim().to_string();
            (!text.is_empty()).then_some(text)
        })
        .collect()
}

/// The real Claude Code in `sessions` panes on `cli`'s server, each in its own HOME and cwd,
/// against its one mock.
pub async fn start_real_claude(w: &Session, cli: &RealCli, names: &[&str]) {
    for name in names {
        let (launcher, wd) = cli.another_seat(name);
        let r = w
            .post_json(
                "/api/agents/sessions",
                &json!({"name": name, "agent": "claude", "cwd": wd.display().to_string(),
                        "no_gateway": true, "role": "worker",
                        "program": launcher.display().to_string()}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    for name in names {
        until(&format!("Claude Code's idle prompt in {name}"), || async {
            (input_line(w, name).await == "idle/empty").then_some(())
        })
        .await;
    }
}

/// A short soak: two real Claude Code sessions, prompts queued so that each is typed right
/// after the previous answer, some asking for a Bash permission that the test answers late by
/// hand. Every prompt reaches the model exactly once, no text is left in an input line, and
/// each dialog is one interaction.
#[tokio::test(flavor = "multi_thread")]
async fn real_claude_code_soak_every_prompt_submitted_once() {
    let Some(cli) = RealCli::start("claude").await else {
        return;
    };
    let t = real_server(&cli.tmux).await;
    let w = t.token("admin").await;
    let names = ["soak1", "soak2"];
    start_real_claude(&w, &cli, &names).await;
    let n = 12;
    let mut ids = Vec::new();
    for i in 0..n {
        let content = if i % 4 == 3 {
            format!("soak prompt {i} RUNBASH")
        } else {
            format!("soak prompt {i}")
        };
        ids.push((
            send_prompt(&w, json!({"content": content, "target_role": "worker"})).await,
            content,
        ));
    }
    let answered = AtomicUsize::new(0);
    until("every soak prompt completed", || {
        let (w, ids, answered, clock) = (&w, &ids, &answered, &t.clock);
        async move {
            // A person answers each dialog late: only once it has been pending a while.
            let pending = w.get("/api/claude/interactions?status=pending").await;
            for i in pending.json.as_array().cloned().unwrap_or_default() {
                let age = time::OffsetDateTime::parse(
                    i["created_at"].as_str().unwrap(),
                    &time::format_description::well_known::Rfc3339,
                )
                .unwrap();
                if clock.now() - age >= time::Duration::seconds(1) {
                    let r = w
                        .post_json(
                            &format!("/api/claude/interactions/{}/handle", i["id"]),
                            &json!({"action": "approve"}),
                        )
                        .await;
                    if r.status == 200 {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            let mut done = 0;
            for (id, _) in ids {
                let p = prompt(w, *id).await;
                assert!(
                    !matches!(p["status"].as_str(), Some("failed" | "cancelled")),
                    "{p}"
                );
                done += usize::from(p["status"] == "completed");
            }
            (done == ids.len()).then_some(())
        }
    })
    .await;
    // Exactly once each, as the model saw them.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for text in prompts_received(&cli.mock.log) {
        *seen.entry(text).or_default() += 1;
    }
    for (_, content) in &ids {
        assert_eq!(seen.get(content), Some(&1), "{content}: {seen:?}");
    }
    // A completion can be reported (the Stop hook) a moment before the pane is read idle
    // again: the session must settle idle with an empty input line.
    for name in names {
        let w = &w;
        until(&format!("{name} to be idle/empty"), || async move {
            (input_line(w, name).await == "idle/empty").then_some(())
        })
        .await;
    }
    // One interaction per dialog: each approved once, none left pending, no second one for
    // a dialog while the first was open.
    let all = w.get("/api/claude/interactions?limit=1000").await;
    let all = all.json.as_array().unwrap().clone();
    let approved: Vec<&Value> = all.iter().filter(|i| i["status"] == "approved").collect();
    assert_eq!(approved.len(), n / 4, "{all:?}");
    assert_eq!(answered.load(Ordering::SeqCst), n / 4);
    assert!(all.iter().all(|i| i["status"] != "pending"), "{all:?}");
    for a in &approved {
        let twins = all.iter().filter(|b| {
            b["id"] != a["id"]
                && b["session"] == a["session"]
                && b["command"] == a["command"]
                && b["created_at"].as_str() >= a["created_at"].as_str()
                && b["created_at"].as_str() <= a["decided_at"].as_str()
        });
        assert_eq!(twins.count(), 0, "a second interaction for {a}: {all:?}");
    }
    // Nor one recorded again just after a dialog was answered (its screen still drawn).
    assert_eq!(
        all.len(),
        approved.len(),
        "interactions besides the {} dialogs: {all:?}",
        n / 4
    );
    t.stop().await;
}
