//! `ApiError`: the one error type at the HTTP boundary.
//!
//! Every failure leaves as `{"error": "<human message>", "code": "<snake_case>", "field"?}`
//! with a fitting status. Internal causes are logged once (inside the request's span, so with
//! its request id) and never sent to the client.
//!
//! Stable codes (clients may match on them):
//!
//! | status | code                    | meaning                                            |
//! |--------|-------------------------|----------------------------------------------------|
//! | 400    | `invalid_json`          | body is not JSON / not the expected shape          |
//! | 400    | `invalid_request`       | path or query cannot be parsed                     |
//! | 400    | `invalid_encoding`      | body does not match its `Content-Encoding`         |
//! | 401    | `unauthorized`          | no valid session or token                          |
//! | 401    | `invalid_credentials`   | wrong username or password                         |
//! | 403    | `forbidden`             | authenticated, but role or scope does not allow it |
//! | 403    | `csrf_failed`           | cookie-authenticated change without a valid token  |
//! | 403    | `step_up_required`      | a vault value needs a recent password (session)    |
//! | 404    | `not_found`             | no such route or entity                            |
//! | 405    | `method_not_allowed`    |                                                    |
//! | 409    | `conflict`              | duplicate name or conflicting state                |
//! | 409    | `invalid_transition`    | status change not allowed from the current status  |
//! | 409    | `lease_lost`            | a task answer under an expired or replaced lease   |
//! | 409    | `command_timed_out`     | a node command's answer after its deadline         |
//! | 413    | `payload_too_large`     | body over the configured limit                     |
//! | 415    | `unsupported_media_type`| body is not `application/json`                     |
//! | 422    | `invalid_field`         | a field is missing, of the wrong type or invalid   |
//! | 429    | `too_many_requests`     | throttled; see `Retry-After`                       |
//! | 500    | `internal`              | a bug or an unreachable dependency; details logged |
//! | 500    | `integrity_error`       | a stored vault value failed authentication         |
//! | 500    | `key_file_error`        | a vault key file could not be written or renamed   |
//! | 502    | `command_failed`        | a node's agent ran the command and it failed       |
//! | 502    | `tmux_failed`           | tmux could not be run, hung, or refused a command  |
//! | 503    | `unavailable`           | a dependency (e.g. the database) is down           |
//! | 503    | `vault_sealed`          | no usable vault master key; admins see why in the vault status |
//! | 507    | `insufficient_storage`  | error ingest refused: disk nearly full or database too large |
//!
//! The LLM gateway (`/v1/*`) answers in its client's own error shape (Anthropic
//! `{"type":"error","error":{...},"code"}`, OpenAI `{"error":{...,"code"}}`) with these codes too:
//!
//! | status | code                    | meaning                                            |
//! |--------|-------------------------|----------------------------------------------------|
//! | 429    | `budget_exceeded`       | the caller's or project's LLM budget is spent      |
//! | 429/503| `providers_unavailable` | every provider failed or was skipped; the message lists why |
//! | 4xx    | `provider_rejected`     | the provider refused the request as malformed (relayed) |
//! | 503    | `gateway_busy`          | in-flight request bytes at `LLM_MAX_IN_FLIGHT_BYTES`; see `Retry-After` |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds, sent as `Retry-After` with 429 and 503.
    pub retry_after: Option<u64>,
    /// Extra machine-readable detail, e.g. the allowed next statuses of a transition.
    pub allowed: Option<Vec<String>>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed: Option<&'a [String]>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            allowed: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required: log in or send 'Authorization: Bearer <token>'",
        )
    }
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "invalid username or password",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn csrf_failed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "missing or wrong CSRF token: send the X-CSRF-Token header (GET /api/csrf/token)",
        )
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn invalid_transition(message: impl Into<String>, allowed: Vec<String>) -> Self {
        let mut e = Self::new(StatusCode::CONFLICT, "invalid_transition", message);
        e.field = Some("status".into());
        e.allowed = Some(allowed);
        e
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than the limit of {limit} bytes"),
        )
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
    }
    pub fn too_many(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message);
        e.retry_after = Some(retry_after.max(1));
        e
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// An unexpected failure: the cause is logged here, the client sees a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details (search for this request's id)",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                tracing::error!(error = %e, "database unavailable");
                let mut err = ApiError::unavailable("database unavailable; try again shortly");
                err.retry_after = Some(5);
                err
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            code: self.code,
            field: self.field.as_deref(),
            allowed: self.allowed.as_deref(),
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
