//! Edits of the price table and the budgets (each with its activity row; the [`Book`] is
//! reloaded after every one), and resetting the circuit breakers.

use super::super::store::{self, BudgetRow, Price};
use super::*;
use crate::llm::LlmState;
use crate::validate::invalid;

// ---- edits ----

/// A price edit as the API takes it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    pub provider: String,
    pub model: String,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
}

fn check_usd(field: &str, v: f64) -> Result<(), LlmError> {
    if !v.is_finite() || !(0.0..=1_000_000.0).contains(&v) {
        return Err(LlmError::Invalid(invalid(
            field,
            format!("{field} must be a number from 0 to 1000000"),
        )));
    }
    Ok(())
}

pub async fn set_price(state: &LlmState, by: &str, input: PriceInput) -> Result<Price, LlmError> {
    let provider: ProviderId = input
        .provider
        .trim()
        .parse()
        .map_err(|e: String| LlmError::Invalid(invalid("provider", e)))?;
    let model = input.model.trim();
    if model.is_empty() || model.len() > 200 || model.chars().any(char::is_control) {
        return Err(LlmError::Invalid(invalid(
            "model",
            "model must be 1 to 200 printable characters (a trailing '*' matches a prefix)",
        )));
    }
    check_usd("input_usd_per_mtok", input.input_usd_per_mtok)?;
    check_usd("output_usd_per_mtok", input.output_usd_per_mtok)?;
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let p = store::set_price(
        &mut *tx,
        provider,
        model,
        input.input_usd_per_mtok,
        input.output_usd_per_mtok,
        by,
        &now,
    )
    .await?;
    crate::activity::store::record(
        &mut tx,
        by,
        "set",
        "llm_price",
        Some(p.id),
        &serde_json::json!({"provider": p.provider, "model": p.model,
            "input_usd_per_mtok": p.input_usd_per_mtok, "output_usd_per_mtok": p.output_usd_per_mtok}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state.llm.book.reload(state).await?;
    Ok(p)
}

pub async fn delete_price(state: &LlmState, by: &str, id: i64) -> Result<(), LlmError> {
    delete_book_row(state, by, BookRow::Price, id).await
}

/// A new budget as the API takes it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetInput {
    pub scope: String,
    pub target: String,
    #[serde(default = "default_period")]
    pub period: String,
    pub limit_usd: f64,
    #[serde(default = "default_warn")]
    pub warn_ratio: f64,
}

fn default_period() -> String {
    "month".into()
}

fn default_warn() -> f64 {
    0.8
}

pub async fn create_budget(
    state: &LlmState,
    by: &str,
    input: BudgetInput,
) -> Result<BudgetRow, LlmError> {
    let scope: BudgetScope = input
        .scope
        .trim()
        .parse()
        .map_err(|e: String| LlmError::Invalid(invalid("scope", e)))?;
    let period: Period = input
        .period
        .trim()
        .parse()
        .map_err(|e: String| LlmError::Invalid(invalid("period", e)))?;
    let target = input.target.trim();
    match scope {
        BudgetScope::Token if target.parse::<i64>().map_or(true, |t| t <= 0) => {
            return Err(LlmError::Invalid(invalid(
                "target",
                "a token budget's target is the token's id (a positive number)",
            )))
        }
        BudgetScope::Project
            if target.is_empty() || target.len() > 100 || target.chars().any(char::is_control) =>
        {
            return Err(LlmError::Invalid(invalid(
                "target",
                "a project budget's target is the project name (1 to 100 printable characters)",
            )))
        }
        _ => {}
    }
    check_usd("limit_usd", input.limit_usd)?;
    if !(input.warn_ratio > 0.0 && input.warn_ratio <= 1.0) {
        return Err(LlmError::Invalid(invalid(
            "warn_ratio",
            "warn_ratio must be above 0 and at most 1",
        )));
    }
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let row = store::insert_budget(
        &mut *tx,
        scope.as_str(),
        target,
        period.as_str(),
        input.limit_usd,
        input.warn_ratio,
        by,
        &now,
    )
    .await
    .map_err(|e| {
        if crate::db::is_unique_violation(&e) {
            LlmError::Conflict(format!(
                "a {period} budget for {scope} '{target}' already exists; delete it first"
            ))
        } else {
            LlmError::Db(e)
        }
    })?;
    crate::activity::store::record(
        &mut tx,
        by,
        "create",
        "llm_budget",
        Some(row.id),
        &serde_json::json!({"scope": row.scope, "target": row.target, "period": row.period,
            "limit_usd": row.limit_usd, "warn_ratio": row.warn_ratio}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state.llm.book.reload(state).await?;
    Ok(row)
}

pub async fn delete_budget(state: &LlmState, by: &str, id: i64) -> Result<(), LlmError> {
    delete_book_row(state, by, BookRow::Budget, id).await
}

/// The rows the price book is loaded from.
#[derive(Debug, Clone, Copy)]
enum BookRow {
    Price,
    Budget,
}

/// Deletes a price or a budget with its activity row, then reloads the book.
async fn delete_book_row(
    state: &LlmState,
    by: &str,
    row: BookRow,
    id: i64,
) -> Result<(), LlmError> {
    let now = state.clock.now_str();
    let mut tx = crate::db::begin_write(&state.db).await?;
    let (deleted, entity, what) = match row {
        BookRow::Price => (
            store::delete_price(&mut *tx, id).await?,
            "llm_price",
            "price",
        ),
        BookRow::Budget => (
            store::delete_budget(&mut *tx, id).await?,
            "llm_budget",
            "budget",
        ),
    };
    if !deleted {
        return Err(LlmError::NotFound(what));
    }
    crate::activity::store::record(
        &mut tx,
        by,
        "delete",
        entity,
        Some(id),
        &serde_json::json!({}),
        &now,
    )
    .await?;
    tx.commit().await?;
    state.llm.book.reload(state).await?;
    Ok(())
}

/// Closes every provider's circuit by hand; the reset is in the activity log.
pub async fn reset_circuits(state: &LlmState, by: &str) -> Result<(), LlmError> {
    let mut conn = state.db.acquire().await?;
    crate::activity::store::record(
        &mut conn,
        by,
        "reset_circuits",
        "llm_gateway",
        None,
        &serde_json::json!({}),
        &state.clock.now_str(),
    )
    .await?;
    state.llm.client.reset_circuits(by);
    Ok(())
}
