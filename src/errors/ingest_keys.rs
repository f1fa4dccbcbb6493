//! Per-project ingest keys: the public key of a Sentry-style DSN,
//! `http://KEY@HOST/PROJECT_ID`. A key lets its holder report errors for that project and do
//! nothing else (unlike an `ingest` API token, which reports for any project). Members and
//! admins create, rotate (create again: the old key is revoked in the same transaction) and
//! revoke them; the key is shown once and stored as an HMAC under SECRET_KEY, like API tokens.
//!
//! With `ARCHITECT_ERRORS_REQUIRE_KEY`, anonymous `POST /api/errors` is refused: a report needs
//! a project key (or an ingest token).

use super::actions::ErrorsError;
use super::{store, CreatedIngestKey, ErrorsState, IngestKey};
use crate::activity;
use crate::auth::{random_secret, secret_hash};
use serde_json::json;

/// Every ingest key starts with this, so it is told from an API token (`arch_…`) at a glance.
pub const KEY_PREFIX: &str = "aik_";

type Result<T> = std::result::Result<T, ErrorsError>;

pub fn is_ingest_key(presented: &str) -> bool {
    presented.starts_with(KEY_PREFIX)
}

/// The DSN a Sentry SDK takes for `key` of `project_id`, served at `base` (`http://host:port`).
pub fn dsn(base: &str, key: &str, project_id: i64) -> String {
    let (scheme, host) = base.split_once("://").unwrap_or(("http", base));
    format!(
        "{scheme}://{key}@{}/{project_id}",
        host.trim_end_matches('/')
    )
}

/// The project's active key (never the key itself).
pub async fn active_key(state: &ErrorsState, project_id: i64) -> Result<Option<IngestKey>> {
    if crate::tracking::store::get_project(&state.db, project_id)
        .await?
        .is_none()
    {
        return Err(ErrorsError::NotFound("project"));
    }
    Ok(store::active_key_of(&state.db, project_id).await?)
}

/// Creates the project's key, revoking the one it had (rotation). Returns the key, once.
pub async fn create_key(
    state: &ErrorsState,
    actor: &str,
    project_id: i64,
    base_url: &str,
) -> Result<CreatedIngestKey> {
    let now = state.clock.now_str();
    let key = format!("{KEY_PREFIX}{}", random_secret(24));
    let prefix: String = key.chars().take(KEY_PREFIX.len() + 6).collect();
    let mut tx = crate::db::begin_write(&state.db).await?;
    if crate::tracking::store::get_project(&mut *tx, project_id)
        .await?
        .is_none()
    {
        return Err(ErrorsError::NotFound("project"));
    }
    let rotated = store::revoke_key_of(&mut tx, project_id, &now).await?;
    let info = store::insert_key(
        &mut tx,
        project_id,
        &secret_hash(&state.secret_key, &key),
        &prefix,
        actor,
        &now,
    )
    .await?;
    activity::store::record(
        &mut tx,
        actor,
        if rotated { "rotate" } else { "create" },
        "error_ingest_key",
        Some(info.id),
        &json!({"project_id": project_id, "prefix": prefix}),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedIngestKey {
        dsn: dsn(base_url, &key, project_id),
        info,
        key,
        rotated,
    })
}

/// Revokes the project's key: reports with it are refused from now on.
pub async fn revoke_key(state: &ErrorsState, actor: &str, project_id: i64) -> Result<()> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let Some(active) = store::active_key_of(&mut *tx, project_id).await? else {
        return Err(ErrorsError::NotFound("ingest key"));
    };
    store::revoke_key_of(&mut tx, project_id, &now).await?;
    activity::store::record(
        &mut tx,
        actor,
        "revoke",
        "error_ingest_key",
        Some(active.id),
        &json!({"project_id": project_id, "prefix": active.prefix}),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The project an active key belongs to; none for an unknown or revoked key.
pub async fn project_of(state: &ErrorsState, key: &str) -> Result<Option<i64>> {
    if !is_ingest_key(key) || key.len() > 200 {
        return Ok(None);
    }
    Ok(store::project_of_key(&state.db, &secret_hash(&state.secret_key, key)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns_put_the_key_in_the_user_part() {
        assert_eq!(
            dsn("http://127.0.0.1:8080", "aik_x", 7),
            "http://aik_x@127.0.0.1:8080/7"
        );
        assert_eq!(
            dsn("https://errors.example/", "aik_y", 3),
            "https://aik_y@errors.example/3"
        );
    }
}
