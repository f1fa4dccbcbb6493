//! The git the autopilot does itself, on this server's host: commit an item's worktree, read
//! its diff, merge an approved branch, push it. Every command goes through `crate::git::run`
//! (hooks off, no interactive prompts, the `ext` transport refused, a time limit), committing
//! as the autopilot.

/// The longest diff kept for the run page and the change request.
pub const MAX_DIFF: usize = 256 * 1024;

/// Who the autopilot's commits (and merges) are by.
const AUTHOR: crate::git::Author = crate::git::Author {
    name: "architect autopilot",
    email: "autopilot@architect.invalid",
};

pub use crate::git::GitError;

type Result<T> = std::result::Result<T, GitError>;

/// Runs `git -C dir args…` through the one git runner (`crate::git`); the answer is
/// (success, stdout, stderr).
async fn run(dir: &str, args: &[&str]) -> Result<(bool, String, String)> {
    let ran = crate::git::run(dir, args, Some(AUTHOR)).await?;
    Ok((ran.success, ran.stdout, ran.stderr))
}

async fn ok(dir: &str, args: &[&str]) -> Result<String> {
    let (success, out, err) = run(dir, args).await?;
    if !success {
        return Err(GitError(format!("git {} failed: {err}", args.join(" "))));
    }
    Ok(out.trim_end().to_string())
}

pub async fn head(dir: &str) -> Result<String> {
    ok(dir, &["rev-parse", "HEAD"]).await
}

/// The branch checked out in `dir` (`HEAD` when detached).
pub async fn current_branch(dir: &str) -> Result<String> {
    ok(dir, &["rev-parse", "--abbrev-ref", "HEAD"]).await
}

/// Commits everything in the worktree (new files included); the new HEAD, or the old one when
/// there was nothing to commit.
pub async fn commit_all(dir: &str, message: &str) -> Result<String> {
    ok(dir, &["add", "-A"]).await?;
    let (clean, _, _) = run(dir, &["diff", "--cached", "--quiet"]).await?;
    if !clean {
        ok(dir, &["commit", "-q", "-m", message]).await?;
    }
    head(dir).await
}

pub async fn diff_stat(dir: &str, base: &str, head: &str) -> Result<String> {
    ok(dir, &["diff", "--stat", base, head]).await
}

/// The diff, cut at [`MAX_DIFF`] bytes (on a character boundary, with a note).
pub async fn diff(dir: &str, base: &str, head: &str) -> Result<String> {
    let mut d = ok(dir, &["diff", base, head]).await?;
    if d.len() > MAX_DIFF {
        let mut cut = MAX_DIFF;
        while !d.is_char_boundary(cut) {
            cut -= 1;
        }
        d.truncate(cut);
        d.push_str("\n… (diff cut at 256 KiB)\n");
    }
    Ok(d)
}

/// `a` is already in `b`'s history.
pub async fn is_ancestor(dir: &str, a: &str, b: &str) -> Result<bool> {
    let (yes, _, _) = run(dir, &["merge-base", "--is-ancestor", a, b]).await?;
    Ok(yes)
}

/// Merges `branch` into the branch checked out in the project's checkout `dir` (a merge
/// commit, so the change request stays one unit in history). Refused when the checkout has
/// uncommitted changes to tracked files; a conflicting merge is aborted and nothing changes.
pub async fn merge(dir: &str, branch: &str, message: &str) -> Result<String> {
    let status = ok(dir, &["status", "--porcelain", "--untracked-files=no"]).await?;
    if !status.trim().is_empty() {
        return Err(GitError(format!(
            "the project's checkout {dir} has uncommitted changes: commit or stash them, then approve again"
        )));
    }
    let (merged, _, err) = run(dir, &["merge", "--no-ff", "-m", message, branch]).await?;
    if !merged {
        let _ = run(dir, &["merge", "--abort"]).await;
        return Err(GitError(format!(
            "merging {branch} failed (aborted, nothing changed): {err}"
        )));
    }
    head(dir).await
}

/// Pushes the checked-out branch to `origin` when the repository has one; `None` when it has
/// none.
pub async fn push_if_remote(dir: &str) -> Result<Option<String>> {
    let remotes = ok(dir, &["remote"]).await?;
    if !remotes.lines().any(|r| r.trim() == "origin") {
        return Ok(None);
    }
    let branch = current_branch(dir).await?;
    ok(dir, &["push", "origin", &branch]).await?;
    Ok(Some(format!("pushed {branch} to origin")))
}

/// Removes an item's worktree (its branch stays).
pub async fn remove_worktree(repo: &str, worktree: &str) -> Result<()> {
    ok(repo, &["worktree", "remove", "--force", worktree])
        .await
        .map(|_| ())
}
