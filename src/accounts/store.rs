//! SQL for service accounts, and the read-only sums the aggregate needs from the LLM ledger
//! (never written here; the month's figures come from `llm::store::totals_by`) and the task
//! queue.

use super::*;
use sqlx::{Any, AnyConnection, Executor};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct AccountRow {
    pub id: i64,
    pub provider: String,
    pub name: String,
    pub plan: Option<String>,
    pub secret_name: Option<String>,
    pub monthly_budget_micros: Option<i64>,
    pub notes: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

impl AccountRow {
    pub fn view(self) -> Account {
        Account {
            id: self.id,
            provider: self.provider,
            name: self.name,
            plan: self.plan,
            secret: self
                .secret_name
                .map(|n| format!("{}{n}", crate::vault::REFERENCE_PREFIX)),
            monthly_budget_usd: self.monthly_budget_micros.map(|m| m as f64 / 1e6),
            notes: self.notes,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    pub fn fields(&self) -> AccountFields {
        AccountFields {
            provider: self.provider.clone(),
            name: self.name.clone(),
            plan: self.plan.clone(),
            secret_name: self.secret_name.clone(),
            monthly_budget_micros: self.monthly_budget_micros,
            notes: self.notes.clone(),
        }
    }
}

const COLS: &str = "id, provider, name, plan, secret_name, monthly_budget_micros, notes, \
                    created_by, created_at, updated_at";

pub async fn list_accounts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM service_accounts ORDER BY provider, name LIMIT 1000"
    ))
    .fetch_all(ex)
    .await
}

pub async fn get_account<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    id: i64,
) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM service_accounts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await
}

pub async fn insert_account(
    conn: &mut AnyConnection,
    f: &AccountFields,
    by: &str,
    now: &str,
) -> Result<AccountRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO service_accounts (provider, name, plan, secret_name, monthly_budget_micros,
             notes, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         RETURNING {COLS}"
    ))
    .bind(&f.provider)
    .bind(&f.name)
    .bind(f.plan.as_deref())
    .bind(f.secret_name.as_deref())
    .bind(f.monthly_budget_micros)
    .bind(f.notes.as_deref())
    .bind(by)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
}

/// Touches the row first (the write lock before the read of a read-modify-write). False: no
/// such account.
pub async fn touch_account(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("UPDATE service_accounts SET updated_at = updated_at WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0,
    )
}

pub async fn update_account(
    conn: &mut AnyConnection,
    id: i64,
    f: &AccountFields,
    now: &str,
) -> Result<AccountRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE service_accounts SET provider = $1, name = $2, plan = $3, secret_name = $4,
             monthly_budget_micros = $5, notes = $6, updated_at = $7
         WHERE id = $8
         RETURNING {COLS}"
    ))
    .bind(&f.provider)
    .bind(&f.name)
    .bind(f.plan.as_deref())
    .bind(f.secret_name.as_deref())
    .bind(f.monthly_budget_micros)
    .bind(f.notes.as_deref())
    .bind(now)
    .bind(id)
    .fetch_one(&mut *conn)
    .await
}

pub async fn delete_account(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM service_accounts WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

/// All-time calls, cost and last call per provider, from the ledger (never purged).
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct ProviderTotals {
    pub provider: String,
    pub calls: i64,
    pub cost_nanos: i64,
    pub last_at: Option<String>,
}

pub async fn ledger_by_provider<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<ProviderTotals>, sqlx::Error> {
    // CAST: PostgreSQL's SUM over BIGINT is NUMERIC, which the Any driver cannot decode.
    sqlx::query_as(
        "SELECT provider, COUNT(*) AS calls, CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos,
                MAX(at) AS last_at
         FROM llm_ledger WHERE provider IS NOT NULL GROUP BY provider ORDER BY provider",
    )
    .fetch_all(ex)
    .await
}

/// Tasks per account the workers registered as (`workers.registered_by`).
pub async fn tasks_by_worker_account<'c, E: Executor<'c, Database = Any>>(
    ex: E,
) -> Result<Vec<WorkerAccountTasks>, sqlx::Error> {
    sqlx::query_as(
        "SELECT w.registered_by AS account, COUNT(DISTINCT w.id) AS workers, COUNT(*) AS tasks,
                SUM(CASE WHEN t.status = 'completed' THEN 1 ELSE 0 END) AS completed,
                SUM(CASE WHEN t.status = 'failed' THEN 1 ELSE 0 END) AS failed,
                SUM(CASE WHEN t.status = 'running' THEN 1 ELSE 0 END) AS running,
                MAX(COALESCE(t.finished_at, t.started_at)) AS last_task_at
         FROM task_queue t JOIN workers w ON w.id = t.worker_id
         GROUP BY w.registered_by ORDER BY w.registered_by LIMIT 1000",
    )
    .fetch_all(ex)
    .await
}
