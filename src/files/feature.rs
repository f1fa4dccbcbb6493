//! The files a feature touches: what its assigned prompts' agents changed (the diff of the
//! session's branch against the project's default branch, in the project's repository; and,
//! for a session on this host, its worktree's changes against where it forked, committed or
//! not, plus untracked files), and the paths its description names that exist in the project.

use super::*;
use crate::sources::repo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Prompts of one feature looked at (newest first).
const PROMPTS: i64 = 50;
/// Paths listed at most.
const MAX_FILES: usize = 2_000;

type Found = BTreeMap<String, BTreeSet<String>>;

fn add(found: &mut Found, text: &str, from: &str) {
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if found.len() >= MAX_FILES && !found.contains_key(line) {
            return;
        }
        found
            .entry(line.to_string())
            .or_default()
            .insert(from.to_string());
    }
}

/// A ref name safe to put in an argv: no option look-alike, no revision syntax.
fn plain_ref(r: &str) -> bool {
    !r.is_empty()
        && !r.starts_with('-')
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
        && !r.contains("..")
}

/// Changes of a worktree on this host since it forked from `base`, plus uncommitted and
/// untracked files.
async fn worktree_changes(cwd: &Path, base: Option<&str>) -> String {
    let fork = match base.filter(|b| plain_ref(b)) {
        Some(b) => repo::git(cwd, &["merge-base", "HEAD", b]).await,
        None => None,
    };
    let against = fork.as_deref().map(str::trim).unwrap_or("HEAD").to_string();
    let mut out = repo::git(cwd, &["diff", "--name-only", &against, "--"])
        .await
        .unwrap_or_default();
    out.push_str(
        &repo::git(cwd, &["ls-files", "--others", "--exclude-standard"])
            .await
            .unwrap_or_default(),
    );
    out
}

/// Path-like words of a description (`src/app.rs`, `README.md`, `` `docs/x.md` ``).
fn named_paths(description: &str) -> Vec<String> {
    description
        .split(|c: char| c.is_whitespace() || "`'\"(),;<>[]{}".contains(c))
        .map(|w| w.trim_end_matches(['.', ':', '!', '?']))
        .map(|w| w.strip_prefix("./").unwrap_or(w))
        .filter(|w| {
            w.len() <= 300
                && !w.contains("://")
                && (w.contains('/')
                    || w.rsplit_once('.')
                        .is_some_and(|(a, b)| !a.is_empty() && (1..=8).contains(&b.len())))
        })
        .map(str::to_string)
        .collect()
}

pub async fn feature_files(state: &FilesState, id: i64) -> Result<FeatureFiles, FilesError> {
    let f = crate::tracking::store::get_feature(&state.db, id)
        .await?
        .ok_or(FilesError::NotFound("feature"))?;
    let project = crate::tracking::store::get_project(&state.db, f.project_id)
        .await?
        .ok_or(FilesError::NotFound("project"))?;
    let root = match project.source_path.clone() {
        Some(s) => {
            let config = state.config.clone();
            tokio::task::spawn_blocking(move || {
                confine::Allowed::from_config(&config).root(&s).ok()
            })
            .await
            .ok()
            .flatten()
        }
        None => None,
    };
    let base = root
        .as_deref()
        .and_then(repo::git_dir)
        .and_then(|g| repo::default_branch(&g));
    let mut found = Found::new();
    let prompts =
        crate::agents::assigner::store::of_source(&state.db, "feature", id, PROMPTS).await?;
    for p in prompts {
        let Some(name) = p.assigned_session.as_deref() else {
            continue;
        };
        let Some(session) = crate::agents::store::session(&state.db, &p.node, name).await? else {
            continue;
        };
        if let (Some(root), Some(branch), Some(base)) = (&root, &session.branch, &base) {
            if plain_ref(branch) && plain_ref(base) && branch != base {
                let range = format!("{base}...{branch}");
                if let Some(out) = repo::git(root, &["diff", "--name-only", &range, "--"]).await {
                    add(
                        &mut found,
                        &out,
                        &format!("prompt #{} (branch {branch})", p.id),
                    );
                }
            }
        }
        // Only this host's worktrees can be read here.
        if p.node == "local" {
            if let Some(cwd) = session.cwd.as_deref().map(Path::new).filter(|c| c.is_dir()) {
                let out = worktree_changes(cwd, base.as_deref()).await;
                add(&mut found, &out, &format!("prompt #{} (worktree)", p.id));
            }
        }
    }
    if let Some(root) = &root {
        for w in named_paths(&f.description) {
            if confine::existing(root, &w).is_ok_and(|p| p.is_file()) {
                add(&mut found, &w, "description");
            }
        }
    }
    let files = found
        .into_iter()
        .map(|(path, from)| TouchedFile {
            exists: root
                .as_deref()
                .is_some_and(|r| confine::existing(r, &path).is_ok_and(|p| p.is_file())),
            path,
            from: from.into_iter().collect(),
        })
        .collect();
    Ok(FeatureFiles {
        feature_id: id,
        project_id: f.project_id,
        source_path: project.source_path,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_paths() {
        let d = "Change `src/app.rs` and ./README.md, see https://x.io/a.b (not docs).";
        let got = named_paths(d);
        assert!(got.contains(&"src/app.rs".to_string()), "{got:?}");
        assert!(got.contains(&"README.md".to_string()), "{got:?}");
        assert!(!got.iter().any(|g| g.contains("x.io")), "{got:?}");
    }

    #[test]
    fn refs_with_revision_syntax_are_not_plain() {
        assert!(plain_ref("feature/x-1"));
        for bad in ["-x", "a..b", "a@{1}", "a b", ""] {
            assert!(!plain_ref(bad), "{bad}");
        }
    }
}
