//! Secure vault: secrets stored with envelope encryption, kept in versions, read under audit.
//!
//! Each value is encrypted with XChaCha20-Poly1305 under its own random data key, with the
//! secret's id and version as associated data; the data key is wrapped by a master key that
//! never enters the database ([`crypto`], [`keys`]). Without the right master key the vault is
//! sealed: every call answers 503 and nothing is decrypted. Updates add versions (list, read
//! one, restore), deletes are soft (undelete, purge), and every create, view, update, delete,
//! restore and rotation writes a `secret_audit` row in the same transaction, before any value
//! leaves ([`actions`]). [`rotation`] re-wraps every data key under a new master key.
//!
//! Values are [`SecretValue`]s: zeroized on drop, `[redacted]` in Debug, no Display, so they do
//! not end up in logs, errors or the activity log by accident. Other domains read a secret by
//! name through [`resolve_reference`] (`vault:ANTHROPIC_API_KEY`).
//!
//! Roles: viewers see names and metadata only; members (and admin-scope tokens of members) read
//! and write values; only admins delete, undelete, purge and rotate the master key. A value read
//! through a browser session needs a password given in the last [`STEP_UP_WINDOW_SECS`].

pub mod actions;
pub mod api;
pub mod crypto;
pub mod keys;
pub mod pages;
pub mod reads;
pub mod rotation;
pub mod store;

pub use actions::Actor;
pub use keys::{KeySource, Vault};
pub use reads::resolve_reference;

use crate::auth::{AuthVia, Identity};
use serde::{Deserialize, Serialize};

/// What the vault's operations ([`actions`], [`reads`], [`rotation`]) reach: the database, the
/// keys and the clock, and nothing else of the server. Taken from the server's state by
/// `FromRef` (implemented in app.rs) (`VaultState::from_ref(&state)`, or `State<VaultState>` in a handler). Cheap to
/// clone.
#[derive(Clone)]
pub struct VaultState {
    pub db: crate::db::Db,
    pub vault: Vault,
    pub clock: crate::clock::Clock,
}

use zeroize::Zeroizing;

crate::text_enum! {
    /// What kind of credential a secret is (SPEC.md's table); for sorting and display only.
    pub enum SecretCategory ("secret category") {
        ApiKey = "api_key",
        Password = "password",
        Token = "token",
        Certificate = "certificate",
        SshKey = "ssh_key",
        EnvVar = "env_var",
        General = "general",
    }
}

impl SecretCategory {
    pub const DEFAULT: SecretCategory = SecretCategory::General;

    /// The use case SPEC.md gives for the category, for the dashboard's picker.
    pub fn describe(self) -> &'static str {
        match self {
            SecretCategory::ApiKey => "API keys and access tokens",
            SecretCategory::Password => "User passwords and passphrases",
            SecretCategory::Token => "OAuth tokens, JWT tokens",
            SecretCategory::Certificate => "SSL/TLS certificates",
            SecretCategory::SshKey => "SSH private keys",
            SecretCategory::EnvVar => "Environment variables",
            SecretCategory::General => "Other sensitive data",
        }
    }
}

crate::text_enum! {
    /// What an audit record says happened.
    pub enum AuditAction ("audit action") {
        Create = "create",
        /// A value was returned (API, dashboard reveal, CLI `get`).
        View = "view",
        /// A value read failed its integrity check: the stored row was altered or mis-keyed.
        ViewFailed = "view_failed",
        Update = "update",
        Delete = "delete",
        Undelete = "undelete",
        /// An earlier version's value became the newest version.
        Restore = "restore",
        Purge = "purge",
        RotateKey = "rotate_key",
        /// Another part of architect read the value through a `vault:NAME` reference.
        Resolve = "resolve",
    }
}

/// A secret's value. Zeroized when dropped; never shown by Debug; no Display, so it cannot be
/// interpolated into a log line or an error message by accident. Serialize exists for the one
/// response that reveals it (and for the client sending it).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> SecretValue {
        SecretValue(Zeroizing::new(value))
    }

    /// The plaintext. Call only where the value is meant to go (a reveal, an outbound request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

impl Serialize for SecretValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretValue::new)
    }
}

/// A secret as lists show it: metadata only, never the value or any part of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecretInfo {
    pub id: i64,
    pub name: String,
    pub category: SecretCategory,
    pub description: String,
    pub current_version: i64,
    pub access_count: i64,
    pub last_accessed: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub deleted: bool,
    pub deleted_at: Option<String>,
}

/// The answer to an explicit read: metadata, the version read and its value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretView {
    #[serde(flatten)]
    pub info: SecretInfo,
    /// The version whose value this is (the current one unless a version was asked for).
    pub version: i64,
    pub value: SecretValue,
}

/// One stored version, without its value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionInfo {
    pub version: i64,
    pub current: bool,
    pub restored_from: Option<i64>,
    pub created_by: String,
    pub created_at: String,
    /// Fingerprint of the master key that wraps this version's data key.
    pub master_key_id: String,
}

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub secret_id: Option<i64>,
    pub secret_name: Option<String>,
    pub version: Option<i64>,
    pub action: AuditAction,
    pub actor: String,
    pub user_id: Option<i64>,
    pub client_addr: Option<String>,
    pub details: serde_json::Value,
    pub created_at: String,
}

/// `POST /api/secrets`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    pub name: String,
    pub value: SecretValue,
    #[serde(default)]
    pub category: Option<SecretCategory>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PUT /api/secrets/{id}`: any of the fields; a value makes a new version.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<SecretCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Filters for `GET /api/secrets` (`limit` and `offset` are read by `Pagination`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecretFilter {
    pub category: Option<SecretCategory>,
    /// Case-insensitive substring of the name or description.
    pub q: Option<String>,
    /// Exact name (case-insensitive), for clients that address secrets by name.
    pub name: Option<String>,
    /// Include soft-deleted secrets (never purged ones).
    pub include_deleted: Option<bool>,
}

/// `GET /api/vault/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaultStatus {
    pub sealed: bool,
    /// Why the vault is sealed and how to open it.
    pub reason: Option<String>,
    /// `env` (ARCHITECT_MASTER_KEY) or `file`.
    pub key_source: String,
    pub key_file: Option<String>,
    /// Fingerprint of the key new values are wrapped under (never the key).
    pub active_key_id: Option<String>,
    pub secrets: i64,
    pub versions: i64,
    pub rotated_at: Option<String>,
}

/// The answer to `POST /api/vault/rotate-key`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotationReport {
    pub old_key_ids: Vec<String>,
    pub new_key_id: String,
    pub rewrapped: u64,
    pub duration_ms: u64,
}

// ---- limits and rules ----

pub const MAX_NAME: usize = 128;
pub const MAX_DESCRIPTION: usize = 1_000;
/// Large enough for a certificate chain or an SSH key; a vault is not a file store.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// A browser session must have given its password this recently to read a value (seconds).
pub const STEP_UP_WINDOW_SECS: i64 = 300;
/// The prefix that marks a configuration value as a vault reference.
pub const REFERENCE_PREFIX: &str = "vault:";

pub use crate::validate::{invalid, Invalid};

/// Everything a vault operation can fail with. No variant carries a value, so an error can be
/// logged or sent to a client as it is.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No usable master key: the message says why and how to open the vault.
    #[error("{0}")]
    Sealed(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("secret '{0}' is deleted; an admin can restore (undelete) it")]
    Deleted(String),
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0}")]
    Conflict(String),
    /// Decryption failed: the stored ciphertext, nonce, wrapped key or their binding to this
    /// secret and version was altered. Never answered with a value.
    #[error("secret {secret_id} version {version} failed its integrity check (the stored data was altered or does not belong to this secret); restore another version or set the value again")]
    Integrity { secret_id: i64, version: i64 },
    /// A key file could not be written or renamed (rotation).
    #[error("{0}")]
    KeyFile(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Invalid> for VaultError {
    fn from(v: Invalid) -> Self {
        VaultError::Invalid(v)
    }
}

/// Names look like environment variables so they work as `vault:NAME` references anywhere:
/// 1–128 characters of ASCII letters, digits, `_`, `-` and `.`, starting with a letter or `_`.
pub fn clean_name(v: &str) -> Result<String, Invalid> {
    let t = v.trim();
    if t.is_empty() || t.len() > MAX_NAME {
        return Err(invalid(
            "name",
            format!("name must be 1 to {MAX_NAME} characters"),
        ));
    }
    let ok_first = t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    let ok_rest = t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok_first || !ok_rest {
        return Err(invalid(
            "name",
            "name may contain ASCII letters, digits, '_', '-' and '.', and must start with a letter or '_' (e.g. GITHUB_TOKEN)",
        ));
    }
    Ok(t.to_string())
}

pub fn clean_description(v: &str) -> Result<String, Invalid> {
    let t = v.trim();
    if t.chars().count() > MAX_DESCRIPTION {
        return Err(invalid(
            "description",
            format!("description must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(t.to_string())
}

/// Values are kept exactly as given (whitespace can matter in a key), but must not be empty.
pub fn check_value(v: &SecretValue) -> Result<(), Invalid> {
    if v.is_empty() {
        return Err(invalid("value", "value must not be empty"));
    }
    if v.len() > MAX_VALUE_BYTES {
        return Err(invalid(
            "value",
            format!("value must be at most {MAX_VALUE_BYTES} bytes"),
        ));
    }
    if v.expose().contains('\0') {
        return Err(invalid("value", "value must not contain NUL characters"));
    }
    Ok(())
}

impl NewSecret {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        self.name = clean_name(&self.name)?;
        check_value(&self.value)?;
        if let Some(d) = &self.description {
            self.description = Some(clean_description(d)?);
        }
        Ok(())
    }
}

impl SecretPatch {
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if self.is_empty() {
            return Err(invalid(
                "body",
                "nothing to change: give at least one of name, value, category, description",
            ));
        }
        if let Some(n) = &self.name {
            self.name = Some(clean_name(n)?);
        }
        if let Some(v) = &self.value {
            check_value(v)?;
        }
        if let Some(d) = &self.description {
            self.description = Some(clean_description(d)?);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.value.is_none()
            && self.category.is_none()
            && self.description.is_none()
    }
}

/// The name inside a `vault:NAME` reference, or None when `s` is not a reference.
pub fn reference_name(s: &str) -> Option<&str> {
    s.trim().strip_prefix(REFERENCE_PREFIX).map(str::trim)
}

/// True when a browser session must give its password again before reading a value: its
/// last password is older than [`STEP_UP_WINDOW_SECS`]. Bearer tokens are machines and have
/// no password to repeat; their scope and owner's role decide alone.
pub fn needs_step_up(who: &Identity, now: time::OffsetDateTime) -> bool {
    match &who.via {
        AuthVia::Session {
            authenticated_at, ..
        } => crate::clock::parse(authenticated_at)
            .is_none_or(|t| now - t > time::Duration::seconds(STEP_UP_WINDOW_SECS)),
        AuthVia::Token { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_show_in_debug_output() {
        let v = SecretValue::new("sentinel-0451".into());
        let n = NewSecret {
            name: "X".into(),
            value: v.clone(),
            category: None,
            description: None,
        };
        let p = SecretPatch {
            value: Some(v.clone()),
            ..Default::default()
        };
        for text in [format!("{v:?}"), format!("{n:?}"), format!("{p:?}")] {
            assert!(!text.contains("sentinel-0451"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
        assert_eq!(v.expose(), "sentinel-0451");
    }

    #[test]
    fn names_are_reference_safe() {
        assert_eq!(clean_name("  GITHUB_TOKEN ").unwrap(), "GITHUB_TOKEN");
        assert!(clean_name("db.prod-password").is_ok());
        for bad in ["", "1ABC", "has space", "semi;colon", "é", &"x".repeat(129)] {
            assert_eq!(clean_name(bad).unwrap_err().field, "name", "{bad}");
        }
    }

    #[test]
    fn values_are_checked_without_being_echoed() {
        assert!(check_value(&SecretValue::new(" keep spaces \n".into())).is_ok());
        let e = check_value(&SecretValue::new(String::new())).unwrap_err();
        assert_eq!(e.field, "value");
        let big = SecretValue::new("s".repeat(MAX_VALUE_BYTES + 1));
        assert!(!check_value(&big).unwrap_err().message.contains("sss"));
    }

    #[test]
    fn references_name_a_secret() {
        assert_eq!(
            reference_name("vault:ANTHROPIC_API_KEY"),
            Some("ANTHROPIC_API_KEY")
        );
        assert_eq!(reference_name("sk-plain"), None);
    }
}
