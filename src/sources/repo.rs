//! What a git repository says about itself, read from its files (no `git` process per
//! repository, so a scan of hundreds stays fast): its git directory, `origin`'s URL (with any
//! credentials cut out), its default branch, its languages and the test and build commands its
//! manifests name. [`git`] runs the git program for what only it can answer (diffs).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one `git` call may take before it is killed and treated as "no answer".
pub const GIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Directory entries looked at per repository when counting file extensions for languages.
const LANGUAGE_SAMPLE: usize = 400;

/// The repository's git directory: `<repo>/.git`, or where a worktree's `.git` file points.
pub fn git_dir(repo: &Path) -> Option<PathBuf> {
    let dot = repo.join(".git");
    let meta = std::fs::symlink_metadata(&dot).ok()?;
    if meta.is_dir() {
        return Some(dot);
    }
    if meta.is_file() {
        let text = std::fs::read_to_string(&dot).ok()?;
        let target = text.strip_prefix("gitdir:")?.trim();
        let p = Path::new(target);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            repo.join(p)
        };
        return p.is_dir().then_some(p);
    }
    None
}

/// Where refs and config live: a worktree's git dir names its main one in `commondir`.
fn common_dir(git_dir: &Path) -> PathBuf {
    match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(c) => {
            let p = Path::new(c.trim());
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                git_dir.join(p)
            }
        }
        Err(_) => git_dir.to_path_buf(),
    }
}

/// `origin`'s URL (else the first remote's), with any `user:password@` removed.
pub fn remote_url(git_dir: &Path) -> Option<String> {
    let config = std::fs::read_to_string(common_dir(git_dir).join("config")).ok()?;
    let mut section = String::new();
    let mut first = None;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "url" || !section.starts_with("[remote ") {
            continue;
        }
        let url = without_credentials(value.trim().trim_matches('"'));
        if section == "[remote \"origin\"]" {
            return Some(url);
        }
        first.get_or_insert(url);
    }
    first
}

/// A URL without its userinfo (`https://user:token@host/x` → `https://host/x`); scp-style
/// `git@host:x` has no secret and stays.
pub fn without_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some((_, host)) = authority.rsplit_once('@') {
            return format!("{scheme}://{host}/{path}")
                .trim_end_matches('/')
                .to_string();
        }
    }
    url.to_string()
}

/// The default branch: what `origin/HEAD` points at, else the checked-out branch.
pub fn default_branch(git_dir: &Path) -> Option<String> {
    let common = common_dir(git_dir);
    let symbolic = |p: PathBuf, prefix: &str| -> Option<String> {
        let text = std::fs::read_to_string(p).ok()?;
        let r = text.trim().strip_prefix("ref:")?.trim();
        r.strip_prefix(prefix).map(str::to_string)
    };
    symbolic(
        common.join("refs/remotes/origin/HEAD"),
        "refs/remotes/origin/",
    )
    .or_else(|| symbolic(git_dir.join("HEAD"), "refs/heads/"))
}

/// The test and build commands a repository's manifests name (a Makefile's `test:`/`build:`
/// targets first: they are the project's own entry points).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commands {
    pub test: Option<String>,
    pub build: Option<String>,
}

pub fn detect_commands(repo: &Path) -> Commands {
    let mut c = Commands::default();
    if let Ok(make) = std::fs::read_to_string(repo.join("Makefile")) {
        let has = |t: &str| make.lines().any(|l| l.starts_with(&format!("{t}:")));
        if has("test") {
            c.test = Some("make test".into());
        }
        if has("build") {
            c.build = Some("make build".into());
        }
    }
    if repo.join("Cargo.toml").is_file() {
        c.test.get_or_insert_with(|| "cargo test".into());
        c.build
            .get_or_insert_with(|| "cargo build --release".into());
    }
    if let Ok(text) = std::fs::read_to_string(repo.join("package.json")) {
        let scripts = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("scripts").cloned())
            .unwrap_or_default();
        let runner = if repo.join("pnpm-lock.yaml").is_file() {
            "pnpm"
        } else if repo.join("yarn.lock").is_file() {
            "yarn"
        } else {
            "npm"
        };
        if scripts.get("test").is_some() {
            c.test.get_or_insert_with(|| format!("{runner} test"));
        }
        if scripts.get("build").is_some() {
            c.build.get_or_insert_with(|| format!("{runner} run build"));
        }
    }
    if let Ok(text) = std::fs::read_to_string(repo.join("pyproject.toml")) {
        c.test.get_or_insert_with(|| "pytest".into());
        if text.contains("[build-system]") {
            c.build.get_or_insert_with(|| "python -m build".into());
        }
    }
    if repo.join("go.mod").is_file() {
        c.test.get_or_insert_with(|| "go test ./...".into());
        c.build.get_or_insert_with(|| "go build ./...".into());
    }
    c
}

/// Languages, most files first: from manifests, then from the extensions of a bounded sample
/// of files in the top two levels (skipping the folders a scan skips).
pub fn languages(repo: &Path) -> Vec<String> {
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for (marker, lang) in [
        ("Cargo.toml", "Rust"),
        ("go.mod", "Go"),
        ("pyproject.toml", "Python"),
        ("setup.py", "Python"),
        ("package.json", "JavaScript"),
        ("tsconfig.json", "TypeScript"),
        ("Gemfile", "Ruby"),
        ("pom.xml", "Java"),
        ("build.gradle", "Java"),
    ] {
        if repo.join(marker).is_file() {
            *counts.entry(lang).or_default() += 1;
        }
    }
    let mut seen = 0;
    let mut dirs = vec![(repo.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > LANGUAGE_SAMPLE {
                break;
            }
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name();
            let name = name.to_string_lossy();
            if ft.is_dir() && depth == 0 && !super::skipped_dir(&name) {
                dirs.push((e.path(), depth + 1));
            } else if ft.is_file() {
                if let Some(lang) = name.rsplit_once('.').and_then(|(_, x)| language_of(x)) {
                    *counts.entry(lang).or_default() += 1;
                }
            }
        }
    }
    let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(l, _)| l.to_string()).collect()
}

fn language_of(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "rs" => "Rust",
        "py" => "Python",
        "go" => "Go",
        "js" | "mjs" | "cjs" | "jsx" => "JavaScript",
        "ts" | "tsx" => "TypeScript",
        "rb" => "Ruby",
        "java" => "Java",
        "kt" => "Kotlin",
        "c" | "h" => "C",
        "cc" | "cpp" | "hpp" => "C++",
        "cs" => "C#",
        "swift" => "Swift",
        "php" => "PHP",
        "sh" => "Shell",
        _ => return None,
    })
}

/// Runs `git -C dir ARGS` (argv only, no pager, no optional locks), killed after
/// [`GIT_TIMEOUT`]. `None` when git is missing, fails or hangs: callers treat that as "git
/// does not know".
pub async fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let run = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(GIT_TIMEOUT, run).await.ok()?.ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_cut_from_remote_urls() {
        assert_eq!(
            without_credentials("https://bob:ghp_secret@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            without_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(
            without_credentials("https://github.com/o/r"),
            "https://github.com/o/r"
        );
    }
}
