//! JSON routes of the secure vault: secrets, versions, audit, status, step-up and master key
//! rotation. Responses that carry a value are marked `Cache-Control: no-store`; every other
//! response carries metadata only.
//!
//! Who may do what is in each handler's extractor: `Read` lists names and metadata (viewers),
//! `Write` reads values and changes secrets (members; admin-scope tokens), `Admin` deletes,
//! undeletes, purges and rotates. A value read by a browser session also needs a password
//! given within the step-up window (`POST /api/vault/step-up`).

use super::actions::{self, Caller};
use super::VaultState;
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Admin, Authed, Read, Requirement, Write};
use crate::http::error::ApiError;
use crate::http::extract::{ClientAddr, Json, Pagination, Path, Query};
use axum::extract::FromRef;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/secrets", get(list).post(create))
        .route(
            "/api/secrets/{id}",
            get(view).put(update).delete(delete_secret),
        )
        .route("/api/secrets/{id}/undelete", post(undelete))
        .route("/api/secrets/{id}/purge", post(purge))
        .route("/api/secrets/{id}/versions", get(versions))
        .route("/api/secrets/{id}/versions/{version}", get(view_version))
        .route(
            "/api/secrets/{id}/versions/{version}/restore",
            post(restore_version),
        )
        .route("/api/secrets/{id}/audit", get(audit))
        .route("/api/vault/status", get(status))
        .route("/api/vault/step-up", post(step_up))
        .route("/api/vault/rotate-key", post(rotate_key))
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            // The reason names key files and key ids: an admin reads it in
            // `GET /api/vault/status` (and the server log), every other caller only learns
            // that the vault is sealed.
            VaultError::Sealed(m) => {
                tracing::debug!(reason = %m, "vault call refused: sealed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "vault_sealed",
                    SEALED_MESSAGE,
                )
            }
            VaultError::NotFound(what) => ApiError::not_found(what),
            e @ VaultError::Deleted(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            VaultError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            VaultError::Conflict(m) => ApiError::conflict(m),
            e @ VaultError::Integrity { .. } => {
                tracing::error!(error = %e, "vault integrity failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "integrity_error",
                    e.to_string(),
                )
            }
            VaultError::KeyFile(m) => {
                tracing::error!(error = %m, "vault key file");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "key_file_error", m)
            }
            VaultError::Db(e) => ApiError::from(e),
        }
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// 503 before anything else when the vault is sealed: every vault call says so.
fn ensure_open(s: &AppState) -> Result<(), ApiError> {
    s.vault.keyring().map(|_| ()).map_err(ApiError::from)
}

fn caller<C: Requirement>(s: &AppState, who: &Authed<C>, addr: ClientAddr) -> Caller {
    Caller::new(who.identity(), addr.0, s.clock.now_str())
}

/// A response carrying a value: never stored by a browser or proxy cache.
fn revealed(view: SecretView) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(view),
    )
        .into_response()
}

fn require_step_up<C: Requirement>(s: &AppState, who: &Authed<C>) -> Result<(), ApiError> {
    if needs_step_up(who.identity(), s.clock.now()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "step_up_required",
            format!(
                "reading a secret's value needs your password from the last {} minutes: POST /api/vault/step-up {{\"password\": ...}} (or use an API token)",
                STEP_UP_WINDOW_SECS / 60
            ),
        ));
    }
    Ok(())
}

async fn list(
    State(s): State<AppState>,
    _: Authed<Read>,
    page: Pagination,
    Query(f): Query<SecretFilter>,
) -> ApiResult<Vec<SecretInfo>> {
    ensure_open(&s)?;
    Ok(Json(
        store::list_secrets(&s.db, &f, page.limit, page.offset).await?,
    ))
}

async fn create(
    State(s): State<AppState>,
    who: Authed<Write>,
    addr: ClientAddr,
    Json(input): Json<NewSecret>,
) -> Result<(StatusCode, Json<SecretInfo>), ApiError> {
    ensure_open(&s)?;
    let c = caller(&s, &who, addr);
    let info = actions::create_secret(&VaultState::from_ref(&s), &c.actor(), input).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn view(
    State(s): State<AppState>,
    who: Authed<Write>,
    addr: ClientAddr,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    ensure_open(&s)?;
    require_step_up(&s, &who)?;
    let c = caller(&s, &who, addr);
    Ok(revealed(
        reads::view_secret(&VaultState::from_ref(&s), &c.actor(), id, None).await?,
    ))
}

async fn view_version(
    State(s): State<AppState>,
    who: Authed<Write>,
    addr: ClientAddr,
    Path((id, version)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    ensure_open(&s)?;
    require_step_up(&s, &who)?;
    let c = caller(&s, &who, addr);
    Ok(revealed(
        reads::view_secret(&VaultState::from_ref(&s), &c.actor(), id, Some(version)).await?,
    ))
}

async fn update(
    State(s): State<AppState>,
    who: Authed<Write>,
    addr: ClientAddr,
    Path(id): Path<i64>,
    Json(patch): Json<SecretPatch>,
) -> ApiResult<SecretInfo> {
    ensure_open(&s)?;
    let c = caller(&s, &who, addr);
    Ok(Json(
        actions::update_secret(&VaultState::from_ref(&s), &c.actor(), id, patch).await?,
    ))
}

async fn delete_secret(
    State(s): State<AppState>,
    who: Authed<Admin>,
    addr: ClientAddr,
    Path(id): Path<i64>,
) -> ApiResult<SecretInfo> {
    ensure_open(&s)?;
    let c = caller(&s, &who, addr);
    Ok(Json(
        actions::delete_secret(&VaultState::from_ref(&s), &c.actor(), id).await?,
    ))
}

async fn undelete(
    State(s): State<AppState>,
    who: Authed<Admin>,
    addr: ClientAddr,
    Path(id): Path<i64>,
) -> ApiResult<SecretInfo> {
    ensure_open(&s)?;
    let c = caller(&s, &who, addr);
    Ok(Json(
        actions::undelete_secret(&VaultState::from_ref(&s), &c.actor(), id).await?,
    ))
}

async fn purge(
    State(s): State<AppState>,
    who: Authed<Admin>,
    addr: ClientAddr,
    Path(id): Path<i64>,
) -> ApiResult<SecretInfo> {
    ensure_open(&s)?;
    let c = caller(&s, &who, addr);
    Ok(Json(
        actions::purge_secret(&VaultState::from_ref(&s), &c.actor(), id).await?,
    ))
}

async fn versions(
    State(s): State<AppState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<Vec<VersionInfo>> {
    ensure_open(&s)?;
    let info = actions::secret_info(&s.db, id).await?;
    Ok(Json(
        store::list_versions(&s.db, id, info.current_version).await?,
    ))
}

async fn restore_version(
    State(s): State<AppState>,
    who: Authed<Write>,
    addr: ClientAddr,
    Path((id, version)): Path<(i64, i64)>,
) -> ApiResult<SecretInfo> {
    ensure_open(&s)?;
    let c = caller(&s, &who, addr);
    Ok(Json(
        actions::restore_version(&VaultState::from_ref(&s), &c.actor(), id, version).await?,
    ))
}

/// The audit trail stays readable after a purge (it is the record of what happened).
async fn audit(
    State(s): State<AppState>,
    _: Authed<Write>,
    page: Pagination,
    Path(id): Path<i64>,
) -> ApiResult<Vec<AuditEntry>> {
    ensure_open(&s)?;
    if store::get_secret(&s.db, id).await?.is_none() {
        return Err(ApiError::not_found("secret"));
    }
    Ok(Json(
        store::list_audit(&s.db, id, page.limit, page.offset).await?,
    ))
}

/// What every vault call answers while sealed; the reason is for admins.
pub const SEALED_MESSAGE: &str =
    "the vault is sealed; an admin can read why in GET /api/vault/status or the server log";

/// Answers while sealed too: this is where an admin learns why. Where the key file lives, the
/// key ids and the sealed reason (which names both) are for admins only: they tell an
/// intruder what to steal.
async fn status(State(s): State<AppState>, who: Authed<Read>) -> ApiResult<VaultStatus> {
    let mut st = actions::status(&VaultState::from_ref(&s)).await?;
    if !who.identity().can(crate::auth::Capability::Admin) {
        st.key_file = None;
        st.active_key_id = None;
        st.reason = st.reason.map(|_| SEALED_MESSAGE.to_string());
    }
    Ok(Json(st))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StepUp {
    password: String,
}

#[derive(serde::Serialize)]
struct SteppedUp {
    authenticated_at: String,
    valid_for_seconds: i64,
}

async fn step_up(
    State(s): State<AppState>,
    who: Authed<Read>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<StepUp>,
) -> ApiResult<SteppedUp> {
    let at = crate::auth::actions::confirm_password(
        &s.auth_state(),
        who.identity(),
        &body.password,
        addr.as_deref(),
    )
    .await?;
    Ok(Json(SteppedUp {
        authenticated_at: at,
        valid_for_seconds: STEP_UP_WINDOW_SECS,
    }))
}

async fn rotate_key(
    State(s): State<AppState>,
    who: Authed<Admin>,
    addr: ClientAddr,
) -> ApiResult<RotationReport> {
    ensure_open(&s)?;
    let c = caller(&s, &who, addr);
    Ok(Json(
        rotation::rotate(&VaultState::from_ref(&s), &c.actor()).await?,
    ))
}
