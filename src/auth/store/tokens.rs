//! SQL of API tokens: create, look up (the hot path), touch, revoke, count.

use crate::auth::{ApiToken, Scope};
type Any = sqlx::Any;
use sqlx::{AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    scope: String,
    user_id: i64,
    username: String,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
    revoked_at: Option<String>,
}

impl TokenRow {
    fn into_token(self, now: &str) -> ApiToken {
        let status = if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.as_deref().is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        ApiToken {
            id: self.id,
            name: self.name,
            prefix: self.prefix,
            scope: self.scope.parse().unwrap_or(Scope::Read),
            user_id: self.user_id,
            username: self.username,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            status: status.into(),
        }
    }
}

const TOKEN_SELECT: &str = "SELECT t.id, t.name, t.prefix, t.scope, t.user_id, u.username, t.created_at, t.last_used_at, t.expires_at, t.revoked_at
     FROM api_tokens t JOIN users u ON u.id = t.user_id";

pub struct NewToken<'a> {
    pub name: &'a str,
    pub token_hash: &'a str,
    pub prefix: &'a str,
    pub scope: Scope,
    pub user_id: i64,
    pub now: &'a str,
    pub expires_at: Option<&'a str>,
    /// `(node, session)`: the agent session the token acts for.
    pub session: Option<(&'a str, &'a str)>,
}

pub async fn create_token(
    conn: &mut AnyConnection,
    t: NewToken<'_>,
) -> Result<ApiToken, sqlx::Error> {
    let (session_node, session_name) = match t.session {
        Some((node, name)) => (Some(node), Some(name)),
        None => (None, None),
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_tokens (name, token_hash, prefix, scope, user_id, created_at, expires_at,
                                 session_node, session_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(t.name)
    .bind(t.token_hash)
    .bind(t.prefix)
    .bind(t.scope.as_str())
    .bind(t.user_id)
    .bind(t.now)
    .bind(t.expires_at)
    .bind(session_node)
    .bind(session_name)
    .fetch_one(&mut *conn)
    .await?;
    get_token(conn, id, t.now)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

pub async fn get_token<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
    now: &str,
) -> Result<Option<ApiToken>, sqlx::Error> {
    let row: Option<TokenRow> = sqlx::query_as(&format!("{TOKEN_SELECT} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(|r| r.into_token(now)))
}

/// Tokens, newest first; only `user_id`'s when given.
pub async fn list_tokens<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    user_id: Option<i64>,
    now: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<ApiToken>, sqlx::Error> {
    let rows: Vec<TokenRow> = sqlx::query_as(&format!(
        "{TOKEN_SELECT} WHERE ($1 IS NULL OR t.user_id = $1) ORDER BY t.id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| r.into_token(now)).collect())
}

/// A usable token by its secret's hash: not revoked, not expired, owner enabled.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct TokenAuthRow {
    pub token_id: i64,
    pub scope: String,
    pub last_used_at: Option<String>,
    pub user_id: i64,
    pub username: String,
    pub role: String,
    /// Kept so a cached row (see `token_cache`) still stops working when the token expires.
    pub expires_at: Option<String>,
    /// The agent session the token was minted for (both set, or neither).
    pub session_node: Option<String>,
    pub session_name: Option<String>,
}

pub async fn find_token<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    token_hash: &str,
    now: &str,
) -> Result<Option<TokenAuthRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id AS token_id, t.scope, t.last_used_at, u.id AS user_id, u.username, u.role,
             t.expires_at, t.session_node, t.session_name
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL
           AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled = 0",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(ex)
    .await
}

pub async fn touch_token<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    token_id: i64,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(token_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Revokes a token; false when it was already revoked.
pub async fn revoke_token(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let r =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(r.rows_affected() > 0)
}

/// Token counts per scope (total, active, revoked, expired, used in the last day).
#[derive(sqlx::FromRow, Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TokenCounts {
    pub scope: String,
    pub total: i64,
    pub active: i64,
    pub revoked: i64,
    pub expired: i64,
    pub used_last_24h: i64,
}

pub async fn token_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    user_id: Option<i64>,
    now: &str,
    day_ago: &str,
) -> Result<Vec<TokenCounts>, sqlx::Error> {
    sqlx::query_as(
        "SELECT scope,
                COUNT(*) AS total,
                SUM(CASE WHEN revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1) THEN 1 ELSE 0 END) AS active,
                SUM(CASE WHEN revoked_at IS NOT NULL THEN 1 ELSE 0 END) AS revoked,
                SUM(CASE WHEN revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 THEN 1 ELSE 0 END) AS expired,
                SUM(CASE WHEN last_used_at IS NOT NULL AND last_used_at > $2 THEN 1 ELSE 0 END) AS used_last_24h
         FROM api_tokens WHERE ($3 IS NULL OR user_id = $3) GROUP BY scope ORDER BY scope",
    )
    .bind(now)
    .bind(day_ago)
    .bind(user_id)
    .fetch_all(ex)
    .await
}
