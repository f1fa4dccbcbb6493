//! Who wrote each new item: `git blame`, bounded, after the scan commits.

use super::*;

/// New file items whose author is asked of `git blame` per scan (one process each).
const MAX_BLAME: usize = 200;

/// `git blame` for the new items (bounded): who wrote the line and when.
pub(super) async fn blame_new_items(
    state: &AppState,
    dir: &std::path::Path,
    added: &[(i64, String, u32)],
) {
    if added.is_empty() {
        return;
    }
    let dir = dir.to_path_buf();
    let wanted: Vec<(i64, String, u32)> = added.iter().take(MAX_BLAME).cloned().collect();
    let found = tokio::task::spawn_blocking(move || {
        wanted
            .into_iter()
            .filter_map(|(id, path, line)| blame(&dir, &path, line).map(|(a, t)| (id, a, t)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    if found.is_empty() {
        return;
    }
    let Ok(mut conn) = state.db.acquire().await else {
        return;
    };
    for (id, author, at) in found {
        if let Err(e) = store::set_author(&mut conn, id, &author, at.as_deref()).await {
            tracing::debug!(error = %e, "storing a blame author failed");
        }
    }
}

/// The author and time of one line (`git blame --porcelain`); None for an uncommitted line.
fn blame(dir: &std::path::Path, path: &str, line: u32) -> Option<(String, Option<String>)> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["blame", "--porcelain", "-L"])
        .arg(format!("{line},{line}"))
        .arg("--")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut author = None;
    let mut at = None;
    for l in text.lines() {
        if let Some(a) = l.strip_prefix("author ") {
            author = Some(a.to_string());
        } else if let Some(t) = l.strip_prefix("author-time ") {
            at = t
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .map(crate::clock::format);
        }
    }
    match author {
        Some(a) if a != "Not Committed Yet" => Some((a, at)),
        _ => None,
    }
}
