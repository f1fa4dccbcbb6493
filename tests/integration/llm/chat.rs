//! `architect chat` (the real binary) against a test server whose gateway uses mock providers:
//! single-shot, --status, --list-providers, the interactive commands, and the tmux worker with
//! its screen markers (see src/cli/chat.rs).

use super::mock::Act;
use super::{rig, Rig};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_architect");

async fn chat(rig: &Rig, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("chat")
        .args(args)
        .env("ARCHITECT_URL", &rig.server.url)
        .env("ARCHITECT_TOKEN", &rig.token)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("architect runs");
    if let Some(input) = stdin {
        let mut si = child.stdin.take().unwrap();
        si.write_all(input.as_bytes()).await.unwrap();
        drop(si);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("chat finished")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn chat_single_shot_status_and_providers_go_through_the_gateway() {
    let rig = rig("claude,ollama").await;
    let (ok, out, err) = chat(&rig, &["-p", "Say hello", "--project", "cli"], None).await;
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.trim(), "Hello from claude");
    assert!(
        err.contains("provider=claude failovers=0 tokens=10/5"),
        "{err}"
    );
    assert_eq!(
        rig.claude.last().body["messages"][0]["content"],
        "Say hello"
    );

    // --provider asks the gateway to try that provider first.
    let (ok, out, _) = chat(&rig, &["-p", "Say hello", "--provider", "ollama"], None).await;
    assert!(ok);
    assert_eq!(out.trim(), "Hello from ollama");

    // Recorded centrally, with the project.
    let by_project = rig.admin_get("/api/llm-metrics/costs?by=project").await;
    assert!(by_project
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["key"] == "cli"));

    rig.claude.push(&[Act::Status(500, None)]);
    let (ok, out, err) = chat(&rig, &["-p", "again"], None).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Hello from ollama");
    assert!(err.contains("failovers=1"), "{err}");

    let (ok, out, _) = chat(&rig, &["--status"], None).await;
    assert!(ok);
    assert!(
        out.contains("requests") && out.contains("claude") && out.contains("closed"),
        "{out}"
    );
    let (ok, out, _) = chat(&rig, &["--list-providers"], None).await;
    assert!(ok);
    assert!(
        out.contains("primary") && out.contains("fallback 1") && out.contains("free (local)"),
        "{out}"
    );
    let (ok, _, err) = chat(&rig, &["-p", "x", "--provider", "skynet"], None).await;
    assert!(!ok);
    assert!(err.contains("skynet"), "{err}");
}

#[tokio::test]
async fn interactive_chat_keeps_history_and_switches_provider() {
    let rig = rig("claude,ollama").await;
    let input = "first question\n/provider ollama\nsecond question\n/provider\n/quit\n";
    let (ok, out, err) = chat(&rig, &[], Some(input)).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Hello from claude"), "{out}");
    assert!(out.contains("Hello from ollama"), "{out}");
    assert!(out.contains("provider: ollama"), "{out}");
    // The second request carried the first exchange as history.
    let seen = rig.ollama.last().body;
    let msgs = seen["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 3, "{seen}");
    assert_eq!(msgs[0]["content"], "first question");
    assert_eq!(msgs[1]["content"], "Hello from claude");
    assert_eq!(msgs[2]["content"], "second question");
}

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux runs");
    if !out.status.success() {
        eprintln!("tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills the private tmux server on drop.
struct TmuxServer(String);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        tmux(&self.0, &["kill-server"]);
    }
}

async fn wait_screen(socket: &str, target: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let screen = tmux(socket, &["capture-pane", "-p", "-t", target]);
        if pred(&screen) {
            return screen;
        }
        assert!(Instant::now() < deadline, "screen never matched:\n{screen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn last_marker(screen: &str) -> Option<&str> {
    screen
        .lines()
        .rev()
        .find(|l| l.starts_with("ARCHITECT-CHAT "))
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
}

#[tokio::test]
async fn the_chat_worker_lives_in_tmux_and_shows_idle_and_busy_markers() {
    let has_tmux = std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok();
    if !crate::support::prerequisite(has_tmux, "tmux", "apt-get install tmux") {
        return;
    }
    let rig = rig("claude,ollama").await;
    let socket = format!("architect-llm-test-{}", std::process::id());
    let _server = TmuxServer(socket.clone());
    // A name with shell metacharacters is refused before tmux runs.
    let (ok, _, err) = chat(
        &rig,
        &["start-worker", "x;touch /tmp/pwned", "--socket", &socket],
        None,
    )
    .await;
    assert!(!ok && err.contains("session name"), "{err}");
    let (ok, out, err) = chat(
        &rig,
        &[
            "start-worker",
            "codex_ollama",
            "--provider",
            "ollama",
            "--socket",
            &socket,
        ],
        None,
    )
    .await;
    assert!(ok, "{out}\n{err}");
    // capture-pane trims trailing spaces: the prompt `chat> ` shows as `chat>`.
    let screen = wait_screen(&socket, "codex_ollama", |s| {
        s.lines().any(|l| l.starts_with("chat>"))
    })
    .await;
    assert_eq!(last_marker(&screen), Some("READY"), "{screen}");
    assert!(
        screen.contains("ARCHITECT-CHAT READY session=codex_ollama provider=ollama"),
        "{screen}"
    );
    // The token is in the session's environment, not on the worker's command line.
    let cmdline = tmux(
        &socket,
        &[
            "list-panes",
            "-t",
            "codex_ollama",
            "-F",
            "#{pane_start_command}",
        ],
    );
    assert!(!cmdline.contains(&rig.token), "{cmdline}");

    // A slow answer: the screen says busy while it streams.
    rig.ollama.push(&[Act::Slow(400)]);
    tmux(
        &socket,
        &[
            "send-keys",
            "-t",
            "codex_ollama",
            "-l",
            "Generate a hello world function",
        ],
    );
    tmux(&socket, &["send-keys", "-t", "codex_ollama", "Enter"]);
    let busy = wait_screen(&socket, "codex_ollama", |s| last_marker(s) == Some("BUSY")).await;
    assert!(
        busy.contains("ARCHITECT-CHAT BUSY session=codex_ollama"),
        "{busy}"
    );
    let done = wait_screen(&socket, "codex_ollama", |s| {
        last_marker(s) == Some("READY") && s.contains("ARCHITECT-CHAT DONE")
    })
    .await;
    assert!(
        done.contains("  Hello from ollama"),
        "answers are indented:\n{done}"
    );
    assert!(
        done.contains("ARCHITECT-CHAT DONE session=codex_ollama provider=ollama failovers=0"),
        "{done}"
    );
    assert_eq!(
        rig.ollama.last().body["messages"][0]["content"],
        "Generate a hello world function"
    );
}
