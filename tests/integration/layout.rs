//! The folder rules of ARCHITECTURE.md, checked: a domain's `mod.rs`, `store.rs` and
//! `actions.rs` never import axum or askama; its `api.rs` and `pages.rs` hold no SQL.

use std::path::Path;

const DOMAINS: &[&str] = &["auth", "tracking", "activity"];

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn domain_files_keep_their_roles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for d in DOMAINS {
        for f in ["mod.rs", "store.rs", "actions.rs"] {
            let text = read(&src.join(d).join(f));
            for banned in ["axum", "askama"] {
                assert!(!text.contains(&format!("use {banned}")) && !text.contains(&format!("{banned}::")), "src/{d}/{f} uses {banned}");
            }
        }
        for f in ["api.rs", "pages.rs"] {
            let text = read(&src.join(d).join(f));
            for sql in ["sqlx::query", "SELECT ", "INSERT ", "UPDATE ", "DELETE FROM"] {
                assert!(!text.contains(sql), "src/{d}/{f} contains SQL ({sql})");
            }
        }
    }
}
