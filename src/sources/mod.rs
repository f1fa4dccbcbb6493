//! Code sources: the folders where this host keeps its git repositories (SPEC "Code Sources":
//! `~/gitrepos` and `~/src` by default). `POST /api/scan-sources` walks them and reports each
//! repository it finds (what `repo.rs` reads from it, and whether a project already points at
//! it); `POST /api/import-project` turns one into a project with its test and build commands.
//!
//! The walk is bounded: depth [`SourcesConfig::scan_depth`] below each root, at most
//! [`MAX_REPOSITORIES`] repositories and [`MAX_DIRECTORIES`] folders; it never follows a
//! symbolic link (so no link loop can trap it), never descends into a repository (nested
//! ones and submodules belong to it) nor into the folders of [`skipped_dir`].

pub mod actions;
pub mod api;
pub mod pages;
pub mod repo;

use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the sources domain's operations reach. Built from `AppState` by `FromRef` (app.rs);
/// callers outside a handler use `state.sources_state()`. Cheap to clone.
#[derive(Clone)]
pub struct SourcesState {
    pub db: crate::db::Db,
    pub clock: crate::clock::Clock,
    /// An import creates a project: its `Work` event moves cached project lists on.
    pub events: crate::events::Events,
    /// The one setting read (the roots and the scan depth), copied out of the config.
    pub sources: SourcesConfig,
    /// Only for the queue's write gate: an import writes the project's commands, a queue row.
    pub tasks: crate::tasks::TaskRuntime,
}

pub const MAX_REPOSITORIES: usize = 5_000;
pub const MAX_DIRECTORIES: usize = 200_000;

#[derive(clap::Args, Clone, Debug)]
pub struct SourcesConfig {
    /// Folders scanned for git repositories by "Scan sources" (`POST /api/scan-sources`),
    /// comma-separated; `~` is the serving user's home. Imports must come from under them.
    #[arg(
        long = "source-roots",
        env = "ARCHITECT_SOURCE_ROOTS",
        value_delimiter = ',',
        default_values_t = ["~/gitrepos".to_string(), "~/src".to_string()]
    )]
    pub roots: Vec<String>,

    /// How many folder levels below a source root are searched for repositories.
    #[arg(
        long = "source-scan-depth",
        env = "ARCHITECT_SOURCE_SCAN_DEPTH",
        default_value_t = 4
    )]
    pub scan_depth: usize,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            roots: vec!["~/gitrepos".into(), "~/src".into()],
            scan_depth: 4,
        }
    }
}

impl SourcesConfig {
    /// The roots with `~` expanded (as configured; not canonicalised).
    pub fn root_paths(&self) -> Vec<PathBuf> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        self.roots
            .iter()
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .map(|r| match (r.strip_prefix("~/"), &home) {
                (Some(rest), Some(h)) => h.join(rest),
                _ if r == "~" => home.clone().unwrap_or_else(|| PathBuf::from(r)),
                _ => PathBuf::from(r),
            })
            .collect()
    }
}

/// Folders a scan never enters: dependencies, build output, virtualenvs, and hidden ones.
pub fn skipped_dir(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            "node_modules" | "target" | "venv" | "vendor" | "__pycache__" | "dist"
        )
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScannedRoot {
    pub path: String,
    pub exists: bool,
}

/// One repository a scan found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FoundRepository {
    /// The folder's name (the project name an import proposes).
    pub name: String,
    /// Canonical path.
    pub path: String,
    /// `origin`'s URL without credentials.
    pub remote: Option<String>,
    pub default_branch: Option<String>,
    pub languages: Vec<String>,
    pub test_command: Option<String>,
    pub build_command: Option<String>,
    /// A project's `source_path` already is this folder.
    pub imported: bool,
    pub project_id: Option<i64>,
}

/// The answer of `POST /api/scan-sources`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScanResult {
    pub roots: Vec<ScannedRoot>,
    pub repositories: Vec<FoundRepository>,
    /// A bound ([`MAX_REPOSITORIES`], [`MAX_DIRECTORIES`]) stopped the walk early.
    pub truncated: bool,
    pub elapsed_ms: u64,
}

/// `POST /api/import-project`: a repository under a source root. Missing fields are taken
/// from the scan (the folder's name, the detected commands); an empty command sets none.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    #[serde(alias = "source_path")]
    pub path: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub test_command: Option<String>,
    #[serde(default)]
    pub build_command: Option<String>,
}

impl ImportRequest {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.path.trim().is_empty() {
            return Err(invalid("path", "path is required: a repository's folder"));
        }
        Ok(())
    }
}

/// The answer of `POST /api/import-project`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Imported {
    pub project: crate::tracking::Project,
    pub commands: crate::tasks::ProjectCommands,
    pub repository: FoundRepository,
}

/// Finds the repositories under `roots` (each canonicalised; a missing root is reported, not
/// an error). Blocking: call it on the blocking pool.
pub fn walk(roots: &[PathBuf], depth: usize) -> (Vec<ScannedRoot>, Vec<PathBuf>, bool) {
    let mut scanned = Vec::new();
    let mut found = Vec::new();
    let mut seen_roots = std::collections::BTreeSet::new();
    let mut dirs_seen = 0usize;
    let mut truncated = false;
    for root in roots {
        let canonical = root.canonicalize().ok().filter(|p| p.is_dir());
        scanned.push(ScannedRoot {
            path: canonical.as_deref().unwrap_or(root).display().to_string(),
            exists: canonical.is_some(),
        });
        let Some(root) = canonical else { continue };
        if !seen_roots.insert(root.clone()) {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        while let Some((dir, d)) = stack.pop() {
            dirs_seen += 1;
            if dirs_seen > MAX_DIRECTORIES || found.len() >= MAX_REPOSITORIES {
                truncated = true;
                break;
            }
            if repo::git_dir(&dir).is_some() {
                found.push(dir);
                continue;
            }
            if d >= depth {
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut children: Vec<PathBuf> = entries
                .flatten()
                // `file_type` does not follow links: a linked folder is never entered.
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter(|e| !skipped_dir(&e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect();
            children.sort();
            stack.extend(children.into_iter().rev().map(|c| (c, d + 1)));
        }
    }
    found.sort();
    found.dedup();
    (scanned, found, truncated)
}

/// What a repository says about itself (blocking file reads).
pub fn describe(path: &Path) -> FoundRepository {
    let git = repo::git_dir(path);
    let commands = repo::detect_commands(path);
    FoundRepository {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        path: path.display().to_string(),
        remote: git.as_deref().and_then(repo::remote_url),
        default_branch: git.as_deref().and_then(repo::default_branch),
        languages: repo::languages(path),
        test_command: commands.test,
        build_command: commands.build,
        imported: false,
        project_id: None,
    }
}
