//! Starting and stopping the server. `start` binds first and then spawns, so a caller (the
//! CLI or a test) knows the address before the first request; `Server::shutdown` stops
//! accepting, lets in-flight requests finish, stops the loops and closes the database.

use crate::app::{router, AppState};
use crate::auth::token_cache::{SessionCache, TokenCache};
use crate::clock::Clock;
use crate::config::ServeConfig;
pub mod tls;

use anyhow::Context;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    loops: Vec<JoinHandle<()>>,
}

/// Loads SECRET_KEY, or the key file in the data dir, creating it (mode 0600) on first start.
fn secret_key(config: &ServeConfig) -> anyhow::Result<Vec<u8>> {
    if let Some(k) = config.secret_key.as_deref().filter(|k| !k.is_empty()) {
        if k.len() < 16 {
            anyhow::bail!("SECRET_KEY must be at least 16 characters");
        }
        return Ok(k.as_bytes().to_vec());
    }
    let path = config.data_dir.join("secret.key");
    if path.exists() {
        let k = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if k.len() < 32 {
            anyhow::bail!(
                "{} is too short; delete it to create a new one (this signs everyone out)",
                path.display()
            );
        }
        return Ok(k);
    }
    let key = crate::auth::random_secret(48).into_bytes();
    write_private(&path, &key)?;
    Ok(key)
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

/// Opens storage, applies migrations, makes sure the env admin exists, binds and serves.
pub async fn start(mut config: ServeConfig, clock: Clock) -> anyhow::Result<Server> {
    // Install the metrics recorder before the first request is counted.
    crate::http::observe::metrics_handle();
    // TLS files are checked (or made, --ssl) before anything else: a bad certificate fails
    // the start, not the first request.
    let tls = match tls::files(&config)? {
        Some((cert, key)) => {
            // Over HTTPS the session cookie is Secure.
            config.session_cookie_secure = true;
            Some(tls::acceptor(&cert, &key)?)
        }
        None => None,
    };
    let database = config.database();
    let db = crate::db::open(&database).await?;
    let applied = crate::db::migrate(&db).await?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    // The key files live in the data dir whatever the backend (SQLite's open made it).
    crate::db::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let key = secret_key(&config)?;
    crate::vault::keys::check_key_file_private(&config).map_err(|m| anyhow::anyhow!(m))?;
    let vault = crate::vault::keys::load(&config, &db, &clock.now_str()).await;
    let bind = SocketAddr::new(config.bind_host(), config.port);
    let errors = crate::errors::ErrorsRuntime::new(&config);
    let nodes = crate::nodes::NodesRuntime::new(&config, &clock);
    let llm = crate::llm::LlmRuntime::new(&config, clock.clone())?;
    let agents = crate::agents::AgentsRuntime::new(&config);
    crate::assign::register(&agents);
    let list_cache = crate::http::cache::ListCache::new(true);
    let events = crate::events::Events::new();
    // Stops the loops, the election and the server at once (see `Server::shutdown`).
    let (stop, stop_rx) = watch::channel(false);
    let replica = crate::db::leader::replica_id(&config.data_dir).with_context(|| {
        format!(
            "reading or making the replica id in {}",
            config.data_dir.display()
        )
    })?;
    let (leadership, election) = crate::db::leader::elect(&db, &replica, stop_rx.clone());
    let state = AppState {
        db,
        config: Arc::new(config),
        clock,
        secret_key: Arc::new(key),
        started: Instant::now(),
        token_cache: Arc::new(TokenCache::new(events.credential_changes())),
        session_cache: Arc::new(SessionCache::new(events.credential_changes())),
        vault,
        tasks: crate::tasks::TaskRuntime::new(&replica),
        errors,
        nodes,
        llm,
        agents,
        events,
        list_cache: Arc::new(list_cache),
        loops: crate::background::Loops::new(leadership.clone()),
        leadership,
        planning: Default::default(),
    };
    // On PostgreSQL events cross replicas; long-polls wake on the others' changes.
    crate::events::replicas::start(&state.events, &state.db).await;
    state.tasks.follow(&state.events);
    state.nodes.follow(&state.events);
    crate::auth::actions::ensure_env_admin(&state.auth_state())
        .await
        .map_err(|e| anyhow::anyhow!("setting up the admin account: {e}"))?;
    if state.config.uses_default_password() {
        tracing::warn!(
            user = %state.config.admin_user,
            "the admin account uses the DEFAULT PASSWORD; set ARCHITECT_PASSWORD. Listening on loopback only unless --host is given"
        );
    }
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| {
        format!("cannot listen on {bind} (is another server running? try --port)")
    })?;
    let addr = listener.local_addr()?;
    state.tasks.set_local_addr(addr);
    crate::tasks::supervisor::restore(&state.supervisor_state()).await;
    let mut loops = crate::background::spawn_all(state.clone(), stop_rx.clone());
    // Last in the list: the lock is given back after the leader-only loops stopped.
    loops.extend(election);
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let mut http_stop = stop_rx;
    let stopped = async move {
        let _ = http_stop.changed().await;
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let http = match tls {
        // `tap_io` only so that axum hands the peer address over (ConnectInfo) as for TCP.
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor)?.tap_io(|_| ());
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        }
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
        }),
    };
    tracing::info!(%addr, data_dir = %state.config.data_dir.display(), %database, replica = state.leadership.replica(), "architect listening on {scheme}://{addr}");
    Ok(Server {
        addr,
        state,
        stop,
        http,
        loops,
    })
}

impl Server {
    /// Stops accepting, waits for in-flight requests, stops loops, closes the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.state.events.close();
        let served = self.http.await;
        for l in self.loops {
            let _ = l.await;
        }
        self.state.db.close().await;
        served.context("server task panicked")??;
        Ok(())
    }

    /// Runs until SIGTERM or Ctrl-C, then shuts down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        self.shutdown().await?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// SIGTERM or Ctrl-C: what stops `serve`, `worker` and `agent` gracefully.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
