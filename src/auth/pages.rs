//! Dashboard pages for logging in and out, the account page, and Users & tokens.

use super::actions::{self, AuthError, NewApiToken, NewUser, UserPatch};
use super::extract::{self as ex, Admin, PageAuthed, PageForm, Read, Write, SESSION_COOKIE};
use super::{store, ApiToken, Capability, Role, Scope, User};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{parse_json, parse_urlencoded, ClientAddr};
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError};
use crate::web::{Path, Query};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout_post))
        .route("/account", get(account_page))
        .route("/account/password", post(account_password))
        .route("/users", get(users_page).post(users_create))
        .route("/users/{id}", post(users_update))
        .route("/users/{id}/delete", post(users_delete))
        .route("/tokens", post(tokens_create))
        .route("/tokens/{id}/revoke", post(tokens_revoke))
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    error: Option<String>,
    notice: Option<String>,
    next: String,
    username: String,
    default_password: bool,
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
    logged_out: Option<String>,
}

/// Only same-site paths: `/x` but not `//evil.example` or `/\evil`.
fn safe_next(next: Option<&str>) -> String {
    next.and_then(crate::web::local_path)
        .unwrap_or("/")
        .to_string()
}

async fn login_page(
    State(s): State<AppState>,
    ex::MaybeAuthed(who): ex::MaybeAuthed,
    Query(q): Query<LoginQuery>,
) -> Response {
    // Already signed in: go where the login would have led.
    if who.is_some_and(|w| w.csrf_token().is_some()) {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    let notice = if q.expired.is_some() {
        Some("Your session expired. Log in again to continue.".to_string())
    } else if q.logged_out.is_some() {
        Some("You are logged out.".to_string())
    } else {
        None
    };
    render(&LoginPage {
        error: None,
        notice,
        next: safe_next(q.next.as_deref()),
        username: String::new(),
        default_password: s.config.uses_default_password(),
    })
}

#[derive(Deserialize)]
struct LoginInput {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

pub fn session_cookie(state: &AppState, value: &str) -> HeaderValue {
    let secure = if state.config.session_cookie_secure {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("architect_session=; Path=/"))
}

fn clear_cookie(state: &AppState) -> HeaderValue {
    let secure = if state.config.session_cookie_secure {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("architect_session=; Path=/; Max-Age=0"))
}

/// `POST /login`: a form (username, password, next) or JSON. Forms get a redirect or the
/// login page with an error; JSON gets `{success, username, role, csrf_token}` or an error.
async fn login_submit(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let parsed: Result<LoginInput, ApiError> = if is_json {
        parse_json(&body)
    } else {
        std::str::from_utf8(&body)
            .map_err(|_| ApiError::bad_request("form is not UTF-8"))
            .and_then(parse_urlencoded)
    };
    let input = match parsed {
        Ok(i) => i,
        Err(e) if is_json => return e.into_response(),
        Err(e) => return PageError::Error(e).into_response(),
    };
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|u| u.chars().take(300).collect::<String>());
    let result = actions::login(
        &s.auth_state(),
        &input.username,
        &input.password,
        addr.as_deref(),
        ua.as_deref(),
    )
    .await;
    match result {
        Ok(done) => {
            let cookie = session_cookie(&s, &done.cookie);
            let mut resp = if is_json {
                crate::http::extract::Json(serde_json::json!({
                    "success": true,
                    "username": done.user.username,
                    "role": done.user.role,
                    "csrf_token": done.csrf_token,
                    "expires_at": done.expires_at,
                }))
                .into_response()
            } else {
                Redirect::to(&safe_next(input.next.as_deref())).into_response()
            };
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp
        }
        Err(e) => {
            let err = ApiError::from(e);
            if is_json {
                return err.into_response();
            }
            let status = err.status;
            let retry = err.retry_after;
            let mut resp = (
                status,
                render(&LoginPage {
                    error: Some(err.message),
                    notice: None,
                    next: safe_next(input.next.as_deref()),
                    username: input.username.chars().take(64).collect(),
                    default_password: s.config.uses_default_password(),
                }),
            )
                .into_response();
            if let Some(r) = retry.and_then(|r| HeaderValue::from_str(&r.to_string()).ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, r);
            }
            resp
        }
    }
}

async fn end_session(s: &AppState, who: Option<&super::Identity>) -> Response {
    if let Some(who) = who {
        if let Err(e) = actions::logout(&s.auth_state(), who).await {
            return PageError::Error(e.into()).into_response();
        }
    }
    let mut resp = Redirect::to("/login?logged_out=1").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(s));
    resp
}

#[derive(Deserialize)]
struct Empty {}

/// `POST /logout` with the session's CSRF token (form field or header). There is no
/// `GET /logout`: a link or an image on any page could otherwise end the session.
async fn logout_post(
    State(s): State<AppState>,
    PageForm(who, Empty {}, ..): PageForm<Read, Empty>,
) -> Response {
    end_session(&s, Some(&who)).await
}

// ---- account ----

#[derive(Template)]
#[template(path = "auth/account.html")]
struct AccountPage {
    layout: Layout,
}

async fn account_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(flash): Query<Flash>,
) -> Response {
    render(&AccountPage {
        layout: Layout::new(&s, &who, "", "Account").with_flash(&flash),
    })
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

async fn account_password(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Read, PasswordForm>,
) -> Response {
    if f.new_password != f.confirm_password {
        return back_with_error(
            "/account",
            &ApiError::invalid("confirm_password", "the new passwords do not match"),
        );
    }
    match actions::change_own_password(&s.auth_state(), &who, &f.current_password, &f.new_password)
        .await
    {
        Ok(()) => see_other(
            "/account",
            "Password changed. Your other sessions were signed out.",
        ),
        Err(e) => back_with_error("/account", &e.into()),
    }
}

// ---- users & tokens ----

#[derive(Template)]
#[template(path = "auth/users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<User>,
    tokens: Vec<ApiToken>,
    roles: &'static [Role],
    scopes: &'static [Scope],
    new_token: Option<String>,
    user_id: i64,
}

#[derive(Deserialize, Default)]
struct UsersQuery {
    notice: Option<String>,
    error: Option<String>,
}

async fn users_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(q): Query<UsersQuery>,
) -> Result<Response, PageError> {
    users_view(
        &s,
        &who,
        Flash {
            notice: q.notice,
            error: q.error,
        },
        None,
    )
    .await
}

async fn users_view(
    s: &AppState,
    who: &super::Identity,
    flash: Flash,
    new_token: Option<String>,
) -> Result<Response, PageError> {
    let is_admin = who.can(Capability::Admin);
    let users = if is_admin {
        store::list_users(&s.db, 1000, 0).await?
    } else {
        Vec::new()
    };
    let owner = (!is_admin).then_some(who.user_id);
    let tokens = store::list_tokens(&s.db, owner, &s.clock.now_str(), 1000, 0).await?;
    let layout = Layout::new(s, who, "users", "Users & tokens").with_flash(&flash);
    Ok(render(&UsersPage {
        layout,
        users,
        tokens,
        roles: Role::ALL,
        scopes: Scope::ALL,
        new_token,
        user_id: who.user_id,
    }))
}

#[derive(Deserialize)]
struct NewUserForm {
    username: String,
    password: String,
    role: Role,
}

async fn users_create(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Admin, NewUserForm>,
) -> Response {
    let input = NewUser {
        username: f.username,
        password: f.password,
        role: Some(f.role),
    };
    match actions::create_user(&s.auth_state(), &who, input).await {
        Ok(u) => see_other("/users", &format!("User {} created.", u.username)),
        Err(e) => back_with_error("/users", &e.into()),
    }
}

#[derive(Deserialize)]
struct UserUpdateForm {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    disabled: Option<String>,
}

async fn users_update(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Admin, UserUpdateForm>,
) -> Response {
    let patch = UserPatch {
        role: f.role,
        password: f.password.filter(|p| !p.is_empty()),
        disabled: f.disabled.map(|d| d == "true"),
    };
    match actions::update_user(&s.auth_state(), &who, id, patch).await {
        Ok(u) => see_other("/users", &format!("User {} updated.", u.username)),
        Err(e) => back_with_error("/users", &e.into()),
    }
}

async fn users_delete(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, Empty {}, ..): PageForm<Admin, Empty>,
) -> Response {
    match actions::delete_user(&s.auth_state(), &who, id).await {
        Ok(()) => see_other("/users", "User deleted."),
        Err(e) => back_with_error("/users", &e.into()),
    }
}

#[derive(Deserialize)]
struct NewTokenForm {
    name: String,
    scope: Scope,
    #[serde(default)]
    expires_in_days: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

/// Creates a token and shows its secret on this one response (never again).
async fn tokens_create(
    State(s): State<AppState>,
    PageForm(who, f, ..): PageForm<Write, NewTokenForm>,
) -> Result<Response, PageError> {
    let num = |field: &'static str, v: Option<String>| -> Result<Option<i64>, ApiError> {
        match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(field, format!("{field} must be a number"))),
        }
    };
    let input = match (
        num("expires_in_days", f.expires_in_days),
        num("user_id", f.user_id),
    ) {
        (Ok(expires_in_days), Ok(user_id)) => NewApiToken {
            name: f.name,
            scope: f.scope,
            expires_in_days,
            user_id,
        },
        (Err(e), _) | (_, Err(e)) => return Ok(back_with_error("/users", &e)),
    };
    match actions::create_token(&s.auth_state(), &who, input).await {
        Ok(created) => {
            let flash = Flash {
                notice: Some(format!(
                    "Token '{}' created. Copy it now: it is not shown again.",
                    created.info.name
                )),
                error: None,
            };
            let mut resp = users_view(&s, &who, flash, Some(created.token)).await?;
            *resp.status_mut() = StatusCode::CREATED;
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(resp)
        }
        Err(AuthError::Invalid { field, message }) => Ok(back_with_error(
            "/users",
            &ApiError::invalid(field, message),
        )),
        Err(e) => Ok(back_with_error("/users", &e.into())),
    }
}

async fn tokens_revoke(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, Empty {}, ..): PageForm<Write, Empty>,
) -> Response {
    match actions::revoke_token(&s.auth_state(), &who, id).await {
        Ok(t) => see_other("/users", &format!("Token '{}' revoked.", t.name)),
        Err(e) => back_with_error("/users", &e.into()),
    }
}
