//! Reading (audited) and writing (atomic, logged, optionally conditional) a project's files.

use super::*;
use crate::validate::invalid;
use serde_json::json;
use std::io::Write as _;
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, FilesError>;

/// The canonical folder of project `id`.
pub async fn project_root(state: &FilesState, id: i64) -> Result<PathBuf> {
    let p = crate::tracking::store::get_project(&state.db, id)
        .await?
        .ok_or(FilesError::NotFound("project"))?;
    let source = p.source_path.ok_or_else(|| {
        FilesError::Invalid(invalid(
            "project_id",
            format!("project {id} has no source_path"),
        ))
    })?;
    let config = state.config.clone();
    blocking(move || confine::Allowed::from_config(&config).root(&source)).await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FilesError::Io(std::io::Error::other(e.to_string())))?
}

fn too_large(field: &str) -> FilesError {
    FilesError::Invalid(invalid(
        field,
        format!("files larger than {MAX_FILE_BYTES} bytes are not served"),
    ))
}

/// Reads a regular file's text under `root` (blocking).
fn read_text(root: &Path, path: &str) -> Result<(String, String)> {
    let full = confine::existing(root, path)?;
    let meta = std::fs::metadata(&full)?;
    if !meta.is_file() {
        return Err(invalid("path", "path is a folder, not a file").into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large("path"));
    }
    let text = as_text(std::fs::read(&full)?)?;
    Ok((confine::display(root, &full), text))
}

/// `POST /api/files/read`: the content leaves only after its audit row committed.
pub async fn read_file(state: &FilesState, actor: &str, r: ReadRequest) -> Result<FileContent> {
    let root = project_root(state, r.project_id).await?;
    let path = r.path.clone();
    let (path, content) = blocking(move || read_text(&root, &path)).await?;
    let sha256 = sha256_hex(content.as_bytes());
    let size = content.len() as u64;
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    crate::activity::store::record(
        &mut tx,
        actor,
        "read_file",
        "project",
        Some(r.project_id),
        &json!({"path": path, "sha256": sha256, "size": size}),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(FileContent {
        project_id: r.project_id,
        path,
        content,
        sha256,
        size,
    })
}

/// A write made ready: the new content fsynced in a temporary file beside its target.
struct Staged {
    temp: PathBuf,
    target: PathBuf,
    rel: String,
    previous: Option<String>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After a successful rename the temporary name is gone; otherwise clean up.
        let _ = std::fs::remove_file(&self.temp);
    }
}

fn stage(root: &Path, path: &str, content: &str, expected: Option<&str>) -> Result<Staged> {
    let (target, exists) = confine::for_write(root, path)?;
    let previous = if exists {
        let meta = std::fs::metadata(&target)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(too_large("path"));
        }
        Some(sha256_hex(&std::fs::read(&target)?))
    } else {
        None
    };
    if let Some(want) = expected {
        let now = previous.as_deref().unwrap_or("");
        if !want.eq_ignore_ascii_case(now) {
            return Err(FilesError::Stale(if now.is_empty() {
                "the file does not exist (expected_sha256 names content)".into()
            } else {
                format!("the file changed since it was read: its sha256 is now {now}")
            }));
        }
    }
    let dir = target.parent().unwrap_or(root).to_path_buf();
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.architect-{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)?;
    let staged = Staged {
        temp,
        target,
        rel: confine::display(root, &dir.join(&name)),
        previous,
    };
    if exists {
        // Keep the replaced file's mode (an executable script stays executable).
        let perms = std::fs::metadata(&staged.target)?.permissions();
        std::fs::set_permissions(&staged.temp, perms)?;
    }
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(staged)
}

/// Renames the staged file over its target and fsyncs the folder, so the rename is durable.
fn publish(staged: &Staged) -> Result<()> {
    std::fs::rename(&staged.temp, &staged.target)?;
    if let Some(dir) = staged.target.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `POST /api/files/write` (see the module's doc for the protocol).
pub async fn write_file(state: &FilesState, actor: &str, w: WriteRequest) -> Result<Written> {
    if w.content.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large("content"));
    }
    if w.content.contains('\0') {
        return Err(invalid("content", "content must be text (it contains NUL)").into());
    }
    if let Some(e) = w.expected_sha256.as_deref() {
        if !(e.is_empty() || (e.len() == 64 && e.bytes().all(|b| b.is_ascii_hexdigit()))) {
            return Err(invalid("expected_sha256", "expected_sha256 must be 64 hex digits").into());
        }
    }
    let root = project_root(state, w.project_id).await?;
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    // The project's row lock: writes to one project's files take turns (both backends).
    crate::tracking::store::lock_project(&mut tx, w.project_id, &now)
        .await?
        .ok_or(FilesError::NotFound("project"))?;
    let sha256 = sha256_hex(w.content.as_bytes());
    let size = w.content.len() as u64;
    let staged = {
        let (root, path, content, expected) = (
            root.clone(),
            w.path.clone(),
            w.content,
            w.expected_sha256.clone(),
        );
        blocking(move || stage(&root, &path, &content, expected.as_deref())).await?
    };
    crate::activity::store::record(
        &mut tx,
        actor,
        "write_file",
        "project",
        Some(w.project_id),
        &json!({"path": staged.rel, "previous_sha256": staged.previous, "sha256": sha256, "size": size}),
        &now,
    )
    .await?;
    let staged = blocking(move || publish(&staged).map(|()| staged)).await?;
    if let Err(e) = tx.commit().await {
        tracing::error!(path = %staged.rel, error = %e, "file written but its activity row did not commit");
        return Err(e.into());
    }
    // The project's row was touched (its lock): cached project lists move on.
    state
        .events
        .emit(crate::events::Topic::Work, "project", w.project_id);
    Ok(Written {
        project_id: w.project_id,
        path: staged.rel.clone(),
        sha256,
        previous_sha256: staged.previous.clone(),
        size,
        created: staged.previous.is_none(),
    })
}

/// A folder's entries (folders first, then files; `.git` left out), for the file page.
pub async fn list_dir(state: &FilesState, project_id: i64, path: &str) -> Result<Vec<DirEntry>> {
    let root = project_root(state, project_id).await?;
    let path = path.to_string();
    blocking(move || {
        let dir = if path.is_empty() || path == "." {
            root.clone()
        } else {
            confine::existing(&root, &path)?
        };
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir)?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name == ".git" {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            out.push(DirEntry {
                path: confine::display(&root, &dir.join(&name)),
                name,
                dir: meta.is_dir(),
                size: meta.len(),
            });
        }
        out.sort_by(|a, b| b.dir.cmp(&a.dir).then(a.name.cmp(&b.name)));
        Ok(out)
    })
    .await
}

/// Whether `path` names a folder in the project (the file page shows a listing then).
pub async fn is_dir(state: &FilesState, project_id: i64, path: &str) -> Result<bool> {
    if path.is_empty() || path == "." {
        return Ok(true);
    }
    let root = project_root(state, project_id).await?;
    let path = path.to_string();
    blocking(move || Ok(confine::existing(&root, &path)?.is_dir())).await
}
