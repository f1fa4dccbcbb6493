//! SQL of the LLM gateway: ledger batches, failover events, the price table, budgets and the
//! aggregates behind `/api/llm-metrics/*` and the dashboard. Nothing else touches these tables.

use super::ledger::{FailoverEvent, LedgerRow};
use super::*;
use crate::db::Db;
use serde::Serialize;

/// Writes a batch of ledger rows and failover events in one transaction.
pub async fn insert_batch(
    db: &Db,
    rows: &[LedgerRow],
    events: &[FailoverEvent],
) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_write(db).await?;
    for r in rows {
        sqlx::query(
            "INSERT INTO llm_ledger (at, provider, model, requested_model, format, caller_token_id, caller, project,
                input_tokens, output_tokens, cost_nanos, estimated, outcome, status, latency_ms, stream, failovers, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(&r.at)
        .bind(r.provider.map(|p| p.as_str()))
        .bind(&r.model)
        .bind(&r.requested_model)
        .bind(r.format.as_str())
        .bind(r.caller_token_id)
        .bind(&r.caller)
        .bind(r.project.as_deref())
        .bind(i64::try_from(r.input_tokens).unwrap_or(i64::MAX))
        .bind(i64::try_from(r.output_tokens).unwrap_or(i64::MAX))
        .bind(r.cost_nanos)
        .bind(i64::from(r.estimated))
        .bind(r.outcome.as_str())
        .bind(i64::from(r.status))
        .bind(i64::try_from(r.latency_ms).unwrap_or(i64::MAX))
        .bind(i64::from(r.stream))
        .bind(i64::from(r.failovers))
        .bind(r.error.as_deref())
        .execute(&mut *tx)
        .await?;
    }
    for e in events {
        sqlx::query(
            "INSERT INTO llm_failover_events (at, from_provider, to_provider, kind, reason, caller_token_id, project)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.at)
        .bind(e.from.as_str())
        .bind(e.to.map(|p| p.as_str()))
        .bind(e.kind)
        .bind(&e.reason)
        .bind(e.caller_token_id)
        .bind(e.project.as_deref())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

// ---- prices ----

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Price {
    pub id: i64,
    pub provider: String,
    pub model: String,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    pub updated_by: String,
    pub updated_at: String,
}

pub async fn list_prices(db: &Db) -> Result<Vec<Price>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, provider, model, input_usd_per_mtok, output_usd_per_mtok, updated_by, updated_at
         FROM llm_prices ORDER BY provider, model",
    )
    .fetch_all(db)
    .await
}

/// Sets the price of (provider, model), adding the row when it is new.
pub async fn set_price<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    db: E,
    provider: ProviderId,
    model: &str,
    input: f64,
    output: f64,
    by: &str,
    now: &str,
) -> Result<Price, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO llm_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, updated_by, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (provider, model) DO UPDATE SET input_usd_per_mtok = excluded.input_usd_per_mtok,
             output_usd_per_mtok = excluded.output_usd_per_mtok, updated_by = excluded.updated_by, updated_at = excluded.updated_at
         RETURNING id, provider, model, input_usd_per_mtok, output_usd_per_mtok, updated_by, updated_at",
    )
    .bind(provider.as_str())
    .bind(model)
    .bind(input)
    .bind(output)
    .bind(by)
    .bind(now)
    .fetch_one(db)
    .await
}

pub async fn delete_price<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    db: E,
    id: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM llm_prices WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() > 0)
}

// ---- budgets ----

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct BudgetRow {
    pub id: i64,
    pub scope: String,
    pub target: String,
    pub period: String,
    pub limit_usd: f64,
    pub warn_ratio: f64,
    pub created_by: String,
    pub created_at: String,
}

pub async fn list_budgets(db: &Db) -> Result<Vec<BudgetRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, scope, target, period, limit_usd, warn_ratio, created_by, created_at FROM llm_budgets ORDER BY id")
        .fetch_all(db)
        .await
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_budget<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    db: E,
    scope: &str,
    target: &str,
    period: &str,
    limit_usd: f64,
    warn_ratio: f64,
    by: &str,
    now: &str,
) -> Result<BudgetRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO llm_budgets (scope, target, period, limit_usd, warn_ratio, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, scope, target, period, limit_usd, warn_ratio, created_by, created_at",
    )
    .bind(scope)
    .bind(target)
    .bind(period)
    .bind(limit_usd)
    .bind(warn_ratio)
    .bind(by)
    .bind(now)
    .fetch_one(db)
    .await
}

pub async fn delete_budget<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    db: E,
    id: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM llm_budgets WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Spend of a caller token since `since` (nano-dollars).
pub async fn spent_by_token(db: &Db, token_id: i64, since: &str) -> Result<Nanos, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) FROM llm_ledger WHERE caller_token_id = $1 AND at >= $2")
        .bind(token_id)
        .bind(since)
        .fetch_one(db)
        .await
}

/// Spend of a project since `since` (nano-dollars).
pub async fn spent_by_project(db: &Db, project: &str, since: &str) -> Result<Nanos, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) FROM llm_ledger WHERE project = $1 AND at >= $2",
    )
    .bind(project)
    .bind(since)
    .fetch_one(db)
    .await
}

// ---- aggregates ----

#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow)]
pub struct Totals {
    pub requests: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub estimated: i64,
    pub failovers: i64,
}

const TOTALS: &str = "COUNT(*) AS requests,
    COALESCE(SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), 0) AS succeeded,
    COALESCE(SUM(CASE WHEN outcome IN ('failed', 'cut') THEN 1 ELSE 0 END), 0) AS failed,
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos,
    CAST(COALESCE(SUM(estimated), 0) AS BIGINT) AS estimated,
    CAST(COALESCE(SUM(failovers), 0) AS BIGINT) AS failovers";

pub async fn totals_since(db: &Db, since: &str) -> Result<Totals, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {TOTALS} FROM llm_ledger WHERE at >= $1"))
        .bind(since)
        .fetch_one(db)
        .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct GroupTotals {
    /// Provider, model, caller, project or day, by the query.
    pub key: String,
    pub requests: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub estimated: i64,
    pub failovers: i64,
}

/// What ledger totals can be grouped by.
#[derive(Debug, Clone, Copy)]
pub enum GroupBy {
    Provider,
    Model,
    Caller,
    Project,
    Day,
}

pub async fn totals_by(db: &Db, by: GroupBy, since: &str) -> Result<Vec<GroupTotals>, sqlx::Error> {
    // The grouping expressions are fixed text chosen by the enum, never input.
    let key = match by {
        GroupBy::Provider => "COALESCE(provider, '(none)')",
        GroupBy::Model => "CASE WHEN model = '' THEN '(none)' ELSE model END",
        GroupBy::Caller => "caller || CASE WHEN caller_token_id IS NULL THEN '' ELSE ' (token ' || caller_token_id || ')' END",
        GroupBy::Project => "COALESCE(project, '(none)')",
        GroupBy::Day => "substr(at, 1, 10)",
    };
    let order = match by {
        GroupBy::Day => "key",
        _ => "cost_nanos DESC, requests DESC, key",
    };
    sqlx::query_as(&format!(
        "SELECT {key} AS key, {TOTALS} FROM llm_ledger WHERE at >= $1 GROUP BY 1 ORDER BY {order} LIMIT 200"
    ))
    .bind(since)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FailoverRow {
    pub id: i64,
    pub at: String,
    pub from_provider: String,
    pub to_provider: Option<String>,
    pub kind: String,
    pub reason: String,
    pub caller_token_id: Option<i64>,
    pub project: Option<String>,
}

pub async fn failover_history(db: &Db, limit: i64) -> Result<Vec<FailoverRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, from_provider, to_provider, kind, reason, caller_token_id, project
         FROM llm_failover_events ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn failover_count_since(db: &Db, since: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM llm_failover_events WHERE at >= $1")
        .bind(since)
        .fetch_one(db)
        .await
}
