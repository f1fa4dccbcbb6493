//! `AppState` and the one function that assembles the router. Tests use the same builder, so
//! they exercise the real middleware.

use crate::clock::Clock;
use crate::config::ServeConfig;
use crate::db::Db;
use crate::http::{self, observe};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::Router;
use std::sync::Arc;
use std::time::Instant;
use tower_http::set_header::SetResponseHeaderLayer;

/// Everything a handler may need. Cheap to clone (handles and `Arc`s only).
#[derive(Clone)]
pub struct AppState {
    /// The database pool; every domain's `store.rs` runs its SQL through it.
    pub db: Db,
    /// Settings as parsed at start; never mutated.
    pub config: Arc<ServeConfig>,
    /// Source of "now" (a manual clock in tests).
    pub clock: Clock,
    /// Key for the keyed hashes of session cookies and API tokens (from SECRET_KEY or
    /// `<data-dir>/secret.key`).
    pub secret_key: Arc<Vec<u8>>,
    /// When the server started, for /health's uptime.
    pub started: Instant,
    /// Recently resolved bearer tokens (see `auth::token_cache`); dropped on every change to
    /// tokens, sessions or users, made through this server or another replica.
    pub token_cache: Arc<crate::auth::token_cache::TokenCache>,
    /// Recently resolved session cookies, under the same rule as `token_cache`.
    pub session_cache: Arc<crate::auth::token_cache::SessionCache>,
    /// The vault's master key(s), or why the vault is sealed (see `vault::keys`).
    pub vault: crate::vault::Vault,
    /// Task-queue runtime: long-poll wake-ups, the queue's write gate, supervised workers.
    pub tasks: crate::tasks::TaskRuntime,
    /// Error ingestion runtime (see `errors`).
    pub errors: crate::errors::ErrorsRuntime,
    /// Node runtime (see `nodes`).
    pub nodes: crate::nodes::NodesRuntime,
    /// LLM gateway runtime (see `llm`).
    pub llm: crate::llm::LlmRuntime,
    /// Agent sessions runtime (see `agents`).
    pub agents: crate::agents::AgentsRuntime,
    /// Health of the background loops (see `background::run_every`), for /health.
    pub loops: crate::background::Loops,
    /// Whether this replica leads, and its id (see `db::leader`): the leader-only loops run
    /// while it does.
    pub leadership: crate::db::leader::Leadership,
    /// Live events for open dashboard pages and other watchers (see `events`).
    pub events: crate::events::Events,
    /// Encoded answers of GET list routes, emptied by the change events (see `http::cache`).
    pub list_cache: Arc<crate::http::cache::ListCache>,
    /// Planning's scanner caches (see `planning`).
    pub planning: crate::planning::PlanningRuntime,
}

impl axum::extract::FromRef<AppState> for crate::vault::VaultState {
    fn from_ref(s: &AppState) -> Self {
        s.vault_state()
    }
}

impl AppState {
    /// What the vault's operations reach (for callers outside a handler; handlers may take
    /// `State<VaultState>`).
    pub fn vault_state(&self) -> crate::vault::VaultState {
        crate::vault::VaultState {
            db: self.db.clone(),
            vault: self.vault.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::auth::AuthState {
    fn from_ref(s: &AppState) -> Self {
        s.auth_state()
    }
}

impl AppState {
    /// What the auth domain's operations reach.
    pub fn auth_state(&self) -> crate::auth::AuthState {
        crate::auth::AuthState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            secret_key: self.secret_key.clone(),
            token_cache: self.token_cache.clone(),
            session_cache: self.session_cache.clone(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::tasks::TaskState {
    fn from_ref(s: &AppState) -> Self {
        s.task_state()
    }
}

impl AppState {
    /// What the task queue's operations reach.
    pub fn task_state(&self) -> crate::tasks::TaskState {
        crate::tasks::TaskState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            tasks: self.tasks.clone(),
            events: self.events.clone(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::tasks::supervisor::SupervisorState {
    fn from_ref(s: &AppState) -> Self {
        s.supervisor_state()
    }
}

impl AppState {
    /// What the local worker supervisor reaches (the queue's state, auth's, its settings).
    pub fn supervisor_state(&self) -> crate::tasks::supervisor::SupervisorState {
        crate::tasks::supervisor::SupervisorState {
            tasks: self.task_state(),
            auth: self.auth_state(),
            worker_bin: self.config.worker_bin.clone(),
            allow_shell: self.config.worker_allow_shell,
            log_dir: self.config.data_dir.join("logs"),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::errors::ErrorsState {
    fn from_ref(s: &AppState) -> Self {
        s.errors_state()
    }
}

impl AppState {
    /// What the errors domain's operations reach.
    pub fn errors_state(&self) -> crate::errors::ErrorsState {
        crate::errors::ErrorsState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            errors: self.errors.clone(),
            secret_key: self.secret_key.clone(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::nodes::NodesState {
    fn from_ref(s: &AppState) -> Self {
        s.nodes_state()
    }
}

impl AppState {
    /// What the nodes domain's operations reach.
    pub fn nodes_state(&self) -> crate::nodes::NodesState {
        crate::nodes::NodesState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            nodes: self.nodes.clone(),
            events: self.events.clone(),
            node_interval: self.config.nodes.node_interval,
            auth: self.auth_state(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::llm::LlmState {
    fn from_ref(s: &AppState) -> Self {
        s.llm_state()
    }
}

impl AppState {
    /// What the LLM domain's operations reach (the vault's state composed in).
    pub fn llm_state(&self) -> crate::llm::LlmState {
        crate::llm::LlmState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            llm: self.llm.clone(),
            vault: self.vault_state(),
            auth: self.auth_state(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::agents::AgentsState {
    fn from_ref(s: &AppState) -> Self {
        s.agents_state()
    }
}

impl AppState {
    /// What the agents domain's operations reach (the nodes and auth states composed in).
    pub fn agents_state(&self) -> crate::agents::AgentsState {
        crate::agents::AgentsState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            agents: self.agents.clone(),
            events: self.events.clone(),
            nodes: self.nodes_state(),
            auth: self.auth_state(),
            tasks: self.tasks.clone(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::files::FilesState {
    fn from_ref(s: &AppState) -> Self {
        s.files_state()
    }
}

impl AppState {
    /// What the files domain's operations reach (and the documents').
    pub fn files_state(&self) -> crate::files::FilesState {
        crate::files::FilesState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            events: self.events.clone(),
            config: self.config.clone(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::sources::SourcesState {
    fn from_ref(s: &AppState) -> Self {
        s.sources_state()
    }
}

impl AppState {
    /// What the sources domain's operations reach.
    pub fn sources_state(&self) -> crate::sources::SourcesState {
        crate::sources::SourcesState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            events: self.events.clone(),
            sources: self.config.sources.clone(),
            tasks: self.tasks.clone(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::accounts::AccountsState {
    fn from_ref(s: &AppState) -> Self {
        s.accounts_state()
    }
}

impl AppState {
    /// What the accounts domain's operations reach.
    pub fn accounts_state(&self) -> crate::accounts::AccountsState {
        crate::accounts::AccountsState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            ledger: self.llm.ledger.clone(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::suites::actions::SuitesState {
    fn from_ref(s: &AppState) -> Self {
        s.suites_state()
    }
}

impl AppState {
    /// What the suites domain's operations reach (the files and task states composed in).
    pub fn suites_state(&self) -> crate::suites::actions::SuitesState {
        crate::suites::actions::SuitesState {
            db: self.db.clone(),
            clock: self.clock.clone(),
            files: self.files_state(),
            tasks: self.task_state(),
        }
    }
}

impl axum::extract::FromRef<AppState> for crate::http::extract::TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        crate::http::extract::TrustedProxies(Arc::new(state.config.trusted_proxies.clone()))
    }
}

impl AppState {
    pub fn session_timeout(&self) -> time::Duration {
        time::Duration::seconds(i64::try_from(self.config.session_timeout).unwrap_or(3600))
    }
}

/// Builds the complete application: every domain's routes, the dashboard, the fallbacks and
/// the shared layers (request ids, tracing, metrics, body limit).
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let app = Router::new()
        .merge(crate::auth::api::routes())
        .merge(crate::auth::pages::routes())
        .merge(crate::tracking::api::routes())
        .merge(crate::tracking::pages::routes())
        .merge(crate::overview::activity_api::routes())
        .merge(crate::overview::activity_pages::routes())
        .merge(crate::vault::api::routes())
        .merge(crate::vault::pages::routes())
        .merge(crate::tasks::api::routes())
        .merge(crate::tasks::pages::routes())
        .merge(crate::errors::api::routes())
        .merge(crate::errors::pages::routes())
        .merge(crate::nodes::api::routes())
        .merge(crate::nodes::pages::routes())
        .merge(crate::termius::api::routes())
        .merge(crate::termius::pages::routes())
        .merge(crate::accounts::api::routes())
        .merge(crate::accounts::pages::routes())
        .merge(crate::llm::api::routes())
        .merge(crate::llm::pages::routes())
        .merge(crate::agents::api::routes())
        .merge(crate::agents::pages::routes())
        .merge(crate::assign::api::routes())
        .merge(crate::assign::pages::routes())
        .merge(crate::events::api::routes())
        .merge(crate::overview::api::routes())
        .merge(crate::overview::pages::routes())
        .merge(crate::planning::api::routes())
        .merge(crate::autopilot::api::routes())
        .merge(crate::autopilot::gates::routes())
        .merge(crate::autopilot::pages::routes())
        .merge(crate::files::api::routes())
        .merge(crate::files::pages::routes())
        .merge(crate::sources::api::routes())
        .merge(crate::sources::pages::routes())
        .merge(crate::docs::api::routes())
        .merge(crate::docs::pages::routes())
        .merge(crate::suites::api::routes())
        .merge(crate::suites::pages::routes())
        .merge(crate::web::routes())
        .merge(crate::system::routes())
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(observe::record_request));
    observe::with_tracing(with_security_headers(app)).with_state(state)
}

/// Headers every answer carries: no framing, no MIME sniffing, no referrer leaks, and a CSP
/// that allows only our own scripts and styles (templates have no inline script).
fn with_security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let h =
        |name, value| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    router
        .layer(h(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
        .layer(h(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(h(header::REFERRER_POLICY, "same-origin"))
}
