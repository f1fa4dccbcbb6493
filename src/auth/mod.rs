//! Accounts, sessions, API tokens and what each may do.
//!
//! People log in with a password (argon2id) and get a server-side session: the cookie holds a
//! random secret, the database holds only its keyed hash. Machines and the CLI use bearer API
//! tokens, also stored as keyed hashes and shown once. Both resolve to an [`Identity`], and a
//! route states what it needs as a [`Capability`] through the extractors in `extract.rs`.
//!
//! Capabilities of a token are its scope's capabilities intersected with its owner's role, so
//! a token never grants more than the person who made it has.

pub mod actions;
pub mod api;
pub mod extract;
pub mod pages;
pub mod store;
pub mod throttle;
pub mod token_cache;

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

crate::text_enum! {
    /// A person's role. Viewers are read-only everywhere.
    pub enum Role ("role") {
        Admin = "admin",
        Member = "member",
        Viewer = "viewer",
    }
}

impl Role {
    /// The policy of people (docs/decisions/0005-principals.md): viewers read, members run
    /// the work (agents, queues, tracking), admins also manage people and run code on hosts.
    pub fn grants(self, cap: Capability) -> bool {
        match self {
            Role::Admin => true,
            Role::Member => !matches!(cap, Capability::Admin | Capability::Exec),
            Role::Viewer => cap == Capability::Read,
        }
    }
}

crate::text_enum! {
    /// What an API token is for.
    pub enum Scope ("scope") {
        /// Everything its owner may do (the CLI uses this).
        Admin = "admin",
        /// Node agents and agent sessions: read, plus agent operations.
        Agent = "agent",
        /// Task-queue workers: read, plus claiming and reporting tasks.
        Worker = "worker",
        /// Error ingestion only (apps and SDKs reporting errors).
        Ingest = "ingest",
        /// Read-only access to every GET.
        Read = "read",
    }
}

impl Scope {
    pub fn grants(self, cap: Capability) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Agent => matches!(
                cap,
                Capability::Read | Capability::AgentOps | Capability::PaneRead | Capability::Llm
            ),
            Scope::Worker => matches!(
                cap,
                Capability::Read | Capability::WorkerOps | Capability::Llm
            ),
            Scope::Ingest => cap == Capability::Ingest,
            Scope::Read => cap == Capability::Read,
        }
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read anything (every GET).
    Read,
    /// Create and change tracked work, post activity.
    Write,
    /// Manage users and other people's tokens.
    Admin,
    /// Operate agent sessions and nodes.
    AgentOps,
    /// Claim and report queued tasks.
    WorkerOps,
    /// Report errors.
    Ingest,
    /// See what is on an agent's screen (pane captures and the live pane view): a screen can
    /// show anything, secrets included, so `Read` is not enough.
    PaneRead,
    /// Run code of one's choosing on a host: create tmux sessions (with a command or a bare
    /// shell), start `shell` sessions or other programs, type into shell panes, set a
    /// project's test/build/deploy commands. Admins only.
    Exec,
    /// Call the LLM gateway (`/v1/*`).
    Llm,
}

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub enum AuthVia {
    Session {
        session_id: i64,
        csrf_token: String,
        expires_at: String,
        authenticated_at: String,
    },
    Token {
        token_id: i64,
        scope: Scope,
        /// The agent session this token was minted for (`session start`), if any.
        session: Option<BoundSession>,
    },
}

/// The agent session a token belongs to. A request made with such a token acts for that
/// session only: it reads, calls the gateway, and reaches its own session (hooks, its pane,
/// prompts it queued) through [`extract::SessionOr`]; every other capability is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundSession {
    pub node: String,
    pub name: String,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub via: AuthVia,
}

impl Identity {
    pub fn can(&self, cap: Capability) -> bool {
        let scope_ok = match &self.via {
            AuthVia::Session { .. } => true,
            AuthVia::Token {
                session: Some(_), ..
            } => matches!(cap, Capability::Read | Capability::Llm),
            AuthVia::Token { scope, .. } => scope.grants(cap),
        };
        scope_ok && self.role.grants(cap)
    }

    /// The agent session this request acts for, when it came with a session's own token.
    pub fn bound_session(&self) -> Option<&BoundSession> {
        match &self.via {
            AuthVia::Token { session, .. } => session.as_ref(),
            AuthVia::Session { .. } => None,
        }
    }

    /// The name recorded as actor in the activity log: `alice`, or `alice (token 3)`.
    pub fn actor(&self) -> String {
        match &self.via {
            AuthVia::Session { .. } => self.username.clone(),
            AuthVia::Token {
                token_id,
                session: Some(b),
                ..
            } => format!(
                "{} (token {token_id}, session {}/{})",
                self.username, b.node, b.name
            ),
            AuthVia::Token { token_id, .. } => format!("{} (token {token_id})", self.username),
        }
    }

    pub fn csrf_token(&self) -> Option<&str> {
        match &self.via {
            AuthVia::Session { csrf_token, .. } => Some(csrf_token),
            AuthVia::Token { .. } => None,
        }
    }
}

/// A user as the API shows it (never the hash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// An API token as lists show it: never the secret, never the hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scope: Scope,
    pub user_id: i64,
    pub username: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub status: String,
}

/// The answer to token creation: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: ApiToken,
    pub token: String,
}

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;
pub const MAX_USERNAME_LEN: usize = 64;
/// API tokens start with this, so secret scanners and people can recognise them.
pub const TOKEN_PREFIX: &str = "arch_";

/// Checks a new username: 1–64 characters of letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_username(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > MAX_USERNAME_LEN {
        return Err(format!(
            "username must be 1 to {MAX_USERNAME_LEN} characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("username may contain letters, digits, '.', '_', '-' and '@' only".into());
    }
    Ok(())
}

pub fn validate_new_password(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if n > MAX_PASSWORD_LEN {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

/// argon2id with the crate's default (OWASP-recommended) parameters.
pub fn hash_password(pw: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)?
        .to_string())
}

pub fn verify_password(pw: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(pw.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so both answers take equally long.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no such user, constant time").unwrap_or_default())
}

/// A random URL-safe secret of `bytes` random bytes.
pub fn random_secret(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Keyed hash (HMAC-SHA256 under SECRET_KEY) of a session or token secret, hex-encoded.
pub fn secret_hash(key: &[u8], secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).expect("fixed key"));
    mac.update(secret.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time string comparison (CSRF tokens).
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_capabilities_never_exceed_owner_role() {
        let id = |role, scope| Identity {
            user_id: 1,
            username: "u".into(),
            role,
            via: AuthVia::Token {
                token_id: 1,
                scope,
                session: None,
            },
        };
        assert!(!id(Role::Viewer, Scope::Admin).can(Capability::Write));
        assert!(id(Role::Viewer, Scope::Admin).can(Capability::Read));
        assert!(!id(Role::Admin, Scope::Read).can(Capability::Write));
        assert!(!id(Role::Admin, Scope::Ingest).can(Capability::Read));
        assert!(id(Role::Member, Scope::Admin).can(Capability::Write));
        assert!(!id(Role::Member, Scope::Admin).can(Capability::Admin));
        assert!(id(Role::Admin, Scope::Worker).can(Capability::WorkerOps));
        assert!(!id(Role::Member, Scope::Admin).can(Capability::Exec));
        assert!(!id(Role::Admin, Scope::Read).can(Capability::PaneRead));
        assert!(!id(Role::Admin, Scope::Worker).can(Capability::PaneRead));
    }

    #[test]
    fn a_session_token_reads_and_calls_the_gateway_only() {
        let session = Identity {
            user_id: 1,
            username: "u".into(),
            role: Role::Admin,
            via: AuthVia::Token {
                token_id: 1,
                scope: Scope::Agent,
                session: Some(BoundSession {
                    node: "n".into(),
                    name: "s".into(),
                }),
            },
        };
        assert!(session.can(Capability::Read));
        assert!(session.can(Capability::Llm));
        for cap in [
            Capability::Write,
            Capability::Admin,
            Capability::AgentOps,
            Capability::WorkerOps,
            Capability::Ingest,
            Capability::PaneRead,
            Capability::Exec,
        ] {
            assert!(!session.can(cap), "{cap:?}");
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn enums_parse_with_helpful_errors() {
        assert_eq!("member".parse::<Role>(), Ok(Role::Member));
        let e = "root".parse::<Role>().unwrap_err();
        assert!(e.contains("admin, member, viewer"), "{e}");
    }
}

/// What the auth domain's operations reach (users, sessions, tokens): the database, the clock,
/// the settings (session timeout, the admin from the environment, login limits), the key of
/// the keyed hashes and the two caches it empties on every change. Built from `AppState` by
/// `FromRef` (app.rs): other domains pass `state.auth_state()`. Cheap to clone.
#[derive(Clone)]
pub struct AuthState {
    pub db: crate::db::Db,
    pub clock: crate::clock::Clock,
    pub config: std::sync::Arc<crate::config::ServeConfig>,
    pub secret_key: std::sync::Arc<Vec<u8>>,
    pub token_cache: std::sync::Arc<token_cache::TokenCache>,
    pub session_cache: std::sync::Arc<token_cache::SessionCache>,
}

impl AuthState {
    pub fn session_timeout(&self) -> time::Duration {
        time::Duration::seconds(i64::try_from(self.config.session_timeout).unwrap_or(3600))
    }
}
