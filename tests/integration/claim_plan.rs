//! The plan PostgreSQL caches for a task claim (`tasks::store::claim_statement`, the pick from
//! `db::Backend::claim`). A prepared statement runs on a generic plan after five executions;
//! for the claim, whose `LIMIT $6` is a parameter, that plan once matched the picked ids to
//! the table by a hash join over a sequential scan of the whole queue: one scan per claim,
//! growing with the queue (tasks are never purged). The ids now come back through an array,
//! looked up by primary key in any plan.
//!
//! Always on PostgreSQL, whichever backend the suite runs on (a database of its own on the
//! run's private cluster, as postgres.rs).

use crate::support::PgCluster;
use architect::db::{self, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_claim_plan_looks_tasks_up_by_key_instead_of_scanning_the_queue() {
    let Some(pg) = PgCluster::shared() else {
        return;
    };
    let url = pg.create_database("claim_plan").await;
    let pool = db::open(&url).await.unwrap();
    db::migrate(&pool).await.unwrap();
    // A queue big enough for the planner to care, with statistics.
    sqlx::query(
        "INSERT INTO task_queue (task_type, status, max_retries, timeout_s, run_after,
             created_by, created_at, updated_at)
         SELECT 'noop', 'pending', 3, 60, '2026-01-01T00:00:00.000000Z', 'test',
             '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'
         FROM generate_series(1, 5000)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE task_queue")
        .execute(&pool)
        .await
        .unwrap();

    let mut conn = pool.acquire().await.unwrap();
    // One task type, no tags: $1 worker, $2 lease secret, $3 expiry, $4 now, $5 node, $6 how
    // many, $7 the type.
    let sql = architect::tasks::store::claim_statement(Backend::Postgres, 1, 0);
    sqlx::raw_sql(&format!(
        "PREPARE claim(bigint, text, text, text, text, bigint, text) AS {sql}"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN EXECUTE claim(1, 'secret', '2100-01-01T00:00:00.000000Z',
             '2100-01-01T00:00:00.000000Z', 'node', 1, 'noop')",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let plan = plan.join("\n");
    assert!(
        !plan.contains("Seq Scan on task_queue"),
        "a claim must not scan the queue:\n{plan}"
    );
    assert!(
        plan.contains("Index Scan using task_queue_pkey"),
        "the picked ids are looked up by key:\n{plan}"
    );
    assert!(
        plan.contains("Index Scan using task_queue_claim"),
        "the pick walks the claim index:\n{plan}"
    );
    drop(conn);
    pool.close().await;
}
