//! A real `architect serve` child process on a data dir of its own (and its database on the
//! run's backend, or a database it shares with other replicas), for the tests that must kill it
//! the hard way (`kill -9`) and start it again on the same port and data, or run several on one
//! PostgreSQL database. The one way tests start a real serve. Its stdout and stderr go to a file
//! beside the data dir, shown when it exits early.

use super::{database_env_for, login_at, token_of, until, Session, ADMIN, ADMIN_PASSWORD};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const BIN: &str = env!("CARGO_BIN_EXE_architect");

pub struct ServeProc {
    child: Option<tokio::process::Child>,
    pub url: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// The database it uses when not the run's own for its data dir (replicas share one).
    database: Option<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// Where this start's part of the log begins.
    log_from: usize,
    starts: usize,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("addr").port()
}

impl ServeProc {
    /// Starts `architect serve` on a free port with `data_dir` (and its database on the run's
    /// backend) and `env` on top of a clean environment (PATH and HOME kept), and waits for
    /// `/health`.
    pub async fn start(data_dir: &Path, env: &[(&str, String)]) -> ServeProc {
        ServeProc::launch(None, data_dir, env).await
    }

    /// [`ServeProc::start`] on the database at `database_url` (given by environment, never in
    /// argv), which other replicas may share.
    pub async fn start_on(
        database_url: &str,
        data_dir: &Path,
        env: &[(&str, String)],
    ) -> ServeProc {
        ServeProc::launch(Some(database_url.to_string()), data_dir, env).await
    }

    async fn launch(
        database: Option<String>,
        data_dir: &Path,
        env: &[(&str, String)],
    ) -> ServeProc {
        let mut s = ServeProc {
            child: None,
            port: free_port(),
            url: String::new(),
            data_dir: data_dir.to_path_buf(),
            database,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            log: data_dir.with_extension("serve.log"),
            log_from: 0,
            starts: 0,
        };
        s.url = format!("http://127.0.0.1:{}", s.port);
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        self.log_from = self.log().len();
        let database = match &self.database {
            Some(url) => vec![("DATABASE_URL", url.clone())],
            None => database_env_for(&self.data_dir),
        };
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &self.port.to_string(),
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("ARCHITECT_DATA_DIR", &self.data_dir)
        .env("ARCHITECT_USER", ADMIN)
        .env("ARCHITECT_PASSWORD", ADMIN_PASSWORD)
        // Never the test host's own ~/gitrepos and ~/src.
        .env("ARCHITECT_SOURCE_ROOTS", self.data_dir.join("sources"))
        .env("RUST_LOG", "warn")
        .envs(database)
        .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .kill_on_drop(true);
        let child = cmd.spawn().expect("architect serve starts");
        self.child = Some(child);
        let what = format!("architect serve at {} (start {})", self.url, self.starts);
        let (url, log) = (self.url.clone(), self.log.clone());
        let child = self.child.as_mut().expect("spawned");
        until(&what, || {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("architect serve exited early with {status}:\n{log}");
            }
            let url = url.clone();
            async move { health_of(&url).await.map(|_| ()) }
        })
        .await;
    }

    /// `/health`'s answer, when it answers 200.
    pub async fn health(&self) -> Option<Value> {
        health_of(&self.url).await
    }

    /// `kill -9`: no shutdown, no flush; then waits for the process to be gone.
    pub async fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("killed");
    }

    /// SIGTERM (a graceful stop), then its exit status (within 20 s) and what this start
    /// logged.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("running") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "architect serve did not stop within 20 s of SIGTERM:\n{}",
                    self.log()
                )
            })
            .expect("wait");
        (status, self.start_log())
    }

    /// Starts it again on the same port, data and environment.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        self.spawn().await;
    }

    pub async fn admin(&self) -> Session {
        login_at(&self.url, ADMIN, ADMIN_PASSWORD).await
    }

    /// A bearer-token client with `scope`, owned by the admin.
    pub async fn token(&self, scope: &str) -> Session {
        token_of(&self.admin().await, scope).await
    }

    /// What it wrote to stdout and stderr (every start, and every earlier `ServeProc` on the
    /// same data dir).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What it wrote since it was last started.
    pub fn start_log(&self) -> String {
        self.log()
            .get(self.log_from..)
            .unwrap_or_default()
            .to_string()
    }
}

async fn health_of(url: &str) -> Option<Value> {
    let r = reqwest::get(format!("{url}/health")).await.ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}
