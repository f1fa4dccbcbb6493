//! Files (SPEC "Files"): reading and writing text files inside a project's `source_path`
//! (`confine.rs` keeps every path there; the folder itself must lie under a source root and
//! away from the server's own data, `confine::Allowed`), and the files a feature touches
//! (`feature.rs`).
//!
//! A read is audited: its activity row (`read_file`, the path and the content's hash) commits
//! before the content is answered. A write is atomic and logged: the new content goes to a
//! temporary file in the same folder (fsynced), the activity row (`write_file`, with the
//! previous content's SHA-256 and the new one) is written in a transaction that holds the
//! project's row lock, the temporary file is renamed over the target (and the folder fsynced),
//! and only then the transaction commits. The row lock serialises writes to one project on
//! both backends, so an `expected_sha256` precondition is checked and acted on atomically
//! (409 on a mismatch). If the commit itself fails after the rename, the file is changed
//! without its row; the error is answered and logged.

pub mod actions;
pub mod api;
pub mod confine;
pub mod feature;
pub mod pages;

use crate::validate::Invalid;
use serde::{Deserialize, Serialize};

/// What the files domain's operations reach, and the documents' (`docs/` reads project files
/// under the same rules, so it takes this state rather than a twin of it). Built from
/// `AppState` by `FromRef` (app.rs); callers outside a handler use `state.files_state()`.
/// Cheap to clone.
#[derive(Clone)]
pub struct FilesState {
    pub db: crate::db::Db,
    pub clock: crate::clock::Clock,
    /// A write touches the project's row: its `Work` event moves cached project lists on.
    pub events: crate::events::Events,
    /// Settings, never mutated: `confine::Allowed` reads three of them (the source roots, the
    /// data dir, the master key file), so the shared `Arc` rather than copies made per request.
    pub config: std::sync::Arc<crate::config::ServeConfig>,
}

/// The largest file read or written, in bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Bytes looked at for a NUL when deciding that a file is binary.
pub const BINARY_SNIFF_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{}", .0.message)]
    Invalid(Invalid),
    /// The file changed since the caller read it.
    #[error("{0}")]
    Stale(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Invalid> for FilesError {
    fn from(v: Invalid) -> Self {
        FilesError::Invalid(v)
    }
}

/// `POST /api/files/read`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub project_id: i64,
    /// Relative to the project's `source_path`.
    #[serde(alias = "file_path")]
    pub path: String,
}

/// `POST /api/files/write`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    pub project_id: i64,
    #[serde(alias = "file_path")]
    pub path: String,
    pub content: String,
    /// The SHA-256 (hex) of the content the caller last read; the write is refused with 409
    /// when the file holds something else now. An empty string means "the file must not
    /// exist yet".
    #[serde(default, alias = "expected_hash")]
    pub expected_sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileContent {
    pub project_id: i64,
    pub path: String,
    pub content: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Written {
    pub project_id: i64,
    pub path: String,
    pub sha256: String,
    /// The replaced content's hash; `None` when the file was created.
    pub previous_sha256: Option<String>,
    pub size: u64,
    pub created: bool,
}

/// A file a feature touches, and why it is listed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TouchedFile {
    /// Relative to the project's folder (or to the agent's worktree, the same repository).
    pub path: String,
    /// Whether it exists in the project's folder now.
    pub exists: bool,
    /// `prompt #N (branch B)`, `prompt #N (worktree)`, `description`.
    pub from: Vec<String>,
}

/// `GET /api/files/feature/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureFiles {
    pub feature_id: i64,
    pub project_id: i64,
    pub source_path: Option<String>,
    pub files: Vec<TouchedFile>,
}

/// One entry of a folder listing (the file page).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DirEntry {
    pub name: String,
    pub path: String,
    pub dir: bool,
    pub size: u64,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Text we serve: valid UTF-8 with no NUL in its first [`BINARY_SNIFF_BYTES`].
pub fn as_text(bytes: Vec<u8>) -> Result<String, FilesError> {
    let head = &bytes[..bytes.len().min(BINARY_SNIFF_BYTES)];
    if head.contains(&0) {
        return Err(crate::validate::invalid("path", "binary files are not served").into());
    }
    String::from_utf8(bytes).map_err(|_| {
        crate::validate::invalid("path", "the file is not UTF-8 text (binary?)").into()
    })
}
