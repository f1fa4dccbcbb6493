//! What every gateway request goes through first: the caller's token (`authenticate`), the
//! shape of its body in the client's format (`validate`), and the error answered in that
//! format (`GatewayError`).

use super::*;

/// An error answered in the client's format.
#[derive(Debug)]
pub struct GatewayError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl GatewayError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(super) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// Anthropic's error `type` for a status (OpenAI clients get the same words).
    pub(super) fn kind(&self) -> &'static str {
        match self.status.as_u16() {
            400 | 405 | 415 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            _ => "api_error",
        }
    }

    pub fn into_response(self, format: Format) -> Response {
        let body = match format {
            Format::Anthropic => {
                json!({"type": "error", "error": {"type": self.kind(), "message": self.message}, "code": self.code})
            }
            Format::OpenAi => {
                json!({"error": {"message": self.message, "type": self.kind(), "code": self.code, "param": null}})
            }
        };
        let mut resp = (self.status, crate::http::extract::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Who is calling: a token-authenticated identity allowed to spend money on models.
pub(super) async fn authenticate(
    parts: &mut axum::http::request::Parts,
    state: &crate::llm::LlmState,
) -> Result<Identity, GatewayError> {
    // Anthropic clients send the key as x-api-key; the token lookup reads the bearer header, so
    // present it there (never both: an explicit Authorization header wins).
    if !parts.headers.contains_key(header::AUTHORIZATION) {
        if let Some(key) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", key.trim())) {
                parts.headers.insert(header::AUTHORIZATION, v);
            }
        }
    }
    // Tokens only: a browser session must not be able to spend through a cross-site post.
    parts.headers.remove(header::COOKIE);
    let unauthorized = || {
        GatewayError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an architect API token as 'x-api-key: <token>' or 'Authorization: Bearer <token>' (architect token create)",
        )
    };
    let identity = crate::auth::extract::resolve(parts, &state.auth)
        .await
        .map_err(|e| GatewayError::new(e.status, e.code, e.message))?
        .ok_or_else(unauthorized)?;
    if !matches!(identity.via, AuthVia::Token { .. }) {
        return Err(unauthorized());
    }
    if !identity.can(Capability::Llm) {
        return Err(GatewayError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token may not call the LLM gateway: use a token with the admin, agent or worker scope",
        ));
    }
    Ok(identity)
}

pub(super) fn check_messages(v: &Value, roles: &[&str]) -> Result<(), GatewayError> {
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::bad("messages: required, a list of messages"))?;
    if msgs.is_empty() {
        return Err(GatewayError::bad(
            "messages: must hold at least one message",
        ));
    }
    for (i, m) in msgs.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| GatewayError::bad(format!("messages.{i}.role: required, a string")))?;
        if !roles.contains(&role) {
            return Err(GatewayError::bad(format!(
                "messages.{i}.role: '{role}' is not one of {}",
                roles.join(", ")
            )));
        }
        match m.get("content") {
            Some(Value::String(_)) | Some(Value::Array(_)) => {}
            Some(Value::Null) | None if role == "assistant" => {}
            _ => {
                return Err(GatewayError::bad(format!(
                    "messages.{i}.content: required, a string or a list of content blocks"
                )))
            }
        }
    }
    Ok(())
}

/// The shape checks the gateway needs before spending anything; the provider judges the rest.
pub(super) fn validate(format: Format, v: &Value) -> Result<(), GatewayError> {
    if !v.is_object() {
        return Err(GatewayError::bad("the body must be a JSON object"));
    }
    match v.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() && m.len() <= 200 => {}
        _ => return Err(GatewayError::bad("model: required, a non-empty string")),
    }
    if !matches!(
        v.get("stream"),
        None | Some(Value::Bool(_)) | Some(Value::Null)
    ) {
        return Err(GatewayError::bad("stream: must be true or false"));
    }
    match format {
        Format::Anthropic => {
            match v.get("max_tokens").and_then(Value::as_u64) {
                Some(n) if n > 0 => {}
                _ => {
                    return Err(GatewayError::bad(
                        "max_tokens: required, a positive integer",
                    ))
                }
            }
            // Claude Code puts role "system" messages into `messages`; Anthropic accepts them.
            check_messages(v, &["user", "assistant", "system"])
        }
        Format::OpenAi => {
            for k in ["max_tokens", "max_completion_tokens"] {
                if !matches!(v.get(k), None | Some(Value::Null))
                    && v[k].as_u64().is_none_or(|n| n == 0)
                {
                    return Err(GatewayError::bad(format!(
                        "{k}: must be a positive integer"
                    )));
                }
            }
            check_messages(
                v,
                &[
                    "system",
                    "developer",
                    "user",
                    "assistant",
                    "tool",
                    "function",
                ],
            )
        }
    }
}
