//! The scanner: the work items written down in a project's git repository.
//!
//! What counts as an item: a `TODO`/`FIXME`/`XXX`/`HACK` marker in a comment of a tracked file,
//! and an unchecked `- [ ]` line in a planning Markdown file (`TODO*`, `PLAN*`, `ROADMAP*`, and
//! the "Unreleased" section of `CHANGELOG*`), kept with the heading it stands under.
//!
//! Only files git tracks are read (`git ls-files`, so `.gitignore` holds), never vendored
//! folders, binaries (a NUL byte in the first 8 KiB), files over the size cap or text that is
//! not UTF-8: each of those is reported as a skip with its reason, never an error. Each file is
//! known by its git blob id; a [`Cache`] keeps the items of every blob read, so a rescan reads
//! only files whose content changed.
//!
//! An item's fingerprint is a hash of its path, kind and normalised text (and its rank among
//! identical items of that file), so it survives lines moving. [`reconcile`] decides what a
//! rescan changed: same fingerprint → the same item; a leftover new item in the same file and
//! of the same kind as a leftover known one, nearest by line → that item edited; the rest are
//! added or gone.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Files larger than this are skipped (generated or data files, not plans).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Repositories with more tracked files than this are refused (bounded time and memory).
pub const MAX_FILES: usize = 200_000;
/// Items kept per file; the rest are counted in the skip reason.
pub const MAX_ITEMS_PER_FILE: usize = 500;
/// Longest item text kept (characters).
pub const MAX_TEXT: usize = 300;

/// Folders whose files are someone else's code.
const VENDORED: &[&str] = &[
    "vendor/",
    "node_modules/",
    "third_party/",
    "third-party/",
    "target/",
    "dist/",
    "build/",
    ".venv/",
    "venv/",
    "__pycache__/",
    ".git/",
];

crate::text_enum! {
    /// What kind of note an item is; the order is its weight when plans rank items.
    pub enum ItemKind ("item kind") {
        Fixme = "fixme",
        Hack = "hack",
        Xxx = "xxx",
        Todo = "todo",
        Checkbox = "checkbox",
    }
}

/// One work item found in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    pub kind: ItemKind,
    /// Repository-relative path, `/`-separated.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    pub text: String,
    /// The Markdown heading a checkbox stands under (`Roadmap › v2`), if any.
    pub heading: Option<String>,
    pub fingerprint: String,
}

/// A tracked file the scanner did not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// What one scan found.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Scan {
    pub items: Vec<Item>,
    pub skipped: Vec<Skipped>,
    /// Tracked files considered (vendored folders left out).
    pub files: usize,
    /// Files actually read this time (the rest came from the cache).
    pub files_read: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{0} is not a git repository (git ls-files failed: {1})")]
    NotARepository(String, String),
    #[error("cannot run git: {0}")]
    Git(String),
    #[error("the repository tracks {0} files; the scanner reads at most {MAX_FILES}")]
    TooManyFiles(usize),
}

/// Items of each blob already read (blob id → items without path-dependent parts).
#[derive(Debug, Default, Clone)]
pub struct Cache {
    blobs: HashMap<String, Result<Vec<Found>, String>>,
}

impl Cache {
    pub fn len(&self) -> usize {
        self.blobs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }
}

/// An item as found in a blob (its path and fingerprint are added per file).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    kind: ItemKind,
    line: u32,
    text: String,
    heading: Option<String>,
}

/// One tracked file: path, blob id and size on disk.
struct Tracked {
    path: String,
    blob: String,
}

/// Scans the repository at `root` (its work tree as it is on disk, tracked files only).
pub fn scan(root: &Path, cache: &mut Cache) -> Result<Scan, ScanError> {
    let tracked = tracked_files(root)?;
    let mut out = Scan::default();
    let mut used = std::collections::HashSet::new();
    for t in tracked {
        if VENDORED
            .iter()
            .any(|v| t.path.starts_with(v) || t.path.contains(&format!("/{v}")))
        {
            continue;
        }
        out.files += 1;
        // Read only blobs not seen before; the cached result is used in place, not copied.
        let found = cache.blobs.entry(t.blob.clone()).or_insert_with(|| {
            out.files_read += 1;
            read_items(&root.join(&t.path), planning_markdown(&t.path))
        });
        match found {
            Ok(found) => out.items.extend(with_fingerprints(&t.path, found)),
            Err(reason) => out.skipped.push(Skipped {
                path: t.path.clone(),
                reason: reason.clone(),
            }),
        }
        used.insert(t.blob);
    }
    // Blobs no longer in the tree are forgotten, so the cache stays the size of the repository.
    cache.blobs.retain(|b, _| used.contains(b));
    Ok(out)
}

fn tracked_files(root: &Path) -> Result<Vec<Tracked>, ScanError> {
    // `-s`: mode, blob id, stage, path; `-z`: NUL-separated, so any file name is safe.
    // A file changed on disk but not committed has the index's blob id: the work tree is read
    // for it, and its id is the on-disk hash only after it is added. Good enough for caching
    // committed files; `--modified` names the rest, which are always read.
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-s", "-z"])
        .output()
        .map_err(|e| ScanError::Git(e.to_string()))?;
    if !out.status.success() {
        return Err(ScanError::NotARepository(
            root.display().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let modified = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "--modified", "-z"])
        .output()
        .map_err(|e| ScanError::Git(e.to_string()))?;
    let dirty: std::collections::HashSet<&[u8]> = modified
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .collect();
    let mut files = Vec::new();
    for entry in out.stdout.split(|b| *b == 0).filter(|e| !e.is_empty()) {
        // "<mode> <blob> <stage>\t<path>"
        let Some(tab) = entry.iter().position(|b| *b == b'\t') else {
            continue;
        };
        let (meta, path) = (&entry[..tab], &entry[tab + 1..]);
        let meta = String::from_utf8_lossy(meta);
        let mut parts = meta.split(' ');
        let (Some(mode), Some(blob)) = (parts.next(), parts.next()) else {
            continue;
        };
        // Regular files only: no symlinks (120000), no submodules (160000).
        if !mode.starts_with("100") {
            continue;
        }
        let Ok(p) = std::str::from_utf8(path) else {
            continue;
        };
        let blob = if dirty.contains(path) {
            format!("dirty:{p}:{}", file_stamp(&root.join(p)))
        } else {
            blob.to_string()
        };
        files.push(Tracked {
            path: p.to_string(),
            blob,
        });
        if files.len() > MAX_FILES {
            return Err(ScanError::TooManyFiles(count_entries(&out.stdout)));
        }
    }
    Ok(files)
}

fn count_entries(z: &[u8]) -> usize {
    z.split(|b| *b == 0).filter(|e| !e.is_empty()).count()
}

/// Size and modification time: what identifies an uncommitted file's content between scans.
fn file_stamp(p: &Path) -> String {
    match std::fs::metadata(p) {
        Ok(m) => {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{}:{t}", m.len())
        }
        Err(_) => "gone".into(),
    }
}

/// Which planning Markdown a path is, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Markdown {
    /// TODO, PLAN, ROADMAP: every unchecked box.
    Plan,
    /// CHANGELOG: only the boxes under an "Unreleased" heading.
    Changelog,
}

fn planning_markdown(path: &str) -> Option<Markdown> {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_uppercase();
    if !(name.ends_with(".MD") || name.ends_with(".MARKDOWN") || !name.contains('.')) {
        return None;
    }
    let stem = name.split('.').next().unwrap_or("");
    if ["TODO", "TODOS", "PLAN", "PLANS", "ROADMAP"].contains(&stem) {
        Some(Markdown::Plan)
    } else if stem == "CHANGELOG" {
        Some(Markdown::Changelog)
    } else {
        None
    }
}

/// The items of one file, or why it was not read.
fn read_items(path: &Path, md: Option<Markdown>) -> Result<Vec<Found>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "larger than {} KiB ({} KiB)",
            MAX_FILE_BYTES / 1024,
            meta.len() / 1024
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes[..bytes.len().min(8192)].contains(&0) {
        return Err("binary".into());
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let mut found = match md {
        Some(kind) => checkboxes(text, kind),
        None => markers(text),
    };
    if found.len() > MAX_ITEMS_PER_FILE {
        found.truncate(MAX_ITEMS_PER_FILE);
    }
    Ok(found)
}

/// `TODO`-style markers in comments: after `//`, `#`, `--`, `;`, `/*`, a leading `*`, or
/// `<!--`, the marker as a whole upper-case word, then its text.
fn markers(text: &str) -> Vec<Found> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = comment_body(line) else {
            continue;
        };
        if let Some((kind, note)) = marker_in(rest) {
            out.push(Found {
                kind,
                line: (i + 1) as u32,
                text: clip(note),
                heading: None,
            });
        }
    }
    out
}

/// The text of the comment on this line, if it has one.
fn comment_body(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if let Some(r) = t.strip_prefix('*') {
        // A block comment's continuation line.
        return Some(r);
    }
    let mut best: Option<usize> = None;
    for open in ["//", "/*", "<!--", "# ", "#\t", "-- ", ";; ", "; "] {
        if let Some(at) = line.find(open) {
            best = Some(best.map_or(at, |b: usize| b.min(at)));
        }
    }
    if t.starts_with('#') && !t.starts_with("#[") && !t.starts_with("#!") {
        best = Some(best.map_or(0, |b| b.min(line.len() - t.len())));
    }
    best.map(|at| &line[at..])
}

fn marker_in(comment: &str) -> Option<(ItemKind, &str)> {
    let bytes = comment.as_bytes();
    for (word, kind) in [
        ("FIXME", ItemKind::Fixme),
        ("TODO", ItemKind::Todo),
        ("XXX", ItemKind::Xxx),
        ("HACK", ItemKind::Hack),
    ] {
        let mut from = 0;
        while let Some(pos) = comment[from..].find(word) {
            let at = from + pos;
            let end = at + word.len();
            let before_ok =
                at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
            let after_ok = end == bytes.len()
                || matches!(bytes[end], b':' | b' ' | b'(' | b'!' | b'-' | b'\t' | b'.');
            if before_ok && after_ok {
                let mut note = &comment[end..];
                // An owner in parentheses, `TODO(ana): …`, is not part of the text.
                if let Some(rest) = note.strip_prefix('(') {
                    note = rest.split_once(')').map_or(rest, |(_, r)| r);
                }
                let note = note
                    .trim_start_matches([':', '!', '-', ' ', '\t', '.'])
                    .trim_end()
                    .trim_end_matches("*/")
                    .trim_end_matches("-->")
                    .trim();
                return Some((kind, note));
            }
            from = end;
        }
    }
    None
}

/// Unchecked `- [ ]` (or `* [ ]`, `+ [ ]`, `1. [ ]`) lines with the heading path above them.
fn checkboxes(text: &str, kind: Markdown) -> Vec<Found> {
    let mut out = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut fence = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if let Some(h) = heading(t) {
            headings.retain(|(level, _)| *level < h.0);
            headings.push(h);
            continue;
        }
        if kind == Markdown::Changelog
            && !headings
                .iter()
                .any(|(_, h)| h.to_ascii_lowercase().contains("unreleased"))
        {
            continue;
        }
        let item = t
            .strip_prefix("- [ ]")
            .or_else(|| t.strip_prefix("* [ ]"))
            .or_else(|| t.strip_prefix("+ [ ]"))
            .or_else(|| {
                let digits = t.find(|c: char| !c.is_ascii_digit())?;
                (digits > 0)
                    .then(|| t[digits..].strip_prefix(". [ ]"))
                    .flatten()
            });
        if let Some(item) = item {
            let note = item.trim();
            if note.is_empty() {
                continue;
            }
            out.push(Found {
                kind: ItemKind::Checkbox,
                line: (i + 1) as u32,
                text: clip(note),
                heading: (!headings.is_empty()).then(|| {
                    headings
                        .iter()
                        .map(|(_, h)| h.as_str())
                        .collect::<Vec<_>>()
                        .join(" › ")
                }),
            });
        }
    }
    out
}

fn heading(t: &str) -> Option<(usize, String)> {
    let level = t.chars().take_while(|c| *c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &t[level..];
    if !rest.starts_with(' ') {
        return None;
    }
    let h = rest.trim().trim_end_matches('#').trim();
    (!h.is_empty()).then(|| (level, h.to_string()))
}

fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// Whitespace folded and case ignored: what a fingerprint reads of a text.
fn normalise(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn with_fingerprints(path: &str, found: &[Found]) -> Vec<Item> {
    let mut seen: HashMap<(ItemKind, String), u32> = HashMap::new();
    found
        .iter()
        .map(|f| {
            let norm = normalise(&f.text);
            let rank = seen.entry((f.kind, norm.clone())).or_insert(0);
            *rank += 1;
            let mut h = Sha256::new();
            for part in [path, f.kind.as_str(), &norm, &rank.to_string()] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            Item {
                kind: f.kind,
                path: path.to_string(),
                line: f.line,
                text: f.text.clone(),
                heading: f.heading.clone(),
                fingerprint: hex::encode(&h.finalize()[..16]),
            }
        })
        .collect()
}

/// An item a previous scan stored: its id and what it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub id: i64,
    pub kind: ItemKind,
    pub path: String,
    pub line: u32,
    pub fingerprint: String,
}

/// What a rescan changed, against the items stored before.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Found again, maybe at another line: (known id, the item as found now).
    pub same: Vec<(i64, Item)>,
    /// Its text was edited in place: (known id, the item as found now).
    pub edited: Vec<(i64, Item)>,
    pub added: Vec<Item>,
    /// Known items no longer in the repository: done.
    pub gone: Vec<i64>,
}

/// Matches a scan's items to the known ones (see the module docs).
pub fn reconcile(known: &[Known], found: Vec<Item>) -> Changes {
    let mut by_print: HashMap<&str, &Known> =
        known.iter().map(|k| (k.fingerprint.as_str(), k)).collect();
    let mut out = Changes::default();
    let mut rest = Vec::new();
    for item in found {
        match by_print.remove(item.fingerprint.as_str()) {
            Some(k) => out.same.push((k.id, item)),
            None => rest.push(item),
        }
    }
    let mut left: Vec<&Known> = by_print.into_values().collect();
    left.sort_by_key(|k| k.id);
    for item in rest {
        let nearest = left
            .iter()
            .enumerate()
            .filter(|(_, k)| k.path == item.path && k.kind == item.kind)
            .min_by_key(|(_, k)| (k.line as i64 - item.line as i64).unsigned_abs());
        match nearest {
            // Within a few lines: the same note, edited. Further away it is a new one.
            Some((i, k)) if (k.line as i64 - item.line as i64).unsigned_abs() <= 3 => {
                out.edited.push((k.id, item));
                left.remove(i);
            }
            _ => out.added.push(item),
        }
    }
    out.gone = left.into_iter().map(|k| k.id).collect();
    out.gone.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(found: &[Found]) -> Vec<(ItemKind, u32, &str)> {
        found
            .iter()
            .map(|f| (f.kind, f.line, f.text.as_str()))
            .collect()
    }

    #[test]
    fn markers_are_read_in_comments_of_every_common_syntax() {
        let src = "fn main() {\n    // TODO: handle the error\n    let todo_list = 1; // not a TODOS\n    /* FIXME(ana): leaks */\n}\n# XXX python-style\n-- HACK sql\n * TODO inside a block\nlet s = \"TODO in a string\";\n#[derive(Debug)] // TODO\n";
        let found = markers(src);
        assert_eq!(
            texts(&found),
            vec![
                (ItemKind::Todo, 2, "handle the error"),
                (ItemKind::Fixme, 4, "leaks"),
                (ItemKind::Xxx, 6, "python-style"),
                (ItemKind::Hack, 7, "sql"),
                (ItemKind::Todo, 8, "inside a block"),
                (ItemKind::Todo, 10, ""),
            ]
        );
    }

    #[test]
    fn checkboxes_keep_their_heading_and_changelogs_count_only_unreleased() {
        let md = "# Roadmap\n## v2\n- [ ] sharding\n- [x] done thing\n* [ ] replicas\n```\n- [ ] in a fence\n```\n## v3\n1. [ ] plugins\n";
        let found = checkboxes(md, Markdown::Plan);
        assert_eq!(
            texts(&found),
            vec![
                (ItemKind::Checkbox, 3, "sharding"),
                (ItemKind::Checkbox, 5, "replicas"),
                (ItemKind::Checkbox, 10, "plugins")
            ]
        );
        assert_eq!(found[0].heading.as_deref(), Some("Roadmap › v2"));
        assert_eq!(found[2].heading.as_deref(), Some("Roadmap › v3"));
        let log = "# Changelog\n## Unreleased\n- [ ] note it\n## 1.0.0\n- [ ] old\n";
        assert_eq!(
            texts(&checkboxes(log, Markdown::Changelog)),
            vec![(ItemKind::Checkbox, 3, "note it")]
        );
    }

    #[test]
    fn planning_files_are_known_by_name() {
        assert_eq!(planning_markdown("ROADMAP.md"), Some(Markdown::Plan));
        assert_eq!(planning_markdown("docs/todo.md"), Some(Markdown::Plan));
        assert_eq!(planning_markdown("TODO"), Some(Markdown::Plan));
        assert_eq!(planning_markdown("CHANGELOG.md"), Some(Markdown::Changelog));
        assert_eq!(planning_markdown("README.md"), None);
        assert_eq!(planning_markdown("todo.rs"), None);
    }

    fn item(path: &str, line: u32, text: &str) -> Item {
        with_fingerprints(
            path,
            &[Found {
                kind: ItemKind::Todo,
                line,
                text: text.into(),
                heading: None,
            }],
        )
        .remove(0)
    }

    fn known(id: i64, i: &Item) -> Known {
        Known {
            id,
            kind: i.kind,
            path: i.path.clone(),
            line: i.line,
            fingerprint: i.fingerprint.clone(),
        }
    }

    #[test]
    fn a_rescan_keeps_moved_items_updates_edited_ones_and_marks_removed_ones_gone() {
        let a = item("src/a.rs", 10, "handle the error");
        let b = item("src/a.rs", 20, "cache this");
        let c = item("src/b.rs", 5, "remove me");
        let before = vec![known(1, &a), known(2, &b), known(3, &c)];
        // a moved 30 lines down, b's text was edited, c removed, d is new.
        let a2 = item("src/a.rs", 40, "Handle  the error");
        let b2 = item("src/a.rs", 21, "cache this, keyed by id");
        let d = item("src/a.rs", 90, "a new note");
        let ch = reconcile(&before, vec![a2.clone(), b2.clone(), d.clone()]);
        assert_eq!(ch.same, vec![(1, a2)]);
        assert_eq!(ch.edited, vec![(2, b2)]);
        assert_eq!(ch.added, vec![d]);
        assert_eq!(ch.gone, vec![3]);
    }

    #[test]
    fn identical_notes_in_one_file_get_their_own_fingerprints() {
        let items = with_fingerprints(
            "x.rs",
            &[
                Found {
                    kind: ItemKind::Todo,
                    line: 1,
                    text: "test".into(),
                    heading: None,
                },
                Found {
                    kind: ItemKind::Todo,
                    line: 9,
                    text: "test".into(),
                    heading: None,
                },
            ],
        );
        assert_ne!(items[0].fingerprint, items[1].fingerprint);
    }

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            ok.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }

    #[test]
    fn a_real_repository_is_scanned_once_and_rescanned_by_what_changed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        git(root, &["init", "-q"]);
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("vendor/dep")).unwrap();
        std::fs::write(
            root.join("src/main.rs"),
            "// TODO: parse flags\nfn main() {}\n",
        )
        .unwrap();
        std::fs::write(root.join("src/lib.rs"), "// FIXME leaks\n").unwrap();
        std::fs::write(root.join("ROADMAP.md"), "# Next\n- [ ] plugins\n").unwrap();
        std::fs::write(root.join("vendor/dep/x.rs"), "// TODO not ours\n").unwrap();
        std::fs::write(root.join("blob.bin"), b"\0\0// TODO in a binary").unwrap();
        std::fs::write(root.join("latin1.txt"), b"# TODO caf\xe9\n").unwrap();
        std::fs::write(
            root.join("big.txt"),
            vec![b'a'; MAX_FILE_BYTES as usize + 1],
        )
        .unwrap();
        std::fs::write(root.join(".gitignore"), "ignored.rs\n").unwrap();
        std::fs::write(root.join("ignored.rs"), "// TODO ignored\n").unwrap();
        git(root, &["add", "-A"]);
        git(root, &["commit", "-qm", "first"]);
        std::fs::write(root.join("untracked.rs"), "// TODO untracked\n").unwrap();

        let mut cache = Cache::default();
        let first = scan(root, &mut cache).unwrap();
        let mut got: Vec<_> = first
            .items
            .iter()
            .map(|i| (i.path.as_str(), i.line, i.text.as_str()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("ROADMAP.md", 2, "plugins"),
                ("src/lib.rs", 1, "leaks"),
                ("src/main.rs", 1, "parse flags")
            ]
        );
        let mut skipped: Vec<_> = first
            .skipped
            .iter()
            .map(|s| (s.path.as_str(), s.reason.as_str()))
            .collect();
        skipped.sort();
        assert_eq!(skipped[0], ("big.txt", "larger than 1024 KiB (1024 KiB)"));
        assert_eq!(skipped[1], ("blob.bin", "binary"));
        assert_eq!(skipped[2], ("latin1.txt", "not UTF-8 text"));
        assert_eq!(first.files, 7, "vendor/ is left out");
        assert_eq!(first.files_read, 7);

        // Nothing changed: nothing is read again.
        let again = scan(root, &mut cache).unwrap();
        assert_eq!(again.files_read, 0);
        assert_eq!(again.items, first.items);

        // One file edited (not committed yet): only it is read, and reconcile sees one edit.
        std::fs::write(
            root.join("src/main.rs"),
            "// TODO: parse flags and env\nfn main() {}\n",
        )
        .unwrap();
        let third = scan(root, &mut cache).unwrap();
        assert_eq!(third.files_read, 1);
        let known: Vec<Known> = first
            .items
            .iter()
            .enumerate()
            .map(|(n, i)| Known {
                id: n as i64 + 1,
                kind: i.kind,
                path: i.path.clone(),
                line: i.line,
                fingerprint: i.fingerprint.clone(),
            })
            .collect();
        let ch = reconcile(&known, third.items);
        assert_eq!(
            (
                ch.same.len(),
                ch.edited.len(),
                ch.added.len(),
                ch.gone.len()
            ),
            (2, 1, 0, 0)
        );
        assert_eq!(ch.edited[0].1.text, "parse flags and env");

        // Not a repository: a clear error.
        let plain = tempfile::tempdir().unwrap();
        assert!(matches!(
            scan(plain.path(), &mut Cache::default()),
            Err(ScanError::NotARepository(..))
        ));
    }
}
