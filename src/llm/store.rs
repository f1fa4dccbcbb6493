//! SQL of the LLM gateway: ledger batches, failover events, the price table, budgets and the
//! aggregates behind `/api/llm-metrics/*` and the dashboard. Nothing else touches these tables.
//!
//! The aggregates answer from daily and hourly roll-ups (`llm_ledger_days`,
//! `llm_ledger_hours`, `llm_failover_hours`, migration 0017), written by [`insert_batch`] in the
//! transaction that inserts the rows, so a summary's cost follows the days of history and the
//! callers, not the ledger's rows. A window that starts inside a day takes the rest of that day
//! from the hourly roll-up and, when it starts inside an hour, that hour's rows after its
//! start from the ledger itself (an `at` index range of at most one hour) ([`Window`]), so
//! every answer equals the same sum over the ledger, to the row.

use super::ledger::{FailoverEvent, LedgerRow};
use super::*;
use crate::db::Db;
use serde::Serialize;

/// Writes a batch of ledger rows and failover events, and adds them to the hourly roll-ups, in
/// one transaction.
pub async fn insert_batch(
    db: &Db,
    rows: &[LedgerRow],
    events: &[FailoverEvent],
) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_write(db).await?;
    let mut row_ids = Vec::with_capacity(rows.len());
    for r in rows {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO llm_ledger (at, provider, model, requested_model, format, caller_token_id, caller, project,
                input_tokens, output_tokens, cost_nanos, estimated, outcome, status, latency_ms, stream, failovers, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
             RETURNING id",
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
        .fetch_one(&mut *tx)
        .await?;
        row_ids.push(id);
    }
    let mut event_ids = Vec::with_capacity(events.len());
    for e in events {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO llm_failover_events (at, from_provider, to_provider, kind, reason, caller_token_id, project)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING id",
        )
        .bind(&e.at)
        .bind(e.from.as_str())
        .bind(e.to.map(|p| p.as_str()))
        .bind(e.kind)
        .bind(&e.reason)
        .bind(e.caller_token_id)
        .bind(e.project.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        event_ids.push(id);
    }
    for ids in row_ids.chunks(ROLLUP_CHUNK) {
        for (table, period, first) in [
            ("llm_ledger_hours", "hour", "substr(at, 1, 13)"),
            ("llm_ledger_days", "day", "substr(at, 1, 10)"),
        ] {
            let sql = format!(
                "INSERT INTO {table} ({period}, provider, model, caller, project, requests, succeeded,
                     failed, input_tokens, output_tokens, cost_nanos, estimated, failovers)
                 SELECT {first}, {ROLLUP_KEYS}, {TOTALS} FROM llm_ledger WHERE id IN ({})
                 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
                 ON CONFLICT ({period}, provider, model, caller, project) DO UPDATE SET
                     requests = {table}.requests + excluded.requests,
                     succeeded = {table}.succeeded + excluded.succeeded,
                     failed = {table}.failed + excluded.failed,
                     input_tokens = {table}.input_tokens + excluded.input_tokens,
                     output_tokens = {table}.output_tokens + excluded.output_tokens,
                     cost_nanos = {table}.cost_nanos + excluded.cost_nanos,
                     estimated = {table}.estimated + excluded.estimated,
                     failovers = {table}.failovers + excluded.failovers",
                crate::db::placeholders(1, ids.len())
            );
            let mut q = sqlx::query(&sql);
            for id in ids {
                q = q.bind(*id);
            }
            q.execute(&mut *tx).await?;
        }
    }
    for ids in event_ids.chunks(ROLLUP_CHUNK) {
        let sql = format!(
            "INSERT INTO llm_failover_hours (hour, events)
             SELECT substr(at, 1, 13), COUNT(*) FROM llm_failover_events WHERE id IN ({})
             GROUP BY 1 ORDER BY 1
             ON CONFLICT (hour) DO UPDATE SET events = llm_failover_hours.events + excluded.events",
            crate::db::placeholders(1, ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Ledger rows (or failover events) added to the roll-ups per statement: well under both
/// backends' limits on bound parameters.
const ROLLUP_CHUNK: usize = 500;

/// The roll-ups' key columns after the hour or day, as SQL over a ledger row: the grouping keys
/// of [`totals_by`]. Migration 0017 fills the roll-ups with the same expressions. (`ORDER BY 1, …` in the upsert makes concurrent flushes, two replicas on one
/// PostgreSQL, lock shared roll-up rows in one order: they wait, never deadlock.)
const ROLLUP_KEYS: &str = "COALESCE(provider, '(none)'),
    CASE WHEN model = '' THEN '(none)' ELSE model END,
    caller || CASE WHEN caller_token_id IS NULL THEN '' ELSE ' (token ' || caller_token_id || ')' END,
    COALESCE(project, '(none)')";

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

/// What these caller tokens spent in all (nano-dollars) and how many requests they made: an
/// autopilot run's cost, over the tokens of the sessions it started.
pub async fn usage_of_tokens(db: &Db, token_ids: &[i64]) -> Result<(Nanos, i64), sqlx::Error> {
    if token_ids.is_empty() {
        return Ok((0, 0));
    }
    // `$N` placeholders by hand: sqlx's QueryBuilder writes `?` for `Any`, which PostgreSQL
    // does not take.
    let list: Vec<String> = (1..=token_ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT), COUNT(*) FROM llm_ledger \
         WHERE caller_token_id IN ({})",
        list.join(", ")
    );
    let mut q = sqlx::query_as::<_, (Nanos, i64)>(&sql);
    for id in token_ids {
        q = q.bind(*id);
    }
    q.fetch_one(db).await
}

/// Cost (nano-dollars) and count of the requests one in-process caller made for a project
/// since `since` (the project's index, then the caller).
pub async fn usage_of_caller(
    db: &Db,
    project: &str,
    caller: &str,
    since: &str,
) -> Result<(Nanos, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT), COUNT(*) FROM llm_ledger \
         WHERE project = $1 AND at >= $2 AND caller = $3",
    )
    .bind(project)
    .bind(since)
    .bind(caller)
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

/// The measures of a set of ledger rows (one row each).
const TOTALS: &str = "COUNT(*) AS requests,
    COALESCE(SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), 0) AS succeeded,
    COALESCE(SUM(CASE WHEN outcome IN ('failed', 'cut') THEN 1 ELSE 0 END), 0) AS failed,
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos,
    CAST(COALESCE(SUM(estimated), 0) AS BIGINT) AS estimated,
    CAST(COALESCE(SUM(failovers), 0) AS BIGINT) AS failovers";

/// The measures of a set of roll-up rows: [`TOTALS`] summed again.
const ROLLED_TOTALS: &str = "CAST(COALESCE(SUM(requests), 0) AS BIGINT) AS requests,
    CAST(COALESCE(SUM(succeeded), 0) AS BIGINT) AS succeeded,
    CAST(COALESCE(SUM(failed), 0) AS BIGINT) AS failed,
    CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens,
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens,
    CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos,
    CAST(COALESCE(SUM(estimated), 0) AS BIGINT) AS estimated,
    CAST(COALESCE(SUM(failovers), 0) AS BIGINT) AS failovers";

/// The rows `at >= since` as a roll-up-shaped relation (`day`, the keys, the measures): the
/// whole days from the daily roll-up, the whole hours of the first day from the hourly one,
/// and the rest of the first hour from the ledger, rolled up on the fly. Binds `$1`–`$5`
/// ([`Window::bind`]).
const WINDOW: &str = "SELECT day, provider, model, caller, project, requests, succeeded, failed,
        input_tokens, output_tokens, cost_nanos, estimated, failovers
    FROM llm_ledger_days WHERE day >= $1
    UNION ALL
    SELECT substr(hour, 1, 10) AS day, provider, model, caller, project, requests, succeeded, failed,
        input_tokens, output_tokens, cost_nanos, estimated, failovers
    FROM llm_ledger_hours WHERE hour >= $2 AND hour < $3
    UNION ALL
    SELECT substr(at, 1, 10) AS day,
        COALESCE(provider, '(none)') AS provider,
        CASE WHEN model = '' THEN '(none)' ELSE model END AS model,
        caller || CASE WHEN caller_token_id IS NULL THEN '' ELSE ' (token ' || caller_token_id || ')' END AS caller,
        COALESCE(project, '(none)') AS project,
        1 AS requests,
        CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END AS succeeded,
        CASE WHEN outcome IN ('failed', 'cut') THEN 1 ELSE 0 END AS failed,
        input_tokens, output_tokens, cost_nanos, estimated, failovers
    FROM llm_ledger WHERE at >= $4 AND at < $5";

/// `at >= since` (fixed-width UTC text, or a prefix of one, or empty for all time) cut into
/// whole days, whole hours of the day `since` falls inside, and the ledger range of the hour it
/// falls inside. `P~` is the bound "after everything that starts with `P`": `~` sorts after
/// every character of a time ('0'–'9', '-', 'T', ':', '.', 'Z'), and a later day or hour
/// differs from `P` inside `P`'s length.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    /// Daily roll-up rows `day >= days_from`.
    days_from: String,
    /// Hourly roll-up rows in `[hours_from, hours_to)`.
    hours_from: String,
    hours_to: String,
    /// Ledger rows in `[edge_from, edge_to)`.
    edge_from: String,
    edge_to: String,
}

impl Window {
    fn since(since: &str) -> Window {
        let none = String::new;
        // A day or hour whose text is `>= since` holds only rows `>= since` when `since` is no
        // longer than its text (every `at` of it starts with it), and none when it is `<`.
        match (since.get(..10), since.get(..13)) {
            (Some(day), Some(hour)) if since.len() > 13 => Window {
                days_from: format!("{day}~"),
                hours_from: format!("{hour}~"),
                hours_to: format!("{day}~"),
                edge_from: since.to_owned(),
                edge_to: format!("{hour}~"),
            },
            (Some(day), _) if since.len() > 10 => Window {
                days_from: format!("{day}~"),
                hours_from: since.to_owned(),
                hours_to: format!("{day}~"),
                edge_from: none(),
                edge_to: none(),
            },
            _ => Window {
                days_from: since.to_owned(),
                hours_from: none(),
                hours_to: none(),
                edge_from: none(),
                edge_to: none(),
            },
        }
    }

    fn bind<'q, O>(
        &'q self,
        q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
        q.bind(&self.days_from)
            .bind(&self.hours_from)
            .bind(&self.hours_to)
            .bind(&self.edge_from)
            .bind(&self.edge_to)
    }
}

pub async fn totals_since(db: &Db, since: &str) -> Result<Totals, sqlx::Error> {
    let w = Window::since(since);
    w.bind(sqlx::query_as(&format!(
        "SELECT {ROLLED_TOTALS} FROM ({WINDOW}) w"
    )))
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
    // The grouping keys are the roll-up's columns (see `ROLLUP_KEYS`), fixed text chosen by
    // the enum, never input.
    let key = match by {
        GroupBy::Provider => "provider",
        GroupBy::Model => "model",
        GroupBy::Caller => "caller",
        GroupBy::Project => "project",
        GroupBy::Day => "day",
    };
    let order = match by {
        GroupBy::Day => "key",
        _ => "cost_nanos DESC, requests DESC, key",
    };
    let w = Window::since(since);
    w.bind(sqlx::query_as(&format!(
        "SELECT {key} AS key, {ROLLED_TOTALS} FROM ({WINDOW}) w GROUP BY 1 ORDER BY {order} LIMIT 200"
    )))
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
    // Failover events are few next to ledger rows: the hourly roll-up alone, from the first
    // whole hour (`hour >= $1`), and the ledger rest of the first hour.
    let w = Window::since(since);
    let (from_hour, edge_from, edge_to) = if !w.edge_to.is_empty() {
        (w.edge_to.clone(), w.edge_from.clone(), w.edge_to.clone())
    } else if !w.hours_to.is_empty() {
        (w.hours_from.clone(), String::new(), String::new())
    } else {
        (w.days_from.clone(), String::new(), String::new())
    };
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT) FROM (
             SELECT events FROM llm_failover_hours WHERE hour >= $1
             UNION ALL
             SELECT 1 AS events FROM llm_failover_events WHERE at >= $2 AND at < $3) w",
    )
    .bind(from_hour)
    .bind(edge_from)
    .bind(edge_to)
    .fetch_one(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn a_window_is_whole_days_whole_hours_and_the_ledger_rest_of_its_first_hour() {
        let all = Window::since("");
        assert_eq!(all.days_from, "");
        assert_eq!(
            (all.hours_to.as_str(), all.edge_to.as_str()),
            ("", ""),
            "no hours, no ledger rows"
        );
        let day = Window::since("2026-12-01");
        assert_eq!(day.days_from, "2026-12-01");
        assert_eq!((day.hours_to.as_str(), day.edge_to.as_str()), ("", ""));
        let hour = Window::since("2026-12-01T10");
        assert_eq!(hour.days_from, "2026-12-01~");
        assert_eq!(
            (hour.hours_from.as_str(), hour.hours_to.as_str()),
            ("2026-12-01T10", "2026-12-01~")
        );
        assert_eq!(hour.edge_to, "");
        let mid = Window::since("2026-12-01T10:15:00.000000Z");
        assert_eq!(mid.days_from, "2026-12-01~");
        assert_eq!(
            (mid.hours_from.as_str(), mid.hours_to.as_str()),
            ("2026-12-01T10~", "2026-12-01~")
        );
        assert_eq!(
            (mid.edge_from.as_str(), mid.edge_to.as_str()),
            ("2026-12-01T10:15:00.000000Z", "2026-12-01T10~")
        );
        // The text order the cuts rely on.
        assert!("2026-12-01" < mid.days_from.as_str() && mid.days_from.as_str() < "2026-12-02");
        assert!("2026-12-01T23" < mid.hours_to.as_str());
        assert!(
            "2026-12-01T10" < mid.hours_from.as_str() && mid.hours_from.as_str() < "2026-12-01T11"
        );
        assert!("2026-12-01T10:59:59.999999Z" < mid.edge_to.as_str());
        assert!("2026-12-01T11:00:00.000000Z" > mid.edge_to.as_str());
    }
}
