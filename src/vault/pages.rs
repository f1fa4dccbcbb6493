//! The Vault panel (System > Vault): the list with categories and access counts, New Secret,
//! a secret's page (reveal and copy, edit, versions, delete, audit) and master key rotation.
//!
//! Everything works without JavaScript: a reveal is a form post answered by the same page with
//! the value shown (and `Cache-Control: no-store`); `static/vault.js` only adds the copy button.
//! A reveal asks for the password again when the session's last password is older than the
//! step-up window, and counts as a view (access count, audit record) like the API.

use super::actions::{self, Caller};
use super::VaultState;
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Admin, PageAuthed, PageForm, Read, Write};
use crate::auth::Identity;
use crate::http::error::ApiError;
use crate::http::extract::{ClientAddr, Pagination};
use crate::web::{back_with_error, render, see_other, Flash, ForPage, Layout, PageError};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::FromRef;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/vault", get(list_page).post(create))
        .route("/vault/rotate-key", post(rotate_key))
        .route("/vault/{id}", get(secret_page).post(update))
        .route("/vault/{id}/reveal", post(reveal))
        .route("/vault/{id}/delete", post(delete))
        .route("/vault/{id}/undelete", post(undelete))
        .route("/vault/{id}/purge", post(purge))
        .route("/vault/{id}/versions/{version}/restore", post(restore))
}

fn caller(s: &AppState, who: &Identity, addr: ClientAddr) -> Caller {
    Caller::new(who, addr.0, s.clock.now_str())
}

/// Browsers send a textarea's line breaks as CRLF whatever was typed or pasted; a pasted SSH
/// key or certificate should keep its LF line ends.
fn from_textarea(v: SecretValue) -> SecretValue {
    if v.expose().contains("\r\n") {
        SecretValue::new(v.expose().replace("\r\n", "\n"))
    } else {
        v
    }
}

fn api_error(e: VaultError) -> ApiError {
    ApiError::from(e)
}

#[derive(Template)]
#[template(path = "vault/sealed.html")]
struct SealedPage {
    layout: Layout,
    reason: String,
}

/// The vault's pages answer 503 with the reason while the vault is sealed.
fn sealed_page(s: &AppState, who: &Identity) -> Option<Response> {
    let reason = s.vault.sealed_reason()?;
    // The reason names the key file and key ids: admins only.
    let reason = if who.can(crate::auth::Capability::Admin) {
        reason
    } else {
        super::api::SEALED_MESSAGE.to_string()
    };
    let layout = Layout::new(s, who, "vault", "Vault (sealed)");
    let mut resp = render(&SealedPage { layout, reason });
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    Some(resp)
}

// ---- the list ----

/// Filters and flash messages arrive as text (an empty field means "any").
#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    include_deleted: Option<String>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "vault/list.html")]
struct ListPage {
    layout: Layout,
    secrets: Vec<SecretInfo>,
    categories: &'static [SecretCategory],
    q: String,
    category: String,
    include_deleted: bool,
    status: VaultStatus,
}

async fn list_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    if let Some(r) = sealed_page(&s, &who) {
        return Ok(r);
    }
    let category = q
        .category
        .as_deref()
        .map(str::parse::<SecretCategory>)
        .transpose()
        .map_err(|m| ApiError::invalid("category", m))?;
    let include_deleted = q.include_deleted.as_deref() == Some("true");
    let filter = SecretFilter {
        category,
        q: q.q.clone(),
        name: None,
        include_deleted: Some(include_deleted),
    };
    let secrets = store::list_secrets(&s.db, &filter, page.limit, page.offset).await?;
    let status = actions::status(&VaultState::from_ref(&s))
        .await
        .map_err(api_error)?;
    let flash = Flash {
        notice: q.notice,
        error: q.error,
    };
    Ok(render(&ListPage {
        layout: Layout::new(&s, &who, "vault", "Vault").with_flash(&flash),
        secrets,
        categories: SecretCategory::ALL,
        q: q.q.unwrap_or_default(),
        category: q.category.unwrap_or_default(),
        include_deleted,
        status,
    }))
}

#[derive(Deserialize)]
struct NewSecretForm {
    name: String,
    value: SecretValue,
    category: SecretCategory,
    #[serde(default)]
    description: String,
}

async fn create(
    State(s): State<AppState>,
    addr: ClientAddr,
    PageForm(who, f, ..): PageForm<Write, NewSecretForm>,
) -> Response {
    let c = caller(&s, &who, addr);
    let input = NewSecret {
        name: f.name,
        value: from_textarea(f.value),
        category: Some(f.category),
        description: Some(f.description),
    };
    match actions::create_secret(&VaultState::from_ref(&s), &c.actor(), input).await {
        Ok(info) => see_other(
            &format!("/vault/{}", info.id),
            &format!("Secret '{}' stored encrypted.", info.name),
        ),
        Err(e) => back_with_error("/vault", &api_error(e)),
    }
}

// ---- one secret ----

#[derive(Deserialize, Default)]
struct SecretQuery {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "vault/secret.html")]
struct SecretPage {
    layout: Layout,
    secret: SecretInfo,
    versions: Vec<VersionInfo>,
    audit: Vec<AuditEntry>,
    categories: &'static [SecretCategory],
    /// The version the reveal form offers first.
    pick: i64,
    /// The password must be given with the reveal.
    step_up: bool,
    step_up_minutes: i64,
    /// (version, value) after a reveal; the only page that ever holds a value.
    revealed: Option<(i64, SecretValue)>,
}

async fn load_secret_page(
    s: &AppState,
    who: &Identity,
    id: i64,
    flash: &Flash,
    pick: Option<i64>,
    revealed: Option<(i64, SecretValue)>,
) -> Result<SecretPage, PageError> {
    let secret = actions::secret_info(&s.db, id).await.map_err(api_error)?;
    let versions = store::list_versions(&s.db, id, secret.current_version).await?;
    let audit = if who.can(crate::auth::Capability::Write) {
        store::list_audit(&s.db, id, 50, 0).await?
    } else {
        Vec::new()
    };
    let title = format!("Vault · {}", secret.name);
    Ok(SecretPage {
        layout: Layout::new(s, who, "vault", &title).with_flash(flash),
        pick: pick.unwrap_or(secret.current_version),
        secret,
        versions,
        audit,
        categories: SecretCategory::ALL,
        step_up: needs_step_up(who, s.clock.now()),
        step_up_minutes: STEP_UP_WINDOW_SECS / 60,
        revealed,
    })
}

async fn secret_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(q): Query<SecretQuery>,
) -> Result<Response, PageError> {
    if let Some(r) = sealed_page(&s, &who) {
        return Ok(r);
    }
    let pick = match q.version.as_deref() {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| ApiError::invalid("version", "version must be a number"))?,
        ),
        None => None,
    };
    let flash = Flash {
        notice: q.notice,
        error: q.error,
    };
    let page = load_secret_page(&s, &who, id, &flash, pick, None).await?;
    Ok(render(&page))
}

#[derive(Deserialize)]
struct RevealForm {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Shows a value: step-up first when needed, then the audited view, then the page with the
/// value, which no cache may keep.
async fn reveal(
    State(s): State<AppState>,
    addr: ClientAddr,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, RevealForm>,
) -> Result<Response, PageError> {
    if let Some(r) = sealed_page(&s, &who) {
        return Ok(r);
    }
    let back = format!("/vault/{id}");
    let version = match f
        .version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(v) => match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let e = ApiError::invalid("version", "version must be a number");
                return Ok(back_with_error(&back, &e));
            }
        },
        None => None,
    };
    let mut who = who;
    if needs_step_up(&who, s.clock.now()) {
        let password = f.password.unwrap_or_default();
        if password.is_empty() {
            let e = ApiError::invalid("password", "enter your password to reveal the value");
            return Ok(back_with_error(&back, &e));
        }
        match crate::auth::actions::confirm_password(
            &s.auth_state(),
            &who,
            &password,
            addr.0.as_deref(),
        )
        .await
        {
            Ok(at) => {
                if let crate::auth::AuthVia::Session {
                    authenticated_at, ..
                } = &mut who.via
                {
                    *authenticated_at = at;
                }
            }
            Err(e) => return Ok(back_with_error(&back, &ApiError::from(e))),
        }
    }
    let c = caller(&s, &who, addr);
    let view = match reads::view_secret(&VaultState::from_ref(&s), &c.actor(), id, version).await {
        Ok(v) => v,
        Err(e @ VaultError::Integrity { .. }) => return Err(api_error(e).into()),
        Err(e) => return Ok(back_with_error(&back, &api_error(e))),
    };
    let revealed = Some((view.version, view.value));
    let page = load_secret_page(&s, &who, id, &Flash::default(), version, revealed).await?;
    let mut resp = render(&page);
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    h.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    Ok(resp)
}

#[derive(Deserialize)]
struct EditForm {
    name: String,
    category: SecretCategory,
    #[serde(default)]
    description: String,
    /// Empty keeps the current value; anything else becomes a new version.
    #[serde(default)]
    value: Option<SecretValue>,
}

async fn update(
    State(s): State<AppState>,
    addr: ClientAddr,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, EditForm>,
) -> Response {
    let c = caller(&s, &who, addr);
    let patch = SecretPatch {
        name: Some(f.name),
        value: f.value.filter(|v| !v.is_empty()).map(from_textarea),
        category: Some(f.category),
        description: Some(f.description),
    };
    let back = format!("/vault/{id}");
    match actions::update_secret(&VaultState::from_ref(&s), &c.actor(), id, patch).await {
        Ok(info) => see_other(
            &back,
            &format!(
                "Secret '{}' saved (current version {}).",
                info.name, info.current_version
            ),
        ),
        Err(e) => back_with_error(&back, &api_error(e)),
    }
}

#[derive(Deserialize)]
struct Empty {}

async fn delete(
    State(s): State<AppState>,
    addr: ClientAddr,
    Path(id): Path<i64>,
    PageForm(who, ..): PageForm<Admin, Empty>,
) -> Response {
    let c = caller(&s, &who, addr);
    match actions::delete_secret(&VaultState::from_ref(&s), &c.actor(), id).await {
        Ok(info) => see_other(
            "/vault",
            &format!(
                "Secret '{}' deleted. An admin can restore or purge it (show deleted).",
                info.name
            ),
        ),
        Err(e) => back_with_error(&format!("/vault/{id}"), &api_error(e)),
    }
}

async fn undelete(
    State(s): State<AppState>,
    addr: ClientAddr,
    Path(id): Path<i64>,
    PageForm(who, ..): PageForm<Admin, Empty>,
) -> Response {
    let c = caller(&s, &who, addr);
    let back = format!("/vault/{id}");
    match actions::undelete_secret(&VaultState::from_ref(&s), &c.actor(), id).await {
        Ok(info) => see_other(&back, &format!("Secret '{}' restored.", info.name)),
        Err(e) => back_with_error(&back, &api_error(e)),
    }
}

async fn purge(
    State(s): State<AppState>,
    addr: ClientAddr,
    Path(id): Path<i64>,
    PageForm(who, ..): PageForm<Admin, Empty>,
) -> Response {
    let c = caller(&s, &who, addr);
    match actions::purge_secret(&VaultState::from_ref(&s), &c.actor(), id).await {
        Ok(info) => see_other(
            "/vault",
            &format!("Secret '{}' purged: every version is destroyed.", info.name),
        ),
        Err(e) => back_with_error(&format!("/vault/{id}"), &api_error(e)),
    }
}

async fn restore(
    State(s): State<AppState>,
    addr: ClientAddr,
    Path((id, version)): Path<(i64, i64)>,
    PageForm(who, ..): PageForm<Write, Empty>,
) -> Response {
    let c = caller(&s, &who, addr);
    let back = format!("/vault/{id}");
    match actions::restore_version(&VaultState::from_ref(&s), &c.actor(), id, version).await {
        Ok(info) => see_other(
            &back,
            &format!(
                "Version {version} restored as version {}.",
                info.current_version
            ),
        ),
        Err(e) => back_with_error(&back, &api_error(e)),
    }
}

async fn rotate_key(
    State(s): State<AppState>,
    addr: ClientAddr,
    PageForm(who, ..): PageForm<Admin, Empty>,
) -> Response {
    let c = caller(&s, &who, addr);
    match rotation::rotate(&VaultState::from_ref(&s), &c.actor()).await {
        Ok(r) => see_other(
            "/vault",
            &format!(
                "Master key rotated: {} data key(s) re-wrapped under key {} in {} ms.",
                r.rewrapped, r.new_key_id, r.duration_ms
            ),
        ),
        Err(e) => back_with_error("/vault", &api_error(e)),
    }
}
