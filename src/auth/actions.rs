//! Account operations shared by the JSON API, the dashboard and `serve` start-up. Each runs in
//! one transaction with its activity record.

use super::store::{self, NewSession, NewToken};
use super::throttle::{self, Limits};
use super::*;
use crate::activity;
use crate::db::is_unique_violation;
use serde_json::json;
use time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid username or password")]
    BadCredentials,
    #[error("too many failed logins; try again in {0} seconds")]
    Throttled(u64),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn invalid(field: &'static str, message: impl Into<String>) -> AuthError {
    AuthError::Invalid {
        field,
        message: message.into(),
    }
}

type Result<T> = std::result::Result<T, AuthError>;

/// A new session: the cookie value (shown to the browser only) and its CSRF token.
pub struct LoggedIn {
    pub cookie: String,
    pub csrf_token: String,
    pub user: User,
    pub expires_at: String,
}

/// Verifies a password login, applying throttling (see [`throttle`]), and opens a session.
pub async fn login(
    state: &AuthState,
    username: &str,
    password: &str,
    client_addr: Option<&str>,
    user_agent: Option<&str>,
) -> Result<LoggedIn> {
    let now = state.clock.now();
    let limits = Limits::of(&state.config);
    let username = username.trim();
    // Overlong input is refused before any hashing work (and counted like any failure).
    let keys = throttle::keys(
        &username
            .chars()
            .take(MAX_USERNAME_LEN + 1)
            .collect::<String>(),
        client_addr,
        limits,
    );
    let attempt = throttle::begin(&state.db, keys, limits, now)
        .await?
        .map_err(|throttle::Locked(secs)| AuthError::Throttled(secs))?;
    let found = if username.is_empty() || username.chars().count() > MAX_USERNAME_LEN {
        None
    } else {
        store::find_login(&state.db, username).await?
    };
    // The user-wide slow-down (failures from every address), outside any transaction.
    tokio::time::sleep(attempt.delay).await;
    // Verify against a dummy hash when the user is unknown, so timing does not tell.
    let (hash, user) = match found {
        Some((u, h)) => (Some(h), Some(u)),
        None => (None, None),
    };
    let ok = password.len() <= MAX_PASSWORD_LEN * 4 && verify_blocking(password, hash).await;
    let user = match (ok, user) {
        (true, Some(u)) if !u.disabled => u,
        _ => {
            if let Some(secs) = throttle::failed(&state.db, attempt, limits, now).await? {
                tracing::warn!(
                    client = client_addr.unwrap_or("-"),
                    "login locked out after repeated failures"
                );
                return Err(AuthError::Throttled(secs));
            }
            return Err(AuthError::BadCredentials);
        }
    };
    throttle::succeeded(&state.db, attempt).await?;
    let mut conn = state.db.acquire().await?;
    let cookie = random_secret(32);
    let csrf_token = random_secret(32);
    let now_s = crate::clock::format(now);
    let expires_at = crate::clock::format(now + state.session_timeout());
    store::create_session(
        &mut *conn,
        NewSession {
            token_hash: &secret_hash(&state.secret_key, &cookie),
            user_id: user.id,
            csrf_token: &csrf_token,
            now: &now_s,
            expires_at: &expires_at,
            client_addr,
            user_agent,
        },
    )
    .await?;
    tracing::info!(user = %user.username, "login");
    Ok(LoggedIn {
        cookie,
        csrf_token,
        user,
        expires_at,
    })
}

pub async fn logout(state: &AuthState, who: &Identity) -> Result<()> {
    if let AuthVia::Session { session_id, .. } = &who.via {
        store::delete_session(&state.db, *session_id).await?;
        // Every replica's session cache forgets it now (see token_cache).
        state.session_cache.invalidate();
    }
    Ok(())
}

/// Creates or refreshes the admin from ARCHITECT_USER / ARCHITECT_PASSWORD.
pub async fn ensure_env_admin(state: &AuthState) -> Result<User> {
    let name = state.config.admin_user.trim();
    validate_username(name).map_err(|m| invalid("ARCHITECT_USER", m))?;
    let mut conn = state.db.acquire().await?;
    let admin = store::ensure_env_admin(
        &mut conn,
        name,
        &state.config.admin_password,
        &state.clock.now_str(),
    )
    .await?;
    // It may re-enable the admin or restore its role.
    state.token_cache.invalidate();
    Ok(admin)
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// argon2id hashing and checking take tens of milliseconds of CPU each: they run on the
/// blocking pool, never on the async runtime's threads (a burst of logins would stall every
/// other request).
async fn hash(pw: &str) -> Result<String> {
    let pw = zeroize::Zeroizing::new(pw.to_string());
    tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| AuthError::Db(sqlx::Error::Protocol(format!("argon2 task: {e}"))))?
        .map_err(|e| AuthError::Db(sqlx::Error::Protocol(format!("argon2: {e}"))))
}

/// Checks `password` against `hash` (against a dummy hash when there is none, so an unknown
/// user takes as long as a known one), on the blocking pool.
async fn verify_blocking(password: &str, hash: Option<String>) -> bool {
    let pw = zeroize::Zeroizing::new(password.to_string());
    tokio::task::spawn_blocking(move || {
        verify_password(&pw, hash.as_deref().unwrap_or(dummy_hash()))
    })
    .await
    .unwrap_or(false)
}

pub async fn create_user(state: &AuthState, actor: &Identity, input: NewUser) -> Result<User> {
    let username = input.username.trim();
    validate_username(username).map_err(|m| invalid("username", m))?;
    validate_new_password(&input.password).map_err(|m| invalid("password", m))?;
    let role = input.role.unwrap_or(Role::Member);
    let hash = hash(&input.password).await?;
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let user = match store::create_user(&mut tx, username, &hash, role, &now).await {
        Ok(u) => u,
        Err(e) if is_unique_violation(&e) => {
            return Err(AuthError::Conflict(format!(
                "a user named '{username}' already exists"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    activity::store::record(
        &mut tx,
        &actor.actor(),
        "create",
        "user",
        Some(user.id),
        &json!({"username": user.username, "role": role}),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Admin changes to a user. Refuses to leave the system without an enabled admin.
pub async fn update_user(
    state: &AuthState,
    actor: &Identity,
    id: i64,
    patch: UserPatch,
) -> Result<User> {
    let new_hash = match &patch.password {
        Some(pw) => {
            validate_new_password(pw).map_err(|m| invalid("password", m))?;
            Some(hash(pw).await?)
        }
        None => None,
    };
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let user = store::get_user(&mut *tx, id)
        .await?
        .ok_or(AuthError::NotFound("user"))?;
    let demotes = patch.role.is_some_and(|r| r != Role::Admin) || patch.disabled == Some(true);
    if demotes
        && user.role == Role::Admin
        && !user.disabled
        && store::count_enabled_admins(&mut *tx).await? <= 1
    {
        return Err(AuthError::Conflict(
            "this is the last enabled admin; make another admin first".into(),
        ));
    }
    if let Some(role) = patch.role {
        store::set_role(&mut tx, id, role, &now).await?;
    }
    if let Some(d) = patch.disabled {
        store::set_disabled(&mut tx, id, d, &now).await?;
    }
    if let Some(h) = &new_hash {
        store::change_password(&mut tx, id, h, None, &now).await?;
    }
    let details = json!({"role": patch.role, "disabled": patch.disabled, "password_changed": patch.password.is_some()});
    activity::store::record(
        &mut tx,
        &actor.actor(),
        "update",
        "user",
        Some(id),
        &details,
        &now,
    )
    .await?;
    let user = store::get_user(&mut *tx, id)
        .await?
        .ok_or(AuthError::NotFound("user"))?;
    tx.commit().await?;
    // A role change or disabling must reach this user's tokens now, not after the cache TTL.
    state.token_cache.invalidate();
    Ok(user)
}

pub async fn delete_user(state: &AuthState, actor: &Identity, id: i64) -> Result<()> {
    if id == actor.user_id {
        return Err(AuthError::Conflict(
            "you cannot delete your own account".into(),
        ));
    }
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let user = store::get_user(&mut *tx, id)
        .await?
        .ok_or(AuthError::NotFound("user"))?;
    if user.role == Role::Admin
        && !user.disabled
        && store::count_enabled_admins(&mut *tx).await? <= 1
    {
        return Err(AuthError::Conflict("this is the last enabled admin".into()));
    }
    store::delete_user(&mut tx, id).await?;
    activity::store::record(
        &mut tx,
        &actor.actor(),
        "delete",
        "user",
        Some(id),
        &json!({"username": user.username}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state.token_cache.invalidate();
    Ok(())
}

/// A person changes their own password (needs the current one); other sessions end.
pub async fn change_own_password(
    state: &AuthState,
    who: &Identity,
    current: &str,
    new: &str,
) -> Result<()> {
    let keep = match &who.via {
        AuthVia::Session { session_id, .. } => Some(*session_id),
        AuthVia::Token { .. } => {
            return Err(AuthError::Forbidden(
                "change passwords from a logged-in session, not with a token".into(),
            ))
        }
    };
    validate_new_password(new).map_err(|m| invalid("new_password", m))?;
    // Both argon2 runs happen before the write transaction: it is held for SQL only.
    let hash_now = store::password_hash(&state.db, who.user_id)
        .await?
        .ok_or(AuthError::NotFound("user"))?;
    if !verify_blocking(current, Some(hash_now.clone())).await {
        return Err(invalid("current_password", "the current password is wrong"));
    }
    let new_hash = hash(new).await?;
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    // The password changed meanwhile (another session): check again against the new one.
    if store::password_hash(&mut *tx, who.user_id)
        .await?
        .as_deref()
        != Some(hash_now.as_str())
    {
        return Err(invalid("current_password", "the current password is wrong"));
    }
    store::change_password(&mut tx, who.user_id, &new_hash, keep, &now).await?;
    activity::store::record(
        &mut tx,
        &who.actor(),
        "change_password",
        "user",
        Some(who.user_id),
        &json!({}),
        &now,
    )
    .await?;
    tx.commit().await?;
    // The user's other sessions ended: cached copies too, on every replica.
    state.session_cache.invalidate();
    Ok(())
}

/// Step-up: a signed-in person gives the password again before a sensitive read (a vault
/// value). Failures count toward the login throttle like failed logins; success moves the
/// session's `authenticated_at` to now. Returns that time.
pub async fn confirm_password(
    state: &AuthState,
    who: &Identity,
    password: &str,
    client_addr: Option<&str>,
) -> Result<String> {
    let session_id = match &who.via {
        AuthVia::Session { session_id, .. } => *session_id,
        AuthVia::Token { .. } => {
            return Err(AuthError::Forbidden(
                "password confirmation is for logged-in sessions; tokens need none".into(),
            ))
        }
    };
    let now = state.clock.now();
    let limits = Limits::of(&state.config);
    let keys = throttle::keys(&who.username, client_addr, limits);
    let attempt = throttle::begin(&state.db, keys, limits, now)
        .await?
        .map_err(|throttle::Locked(secs)| AuthError::Throttled(secs))?;
    let hash = store::password_hash(&state.db, who.user_id)
        .await?
        .ok_or(AuthError::NotFound("user"))?;
    tokio::time::sleep(attempt.delay).await;
    let ok = password.len() <= MAX_PASSWORD_LEN * 4 && verify_blocking(password, Some(hash)).await;
    if !ok {
        if let Some(secs) = throttle::failed(&state.db, attempt, limits, now).await? {
            return Err(AuthError::Throttled(secs));
        }
        return Err(invalid("password", "the password is wrong"));
    }
    throttle::succeeded(&state.db, attempt).await?;
    let mut conn = state.db.acquire().await?;
    let now_s = crate::clock::format(now);
    store::mark_session_authenticated(&mut *conn, session_id, &now_s).await?;
    // Cached copies of the session hold the old `authenticated_at`, on every replica.
    state.session_cache.invalidate();
    Ok(now_s)
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    pub name: String,
    pub scope: Scope,
    /// Days until the token stops working; none means it never expires.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
    /// Admins may make a token for another user (e.g. a `read` token for a viewer).
    #[serde(default)]
    pub user_id: Option<i64>,
}

pub async fn create_token(
    state: &AuthState,
    who: &Identity,
    input: NewApiToken,
) -> Result<CreatedToken> {
    let owner = match input.user_id {
        Some(uid) if uid != who.user_id => {
            if !who.can(Capability::Admin) {
                return Err(AuthError::Forbidden(
                    "only admins create tokens for other users".into(),
                ));
            }
            uid
        }
        _ => who.user_id,
    };
    mint_token(state, &who.actor(), owner, input, None).await
}

/// An agent session's own token (`session start`): agent scope, owned by `owner` (the
/// person who started the session), and bound to `(node, session)` so it acts for that
/// session only. `actor` is recorded in the activity log.
pub async fn create_session_token(
    state: &AuthState,
    actor: &str,
    owner: i64,
    node: &str,
    session: &str,
) -> Result<CreatedToken> {
    let input = NewApiToken {
        name: format!("session {session} hooks"),
        scope: Scope::Agent,
        expires_in_days: None,
        user_id: None,
    };
    mint_token(state, actor, owner, input, Some((node, session))).await
}

async fn mint_token(
    state: &AuthState,
    actor: &str,
    owner: i64,
    input: NewApiToken,
    session: Option<(&str, &str)>,
) -> Result<CreatedToken> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "name must be 1 to 100 characters"));
    }
    if let Some(d) = input.expires_in_days {
        if !(1..=3650).contains(&d) {
            return Err(invalid(
                "expires_in_days",
                "expires_in_days must be between 1 and 3650",
            ));
        }
    }
    let now = state.clock.now();
    let now_s = crate::clock::format(now);
    let expires = input
        .expires_in_days
        .map(|d| crate::clock::format(now + Duration::days(d)));
    let secret = format!("{TOKEN_PREFIX}{}", random_secret(30));
    let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let mut tx = crate::db::begin_write(&state.db).await?;
    if store::get_user(&mut *tx, owner).await?.is_none() {
        return Err(invalid("user_id", format!("user {owner} does not exist")));
    }
    let info = store::create_token(
        &mut tx,
        NewToken {
            name,
            token_hash: &secret_hash(&state.secret_key, &secret),
            prefix: &prefix,
            scope: input.scope,
            user_id: owner,
            now: &now_s,
            expires_at: expires.as_deref(),
            session,
        },
    )
    .await?;
    let bound = session.map(|(node, name)| json!({"node": node, "session": name}));
    activity::store::record(
        &mut tx,
        actor,
        "create",
        "api_token",
        Some(info.id),
        &json!({"name": info.name, "scope": info.scope, "user_id": owner, "session": bound}),
        &now_s,
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedToken {
        info,
        token: secret,
    })
}

/// Revokes a token: its owner or an admin.
pub async fn revoke_token(state: &AuthState, who: &Identity, id: i64) -> Result<ApiToken> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let token = store::get_token(&mut *tx, id, &now)
        .await?
        .ok_or(AuthError::NotFound("token"))?;
    if token.user_id != who.user_id && !who.can(Capability::Admin) {
        // Do not reveal other people's tokens.
        return Err(AuthError::NotFound("token"));
    }
    if store::revoke_token(&mut tx, id, &now).await? {
        activity::store::record(
            &mut tx,
            &who.actor(),
            "revoke",
            "api_token",
            Some(id),
            &json!({"name": token.name}),
            &now,
        )
        .await?;
    }
    let token = store::get_token(&mut *tx, id, &now)
        .await?
        .ok_or(AuthError::NotFound("token"))?;
    tx.commit().await?;
    // After the commit, so a lookup racing with it cannot cache the pre-revocation row.
    state.token_cache.invalidate();
    Ok(token)
}
