//! Test harness: `TestServer::start()` runs the real server (same router, same middleware) on
//! 127.0.0.1 with a random port and a fresh data dir, and hands out logged-in HTTP sessions
//! and API tokens. Time is a manual clock the test can advance. The database is SQLite, or
//! PostgreSQL with `ARCHITECT_TEST_BACKEND=postgres` (`backend.rs`).

#![allow(dead_code)]

mod backend;
pub mod mock_anthropic;
mod real_cli;
pub mod serve_proc;
pub use backend::*;
pub use real_cli::*;

use architect::clock::Clock;
use architect::config::ServeConfig;
use architect::serve::Server;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Anything slower than this is hung.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Polls `check` every 50 ms until it yields a value, or panics after [`DEADLINE`].
pub async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The opt-out for tests whose prerequisite is missing (tmux, Chromium, Python SDKs, the real
/// agent CLIs): only with it set do they skip; otherwise they fail with the line that
/// installs what is missing (`scripts/test` installs all of it, as `.ci/run` does).
pub const SKIP_MISSING_ENV: &str = "ARCHITECT_SKIP_MISSING_PREREQS";

/// What a test does when `what` is missing: fails with `install`, the command that installs
/// it, unless [`SKIP_MISSING_ENV`] is set (and never under `CI`), in which case it prints why
/// and the test returns early. Returns whether the test may run.
pub fn prerequisite(ok: bool, what: &str, install: &str) -> bool {
    if ok {
        return true;
    }
    let opted_out = std::env::var_os(SKIP_MISSING_ENV).is_some_and(|v| v != "0" && !v.is_empty())
        && std::env::var_os("CI").is_none();
    assert!(
        opted_out,
        "{what} is missing; install it with: {install}\n(scripts/test installs every \
         prerequisite; {SKIP_MISSING_ENV}=1 skips such tests instead)"
    );
    eprintln!("SKIPPED ({SKIP_MISSING_ENV} is set): {what} is missing; install it with: {install}");
    false
}

pub const ADMIN: &str = "architect";
pub const ADMIN_PASSWORD: &str = "integration-test-pw";

pub struct TestServer {
    server: Option<Server>,
    pub url: String,
    pub data_dir: PathBuf,
    pub clock: Clock,
    _tmp: Option<tempfile::TempDir>,
}

/// A config built field by field, so the test process's environment (PORT, HOST, ...) never
/// leaks in. The database is the data dir's on the run's backend ([`database_url_for`]).
pub fn config(data_dir: &Path) -> ServeConfig {
    ServeConfig {
        host: Some([127, 0, 0, 1].into()),
        port: 0,
        data_dir: data_dir.to_path_buf(),
        database_url: database_url_for(data_dir),
        secret_key: None,
        session_timeout: 3600,
        session_cookie_secure: false,
        admin_user: ADMIN.into(),
        admin_password: ADMIN_PASSWORD.into(),
        max_body_bytes: 1024 * 1024,
        login_max_failures: 5,
        login_lockout_secs: 900,
        metrics_public: false,
        trusted_proxies: Vec::new(),
        master_key: None,
        master_key_file: None,
        allow_readable_master_key: false,
        worker_bin: None,
        worker_allow_shell: false,
        milestone_scan_minutes: 0,
        milestone_llm: Default::default(),
        errors: Default::default(),
        nodes: Default::default(),
        llm: Default::default(),
        agents: Default::default(),
        // Never the test host's own ~/gitrepos and ~/src.
        sources: architect::sources::SourcesConfig {
            roots: vec![data_dir.join("sources").display().to_string()],
            ..Default::default()
        },
        tls: Default::default(),
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut cfg = config(&dir);
        adjust(&mut cfg);
        let clock = Clock::manual();
        let server = architect::serve::start(cfg, clock.clone())
            .await
            .expect("server starts");
        TestServer {
            url: format!("http://{}", server.addr),
            server: Some(server),
            data_dir: dir,
            clock,
            _tmp: Some(tmp),
        }
    }

    /// Stops the server gracefully and starts a new one on the same data dir.
    pub async fn restart(self) -> TestServer {
        self.restart_with(|_| {}).await
    }

    /// [`restart`](Self::restart) with a config adjusted like [`start_with`](Self::start_with).
    pub async fn restart_with(mut self, adjust: impl FnOnce(&mut ServeConfig)) -> TestServer {
        let tmp = self._tmp.take();
        let dir = self.data_dir.clone();
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
        let clock = Clock::manual();
        let mut cfg = config(&dir);
        adjust(&mut cfg);
        let server = architect::serve::start(cfg, clock.clone())
            .await
            .expect("server restarts");
        TestServer {
            url: format!("http://{}", server.addr),
            server: Some(server),
            data_dir: dir,
            clock,
            _tmp: tmp,
        }
    }

    pub fn state(&self) -> &architect::app::AppState {
        &self.server.as_ref().expect("running").state
    }

    /// A client with no credentials (and no redirects followed).
    pub fn anon(&self) -> Session {
        Session::new(&self.url, None)
    }

    /// Logs in with a password; panics if the login fails.
    pub async fn login(&self, user: &str, password: &str) -> Session {
        login_at(&self.url, user, password).await
    }

    pub async fn admin(&self) -> Session {
        self.login(ADMIN, ADMIN_PASSWORD).await
    }

    /// Creates a user with `role` (via the admin) and returns a session for them.
    pub async fn user(&self, name: &str, role: &str) -> Session {
        let admin = self.admin().await;
        let r = admin
            .post_json(
                "/api/users",
                &json!({"username": name, "password": "password-123", "role": role}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        self.login(name, "password-123").await
    }

    /// A bearer-token client with `scope`, owned by the admin.
    pub async fn token(&self, scope: &str) -> Session {
        token_of(&self.admin().await, scope).await
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
        drop_database_of(&self.data_dir).await;
    }
}

/// A session of `user` on the server at `url` (cookie and CSRF token).
pub async fn login_at(url: &str, user: &str, password: &str) -> Session {
    let mut s = Session::new(url, None);
    let r = s
        .post_json("/login", &json!({"username": user, "password": password}))
        .await;
    assert_eq!(r.status, 200, "login as {user} failed: {}", r.body);
    s.csrf = r.json["csrf_token"]
        .as_str()
        .expect("csrf token")
        .to_string();
    s
}

/// A bearer-token client with `scope`, made by `admin`.
pub async fn token_of(admin: &Session, scope: &str) -> Session {
    let r = admin
        .post_json(
            "/api/tokens",
            &json!({"name": format!("test {scope}"), "scope": scope}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    Session::new(&admin.base, r.json["token"].as_str().map(str::to_string))
}

/// An HTTP client bound to one server: a cookie jar (for sessions) or a bearer token.
pub struct Session {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    pub csrf: String,
}

/// A response with its body read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    pub json: Value,
}

impl Session {
    pub fn new(base: &str, token: Option<String>) -> Session {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Session {
            http,
            base: base.to_string(),
            token,
            csrf: String::new(),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if !self.csrf.is_empty() && method != reqwest::Method::GET {
            r = r.header("X-CSRF-Token", &self.csrf);
        }
        r
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let resp = rb.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            json,
        }
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.req(method, path)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::GET, path)).await
    }
    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(self.req(reqwest::Method::POST, path).json(body))
            .await
    }
    pub async fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.send(self.req(reqwest::Method::PUT, path).json(body))
            .await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }
    /// A dashboard form post; adds the session's CSRF token as the form field.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &self.csrf));
        let rb = self.http.post(format!("{}{}", self.base, path)).form(&all);
        self.send(rb).await
    }
}

/// `git -C dir args…`, which must succeed; its output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs (apt-get install -y git)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}
