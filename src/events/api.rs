//! `GET /api/events`: live events as server-sent events.
//!
//! `?topics=errors,tasks` narrows the stream (all topics without it). Each event is sent as
//! `event: <topic>` with `{"topic", "action", "id"}` as its data; the stream opens with a
//! `ready` event listing its topics, sends `resync` when the watcher fell behind or events
//! of other replicas may have been missed (refetch everything; see `events::replicas`), and ends when the server shuts down or the caller's session or token stops
//! being valid (checked every [`RECHECK`]). Reading the stream does not extend a session: an
//! open tab still times out (see `auth::extract::is_passive`).

use super::{parse_topics, Topic};
use crate::app::AppState;
use crate::auth::extract::{Authed, Read};
use crate::http::error::ApiError;
use crate::http::extract::Query;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How often a stream re-checks that its caller is still signed in.
pub const RECHECK: Duration = Duration::from_secs(15);

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/events", get(events))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    topics: Option<String>,
}

async fn events(
    axum::extract::State(state): axum::extract::State<AppState>,
    _: Authed<Read>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let topics = parse_topics(q.topics.as_deref()).map_err(|m| ApiError::invalid("topics", m))?;
    let rx = state.events.subscribe();
    let ready = serde_json::json!({ "topics": topics });
    let stream = async_stream(state, headers, topics, rx, ready);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(20))))
}

/// A stream's state between events.
struct Watch {
    state: AppState,
    headers: HeaderMap,
    topics: Vec<Topic>,
    rx: tokio::sync::broadcast::Receiver<super::Event>,
    /// Moves when events may have been missed (`Events::resyncs`).
    resyncs: tokio::sync::watch::Receiver<u64>,
    recheck: tokio::time::Interval,
    /// The `ready` event, sent first.
    first: Option<SseEvent>,
    /// Set after the last event (`signed_out`): the next poll ends the stream.
    done: bool,
}

fn async_stream(
    state: AppState,
    headers: HeaderMap,
    topics: Vec<Topic>,
    rx: tokio::sync::broadcast::Receiver<super::Event>,
    ready: serde_json::Value,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let w = Watch {
        first: Some(SseEvent::default().event("ready").data(ready.to_string())),
        recheck: tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK),
        resyncs: state.events.resyncs(),
        state,
        headers,
        topics,
        rx,
        done: false,
    };
    futures_util::stream::unfold(w, |mut w| async move {
        if w.done {
            return None;
        }
        if let Some(ev) = w.first.take() {
            return Some((Ok(ev), w));
        }
        loop {
            tokio::select! {
                biased;
                _ = w.state.events.closed() => return None,
                _ = w.recheck.tick() => {
                    if !crate::auth::extract::still_signed_in(&w.state, &w.headers).await {
                        w.done = true;
                        return Some((Ok(SseEvent::default().event("signed_out").data("{}")), w));
                    }
                }
                Ok(()) = w.resyncs.changed() => {
                    return Some((Ok(SseEvent::default().event("resync").data("{}")), w));
                }
                got = w.rx.recv() => match got {
                    Ok(ev) if w.topics.contains(&ev.topic) => {
                        let data = serde_json::to_string(&ev).unwrap_or_default();
                        return Some((Ok(SseEvent::default().event(ev.topic.as_str()).data(data)), w));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        return Some((Ok(SseEvent::default().event("resync").data("{}")), w));
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    })
}
