//! Issue 18 item 7: scripts written for the original keep working. Each call below sends the
//! original's field names (SPEC.md's endpoint list and examples) to the real server and checks
//! the answer in architect's own shape; unknown fields are still refused, naming the field.

use crate::support::TestServer;
use serde_json::json;

#[tokio::test]
async fn the_originals_payloads_are_accepted_and_answered_in_architects_shape() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let agent = t.token("agent").await;
    let admin = t.token("admin").await;
    let worker = t.token("worker").await;

    // POST /api/nodes {id, hostname, ip_address, ssh_port, ssh_user, role, services}
    let r = agent
        .post_json(
            "/api/nodes",
            &json!({"id": "gpu-box-1", "hostname": "gpu-box-1.lan", "ip_address": "10.0.4.21",
                    "ssh_port": 2222, "ssh_user": "deploy", "role": "worker",
                    "services": ["ollama", "docker"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let node = &r.json;
    assert_eq!(node["name"], "gpu-box-1");
    assert_eq!(node["hostname"], "gpu-box-1.lan");
    assert_eq!(node["address"], "10.0.4.21");
    assert_eq!(node["ssh_port"], 2222);
    assert_eq!(node["ssh_user"], "deploy");
    assert_eq!(node["role"], "worker");
    assert_eq!(node["services"], json!(["docker", "ollama"]));
    let id = node["id"].as_i64().unwrap();

    // POST /api/nodes/{id}/heartbeat {cpu_usage, memory_usage, disk_usage}: percentages, the
    // path naming the node as the original does (its own id, architect's name).
    let r = agent
        .post_json(
            "/api/nodes/gpu-box-1/heartbeat",
            &json!({"cpu_usage": 37.5, "memory_usage": 42.25, "disk_usage": 81.0}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["id"], id);
    assert_eq!(r.json["status"], "online");
    let m = &r.json["metrics"];
    assert_eq!(m["cpu_percent"], 37.5);
    assert_eq!(m["memory_used"], 4225);
    assert_eq!(m["memory_total"], 10_000);
    assert_eq!(
        m["disks"],
        json!([{"mount": "/", "used": 8100, "total": 10_000}])
    );
    assert!(m.get("memory_usage").is_none(), "{m}");
    // The history has the sample as percentages too.
    let r = agent.get(&format!("/api/nodes/{id}/metrics")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("42.2") || r.body.contains("42.3"),
        "{}",
        r.body
    );
    // A percentage out of range names its field.
    let r = agent
        .post_json(
            &format!("/api/nodes/{id}/heartbeat"),
            &json!({"cpu_usage": 1.0, "memory_usage": 140.0}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json["field"], "memory_usage", "{}", r.body);

    // POST /api/tasks {task_type, task_data, timeout_seconds}
    let r = admin
        .post_json(
            "/api/tasks",
            &json!({"task_type": "shell", "task_data": {"command": "true"}, "timeout_seconds": 90}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["type"], "shell");
    assert_eq!(r.json["payload"], json!({"command": "true"}));
    assert_eq!(r.json["timeout_s"], 90);

    // POST /api/workers/register {id, node_id, worker_type}
    let r = worker
        .post_json(
            "/api/workers/register",
            &json!({"id": "worker-7", "node_id": "gpu-box-1", "worker_type": "shell"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json["name"], "worker-7");
    assert_eq!(r.json["node"], "gpu-box-1");
    assert_eq!(r.json["types"], json!(["shell"]));

    // POST /api/activity with `details` as text
    let r = admin
        .post_json(
            "/api/activity",
            &json!({"action": "deploy", "entity_type": "script", "details": "rolled out v2"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin.get("/api/activity?entity=script").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(r#""message":"rolled out v2""#),
        "{}",
        r.body
    );

    // SPEC's other examples: an error report and a secret.
    let r = t
        .anon()
        .post_json(
            "/api/errors",
            &json!({"node_id": "my-node", "error_type": "error", "message": "Something went wrong",
                    "source": "my_module.py", "stack_trace": "..."}),
        )
        .await;
    assert!(
        r.status == 201 || r.status == 200 || r.status == 202,
        "{}",
        r.body
    );
    let r = admin
        .post_json(
            "/api/secrets",
            &json!({"name": "GITHUB_TOKEN", "value": "ghp_xxxxxxxxxxxx", "category": "token",
                    "description": "GitHub personal access token"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    t.stop().await;
}

#[tokio::test]
async fn unknown_fields_stay_errors_with_the_original_names_beside_them() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let agent = t.token("agent").await;
    let admin = t.token("admin").await;
    let worker = t.token("worker").await;
    let cases = [
        (
            &admin,
            "/api/tasks",
            json!({"task_type": "shell", "task_data": {}, "colour": "red"}),
            "colour",
        ),
        (
            &worker,
            "/api/workers/register",
            json!({"id": "w", "node_id": "n", "worker_type": "shell", "shoe_size": 9}),
            "shoe_size",
        ),
        (
            &agent,
            "/api/nodes",
            json!({"id": "n1", "ip_address": "10.0.0.1", "rack": "b"}),
            "rack",
        ),
        (
            &admin,
            "/api/activity",
            json!({"action": "a", "entity_type": "e", "details": "x", "extra": 1}),
            "extra",
        ),
    ];
    for (who, path, body, field) in cases {
        let r = who.post_json(path, &body).await;
        assert!(
            (400..500).contains(&r.status) && r.json["code"].is_string(),
            "{path}: {} {}",
            r.status,
            r.body
        );
        assert!(r.body.contains(field), "{path}: {}", r.body);
    }
    // Both names at once is a duplicate, not a silent pick.
    let r = admin
        .post_json(
            "/api/tasks",
            &json!({"type": "shell", "task_type": "shell"}),
        )
        .await;
    assert!((400..500).contains(&r.status), "{}", r.body);
    let r = agent.get("/api/nodes").await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(0), "{}", r.body);
    t.stop().await;
}
