//! Files (issue 18, item 1) over HTTP on the run's backend: reads and writes confined to a
//! project's folder (`..`, absolute paths, links out, `.git`, and a sibling folder sharing the
//! root's prefix all refused), binary and oversized files refused, writes atomic, logged with
//! the previous content's hash and refused with 409 on a stale hash (also when two writers
//! race), viewers read and members write, and the files a feature touches.

use crate::support::git;
use crate::support::{Session, TestServer};
use serde_json::{json, Value};
use sha2::Digest;
use std::path::{Path, PathBuf};

fn sha(s: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(s))
}

/// `<tmp>/gitrepos` (the project's root) and `<tmp>/gitrepos_sibling` (outside it, sharing
/// its name as a prefix), with links from the root to the sibling.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("gitrepos");
    let sibling = tmp.path().join("gitrepos_sibling");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(root.join("README.md"), "# App\n").unwrap();
    std::fs::write(root.join(".git/config"), "[core]\n").unwrap();
    std::fs::write(root.join("logo.png"), b"\x89PNG\r\n\x1a\n\0\0\0IHDR").unwrap();
    std::fs::write(root.join("big.txt"), "x".repeat(1024 * 1024 + 1)).unwrap();
    std::fs::write(sibling.join("secret.txt"), "sibling secret").unwrap();
    std::os::unix::fs::symlink(sibling.join("secret.txt"), root.join("link_out")).unwrap();
    std::os::unix::fs::symlink(&sibling, root.join("dir_out")).unwrap();
    std::os::unix::fs::symlink(root.join("src/main.rs"), root.join("link_in")).unwrap();
    Tree { _tmp: tmp, root }
}

async fn project(s: &Session, name: &str, source: Option<&Path>) -> i64 {
    let mut body = json!({"name": name});
    if let Some(p) = source {
        body["source_path"] = json!(p.display().to_string());
    }
    let r = s.post_json("/api/projects", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json["id"].as_i64().unwrap()
}

async fn activity(s: &Session, project: i64, action: &str) -> Vec<Value> {
    let r = s
        .get(&format!(
            "/api/activity?entity=project&entity_id={project}&limit=200"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn files_reads_stay_inside_the_project_and_are_audited() {
    let t = tree();
    let root = t.root.display().to_string();
    let server = TestServer::start_with(move |c| {
        // The data dir's parent is a source root too: a project there must still be refused.
        let data_parent = c.data_dir.parent().unwrap().display().to_string();
        c.sources.roots = vec![root, data_parent];
    })
    .await;
    let admin = server.admin().await;
    let viewer = server.user("files-viewer", "viewer").await;
    let id = project(&admin, "files-read", Some(&t.root)).await;

    let r = viewer
        .post_json(
            "/api/files/read",
            &json!({"project_id": id, "path": "src/main.rs"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["content"], "fn main() {}\n");
    assert_eq!(r.json["sha256"], sha(b"fn main() {}\n"));
    assert_eq!(r.json["path"], "src/main.rs");
    // The original's field name, and a link that stays inside the root.
    let r = viewer
        .post_json(
            "/api/files/read",
            &json!({"project_id": id, "file_path": "./link_in"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["path"], "src/main.rs");

    let sibling_abs = t.root.with_file_name("gitrepos_sibling").join("secret.txt");
    let inside_abs = t.root.join("README.md");
    for (path, why) in [
        ("../gitrepos_sibling/secret.txt", "a '..' escape"),
        (
            "src/../../gitrepos_sibling/secret.txt",
            "a nested '..' escape",
        ),
        (sibling_abs.to_str().unwrap(), "an absolute path outside"),
        (
            inside_abs.to_str().unwrap(),
            "an absolute path, even inside",
        ),
        ("link_out", "a link to the sibling folder's file"),
        (
            "dir_out/secret.txt",
            "a path through a link to the sibling folder",
        ),
        (".git/config", "the repository's own files"),
        ("logo.png", "a binary file"),
        ("big.txt", "a file over the size cap"),
        ("src", "a folder"),
        ("", "an empty path"),
    ] {
        let r = viewer
            .post_json("/api/files/read", &json!({"project_id": id, "path": path}))
            .await;
        assert_eq!(r.status, 422, "{why}: {}", r.body);
        assert_eq!(r.json["field"], "path", "{why}: {}", r.body);
        assert!(!r.body.contains("sibling secret"), "{why}: {}", r.body);
    }
    let r = viewer
        .post_json(
            "/api/files/read",
            &json!({"project_id": id, "path": "nope.rs"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (404, Some("not_found")),
        "{}",
        r.body
    );
    let r = viewer
        .post_json(
            "/api/files/read",
            &json!({"project_id": 999_999, "path": "a"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (404, Some("project_id")),
        "{}",
        r.body
    );
    // Folders outside the source roots, or holding the server's own data, are not served.
    let outside = project(
        &admin,
        "files-outside",
        Some(&t.root.with_file_name("gitrepos_sibling")),
    )
    .await;
    let data_parent = project(
        &admin,
        "files-data",
        Some(server.data_dir.parent().unwrap()),
    )
    .await;
    for (pid, why) in [
        (outside, "outside the roots"),
        (data_parent, "holds the data dir"),
    ] {
        let r = viewer
            .post_json(
                "/api/files/read",
                &json!({"project_id": pid, "path": "secret.txt"}),
            )
            .await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (422, Some("project_id")),
            "{why}: {}",
            r.body
        );
        let r = admin
            .post_json(
                "/api/files/write",
                &json!({"project_id": pid, "path": "x.txt", "content": "x"}),
            )
            .await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (422, Some("project_id")),
            "{why}: {}",
            r.body
        );
    }
    let bare = project(&admin, "files-no-source", None).await;
    let r = viewer
        .post_json("/api/files/read", &json!({"project_id": bare, "path": "a"}))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("project_id")),
        "{}",
        r.body
    );
    let r = viewer
        .post_json(
            "/api/files/read",
            &json!({"project_id": id, "path": "a", "mode": "x"}),
        )
        .await;
    assert!((400..500).contains(&r.status), "{}", r.body);
    let r = viewer
        .post_json("/api/files/read", &json!({"path": "a"}))
        .await;
    assert!((400..500).contains(&r.status), "{}", r.body);

    // Each served read has its audit row, naming who read which content.
    let reads = activity(&admin, id, "read_file").await;
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(
        reads.iter().all(|e| e["actor"] == "files-viewer"),
        "{reads:?}"
    );
    assert_eq!(reads[0]["details"]["sha256"], sha(b"fn main() {}\n"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn files_writes_are_atomic_conditional_and_logged() {
    let t = tree();
    let root = t.root.display().to_string();
    let server = TestServer::start_with(move |c| c.sources.roots = vec![root]).await;
    let admin = server.admin().await;
    let member = server.user("files-member", "member").await;
    let viewer = server.user("files-viewer2", "viewer").await;
    let id = project(&admin, "files-write", Some(&t.root)).await;
    let old = sha(b"fn main() {}\n");

    let w = |content: &str, expected: Option<&str>| {
        let mut b = json!({"project_id": id, "path": "src/main.rs", "content": content});
        if let Some(e) = expected {
            b["expected_sha256"] = json!(e);
        }
        b
    };
    let r = viewer.post_json("/api/files/write", &w("x", None)).await;
    assert_eq!(r.status, 403, "{}", r.body);

    let r = member
        .post_json("/api/files/write", &w("fn main() { run() }\n", Some(&old)))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new = sha(b"fn main() { run() }\n");
    assert_eq!(r.json["sha256"], new);
    assert_eq!(r.json["previous_sha256"], old);
    assert_eq!(r.json["created"], false);
    assert_eq!(
        std::fs::read_to_string(t.root.join("src/main.rs")).unwrap(),
        "fn main() { run() }\n"
    );
    let writes = activity(&admin, id, "write_file").await;
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0]["details"]["previous_sha256"], old);
    assert_eq!(writes[0]["details"]["sha256"], new);
    assert_eq!(writes[0]["actor"], "files-member");

    // A writer that read the old content is refused, and the file keeps the newer text.
    let r = member
        .post_json("/api/files/write", &w("stale\n", Some(&old)))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json["field"], "expected_sha256");
    assert_eq!(
        std::fs::read_to_string(t.root.join("src/main.rs")).unwrap(),
        "fn main() { run() }\n"
    );
    let r = member
        .post_json("/api/files/write", &w("x", Some("abc")))
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("expected_sha256"))
    );

    // Two writers holding the same hash race: exactly one wins.
    let racers = (0..6).map(|k| {
        let body = w(&format!("racer {k}\n"), Some(&new));
        let (http, csrf, base) = (
            member.http.clone(),
            member.csrf.clone(),
            member.base.clone(),
        );
        tokio::spawn(async move {
            http.post(format!("{base}/api/files/write"))
                .header("X-CSRF-Token", csrf)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for r in racers {
        statuses.push(r.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409]);
    let text = std::fs::read_to_string(t.root.join("src/main.rs")).unwrap();
    assert!(text.starts_with("racer "), "{text}");

    // New files: "" means "must not exist yet".
    let r = member
        .post_json(
            "/api/files/write",
            &json!({"project_id": id, "path": "src/new.rs", "content": "// new\n", "expected_sha256": ""}),
        )
        .await;
    assert_eq!(
        (r.status, &r.json["created"]),
        (200, &json!(true)),
        "{}",
        r.body
    );
    let r = member
        .post_json(
            "/api/files/write",
            &json!({"project_id": id, "path": "src/new.rs", "content": "again\n", "expected_sha256": ""}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);

    let sibling = t.root.with_file_name("gitrepos_sibling");
    for (path, why) in [
        ("../gitrepos_sibling/secret.txt", "a '..' escape"),
        ("link_out", "a link to the sibling's file"),
        ("dir_out/planted.txt", "a folder link to the sibling"),
        (".git/hooks/pre-commit", "the repository's hooks"),
        ("missing/dir/x.txt", "a folder that does not exist"),
        ("src", "a folder"),
    ] {
        let r = member
            .post_json(
                "/api/files/write",
                &json!({"project_id": id, "path": path, "content": "planted"}),
            )
            .await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (422, Some("path")),
            "{why}: {}",
            r.body
        );
    }
    let abs = sibling.join("planted.txt");
    let r = member
        .post_json(
            "/api/files/write",
            &json!({"project_id": id, "path": abs.display().to_string(), "content": "planted"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("path")),
        "{}",
        r.body
    );
    assert_eq!(
        std::fs::read_to_string(sibling.join("secret.txt")).unwrap(),
        "sibling secret"
    );
    assert!(!sibling.join("planted.txt").exists());
    let r = member
        .post_json(
            "/api/files/write",
            &json!({"project_id": id, "path": "a.txt", "content": "a\u{0}b"}),
        )
        .await;
    assert_eq!(
        (r.status, r.json["field"].as_str()),
        (422, Some("content")),
        "{}",
        r.body
    );

    // No temporary file is left behind by the writes, the refused ones included.
    let leftovers: Vec<String> = std::fs::read_dir(t.root.join("src"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Writes logged: the first, the race's winner, the new file.
    assert_eq!(activity(&admin, id, "write_file").await.len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn files_of_a_feature_come_from_its_prompts_worktree_branch_and_description() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("app");
    let wt = tmp.path().join("app-feat");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("README.md"), "# App\n").unwrap();
    std::fs::write(repo.join("src/lib.rs"), "pub fn a() {}\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "feat-x",
            wt.to_str().unwrap(),
        ],
    );
    std::fs::write(wt.join("src/lib.rs"), "pub fn a() { b() }\n").unwrap();
    std::fs::write(wt.join("src/b.rs"), "pub fn b() {}\n").unwrap();
    git(&wt, &["add", "."]);
    git(&wt, &["commit", "-q", "-m", "feat"]);
    std::fs::write(wt.join("scratch.txt"), "untracked\n").unwrap();

    let top = tmp.path().display().to_string();
    let server = TestServer::start_with(move |c| c.sources.roots = vec![top]).await;
    let admin = server.admin().await;
    let pid = project(&admin, "files-feature", Some(&repo)).await;
    let r = admin
        .post_json(
            "/api/features",
            &json!({"project_id": pid, "name": "F",
                    "description": "Touch `README.md` and docs/missing.md, see https://x.io/a.rs"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let fid = r.json["id"].as_i64().unwrap();

    // The feature's prompt went to a session working in the worktree on branch feat-x.
    let db = &server.state().db;
    let now = server.clock.now_str();
    architect::agents::store::register_session(
        db,
        "local",
        "feat-agent",
        &architect::agents::store::SessionFacts {
            agent: Some("claude".into()),
            launched: true,
            cwd: Some(wt.display().to_string()),
            branch: Some("feat-x".into()),
            ..Default::default()
        },
        &now,
        None,
    )
    .await
    .unwrap();
    let prompt = architect::agents::assigner::store::insert(
        db,
        &architect::agents::assigner::store::Insert {
            content: "Implement F",
            priority: 5,
            target_session: Some("feat-agent"),
            target_role: None,
            target_group: None,
            node: "local",
            timeout_minutes: 30,
            max_retries: 0,
            metadata: &json!({}),
            parent_id: None,
            source: Some(("feature", fid)),
            created_by: "test",
        },
        &now,
    )
    .await
    .unwrap();
    use architect::agents::assigner::store::{claim, mark_typed};
    assert!(claim(db, prompt, "local", "feat-agent", "tok", &now)
        .await
        .unwrap());
    assert!(mark_typed(db, prompt, "tok", &now).await.unwrap());

    let r = server
        .user("feat-viewer", "viewer")
        .await
        .get(&format!("/api/files/feature/{fid}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let files: Vec<(String, bool, Vec<String>)> = r.json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["exists"].as_bool().unwrap(),
                f["from"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let paths: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        paths,
        ["README.md", "scratch.txt", "src/b.rs", "src/lib.rs"],
        "{}",
        r.body
    );
    let from = |p: &str| files.iter().find(|f| f.0 == p).unwrap().2.join(", ");
    assert_eq!(from("README.md"), "description");
    assert!(
        from("src/b.rs").contains(&format!("prompt #{prompt} (branch feat-x)")),
        "{}",
        r.body
    );
    assert!(
        from("src/b.rs").contains(&format!("prompt #{prompt} (worktree)")),
        "{}",
        r.body
    );
    assert_eq!(from("scratch.txt"), format!("prompt #{prompt} (worktree)"));
    // src/b.rs exists only on the branch, not in the project's checkout of main.
    assert!(!files.iter().find(|f| f.0 == "src/b.rs").unwrap().1);
    assert!(files.iter().find(|f| f.0 == "src/lib.rs").unwrap().1);

    // The feature's page links to them.
    let page = admin.get(&format!("/features/{fid}")).await;
    assert!(
        page.body
            .contains(&format!("href=\"/features/{fid}/files\"")),
        "{}",
        page.body
    );
    let page = admin.get(&format!("/features/{fid}/files")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for p in ["README.md", "scratch.txt", "src/b.rs", "src/lib.rs"] {
        assert!(
            page.body.contains(&format!(">{p}<")) || page.body.contains(&format!(">{p} <")),
            "{p}: {}",
            page.body
        );
    }
    assert!(
        page.body
            .contains(&format!("href=\"/projects/{pid}/files?path=src%2Flib.rs\"")),
        "{}",
        page.body
    );
    let r = admin.get("/api/files/feature/999999").await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = admin.get("/api/files/feature/abc").await;
    assert_eq!(r.status, 400, "{}", r.body);
    server.stop().await;
}
