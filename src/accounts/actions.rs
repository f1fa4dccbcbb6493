//! Account changes, each in one transaction with its activity row, and the aggregate.

use super::store::{self, AccountRow};
use super::*;
use crate::activity;
use crate::auth::Identity;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("account not found")]
    NotFound,
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Invalid> for AccountError {
    fn from(v: Invalid) -> Self {
        AccountError::Invalid(v)
    }
}

pub type Result<T> = std::result::Result<T, AccountError>;

fn taken(e: sqlx::Error, f: &AccountFields) -> AccountError {
    if crate::db::is_unique_violation(&e) {
        AccountError::Conflict(format!(
            "an account '{}' of provider '{}' exists already",
            f.name, f.provider
        ))
    } else {
        AccountError::Db(e)
    }
}

/// What the activity row keeps of an account: everything but notes (a reference, no value).
fn logged(r: &AccountRow) -> serde_json::Value {
    json!({"provider": r.provider, "name": r.name, "plan": r.plan,
           "secret_name": r.secret_name, "monthly_budget_micros": r.monthly_budget_micros})
}

pub async fn list(state: &AccountsState) -> Result<Vec<Account>> {
    Ok(store::list_accounts(&state.db)
        .await?
        .into_iter()
        .map(AccountRow::view)
        .collect())
}

pub async fn get(state: &AccountsState, id: i64) -> Result<Account> {
    Ok(store::get_account(&state.db, id)
        .await?
        .ok_or(AccountError::NotFound)?
        .view())
}

pub async fn create(state: &AccountsState, who: &Identity, input: NewAccount) -> Result<Account> {
    let f = input.fields()?;
    let now = state.clock.now_str();
    let actor = who.actor();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let row = store::insert_account(&mut tx, &f, &actor, &now)
        .await
        .map_err(|e| taken(e, &f))?;
    activity::store::record(
        &mut tx,
        &actor,
        "create",
        "service_account",
        Some(row.id),
        &logged(&row),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(row.view())
}

pub async fn change(
    state: &AccountsState,
    who: &Identity,
    id: i64,
    change: AccountChange,
) -> Result<Account> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    if !store::touch_account(&mut tx, id).await? {
        return Err(AccountError::NotFound);
    }
    let before = store::get_account(&mut *tx, id)
        .await?
        .ok_or(AccountError::NotFound)?;
    let f = change.apply(before.fields())?;
    let row = store::update_account(&mut tx, id, &f, &now)
        .await
        .map_err(|e| taken(e, &f))?;
    activity::store::record(
        &mut tx,
        &who.actor(),
        "update",
        "service_account",
        Some(id),
        &json!({"before": logged(&before), "after": logged(&row)}),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(row.view())
}

pub async fn delete(state: &AccountsState, who: &Identity, id: i64) -> Result<()> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let row = store::get_account(&mut *tx, id)
        .await?
        .ok_or(AccountError::NotFound)?;
    if !store::delete_account(&mut tx, id).await? {
        return Err(AccountError::NotFound);
    }
    activity::store::record(
        &mut tx,
        &who.actor(),
        "delete",
        "service_account",
        Some(id),
        &logged(&row),
        &now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The first instant of this UTC month, as stored times are written.
fn month_start(now: time::OffsetDateTime) -> String {
    let day1 = now
        .to_offset(time::UtcOffset::UTC)
        .replace_day(1)
        .unwrap_or(now)
        .replace_time(time::Time::MIDNIGHT);
    crate::clock::format(day1)
}

pub async fn aggregate(state: &AccountsState) -> Result<Aggregate> {
    // Rows the gateway recorded but the ledger loop has not written yet count too.
    state.ledger.flush(&state.db).await?;
    let since = month_start(state.clock.now());
    let month =
        crate::llm::store::totals_by(&state.db, crate::llm::store::GroupBy::Provider, &since)
            .await?;
    let all = store::ledger_by_provider(&state.db).await?;
    let rows = store::list_accounts(&state.db).await?;
    let mut accounts = Vec::with_capacity(rows.len());
    for r in &rows {
        let m = month.iter().find(|t| t.key == r.provider);
        let a = all.iter().find(|t| t.provider == r.provider);
        let cost_month = m.map_or(0, |t| t.cost_nanos);
        accounts.push(AccountUsage {
            calls_month: m.map_or(0, |t| t.requests),
            spend_usd_month: usd(cost_month),
            cost_nanos_month: cost_month,
            calls_total: a.map_or(0, |t| t.calls),
            cost_nanos_total: a.map_or(0, |t| t.cost_nanos),
            last_used_at: a.and_then(|t| t.last_at.clone()),
            budget_used_percent: r
                .monthly_budget_micros
                .filter(|b| *b > 0)
                .map(|b| (cost_month as f64 / 1e3) / b as f64 * 100.0),
            shares_provider: rows.iter().filter(|o| o.provider == r.provider).count() > 1,
            account: r.clone().view(),
        });
    }
    let unaccounted_providers = all
        .iter()
        .map(|t| t.provider.clone())
        .filter(|p| !rows.iter().any(|r| &r.provider == p))
        .collect();
    Ok(Aggregate {
        month_start: since,
        spend_usd_month: usd(month.iter().map(|t| t.cost_nanos).sum()),
        accounts,
        unaccounted_providers,
        worker_accounts: store::tasks_by_worker_account(&state.db).await?,
    })
}
