//! `architect secrets` and `architect vault` against a running server, with an API token:
//! values go in on stdin (never argv) and come out alone on stdout.

use super::run;
use crate::support::TestServer;

/// `architect GROUP --url URL --token TOKEN REST...`.
async fn client(
    url: &str,
    token: &str,
    group: &str,
    rest: &[&str],
    stdin: Option<&str>,
) -> super::Run {
    let mut args = vec![group, "--url", url, "--token", token];
    args.extend_from_slice(rest);
    run(&args, stdin).await
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_commands_set_get_list_versions_and_remove() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let token = admin.token.clone().unwrap();
    let url = t.url.as_str();

    // set: from stdin (one trailing newline dropped), then a second version.
    let r = client(
        url,
        &token,
        "secrets",
        &[
            "set",
            "DEPLOY_KEY",
            "--category",
            "ssh_key",
            "--description",
            "prod",
        ],
        Some("line one\nline two\n"),
    )
    .await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("DEPLOY_KEY version 1"), "{r:?}");
    assert!(!r.stdout.contains("line one"));
    let r = client(url, &token, "secrets", &["get", "DEPLOY_KEY"], None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        r.stdout, "line one\nline two",
        "exactly the value, no newline when piped"
    );
    let r = client(
        url,
        &token,
        "secrets",
        &["set", "deploy_key", "--keep-newline"],
        Some("second\n"),
    )
    .await;
    assert!(r.stdout.contains("DEPLOY_KEY version 2"), "{r:?}");
    let r = client(url, &token, "secrets", &["get", "DEPLOY_KEY"], None).await;
    assert_eq!(r.stdout, "second\n");
    let r = client(
        url,
        &token,
        "secrets",
        &["get", "DEPLOY_KEY", "--version", "1"],
        None,
    )
    .await;
    assert_eq!(r.stdout, "line one\nline two");
    let r = client(
        url,
        &token,
        "secrets",
        &["get", "DEPLOY_KEY", "--json"],
        None,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(
        (v["value"].as_str(), v["version"].as_i64()),
        (Some("second\n"), Some(2))
    );

    // list: names, categories, counts; never values.
    let r = client(url, &token, "secrets", &["list"], None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains("DEPLOY_KEY"))
        .expect("listed");
    assert!(row.contains("ssh_key") && row.contains("prod"), "{row}");
    assert!(!r.stdout.contains("second") && !r.stdout.contains("line one"));

    // versions, restore, audit.
    let r = client(url, &token, "secrets", &["versions", "DEPLOY_KEY"], None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.lines().count() >= 3, "{r:?}");
    let r = client(
        url,
        &token,
        "secrets",
        &["versions", "DEPLOY_KEY", "--restore", "1"],
        None,
    )
    .await;
    assert!(r.stderr.contains("restored as version 3"), "{r:?}");
    let r = client(url, &token, "secrets", &["audit", "DEPLOY_KEY"], None).await;
    assert!(
        r.stdout.contains("restore") && r.stdout.contains("view") && r.stdout.contains("create"),
        "{r:?}"
    );

    // Errors are clear and exit non-zero.
    let r = client(url, &token, "secrets", &["get", "NOPE"], None).await;
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("no secret named 'NOPE'"), "{r:?}");
    let r = client(url, &token, "secrets", &["set", "EMPTY"], Some("")).await;
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("no value given"), "{r:?}");
    let r = client(url, &token, "secrets", &["set", "bad name"], Some("v")).await;
    assert!(
        r.stderr.contains("422") && r.stderr.contains("name"),
        "{r:?}"
    );
    let r = run(&["secrets", "--url", url, "list"], None).await;
    assert!(r.stderr.contains("ARCHITECT_TOKEN"), "{r:?}");
    // There is no way to pass a value as an argument.
    let r = client(url, &token, "secrets", &["set", "X", "--value", "v"], None).await;
    assert_ne!(r.code, Some(0));

    // rm: soft delete (admin only), then purge.
    let member = t.user("mia", "member").await;
    let r = member
        .post_json(
            "/api/tokens",
            &serde_json::json!({"name": "m", "scope": "admin"}),
        )
        .await;
    let member_token = r.json["token"].as_str().unwrap().to_string();
    let r = client(url, &member_token, "secrets", &["rm", "DEPLOY_KEY"], None).await;
    assert!(r.stderr.contains("403"), "{r:?}");
    let r = client(url, &token, "secrets", &["rm", "DEPLOY_KEY"], None).await;
    assert!(r.stdout.contains("Deleted DEPLOY_KEY"), "{r:?}");
    let r = client(url, &token, "secrets", &["list", "--deleted"], None).await;
    assert!(r.stdout.contains("deleted"), "{r:?}");
    let r = client(
        url,
        &token,
        "secrets",
        &["rm", "DEPLOY_KEY", "--purge"],
        None,
    )
    .await;
    assert!(r.stdout.contains("Purged DEPLOY_KEY"), "{r:?}");
    let r = client(url, &token, "secrets", &["list", "--deleted"], None).await;
    assert!(!r.stdout.contains("DEPLOY_KEY"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_status_and_rotate_key_commands() {
    let t = TestServer::start().await;
    let admin = t.token("admin").await;
    let token = admin.token.clone().unwrap();
    let url = t.url.as_str();
    client(url, &token, "secrets", &["set", "K"], Some("k-value")).await;
    let r = client(url, &token, "vault", &["status"], None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout.contains("Vault: open") && r.stdout.contains("master.key"),
        "{r:?}"
    );
    let r = client(url, &token, "vault", &["rotate-key"], None).await;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("1 data key(s) re-wrapped"), "{r:?}");
    let r = client(url, &token, "secrets", &["get", "K"], None).await;
    assert_eq!(r.stdout, "k-value");
    let member = t.user("max", "member").await;
    let r = member
        .post_json(
            "/api/tokens",
            &serde_json::json!({"name": "m", "scope": "admin"}),
        )
        .await;
    let member_token = r.json["token"].as_str().unwrap().to_string();
    let r = client(url, &member_token, "vault", &["rotate-key"], None).await;
    assert!(r.stderr.contains("403"), "{r:?}");
    let r = run(&["vault", "--help"], None).await;
    assert!(
        r.stdout.contains("rotate-key") && r.stdout.contains("status"),
        "{r:?}"
    );
    let r = run(&["secrets", "set", "--help"], None).await;
    assert!(r.stdout.contains("stdin"), "{r:?}");
}
