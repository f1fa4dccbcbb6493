//! Issue 18 item 4: nodes carry how to reach them. An admin sets address, SSH user and port,
//! role, services, tags and the vault reference of the SSH secret (`PUT /api/nodes/{id}`, the
//! node page's form), each change with its activity row; others are refused; bad values name
//! their field; an agent's re-registration keeps what it does not send; `serve`'s own agent
//! reports the host's addresses.

use crate::support::{until, TestServer};
use serde_json::json;

#[tokio::test]
async fn an_admin_sets_how_a_node_is_reached_and_others_cannot() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let agent = t.token("agent").await;
    let admin = t.admin().await;
    let r = agent
        .post_json(
            "/api/nodes",
            &json!({"name": "db-1", "hostname": "db-1.lan"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json["id"].as_i64().unwrap();
    assert_eq!(r.json["address"], json!(null));
    assert_eq!(r.json["services"], json!([]));

    let change = json!({"address": "db-1.example.net", "ssh_user": "ops", "ssh_port": 2200,
                        "role": "database", "services": ["postgres"], "tags": ["prod", "eu"],
                        "ssh_secret": "vault:DB1_SSH_KEY"});
    let r = admin.put_json(&format!("/api/nodes/{id}"), &change).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["address"], "db-1.example.net");
    assert_eq!(r.json["ssh_port"], 2200);
    assert_eq!(r.json["tags"], json!(["eu", "prod"]));
    assert_eq!(r.json["ssh_secret"], "vault:DB1_SSH_KEY");

    // Its activity row says what changed.
    let r = admin
        .get(&format!("/api/activity?entity=node&entity_id={id}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.json.as_array().cloned().unwrap_or_default();
    let row = rows
        .iter()
        .find(|e| e["action"] == "update")
        .unwrap_or_else(|| panic!("no update row: {}", r.body));
    assert_eq!(row["details"]["reach"]["after"]["ssh_user"], "ops");
    assert_eq!(row["details"]["reach"]["before"]["ssh_user"], json!(null));

    // Refused for everyone but admins, and nothing changed.
    let member = t.user("mia", "member").await;
    let reader = t.token("read").await;
    for who in [&member, &reader, &agent] {
        let r = who
            .put_json(&format!("/api/nodes/{id}"), &json!({"ssh_user": "evil"}))
            .await;
        assert!(r.status == 401 || r.status == 403, "{}", r.body);
    }
    // Bad values name their field; a secret's value is refused where its name belongs.
    for (body, field) in [
        (json!({"ssh_port": 0x1_0000}), "ssh_port"),
        (json!({"ssh_user": "-oProxyCommand=x"}), "ssh_user"),
        (json!({"address": "two words"}), "address"),
        (json!({"ssh_secret": "hunter2"}), "ssh_secret"),
        (json!({"tags": ["a\u{7}"]}), "tags"),
    ] {
        let r = admin.put_json(&format!("/api/nodes/{id}"), &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.json["field"], field, "{}", r.body);
    }
    let r = admin
        .put_json("/api/nodes/999999", &json!({"role": "x"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // The agent registering again keeps what it does not send.
    let r = agent
        .post_json(
            "/api/nodes",
            &json!({"name": "db-1", "addresses": ["10.1.2.3", "fd00::3"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["address"], "db-1.example.net");
    assert_eq!(r.json["ssh_user"], "ops");
    assert_eq!(r.json["addresses"], json!(["10.1.2.3", "fd00::3"]));

    // Clearing: empty text, an empty list, port 0.
    let r = admin
        .put_json(
            &format!("/api/nodes/{id}"),
            &json!({"address": "", "ssh_port": 0, "tags": []}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["address"], json!(null));
    assert_eq!(r.json["ssh_port"], json!(null));
    assert_eq!(r.json["tags"], json!([]));
    assert_eq!(r.json["role"], "database");
    t.stop().await;
}

#[tokio::test]
async fn the_node_page_shows_and_edits_how_to_reach_it() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let agent = t.token("agent").await;
    let admin = t.admin().await;
    let r = agent
        .post_json(
            "/api/nodes",
            &json!({"name": "web-1", "addresses": ["192.0.2.10"]}),
        )
        .await;
    let id = r.json["id"].as_i64().unwrap();
    let page = admin.get(&format!("/nodes/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("192.0.2.10:22"), "{}", page.body);
    assert!(page.body.contains("node-reach-form"));

    let r = admin
        .post_form(
            &format!("/nodes/{id}/reach"),
            &[
                ("address", "web-1.example.org"),
                ("ssh_user", "deploy"),
                ("ssh_port", "2022"),
                ("role", "web"),
                ("services", "nginx, certbot"),
                ("tags", "prod"),
                ("ssh_secret", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let page = admin.get(&format!("/nodes/{id}")).await;
    assert!(
        page.body.contains("deploy@web-1.example.org:2022"),
        "{}",
        page.body
    );
    assert!(page.body.contains("certbot, nginx"), "{}", page.body);
    // A bad port comes back as an error on the page, nothing saved.
    let r = admin
        .post_form(&format!("/nodes/{id}/reach"), &[("ssh_port", "twenty")])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = admin.get(&format!("/api/nodes/{id}")).await;
    assert_eq!(r.json["ssh_port"], 2022);
    // A viewer sees the values but no form.
    let viewer = t.user("vic", "viewer").await;
    let page = viewer.get(&format!("/nodes/{id}")).await;
    assert!(page.body.contains("deploy@web-1.example.org:2022"));
    assert!(!page.body.contains("node-reach-form"));
    t.stop().await;
}

#[tokio::test]
async fn the_servers_own_agent_reports_the_hosts_addresses() {
    let t = TestServer::start().await;
    let id = until("the local node", || async { t.state().nodes.local_node() }).await;
    let admin = t.admin().await;
    let r = admin.get(&format!("/api/nodes/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let expected = architect::nodes::sampler::addresses();
    assert_eq!(r.json["addresses"], json!(expected), "{}", r.body);
    for a in &expected {
        let ip: std::net::IpAddr = a.parse().unwrap();
        assert!(!ip.is_loopback(), "{a}");
    }
    t.stop().await;
}
