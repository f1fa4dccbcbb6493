//! The Activity panel: the dashboard's view of the activity log (`crate::activity`).

use crate::activity::{store, ActivityEntry, ActivityFilter};
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, Read};
use crate::http::extract::Pagination;
use crate::web::Query;
use crate::web::{render, ForPage, Layout, PageError};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new().route("/activity", get(activity_page))
}

#[derive(Template)]
#[template(path = "activity/list.html")]
struct ActivityPage {
    layout: Layout,
    entries: Vec<ActivityEntry>,
    filter: ActivityFilter,
    page: Pagination,
}

impl ActivityPage {
    /// The query string of the next (older) page, keeping the filters.
    fn older_query(&self) -> String {
        let mut q: Vec<(&str, String)> = vec![
            ("offset", (self.page.offset + self.page.limit).to_string()),
            ("limit", self.page.limit.to_string()),
        ];
        for (k, v) in [
            ("entity", &self.filter.entity),
            ("actor", &self.filter.actor),
            ("since", &self.filter.since),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        if let Some(id) = self.filter.entity_id {
            q.push(("entity_id", id.to_string()));
        }
        serde_urlencoded::to_string(q).unwrap_or_default()
    }

    fn details_text(e: &ActivityEntry) -> String {
        match &e.details {
            serde_json::Value::Object(m) if m.is_empty() => String::new(),
            v => {
                let s = v.to_string();
                if s.chars().count() > 160 {
                    format!("{}…", s.chars().take(160).collect::<String>())
                } else {
                    s
                }
            }
        }
    }
}

async fn activity_page(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    Query(filter): Query<ActivityFilter>,
) -> Result<Response, PageError> {
    let filter = super::activity_api::normalise_filter(filter)?;
    let entries = store::list(&s.db, &filter, page.limit, page.offset).await?;
    let layout = Layout::new(&s, &who, "activity", "Activity");
    Ok(render(&ActivityPage {
        layout,
        entries,
        filter,
        page,
    }))
}
