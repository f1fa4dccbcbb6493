//! `GET /api/accounts`, `/api/accounts/aggregate`, `/api/accounts/{id}` (read);
//! `POST /api/accounts`, `PUT`/`DELETE /api/accounts/{id}` (admin: accounts name the vault
//! secrets the fleet's keys are in).

use super::actions::{self, AccountError};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Admin, Authed, Read};
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/accounts", get(list).post(create))
        .route("/api/accounts/aggregate", get(aggregate))
        .route("/api/accounts/{id}", get(show).put(change).delete(remove))
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound => ApiError::not_found("account"),
            AccountError::Invalid(Invalid { field, message }) => ApiError::invalid(field, message),
            AccountError::Conflict(m) => ApiError::conflict(m),
            AccountError::Db(e) => ApiError::from(e),
        }
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn list(State(s): State<AccountsState>, _: Authed<Read>) -> ApiResult<Vec<Account>> {
    Ok(Json(actions::list(&s).await?))
}

async fn aggregate(State(s): State<AccountsState>, _: Authed<Read>) -> ApiResult<Aggregate> {
    Ok(Json(actions::aggregate(&s).await?))
}

async fn show(
    State(s): State<AccountsState>,
    _: Authed<Read>,
    Path(id): Path<i64>,
) -> ApiResult<Account> {
    Ok(Json(actions::get(&s, id).await?))
}

async fn create(
    State(s): State<AccountsState>,
    who: Authed<Admin>,
    Json(input): Json<NewAccount>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    let a = actions::create(&s, who.identity(), input).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

async fn change(
    State(s): State<AccountsState>,
    who: Authed<Admin>,
    Path(id): Path<i64>,
    Json(input): Json<AccountChange>,
) -> ApiResult<Account> {
    Ok(Json(actions::change(&s, who.identity(), id, input).await?))
}

#[derive(serde::Serialize)]
struct Removed {
    id: i64,
    deleted: bool,
}

async fn remove(
    State(s): State<AccountsState>,
    who: Authed<Admin>,
    Path(id): Path<i64>,
) -> ApiResult<Removed> {
    actions::delete(&s, who.identity(), id).await?;
    Ok(Json(Removed { id, deleted: true }))
}
