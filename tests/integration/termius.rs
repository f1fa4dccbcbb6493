//! Issue 18 item 4: the Termius export. Hosts come from how each node is reached (label,
//! address, port, username, group by role or tag); the file carries no secret unless an admin
//! asks with `secrets=vault`, and then each value is read through the vault's audited path.
//! The preview (JSON and page) shows references, never values.

use crate::support::{Session, TestServer};
use serde_json::json;

const PASSWORD: &str = "s3cret-ssh-pw";

/// Three nodes (two with a role, one tagged only) and one vault secret named by `db-1`.
async fn fleet(t: &TestServer) -> (Session, i64) {
    let admin = t.admin().await;
    let mut secret_id = 0;
    let r = admin
        .post_json(
            "/api/secrets",
            &json!({"name": "DB1_SSH", "value": PASSWORD, "category": "ssh_key"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    if let Some(id) = r.json["id"].as_i64() {
        secret_id = id;
    }
    for (name, reach) in [
        (
            "db-1",
            json!({"address": "10.0.0.5", "ssh_user": "ops", "ssh_port": 2200, "role": "database",
                   "tags": ["prod", "eu"], "ssh_secret": "vault:DB1_SSH"}),
        ),
        (
            "web-1",
            json!({"address": "web-1.example.org", "ssh_user": "deploy", "role": "web, edge",
                   "tags": ["prod"]}),
        ),
        ("lab-1", json!({"tags": ["lab"]})),
    ] {
        let r = admin.post_json("/api/nodes", &json!({"name": name})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.json["id"].as_i64().unwrap();
        let r = admin.put_json(&format!("/api/nodes/{id}"), &reach).await;
        assert!(r.status == 200 || name == "web-1", "{}", r.body);
        if name == "web-1" {
            // A role holds no comma; the real one is set below.
            assert_eq!(r.status, 422, "{}", r.body);
            let mut fixed = reach.clone();
            fixed["role"] = json!("web");
            let r = admin.put_json(&format!("/api/nodes/{id}"), &fixed).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    (admin, secret_id)
}

#[tokio::test]
async fn the_export_holds_every_host_grouped_and_no_secret_by_default() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let (_admin, _) = fleet(&t).await;
    let reader = t.token("read").await;

    let r = reader.get("/api/termius/export").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    assert_eq!(r.headers["cache-control"], "no-store");
    let lines: Vec<&str> = r.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "Groups,Label,Tags,Hostname/IP,Protocol,Port,Username,Password",
            "database,db-1,\"eu,prod\",10.0.0.5,ssh,2200,ops,",
            "ungrouped,lab-1,lab,lab-1,ssh,22,,",
            "web,web-1,prod,web-1.example.org,ssh,22,deploy,",
        ]
    );
    assert!(!r.body.contains(PASSWORD));

    // Grouped by tag (a host's first tag), and filtered.
    let r = reader.get("/api/termius/export?group_by=tag").await;
    assert!(r.body.contains("\r\neu,db-1,"), "{}", r.body);
    assert!(r.body.contains("\r\nlab,lab-1,"), "{}", r.body);
    assert!(r.body.contains("\r\nprod,web-1,"), "{}", r.body);
    let r = reader.get("/api/termius/export?tag=prod").await;
    assert_eq!(
        r.body.split("\r\n").filter(|l| !l.is_empty()).count(),
        3,
        "{}",
        r.body
    );

    // ssh_config.
    let r = reader.get("/api/termius/export?format=ssh_config").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(
            "# group: database\nHost db-1\n    HostName 10.0.0.5\n    Port 2200\n    User ops\n"
        ),
        "{}",
        r.body
    );
    assert!(r
        .body
        .contains("Host lab-1\n    HostName lab-1\n    Port 22\n"));

    // Bad queries name their field.
    for (q, field) in [
        ("format=xml", "format"),
        ("group_by=colour", "group_by"),
        ("secrets=yes", "secrets"),
        ("secrets=vault&format=ssh_config", "secrets"),
        ("colour=red", ""),
    ] {
        let r = reader.get(&format!("/api/termius/export?{q}")).await;
        assert!(
            (400..500).contains(&r.status) && r.json["code"].is_string(),
            "{q}: {} {}",
            r.status,
            r.body
        );
        if !field.is_empty() {
            assert!(r.body.contains(field), "{q}: {}", r.body);
        }
    }
    let r = t.anon().get("/api/termius/export").await;
    assert_eq!(r.status, 401, "{}", r.body);
    t.stop().await;
}

#[tokio::test]
async fn secrets_go_into_the_file_only_for_an_admin_who_asks() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let (admin, secret_id) = fleet(&t).await;
    let reader = t.token("read").await;
    let member = t.user("mo", "member").await;
    for who in [&reader, &member] {
        let r = who.get("/api/termius/export?secrets=vault").await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(!r.body.contains(PASSWORD));
    }
    let admin_token = t.token("admin").await;
    for who in [&admin, &admin_token] {
        let r = who.get("/api/termius/export?secrets=vault").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.body.contains(&format!(
                "database,db-1,\"eu,prod\",10.0.0.5,ssh,2200,ops,{PASSWORD}\r\n"
            )),
            "{}",
            r.body
        );
        assert!(r
            .body
            .contains("web,web-1,prod,web-1.example.org,ssh,22,deploy,\r\n"));
    }
    // Each read is in the secret's audit trail, by the admin.
    let r = admin.get(&format!("/api/secrets/{secret_id}/audit")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let resolves = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "resolve")
        .count();
    assert_eq!(resolves, 2, "{}", r.body);

    // A reference to a secret that is not there is the caller's error, naming the node.
    let lab = admin
        .get("/api/nodes")
        .await
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "lab-1")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = admin
        .put_json(
            &format!("/api/nodes/{lab}"),
            &json!({"ssh_secret": "vault:GONE"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin.get("/api/termius/export?secrets=vault").await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json["field"], "secrets");
    assert!(r.body.contains("lab-1"), "{}", r.body);
    assert!(!r.body.contains(PASSWORD));
    t.stop().await;
}

#[tokio::test]
async fn the_preview_shows_references_never_values() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let (admin, _) = fleet(&t).await;
    let reader = t.token("read").await;
    let r = reader.get("/api/termius/preview").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["format"], "csv");
    assert_eq!(r.json["group_by"], "role");
    assert_eq!(r.json["with_secret"], 1);
    assert_eq!(
        r.json["groups"],
        json!([["database", 1], ["ungrouped", 1], ["web", 1]])
    );
    let db = &r.json["hosts"][0];
    assert_eq!(db["label"], "db-1");
    assert_eq!(db["address"], "10.0.0.5");
    assert_eq!(db["port"], 2200);
    assert_eq!(db["username"], "ops");
    assert_eq!(db["secret"], "vault:DB1_SSH");
    assert!(!r.body.contains(PASSWORD));

    let page = admin.get("/termius").await;
    assert_eq!(page.status, 200);
    for text in [
        "db-1",
        "10.0.0.5",
        "2200",
        "vault:DB1_SSH",
        "web-1.example.org",
        "termius-csv",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    assert!(!page.body.contains(PASSWORD));
    let page = admin.get("/termius?group_by=tag&tag=prod").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("lab-1"));
    assert!(
        page.body.contains("group_by=tag&#38;tag=prod"),
        "{}",
        page.body
    );
    let nodes = admin.get("/nodes").await;
    assert!(nodes.body.contains("href=\"/termius\""));
    t.stop().await;
}
