//! Observability plumbing: a request id on every request and log line, a tracing span per
//! request, and Prometheus metrics for requests (count and latency by route and status).

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{OnResponse, TraceLayer};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The process-wide Prometheus recorder (installed on first use; one per process).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("http_request_duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .and_then(|b| {
                // The LLM gateway: time to a provider's answer (or a stream's first event).
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "llm_request_duration_seconds".into(),
                    ),
                    &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0],
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(h) => h,
            // Another recorder is installed (cannot happen in the binary); keep a private one
            // so /metrics still answers.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// Counts and times every request by method, matched route and status.
pub async fn record_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// Adds the request-id and tracing layers: the id comes from `X-Request-Id` or a new UUID, is
/// put on the request's span (so every log line of the request carries it) and echoed back.
pub fn with_tracing<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(make_span as fn(&Request) -> tracing::Span)
                    .on_response(LogResponse),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
    )
}

fn make_span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
}

/// A request slower than this is logged at INFO even when it succeeded.
pub const SLOW_REQUEST: std::time::Duration = std::time::Duration::from_secs(1);

/// One line per finished request: at INFO when it failed (4xx/5xx) or was slow, at DEBUG
/// otherwise. Most traffic is machines (heartbeats, claims, error reports, long-polls); a line
/// per success at INFO costs an ingest server a fifth of its throughput and buries the lines
/// that matter. `RUST_LOG=debug` (or `tower_http=debug`) shows every request again.
#[derive(Clone, Copy)]
struct LogResponse;

impl<B> OnResponse<B> for LogResponse {
    fn on_response(
        self,
        response: &axum::http::Response<B>,
        latency: std::time::Duration,
        _span: &tracing::Span,
    ) {
        let status = response.status().as_u16();
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if status >= 400 || latency >= SLOW_REQUEST {
            tracing::info!(status, latency_us, "finished processing request");
        } else {
            tracing::debug!(status, latency_us, "finished processing request");
        }
    }
}
