//! Documentation: the Markdown documents of every project (`README*`, `ARCHITECTURE*`,
//! `CHANGELOG*` at its root, everything under `docs/`) and architect's own (embedded at build
//! time), listed by `GET /api/documentation` and rendered by the Documentation page.
//!
//! Rendering is safe by construction: pulldown-cmark turns the Markdown into HTML, ammonia
//! then keeps only its allow-list of tags and attributes (no script, no event handlers, no
//! `javascript:` links); heading ids are ours (a slug per heading, prefixed by ammonia's
//! `id_prefix`, so a document cannot clobber the page's own ids) and feed the table of
//! contents. A project's document is read through `files::confine` like any file.

pub mod actions;
pub mod api;
pub mod pages;

use crate::files::{confine, FilesError};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Prefix of every id a rendered document carries.
pub const ID_PREFIX: &str = "doc-";
/// Documents listed per project at most, and folder levels searched under `docs/`.
const MAX_PER_PROJECT: usize = 500;
const MAX_DOCS_DEPTH: usize = 6;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    /// `architect` (embedded) or `project`.
    pub source: String,
    pub project_id: Option<i64>,
    pub project_name: Option<String>,
    /// Relative to the project's folder (or to architect's repository).
    pub path: String,
    pub size: u64,
    /// Where the dashboard shows it.
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocumentList {
    pub documents: Vec<Document>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Heading {
    pub level: u8,
    /// The element id in the rendered HTML (with [`ID_PREFIX`]).
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub title: Option<String>,
    /// Sanitised HTML.
    pub html: String,
    pub toc: Vec<Heading>,
}

/// Architect's own documents, embedded when the binary is built.
const OWN: &[(&str, &str)] = &[
    ("README.md", include_str!("../../README.md")),
    ("ARCHITECTURE.md", include_str!("../../ARCHITECTURE.md")),
    ("bench/README.md", include_str!("../../bench/README.md")),
];

#[derive(rust_embed::RustEmbed)]
#[folder = "docs/"]
struct OwnDocs;

/// Architect's documents: path → text.
pub fn own_documents() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = OWN
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    let mut docs: Vec<(String, String)> = OwnDocs::iter()
        .filter(|p| p.ends_with(".md"))
        .filter_map(|p| {
            let f = OwnDocs::get(&p)?;
            Some((
                format!("docs/{p}"),
                String::from_utf8_lossy(&f.data).into_owned(),
            ))
        })
        .collect();
    docs.sort();
    out.extend(docs);
    out
}

pub fn own_document(path: &str) -> Option<String> {
    own_documents()
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, t)| t)
}

fn markdown(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".md") || n.ends_with(".markdown")
}

/// Whether a relative path is one of a project's documents.
pub fn is_doc(path: &Path) -> bool {
    let Some(name) = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
    else {
        return false;
    };
    if !markdown(&name) {
        return false;
    }
    let mut parts = path.components();
    let first = parts
        .next()
        .map(|c| c.as_os_str().to_string_lossy().to_string());
    match (first.as_deref(), path.components().count()) {
        (_, 1) => ["readme", "architecture", "changelog"]
            .iter()
            .any(|p| name.starts_with(p)),
        (Some("docs"), _) => true,
        _ => false,
    }
}

/// A project's documents under `root` (canonical): relative path and size. Blocking.
pub fn project_documents(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if out.len() >= MAX_PER_PROJECT {
                break;
            }
            // `file_type` does not follow links: a linked file or folder is never listed.
            let Ok(ft) = e.file_type() else { continue };
            let full = e.path();
            let rel = full.strip_prefix(root).unwrap_or(&full).to_path_buf();
            let name = e.file_name().to_string_lossy().to_string();
            if ft.is_dir() {
                let enter = (depth == 0 && name == "docs")
                    || (depth > 0 && depth < MAX_DOCS_DEPTH && !crate::sources::skipped_dir(&name));
                if enter {
                    stack.push((full, depth + 1));
                }
            } else if ft.is_file() && is_doc(&rel) {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((rel.to_string_lossy().to_string(), size));
            }
        }
    }
    out.sort();
    out
}

/// Reads a project's document (confined, a document by [`is_doc`], text, size-capped).
/// Blocking.
pub fn read_project_document(root: &Path, path: &str) -> Result<String, FilesError> {
    let rel = confine::relative(path)?;
    if !is_doc(&rel) {
        return Err(crate::validate::invalid(
            "path",
            "not a document: README*, ARCHITECTURE*, CHANGELOG* (.md) or docs/**/*.md",
        )
        .into());
    }
    let full = confine::existing(root, path)?;
    let meta = std::fs::metadata(&full)?;
    if !meta.is_file() || meta.len() > crate::files::MAX_FILE_BYTES {
        return Err(crate::validate::invalid("path", "not a file of at most 1 MiB").into());
    }
    crate::files::as_text(std::fs::read(&full)?)
}

fn slug(text: &str) -> String {
    let mut s = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() {
        "section".into()
    } else {
        s
    }
}

/// Where a link of the document at `doc` (relative to its repository) leads on this site: an
/// anchor to the prefixed id, another document of the same source to its page (`view(path)`),
/// anything else unchanged.
pub fn link_target(doc: &str, dest: &str, view: &dyn Fn(&str) -> String) -> Option<String> {
    if let Some(anchor) = dest.strip_prefix('#') {
        return Some(format!("#{ID_PREFIX}{anchor}"));
    }
    if dest.contains(':') || dest.starts_with('/') || dest.is_empty() {
        return None;
    }
    let (target, anchor) = match dest.split_once('#') {
        Some((t, a)) => (t, Some(a)),
        None => (dest, None),
    };
    let mut parts: Vec<&str> = doc.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    let path = parts.join("/");
    if !is_doc(Path::new(&path)) {
        return None;
    }
    let mut url = view(&path);
    if let Some(a) = anchor {
        url.push_str(&format!("#{ID_PREFIX}{a}"));
    }
    Some(url)
}

/// Markdown → sanitised HTML with a table of contents; `link` may rewrite link targets (see
/// [`link_target`]).
pub fn render(md: &str, link: &dyn Fn(&str) -> Option<String>) -> Rendered {
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut out: Vec<Event> = Vec::new();
    let mut toc = Vec::new();
    let mut used = std::collections::HashMap::<String, usize>::new();
    let mut open: Option<(usize, String)> = None;
    for ev in Parser::new_ext(md, opts) {
        match ev {
            Event::Start(Tag::Heading { level, .. }) => {
                open = Some((out.len(), String::new()));
                out.push(Event::Start(Tag::Heading {
                    level,
                    id: None,
                    classes: Vec::new(),
                    attrs: Vec::new(),
                }));
            }
            Event::End(TagEnd::Heading(level)) => {
                if let Some((at, text)) = open.take() {
                    let base = slug(&text);
                    let n = used.entry(base.clone()).or_insert(0);
                    *n += 1;
                    let id = if *n == 1 { base } else { format!("{base}-{n}") };
                    out[at] = Event::Start(Tag::Heading {
                        level,
                        id: Some(id.clone().into()),
                        classes: Vec::new(),
                        attrs: Vec::new(),
                    });
                    toc.push(Heading {
                        level: level as u8,
                        id: format!("{ID_PREFIX}{id}"),
                        text: text.trim().to_string(),
                    });
                }
                out.push(Event::End(TagEnd::Heading(level)));
            }
            Event::Text(t) => {
                if let Some((_, text)) = open.as_mut() {
                    text.push_str(&t);
                }
                out.push(Event::Text(t));
            }
            Event::Code(t) => {
                if let Some((_, text)) = open.as_mut() {
                    text.push_str(&t);
                }
                out.push(Event::Code(t));
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let dest_url = link(&dest_url).map(Into::into).unwrap_or(dest_url);
                out.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }));
            }
            other => out.push(other),
        }
    }
    let mut raw = String::new();
    pulldown_cmark::html::push_html(&mut raw, out.into_iter());
    let html = ammonia::Builder::default()
        .add_tag_attributes("h1", &["id"])
        .add_tag_attributes("h2", &["id"])
        .add_tag_attributes("h3", &["id"])
        .add_tag_attributes("h4", &["id"])
        .add_tag_attributes("h5", &["id"])
        .add_tag_attributes("h6", &["id"])
        .id_prefix(Some(ID_PREFIX))
        .clean(&raw)
        .to_string();
    Rendered {
        title: toc.iter().find(|h| h.level == 1).map(|h| h.text.clone()),
        html,
        toc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_strips_scripts_and_numbers_headings() {
        let r = render(
            "# Intro\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2)) <img src=x onerror=alert(3)>\n\n## Intro\n",
            &|_| None,
        );
        assert!(!r.html.contains("<script"), "{}", r.html);
        assert!(!r.html.contains("javascript:"), "{}", r.html);
        assert!(!r.html.contains("onerror"), "{}", r.html);
        assert_eq!(
            r.toc.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            ["doc-intro", "doc-intro-2"]
        );
        assert!(r.html.contains("id=\"doc-intro-2\""), "{}", r.html);
        assert_eq!(r.title.as_deref(), Some("Intro"));
    }

    #[test]
    fn links_to_other_documents_lead_to_their_pages() {
        let view = |p: &str| format!("/v?path={p}");
        let t = |dest| link_target("docs/guide/intro.md", dest, &view);
        assert_eq!(t("#setup").as_deref(), Some("#doc-setup"));
        assert_eq!(
            t("more.md#a").as_deref(),
            Some("/v?path=docs/guide/more.md#doc-a")
        );
        assert_eq!(t("../../README.md").as_deref(), Some("/v?path=README.md"));
        assert_eq!(t("../../../../etc/x.md"), None);
        assert_eq!(t("../../src/main.rs"), None);
        assert_eq!(t("https://example.com/a.md"), None);
    }

    #[test]
    fn documents_are_named_by_the_rules() {
        for yes in [
            "README.md",
            "CHANGELOG.md",
            "ARCHITECTURE.markdown",
            "docs/a/b.md",
        ] {
            assert!(is_doc(Path::new(yes)), "{yes}");
        }
        for no in ["src/README.md", "notes.md", "docs/x.txt", "README"] {
            assert!(!is_doc(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn architects_own_documents_are_embedded() {
        let own = own_documents();
        assert!(own.iter().any(|(p, _)| p == "ARCHITECTURE.md"));
        assert!(own.iter().any(|(p, _)| p.starts_with("docs/decisions/")));
    }
}
