//! The folder rules of ARCHITECTURE.md, checked: a domain's types (`mod.rs`), SQL
//! (`store.rs` or `store/`) and operations (`actions.rs` or `actions/`) never import axum or
//! askama; its HTTP files (`api.rs`, `*pages.rs`) hold no SQL.

use std::path::{Path, PathBuf};

const DOMAINS: &[&str] = &[
    "auth", "tracking", "activity", "tasks", "vault", "errors", "nodes", "llm", "agents",
    "overview", "events",
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

#[test]
fn domain_files_keep_their_roles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for d in DOMAINS {
        let dir = src.join(d);
        let mut core = vec![dir.join("mod.rs")];
        for part in ["store", "actions"] {
            core.extend(rust_files(&dir.join(format!("{part}.rs"))));
            core.extend(rust_files(&dir.join(part)));
        }
        for f in core.iter().filter(|f| f.exists()) {
            let text = std::fs::read_to_string(f).unwrap();
            for banned in ["axum", "askama"] {
                assert!(
                    !text.contains(&format!("use {banned}"))
                        && !text.contains(&format!("{banned}::")),
                    "{} uses {banned}",
                    f.display()
                );
            }
        }
        let http: Vec<PathBuf> = rust_files(&dir)
            .into_iter()
            .filter(|f| {
                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name == "api.rs" || name.ends_with("pages.rs")
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
