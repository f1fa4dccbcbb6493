//! SQL for secrets, their versions, the audit trail and the vault's key state. Nothing else
//! touches these tables. No function here sees a plaintext: versions go in and come out as
//! [`Envelope`]s. Read-modify-write transactions start with a write to the secret's row
//! ([`lock_secret`], [`record_access`]) so they hold the write lock before they read.

use super::crypto::Envelope;
use super::*;
use crate::db::search_pattern;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow)]
struct SecretRow {
    id: i64,
    name: String,
    category: String,
    description: String,
    current_version: i64,
    access_count: i64,
    last_accessed: Option<String>,
    created_by: String,
    created_at: String,
    updated_at: String,
    deleted_at: Option<String>,
    purged_at: Option<String>,
}

/// A secret row with the purge mark that [`SecretInfo`] does not show.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    pub info: SecretInfo,
    pub purged: bool,
}

impl From<SecretRow> for StoredSecret {
    fn from(r: SecretRow) -> Self {
        StoredSecret {
            purged: r.purged_at.is_some(),
            info: SecretInfo {
                id: r.id,
                name: r.name,
                category: r.category.parse().unwrap_or(SecretCategory::DEFAULT),
                description: r.description,
                current_version: r.current_version,
                access_count: r.access_count,
                last_accessed: r.last_accessed,
                created_by: r.created_by,
                created_at: r.created_at,
                updated_at: r.updated_at,
                deleted: r.deleted_at.is_some(),
                deleted_at: r.deleted_at,
            },
        }
    }
}

const SECRET_COLS: &str =
    "id, name, category, description, current_version, access_count, last_accessed,
    created_by, created_at, updated_at, deleted_at, purged_at";

/// Inserts a secret's metadata at version 1 (the caller adds the version row).
pub async fn insert_secret(
    conn: &mut AnyConnection,
    name: &str,
    category: SecretCategory,
    description: &str,
    actor: &str,
    now: &str,
) -> Result<SecretInfo, sqlx::Error> {
    let row: SecretRow = sqlx::query_as(&format!(
        "INSERT INTO secrets (name, name_key, category, description, current_version, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, $5, $6, $6) RETURNING {SECRET_COLS}"
    ))
    .bind(name)
    .bind(name.to_lowercase())
    .bind(category.as_str())
    .bind(description)
    .bind(actor)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(StoredSecret::from(row).info)
}

pub async fn get_secret<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<StoredSecret>, sqlx::Error> {
    let row: Option<SecretRow> =
        sqlx::query_as(&format!("SELECT {SECRET_COLS} FROM secrets WHERE id = $1"))
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(Into::into))
}

/// The live (not deleted, not purged) secret with this name, case-insensitively.
pub async fn find_live_by_name<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    name: &str,
) -> Result<Option<StoredSecret>, sqlx::Error> {
    let row: Option<SecretRow> = sqlx::query_as(&format!(
        "SELECT {SECRET_COLS} FROM secrets WHERE name_key = $1 AND deleted_at IS NULL AND purged_at IS NULL"
    ))
    .bind(name.to_lowercase())
    .fetch_optional(ex)
    .await?;
    Ok(row.map(Into::into))
}

/// Touches a non-purged secret so the transaction holds the write lock; then reads it.
pub async fn lock_secret(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<Option<StoredSecret>, sqlx::Error> {
    sqlx::query("UPDATE secrets SET updated_at = $1 WHERE id = $2 AND purged_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    get_secret(conn, id).await
}

/// Counts a value read on a live secret (and takes the write lock). False when the secret is
/// missing, deleted or purged.
pub async fn record_access(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE secrets SET access_count = access_count + 1, last_accessed = $1
         WHERE id = $2 AND deleted_at IS NULL AND purged_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes the mutable metadata of `s`.
pub async fn save_secret(
    conn: &mut AnyConnection,
    s: &SecretInfo,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE secrets SET name = $1, name_key = $2, category = $3, description = $4,
                current_version = $5, deleted_at = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&s.name)
    .bind(s.name.to_lowercase())
    .bind(s.category.as_str())
    .bind(&s.description)
    .bind(s.current_version)
    .bind(s.deleted_at.as_deref())
    .bind(now)
    .bind(s.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Destroys every version of a secret and marks it purged (its audit trail stays).
pub async fn purge_secret(
    conn: &mut AnyConnection,
    id: i64,
    now: &str,
) -> Result<u64, sqlx::Error> {
    let gone = sqlx::query("DELETE FROM secret_versions WHERE secret_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("UPDATE secrets SET purged_at = $1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(gone)
}

/// Newest first by name; never purged secrets, deleted ones only when asked.
pub async fn list_secrets<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    f: &SecretFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<SecretInfo>, sqlx::Error> {
    let q = search_pattern(f.q.as_deref());
    let rows: Vec<SecretRow> = sqlx::query_as(&format!(
        "SELECT {SECRET_COLS} FROM secrets
         WHERE purged_at IS NULL
           AND ($1 = 1 OR deleted_at IS NULL)
           AND ($2 IS NULL OR category = $2)
           AND ($3 IS NULL OR name_key LIKE $3 ESCAPE '\\' OR LOWER(description) LIKE $3 ESCAPE '\\')
           AND ($4 IS NULL OR name_key = $4)
         ORDER BY deleted_at IS NOT NULL, name_key LIMIT $5 OFFSET $6"
    ))
    .bind(i64::from(f.include_deleted.unwrap_or(false)))
    .bind(f.category.map(SecretCategory::as_str))
    .bind(q)
    .bind(f.name.as_deref().map(|n| n.trim().to_lowercase()))
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| StoredSecret::from(r).info)
        .collect())
}

// ---- versions ----

#[derive(sqlx::FromRow)]
struct VersionRow {
    ciphertext: Vec<u8>,
    nonce: Vec<u8>,
    wrapped_key: Vec<u8>,
    key_nonce: Vec<u8>,
    master_key_id: String,
}

impl VersionRow {
    fn envelope(self) -> Envelope {
        Envelope {
            ciphertext: self.ciphertext,
            nonce: self.nonce,
            wrapped_key: self.wrapped_key,
            key_nonce: self.key_nonce,
            master_key_id: self.master_key_id,
        }
    }
}

/// Stores one encrypted version.
pub async fn insert_version(
    conn: &mut AnyConnection,
    secret_id: i64,
    version: i64,
    env: &Envelope,
    restored_from: Option<i64>,
    actor: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO secret_versions (secret_id, version, ciphertext, nonce, wrapped_key, key_nonce,
                master_key_id, restored_from, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(secret_id)
    .bind(version)
    .bind(&env.ciphertext)
    .bind(&env.nonce)
    .bind(&env.wrapped_key)
    .bind(&env.key_nonce)
    .bind(&env.master_key_id)
    .bind(restored_from)
    .bind(actor)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stored envelope of one version.
pub async fn get_version<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    secret_id: i64,
    version: i64,
) -> Result<Option<Envelope>, sqlx::Error> {
    let row: Option<VersionRow> = sqlx::query_as(
        "SELECT ciphertext, nonce, wrapped_key, key_nonce, master_key_id
         FROM secret_versions WHERE secret_id = $1 AND version = $2",
    )
    .bind(secret_id)
    .bind(version)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(VersionRow::envelope))
}

/// The highest version number stored for a secret (0 when none).
pub async fn max_version(conn: &mut AnyConnection, secret_id: i64) -> Result<i64, sqlx::Error> {
    let v: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM secret_versions WHERE secret_id = $1")
            .bind(secret_id)
            .fetch_one(conn)
            .await?;
    Ok(v.unwrap_or(0))
}

/// Newest first.
pub async fn list_versions<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    secret_id: i64,
    current: i64,
) -> Result<Vec<VersionInfo>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        version: i64,
        restored_from: Option<i64>,
        created_by: String,
        created_at: String,
        master_key_id: String,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT version, restored_from, created_by, created_at, master_key_id
         FROM secret_versions WHERE secret_id = $1 ORDER BY version DESC",
    )
    .bind(secret_id)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| VersionInfo {
            current: r.version == current,
            version: r.version,
            restored_from: r.restored_from,
            created_by: r.created_by,
            created_at: r.created_at,
            master_key_id: r.master_key_id,
        })
        .collect())
}

// ---- key state and rotation ----

/// A version's wrapped data key, for re-wrapping.
#[derive(sqlx::FromRow, Debug)]
pub struct WrapRow {
    pub id: i64,
    pub secret_id: i64,
    pub version: i64,
    pub wrapped_key: Vec<u8>,
    pub key_nonce: Vec<u8>,
    pub master_key_id: String,
}

/// Every version whose data key is not wrapped under `key_id`.
pub async fn wraps_not_under(
    conn: &mut AnyConnection,
    key_id: &str,
) -> Result<Vec<WrapRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, secret_id, version, wrapped_key, key_nonce, master_key_id
         FROM secret_versions WHERE master_key_id <> $1 ORDER BY id",
    )
    .bind(key_id)
    .fetch_all(conn)
    .await
}

pub async fn set_wrap(
    conn: &mut AnyConnection,
    version_row_id: i64,
    wrapped_key: &[u8],
    key_nonce: &[u8],
    key_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE secret_versions SET wrapped_key = $1, key_nonce = $2, master_key_id = $3 WHERE id = $4",
    )
    .bind(wrapped_key)
    .bind(key_nonce)
    .bind(key_id)
    .bind(version_row_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The distinct master key ids that stored versions are wrapped under.
pub async fn key_ids_in_use<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT master_key_id FROM secret_versions ORDER BY master_key_id")
        .fetch_all(ex)
        .await
}

/// The key id new versions are wrapped under, if the vault was ever opened.
pub async fn active_key_id<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT active_key_id FROM vault_state WHERE id = 1")
        .fetch_optional(ex)
        .await
}

pub async fn rotated_at<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Option<String>, sqlx::Error> {
    let v: Option<Option<String>> =
        sqlx::query_scalar("SELECT rotated_at FROM vault_state WHERE id = 1")
            .fetch_optional(ex)
            .await?;
    Ok(v.flatten())
}

/// Records the key new versions use (start-up on an empty vault).
pub async fn set_active_key_id<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    key_id: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO vault_state (id, active_key_id, updated_at) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET active_key_id = excluded.active_key_id, updated_at = excluded.updated_at",
    )
    .bind(key_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Rotation's first statement: switches the active key and takes the write lock, so no
/// version can be written under the old key once the re-wrap has read the rows.
pub async fn begin_rotation(
    conn: &mut AnyConnection,
    new_key_id: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    set_active_key_id(&mut *conn, new_key_id, now).await?;
    sqlx::query("UPDATE vault_state SET rotated_at = $1 WHERE id = 1")
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// (live secrets, stored versions), for the status endpoint.
pub async fn counts<'c, E: Executor<'c, Database = Any> + Copy>(
    ex: E,
) -> Result<(i64, i64), sqlx::Error> {
    let secrets: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM secrets WHERE deleted_at IS NULL AND purged_at IS NULL",
    )
    .fetch_one(ex)
    .await?;
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secret_versions")
        .fetch_one(ex)
        .await?;
    Ok((secrets, versions))
}

// ---- audit ----

/// One audit record to write.
pub struct AuditRecord<'a> {
    pub secret_id: Option<i64>,
    pub secret_name: Option<&'a str>,
    pub version: Option<i64>,
    pub action: AuditAction,
    pub actor: &'a str,
    pub user_id: Option<i64>,
    pub client_addr: Option<&'a str>,
    pub details: serde_json::Value,
    pub now: &'a str,
}

pub async fn insert_audit(
    conn: &mut AnyConnection,
    a: &AuditRecord<'_>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO secret_audit (secret_id, secret_name, version, action, actor, user_id, client_addr, details, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(a.secret_id)
    .bind(a.secret_name)
    .bind(a.version)
    .bind(a.action.as_str())
    .bind(a.actor)
    .bind(a.user_id)
    .bind(a.client_addr)
    .bind(a.details.to_string())
    .bind(a.now)
    .fetch_one(conn)
    .await
}

/// A secret's audit trail, newest first.
pub async fn list_audit<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    secret_id: i64,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        secret_id: Option<i64>,
        secret_name: Option<String>,
        version: Option<i64>,
        action: String,
        actor: String,
        user_id: Option<i64>,
        client_addr: Option<String>,
        details: String,
        created_at: String,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, secret_id, secret_name, version, action, actor, user_id, client_addr, details, created_at
         FROM secret_audit WHERE secret_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
    .bind(secret_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            secret_id: r.secret_id,
            secret_name: r.secret_name,
            version: r.version,
            action: r.action.parse().unwrap_or(AuditAction::View),
            actor: r.actor,
            user_id: r.user_id,
            client_addr: r.client_addr,
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null),
            created_at: r.created_at,
        })
        .collect())
}
