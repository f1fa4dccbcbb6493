//! JSON routes for sessions, CSRF tokens, users, API tokens and service accounts.

use super::actions::{self, AuthError, NewApiToken, NewUser, UserPatch};
use super::extract::{Admin, Authed, Read, Write};
use super::{store, ApiToken, AuthVia, Capability, CreatedToken, Identity, User};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Pagination, Path};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/session", get(session_info))
        .route("/api/session/extend", post(session_extend))
        .route("/api/csrf/token", get(csrf_token))
        .route("/api/me", get(me))
        .route("/api/account/password", post(change_password))
        .route("/api/users", get(list_users).post(create_user))
        .route(
            "/api/users/{id}",
            get(get_user).put(update_user).delete(delete_user),
        )
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/tokens/{id}", get(get_token).delete(revoke_token))
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadCredentials => ApiError::invalid_credentials(),
            AuthError::Throttled(secs) => ApiError::too_many(
                format!("too many failed logins; try again in {secs} seconds"),
                secs,
            ),
            AuthError::NotFound(what) => ApiError::not_found(what),
            AuthError::Invalid { field, message } => ApiError::invalid(field, message),
            AuthError::Conflict(m) => ApiError::conflict(m),
            AuthError::Forbidden(m) => ApiError::forbidden(m),
            AuthError::Db(e) => ApiError::from(e),
        }
    }
}

/// `GET /api/session`: who is logged in and how long the session has left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub authenticated: bool,
    pub username: String,
    pub role: String,
    /// Seconds until the session expires without further activity (0 for tokens: no expiry
    /// by inactivity).
    pub seconds_left: i64,
    pub expires_at: Option<String>,
    pub timeout_seconds: u64,
    pub auth: &'static str,
}

fn session_info_of(state: &AppState, who: &Identity) -> SessionInfo {
    let (seconds_left, expires_at, auth) = match &who.via {
        AuthVia::Session { expires_at, .. } => {
            let left = crate::clock::parse(expires_at)
                .map(|t| (t - state.clock.now()).whole_seconds().max(0))
                .unwrap_or(0);
            (left, Some(expires_at.clone()), "session")
        }
        AuthVia::Token { .. } => (0, None, "token"),
    };
    SessionInfo {
        authenticated: true,
        username: who.username.clone(),
        role: who.role.to_string(),
        seconds_left,
        expires_at,
        timeout_seconds: state.config.session_timeout,
        auth,
    }
}

async fn session_info(State(s): State<AppState>, who: Authed<Read>) -> Json<SessionInfo> {
    Json(session_info_of(&s, who.identity()))
}

/// Any authenticated request slides the expiry; this one exists so the "Stay Logged In"
/// button has something explicit to call. Viewers may extend their own session.
async fn session_extend(State(s): State<AppState>, who: Authed<Read>) -> Json<SessionInfo> {
    Json(session_info_of(&s, who.identity()))
}

#[derive(Serialize)]
struct CsrfToken {
    csrf_token: String,
}

async fn csrf_token(who: Authed<Read>) -> Result<Json<CsrfToken>, ApiError> {
    match who.identity().csrf_token() {
        Some(t) => Ok(Json(CsrfToken {
            csrf_token: t.to_string(),
        })),
        None => Err(ApiError::bad_request(
            "bearer-token requests need no CSRF token; this endpoint is for logged-in sessions",
        )),
    }
}

#[derive(Serialize)]
struct Me {
    user_id: i64,
    username: String,
    role: String,
    auth: &'static str,
    scope: Option<String>,
}

async fn me(who: Authed<Read>) -> Json<Me> {
    let id = who.identity();
    let (auth, scope) = match &id.via {
        AuthVia::Session { .. } => ("session", None),
        AuthVia::Token { scope, .. } => ("token", Some(scope.to_string())),
    };
    Json(Me {
        user_id: id.user_id,
        username: id.username.clone(),
        role: id.role.to_string(),
        auth,
        scope,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(s): State<AppState>,
    who: Authed<Read>,
    Json(body): Json<PasswordChange>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actions::change_own_password(
        &s.auth_state(),
        who.identity(),
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(Json(serde_json::json!({"success": true})))
}

// ---- users (admin) ----

async fn list_users(
    State(s): State<AppState>,
    _: Authed<Admin>,
    page: Pagination,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(
        store::list_users(&s.db, page.limit, page.offset).await?,
    ))
}

async fn create_user(
    State(s): State<AppState>,
    who: Authed<Admin>,
    Json(input): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(actions::create_user(&s.auth_state(), who.identity(), input).await?),
    ))
}

async fn get_user(
    State(s): State<AppState>,
    _: Authed<Admin>,
    Path(id): Path<i64>,
) -> Result<Json<User>, ApiError> {
    store::get_user(&s.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("user"))
}

async fn update_user(
    State(s): State<AppState>,
    who: Authed<Admin>,
    Path(id): Path<i64>,
    Json(patch): Json<UserPatch>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(
        actions::update_user(&s.auth_state(), who.identity(), id, patch).await?,
    ))
}

async fn delete_user(
    State(s): State<AppState>,
    who: Authed<Admin>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    actions::delete_user(&s.auth_state(), who.identity(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- API tokens ----

/// Admins see every token; others see their own.
fn visible_owner(who: &Identity) -> Option<i64> {
    (!who.can(Capability::Admin)).then_some(who.user_id)
}

async fn list_tokens(
    State(s): State<AppState>,
    who: Authed<Read>,
    page: Pagination,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    let now = s.clock.now_str();
    Ok(Json(
        store::list_tokens(
            &s.db,
            visible_owner(who.identity()),
            &now,
            page.limit,
            page.offset,
        )
        .await?,
    ))
}

async fn get_token(
    State(s): State<AppState>,
    who: Authed<Read>,
    Path(id): Path<i64>,
) -> Result<Json<ApiToken>, ApiError> {
    let now = s.clock.now_str();
    let t = store::get_token(&s.db, id, &now)
        .await?
        .ok_or_else(|| ApiError::not_found("token"))?;
    if visible_owner(who.identity()).is_some_and(|u| u != t.user_id) {
        return Err(ApiError::not_found("token"));
    }
    Ok(Json(t))
}

async fn create_token(
    State(s): State<AppState>,
    who: Authed<Write>,
    Json(input): Json<NewApiToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(actions::create_token(&s.auth_state(), who.identity(), input).await?),
    ))
}

async fn revoke_token(
    State(s): State<AppState>,
    who: Authed<Write>,
    Path(id): Path<i64>,
) -> Result<Json<ApiToken>, ApiError> {
    Ok(Json(
        actions::revoke_token(&s.auth_state(), who.identity(), id).await?,
    ))
}
