//! The real `architect` binary: help texts, the client commands against a running server,
//! `token create`, `migrate`, and a graceful SIGTERM shutdown of `architect serve` that keeps
//! its data across a restart.
//!
//! Every run clears the environment (only PATH is kept) so nothing from the test process
//! (ARCHITECT_TOKEN, PORT, ...) leaks into the command.

use crate::support::serve_proc::ServeProc;
use crate::support::{until, Session, TestServer, ADMIN, ADMIN_PASSWORD};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_architect");
/// A client command that takes longer than this is hung.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// What a finished command left behind.
pub(crate) struct Run {
    pub(crate) args: Vec<String>,
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with everything the command said unless it exited 0.
    pub(crate) fn assert_ok(&self) -> &Self {
        assert!(self.ok(), "{self:?}");
        self
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "architect {}\n  exit: {:?}\n  stdout: {}\n  stderr: {}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        )
    }
}

/// A command with a clean environment: PATH, plus `env`.
fn command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `architect ARGS` to completion (with a deadline).
pub(crate) async fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = tokio::time::timeout(RUN_DEADLINE, command(args, env).output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "architect {} did not finish within {RUN_DEADLINE:?}",
                args.join(" ")
            )
        })
        .expect("the binary runs");
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) async fn run(args: &[&str]) -> Run {
    run_env(args, &[]).await
}

/// Runs a client command: `architect GROUP --url URL --token TOKEN REST...`.
pub(crate) async fn client(url: &str, token: &str, group: &str, rest: &[&str]) -> Run {
    let mut args = vec![group, "--url", url, "--token", token];
    args.extend_from_slice(rest);
    run(&args).await
}

pub(crate) fn token_of(s: &Session) -> String {
    s.token.clone().expect("a bearer token")
}

/// The lines of a table whose cells include `cell` (cells are separated by two spaces).
pub(crate) fn table_rows_with<'a>(table: &'a str, cell: &str) -> Vec<&'a str> {
    table
        .lines()
        .filter(|l| l.split("  ").map(str::trim).any(|c| c == cell))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// help
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn help_lists_every_subcommand() {
    let r = run(&["--help"]).await;
    r.assert_ok();
    for sub in [
        "serve", "migrate", "projects", "features", "bugs", "devops", "stats", "token",
    ] {
        assert!(
            r.stdout.lines().any(|l| l.trim_start().starts_with(sub)),
            "--help lists {sub}: {r:?}"
        );
    }
    let v = run(&["--version"]).await;
    v.assert_ok();
    assert!(v.stdout.contains(env!("CARGO_PKG_VERSION")), "{v:?}");
    // A group without its subcommand explains itself and fails.
    let r = run(&["projects"]).await;
    assert!(!r.ok(), "{r:?}");
    assert!(
        r.stderr.contains("add") && r.stderr.contains("list"),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_help_documents_every_environment_variable() {
    let r = run(&["serve", "--help"]).await;
    r.assert_ok();
    // Help text is wrapped; "[env:" and the name may sit on different lines.
    let flat = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for var in [
        "PORT",
        "HOST",
        "SECRET_KEY",
        "SESSION_TIMEOUT",
        "SESSION_COOKIE_SECURE",
        "ARCHITECT_USER",
        "ARCHITECT_PASSWORD",
        "ARCHITECT_DATA_DIR",
    ] {
        assert!(
            flat.contains(&format!("[env: {var}=]")) || flat.contains(&format!("[env: {var}]")),
            "serve --help names {var}: {r:?}"
        );
    }
    // Secrets in the environment are never echoed by --help.
    let r = run_env(
        &["serve", "--help"],
        &[
            ("ARCHITECT_PASSWORD", "hunter2-do-not-print"),
            ("SECRET_KEY", "key-do-not-print-0123456789"),
        ],
    )
    .await;
    r.assert_ok();
    assert!(!r.stdout.contains("hunter2-do-not-print"), "{r:?}");
    assert!(!r.stdout.contains("key-do-not-print"), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// client commands against a running server
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn client_commands_track_projects_features_bugs_and_devops() {
    let server = TestServer::start().await;
    let api = server.token("admin").await;
    let token = token_of(&api);
    let url = server.url.as_str();

    // projects add / list / list --json
    let r = client(
        url,
        &token,
        "projects",
        &["add", "Orbiter", "--tags", "a,b"],
    )
    .await;
    r.assert_ok();
    let row = table_rows_with(&r.stdout, "Orbiter");
    assert_eq!(row.len(), 1, "{r:?}");
    assert!(row[0].contains("a,b") && row[0].contains("active"), "{r:?}");

    let r = client(url, &token, "projects", &["list"]).await;
    r.assert_ok();
    assert!(
        r.stdout.lines().next().is_some_and(|h| h.contains("NAME")),
        "a header line: {r:?}"
    );
    assert_eq!(table_rows_with(&r.stdout, "Orbiter").len(), 1, "{r:?}");

    let r = client(url, &token, "projects", &["list", "--json"]).await;
    r.assert_ok();
    let list = r.json();
    let projects = list
        .as_array()
        .unwrap_or_else(|| panic!("a JSON array: {r:?}"));
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0]["name"], "Orbiter");
    assert_eq!(projects[0]["tags"], serde_json::json!(["a", "b"]));
    let pid = projects[0]["id"].as_i64().expect("id").to_string();

    // features add / set
    let r = client(
        url,
        &token,
        "features",
        &["add", "--project", &pid, "Docking port"],
    )
    .await;
    r.assert_ok();
    assert_eq!(table_rows_with(&r.stdout, "Docking port").len(), 1, "{r:?}");
    assert!(
        table_rows_with(&r.stdout, "draft").len() == 1,
        "new features are drafts: {r:?}"
    );
    let features = api.get("/api/features").await.json;
    let fid = features[0]["id"].as_i64().expect("feature id").to_string();

    let r = client(
        url,
        &token,
        "features",
        &["set", &fid, "--status", "spec", "--comment", "c"],
    )
    .await;
    r.assert_ok();
    assert_eq!(table_rows_with(&r.stdout, "spec").len(), 1, "{r:?}");
    let d = api.get(&format!("/api/features/{fid}")).await.json;
    assert_eq!(d["status"], "spec");
    let history = d["history"].as_array().cloned().unwrap_or_default();
    assert!(
        history
            .iter()
            .any(|h| h["to_status"] == "spec" && h["comment"] == "c"),
        "{d}"
    );

    // An illegal move fails and says where it may go.
    let r = client(
        url,
        &token,
        "features",
        &["set", &fid, "--status", "completed"],
    )
    .await;
    assert!(!r.ok(), "spec -> completed must fail: {r:?}");
    for next in ["draft", "in_progress", "blocked", "cancelled"] {
        assert!(
            r.stderr.contains(next),
            "stderr names the allowed next status {next}: {r:?}"
        );
    }
    assert_eq!(
        api.get(&format!("/api/features/{fid}")).await.json["status"],
        "spec"
    );

    // bugs add / list --severity --json
    let r = client(
        url,
        &token,
        "bugs",
        &[
            "add",
            "--project",
            &pid,
            "Hatch leaks",
            "--severity",
            "high",
        ],
    )
    .await;
    r.assert_ok();
    assert_eq!(table_rows_with(&r.stdout, "Hatch leaks").len(), 1, "{r:?}");
    client(
        url,
        &token,
        "bugs",
        &[
            "add",
            "--project",
            &pid,
            "Paint chipped",
            "--severity",
            "low",
        ],
    )
    .await
    .assert_ok();
    let r = client(
        url,
        &token,
        "bugs",
        &["list", "--severity", "high", "--json"],
    )
    .await;
    r.assert_ok();
    let bugs = r.json();
    let bugs = bugs
        .as_array()
        .unwrap_or_else(|| panic!("a JSON array: {r:?}"));
    assert_eq!(bugs.len(), 1, "only the high one: {r:?}");
    assert_eq!(bugs[0]["title"], "Hatch leaks");
    assert_eq!(bugs[0]["severity"], "high");

    // devops add
    let r = client(url, &token, "devops", &["add", "Rotate keys"]).await;
    r.assert_ok();
    assert_eq!(table_rows_with(&r.stdout, "Rotate keys").len(), 1, "{r:?}");
    let tasks = api.get("/api/devops-tasks").await.json;
    assert_eq!(tasks[0]["title"], "Rotate keys");

    // stats
    let r = client(url, &token, "stats", &[]).await;
    r.assert_ok();
    for (entity, total) in [
        ("projects", "1"),
        ("features", "1"),
        ("bugs", "2"),
        ("devops_tasks", "1"),
        ("milestones", "0"),
    ] {
        let rows = table_rows_with(&r.stdout, entity);
        assert_eq!(rows.len(), 1, "stats has a {entity} row: {r:?}");
        let cells: Vec<&str> = rows[0].split_whitespace().collect();
        assert_eq!(cells.get(1).copied(), Some(total), "{entity} total: {r:?}");
    }
    assert!(r.stdout.contains("spec=1"), "features by status: {r:?}");
    let r = client(url, &token, "stats", &["--json"]).await;
    r.assert_ok();
    assert_eq!(r.json()["bugs"]["total"], 2, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_command_without_a_token_says_how_to_get_one() {
    let server = TestServer::start().await;
    let r = run(&["projects", "--url", &server.url, "list"]).await;
    assert!(!r.ok(), "{r:?}");
    assert!(r.stderr.contains("ARCHITECT_TOKEN"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    // The env var works in place of the flag.
    let api = server.token("admin").await;
    let r = run_env(
        &["projects", "list", "--json"],
        &[
            ("ARCHITECT_URL", &server.url),
            ("ARCHITECT_TOKEN", &token_of(&api)),
        ],
    )
    .await;
    r.assert_ok();
    assert!(r.json().is_array(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_commands_report_http_errors_clearly() {
    let server = TestServer::start().await;
    let read = server.token("read").await;
    let token = token_of(&read);
    let r = client(&server.url, &token, "projects", &["list"]).await;
    r.assert_ok();
    let r = client(&server.url, &token, "projects", &["add", "Not allowed"]).await;
    assert!(!r.ok(), "{r:?}");
    assert!(r.stderr.contains("403"), "the status is named: {r:?}");
    assert!(r.stderr.contains("read"), "the scope is named: {r:?}");
    let admin = server.admin().await;
    assert_eq!(
        admin.get("/api/projects").await.json,
        serde_json::json!([]),
        "nothing created"
    );

    // A wrong token is a 401, a dead server a transport error; both exit non-zero.
    let r = client(&server.url, "not-a-token", "projects", &["list"]).await;
    assert!(!r.ok() && r.stderr.contains("401"), "{r:?}");
    let r = client(&server.url, &token, "projects", &["show", "999"]).await;
    assert!(!r.ok() && r.stderr.contains("404"), "{r:?}");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let r = client(&dead, &token, "projects", &["list"]).await;
    assert!(!r.ok(), "{r:?}");
    assert!(r.stderr.contains("cannot reach"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_create_logs_in_with_the_password_and_prints_a_working_token() {
    let server = TestServer::start().await;
    let r = run_env(
        &[
            "token",
            "create",
            "--name",
            "x",
            "--user",
            ADMIN,
            "--url",
            &server.url,
        ],
        &[("ARCHITECT_PASSWORD", ADMIN_PASSWORD)],
    )
    .await;
    r.assert_ok();
    let token = r.stdout.trim().to_string();
    assert_eq!(
        r.stdout.trim().lines().count(),
        1,
        "only the token on stdout: {r:?}"
    );
    assert!(token.len() >= 20 && !token.contains(' '), "{r:?}");
    assert!(r.stderr.contains("shown only now"), "{r:?}");
    let api = Session::new(&server.url, Some(token.clone()));
    let res = api.get("/api/projects").await;
    assert_eq!(res.status, 200, "{}", res.body);
    // It drives the CLI too.
    client(
        &server.url,
        &token,
        "projects",
        &["add", "Made with the new token"],
    )
    .await
    .assert_ok();

    // A wrong password fails clearly and prints no token.
    let r = run_env(
        &[
            "token",
            "create",
            "--name",
            "y",
            "--user",
            ADMIN,
            "--url",
            &server.url,
        ],
        &[("ARCHITECT_PASSWORD", "wrong-password")],
    )
    .await;
    assert!(!r.ok(), "{r:?}");
    assert!(r.stdout.trim().is_empty(), "{r:?}");
    assert!(r.stderr.contains("login failed"), "{r:?}");
}

/// `token create` logs in to make the token and should log out again, leaving no live
/// dashboard session behind (a session cookie nobody holds is still a credential until it
/// expires).
#[tokio::test(flavor = "multi_thread")]
async fn token_create_does_not_leave_a_login_session_behind() {
    let server = TestServer::start().await;
    let sessions = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions")
            .fetch_one(&server.state().db)
            .await
            .expect("count sessions")
    };
    assert_eq!(sessions().await, 0);
    run_env(
        &[
            "token",
            "create",
            "--name",
            "x",
            "--user",
            ADMIN,
            "--url",
            &server.url,
        ],
        &[("ARCHITECT_PASSWORD", ADMIN_PASSWORD)],
    )
    .await
    .assert_ok();
    assert_eq!(
        sessions().await,
        0,
        "the CLI's login session is still alive after `token create`"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_creates_the_database_and_counts_migrations() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("fresh");
    let dir_s = dir.to_str().expect("utf-8 path");
    let r = run(&["migrate", "--data-dir", dir_s]).await;
    r.assert_ok();
    assert!(dir.join("architect.db").is_file(), "{r:?}");
    let n: u64 = r
        .stdout
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a count first: {r:?}"));
    assert!(n > 0, "{r:?}");
    assert!(r.stdout.contains("migration(s) applied"), "{r:?}");
    assert!(r.stdout.contains("architect.db"), "{r:?}");
    // Again: nothing left to apply. The env var works like the flag.
    let r = run_env(&["migrate"], &[("ARCHITECT_DATA_DIR", dir_s)]).await;
    r.assert_ok();
    assert!(r.stdout.starts_with("0 migration(s) applied"), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// `architect serve` as a process
// ---------------------------------------------------------------------------------------------

/// A real `architect serve` on `data` at the default log level, once it has logged its start.
async fn serve_logged(data: &Path) -> ServeProc {
    let p = ServeProc::start(data, &[("RUST_LOG", "info".into())]).await;
    until("architect serve to log its start", || async {
        p.start_log()
            .contains("architect listening on")
            .then_some(())
    })
    .await;
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_stops_cleanly_on_sigterm_and_keeps_its_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");

    let first = serve_logged(&data).await;
    let url = first.url.clone();
    assert!(
        first
            .log()
            .contains(&format!("architect listening on {url}")),
        "{}",
        first.log()
    );
    // SQLite's file in the data dir; on PostgreSQL the server writes no database file.
    assert_eq!(
        data.join("architect.db").is_file(),
        crate::support::backend() == crate::support::TestBackend::Sqlite
    );

    let r = run_env(
        &[
            "token", "create", "--name", "persist", "--user", ADMIN, "--url", &url,
        ],
        &[("ARCHITECT_PASSWORD", ADMIN_PASSWORD)],
    )
    .await;
    r.assert_ok();
    let token = r.stdout.trim().to_string();
    client(
        &url,
        &token,
        "projects",
        &["add", "Survives restarts", "--tags", "durable"],
    )
    .await
    .assert_ok();

    let (status, log) = first.terminate().await;
    assert!(
        status.success(),
        "exit status {status:?} after SIGTERM:\n{log}"
    );
    assert!(log.contains("stopped cleanly"), "{log}");

    let second = serve_logged(&data).await;
    let r = client(&second.url, &token, "projects", &["list", "--json"]).await;
    r.assert_ok();
    let names: Vec<String> = r
        .json()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        names,
        ["Survives restarts"],
        "the project and the token survive a restart: {r:?}"
    );
    let (status, log) = second.terminate().await;
    assert!(
        status.success(),
        "exit status {status:?} after SIGTERM:\n{log}"
    );
    assert!(log.contains("stopped cleanly"), "{log}");
}
