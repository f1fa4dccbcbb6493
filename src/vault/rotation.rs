//! Master key rotation: every data key re-wrapped under a new master key, crash-safe, with
//! reads working throughout.
//!
//! The protocol (`architect vault rotate-key` → `POST /api/vault/rotate-key`, admin only):
//!
//! 1. **Stage.** Generate the new key and write it to `<key file>.next` (0600, written to a
//!    temp file, fsynced, renamed, directory fsynced). The key file itself is untouched.
//! 2. **Widen.** The running server's keyring becomes {old, new}: from now on a read accepts a
//!    row wrapped under either key (each row names its key id).
//! 3. **Re-wrap, one transaction.** Its first statement sets `vault_state.active_key_id` to
//!    the new key (taking the write lock); then every version not under the new key has its
//!    data key unwrapped and wrapped again under the new key (fresh nonce; value ciphertexts
//!    are untouched), recording the new key id per row; the audit and activity records go in
//!    the same transaction. Commit. Writers read the active key id inside their own locked
//!    transaction, so no version can be written under the old key after this commits.
//! 4. **Promote.** Rename `<key file>.next` over the key file (atomic), fsync the directory.
//! 5. **Narrow.** The keyring becomes {new}; the old key is wiped from memory.
//!
//! A crash at any point leaves every secret readable: before the commit in step 3 the
//! database still uses only the old key, which is still the key file, and start-up deletes
//! the unused staged file; after the commit the database uses only the new key, which is the
//! staged file, and start-up (seeing `active_key_id` equal to the staged key's id) renames it
//! into place. See `keys::load`.
//!
//! Reads during rotation: every value read and write runs in a transaction whose first
//! statement writes (access count, row lock), and takes its keyring snapshot only after that,
//! while holding the database write lock. The re-wrap needs the same lock, so a snapshot is
//! taken either before step 3 began (rows all under the old key; the keyring still holds it,
//! since step 5 waits for step 3's commit) or after it committed (rows all under the new key,
//! which the keyring holds from step 2 on). No read ever pairs a keyring with rows it lacks
//! the key for.
//!
//! With SQLite the re-wrap holds the database write lock: reads go on concurrently (WAL), and
//! views, which also write (access count, audit), wait for the commit (busy timeout 5 s).
//! A key from `ARCHITECT_MASTER_KEY` cannot be rotated by the server (it cannot change the
//! environment); rotation then answers 409 and says so.

use super::crypto::{self, Binding, MasterKey};
use super::keys::{self, KeySource};
use super::store::{self, AuditRecord};
use super::VaultState;
use super::{Actor, AuditAction, RotationReport, VaultError};
use crate::activity;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

type Result<T> = std::result::Result<T, VaultError>;

/// Runs the whole rotation (steps 1–5). One rotation at a time; a second caller gets 409.
pub async fn rotate(state: &VaultState, by: &Actor<'_>) -> Result<RotationReport> {
    let started = Instant::now();
    let _guard = state
        .vault
        .try_rotation()
        .ok_or_else(|| VaultError::Conflict("a master key rotation is already running".into()))?;
    let path = key_file(state)?;
    let new = stage(state, &path).await?;
    let new_id = new.id().to_string();
    let (rewrapped, old_ids) = match rewrap_all(state, &new, by).await {
        Ok(r) => r,
        Err(e) => {
            // Nothing committed: the old key stays; the staged key must not linger.
            abandon(state, &path, &new_id);
            return Err(e);
        }
    };
    promote(state, &path, &new_id)?;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(new_key_id = %new_id, rewrapped, duration_ms, "vault master key rotated");
    Ok(RotationReport {
        old_key_ids: old_ids,
        new_key_id: new_id,
        rewrapped,
        duration_ms,
    })
}

/// The managed key file, or 409 when the key comes from the environment.
pub fn key_file(state: &VaultState) -> Result<std::path::PathBuf> {
    match state.vault.source() {
        KeySource::File(p) => Ok(p.clone()),
        KeySource::Env => Err(VaultError::Conflict(
            "the master key comes from ARCHITECT_MASTER_KEY, which the server cannot change; to rotate, unset it and use a key file (--master-key-file), or re-create the secrets under a new key".into(),
        )),
    }
}

/// Steps 1 and 2: writes the staged key file and widens the keyring to {old, new}. A staged
/// key left by an earlier rotation is settled first (promoted if the database already uses
/// it), so a staged key the database depends on is never deleted.
pub async fn stage(state: &VaultState, path: &Path) -> Result<Arc<MasterKey>> {
    let current = state.vault.keyring()?;
    let active = store::active_key_id(&state.db).await?;
    let stored = store::key_ids_in_use(&state.db).await?;
    keys::settle_staged(path, active.as_deref(), &stored).map_err(VaultError::KeyFile)?;
    let new = Arc::new(MasterKey::generate());
    keys::stage_key(path, &new).map_err(VaultError::KeyFile)?;
    state.vault.replace(current.with(new.clone()));
    Ok(new)
}

/// Step 3: re-wraps every data key not under `new`, in one transaction with its audit and
/// activity records. Returns how many rows moved and the key ids they moved from.
pub async fn rewrap_all(
    state: &VaultState,
    new: &MasterKey,
    by: &Actor<'_>,
) -> Result<(u64, Vec<String>)> {
    let ring = state.vault.keyring()?;
    if ring.get(new.id()).is_none() {
        return Err(VaultError::Sealed(
            "the new master key is not staged".into(),
        ));
    }
    let mut tx = crate::db::begin_write(&state.db).await?;
    store::begin_rotation(&mut tx, new.id(), by.now).await?;
    let rows = store::wraps_not_under(&mut tx, new.id()).await?;
    let mut old_ids: Vec<String> = Vec::new();
    for row in &rows {
        let at = Binding {
            secret_id: row.secret_id,
            version: row.version,
        };
        let env = crypto::Envelope {
            ciphertext: Vec::new(),
            nonce: Vec::new(),
            wrapped_key: row.wrapped_key.clone(),
            key_nonce: row.key_nonce.clone(),
            master_key_id: row.master_key_id.clone(),
        };
        let w = crypto::rewrap(&ring, new, at, &env).map_err(|e| {
            tracing::error!(secret_id = at.secret_id, version = at.version, error = %e, "rotation stopped: a data key could not be unwrapped");
            match e {
                crypto::CryptoError::Integrity => VaultError::Integrity {
                    secret_id: at.secret_id,
                    version: at.version,
                },
                crypto::CryptoError::KeyNotLoaded(id) => VaultError::Sealed(format!(
                    "secret {} version {} is wrapped under key {id}, which is not loaded; rotation stopped and nothing changed",
                    at.secret_id, at.version
                )),
            }
        })?;
        store::set_wrap(&mut tx, row.id, &w.wrapped_key, &w.key_nonce, new.id()).await?;
        if !old_ids.contains(&row.master_key_id) {
            old_ids.push(row.master_key_id.clone());
        }
    }
    let n = rows.len() as u64;
    let details = json!({"from_key_ids": old_ids, "to_key_id": new.id(), "rewrapped": n});
    store::insert_audit(
        &mut tx,
        &AuditRecord {
            secret_id: None,
            secret_name: None,
            version: None,
            action: AuditAction::RotateKey,
            actor: by.name,
            user_id: by.user_id,
            client_addr: by.client_addr,
            details: details.clone(),
            now: by.now,
        },
    )
    .await?;
    activity::store::record(
        &mut tx,
        by.name,
        "rotate_key",
        "vault",
        None,
        &details,
        by.now,
    )
    .await?;
    tx.commit().await?;
    Ok((n, old_ids))
}

/// Steps 4 and 5: the staged file becomes the key file; the keyring narrows to the new key.
/// If the rename fails the keyring keeps both keys (reads keep working) and the next start
/// (or the next rotation) finishes the rename.
pub fn promote(state: &VaultState, path: &Path, new_id: &str) -> Result<()> {
    keys::promote_staged(path).map_err(|e| {
        VaultError::KeyFile(format!(
            "every data key is re-wrapped under the new key {new_id}, but {e}; the server keeps both keys and finishes this at its next start"
        ))
    })?;
    let ring = state.vault.keyring()?;
    state.vault.replace(ring.only(new_id));
    Ok(())
}

/// Undoes steps 1 and 2 after a failed re-wrap: drops the staged file and the new key.
fn abandon(state: &VaultState, path: &Path, new_id: &str) {
    keys::discard_staged(path);
    if let Ok(ring) = state.vault.keyring() {
        state.vault.replace(ring.without(new_id));
    }
}
