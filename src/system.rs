//! Operational endpoints: `GET /health` (no auth) and `GET /metrics` (Prometheus text).

use crate::app::AppState;
use crate::auth::extract::MaybeAuthed;
use crate::auth::Capability;
use crate::http::error::ApiError;
use crate::http::observe::metrics_handle;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    database: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    /// Whether this replica leads (runs the leader-only loops; `db::leader`). Always true on
    /// SQLite.
    leader: bool,
    /// This replica's id (`<data-dir>/replica-id`, the same across restarts; the leadership log,
    /// activity rows and supervised workers name it).
    replica: String,
    /// Background loops by name: `up`, `restarting` after a panicking tick (with the count
    /// of panics and the last one's message), or `standby` (a leader-only loop on a replica
    /// that does not lead).
    loops: std::collections::BTreeMap<&'static str, crate::background::LoopState>,
    /// Loops waiting out a backoff after a panic; the server still answers ("degraded").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    loops_down: Vec<&'static str>,
}

/// Healthy when the database answers; 503 otherwise (load balancers act on the status).
/// "degraded" (still 200: requests are served) while a background loop restarts after a panic.
async fn health(State(state): State<AppState>) -> Response {
    let ok = crate::db::ping(&state.db).await;
    let loops = state.loops.snapshot();
    let loops_down: Vec<&'static str> = loops
        .iter()
        .filter(|(_, l)| l.status == "restarting")
        .map(|(n, _)| *n)
        .collect();
    let body = Health {
        status: match (ok, loops_down.is_empty()) {
            (false, _) => "unhealthy",
            (true, true) => "healthy",
            (true, false) => "degraded",
        },
        loops,
        loops_down,
        database: if ok { "ok" } else { "unreachable" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        leader: state.leadership.is_leader(),
        replica: state.leadership.replica().to_string(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, crate::http::extract::Json(body)).into_response()
}

/// Prometheus text format. Needs read access unless ARCHITECT_METRICS_PUBLIC is set.
async fn prometheus(
    State(state): State<AppState>,
    MaybeAuthed(who): MaybeAuthed,
) -> Result<Response, ApiError> {
    if !state.config.metrics_public {
        let who = who.ok_or_else(ApiError::unauthorized)?;
        if !who.can(Capability::Read) {
            return Err(ApiError::forbidden(
                "reading metrics needs the 'read' capability",
            ));
        }
    }
    let size = f64::from(state.db.size());
    let idle = state.db.num_idle() as f64;
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("db_pool_connections", "state" => "active").set(size - idle);
    metrics::gauge!("db_pool_max_connections")
        .set(f64::from(state.db.options().get_max_connections()));
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics_handle().render(),
    )
        .into_response())
}
