//! The one way architect runs git (a leaf): the autopilot's commits, diffs, merges and pushes
//! (`autopilot::git`) and a session start's worktree (`tmux::spawn`) both go through [`run`].
//! Every command runs with hooks off (a hook is code from the repository; an agent may have
//! written it), the `ext` transport refused, no interactive prompt (stdin closed,
//! `GIT_TERMINAL_PROMPT=0`), and a time limit ([`LIMIT`]); a git still running past it is
//! killed.

use std::time::Duration;

/// How long one git command may take (a push over a slow link included).
pub const LIMIT: Duration = Duration::from_secs(120);

/// Git could not be run at all, or did not finish within [`LIMIT`]. A git that ran and failed
/// is not an error here: [`Ran::success`] says so, and the caller words it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GitError(pub String);

/// Who commits: the author and committer of any commit the command makes.
#[derive(Debug, Clone, Copy)]
pub struct Author {
    pub name: &'static str,
    pub email: &'static str,
}

/// What a finished git command answered.
#[derive(Debug, Clone)]
pub struct Ran {
    pub success: bool,
    pub stdout: String,
    /// Trimmed.
    pub stderr: String,
}

/// Runs `git -C dir args…` (see the module's rules), committing as `author` when given.
pub async fn run(dir: &str, args: &[&str], author: Option<Author>) -> Result<Ran, GitError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "protocol.ext.allow=never",
    ])
    .arg("-C")
    .arg(dir)
    .args(args)
    .env("GIT_TERMINAL_PROMPT", "0")
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    if let Some(a) = author {
        cmd.env("GIT_AUTHOR_NAME", a.name)
            .env("GIT_AUTHOR_EMAIL", a.email)
            .env("GIT_COMMITTER_NAME", a.name)
            .env("GIT_COMMITTER_EMAIL", a.email);
    }
    let first = args.first().copied().unwrap_or("");
    let out = tokio::time::timeout(LIMIT, cmd.output())
        .await
        .map_err(|_| GitError(format!("git {first} took longer than {LIMIT:?}")))?
        .map_err(|e| GitError(format!("cannot run git: {e}")))?;
    Ok(Ran {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert!(run(d, &["init", "-q"], None).await.unwrap().success);
        dir
    }

    #[tokio::test]
    async fn hooks_never_run_and_the_author_is_the_one_given() {
        let dir = repo().await;
        let d = dir.path().to_str().unwrap();
        let hook = dir.path().join(".git/hooks/pre-commit");
        let marker = dir.path().join("hook-ran");
        std::fs::write(&hook, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("f"), "x").unwrap();
        assert!(run(d, &["add", "f"], None).await.unwrap().success);
        let author = Author {
            name: "who",
            email: "who@example.invalid",
        };
        let ran = run(d, &["commit", "-q", "-m", "m"], Some(author))
            .await
            .unwrap();
        assert!(ran.success, "{}", ran.stderr);
        assert!(!marker.exists(), "the pre-commit hook ran");
        let log = run(d, &["log", "-1", "--format=%an <%ae> %cn"], None)
            .await
            .unwrap();
        assert_eq!(log.stdout.trim(), "who <who@example.invalid> who");
    }

    #[tokio::test]
    async fn a_failing_command_is_an_answer_and_a_missing_directory_too() {
        let dir = repo().await;
        let d = dir.path().to_str().unwrap();
        let ran = run(d, &["rev-parse", "no-such-ref"], None).await.unwrap();
        assert!(!ran.success);
        assert!(!ran.stderr.is_empty());
        let ran = run("/nonexistent/architect-git", &["status"], None)
            .await
            .unwrap();
        assert!(!ran.success);
    }
}
