//! SQL for users, sessions, API tokens (`store/tokens.rs`) and login throttling
//! (`store/throttle.rs`). Nothing else touches these tables.

use super::{Role, User};
use sqlx::{AnyConnection, Executor};

mod throttle;
mod tokens;
pub use throttle::*;
pub use tokens::*;

type Any = sqlx::Any;

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    disabled: i64,
    created_at: String,
    updated_at: String,
}

impl UserRow {
    fn into_user(self) -> User {
        User {
            id: self.id,
            username: self.username,
            role: self.role.parse().unwrap_or(Role::Viewer),
            disabled: self.disabled != 0,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const USER_COLS: &str = "id, username, role, disabled, created_at, updated_at";

/// Creates the admin named by ARCHITECT_USER, or makes sure it is an enabled admin with the
/// configured password. The hash is only replaced when the password changed, so a restart
/// does not sign the admin out.
pub async fn ensure_env_admin(
    conn: &mut AnyConnection,
    username: &str,
    password: &str,
    now: &str,
) -> Result<User, sqlx::Error> {
    let key = username.to_lowercase();
    let existing: Option<(i64, String)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE username_key = $1")
            .bind(&key)
            .fetch_optional(&mut *conn)
            .await?;
    let hash_for = |pw: &str| {
        super::hash_password(pw).map_err(|e| sqlx::Error::Protocol(format!("argon2: {e}")))
    };
    let id = match existing {
        None => {
            let hash = hash_for(password)?;
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO users (username, username_key, password_hash, role, disabled, created_at, updated_at, password_changed_at)
                 VALUES ($1, $2, $3, 'admin', 0, $4, $4, $4) RETURNING id",
            )
            .bind(username)
            .bind(&key)
            .bind(hash)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?
        }
        Some((id, hash)) => {
            if !super::verify_password(password, &hash) {
                let hash = hash_for(password)?;
                sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query("UPDATE users SET role = 'admin', disabled = 0 WHERE id = $1 AND (role <> 'admin' OR disabled <> 0)")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            id
        }
    };
    get_user(conn, id)
        .await?
        .ok_or_else(|| sqlx::Error::RowNotFound)
}

pub async fn get_user<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<User>, sqlx::Error> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {USER_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(UserRow::into_user))
}

/// The user and password hash for a login attempt (username matched case-insensitively).
pub async fn find_login<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    username: &str,
) -> Result<Option<(User, String)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct LoginRow {
        #[sqlx(flatten)]
        user: UserRow,
        password_hash: String,
    }
    let row: Option<LoginRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLS}, password_hash FROM users WHERE username_key = $1"
    ))
    .bind(username.to_lowercase())
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| (r.user.into_user(), r.password_hash)))
}

pub async fn password_hash<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    user_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

pub async fn list_users<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    limit: i64,
    offset: i64,
) -> Result<Vec<User>, sqlx::Error> {
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLS} FROM users ORDER BY username_key LIMIT $1 OFFSET $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(UserRow::into_user).collect())
}

/// Inserts a user; a duplicate (case-insensitive) username is a unique violation.
pub async fn create_user(
    conn: &mut AnyConnection,
    username: &str,
    password_hash: &str,
    role: Role,
    now: &str,
) -> Result<User, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, username_key, password_hash, role, disabled, created_at, updated_at, password_changed_at)
         VALUES ($1, $2, $3, $4, 0, $5, $5, $5) RETURNING id",
    )
    .bind(username)
    .bind(username.to_lowercase())
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    get_user(conn, id).await?.ok_or(sqlx::Error::RowNotFound)
}

pub async fn set_role(
    conn: &mut AnyConnection,
    id: i64,
    role: Role,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
        .bind(role.as_str())
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Disabling a user also ends their sessions; their tokens stop working while disabled.
pub async fn set_disabled(
    conn: &mut AnyConnection,
    id: i64,
    disabled: bool,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(disabled))
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if disabled {
        delete_user_sessions(conn, id, None).await?;
    }
    Ok(())
}

/// Replaces a password hash and ends every session of the user except `keep_session`.
pub async fn change_password(
    conn: &mut AnyConnection,
    id: i64,
    hash: &str,
    keep_session: Option<i64>,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3",
    )
    .bind(hash)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    delete_user_sessions(conn, id, keep_session).await
}

pub async fn delete_user(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn count_enabled_admins<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
        .fetch_one(ex)
        .await
}

// ---- sessions ----

pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub now: &'a str,
    pub expires_at: &'a str,
    pub client_addr: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub async fn create_session<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    s: NewSession<'_>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, authenticated_at, last_seen_at, expires_at, client_addr, user_agent)
         VALUES ($1, $2, $3, $4, $4, $4, $5, $6, $7) RETURNING id",
    )
    .bind(s.token_hash)
    .bind(s.user_id)
    .bind(s.csrf_token)
    .bind(s.now)
    .bind(s.expires_at)
    .bind(s.client_addr)
    .bind(s.user_agent)
    .fetch_one(ex)
    .await
}

/// A live session found by its cookie's hash.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct SessionRow {
    pub session_id: i64,
    pub csrf_token: String,
    pub authenticated_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub user_id: i64,
    pub username: String,
    pub role: String,
}

/// The unexpired session for a cookie hash, with its (enabled) user.
pub async fn find_session<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    token_hash: &str,
    now: &str,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id AS session_id, s.csrf_token, s.authenticated_at, s.last_seen_at, s.expires_at,
                u.id AS user_id, u.username, u.role
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(ex)
    .await
}

/// Records activity on a session, pushing its expiry to `expires_at`.
pub async fn touch_session<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    session_id: i64,
    now: &str,
    expires_at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3")
        .bind(now)
        .bind(expires_at)
        .bind(session_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Records that the session's owner just gave the password again (step-up).
pub async fn mark_session_authenticated<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    session_id: i64,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET authenticated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(session_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete_session<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    session_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(session_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete_user_sessions(
    conn: &mut AnyConnection,
    user_id: i64,
    except: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
        .bind(user_id)
        .bind(except.unwrap_or(-1))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes expired sessions and stale throttle rows (a lockout that ended, or an unlocked
/// count whose window started before `throttle_window_floor`); returns how many sessions went.
pub async fn purge_expired(
    conn: &mut AnyConnection,
    now: &str,
    throttle_window_floor: &str,
) -> Result<u64, sqlx::Error> {
    let n = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query(
        "DELETE FROM login_throttle
         WHERE locked_until <= $1 OR (locked_until IS NULL AND window_started_at <= $2)",
    )
    .bind(now)
    .bind(throttle_window_floor)
    .execute(&mut *conn)
    .await?;
    Ok(n)
}
