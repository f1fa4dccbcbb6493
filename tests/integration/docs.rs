//! Documentation (issue 18, item 3) over HTTP on the run's backend: every project's Markdown
//! documents and architect's own are listed; a page renders one safely (no script, no event
//! handler, no `javascript:` link survives) with a table of contents; paths are confined like
//! files. And the pages of items 1-3 in headless Chromium, with screenshots
//! (`target/screenshots/files-*.png`).

use crate::browser::{browser_available, log_in, Browser, Driver};
use crate::support::{Session, TestServer};
use serde_json::json;
use std::path::{Path, PathBuf};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const README: &str = "# Widget\n\nIntro, see [the guide](docs/guide.md#start).\n\n## Part one\n\nText <script>alert('x')</script>\n\n\
[click](javascript:alert(1)) <img src=x onerror=\"alert(2)\"> <a href=\"https://example.com\" onclick=\"alert(3)\">ok</a>\n\n\
## Part one\n\n### Deep `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";

/// A project folder with documents and things that are not, next to a sibling folder.
fn tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap().join("gitrepos");
    write(&root.join("README.md"), README);
    write(&root.join("CHANGELOG.md"), "# Changes\n");
    write(&root.join("ARCHITECTURE.md"), "# Architecture\n");
    write(&root.join("docs/guide.md"), "# Guide\n");
    write(&root.join("docs/deep/er.md"), "# Deeper\n");
    write(&root.join("docs/notes.txt"), "not markdown");
    write(&root.join("src/README.md"), "# not a project document");
    write(&root.join("notes.md"), "# not a project document");
    write(&root.join("src/main.rs"), "fn main() {}\n");
    let sibling = root.with_file_name("gitrepos_sibling");
    write(&sibling.join("docs/secret.md"), "# sibling secret");
    std::os::unix::fs::symlink(sibling.join("docs/secret.md"), root.join("docs/linked.md"))
        .unwrap();
    (tmp, root)
}

async fn project(s: &Session, name: &str, root: &Path) -> i64 {
    let r = s
        .post_json(
            "/api/projects",
            &json!({"name": name, "source_path": root.display().to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().unwrap()
}

fn html(s: &Session, path: &str) -> reqwest::RequestBuilder {
    s.request(reqwest::Method::GET, path)
        .header("accept", "text/html")
}

#[tokio::test]
async fn docs_lists_every_projects_documents_and_architects_own() {
    let (_tmp, root) = tree();
    let top = root.display().to_string();
    let server = TestServer::start_with(move |c| c.sources.roots = vec![top]).await;
    let admin = server.admin().await;
    let viewer = server.user("docs-viewer", "viewer").await;
    let pid = project(&admin, "widget", &root).await;
    let r = admin
        .post_json(
            "/api/projects",
            &json!({"name": "no-folder", "source_path": "/nonexistent/x"}),
        )
        .await;
    assert_eq!(r.status, 201);

    let r = viewer.get("/api/documentation").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let docs = r.json["documents"].as_array().unwrap();
    let own: Vec<&str> = docs
        .iter()
        .filter(|d| d["source"] == "architect")
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    for want in [
        "README.md",
        "ARCHITECTURE.md",
        "bench/README.md",
        "docs/decisions/0001-portable-storage.md",
        "docs/postgres-portability.md",
    ] {
        assert!(own.contains(&want), "{want} missing from {own:?}");
    }
    let mine: Vec<&str> = docs
        .iter()
        .filter(|d| d["project_id"] == pid)
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        mine,
        [
            "ARCHITECTURE.md",
            "CHANGELOG.md",
            "README.md",
            "docs/deep/er.md",
            "docs/guide.md"
        ],
        "{}",
        r.body
    );
    assert!(!r.body.contains("secret"), "{}", r.body);
    let readme = docs
        .iter()
        .find(|d| d["project_id"] == pid && d["path"] == "README.md")
        .unwrap();
    assert_eq!(
        readme["url"],
        format!("/documentation/view?project_id={pid}&path=README.md")
    );
    assert_eq!(readme["project_name"], "widget");

    let r = viewer
        .get(&format!("/api/documentation?project_id={pid}"))
        .await;
    assert_eq!(
        r.json["documents"].as_array().unwrap().len(),
        5,
        "{}",
        r.body
    );
    assert_eq!(
        viewer
            .get("/api/documentation?project_id=999999")
            .await
            .status,
        404
    );
    assert_eq!(
        viewer.get("/api/documentation?project_id=abc").await.status,
        422
    );
    assert_eq!(server.anon().get("/api/documentation").await.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn docs_pages_render_markdown_safely_with_a_table_of_contents() {
    let (_tmp, root) = tree();
    let top = root.display().to_string();
    let server = TestServer::start_with(move |c| c.sources.roots = vec![top]).await;
    let admin = server.admin().await;
    let pid = project(&admin, "widget", &root).await;

    let r = admin
        .send(html(
            &admin,
            &format!("/documentation/view?project_id={pid}&path=README.md"),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.body;
    assert!(body.contains("<title>Widget · architect</title>"), "{body}");
    for id in [
        "doc-widget",
        "doc-part-one",
        "doc-part-one-2",
        "doc-deep-code",
    ] {
        assert!(
            body.contains(&format!("id=\"{id}\"")),
            "{id} missing: {body}"
        );
        assert!(
            body.contains(&format!("href=\"#{id}\"")),
            "toc link to {id} missing: {body}"
        );
    }
    assert!(body.contains("<table>"), "{body}");
    // A link to another document leads to its page, at the prefixed id.
    assert!(
        body.contains(&format!(
            "href=\"/documentation/view?project_id={pid}&amp;path=docs%2Fguide.md#doc-start\""
        )),
        "{body}"
    );
    for bad in [
        "<script>alert",
        "javascript:",
        "onerror",
        "onclick",
        "alert(2)",
    ] {
        assert!(!body.contains(bad), "{bad} survived: {body}");
    }
    assert!(body.contains("href=\"https://example.com\""), "{body}");

    let r = admin
        .send(html(
            &admin,
            "/documentation/view?path=docs/decisions/0001-portable-storage.md",
        ))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Portable storage"), "{}", r.body);
    let r = admin.send(html(&admin, "/documentation")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("docs/guide.md") && r.body.contains("ARCHITECTURE.md"));

    for (q, status) in [
        (
            format!("project_id={pid}&path=../gitrepos_sibling/docs/secret.md"),
            422,
        ),
        (format!("project_id={pid}&path=docs/linked.md"), 422),
        (
            format!("project_id={pid}&path={}", root.join("README.md").display()),
            422,
        ),
        (format!("project_id={pid}&path=src/main.rs"), 422),
        (format!("project_id={pid}&path=notes.md"), 422),
        (format!("project_id={pid}&path=docs/none.md"), 404),
        ("path=docs/none.md".to_string(), 404),
        ("project_id=999999&path=README.md".to_string(), 404),
        ("project_id=x&path=README.md".to_string(), 422),
    ] {
        let r = admin.get(&format!("/documentation/view?{q}")).await;
        assert_eq!(r.status, status, "{q}: {}", r.body);
        assert!(!r.body.contains("sibling secret"), "{q}");
    }
    server.stop().await;
}

/// The file viewer and editor, the import page and a rendered document in Chromium; the file
/// is edited through the page and saved.
#[tokio::test(flavor = "multi_thread")]
async fn docs_files_and_sources_pages_in_the_browser() {
    if !browser_available() {
        return;
    }
    let (_tmp, root) = tree();
    let sources = root.with_file_name("sources");
    write(&sources.join("shop/.git/HEAD"), "ref: refs/heads/main\n");
    write(&sources.join("shop/Cargo.toml"), "[package]\n");
    write(&sources.join("shop/src/main.rs"), "fn main() {}\n");
    let roots = vec![sources.display().to_string(), root.display().to_string()];
    let server = TestServer::start_with(move |c| c.sources.roots = roots).await;
    let admin = server.admin().await;
    let pid = project(&admin, "widget", &root).await;
    let tmp = tempfile::tempdir().unwrap();
    let driver = Driver::start(tmp.path()).await;
    let b = Browser::open(&driver, &tmp.path().join("profile")).await;
    log_in(&b, &server).await;
    b.resize(1300, 1000).await;

    b.goto(&format!("{}/projects/{pid}", server.url)).await;
    b.click("#project-files").await;
    b.wait_text("#file-list", "README.md").await;
    b.screenshot("files-folder").await;
    b.goto(&format!(
        "{}/projects/{pid}/files?path=src/main.rs",
        server.url
    ))
    .await;
    b.wait_text("h2.mono", "src/main.rs").await;
    b.script("document.querySelector('#file-editor textarea').value = 'fn main() { println!(\"hi\"); }\\n'; return 1")
        .await;
    b.screenshot("files-editor").await;
    b.click("#save-file").await;
    b.wait_text(".flash", "Saved.").await;
    assert_eq!(
        std::fs::read_to_string(root.join("src/main.rs")).unwrap(),
        "fn main() { println!(\"hi\"); }\n"
    );

    b.goto(&format!("{}/projects", server.url)).await;
    b.click("#scan-sources-link").await;
    b.wait_text("#repositories", "shop").await;
    b.screenshot("files-sources").await;
    b.click("#repositories form.import button").await;
    b.wait_url(&format!("{}/projects/", server.url)).await;
    let r = admin.get("/api/projects?q=shop").await;
    assert_eq!(
        r.json[0]["source_path"],
        sources.join("shop").display().to_string(),
        "{}",
        r.body
    );

    b.goto(&format!(
        "{}/documentation/view?project_id={pid}&path=README.md",
        server.url
    ))
    .await;
    b.wait_text("#toc", "Part one").await;
    b.screenshot("files-document").await;
    b.goto(&format!("{}/documentation", server.url)).await;
    b.wait_text("main", "docs/guide.md").await;
    b.screenshot("files-documentation").await;
    b.quit().await;

    // At phone width no page of these scrolls sideways.
    let phone = Browser::open_with(&driver, &tmp.path().join("phone"), Some((390, 844))).await;
    log_in(&phone, &server).await;
    let mut wide = Vec::new();
    for path in [
        format!("/projects/{pid}/files"),
        format!("/projects/{pid}/files?path=README.md"),
        "/sources?scan=1".to_string(),
        "/documentation".to_string(),
        format!("/documentation/view?project_id={pid}&path=README.md"),
    ] {
        phone.goto(&format!("{}{path}", server.url)).await;
        phone.element("main#content").await;
        let v = phone
            .eval("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        if v[0].as_i64() > v[1].as_i64() {
            wide.push(format!("{path}: {v}"));
        }
    }
    phone.screenshot("files-phone-document").await;
    assert!(wide.is_empty(), "pages wider than the phone: {wide:?}");
    phone.quit().await;
    drop(driver);
    server.stop().await;
}
