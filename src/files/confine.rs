//! Paths confined to a project's root. A caller's path is relative and lexically clean (no
//! `..`, not absolute, no `.git` component, no NUL); what it names is then canonicalised
//! (every link resolved) and must still lie under the canonical root, compared component by
//! component (`Path::starts_with`), so neither a link out of the root nor a sibling folder
//! sharing the root's prefix (`/x/gitrepos_sibling` for root `/x/gitrepos`) passes.
//!
//! Left open: a link swapped in between the check and the open (the caller owns the tree).

use super::FilesError;
use crate::validate::invalid;
use std::path::{Component, Path, PathBuf};

/// The project's root, canonicalised; it must be a folder.
pub fn root(source_path: &str) -> Result<PathBuf, FilesError> {
    let p = Path::new(source_path)
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir());
    p.ok_or_else(|| {
        FilesError::Invalid(invalid(
            "project_id",
            format!("the project's source_path '{source_path}' is not a folder on this host"),
        ))
    })
}

/// Where project folders may be served from: under a source root, and never a folder that
/// holds the server's own data (its database, `secret.key`, `master.key`) or lies inside it.
/// Without this, anyone who may create a project could name `/` and read the keys.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// Canonical source roots (`ARCHITECT_SOURCE_ROOTS`).
    pub roots: Vec<PathBuf>,
    /// Canonical paths no project folder may contain or lie in.
    pub private: Vec<PathBuf>,
}

impl Allowed {
    /// The settings' roots and private paths, canonicalised (missing ones dropped). Blocking.
    pub fn from_config(c: &crate::config::ServeConfig) -> Allowed {
        let canon = |p: &Path| p.canonicalize().ok();
        let mut private: Vec<PathBuf> = [Some(c.data_dir.clone()), c.master_key_file.clone()]
            .into_iter()
            .flatten()
            .filter_map(|p| canon(&p))
            .collect();
        private.dedup();
        Allowed {
            roots: c
                .sources
                .root_paths()
                .iter()
                .filter_map(|p| canon(p))
                .collect(),
            private,
        }
    }

    /// `source_path` canonicalised, if it may be served.
    pub fn root(&self, source_path: &str) -> Result<PathBuf, FilesError> {
        let r = root(source_path)?;
        let refuse = |m: &str| Err(FilesError::Invalid(invalid("project_id", m)));
        if !self.roots.iter().any(|s| r.starts_with(s)) {
            return refuse(
                "the project's folder is not under a source root (ARCHITECT_SOURCE_ROOTS); its files are not served",
            );
        }
        if self
            .private
            .iter()
            .any(|p| p.starts_with(&r) || r.starts_with(p))
        {
            return refuse(
                "the project's folder holds the server's own data; its files are not served",
            );
        }
        Ok(r)
    }
}

/// A caller's relative path, checked without touching the disk.
pub fn relative(path: &str) -> Result<PathBuf, FilesError> {
    let bad = |m: &str| FilesError::Invalid(invalid("path", m));
    if path.is_empty() || path.len() > 4096 {
        return Err(bad(
            "path must be 1 to 4096 bytes, relative to the project's folder",
        ));
    }
    if path.contains('\0') {
        return Err(bad("path must not contain NUL"));
    }
    let p = Path::new(path);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) if n == ".git" => {
                return Err(bad("paths inside .git are not served"))
            }
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad("path must not contain '..'")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad(
                    "path must be relative to the project's folder, not absolute",
                ))
            }
        }
    }
    Ok(out)
}

/// `candidate` (canonical) lies under `root` (canonical).
fn inside(root: &Path, candidate: &Path) -> Result<(), FilesError> {
    if candidate.starts_with(root) {
        Ok(())
    } else {
        Err(FilesError::Invalid(invalid(
            "path",
            "path leads outside the project's folder",
        )))
    }
}

/// An existing file or folder under `root`, canonical. `NotFound` when nothing is there.
pub fn existing(root: &Path, path: &str) -> Result<PathBuf, FilesError> {
    let rel = relative(path)?;
    let joined = root.join(&rel);
    let canonical = match joined.canonicalize() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling link may still point outside: say so rather than "not found".
            if std::fs::symlink_metadata(&joined).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(FilesError::Invalid(invalid(
                    "path",
                    "path is a link to nothing",
                )));
            }
            return Err(FilesError::NotFound("file"));
        }
        Err(e) => return Err(FilesError::Io(e)),
    };
    inside(root, &canonical)?;
    Ok(canonical)
}

/// Where a write of `path` lands: its folder must exist under `root`; an existing target must
/// be a regular file (not a link, not a folder). Returns the target and whether it exists.
pub fn for_write(root: &Path, path: &str) -> Result<(PathBuf, bool), FilesError> {
    let rel = relative(path)?;
    let name = rel
        .file_name()
        .ok_or_else(|| FilesError::Invalid(invalid("path", "path must name a file")))?
        .to_owned();
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let parent = root.join(parent_rel).canonicalize().map_err(|_| {
        FilesError::Invalid(invalid(
            "path",
            "the file's folder does not exist in the project",
        ))
    })?;
    inside(root, &parent)?;
    let target = parent.join(name);
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.file_type().is_symlink() => Err(FilesError::Invalid(invalid(
            "path",
            "path is a link; write the file it points to instead",
        ))),
        Ok(m) if !m.is_file() => Err(FilesError::Invalid(invalid("path", "path is not a file"))),
        Ok(_) => Ok((target, true)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((target, false)),
        Err(e) => Err(FilesError::Io(e)),
    }
}

/// `full` (canonical, under `root`) as the relative path callers use.
pub fn display(root: &Path, full: &Path) -> String {
    full.strip_prefix(root)
        .unwrap_or(full)
        .to_string_lossy()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_refuse_escapes_lexically() {
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            ".git/config",
            "a/.git/hooks/x",
        ] {
            assert!(relative(bad).is_err(), "{bad} passed");
        }
        assert_eq!(relative("./a/b.rs").unwrap(), PathBuf::from("a/b.rs"));
    }

    #[test]
    fn a_sibling_sharing_the_prefix_is_outside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("gitrepos");
        let sibling = t.path().join("gitrepos_sibling");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&sibling).unwrap();
        std::fs::write(sibling.join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(sibling.join("secret.txt"), root.join("link")).unwrap();
        let root = root.canonicalize().unwrap();
        assert!(matches!(
            existing(&root, "link"),
            Err(FilesError::Invalid(i)) if i.field == "path"
        ));
    }
}
