//! The master key at run time: where it comes from, whether the vault is open or sealed, and
//! the key-file steps that rotation and start-up recovery share.
//!
//! The key comes from `ARCHITECT_MASTER_KEY` when set, else from a key file (default
//! `<data-dir>/master.key`, created with mode 0600 on the first start of an empty vault). The
//! database records which key id is active (`vault_state`) and which key wraps each version, so
//! start-up can tell a wrong or missing key: then the vault is *sealed* — the server runs, vault
//! calls answer 503 with the reason, and nothing is decrypted. A key file is never overwritten
//! and never created while stored secrets need another key.
//!
//! Rotation stages the new key beside the old one (`master.key.next`) before touching the
//! database; start-up finishes or discards a rotation that a crash interrupted (see
//! [`crate::vault::rotation`] for the protocol).

use super::crypto::{Keyring, MasterKey};
use super::store;
use crate::config::ServeConfig;
use crate::db::Db;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Where the master key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `ARCHITECT_MASTER_KEY`: read-only to us, so rotation is refused.
    Env,
    /// A key file we manage (create, stage, rename).
    File(PathBuf),
}

impl KeySource {
    pub fn label(&self) -> &'static str {
        match self {
            KeySource::Env => "env",
            KeySource::File(_) => "file",
        }
    }
}

/// The key file and its siblings used by rotation.
pub struct KeyFiles<'a>(pub &'a Path);

impl KeyFiles<'_> {
    fn with_suffix(&self, suffix: &str) -> PathBuf {
        let mut s = self.0.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    }
    /// The staged next key of a rotation in progress.
    pub fn staged(&self) -> PathBuf {
        self.with_suffix(".next")
    }
    fn staged_tmp(&self) -> PathBuf {
        self.with_suffix(".next.tmp")
    }
    fn main_tmp(&self) -> PathBuf {
        self.with_suffix(".tmp")
    }
}

#[derive(Clone)]
enum KeyState {
    Open(Arc<Keyring>),
    Sealed(Arc<str>),
}

/// The vault's key state, shared by every handler (in `AppState`). Cheap to clone.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    state: RwLock<KeyState>,
    source: KeySource,
    /// One rotation at a time per process.
    rotation: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Vault({:?}, {})",
            self.inner.source,
            if self.sealed_reason().is_some() {
                "sealed"
            } else {
                "open"
            }
        )
    }
}

impl Vault {
    fn with(state: KeyState, source: KeySource) -> Vault {
        Vault {
            inner: Arc::new(Inner {
                state: RwLock::new(state),
                source,
                rotation: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn open(keys: Keyring, source: KeySource) -> Vault {
        Vault::with(KeyState::Open(Arc::new(keys)), source)
    }

    pub fn sealed(reason: impl Into<String>, source: KeySource) -> Vault {
        let reason: String = reason.into();
        Vault::with(KeyState::Sealed(reason.into()), source)
    }

    fn current(&self) -> KeyState {
        match self.inner.state.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The keys to decrypt with, or why the vault is sealed. Take the snapshot that decrypts
    /// only once the transaction holds the database write lock (see the rotation protocol).
    pub fn keyring(&self) -> Result<Arc<Keyring>, super::VaultError> {
        match self.current() {
            KeyState::Open(k) => Ok(k),
            KeyState::Sealed(r) => Err(super::VaultError::Sealed(r.to_string())),
        }
    }

    pub fn sealed_reason(&self) -> Option<String> {
        match self.current() {
            KeyState::Open(_) => None,
            KeyState::Sealed(r) => Some(r.to_string()),
        }
    }

    pub fn source(&self) -> &KeySource {
        &self.inner.source
    }

    /// Swaps in a new set of keys (rotation).
    pub(super) fn replace(&self, keys: Keyring) {
        let next = KeyState::Open(Arc::new(keys));
        match self.inner.state.write() {
            Ok(mut g) => *g = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// The rotation lock, or None when a rotation is already running.
    pub(super) fn try_rotation(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        self.inner.rotation.try_lock().ok()
    }
}

/// The key file path configured, or the default `<data-dir>/master.key`.
pub fn key_file_path(config: &ServeConfig) -> PathBuf {
    config
        .master_key_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("master.key"))
}

/// Loads the master key, finishes or discards an interrupted rotation, and decides whether
/// the vault is open. Never fails: every problem seals the vault with a reason (logged here).
pub async fn load(config: &ServeConfig, db: &Db, now: &str) -> Vault {
    let (result, source) = match config
        .master_key
        .as_deref()
        .filter(|k| !k.trim().is_empty())
    {
        Some(text) => (
            MasterKey::parse(text)
                .map(|k| vec![k])
                .map_err(|e| format!("ARCHITECT_MASTER_KEY is not a valid key: {e}")),
            KeySource::Env,
        ),
        None => {
            let path = key_file_path(config);
            (load_file(&path, db).await, KeySource::File(path))
        }
    };
    let keys = match result {
        Ok(k) => k,
        Err(reason) => return seal(reason, source),
    };
    match check_against_database(db, keys, now).await {
        Ok(keyring) => {
            tracing::info!(key_ids = ?keyring.ids(), source = source.label(), "vault open");
            Vault::open(keyring, source)
        }
        Err(reason) => seal(reason, source),
    }
}

fn seal(reason: String, source: KeySource) -> Vault {
    tracing::error!(%reason, "vault SEALED: secrets cannot be read or written until this is fixed");
    Vault::sealed(reason, source)
}

/// The key file's key(s): the main key, plus a staged rotation key when the database already
/// uses it (a crash after the re-wrap committed; the staged file is then renamed into place).
async fn load_file(path: &Path, db: &Db) -> Result<Vec<MasterKey>, String> {
    let files = KeyFiles(path);
    let stored = store::key_ids_in_use(db)
        .await
        .map_err(|e| format!("cannot read the vault's key ids: {e}"))?;
    let active = store::active_key_id(db)
        .await
        .map_err(|e| format!("cannot read the vault state: {e}"))?;
    // A leftover temp file is a write that never completed: nothing can depend on it.
    for tmp in [files.staged_tmp(), files.main_tmp()] {
        if tmp.exists() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    let main = match read_key_file(path)? {
        Some(k) => k,
        None if stored.is_empty() => {
            let k = MasterKey::generate();
            write_key_file(path, &k)?;
            tracing::info!(path = %path.display(), key_id = k.id(), "created a new vault master key file (mode 0600); back it up: without it the vault cannot be read");
            k
        }
        None => {
            return Err(format!(
                "secrets are stored but the master key file {} is missing; restore it, or set ARCHITECT_MASTER_KEY or --master-key-file",
                path.display()
            ))
        }
    };
    match settle_staged(path, active.as_deref(), &stored)? {
        Settled::Promoted(next) => Ok(vec![next]),
        Settled::Kept(next) => Ok(vec![next, main]),
        Settled::Nothing => Ok(vec![main]),
    }
}

/// What [`settle_staged`] did with a staged rotation key.
pub enum Settled {
    /// No staged key, or it was discarded.
    Nothing,
    /// The re-wrap had committed: the staged key is now the key file.
    Promoted(MasterKey),
    /// Stored rows use both keys (not a state rotation leaves): both files stay.
    Kept(MasterKey),
}

/// Finishes or discards a rotation that stopped between staging and promoting: when the
/// database names the staged key as active and no row uses another key, the re-wrap committed
/// and the staged file is renamed into place; when the database does not use it, the re-wrap
/// never committed (or the file is incomplete) and it is deleted.
pub fn settle_staged(
    path: &Path,
    active: Option<&str>,
    stored: &[String],
) -> Result<Settled, String> {
    let staged_path = KeyFiles(path).staged();
    if !staged_path.exists() {
        return Ok(Settled::Nothing);
    }
    match read_key_file(&staged_path).ok().flatten() {
        Some(next) if active == Some(next.id()) => {
            if stored.iter().all(|id| id == next.id()) {
                promote_staged(path)?;
                tracing::warn!(key_id = next.id(), "finished an interrupted master key rotation: the staged key is now the key file");
                Ok(Settled::Promoted(next))
            } else {
                tracing::warn!("stored secrets use both the key file and the staged rotation key; keeping both until `architect vault rotate-key` runs again");
                Ok(Settled::Kept(next))
            }
        }
        _ => {
            let _ = std::fs::remove_file(&staged_path);
            tracing::warn!("discarded the staged key of a master key rotation that did not complete; the old key stays in use");
            Ok(Settled::Nothing)
        }
    }
}

/// Opens the vault only if the loaded keys cover the active key id and every key id stored
/// rows use. An empty vault adopts the loaded key.
async fn check_against_database(
    db: &Db,
    keys: Vec<MasterKey>,
    now: &str,
) -> Result<Keyring, String> {
    let db_err = |e: sqlx::Error| format!("cannot read the vault state: {e}");
    let stored = store::key_ids_in_use(db).await.map_err(db_err)?;
    let active = store::active_key_id(db).await.map_err(db_err)?;
    let loaded: Vec<String> = keys.iter().map(|k| k.id().to_string()).collect();
    let missing: Vec<&String> = stored.iter().filter(|id| !loaded.contains(id)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "the master key does not match the stored secrets: they need key id(s) {}, the loaded key is {}; set the right ARCHITECT_MASTER_KEY or key file",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            loaded.join(", ")
        ));
    }
    let first = loaded.first().cloned().unwrap_or_default();
    match active {
        Some(a) if loaded.contains(&a) => {}
        Some(a) if !stored.is_empty() => {
            return Err(format!(
                "the vault's active master key is {a} but the loaded key is {first}; set the right ARCHITECT_MASTER_KEY or key file"
            ))
        }
        _ => {
            store::set_active_key_id(db, &first, now)
                .await
                .map_err(|e| format!("cannot record the vault's key id: {e}"))?;
        }
    }
    Ok(Keyring::new(keys))
}

/// Reads a key file: Ok(None) when it does not exist; Err when it cannot be read or parsed
/// (the vault then stays sealed: a file we cannot parse is never replaced).
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => zeroize::Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot read the master key file {}: {e}",
                path.display()
            ))
        }
    };
    warn_if_readable_by_others(path);
    MasterKey::parse(&text).map(Some).map_err(|e| {
        format!(
            "the master key file {} is not a valid key: {e}",
            path.display()
        )
    })
}

/// Refuses a master key file (or a staged rotation key) that users other than the owner can
/// read: whoever reads it reads every secret. `serve` does not start with one unless the
/// operator said so (`--allow-readable-master-key`); then the start-up log warns on every
/// read. Refusing beats warning: a warning scrolls by, a server that does not start gets the
/// file fixed. An env key (`ARCHITECT_MASTER_KEY`) has no file to check.
pub fn check_key_file_private(config: &ServeConfig) -> Result<(), String> {
    if config
        .master_key
        .as_deref()
        .is_some_and(|k| !k.trim().is_empty())
        || config.allow_readable_master_key
    {
        return Ok(());
    }
    let path = key_file_path(config);
    for p in [path.clone(), KeyFiles(&path).staged()] {
        if let Some(mode) = readable_by_others(&p) {
            return Err(format!(
                "the master key file {} has mode {mode:o}: users other than its owner can read it. Run `chmod 600 {}` (or start with --allow-readable-master-key / ARCHITECT_ALLOW_READABLE_MASTER_KEY=true to accept it)",
                p.display(),
                p.display()
            ));
        }
    }
    Ok(())
}

/// The file's permission bits when group or others have any access to it.
#[cfg(unix)]
fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> Option<u32> {
    None
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the master key file is readable by other users; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Writes `key` to `path` atomically: a 0600 temp file, synced, renamed into place, and the
/// directory synced, so a crash leaves either no file or a complete one.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), String> {
    let tmp = KeyFiles(path).main_tmp();
    write_private_atomic(path, &tmp, key)
}

/// Step 1 of rotation: writes the new key to the staged file (atomically, 0600).
pub fn stage_key(path: &Path, key: &MasterKey) -> Result<(), String> {
    let files = KeyFiles(path);
    write_private_atomic(&files.staged(), &files.staged_tmp(), key)
}

/// Drops a staged key that will not be used (rotation failed before committing).
pub fn discard_staged(path: &Path) {
    let _ = std::fs::remove_file(KeyFiles(path).staged());
}

/// Step 4 of rotation: the staged key replaces the key file (one atomic rename).
pub fn promote_staged(path: &Path) -> Result<(), String> {
    let staged = KeyFiles(path).staged();
    std::fs::rename(&staged, path).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            staged.display(),
            path.display()
        )
    })?;
    sync_dir(path);
    Ok(())
}

fn write_private_atomic(path: &Path, tmp: &Path, key: &MasterKey) -> Result<(), String> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if path.exists() {
        return Err(format!(
            "{} already exists; not overwriting a key file",
            path.display()
        ));
    }
    let _ = std::fs::remove_file(tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        let mut f = opts.open(tmp)?;
        let text = key.encode();
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        format!("cannot write the key file {}: {e}", path.display())
    })?;
    sync_dir(path);
    Ok(())
}

/// Makes a rename durable (best effort: not every platform can sync a directory).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}
