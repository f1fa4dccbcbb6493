//! The LLM summaries answer from hourly roll-ups (issue 15 item 5, migration 0017): every
//! answer equals the same sum over the ledger rows themselves, across hour and day boundaries,
//! windows that start inside an hour, several providers, models, callers and projects (and the
//! rows without one), whether the rows came through the ledger flush or were in the ledger
//! before the roll-ups existed (the migration's backfill). The reference sums are the queries
//! the summaries ran over `llm_ledger` before the roll-ups, written out here.
//!
//! They run on whichever backend the suite runs on.

use crate::support::{self, PgCluster, TestBackend, TestServer};
use architect::db::{self, Db};
use architect::llm::ledger::{FailoverEvent, LedgerRow, Outcome};
use architect::llm::store::{self, GroupBy};
use architect::llm::{Format, ProviderId};
use serde_json::Value;
use time::OffsetDateTime;

/// The summaries' sums over the ledger itself, as they were written before the roll-ups.
const DIRECT_TOTALS: &str = "COUNT(*) AS requests,
    COALESCE(SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), 0) AS succeeded,
    COALESCE(SUM(CASE WHEN outcome IN ('failed', 'cut') THEN 1 ELSE 0 END), 0) AS failed,
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos,
    CAST(COALESCE(SUM(estimated), 0) AS BIGINT) AS estimated,
    CAST(COALESCE(SUM(failovers), 0) AS BIGINT) AS failovers";

type Row = (String, i64, i64, i64, i64, i64, i64, i64, i64);

const GROUPINGS: [(&str, GroupBy); 5] = [
    ("provider", GroupBy::Provider),
    ("model", GroupBy::Model),
    ("caller", GroupBy::Caller),
    ("project", GroupBy::Project),
    ("day", GroupBy::Day),
];

async fn direct_by(db: &Db, by: &str, since: &str) -> Vec<Row> {
    let (key, order) = match by {
        "provider" => ("COALESCE(provider, '(none)')", "cost_nanos DESC, requests DESC, key"),
        "model" => ("CASE WHEN model = '' THEN '(none)' ELSE model END", "cost_nanos DESC, requests DESC, key"),
        "caller" => ("caller || CASE WHEN caller_token_id IS NULL THEN '' ELSE ' (token ' || caller_token_id || ')' END", "cost_nanos DESC, requests DESC, key"),
        "project" => ("COALESCE(project, '(none)')", "cost_nanos DESC, requests DESC, key"),
        "day" => ("substr(at, 1, 10)", "key"),
        other => panic!("no grouping {other}"),
    };
    sqlx::query_as(&format!(
        "SELECT {key} AS key, {DIRECT_TOTALS} FROM llm_ledger WHERE at >= $1 GROUP BY 1 ORDER BY {order} LIMIT 200"
    ))
    .bind(since)
    .fetch_all(db)
    .await
    .unwrap()
}

async fn direct_totals(db: &Db, since: &str) -> Row {
    sqlx::query_as(&format!(
        "SELECT '' AS key, {DIRECT_TOTALS} FROM llm_ledger WHERE at >= $1"
    ))
    .bind(since)
    .fetch_one(db)
    .await
    .unwrap()
}

async fn direct_failovers(db: &Db, since: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM llm_failover_events WHERE at >= $1")
        .bind(since)
        .fetch_one(db)
        .await
        .unwrap()
}

fn as_rows(v: &[store::GroupTotals]) -> Vec<Row> {
    v.iter()
        .map(|g| {
            (
                g.key.clone(),
                g.requests,
                g.succeeded,
                g.failed,
                g.input_tokens,
                g.output_tokens,
                g.cost_nanos,
                g.estimated,
                g.failovers,
            )
        })
        .collect()
}

fn json_rows(v: &Value) -> Vec<Row> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|g| {
            let n = |f: &str| g[f].as_i64().unwrap_or_else(|| panic!("{f} in {g}"));
            (
                g["key"].as_str().unwrap().to_string(),
                n("requests"),
                n("succeeded"),
                n("failed"),
                n("input_tokens"),
                n("output_tokens"),
                n("cost_nanos"),
                n("estimated"),
                n("failovers"),
            )
        })
        .collect()
}

/// The store's answers for `since` equal the direct sums, grouping by grouping.
async fn assert_same_as_ledger(db: &Db, since: &str) {
    for (name, by) in GROUPINGS {
        let rolled = as_rows(&store::totals_by(db, by, since).await.unwrap());
        assert_eq!(
            rolled,
            direct_by(db, name, since).await,
            "by {name} since {since:?}"
        );
    }
    let t = store::totals_since(db, since).await.unwrap();
    assert_eq!(
        (
            String::new(),
            t.requests,
            t.succeeded,
            t.failed,
            t.input_tokens,
            t.output_tokens,
            t.cost_nanos,
            t.estimated,
            t.failovers
        ),
        direct_totals(db, since).await,
        "totals since {since:?}"
    );
    assert_eq!(
        store::failover_count_since(db, since).await.unwrap(),
        direct_failovers(db, since).await,
        "failovers since {since:?}"
    );
}

const PROVIDERS: [Option<ProviderId>; 5] = [
    Some(ProviderId::Claude),
    Some(ProviderId::OpenAi),
    Some(ProviderId::Ollama),
    None,
    Some(ProviderId::Gemini),
];
const MODELS: [&str; 4] = ["claude-sonnet-4", "gpt-4o", "", "llama3"];
const OUTCOMES: [Outcome; 6] = [
    Outcome::Ok,
    Outcome::Ok,
    Outcome::Failed,
    Outcome::Cut,
    Outcome::ClientError,
    Outcome::Refused,
];

/// Ledger row number `i`, finished at `at`: every combination of provider (or none), model
/// (or none), caller token (or none: a session), project (or none) and outcome comes round.
fn row(i: u64, at: OffsetDateTime) -> LedgerRow {
    let n = i as usize;
    let outcome = OUTCOMES[n % OUTCOMES.len()];
    LedgerRow {
        at: architect::clock::format(at),
        provider: PROVIDERS[n % PROVIDERS.len()],
        model: MODELS[n % MODELS.len()].into(),
        requested_model: "whatever".into(),
        format: if i % 2 == 0 {
            Format::Anthropic
        } else {
            Format::OpenAi
        },
        caller_token_id: [Some(7), Some(12), None][n % 3],
        caller: ["architect", "ana"][n % 2].into(),
        project: [Some("storefront"), None, Some("billing")][(n / 2) % 3].map(str::to_owned),
        input_tokens: 100 + i * 37,
        output_tokens: 20 + i % 11,
        cost_nanos: 1_000 * (i as i64 % 23) + 1,
        estimated: i % 5 == 0,
        outcome,
        status: if outcome == Outcome::Ok { 200 } else { 502 },
        latency_ms: 40 + i % 900,
        stream: i % 3 == 0,
        failovers: (i % 4) as u32,
        error: None,
    }
}

fn failover(i: u64, at: OffsetDateTime) -> FailoverEvent {
    FailoverEvent {
        at: architect::clock::format(at),
        from: ProviderId::Claude,
        to: PROVIDERS[i as usize % PROVIDERS.len()],
        kind: "timeout",
        reason: format!("attempt {i}"),
        caller_token_id: Some(7),
        project: None,
    }
}

/// Rows over about four days back from `now`, 20 min 37 s apart (so hours and days hold
/// several, and windows cut through hours), none within five minutes of `now` minus a whole
/// number of days (where a `?days=N` window may start while a request is in flight).
fn history(now: OffsetDateTime) -> Vec<(u64, OffsetDateTime)> {
    (0..300u64)
        .map(|i| (i, now - time::Duration::seconds(60 + i as i64 * 1237)))
        .filter(|(_, at)| {
            let back = (now - *at).whole_seconds();
            (1..=4).all(|d| (back - d * 86_400).abs() > 300)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_summaries_from_the_roll_ups_equal_the_sums_over_the_ledger() {
    let server = TestServer::start().await;
    let db = server.state().db.clone();
    let now = server.clock.now();
    let rows = history(now);
    // Batches of several sizes through the flush, so roll-up rows are added to again (the
    // upsert), and the last third left in the write-behind buffer for the summaries' own flush.
    let (flushed, buffered) = rows.split_at(rows.len() * 2 / 3);
    for batch in flushed.chunks(37) {
        let ledger: Vec<LedgerRow> = batch.iter().map(|(i, at)| row(*i, *at)).collect();
        let events: Vec<FailoverEvent> = batch
            .iter()
            .filter(|(i, _)| i % 4 == 1)
            .map(|(i, at)| failover(*i, *at))
            .collect();
        store::insert_batch(&db, &ledger, &events).await.unwrap();
    }
    for (i, at) in buffered {
        server.state().llm.ledger.record(
            row(*i, *at),
            if i % 4 == 1 {
                vec![failover(*i, *at)]
            } else {
                Vec::new()
            },
        );
    }

    let s = server.token("read").await;
    // All time, through each endpoint (the summary flushes the buffer first).
    let r = s.get("/api/llm-metrics/summary").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["total_requests"], rows.len() as i64);
    let total = direct_totals(&db, "").await;
    assert_eq!(r.json["total_requests"], total.1);
    assert_eq!(r.json["successful_requests"], total.2);
    assert_eq!(r.json["failed_requests"], total.3);
    assert_eq!(r.json["input_tokens"], total.4);
    assert_eq!(r.json["output_tokens"], total.5);
    assert_eq!(r.json["total_cost_nanos"], total.6);
    assert_eq!(r.json["estimated_requests"], total.7);
    assert_eq!(r.json["failover_count"], direct_failovers(&db, "").await);
    assert!(
        r.json["failover_count"].as_i64().unwrap() > 20,
        "{}",
        r.json
    );
    assert_eq!(
        json_rows(&r.json["cost_by_provider"]),
        direct_by(&db, "provider", "").await
    );
    assert_eq!(
        json_rows(&r.json["cost_by_provider"]).len(),
        5,
        "four providers and none"
    );

    let r = s.get("/api/llm-metrics/providers").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let by_provider = direct_by(&db, "provider", "").await;
    for p in r.json.as_array().unwrap() {
        let name = p["provider"].as_str().unwrap();
        let want = by_provider.iter().find(|g| g.0 == name);
        assert_eq!(p["requests_served"], want.map_or(0, |g| g.2), "{name}");
        assert_eq!(p["input_tokens"], want.map_or(0, |g| g.4), "{name}");
        assert_eq!(p["output_tokens"], want.map_or(0, |g| g.5), "{name}");
        assert_eq!(p["cost_nanos"], want.map_or(0, |g| g.6), "{name}");
    }

    // Windows of whole days back from now: each starts inside an hour.
    for days in [1, 2, 3] {
        let r = s
            .get(&format!("/api/llm-metrics/summary?days={days}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let since = r.json["since"].as_str().unwrap().to_string();
        let t = direct_totals(&db, &since).await;
        assert!(t.1 > 0 && t.1 < rows.len() as i64, "{days} days: {t:?}");
        assert_eq!(r.json["total_requests"], t.1, "{days} days");
        assert_eq!(r.json["total_cost_nanos"], t.6, "{days} days");
        assert_eq!(r.json["input_tokens"], t.4, "{days} days");
        assert_eq!(
            r.json["failover_count"],
            direct_failovers(&db, &since).await
        );
        assert_eq!(
            json_rows(&r.json["cost_by_provider"]),
            direct_by(&db, "provider", &since).await
        );
        for (name, _) in GROUPINGS {
            // The server takes its own `since` when the request arrives: no row lies within
            // five minutes of the window's start, so any instant in that span gives one answer.
            let before = architect::clock::format(server.clock.now() - time::Duration::days(days));
            let r = s
                .get(&format!("/api/llm-metrics/costs?by={name}&days={days}"))
                .await;
            let after = architect::clock::format(server.clock.now() - time::Duration::days(days));
            assert_eq!(r.status, 200, "{}", r.body);
            let want = direct_by(&db, name, &before).await;
            assert_eq!(want, direct_by(&db, name, &after).await);
            assert!(!want.is_empty());
            assert_eq!(json_rows(&r.json), want, "by {name}, {days} days");
        }
    }
    for (name, _) in GROUPINGS {
        let r = s.get(&format!("/api/llm-metrics/costs?by={name}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            json_rows(&r.json),
            direct_by(&db, name, "").await,
            "by {name}"
        );
    }

    // Any start: a row's own instant (inclusive), just after it, an hour's first instant, a
    // day, the hour's text, before everything, after everything.
    let mut starts = vec![
        String::new(),
        "2000".to_string(),
        architect::clock::format(now).get(..10).unwrap().to_string(),
        architect::clock::format(now - time::Duration::days(2))
            .get(..13)
            .unwrap()
            .to_string(),
        format!(
            "{}:00:00.000000Z",
            architect::clock::format(now - time::Duration::hours(30))
                .get(..13)
                .unwrap()
        ),
        architect::clock::format(now + time::Duration::hours(2)),
    ];
    for (_, at) in rows.iter().step_by(23) {
        starts.push(architect::clock::format(*at));
        starts.push(architect::clock::format(
            *at + time::Duration::microseconds(1),
        ));
    }
    for since in &starts {
        assert_same_as_ledger(&db, since).await;
    }
    server.stop().await;
}

/// Rows written before migration 0017 existed are in the roll-ups after it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_0017_rolls_up_the_ledger_rows_already_there() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, folder) = match support::backend() {
        TestBackend::Sqlite => (db::open_sqlite(tmp.path()).await.unwrap(), "sqlite"),
        TestBackend::Postgres => {
            let Some(pg) = PgCluster::shared() else {
                return;
            };
            let url = pg.create_database("llm_rollup_backfill").await;
            (db::open(&url).await.unwrap(), "postgres")
        }
    };
    // The schema as it was before 0017.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let mut before = sqlx::migrate::Migrator::new(dir).await.unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 17)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&db).await.unwrap();
    let now = architect::clock::Clock::System.now();
    let rows = history(now);
    for (i, at) in &rows {
        let r = row(*i, *at);
        sqlx::query(
            "INSERT INTO llm_ledger (at, provider, model, requested_model, format, caller_token_id, caller, project,
                input_tokens, output_tokens, cost_nanos, estimated, outcome, status, latency_ms, stream, failovers, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, NULL)",
        )
        .bind(&r.at)
        .bind(r.provider.map(|p| p.as_str()))
        .bind(&r.model)
        .bind(&r.requested_model)
        .bind(r.format.as_str())
        .bind(r.caller_token_id)
        .bind(&r.caller)
        .bind(r.project.as_deref())
        .bind(r.input_tokens as i64)
        .bind(r.output_tokens as i64)
        .bind(r.cost_nanos)
        .bind(i64::from(r.estimated))
        .bind(r.outcome.as_str())
        .bind(i64::from(r.status))
        .bind(r.latency_ms as i64)
        .bind(i64::from(r.stream))
        .bind(i64::from(r.failovers))
        .execute(&db)
        .await
        .unwrap();
        if i % 3 == 0 {
            sqlx::query(
                "INSERT INTO llm_failover_events (at, from_provider, to_provider, kind, reason)
                 VALUES ($1, 'claude', NULL, 'timeout', 'slow')",
            )
            .bind(&r.at)
            .execute(&db)
            .await
            .unwrap();
        }
    }
    assert!(db::migrate(&db).await.unwrap() >= 1, "0017 applied");
    let rolled: i64 =
        sqlx::query_scalar("SELECT CAST(SUM(requests) AS BIGINT) FROM llm_ledger_hours")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(rolled, rows.len() as i64, "every row is in the roll-up");
    for since in [
        String::new(),
        architect::clock::format(now - time::Duration::hours(40)),
        architect::clock::format(now - time::Duration::days(3))
            .get(..10)
            .unwrap()
            .to_string(),
    ] {
        assert_same_as_ledger(&db, &since).await;
    }
    // And a flush after the migration adds to the backfilled hours.
    let extra: Vec<LedgerRow> = rows
        .iter()
        .take(40)
        .map(|(i, at)| row(i + 1000, *at))
        .collect();
    store::insert_batch(&db, &extra, &[failover(1, now)])
        .await
        .unwrap();
    assert_same_as_ledger(&db, "").await;
    assert_same_as_ledger(
        &db,
        &architect::clock::format(now - time::Duration::hours(5)),
    )
    .await;
    db.close().await;
}
