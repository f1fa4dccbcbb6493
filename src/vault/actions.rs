//! The vault operations the JSON API, the dashboard, the CLI (through the API) and other
//! domains share. Each runs in one transaction that also writes its audit record (and, for
//! changes, its activity record), so a change, or a value leaving, and its record land
//! together or not at all. A read commits its audit record *before* the value is handed back:
//! if the record cannot be written, the caller gets an error and the plaintext is wiped.
//!
//! Value reads (views and `vault:NAME` references) are in [`super::reads`].
//!
//! Every operation takes its keyring snapshot only once its transaction holds the write lock
//! (its first statement writes), and writes new versions under the key the database names as
//! active, read in that same transaction. Rotation's re-wrap holds the same lock, so a
//! snapshot and the rows read with it always belong together (see [`super::rotation`]).

use super::crypto::{self, Binding, CryptoError, Keyring, MasterKey};
use super::store::{self, AuditRecord, StoredSecret};
use super::VaultState;
use super::*;
use crate::activity;
use crate::db::{is_unique_violation, Db};
use serde_json::json;
use sqlx::AnyConnection;

type Result<T> = std::result::Result<T, VaultError>;

/// Who acts, from where, and when: what an audit record needs.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// As the activity log shows it: `alice` or `alice (token 3)`; `system` for internal reads.
    pub name: &'a str,
    pub user_id: Option<i64>,
    pub client_addr: Option<&'a str>,
    pub now: &'a str,
}

/// An [`Actor`] that owns its strings, built from a request's identity and peer address.
#[derive(Debug, Clone)]
pub struct Caller {
    name: String,
    user_id: Option<i64>,
    client_addr: Option<String>,
    now: String,
}

impl Caller {
    pub fn new(who: &crate::auth::Identity, client_addr: Option<String>, now: String) -> Caller {
        Caller {
            name: who.actor(),
            user_id: Some(who.user_id),
            client_addr,
            now,
        }
    }

    pub fn actor(&self) -> Actor<'_> {
        Actor {
            name: &self.name,
            user_id: self.user_id,
            client_addr: self.client_addr.as_deref(),
            now: &self.now,
        }
    }
}

fn name_taken(name: &str) -> VaultError {
    VaultError::Conflict(format!(
        "a secret named '{name}' already exists (a deleted secret keeps its name until an admin purges it)"
    ))
}

pub(super) fn crypto_error(e: CryptoError, at: Binding) -> VaultError {
    match e {
        CryptoError::KeyNotLoaded(id) => VaultError::Sealed(format!(
            "secret {} version {} is wrapped under master key {id}, which this server has not loaded; restart it with the current key",
            at.secret_id, at.version
        )),
        CryptoError::Integrity => VaultError::Integrity {
            secret_id: at.secret_id,
            version: at.version,
        },
    }
}

/// The master key new versions are wrapped under: the one the database names as active.
async fn active_key<'k>(conn: &mut AnyConnection, keys: &'k Keyring) -> Result<&'k MasterKey> {
    let id = store::active_key_id(&mut *conn).await?.unwrap_or_default();
    keys.get(&id).ok_or_else(|| {
        VaultError::Sealed(format!(
            "the vault's active master key {id} is not loaded in this server; restart it with the current key"
        ))
    })
}

pub(super) async fn audit(
    conn: &mut AnyConnection,
    by: &Actor<'_>,
    s: &SecretInfo,
    version: Option<i64>,
    action: AuditAction,
    details: serde_json::Value,
) -> Result<()> {
    store::insert_audit(
        conn,
        &AuditRecord {
            secret_id: Some(s.id),
            secret_name: Some(&s.name),
            version,
            action,
            actor: by.name,
            user_id: by.user_id,
            client_addr: by.client_addr,
            details,
            now: by.now,
        },
    )
    .await?;
    Ok(())
}

async fn log(
    conn: &mut AnyConnection,
    by: &Actor<'_>,
    action: &str,
    s: &SecretInfo,
    details: serde_json::Value,
) -> Result<()> {
    activity::store::record(
        conn,
        by.name,
        action,
        "secret",
        Some(s.id),
        &details,
        by.now,
    )
    .await?;
    Ok(())
}

/// The secret for a change: not purged (404) and, unless `allow_deleted`, not deleted.
pub(super) fn require(stored: Option<StoredSecret>, allow_deleted: bool) -> Result<SecretInfo> {
    match stored {
        Some(s) if s.purged => Err(VaultError::NotFound("secret")),
        Some(s) if s.info.deleted && !allow_deleted => Err(VaultError::Deleted(s.info.name)),
        Some(s) => Ok(s.info),
        None => Err(VaultError::NotFound("secret")),
    }
}

/// Metadata of a secret that is not purged (deleted ones included), for versions and lists.
pub async fn secret_info(db: &Db, id: i64) -> Result<SecretInfo> {
    require(store::get_secret(db, id).await?, true)
}

fn seal_value(master: &MasterKey, at: Binding, value: &SecretValue) -> Result<crypto::Envelope> {
    crypto::seal(master, at, value.expose().as_bytes()).map_err(|e| crypto_error(e, at))
}

pub(super) fn open_value(
    keys: &Keyring,
    at: Binding,
    env: &crypto::Envelope,
) -> Result<SecretValue> {
    let mut plain = crypto::open(keys, at, env).map_err(|e| crypto_error(e, at))?;
    // Every stored value was a UTF-8 string; anything else means the row is not ours.
    match String::from_utf8(std::mem::take(&mut *plain)) {
        Ok(s) => Ok(SecretValue::new(s)),
        Err(e) => {
            crypto::wipe(e.into_bytes());
            Err(VaultError::Integrity {
                secret_id: at.secret_id,
                version: at.version,
            })
        }
    }
}

pub async fn create_secret(
    state: &VaultState,
    by: &Actor<'_>,
    mut input: NewSecret,
) -> Result<SecretInfo> {
    input.validate()?;
    state.vault.keyring()?; // sealed: fail before writing anything
    let category = input.category.unwrap_or(SecretCategory::DEFAULT);
    let description = input.description.clone().unwrap_or_default();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let info = match store::insert_secret(
        &mut tx,
        &input.name,
        category,
        &description,
        by.name,
        by.now,
    )
    .await
    {
        Ok(i) => i,
        Err(e) if is_unique_violation(&e) => return Err(name_taken(&input.name)),
        Err(e) => return Err(e.into()),
    };
    let keys = state.vault.keyring()?; // after the insert: the write lock is held
    let master = active_key(&mut tx, &keys).await?;
    let at = Binding {
        secret_id: info.id,
        version: 1,
    };
    let env = seal_value(master, at, &input.value)?;
    store::insert_version(&mut tx, info.id, 1, &env, None, by.name, by.now).await?;
    audit(
        &mut tx,
        by,
        &info,
        Some(1),
        AuditAction::Create,
        json!({"category": category}),
    )
    .await?;
    log(
        &mut tx,
        by,
        "create",
        &info,
        json!({"name": info.name, "category": category, "version": 1}),
    )
    .await?;
    tx.commit().await?;
    Ok(info)
}

/// Changes metadata and/or the value; a value becomes a new version (earlier ones are kept).
pub async fn update_secret(
    state: &VaultState,
    by: &Actor<'_>,
    id: i64,
    mut patch: SecretPatch,
) -> Result<SecretInfo> {
    patch.validate()?;
    state.vault.keyring()?;
    let mut tx = crate::db::begin_write(&state.db).await?;
    let mut info = require(store::lock_secret(&mut tx, id, by.now).await?, false)?;
    let keys = state.vault.keyring()?; // after the lock (see the module comment)
    let mut fields: Vec<&str> = Vec::new();
    if let Some(n) = patch.name.take() {
        fields.push("name");
        info.name = n;
    }
    if let Some(c) = patch.category {
        fields.push("category");
        info.category = c;
    }
    if let Some(d) = patch.description.take() {
        fields.push("description");
        info.description = d;
    }
    if let Some(value) = &patch.value {
        fields.push("value");
        let version = store::max_version(&mut tx, id).await? + 1;
        let master = active_key(&mut tx, &keys).await?;
        let env = seal_value(
            master,
            Binding {
                secret_id: id,
                version,
            },
            value,
        )?;
        store::insert_version(&mut tx, id, version, &env, None, by.name, by.now).await?;
        info.current_version = version;
    }
    match store::save_secret(&mut tx, &info, by.now).await {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => return Err(name_taken(&info.name)),
        Err(e) => return Err(e.into()),
    }
    info.updated_at = by.now.to_string();
    let details = json!({"fields": fields});
    audit(
        &mut tx,
        by,
        &info,
        Some(info.current_version),
        AuditAction::Update,
        details,
    )
    .await?;
    log(
        &mut tx,
        by,
        "update",
        &info,
        json!({"name": info.name, "fields": fields, "version": info.current_version}),
    )
    .await?;
    tx.commit().await?;
    Ok(info)
}

/// Soft delete: hidden from lists, values unreadable, name kept; an admin can undelete or
/// purge. Deleting a deleted secret changes nothing.
pub async fn delete_secret(state: &VaultState, by: &Actor<'_>, id: i64) -> Result<SecretInfo> {
    let mut tx = crate::db::begin_write(&state.db).await?;
    let mut info = require(store::lock_secret(&mut tx, id, by.now).await?, true)?;
    if !info.deleted {
        info.deleted = true;
        info.deleted_at = Some(by.now.to_string());
        store::save_secret(&mut tx, &info, by.now).await?;
        audit(&mut tx, by, &info, None, AuditAction::Delete, json!({})).await?;
        log(&mut tx, by, "delete", &info, json!({"name": info.name})).await?;
    }
    tx.commit().await?;
    Ok(info)
}

/// Brings a soft-deleted secret back with all its versions.
pub async fn undelete_secret(state: &VaultState, by: &Actor<'_>, id: i64) -> Result<SecretInfo> {
    let mut tx = crate::db::begin_write(&state.db).await?;
    let mut info = require(store::lock_secret(&mut tx, id, by.now).await?, true)?;
    if !info.deleted {
        return Err(VaultError::Conflict(format!(
            "secret '{}' is not deleted",
            info.name
        )));
    }
    info.deleted = false;
    info.deleted_at = None;
    store::save_secret(&mut tx, &info, by.now).await?;
    audit(&mut tx, by, &info, None, AuditAction::Undelete, json!({})).await?;
    log(&mut tx, by, "undelete", &info, json!({"name": info.name})).await?;
    tx.commit().await?;
    Ok(info)
}

/// Destroys every version of a deleted secret for good; the name becomes free and the audit
/// trail stays. Only a deleted secret can be purged, so one step never loses data.
pub async fn purge_secret(state: &VaultState, by: &Actor<'_>, id: i64) -> Result<SecretInfo> {
    let mut tx = crate::db::begin_write(&state.db).await?;
    let info = require(store::lock_secret(&mut tx, id, by.now).await?, true)?;
    if !info.deleted {
        return Err(VaultError::Conflict(format!(
            "secret '{}' is not deleted; delete it first, then purge",
            info.name
        )));
    }
    let destroyed = store::purge_secret(&mut tx, id, by.now).await?;
    audit(
        &mut tx,
        by,
        &info,
        None,
        AuditAction::Purge,
        json!({"versions_destroyed": destroyed}),
    )
    .await?;
    log(
        &mut tx,
        by,
        "purge",
        &info,
        json!({"name": info.name, "versions_destroyed": destroyed}),
    )
    .await?;
    tx.commit().await?;
    Ok(info)
}

/// Makes an earlier version's value current again, as a new version (history only grows).
pub async fn restore_version(
    state: &VaultState,
    by: &Actor<'_>,
    id: i64,
    version: i64,
) -> Result<SecretInfo> {
    state.vault.keyring()?;
    let mut tx = crate::db::begin_write(&state.db).await?;
    let mut info = require(store::lock_secret(&mut tx, id, by.now).await?, false)?;
    let keys = state.vault.keyring()?; // after the lock (see the module comment)
    if version == info.current_version {
        return Err(VaultError::Conflict(format!(
            "version {version} is already the current version"
        )));
    }
    let env = store::get_version(&mut *tx, id, version)
        .await?
        .ok_or(VaultError::NotFound("version"))?;
    let value = open_value(
        &keys,
        Binding {
            secret_id: id,
            version,
        },
        &env,
    )?;
    let next = store::max_version(&mut tx, id).await? + 1;
    let master = active_key(&mut tx, &keys).await?;
    let sealed = seal_value(
        master,
        Binding {
            secret_id: id,
            version: next,
        },
        &value,
    )?;
    drop(value);
    store::insert_version(&mut tx, id, next, &sealed, Some(version), by.name, by.now).await?;
    info.current_version = next;
    store::save_secret(&mut tx, &info, by.now).await?;
    info.updated_at = by.now.to_string();
    audit(
        &mut tx,
        by,
        &info,
        Some(next),
        AuditAction::Restore,
        json!({"restored_from": version}),
    )
    .await?;
    log(
        &mut tx,
        by,
        "restore_version",
        &info,
        json!({"name": info.name, "restored_from": version, "version": next}),
    )
    .await?;
    tx.commit().await?;
    Ok(info)
}

/// What `GET /api/vault/status` shows. Works while sealed (it says why).
pub async fn status(state: &VaultState) -> Result<VaultStatus> {
    let (secrets, versions) = store::counts(&state.db).await?;
    let reason = state.vault.sealed_reason();
    Ok(VaultStatus {
        sealed: reason.is_some(),
        reason,
        key_source: state.vault.source().label().to_string(),
        key_file: match state.vault.source() {
            KeySource::File(p) => Some(p.display().to_string()),
            KeySource::Env => None,
        },
        active_key_id: store::active_key_id(&state.db).await?,
        secrets,
        versions,
        rotated_at: store::rotated_at(&state.db).await?,
    })
}
