//! Reading values: the audited view behind `GET /api/secrets/{id}`, the dashboard's reveal and
//! the CLI's `get`, and [`resolve_reference`], which other domains use to read a secret by
//! name. A read counts the access and commits its audit record before the value is handed
//! back; if the record cannot be written, the read fails and the plaintext is wiped. A value
//! that fails its integrity check is never returned, and leaves a `view_failed` record.

use super::actions::{audit, open_value, require, Actor};
use super::crypto::Binding;
use super::store;
use super::VaultState;
use super::*;
use serde_json::json;

type Result<T> = std::result::Result<T, VaultError>;

/// Reads a value: counts the access, writes the audit record, commits, and only then returns
/// the value. `version` None means the current version.
pub async fn view_secret(
    state: &VaultState,
    by: &Actor<'_>,
    id: i64,
    version: Option<i64>,
) -> Result<SecretView> {
    read_value(state, by, id, version, AuditAction::View).await
}

async fn read_value(
    state: &VaultState,
    by: &Actor<'_>,
    id: i64,
    version: Option<i64>,
    action: AuditAction,
) -> Result<SecretView> {
    state.vault.keyring()?;
    let mut tx = crate::db::begin_write(&state.db).await?;
    if !store::record_access(&mut tx, id, by.now).await? {
        drop(tx);
        return Err(require(store::get_secret(&state.db, id).await?, false)
            .err()
            .unwrap_or(VaultError::NotFound("secret")));
    }
    // Only now, with the write lock held, is the keyring sure to match the rows we read.
    let keys = state.vault.keyring()?;
    let info = require(store::get_secret(&mut *tx, id).await?, false)?;
    let v = version.unwrap_or(info.current_version);
    let env = store::get_version(&mut *tx, id, v)
        .await?
        .ok_or(VaultError::NotFound("version"))?;
    let at = Binding {
        secret_id: id,
        version: v,
    };
    let value = match open_value(&keys, at, &env) {
        Ok(v) => v,
        Err(e) => {
            drop(tx);
            record_failed_read(state, by, &info, v, &e).await;
            return Err(e);
        }
    };
    audit(&mut tx, by, &info, Some(v), action, json!({})).await?;
    tx.commit().await?;
    Ok(SecretView {
        info,
        version: v,
        value,
    })
}

/// A read that failed its integrity check is worth an audit record of its own (the read's
/// transaction was rolled back). Best effort: the caller answers with the error either way.
async fn record_failed_read(
    state: &VaultState,
    by: &Actor<'_>,
    info: &SecretInfo,
    version: i64,
    e: &VaultError,
) {
    tracing::error!(secret_id = info.id, version, error = %e, "vault value read failed");
    let write = async {
        let mut tx = crate::db::begin_write(&state.db).await?;
        audit(
            &mut tx,
            by,
            info,
            Some(version),
            AuditAction::ViewFailed,
            json!({"error": e.to_string()}),
        )
        .await?;
        tx.commit().await?;
        Ok::<(), VaultError>(())
    };
    if let Err(err) = write.await {
        tracing::error!(error = %err, "could not write the audit record of a failed read");
    }
}

/// Reads the current value of the live secret `name` for another part of architect, under
/// an audit record (action `resolve`) like any view.
pub async fn resolve_name(state: &VaultState, by: &Actor<'_>, name: &str) -> Result<SecretValue> {
    let name = clean_name(name)?;
    let s = store::find_live_by_name(&state.db, &name)
        .await?
        .ok_or(VaultError::NotFound("secret"))?;
    Ok(read_value(state, by, s.info.id, None, AuditAction::Resolve)
        .await?
        .value)
}

/// Resolves a `vault:NAME` reference to the secret's current value, audited with actor
/// `system`. This is how other domains (LLM provider keys, deploy credentials) read secrets
/// instead of keeping them in env files:
///
/// ```text
/// let key = architect::vault::resolve_reference(&state, "vault:ANTHROPIC_API_KEY").await?;
/// request.bearer_auth(key.expose());
/// ```
pub async fn resolve_reference(state: &VaultState, reference: &str) -> Result<SecretValue> {
    let name = reference_name(reference).ok_or_else(|| {
        VaultError::Invalid(invalid(
            "reference",
            format!("a vault reference looks like {REFERENCE_PREFIX}NAME"),
        ))
    })?;
    let now = state.clock.now_str();
    let by = Actor {
        name: "system",
        user_id: None,
        client_addr: None,
        now: &now,
    };
    resolve_name(state, &by, name).await
}
