//! The LLM metrics panel (`/llm-metrics`, SPEC.md "Monitoring"): cost by provider, success
//! rates, token usage, 7-day trend charts (inline SVG drawn on the server), failover history,
//! circuit breaker states with a reset button, and budgets. Works without JavaScript: the reset
//! is a form post with the session's CSRF token.

use super::actions::{self, BudgetStatus, ProviderReport, Summary};
use super::breaker::BreakerStatus;
use super::store::{self, FailoverRow, GroupBy, GroupTotals};
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::http::error::ApiError;
use crate::web::Query;
use crate::web::{render, see_other, Flash, Layout, PageError};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/llm-metrics", get(metrics_page))
        .route("/llm-metrics/reset-circuits", post(reset_circuits))
}

/// Days shown in the trend charts.
const TREND_DAYS: i64 = 7;
/// Chart drawing area in SVG units.
const CHART_W: f64 = 420.0;
const CHART_H: f64 = 120.0;
/// Left margin for the y axis' labels, and the bottom one for the day labels.
const CHART_X0: f64 = 56.0;
const CHART_BOTTOM: f64 = 14.0;

/// One bar of a trend chart, geometry computed here so the template only places it.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub label: String,
    pub value: String,
    /// Height of the failed part (requests chart), stacked on top.
    pub fail_y: String,
    pub fail_h: String,
}

pub struct Chart {
    pub title: &'static str,
    pub max_label: String,
    pub bars: Vec<Bar>,
    /// Y axis ticks: (y, label with its unit), bottom to top.
    pub ticks: Vec<(String, String)>,
}

fn chart(
    title: &'static str,
    days: &[(String, Option<&GroupTotals>)],
    value: impl Fn(&GroupTotals) -> f64,
    failed: impl Fn(&GroupTotals) -> f64,
    fmt: impl Fn(f64) -> String,
) -> Chart {
    let max = days
        .iter()
        .filter_map(|(_, t)| t.map(&value))
        .fold(0.0, f64::max);
    let slot = (CHART_W - CHART_X0) / days.len().max(1) as f64;
    let plot_h = CHART_H - CHART_BOTTOM - 6.0;
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, (day, t))| {
            let v = t.map_or(0.0, &value);
            let f = t.map_or(0.0, &failed).min(v);
            let h = if max > 0.0 { v / max * plot_h } else { 0.0 };
            let fh = if v > 0.0 { h * f / v } else { 0.0 };
            let y = CHART_H - CHART_BOTTOM - h;
            Bar {
                x: format!("{:.1}", CHART_X0 + i as f64 * slot + slot * 0.15),
                y: format!("{y:.1}"),
                w: format!("{:.1}", slot * 0.7),
                h: format!("{h:.1}"),
                label: day.get(5..).unwrap_or(day).to_owned(),
                value: fmt(v),
                fail_y: format!("{y:.1}"),
                fail_h: format!("{fh:.1}"),
            }
        })
        .collect();
    // Nothing to scale: one tick at zero instead of three that all say zero.
    let shares: &[f64] = if max > 0.0 { &[0.0, 0.5, 1.0] } else { &[0.0] };
    let ticks = shares
        .iter()
        .map(|&share| {
            let y = CHART_H - CHART_BOTTOM - share * plot_h;
            (format!("{y:.1}"), fmt(max * share))
        })
        .collect();
    Chart {
        title,
        max_label: fmt(max),
        bars,
        ticks,
    }
}

/// Nano-dollars as the dashboard shows money (see [`crate::web::money`]).
fn usd(n: super::Nanos) -> String {
    crate::web::money(n as f64 / 1e9)
}

/// A token count for an axis: "850", "5.1k", "12k", "3.4M".
fn tokens_text(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A provider's share of the total cost, for the bar in the cost table.
pub struct CostRow {
    pub key: String,
    pub requests: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost: String,
    pub share_pct: String,
}

#[derive(Template)]
#[template(path = "llm/metrics.html")]
struct MetricsPage {
    layout: Layout,
    summary: Summary,
    total_cost: String,
    success_rate: String,
    cost_rows: Vec<CostRow>,
    providers: Vec<ProviderRow>,
    circuits: Vec<BreakerStatus>,
    failovers: Vec<FailoverRow>,
    budgets: Vec<BudgetStatus>,
    by_caller: Vec<CallerRow>,
    charts: Vec<Chart>,
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// A latency estimate (see `ProviderCounters::quantile_ms`): approximate, and the overflow
/// bucket's floor reads as "at least". Non-breaking spaces keep it on one line in its narrow
/// column.
fn ms(v: Option<u64>) -> String {
    match v {
        Some(v) if v >= crate::llm::metrics::LATENCY_FLOOR_OF_OVERFLOW_MS => {
            format!("≥\u{a0}{}\u{a0}s", v / 1000)
        }
        Some(v) => format!("≈\u{a0}{v}\u{a0}ms"),
        None => "—".to_owned(),
    }
}

/// A provider's line in the providers table, formatted.
pub struct ProviderRow {
    pub name: &'static str,
    pub description: &'static str,
    pub position: String,
    pub configured: bool,
    pub local: bool,
    pub model: String,
    pub state: &'static str,
    pub served: i64,
    pub tokens: String,
    pub cost: String,
    pub attempts: u64,
    pub success_rate: String,
    pub p50: String,
    pub p99: String,
}

impl From<&ProviderReport> for ProviderRow {
    fn from(r: &ProviderReport) -> Self {
        ProviderRow {
            name: r.provider.as_str(),
            description: r.description,
            position: r.chain_position.map_or_else(
                || "—".to_owned(),
                |p| {
                    if p == 0 {
                        "primary".to_owned()
                    } else {
                        format!("fallback {p}")
                    }
                },
            ),
            configured: r.configured,
            local: r.local,
            model: r.default_model.clone(),
            state: r.circuit_state.as_str(),
            served: r.requests_served,
            tokens: format!("{} / {}", r.input_tokens, r.output_tokens),
            cost: usd(r.cost_nanos),
            attempts: r.attempts,
            success_rate: pct(r.success_rate),
            p50: ms(r.latency_p50_ms),
            p99: ms(r.latency_p99_ms),
        }
    }
}

/// A caller's line (cost by caller token).
pub struct CallerRow {
    pub key: String,
    pub requests: i64,
    pub cost: String,
}

async fn metrics_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    let summary = actions::summary(&s.llm_state(), "")
        .await
        .map_err(ApiError::from)?;
    let providers = actions::provider_reports(&s.llm_state())
        .await
        .map_err(ApiError::from)?;
    let failovers = store::failover_history(&s.db, 20)
        .await
        .map_err(ApiError::from)?;
    let now = s.clock.now();
    let first_day = now - time::Duration::days(TREND_DAYS - 1);
    let since = crate::clock::format(first_day)
        .get(..10)
        .unwrap_or("")
        .to_owned();
    let daily = store::totals_by(&s.db, GroupBy::Day, &since)
        .await
        .map_err(ApiError::from)?;
    let by_caller = store::totals_by(&s.db, GroupBy::Caller, "")
        .await
        .map_err(ApiError::from)?;
    s.llm
        .book
        .ensure_loaded(&s.llm_state())
        .await
        .map_err(ApiError::from)?;
    let budgets = s.llm.book.budget_status(now);
    let days: Vec<(String, Option<&GroupTotals>)> = (0..TREND_DAYS)
        .map(|i| {
            let d = crate::clock::format(first_day + time::Duration::days(i))
                .get(..10)
                .unwrap_or("")
                .to_owned();
            let t = daily.iter().find(|t| t.key == d);
            (d, t)
        })
        .collect();
    let charts = vec![
        chart(
            "Cost per day (USD)",
            &days,
            |t| t.cost_nanos as f64,
            |_| 0.0,
            |v| crate::web::money(v / 1e9),
        ),
        chart(
            "Requests per day (failed in red)",
            &days,
            |t| t.requests as f64,
            |t| t.failed as f64,
            |v| format!("{v:.0} req"),
        ),
        chart(
            "Tokens per day (in + out)",
            &days,
            |t| (t.input_tokens + t.output_tokens) as f64,
            |_| 0.0,
            tokens_text,
        ),
    ];
    let total = summary.total_cost_nanos.max(1);
    let cost_rows = summary
        .cost_by_provider
        .iter()
        .map(|g| CostRow {
            key: g.key.clone(),
            requests: g.requests,
            tokens_in: g.input_tokens,
            tokens_out: g.output_tokens,
            cost: usd(g.cost_nanos),
            share_pct: format!("{:.1}", g.cost_nanos as f64 * 100.0 / total as f64),
        })
        .collect();
    Ok(render(&MetricsPage {
        layout: Layout::new(&s, &who, "llm", "LLM metrics").with_flash(&flash),
        total_cost: usd(summary.total_cost_nanos),
        success_rate: pct(summary.success_rate),
        summary,
        cost_rows,
        providers: providers.iter().map(ProviderRow::from).collect(),
        circuits: s.llm.client.circuit_status(),
        failovers,
        budgets,
        by_caller: by_caller
            .into_iter()
            .map(|g| CallerRow {
                key: g.key,
                requests: g.requests,
                cost: usd(g.cost_nanos),
            })
            .collect(),
        charts,
    }))
}

#[derive(Deserialize)]
struct ResetForm {}

async fn reset_circuits(
    State(s): State<AppState>,
    PageForm(who, ResetForm {}, ..): PageForm<Write, ResetForm>,
) -> Response {
    match super::actions::reset_circuits(&s.llm_state(), &who.actor()).await {
        Ok(()) => see_other("/llm-metrics", "All circuit breakers were reset (closed)."),
        Err(e) => crate::web::back_with_error("/llm-metrics", &ApiError::from(e)),
    }
}
