//! The dashboard's home page (`/`): the overview. Works without JavaScript; with it, the page
//! refreshes its live regions on every event (static/live.js).

use super::Overview;
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, Read};
use crate::web::{render, Layout, PageError};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(overview_page))
}

#[derive(Template)]
#[template(path = "overview/index.html")]
struct OverviewPage {
    layout: Layout,
    o: Overview,
}

impl OverviewPage {
    fn n(m: &std::collections::BTreeMap<String, i64>, k: &str) -> i64 {
        m.get(k).copied().unwrap_or(0)
    }

    /// Error occurrences in 24 h against the day before: "+3" / "−2" / "±0".
    fn errors_delta(&self) -> String {
        match self.o.errors.occurrences_24h - self.o.errors.occurrences_prev_24h {
            d if d > 0 => format!("+{d}"),
            d if d < 0 => format!("−{}", -d),
            _ => "±0".to_string(),
        }
    }

    fn nothing_waits(&self) -> bool {
        self.o.needs_you.iter().all(|g| g.total == 0)
    }

    fn sessions_total(&self) -> i64 {
        self.o.sessions.values().sum()
    }
}

async fn overview_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
) -> Result<Response, PageError> {
    let o = super::gather(&s).await?;
    let layout = Layout::new(&s, &who, "overview", "Overview");
    Ok(render(&OverviewPage { layout, o }))
}
