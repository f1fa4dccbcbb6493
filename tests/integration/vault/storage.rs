//! What is stored and what the stored bytes can do: tampered ciphertexts, nonces and bindings
//! give errors (never a value), the audit record is written before a value leaves, a missing or
//! wrong master key seals the vault, the key file is created 0600, and other domains resolve
//! `vault:NAME` references.

use super::{code, create, value_of, Node};
use crate::support::{Session, TestServer};
use architect::db::Db;
use axum::extract::FromRef;
use serde_json::json;

const CIPHER_COLUMNS: [&str; 4] = ["ciphertext", "nonce", "wrapped_key", "key_nonce"];

async fn blob(db: &Db, col: &str, secret_id: i64, version: i64) -> Vec<u8> {
    sqlx::query_scalar(&format!(
        "SELECT {col} FROM secret_versions WHERE secret_id = $1 AND version = $2"
    ))
    .bind(secret_id)
    .bind(version)
    .fetch_one(db)
    .await
    .expect("a stored version")
}

async fn set_blob(db: &Db, col: &str, secret_id: i64, version: i64, bytes: &[u8]) {
    sqlx::query(&format!(
        "UPDATE secret_versions SET {col} = $1 WHERE secret_id = $2 AND version = $3"
    ))
    .bind(bytes)
    .bind(secret_id)
    .bind(version)
    .execute(db)
    .await
    .expect("tamper");
}

/// Every stored field of a version, to put back after tampering.
async fn row(db: &Db, secret_id: i64, version: i64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for col in CIPHER_COLUMNS {
        out.push(blob(db, col, secret_id, version).await);
    }
    out
}

async fn put_row(db: &Db, secret_id: i64, version: i64, fields: &[Vec<u8>]) {
    for (col, bytes) in CIPHER_COLUMNS.iter().zip(fields) {
        set_blob(db, col, secret_id, version, bytes).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_ciphertext_nonce_key_or_binding_is_an_error_never_a_value() {
    let t = TestServer::start().await;
    let s = t.token("admin").await;
    let db = &t.state().db;
    let a = create(&s, "ALPHA", "alpha-value-1").await;
    let r = s
        .put_json(
            &format!("/api/secrets/{a}"),
            &json!({"value": "alpha-value-2"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let b = create(&s, "BRAVO", "bravo-value").await;
    let original = row(db, a, 2).await;
    // The stored bytes never hold the plaintext.
    for field in &original {
        assert!(!field.windows(5).any(|w| w == b"alpha"));
    }

    let read_fails = |what: String| {
        let s = &s;
        async move {
            let r = s.get(&format!("/api/secrets/{a}")).await;
            assert!(r.status >= 500, "{what}: {} {}", r.status, r.body);
            assert_eq!(code(&r.json), "integrity_error", "{what}: {}", r.body);
            assert!(r.json.get("value").is_none(), "{what}");
            for v in ["alpha-value", "bravo-value"] {
                assert!(!r.body.contains(v), "{what}: {}", r.body);
            }
        }
    };

    // One flipped bit in any stored field.
    for (i, col) in CIPHER_COLUMNS.iter().enumerate() {
        let mut bad = original[i].clone();
        bad[0] ^= 0x01;
        set_blob(db, col, a, 2, &bad).await;
        read_fails(format!("flipped {col}")).await;
        set_blob(db, col, a, 2, &original[i]).await;
        assert_eq!(value_of(&s, a).await, "alpha-value-2", "{col} restored");
    }
    // A truncated nonce.
    set_blob(db, "nonce", a, 2, &original[1][..12]).await;
    read_fails("short nonce".into()).await;
    put_row(db, a, 2, &original).await;

    // Another secret's complete row copied over: bound to its own id.
    let other = row(db, b, 1).await;
    put_row(db, a, 2, &other).await;
    read_fails("another secret's row".into()).await;
    // An earlier version's row copied over the current one: bound to its own version.
    let v1 = row(db, a, 1).await;
    put_row(db, a, 2, &v1).await;
    read_fails("another version's row".into()).await;
    put_row(db, a, 2, &original).await;

    // A row claiming a master key this server does not hold.
    sqlx::query("UPDATE secret_versions SET master_key_id = 'feedfacefeedface' WHERE secret_id = $1 AND version = 2")
        .bind(a)
        .execute(db)
        .await
        .unwrap();
    let r = s.get(&format!("/api/secrets/{a}")).await;
    assert_eq!(
        (r.status, code(&r.json)),
        (503, "vault_sealed"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("alpha-value"));
    let good_id: String = sqlx::query_scalar(
        "SELECT master_key_id FROM secret_versions WHERE secret_id = $1 AND version = 1",
    )
    .bind(a)
    .fetch_one(db)
    .await
    .unwrap();
    sqlx::query("UPDATE secret_versions SET master_key_id = $1 WHERE secret_id = $2")
        .bind(&good_id)
        .bind(a)
        .execute(db)
        .await
        .unwrap();

    // Everything readable again; failed reads were not counted but were recorded.
    assert_eq!(value_of(&s, a).await, "alpha-value-2");
    assert_eq!(value_of(&s, b).await, "bravo-value");
    let audit = s.get(&format!("/api/secrets/{a}/audit")).await;
    let failed = audit
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "view_failed")
        .count();
    assert_eq!(failed, 8, "{}", audit.body);
    let info = s.get("/api/secrets?name=ALPHA").await;
    assert_eq!(
        info.json[0]["access_count"], 5,
        "only successful reads count: {}",
        info.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_value_leaves_unless_its_audit_record_was_written() {
    let t = TestServer::start().await;
    let s = t.token("admin").await;
    let db = &t.state().db;
    let id = create(&s, "AUDITED", "audited-value").await;
    // A trigger that fails every view's audit insert, in each backend's trigger language.
    let postgres = crate::support::backend() == crate::support::TestBackend::Postgres;
    let down: &[&str] = if postgres {
        &[
            "CREATE FUNCTION audit_down() RETURNS trigger LANGUAGE plpgsql AS $f$
             BEGIN
               IF NEW.action = 'view' THEN RAISE EXCEPTION 'audit storage unavailable'; END IF;
               RETURN NEW;
             END $f$",
            "CREATE TRIGGER audit_down BEFORE INSERT ON secret_audit
             FOR EACH ROW EXECUTE FUNCTION audit_down()",
        ]
    } else {
        &[
            "CREATE TRIGGER audit_down BEFORE INSERT ON secret_audit WHEN NEW.action = 'view'
           BEGIN SELECT RAISE(ABORT, 'audit storage unavailable'); END",
        ]
    };
    for sql in down {
        sqlx::query(sql).execute(db).await.unwrap();
    }
    for path in [
        format!("/api/secrets/{id}"),
        format!("/api/secrets/{id}/versions/1"),
    ] {
        let r = s.get(&path).await;
        assert_eq!(r.status, 500, "{path}: {}", r.body);
        assert!(!r.body.contains("audited-value"), "{}", r.body);
        assert!(r.json.get("value").is_none());
    }
    let count: i64 = sqlx::query_scalar("SELECT access_count FROM secrets WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(count, 0, "the failed read was rolled back");
    // Internal references obey the same rule... only views are blocked by this trigger.
    let up = if postgres {
        "DROP TRIGGER audit_down ON secret_audit"
    } else {
        "DROP TRIGGER audit_down"
    };
    sqlx::query(up).execute(db).await.unwrap();
    assert_eq!(value_of(&s, id).await, "audited-value");
    let audit = s.get(&format!("/api/secrets/{id}/audit")).await;
    assert_eq!(audit.json[0]["action"], "view");
}

#[tokio::test(flavor = "multi_thread")]
async fn other_domains_resolve_vault_references_by_name() {
    let t = TestServer::start().await;
    let s = t.token("admin").await;
    let id = create(&s, "ANTHROPIC_API_KEY", "sk-ant-test").await;
    let state = t.state();
    let v = architect::vault::resolve_reference(
        &architect::vault::VaultState::from_ref(state),
        "vault:ANTHROPIC_API_KEY",
    )
    .await
    .expect("resolves");
    assert_eq!(v.expose(), "sk-ant-test");
    assert!(!format!("{v:?}").contains("sk-ant"));
    let v = architect::vault::resolve_reference(
        &architect::vault::VaultState::from_ref(state),
        " vault:anthropic_api_key ",
    )
    .await;
    assert_eq!(
        v.expect("names are case-insensitive").expose(),
        "sk-ant-test"
    );
    let audit = s.get(&format!("/api/secrets/{id}/audit")).await;
    assert_eq!(audit.json[0]["action"], "resolve");
    assert_eq!(audit.json[0]["actor"], "system");
    use architect::vault::VaultError;
    assert!(matches!(
        architect::vault::resolve_reference(
            &architect::vault::VaultState::from_ref(state),
            "vault:MISSING"
        )
        .await,
        Err(VaultError::NotFound(_))
    ));
    assert!(matches!(
        architect::vault::resolve_reference(
            &architect::vault::VaultState::from_ref(state),
            "sk-literal"
        )
        .await,
        Err(VaultError::Invalid(_))
    ));
    assert!(matches!(
        architect::vault::resolve_reference(
            &architect::vault::VaultState::from_ref(state),
            "vault:bad name"
        )
        .await,
        Err(VaultError::Invalid(_))
    ));
    assert_eq!(s.delete(&format!("/api/secrets/{id}")).await.status, 200);
    assert!(matches!(
        architect::vault::resolve_reference(
            &architect::vault::VaultState::from_ref(state),
            "vault:ANTHROPIC_API_KEY"
        )
        .await,
        Err(VaultError::NotFound(_))
    ));
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("exists").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_file_is_created_private_and_its_path_is_configurable() {
    let t = TestServer::start().await;
    let key = t.data_dir.join("master.key");
    assert!(key.is_file());
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    // The data dir, the database (and its WAL) and the session key are owner-only too.
    #[cfg(unix)]
    for (p, want) in [
        (t.data_dir.clone(), 0o700),
        (t.data_dir.join("secret.key"), 0o600),
    ] {
        assert_eq!(mode(&p), want, "{}", p.display());
    }
    let text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(text.trim().len(), 44, "base64 of 32 bytes");
    if crate::support::sqlite_only("the database file's mode and bytes") {
        #[cfg(unix)]
        for p in [
            t.data_dir.join("architect.db"),
            t.data_dir.join("architect.db-wal"),
        ] {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        let db: Vec<u8> = std::fs::read(t.data_dir.join("architect.db")).unwrap();
        assert!(
            !db.windows(20).any(|w| w == &text.as_bytes()[..20]),
            "the key never enters the database"
        );
    }

    let tmp = tempfile::tempdir().unwrap();
    let custom = tmp.path().join("keys").join("vault.key");
    let dir = tmp.path().join("data");
    let n = Node::start(&dir, |c| c.master_key_file = Some(custom.clone())).await;
    assert!(custom.is_file() && !dir.join("master.key").exists());
    #[cfg(unix)]
    assert_eq!(mode(&custom), 0o600);
    let s = n.admin().await;
    let id = create(&s, "X", "x-value").await;
    assert_eq!(value_of(&s, id).await, "x-value");
    n.stop().await;

    // An env key: no file is written.
    let dir2 = tmp.path().join("data2");
    let n = Node::start(&dir2, |c| c.master_key = Some(hex_key(3))).await;
    assert!(!dir2.join("master.key").exists());
    let s = n.admin().await;
    let id = create(&s, "Y", "y-value").await;
    assert_eq!(value_of(&s, id).await, "y-value");
    let st = s.get("/api/vault/status").await;
    assert_eq!(
        (st.json["sealed"].as_bool(), st.json["key_source"].as_str()),
        (Some(false), Some("env"))
    );
    n.stop().await;
}

fn hex_key(byte: u8) -> String {
    hex::encode([byte; 32])
}

/// Asserts the vault answers 503 `vault_sealed` everywhere while the server itself runs, and
/// that the reason contains `why`.
async fn assert_sealed(n: &Node, why: &str) {
    let s = n.admin().await;
    assert_eq!(s.get("/health").await.status, 200, "the server runs");
    assert_eq!(s.get("/api/projects").await.status, 200, "the rest works");
    let r = s.get("/api/secrets").await;
    assert_eq!(
        (r.status, code(&r.json)),
        (503, "vault_sealed"),
        "{}",
        r.body
    );
    // Every vault call only says that it is sealed; why is in the status, for admins.
    assert!(
        !r.json["error"].as_str().unwrap().contains(why),
        "{why}: {}",
        r.body
    );
    for (method, path) in [
        (reqwest::Method::GET, "/api/secrets/1"),
        (reqwest::Method::GET, "/api/secrets/1/versions"),
        (reqwest::Method::GET, "/api/secrets/1/audit"),
        (reqwest::Method::DELETE, "/api/secrets/1"),
        (reqwest::Method::POST, "/api/vault/rotate-key"),
    ] {
        let r = s.send(s.request(method, path)).await;
        assert_eq!(
            (r.status, code(&r.json)),
            (503, "vault_sealed"),
            "{path}: {}",
            r.body
        );
    }
    let r = s
        .post_json("/api/secrets", &json!({"name": "N", "value": "v"}))
        .await;
    assert_eq!(r.status, 503);
    let st = s.get("/api/vault/status").await;
    assert_eq!(st.status, 200);
    assert_eq!(st.json["sealed"], true);
    assert!(st.json["reason"].as_str().unwrap().contains(why));
    let page = s.get("/vault").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("The vault is sealed"), "{}", page.body);
    assert!(architect::vault::resolve_reference(
        &architect::vault::VaultState::from_ref(n.state()),
        "vault:KEPT"
    )
    .await
    .is_err());
}

/// The sealed reason names the key file (and key ids): an admin sees it, a viewer, a member
/// or a read token sees only that the vault is sealed, in the status, the 503s and the page.
async fn assert_sealed_reason_is_for_admins(n: &Node, key_path: &std::path::Path) {
    let admin = n.admin().await;
    let path = key_path.display().to_string();
    let st = admin.get("/api/vault/status").await;
    assert!(
        st.json["reason"].as_str().unwrap().contains(&path),
        "{}",
        st.body
    );
    let r = admin
        .post_json(
            "/api/users",
            &json!({"username": "vera", "password": "password-123", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut viewer = Session::new(&n.url, None);
    let r = viewer
        .post_json(
            "/login",
            &json!({"username": "vera", "password": "password-123"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    viewer.csrf = r.json["csrf_token"].as_str().unwrap().to_string();
    let st = viewer.get("/api/vault/status").await;
    assert_eq!((st.status, st.json["sealed"].as_bool()), (200, Some(true)));
    assert!(st.json["reason"]
        .as_str()
        .is_some_and(|r| r.contains("sealed")));
    for r in [
        st,
        viewer.get("/api/secrets").await,
        viewer.get("/api/secrets/1").await,
        viewer.get("/vault").await,
    ] {
        assert!(!r.body.contains(&path), "{}", r.body);
        assert!(!r.body.contains("master.key"), "{}", r.body);
        assert!(r.json["key_file"].is_null() && r.json["active_key_id"].is_null());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_wrong_master_key_seals_the_vault() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let key_path = dir.join("master.key");
    let n = Node::start(&dir, |_| {}).await;
    let s = n.admin().await;
    let id = create(&s, "KEPT", "kept-value").await;
    n.stop().await;
    let key_text = std::fs::read_to_string(&key_path).unwrap();

    // A wrong key in the environment.
    let n = Node::start(&dir, |c| c.master_key = Some(hex_key(9))).await;
    assert_sealed(&n, "does not match").await;
    n.stop().await;
    // A malformed one.
    let n = Node::start(&dir, |c| c.master_key = Some("not-a-key".into())).await;
    assert_sealed(&n, "ARCHITECT_MASTER_KEY is not a valid key").await;
    n.stop().await;
    // The key file gone: sealed, and no new key is made while secrets need the old one.
    std::fs::rename(&key_path, dir.join("moved.key")).unwrap();
    let n = Node::start(&dir, |_| {}).await;
    assert_sealed(&n, "missing").await;
    assert!(!key_path.exists());
    assert_sealed_reason_is_for_admins(&n, &key_path).await;
    n.stop().await;
    // A key file that is not a key: sealed, and the file is left as it was.
    std::fs::write(&key_path, "this is not a key\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let n = Node::start(&dir, |_| {}).await;
    assert_sealed(&n, "not a valid key").await;
    n.stop().await;
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        "this is not a key\n"
    );
    // The right key from the environment opens it, whatever the file holds.
    let n = Node::start(&dir, |c| c.master_key = Some(key_text.trim().to_string())).await;
    let s = n.admin().await;
    assert_eq!(value_of(&s, id).await, "kept-value");
    n.stop().await;
    // And the right key file again.
    std::fs::rename(dir.join("moved.key"), &key_path).unwrap();
    let n = Node::start(&dir, |_| {}).await;
    let s = n.admin().await;
    assert_eq!(value_of(&s, id).await, "kept-value");
    n.stop().await;
}

/// Whoever reads the master key file reads every secret: a key file group or others can read
/// stops the server at start (with the `chmod` that fixes it) unless the operator accepts it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_master_key_file_others_can_read_stops_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let n = Node::start(&dir, |_| {}).await;
    n.stop().await;
    let key_path = dir.join("master.key");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = match architect::serve::start(
        crate::support::config(&dir),
        architect::clock::Clock::manual(),
    )
    .await
    {
        Ok(_) => panic!("the server started with a world-readable master key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("chmod 600") && err.contains("master.key"),
        "{err}"
    );
    // Accepted explicitly: the server starts and the vault is open.
    let n = Node::start(&dir, |c| c.allow_readable_master_key = true).await;
    let s = n.admin().await;
    let st = s.get("/api/vault/status").await;
    assert_eq!(st.json["sealed"], false, "{}", st.body);
    n.stop().await;
    // Fixed: starts without the override.
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    Node::start(&dir, |_| {}).await.stop().await;
}
