//! Master key rotation: every data key re-wrapped under a new key in one transaction, reads
//! working throughout, and a crash between any two steps leaving every secret readable.

use super::{code, create, value_of, Node};
use crate::support::{Session, TestServer};
use architect::vault::rotation;
use architect::vault::Actor;
use architect::vault::VaultState;
use axum::extract::FromRef;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

async fn key_ids(db: &architect::db::Db) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>("SELECT master_key_id FROM secret_versions")
        .fetch_all(db)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn ciphertexts(db: &architect::db::Db) -> Vec<Vec<u8>> {
    sqlx::query_scalar("SELECT ciphertext FROM secret_versions ORDER BY id")
        .fetch_all(db)
        .await
        .unwrap()
}

async fn active_key_id(s: &Session) -> String {
    let st = s.get("/api/vault/status").await;
    assert_eq!(st.status, 200, "{}", st.body);
    st.json["active_key_id"].as_str().unwrap().to_string()
}

/// Every (id, version) → value that the test stored.
async fn assert_all_readable(s: &Session, expected: &[(i64, i64, String)]) {
    for (id, version, value) in expected {
        let r = s
            .get(&format!("/api/secrets/{id}/versions/{version}"))
            .await;
        assert_eq!(r.status, 200, "secret {id} v{version}: {}", r.body);
        assert_eq!(r.json["value"].as_str(), Some(value.as_str()));
    }
}

/// Five secrets, two of them with a second version.
async fn fill(s: &Session) -> Vec<(i64, i64, String)> {
    let mut out = Vec::new();
    for i in 0..5 {
        let v = format!("value-{i}");
        let id = create(s, &format!("SECRET_{i}"), &v).await;
        out.push((id, 1, v));
        if i % 2 == 0 {
            let v2 = format!("value-{i}-b");
            let r = s
                .put_json(&format!("/api/secrets/{id}"), &json!({"value": v2}))
                .await;
            assert_eq!(r.status, 200);
            out.push((id, 2, v2));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_key_rewraps_every_data_key_and_survives_a_restart() {
    let t = TestServer::start().await;
    let s = t.token("admin").await;
    let expected = fill(&s).await;
    let old = active_key_id(&s).await;
    let key_path = t.data_dir.join("master.key");
    let old_text = std::fs::read_to_string(&key_path).unwrap();
    let before = ciphertexts(&t.state().db).await;

    let r = s.post_json("/api/vault/rotate-key", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["rewrapped"], expected.len());
    assert_eq!(r.json["old_key_ids"], json!([old]));
    let new = r.json["new_key_id"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(active_key_id(&s).await, new);
    assert_eq!(key_ids(&t.state().db).await, BTreeSet::from([new.clone()]));
    assert_eq!(
        ciphertexts(&t.state().db).await,
        before,
        "values are not re-encrypted, only their keys"
    );
    let new_text = std::fs::read_to_string(&key_path).unwrap();
    assert_ne!(new_text, old_text);
    assert!(!t.data_dir.join("master.key.next").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_all_readable(&s, &expected).await;
    let act = s.get("/api/activity?entity=vault").await;
    assert_eq!(act.json[0]["action"], "rotate_key", "{}", act.body);
    assert!(
        !act.body.contains(&old_text.trim()[..20]) && !act.body.contains(&new_text.trim()[..20])
    );

    // New writes use the new key; the rotated vault opens after a restart.
    let id = create(&s, "AFTER", "after-value").await;
    let t = t.restart().await;
    let s = t.token("admin").await;
    assert_all_readable(&s, &expected).await;
    assert_eq!(value_of(&s, id).await, "after-value");
    // And rotates again.
    let r = s.post_json("/api/vault/rotate-key", &json!({})).await;
    assert_eq!(
        (r.status, r.json["old_key_ids"].clone()),
        (200, json!([new])),
        "{}",
        r.body
    );
    assert_all_readable(&s, &expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_env_key_cannot_be_rotated_by_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let n = Node::start(&tmp.path().join("d"), |c| {
        c.master_key = Some(hex::encode([5u8; 32]))
    })
    .await;
    let s = n.admin().await;
    let id = create(&s, "E", "e-value").await;
    let r = s.post_json("/api/vault/rotate-key", &json!({})).await;
    assert_eq!((r.status, code(&r.json)), (409, "conflict"), "{}", r.body);
    assert!(r.json["error"]
        .as_str()
        .unwrap()
        .contains("ARCHITECT_MASTER_KEY"));
    assert_eq!(value_of(&s, id).await, "e-value");
    n.stop().await;
}

fn actor(now: &str) -> Actor<'_> {
    Actor {
        name: "crash-test",
        user_id: None,
        client_addr: None,
        now,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_rotation_steps_leaves_every_secret_readable() {
    let t = TestServer::start().await;
    let s = t.token("admin").await;
    let mut expected = fill(&s).await;
    let key_path = t.data_dir.join("master.key");
    let staged_path = t.data_dir.join("master.key.next");
    let old_text = std::fs::read_to_string(&key_path).unwrap();
    let old = active_key_id(&s).await;

    // Crash after step 1-2 (new key staged, database untouched).
    let path = rotation::key_file(&VaultState::from_ref(t.state())).unwrap();
    let staged = rotation::stage(&VaultState::from_ref(t.state()), &path)
        .await
        .unwrap();
    assert!(staged_path.is_file());
    assert_all_readable(&s, &expected).await;
    let t = t.restart().await; // the process stops here; start-up sorts it out
    let s = t.token("admin").await;
    assert!(!staged_path.exists(), "the unused staged key is discarded");
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), old_text);
    assert_eq!(active_key_id(&s).await, old);
    assert_all_readable(&s, &expected).await;
    drop(staged);

    // Crash after step 3 (re-wrap committed) but before the staged file is renamed.
    let state = t.state();
    let path = rotation::key_file(&VaultState::from_ref(state)).unwrap();
    let new = rotation::stage(&VaultState::from_ref(state), &path)
        .await
        .unwrap();
    let now = state.clock.now_str();
    let (n, from) = rotation::rewrap_all(
        &architect::vault::VaultState::from_ref(state),
        &new,
        &actor(&now),
    )
    .await
    .unwrap();
    assert_eq!((n as usize, from), (expected.len(), vec![old.clone()]));
    assert_eq!(
        key_ids(&state.db).await,
        BTreeSet::from([new.id().to_string()])
    );
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        old_text,
        "not promoted yet"
    );
    let staged_text = std::fs::read_to_string(&staged_path).unwrap();
    // Reads and writes work in this state (the keyring holds both keys).
    assert_all_readable(&s, &expected).await;
    let mid = create(&s, "MIDWAY", "midway-value").await;
    expected.push((mid, 1, "midway-value".into()));
    let t = t.restart().await;
    let s = t.token("admin").await;
    assert!(!staged_path.exists());
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        staged_text,
        "start-up finished the rotation"
    );
    assert_eq!(active_key_id(&s).await, new.id());
    assert_all_readable(&s, &expected).await;

    // A failure in the middle of the re-wrap transaction (here: one data key that cannot be
    // unwrapped, after other rows were already re-wrapped) rolls everything back.
    let db = &t.state().db;
    let victim = expected.last().unwrap().0;
    let good: Vec<u8> =
        sqlx::query_scalar("SELECT wrapped_key FROM secret_versions WHERE secret_id = $1")
            .bind(victim)
            .fetch_one(db)
            .await
            .unwrap();
    let mut bad = good.clone();
    bad[3] ^= 0xff;
    sqlx::query("UPDATE secret_versions SET wrapped_key = $1 WHERE secret_id = $2")
        .bind(&bad)
        .bind(victim)
        .execute(db)
        .await
        .unwrap();
    let key_before = std::fs::read_to_string(&key_path).unwrap();
    let r = s.post_json("/api/vault/rotate-key", &json!({})).await;
    assert_eq!(
        (r.status, code(&r.json)),
        (500, "integrity_error"),
        "{}",
        r.body
    );
    assert_eq!(
        key_ids(db).await,
        BTreeSet::from([new.id().to_string()]),
        "no row moved"
    );
    assert_eq!(active_key_id(&s).await, new.id());
    assert!(!staged_path.exists());
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key_before);
    let others: Vec<_> = expected.iter().filter(|e| e.0 != victim).cloned().collect();
    assert_all_readable(&s, &others).await;
    sqlx::query("UPDATE secret_versions SET wrapped_key = $1 WHERE secret_id = $2")
        .bind(&good)
        .bind(victim)
        .execute(db)
        .await
        .unwrap();
    let t = t.restart().await;
    let s = t.token("admin").await;
    assert_all_readable(&s, &expected).await;
    let r = s.post_json("/api/vault/rotate-key", &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_all_readable(&s, &expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_keep_working_while_the_master_key_rotates() {
    let t = TestServer::start().await;
    let s = t.token("admin").await;
    let state = t.state();
    let now = state.clock.now_str();
    let mut ids = Vec::new();
    for i in 0..400 {
        let input = architect::vault::NewSecret {
            name: format!("BULK_{i}"),
            value: architect::vault::SecretValue::new(format!("bulk-{i}")),
            category: None,
            description: None,
        };
        let info = architect::vault::actions::create_secret(
            &VaultState::from_ref(state),
            &actor(&now),
            input,
        )
        .await
        .unwrap();
        ids.push(info.id);
    }
    let ids = Arc::new(ids);
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let token = s.token.clone();
    let mut readers = Vec::new();
    for r in 0..4 {
        let (ids, done, reads, failures) =
            (ids.clone(), done.clone(), reads.clone(), failures.clone());
        let reader = Session::new(&t.url, token.clone());
        readers.push(tokio::spawn(async move {
            let mut i = r * 97;
            // At least a few reads each, then until the rotation is over.
            while !done.load(Ordering::SeqCst) || reads.load(Ordering::SeqCst) < 8 {
                let k = i % ids.len();
                let resp = reader.get(&format!("/api/secrets/{}", ids[k])).await;
                let idx = ids.iter().position(|x| *x == ids[k]).unwrap();
                if resp.status != 200 || resp.json["value"] != format!("bulk-{idx}") {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                reads.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        }));
    }
    let r = s.post_json("/api/vault/rotate-key", &json!({})).await;
    done.store(true, Ordering::SeqCst);
    for h in readers {
        h.await.unwrap();
    }
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["rewrapped"], 400);
    assert!(reads.load(Ordering::SeqCst) >= 8);
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "failed reads during rotation"
    );
}
