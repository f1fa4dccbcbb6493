//! Dashboard panels for projects, milestones, features, bugs and devops tasks (one
//! `pages/*_pages.rs` file per panel; the routes and the shared form helpers here). Reading works
//! without JavaScript; every change is a plain form post (with the CSRF field) that redirects
//! back with a notice or an error.

use super::actions::{self, Ctx};
use super::store;
use super::*;
use crate::agents::assign_pages::AssignBox;
use crate::agents::assigner::ItemKind;
use crate::app::AppState;
use crate::auth::extract::{PageAuthed, PageForm, Read, Write};
use crate::auth::Identity;
use crate::http::error::ApiError;
use crate::http::extract::Pagination;
use crate::web::{
    back_with_error, form_again, render, see_other, Draft, Flash, ForPage, Layout, PageError,
};
use crate::web::{Path, Query};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use std::future::Future;

mod bug_pages;
mod devops_pages;
mod feature_pages;
mod milestone_pages;
mod project_pages;
use bug_pages::*;
use devops_pages::*;
use feature_pages::*;
use milestone_pages::*;
use project_pages::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/projects",
            get(list_page::<ProjectPanel>).post(projects_create),
        )
        .route(
            "/projects/{id}",
            get(item_page::<ProjectPanel>).post(project_update),
        )
        .route("/projects/{id}/archive", post(project_archive))
        .route("/projects/{id}/unarchive", post(project_unarchive))
        .route(
            "/milestones",
            get(list_page::<MilestonePanel>).post(milestones_create),
        )
        .route(
            "/milestones/{id}",
            get(item_page::<MilestonePanel>).post(milestone_update),
        )
        .route(
            "/features",
            get(list_page::<FeaturePanel>).post(features_create),
        )
        .route(
            "/features/{id}",
            get(item_page::<FeaturePanel>).post(feature_update),
        )
        .route("/features/{id}/status", post(feature_status))
        .route("/bugs", get(list_page::<BugPanel>).post(bugs_create))
        .route("/bugs/{id}", get(item_page::<BugPanel>).post(bug_update))
        .route("/bugs/{id}/status", post(bug_status))
        .route("/devops", get(list_page::<DevopsPanel>).post(devops_create))
        .route(
            "/devops/{id}",
            get(item_page::<DevopsPanel>).post(devops_update),
        )
}

// ---- the shape every panel shares: a filtered list with a create form, an item page with an
// edit form; after a form error the page is shown again with what was typed ----

/// One tracking panel (projects, milestones, features, bugs, devops): how its list and item
/// pages render. The GET handlers and the "show the form again" answers are written once below.
pub(super) trait Panel {
    /// The list's filters, from the query string.
    type Filter: serde::de::DeserializeOwned + Default + Send;
    fn list(
        s: &AppState,
        who: &Identity,
        page: Pagination,
        q: Self::Filter,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send;
    fn item(
        s: &AppState,
        who: &Identity,
        id: i64,
        flash: Flash,
        draft: Draft,
    ) -> impl Future<Output = Result<Response, PageError>> + Send;
}

/// `GET /<panel>`: the list, filtered by the query string.
async fn list_page<P: Panel>(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    ForPage(page): ForPage<Pagination>,
    Query(q): Query<WithFlash<P::Filter>>,
) -> Result<Response, PageError> {
    let (q, flash) = q.split();
    P::list(&s, &who, page, q, flash, Draft::default()).await
}

/// `GET /<panel>/{id}`: one item with its edit form.
async fn item_page<P: Panel>(
    State(s): State<AppState>,
    PageAuthed(who, ..): PageAuthed<Read>,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Response, PageError> {
    P::item(&s, &who, id, flash, Draft::default()).await
}

/// The create form again after an error: the list unfiltered, the form as it was typed.
async fn list_again<P: Panel>(s: &AppState, who: &Identity, e: ApiError, draft: Draft) -> Response {
    let page = P::list(
        s,
        who,
        Pagination::default(),
        P::Filter::default(),
        error_flash(&e),
        draft,
    )
    .await;
    form_again(e.status, page)
}

/// The edit form again after an error, as it was typed.
async fn item_again<P: Panel>(
    s: &AppState,
    who: &Identity,
    id: i64,
    e: ApiError,
    draft: Draft,
) -> Response {
    form_again(e.status, P::item(s, who, id, error_flash(&e), draft).await)
}

// ---- form helpers: HTML forms send every field as text, empty meaning "none" ----

fn opt_text(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn opt_id(field: &'static str, v: &str) -> Result<Option<i64>, ApiError> {
    match v.trim() {
        "" => Ok(None),
        s => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::invalid(field, format!("{field} must be a number"))),
    }
}

fn num(field: &'static str, v: &str, default: i64) -> Result<i64, ApiError> {
    opt_id(field, v).map(|n| n.unwrap_or(default))
}

fn tags_of(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// Runs a tracking action for a form and redirects: to `ok_to` with a notice, or back to
/// `back_to` with the error.
fn finish<T>(
    result: Result<T, actions::TrackingError>,
    ok_to: impl FnOnce(&T) -> (String, String),
    back_to: &str,
) -> Response {
    match result {
        Ok(v) => {
            let (to, notice) = ok_to(&v);
            see_other(&to, &notice)
        }
        Err(e) => back_with_error(back_to, &ApiError::from(e)),
    }
}

/// An edit form's answer: to `ok_to` with a notice, or (`again`) its page shown again as typed
/// with the error.
async fn finish_or_again<T, Fut>(
    result: Result<T, ApiError>,
    ok_to: impl FnOnce(&T) -> (String, String),
    again: impl FnOnce(ApiError) -> Fut,
) -> Response
where
    Fut: std::future::Future<Output = Response>,
{
    match result {
        Ok(v) => {
            let (to, notice) = ok_to(&v);
            see_other(&to, &notice)
        }
        Err(e) => again(e).await,
    }
}

/// The error as the flash of a page shown again.
fn error_flash(e: &ApiError) -> Flash {
    Flash {
        notice: None,
        error: Some(e.message.clone()),
    }
}

fn ctx_of<'a>(s: &'a AppState, actor: &'a str, now: &'a str) -> Ctx<'a> {
    Ctx {
        actor,
        now,
        events: &s.events,
    }
}

fn layout(s: &AppState, who: &Identity, key: &'static str, title: &str, flash: &Flash) -> Layout {
    Layout::new(s, who, key, title).with_flash(flash)
}

/// Flash messages and filters share one query string.
#[derive(Deserialize, Default)]
struct WithFlash<F> {
    #[serde(flatten)]
    filter: F,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl<F> WithFlash<F> {
    fn split(self) -> (F, Flash) {
        (
            self.filter,
            Flash {
                notice: self.notice,
                error: self.error,
            },
        )
    }
}

/// Project pickers and id → name lookups for tables.
struct Names(Vec<(i64, String)>);

impl Names {
    async fn load(s: &AppState) -> Result<Names, sqlx::Error> {
        Ok(Names(store::project_names(&s.db).await?))
    }
    fn of(&self, id: &i64) -> String {
        self.0
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| format!("#{id} (archived)"))
    }
    fn opt(&self, id: &Option<i64>) -> String {
        id.as_ref().map(|i| self.of(i)).unwrap_or_default()
    }
}

/// Milestones grouped under their project, for a milestone picker: `<optgroup>` per project
/// (without JavaScript), and the script shows only the chosen project's group.
pub struct MilestoneGroup<'a> {
    pub project_id: i64,
    pub project: String,
    pub milestones: Vec<&'a Milestone>,
}

fn milestone_groups<'a>(names: &Names, milestones: &'a [Milestone]) -> Vec<MilestoneGroup<'a>> {
    let mut groups: Vec<MilestoneGroup<'a>> = Vec::new();
    for m in milestones {
        match groups.iter_mut().find(|g| g.project_id == m.project_id) {
            Some(g) => g.milestones.push(m),
            None => groups.push(MilestoneGroup {
                project_id: m.project_id,
                project: names.of(&m.project_id),
                milestones: vec![m],
            }),
        }
    }
    groups.sort_by(|a, b| a.project.cmp(&b.project));
    groups
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
    #[serde(default)]
    comment: String,
    /// Where to go afterwards: the list or the detail page (a same-site path).
    #[serde(default)]
    back: String,
}

fn back_path(back: &str, default: String) -> String {
    crate::web::local_path(back)
        .map(str::to_string)
        .unwrap_or(default)
}

async fn feature_status(
    State(s): State<AppState>,
    Path(id): Path<i64>,
    PageForm(who, f, ..): PageForm<Write, StatusForm>,
) -> Response {
    let back = back_path(&f.back, format!("/features/{id}"));
    let status = match f.status.parse::<FeatureStatus>() {
        Ok(st) => st,
        Err(m) => return back_with_error(&back, &ApiError::invalid("status", m)),
    };
    let patch = FeaturePatch {
        status: Some(status),
        comment: opt_text(&f.comment),
        ..Default::default()
    };
    let (actor, now) = (who.actor(), s.clock.now_str());
    let r = actions::update_feature(&s.db, &ctx_of(&s, &actor, &now), id, patch).await;
    let to = back.clone();
    finish(
        r,
        move |f| (to, format!("Feature '{}' is now {}.", f.name, f.status)),
        &back,
    )
}
