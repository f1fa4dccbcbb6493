//! Every setting of `architect serve`: one clap field each, with its env var and default, so
//! `architect serve --help` is the complete configuration reference.

use clap::{Args, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;

/// The admin password the original system shipped with. While it is in use the server binds
/// loopback only (unless a host is given explicitly) and says so in the log and the dashboard.
pub const DEFAULT_ADMIN_PASSWORD: &str = "peace5";
pub const DEFAULT_ADMIN_USER: &str = "architect";

#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to bind. Default: 0.0.0.0, except 127.0.0.1 while the admin password is the
    /// default one (set ARCHITECT_PASSWORD, or pass --host to bind elsewhere anyway).
    #[arg(long, env = "HOST")]
    pub host: Option<IpAddr>,

    /// TCP port for the dashboard, the JSON API and the LLM gateway.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Directory for the SQLite database (architect.db) and key files; created if missing.
    #[arg(long, env = "ARCHITECT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database: `sqlite://PATH` or `postgres://USER@HOST/DATABASE` (the database must exist;
    /// create it with `LC_COLLATE 'C'` so text sorts as on SQLite). Default: the SQLite file
    /// <data-dir>/architect.db. Prefer the env var, and PGPASSWORD or ~/.pgpass to a password
    /// in the URL: a flag shows in the process list. Shown with its password redacted.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<crate::db::DatabaseUrl>,

    /// Key for hashing session and API-token secrets (HMAC-SHA256). When unset, a random key
    /// is created once in <data-dir>/secret.key (mode 0600). Changing it signs everyone out and
    /// invalidates every API token.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Seconds of inactivity after which a dashboard session expires.
    #[arg(long, env = "SESSION_TIMEOUT", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(60..=2_592_000))]
    pub session_timeout: u64,

    /// Mark the session cookie Secure (send it over HTTPS only). Set when behind TLS.
    #[arg(long, env = "SESSION_COOKIE_SECURE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub session_cookie_secure: bool,

    /// Username of the admin account, created or updated at every start (case-insensitive).
    #[arg(long, env = "ARCHITECT_USER", default_value = DEFAULT_ADMIN_USER)]
    pub admin_user: String,

    /// Password of the admin account, set at every start. Prefer the env var over the flag.
    #[arg(long, env = "ARCHITECT_PASSWORD", default_value = DEFAULT_ADMIN_PASSWORD, hide_default_value = true, hide_env_values = true)]
    pub admin_password: String,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "ARCHITECT_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Failed logins allowed per username and per client address before a lockout.
    #[arg(long, env = "ARCHITECT_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Seconds a login lockout lasts (and the window in which failures are counted).
    #[arg(long, env = "ARCHITECT_LOGIN_LOCKOUT", default_value_t = 900)]
    pub login_lockout_secs: u64,

    /// Let /metrics be scraped without a token (it shows request counts, never data).
    #[arg(long, env = "ARCHITECT_METRICS_PUBLIC", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub metrics_public: bool,

    /// Reverse proxies whose `X-Forwarded-For` is believed (comma-separated IPs, e.g.
    /// 127.0.0.1 for an nginx on this host). Requests from other peers are judged by their own
    /// address, so login throttling and audit records cannot be fooled by a forged header.
    #[arg(long, env = "ARCHITECT_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// Master key of the secure vault: 32 random bytes as base64 or hex (`openssl rand -base64
    /// 32`). Overrides the key file. Prefer the env var: a flag shows in the process list. A
    /// wrong key seals the vault (vault calls answer 503); it never decrypts garbage.
    #[arg(long, env = "ARCHITECT_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// File holding the vault master key when ARCHITECT_MASTER_KEY is unset. Default:
    /// <data-dir>/master.key, created (mode 0600) on the first start of an empty vault. Back it
    /// up apart from the database: without it the secrets cannot be read.
    #[arg(long, env = "ARCHITECT_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,

    /// Start even though the master key file can be read by group or others (the server
    /// refuses by default and says which `chmod` fixes it).
    #[arg(long, env = "ARCHITECT_ALLOW_READABLE_MASTER_KEY", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_readable_master_key: bool,

    /// The `architect` binary that `POST /api/workers/start/<type>` runs as a local worker.
    /// Default: this program.
    #[arg(long, env = "ARCHITECT_WORKER_BIN")]
    pub worker_bin: Option<PathBuf>,

    /// Let `POST /api/workers/start/{type}` start local workers at all: every built-in task
    /// type runs programs on this host (they get --allow-exec). Off by default.
    #[arg(long, env = "ARCHITECT_WORKER_ALLOW_SHELL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub worker_allow_shell: bool,

    /// The milestone worker inside serve: scan every active project with a source path this
    /// often (minutes) and refresh its plan. 0 (the default) leaves it off; `architect
    /// milestones` runs the same scans from outside.
    #[arg(long, env = "ARCHITECT_MILESTONE_SCAN_MINUTES", default_value_t = 0)]
    pub milestone_scan_minutes: u64,

    /// The LLM pass over milestone plans: after the deterministic plan, one request per scan
    /// through the gateway asks the model to regroup and retitle its items. `auto` (default):
    /// when a provider of the chain has an API key; `on`: whenever the chain has a provider
    /// (Ollama needs no key); `off`: never.
    #[arg(long, env = "ARCHITECT_MILESTONE_LLM", value_enum, default_value_t = MilestoneLlm::Auto)]
    pub milestone_llm: MilestoneLlm,

    #[command(flatten)]
    pub errors: crate::errors::ErrorsConfig,

    #[command(flatten)]
    pub nodes: crate::nodes::NodesConfig,

    #[command(flatten)]
    pub llm: crate::llm::LlmConfig,

    #[command(flatten)]
    pub agents: crate::agents::AgentsConfig,

    #[command(flatten)]
    pub sources: crate::sources::SourcesConfig,

    #[command(flatten)]
    pub tls: crate::serve::tls::TlsConfig,
}

impl ServeConfig {
    pub fn uses_default_password(&self) -> bool {
        self.admin_password == DEFAULT_ADMIN_PASSWORD
    }

    /// The address to bind, applying the secure-by-default rule.
    pub fn bind_host(&self) -> IpAddr {
        match self.host {
            Some(h) => h,
            None if self.uses_default_password() => IpAddr::from([127, 0, 0, 1]),
            None => IpAddr::from([0, 0, 0, 0]),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("architect.db")
    }

    /// The database to open: `--database-url`, else the data dir's SQLite file.
    pub fn database(&self) -> crate::db::DatabaseUrl {
        self.database_url
            .clone()
            .unwrap_or_else(|| crate::db::DatabaseUrl::sqlite_in(&self.data_dir))
    }
}

/// When the planner's LLM pass runs (`ARCHITECT_MILESTONE_LLM`).
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MilestoneLlm {
    #[default]
    Auto,
    On,
    Off,
}

/// Log line format, for every role.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where CLI roles find the control plane.
#[derive(Args, Clone, Debug)]
pub struct ClientConfig {
    /// Base URL of the architect server.
    #[arg(
        long = "url",
        env = "ARCHITECT_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,

    /// API token (create one under Users & tokens in the dashboard, or `architect token create`).
    #[arg(
        long = "token",
        env = "ARCHITECT_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,

    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}
