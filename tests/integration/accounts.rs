//! Issue 18 item 5: service accounts. CRUD (admins), each change with its activity row; the
//! key is a vault reference, never a value; `GET /api/accounts/aggregate` sums the LLM ledger
//! per account's provider (rows written through the gateway's ledger writer), this month and
//! in all, with the last use, and the tasks per worker account from real claims.

use crate::support::{Session, TestServer};
use architect::llm::ledger::{LedgerRow, Outcome};
use architect::llm::{Format, ProviderId};
use serde_json::{json, Value};

fn ledger_row(at: &str, provider: ProviderId, cost_nanos: i64) -> LedgerRow {
    LedgerRow {
        at: at.to_string(),
        provider: Some(provider),
        model: "m".into(),
        requested_model: "m".into(),
        format: Format::Anthropic,
        caller_token_id: None,
        caller: "architect".into(),
        project: None,
        input_tokens: 10,
        output_tokens: 20,
        cost_nanos,
        estimated: false,
        outcome: Outcome::Ok,
        status: 200,
        latency_ms: 5,
        stream: false,
        failovers: 0,
        error: None,
    }
}

async fn create(admin: &Session, body: Value) -> Value {
    let r = admin.post_json("/api/accounts", &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json
}

#[tokio::test]
async fn accounts_are_kept_by_admins_with_activity_and_never_a_key_value() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let admin = t.token("admin").await;
    let a = create(
        &admin,
        json!({"provider": "Claude", "account_name": "team-anthropic", "plan": "team",
               "secret_name": "vault:ANTHROPIC_API_KEY", "monthly_budget_usd": 250.0}),
    )
    .await;
    assert_eq!(a["provider"], "claude");
    assert_eq!(a["name"], "team-anthropic");
    assert_eq!(a["secret"], "vault:ANTHROPIC_API_KEY");
    assert_eq!(a["monthly_budget_usd"], 250.0);
    let id = a["id"].as_i64().unwrap();

    // Refusals: a duplicate, a key where its name belongs, a bad budget, unknown fields,
    // non-admins.
    let r = admin
        .post_json(
            "/api/accounts",
            &json!({"provider": "claude", "name": "team-anthropic"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    for (body, field) in [
        (
            json!({"provider": "openai", "name": "x", "secret": "sk-live key"}),
            "secret",
        ),
        (
            json!({"provider": "openai", "name": "x", "monthly_budget_usd": -1}),
            "monthly_budget_usd",
        ),
        (json!({"provider": "", "name": "x"}), "provider"),
    ] {
        let r = admin.post_json("/api/accounts", &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        assert_eq!(r.json["field"], field, "{}", r.body);
    }
    let r = admin
        .post_json(
            "/api/accounts",
            &json!({"provider": "x", "name": "y", "api_key": "sk"}),
        )
        .await;
    assert!(
        (400..500).contains(&r.status) && r.body.contains("api_key"),
        "{}",
        r.body
    );
    let member = t.user("mem", "member").await;
    let reader = t.token("read").await;
    for who in [&member, &reader] {
        let r = who
            .post_json("/api/accounts", &json!({"provider": "x", "name": "y"}))
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        let r = who.delete(&format!("/api/accounts/{id}")).await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let r = reader.get("/api/accounts").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json.as_array().unwrap().len(), 1);

    // Change, then remove; each with its activity row.
    let r = admin
        .put_json(
            &format!("/api/accounts/{id}"),
            &json!({"plan": "", "monthly_budget_usd": 300}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["plan"], json!(null));
    assert_eq!(r.json["monthly_budget_usd"], 300.0);
    let r = admin.delete(&format!("/api/accounts/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin.get(&format!("/api/accounts/{id}")).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = admin
        .get(&format!(
            "/api/activity?entity=service_account&entity_id={id}"
        ))
        .await;
    let actions: Vec<&str> = r
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["create", "update", "delete"] {
        assert!(actions.contains(&a), "{a}: {}", r.body);
    }
    assert!(
        r.body.contains("ANTHROPIC_API_KEY"),
        "the reference is logged: {}",
        r.body
    );
    t.stop().await;
}

#[tokio::test]
async fn the_aggregate_matches_the_ledger_and_the_task_queue() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let admin = t.token("admin").await;
    let claude = create(
        &admin,
        json!({"provider": "claude", "name": "team", "monthly_budget_usd": 10.0}),
    )
    .await;
    create(&admin, json!({"provider": "openai", "name": "personal"})).await;
    create(&admin, json!({"provider": "github", "name": "org-bot"})).await;

    // Ledger rows through the gateway's writer: three Claude calls this month, one last
    // month, two OpenAI calls this month, one Gemini call (no account).
    let now = t.clock.now();
    let this_month = architect::clock::format(now);
    let month_start = now
        .replace_day(1)
        .unwrap()
        .replace_time(time::Time::MIDNIGHT);
    let last_month = architect::clock::format(month_start - time::Duration::hours(1));
    let ledger = &t.state().llm.ledger;
    for (at, p, cost) in [
        (&last_month, ProviderId::Claude, 7_000_000_000),
        (&this_month, ProviderId::Claude, 1_000_000_000),
        (&this_month, ProviderId::Claude, 1_500_000_000),
        (&this_month, ProviderId::Claude, 500_000_000),
        (&this_month, ProviderId::OpenAi, 250_000_000),
        (&this_month, ProviderId::OpenAi, 250_000_000),
        (&this_month, ProviderId::Gemini, 1),
    ] {
        ledger.record(ledger_row(at, p, cost), Vec::new());
    }

    // Tasks: a worker token's worker claims two and completes one, fails none.
    let w = t.token("worker").await;
    let r = w
        .post_json(
            "/api/workers/register",
            &json!({"name": "w1", "node": "n1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let wid = r.json["id"].as_i64().unwrap();
    for _ in 0..2 {
        let r = admin
            .post_json("/api/tasks", &json!({"type": "noop"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut leases = Vec::new();
    for _ in 0..2 {
        let r = w
            .post_json("/api/tasks/claim", &json!({"worker_id": wid}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        leases.push((
            r.json["task"]["id"].as_i64().unwrap(),
            r.json["task"]["lease_token"].as_str().unwrap().to_string(),
        ));
    }
    let (done, lease) = &leases[0];
    let r = w
        .post_json(
            &format!("/api/tasks/{done}/complete"),
            &json!({"lease_token": lease, "result": {}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let reader = t.token("read").await;
    let r = reader.get("/api/accounts/aggregate").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let agg = &r.json;
    let of = |p: &str| {
        agg["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["provider"] == p)
            .unwrap_or_else(|| panic!("{p}: {agg}"))
            .clone()
    };
    let c = of("claude");
    assert_eq!(c["id"], claude["id"]);
    assert_eq!(c["calls_month"], 3, "{c}");
    assert_eq!(c["cost_nanos_month"], 3_000_000_000i64);
    assert_eq!(c["spend_usd_month"], 3.0);
    assert_eq!(c["calls_total"], 4);
    assert_eq!(c["cost_nanos_total"], 10_000_000_000i64);
    assert_eq!(c["last_used_at"], this_month.as_str());
    assert_eq!(c["budget_used_percent"], 30.0);
    assert_eq!(c["shares_provider"], false);
    let o = of("openai");
    assert_eq!(o["calls_month"], 2);
    assert_eq!(o["spend_usd_month"], 0.5);
    assert_eq!(o["budget_used_percent"], json!(null));
    let g = of("github");
    assert_eq!(g["calls_total"], 0);
    assert_eq!(g["last_used_at"], json!(null));
    assert_eq!(agg["unaccounted_providers"], json!(["gemini"]));
    let workers = agg["worker_accounts"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{agg}");
    assert_eq!(workers[0]["workers"], 1);
    assert_eq!(workers[0]["tasks"], 2);
    assert_eq!(workers[0]["completed"], 1);
    assert_eq!(workers[0]["running"], 1);
    assert_eq!(workers[0]["failed"], 0);
    assert!(
        workers[0]["account"].as_str().unwrap().contains("token"),
        "{agg}"
    );

    // The page shows the same.
    let page = t.admin().await.get("/accounts").await;
    assert_eq!(page.status, 200);
    for text in [
        "team",
        "personal",
        "org-bot",
        "gemini",
        "add-account",
        "worker-accounts",
    ] {
        assert!(page.body.contains(text), "{text}");
    }
    let viewer = t.user("v", "viewer").await;
    let page = viewer.get("/accounts").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("add-account"));
    t.stop().await;
}

#[tokio::test]
async fn the_accounts_page_adds_and_removes() {
    let t = TestServer::start_with(|c| c.nodes.local_node = false).await;
    let admin = t.admin().await;
    let r = admin
        .post_form(
            "/accounts",
            &[
                ("provider", "openai"),
                ("name", "ops"),
                ("plan", "pay-as-you-go"),
                ("secret", "OPENAI_KEY"),
                ("monthly_budget_usd", "40"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let list = admin.get("/api/accounts").await;
    let a = &list.json[0];
    assert_eq!(a["secret"], "vault:OPENAI_KEY");
    assert_eq!(a["monthly_budget_usd"], 40.0);
    let r = admin
        .post_form(
            "/accounts",
            &[
                ("provider", "x"),
                ("name", "y"),
                ("monthly_budget_usd", "lots"),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        admin
            .get("/api/accounts")
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let id = a["id"].as_i64().unwrap();
    let r = admin
        .post_form(&format!("/accounts/{id}/remove"), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(admin.get("/api/accounts").await.json, json!([]));
    t.stop().await;
}
