//! The secure vault over real HTTP: the API, the dashboard, the CLI, the stored ciphertext,
//! sealing, rotation (with simulated crashes) and a sentinel value that must never leak.
//! Helpers shared by the submodules live here.

#[path = "vault/api.rs"]
mod api;
#[path = "vault/cli.rs"]
mod cli;
#[path = "vault/pages.rs"]
mod pages;
#[path = "vault/rotation.rs"]
mod rotation;
#[path = "vault/sentinel.rs"]
mod sentinel;
#[path = "vault/storage.rs"]
mod storage;

use crate::support::{config, Session, ADMIN, ADMIN_PASSWORD};
use architect::config::ServeConfig;
use architect::serve::Server;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Creates a secret and returns its id.
pub async fn create(s: &Session, name: &str, value: &str) -> i64 {
    let r = s
        .post_json("/api/secrets", &json!({"name": name, "value": value}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().expect("an id")
}

/// The value of secret `id` (current version), asserting a 200.
pub async fn value_of(s: &Session, id: i64) -> String {
    let r = s.get(&format!("/api/secrets/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json["value"].as_str().expect("a value").to_string()
}

/// The `code` of an error answer.
pub fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

/// A server on a data dir the test keeps, so it can be stopped and started again with another
/// configuration (a different key, a missing key file) on the same data.
pub struct Node {
    server: Option<Server>,
    pub url: String,
}

impl Node {
    pub async fn start(dir: &Path, adjust: impl FnOnce(&mut ServeConfig)) -> Node {
        let mut cfg = config(dir);
        adjust(&mut cfg);
        let server = architect::serve::start(cfg, architect::clock::Clock::manual())
            .await
            .expect("server starts");
        Node {
            url: format!("http://{}", server.addr),
            server: Some(server),
        }
    }

    pub fn state(&self) -> &architect::app::AppState {
        &self.server.as_ref().expect("running").state
    }

    pub async fn admin(&self) -> Session {
        let mut s = Session::new(&self.url, None);
        let r = s
            .post_json(
                "/login",
                &json!({"username": ADMIN, "password": ADMIN_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        s.csrf = r.json["csrf_token"].as_str().expect("csrf").to_string();
        s
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
    }
}

// ---- the real binary ----

const BIN: &str = env!("CARGO_BIN_EXE_architect");

/// What a finished `architect` command left behind.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n  stdout: {}\n  stderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `architect ARGS` with a clean environment (PATH plus `env`).
fn command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).env_clear().kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a client command to completion (60 s deadline), feeding `stdin` when given.
pub async fn run(args: &[&str], stdin: Option<&str>) -> Run {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;
    let mut cmd = command(args, &[]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("the binary runs");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.expect("stdin");
        drop(pipe);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("architect {} hung", args.join(" ")))
        .expect("output");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
