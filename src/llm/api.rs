//! JSON routes of the LLM gateway: SPEC.md's monitoring endpoints and the editable price table
//! and budgets. (The gateway endpoints themselves, `/v1/*`, are in `gateway.rs`.)
//!
//! | route                                   | needs  |
//! |-----------------------------------------|--------|
//! | `GET  /api/llm-metrics/summary[?days=N]`| read   |
//! | `GET  /api/llm-metrics/providers`       | read   |
//! | `GET  /api/llm-metrics/circuit-breakers`| read   |
//! | `GET  /api/llm-metrics/failover-history[?limit=N]` | read |
//! | `GET  /api/llm-metrics/costs?by=provider|model|caller|project|day[&days=N]` | read |
//! | `POST /api/llm-metrics/reset-circuits`  | write  |
//! | `GET  /api/llm/prices`, `PUT /api/llm/prices`, `DELETE /api/llm/prices/{id}` | read / admin |
//! | `GET  /api/llm/budgets`, `POST /api/llm/budgets`, `DELETE /api/llm/budgets/{id}` | read / admin |

use super::actions::{
    self, BudgetInput, BudgetStatus, LlmError, PriceInput, ProviderReport, Summary,
};
use super::breaker::BreakerStatus;
use super::store::{self, BudgetRow, FailoverRow, GroupBy, GroupTotals, Price};
use crate::app::AppState;
use crate::auth::extract::{Admin, Authed, Read, Write};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(super::gateway::routes())
        .route("/api/llm-metrics/summary", get(summary))
        .route("/api/llm-metrics/providers", get(providers))
        .route("/api/llm-metrics/circuit-breakers", get(circuit_breakers))
        .route("/api/llm-metrics/failover-history", get(failover_history))
        .route("/api/llm-metrics/costs", get(costs))
        .route("/api/llm-metrics/reset-circuits", post(reset_circuits))
        .route("/api/llm/prices", get(prices).put(set_price))
        .route("/api/llm/prices/{id}", delete(delete_price))
        .route("/api/llm/budgets", get(budgets).post(create_budget))
        .route("/api/llm/budgets/{id}", delete(delete_budget))
}

impl From<LlmError> for ApiError {
    fn from(e: LlmError) -> Self {
        match e {
            LlmError::Invalid(i) => ApiError::invalid(i.field, i.message),
            LlmError::NotFound(what) => ApiError::not_found(what),
            LlmError::Conflict(m) => ApiError::conflict(m),
            LlmError::Db(e) => ApiError::from(e),
        }
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Window {
    /// Only the last N days (UTC); all time when absent.
    days: Option<u32>,
}

fn since(s: &AppState, w: &Window) -> Result<String, ApiError> {
    match w.days {
        None => Ok(String::new()),
        Some(d) if (1..=3660).contains(&d) => Ok(crate::clock::format(
            s.clock.now() - time::Duration::days(i64::from(d)),
        )),
        Some(_) => Err(ApiError::invalid("days", "days must be between 1 and 3660")),
    }
}

async fn summary(
    State(s): State<AppState>,
    _: Authed<Read>,
    Query(w): Query<Window>,
) -> ApiResult<Summary> {
    let since = since(&s, &w)?;
    Ok(Json(actions::summary(&s.llm_state(), &since).await?))
}

async fn providers(State(s): State<AppState>, _: Authed<Read>) -> ApiResult<Vec<ProviderReport>> {
    Ok(Json(actions::provider_reports(&s.llm_state()).await?))
}

async fn circuit_breakers(
    State(s): State<AppState>,
    _: Authed<Read>,
) -> ApiResult<Vec<BreakerStatus>> {
    Ok(Json(s.llm.client.circuit_status()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<i64>,
}

async fn failover_history(
    State(s): State<AppState>,
    _: Authed<Read>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Vec<FailoverRow>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    s.llm.ledger.flush(&s.db).await?;
    Ok(Json(store::failover_history(&s.db, limit).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CostsQuery {
    by: String,
    days: Option<u32>,
}

async fn costs(
    State(s): State<AppState>,
    _: Authed<Read>,
    Query(q): Query<CostsQuery>,
) -> ApiResult<Vec<GroupTotals>> {
    let by = match q.by.as_str() {
        "provider" => GroupBy::Provider,
        "model" => GroupBy::Model,
        "caller" => GroupBy::Caller,
        "project" => GroupBy::Project,
        "day" => GroupBy::Day,
        other => return Err(ApiError::invalid("by", format!("unknown grouping '{other}'; expected one of: provider, model, caller, project, day"))),
    };
    let since = since(&s, &Window { days: q.days })?;
    s.llm.ledger.flush(&s.db).await?;
    Ok(Json(store::totals_by(&s.db, by, &since).await?))
}

#[derive(Serialize)]
struct ResetAnswer {
    reset: bool,
    circuits: Vec<BreakerStatus>,
}

async fn reset_circuits(State(s): State<AppState>, who: Authed<Write>) -> ApiResult<ResetAnswer> {
    actions::reset_circuits(&s.llm_state(), &who.identity().actor()).await?;
    Ok(Json(ResetAnswer {
        reset: true,
        circuits: s.llm.client.circuit_status(),
    }))
}

async fn prices(State(s): State<AppState>, _: Authed<Read>) -> ApiResult<Vec<Price>> {
    Ok(Json(store::list_prices(&s.db).await?))
}

async fn set_price(
    State(s): State<AppState>,
    who: Authed<Admin>,
    Json(input): Json<PriceInput>,
) -> ApiResult<Price> {
    Ok(Json(
        actions::set_price(&s.llm_state(), &who.identity().actor(), input).await?,
    ))
}

async fn delete_price(
    State(s): State<AppState>,
    who: Authed<Admin>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    actions::delete_price(&s.llm_state(), &who.identity().actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn budgets(State(s): State<AppState>, _: Authed<Read>) -> ApiResult<Vec<BudgetStatus>> {
    s.llm.book.ensure_loaded(&s.llm_state()).await?;
    Ok(Json(s.llm.book.budget_status(s.clock.now())))
}

async fn create_budget(
    State(s): State<AppState>,
    who: Authed<Admin>,
    Json(input): Json<BudgetInput>,
) -> Result<(StatusCode, Json<BudgetRow>), ApiError> {
    let row = actions::create_budget(&s.llm_state(), &who.identity().actor(), input).await?;
    Ok((StatusCode::CREATED, Json(row)))
}

async fn delete_budget(
    State(s): State<AppState>,
    who: Authed<Admin>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    actions::delete_budget(&s.llm_state(), &who.identity().actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
