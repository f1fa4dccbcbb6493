//! The folder rules of ARCHITECTURE.md, checked: a domain's types (`mod.rs`), SQL
//! (`store.rs` or `store/`) and operations (`actions.rs` or `actions/`) never import axum or
//! askama; its HTTP files (`*api.rs`, `*pages.rs`) hold no SQL. The activity log is a leaf with
//! no HTTP face at all (its API and page are overview's).

use std::path::{Path, PathBuf};

const DOMAINS: &[&str] = &[
    "auth",
    "tracking",
    "tasks",
    "vault",
    "errors",
    "nodes",
    "llm",
    "agents",
    "overview",
    "assign",
    "events",
    "planning",
    "autopilot",
    "files",
    "sources",
    "docs",
];

fn rust_files(p: &Path) -> Vec<PathBuf> {
    if p.is_file() {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(p) {
        for e in entries.flatten() {
            out.extend(rust_files(&e.path()));
        }
    }
    out.retain(|f| f.extension().is_some_and(|x| x == "rs"));
    out
}

fn uses_no_http(files: &[PathBuf]) {
    for f in files.iter().filter(|f| f.exists()) {
        let text = std::fs::read_to_string(f).unwrap();
        for banned in ["axum", "askama"] {
            assert!(
                !text.contains(&format!("use {banned}")) && !text.contains(&format!("{banned}::")),
                "{} uses {banned}",
                f.display()
            );
        }
    }
}

#[test]
fn domain_files_keep_their_roles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    uses_no_http(&rust_files(&src.join("activity")));
    for d in DOMAINS {
        let dir = src.join(d);
        let mut core = vec![dir.join("mod.rs")];
        for part in ["store", "actions"] {
            core.extend(rust_files(&dir.join(format!("{part}.rs"))));
            core.extend(rust_files(&dir.join(part)));
        }
        uses_no_http(&core);
        let http: Vec<PathBuf> = rust_files(&dir)
            .into_iter()
            .filter(|f| {
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with("api.rs") || name.ends_with("pages.rs")
            })
            .collect();
        assert!(!http.is_empty(), "src/{d} has no api.rs/pages.rs");
        for f in http {
            let text = std::fs::read_to_string(&f).unwrap();
            for sql in [
                "sqlx::query",
                "SELECT ",
                "INSERT INTO",
                "UPDATE ",
                "DELETE FROM",
            ] {
                assert!(!text.contains(sql), "{} contains SQL ({sql})", f.display());
            }
        }
    }
}

/// Every `crate::<module>` a top-level module of src/ names outside its tests: module -> the
/// modules it uses.
fn dependencies() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut tops = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let name = name.trim_end_matches(".rs").to_string();
        if name != "lib" && name != "main" {
            tops.insert(name);
        }
    }
    let used = regex::Regex::new(r"crate::(\w+)").unwrap();
    let mut g: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for f in rust_files(&src) {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        let top = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for m in used.captures_iter(code) {
            let to = m[1].to_string();
            if to != top && tops.contains(&to) {
                g.entry(top.clone()).or_default().insert(to);
            }
        }
    }
    g
}

/// The dependency rules of ARCHITECTURE.md, as a ratchet: `http/` knows no domain, the leaf
/// helpers know none either, and no two domains use each other. The arrows that break a rule
/// today are listed (issue 14 removes them); a new one fails here, and a removed one must be
/// struck from the list, so the list only shrinks.
#[test]
fn modules_depend_only_as_the_architecture_says() {
    const DOMAINS: &[&str] = &[
        "auth",
        "tracking",
        "vault",
        "tasks",
        "errors",
        "nodes",
        "llm",
        "agents",
        "overview",
        "assign",
        "events",
        "planning",
        "autopilot",
        "files",
        "sources",
        "docs",
        "suites",
    ];
    const LEAVES: &[&str] = &[
        "db",
        "clock",
        "validate",
        "text_enum",
        "backoff",
        "tmux",
        "testing",
        "git",
        "activity",
    ];
    const KNOWN: &[(&str, &str)] = &[("errors", "tracking")];
    let g = dependencies();
    let uses = |a: &str, b: &str| g.get(a).is_some_and(|s| s.contains(b));
    let mut broken = std::collections::BTreeSet::new();
    for to in g.get("http").into_iter().flatten() {
        broken.insert(("http".to_string(), to.clone()));
    }
    for leaf in LEAVES {
        for to in g.get(*leaf).into_iter().flatten() {
            if DOMAINS.contains(&to.as_str()) {
                broken.insert((leaf.to_string(), to.clone()));
            }
        }
    }
    for (i, a) in DOMAINS.iter().enumerate() {
        for b in &DOMAINS[i + 1..] {
            if uses(a, b) && uses(b, a) {
                let (x, y) = if a < b { (a, b) } else { (b, a) };
                broken.insert((x.to_string(), y.to_string()));
            }
        }
    }
    let known: std::collections::BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = broken.difference(&known).collect();
    let gone: Vec<_> = known.difference(&broken).collect();
    assert!(
        new.is_empty(),
        "new dependencies against ARCHITECTURE.md (http/ uses no domain; leaves use none; no two domains use each other): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "these listed arrows are gone: strike them from KNOWN: {gone:?}"
    );
}

/// Issue 14's rule, as a ratchet: no file under src/ has more than [`MAX_LINES`] lines before
/// its first top-level `#[cfg(test)]` (its unit tests don't count), except the data tables
/// listed in `DATA_TABLES` with the reason. The list only shrinks: a listed file back under the
/// limit (or gone) fails here until it is struck.
#[test]
fn no_source_file_is_over_the_size_limit() {
    const MAX_LINES: usize = 600;
    /// (path under src/, why it may be longer): data tables only. None today.
    const DATA_TABLES: &[(&str, &str)] = &[];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut over = std::collections::BTreeMap::new();
    for f in rust_files(&src) {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines = text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .count();
        if lines > MAX_LINES {
            let rel = f.strip_prefix(&src).unwrap().to_string_lossy().to_string();
            over.insert(rel, lines);
        }
    }
    let listed: std::collections::BTreeSet<&str> = DATA_TABLES.iter().map(|(p, _)| *p).collect();
    let new: Vec<_> = over
        .iter()
        .filter(|(p, _)| !listed.contains(p.as_str()))
        .collect();
    let gone: Vec<_> = listed.iter().filter(|p| !over.contains_key(**p)).collect();
    assert!(
        new.is_empty(),
        "src files over {MAX_LINES} lines before their tests (split them; only a data table may be listed in DATA_TABLES): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "these listed files are no longer over {MAX_LINES} lines: strike them from DATA_TABLES: {gone:?}"
    );
}
