//! `/accounts`: every service account with this month's spend against its budget, its calls
//! and last use, the tasks per worker account; admins add and remove accounts here.

use super::actions::{self, AccountError};
use super::*;
use crate::app::AppState;
use crate::auth::extract::{Admin, PageAuthed, PageForm, Read};
use crate::http::error::ApiError;
use crate::web::{back_with_error, render, see_other, Flash, Layout, PageError, Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/accounts", get(accounts_page).post(add_account))
        .route("/accounts/{id}/remove", post(remove_account))
}

#[derive(Template)]
#[template(path = "accounts/list.html")]
struct AccountsPage {
    layout: Layout,
    agg: Aggregate,
}

async fn accounts_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let agg = actions::aggregate(&s.accounts_state())
        .await
        .map_err(ApiError::from)?;
    Ok(render(&AccountsPage {
        layout: Layout::new(&s, &who, "accounts", "Service accounts").with_flash(&flash),
        agg,
    }))
}

#[derive(serde::Deserialize)]
struct AddForm {
    provider: String,
    name: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    monthly_budget_usd: String,
}

async fn add_account(
    State(s): State<AccountsState>,
    PageForm(who, f, ..): PageForm<Admin, AddForm>,
) -> Response {
    let budget = match f.monthly_budget_usd.trim() {
        "" => None,
        b => match b.parse::<f64>() {
            Ok(v) => Some(v),
            Err(_) => {
                return back_with_error(
                    "/accounts",
                    &ApiError::invalid("monthly_budget_usd", "the budget is a number of dollars"),
                )
            }
        },
    };
    let input = NewAccount {
        provider: f.provider,
        name: f.name,
        plan: Some(f.plan),
        secret: Some(f.secret),
        monthly_budget_usd: budget,
        notes: None,
    };
    match actions::create(&s, &who, input).await {
        Ok(a) => see_other("/accounts", &format!("Account {} added.", a.name)),
        Err(e) => back_with_error("/accounts", &ApiError::from(e)),
    }
}

#[derive(serde::Deserialize)]
struct Empty {}

async fn remove_account(
    State(s): State<AccountsState>,
    Path(id): Path<i64>,
    PageForm(who, Empty {}, ..): PageForm<Admin, Empty>,
) -> Response {
    match actions::delete(&s, &who, id).await {
        Ok(()) => see_other("/accounts", "Account removed."),
        Err(e @ AccountError::NotFound) => back_with_error("/accounts", &ApiError::from(e)),
        Err(e) => back_with_error("/accounts", &ApiError::from(e)),
    }
}
