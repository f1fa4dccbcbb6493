//! The gateway in process: [`complete`] sends an Anthropic Messages request down the same path
//! as `POST /v1/messages` (budgets, vault keys, the failover chain and its breakers, the ledger
//! row) without an HTTP hop, for architect's own features (the planner's LLM pass). The caller
//! is named in the ledger (`caller`, no token) and the project is charged as with
//! `x-architect-project`.

use super::super::completion::Completion;
use super::*;

/// Why an in-process request has no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The request itself is malformed (the caller's bug).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The price table could not be loaded.
    #[error("the gateway's price table is unavailable")]
    Unavailable,
    /// A budget is spent.
    #[error("{0}")]
    Refused(String),
    /// The provider refused the request itself.
    #[error("{provider} rejected the request ({status}): {message}")]
    Rejected {
        provider: ProviderId,
        status: u16,
        message: String,
    },
    /// Every provider failed or was skipped; `kinds` are the failures' kinds (`timeout`,
    /// `connect`, `status_5xx`, `not_configured`, ...).
    #[error("{message}")]
    Failed {
        message: String,
        kinds: Vec<&'static str>,
    },
}

/// One non-streamed answer to an Anthropic Messages body (`stream` is forced off), served by
/// the failover chain and recorded in the ledger with `caller` and `project`.
pub async fn complete(
    state: &crate::llm::LlmState,
    caller: &str,
    project: Option<&str>,
    mut request: Value,
) -> Result<Completion, LlmError> {
    let _in_flight = state.llm.ledger.begin();
    if let Some(o) = request.as_object_mut() {
        o.insert("stream".into(), Value::Bool(false));
    }
    validate(Format::Anthropic, &request).map_err(|e| LlmError::Invalid(e.message))?;
    let ctx = Ctx {
        state: state.clone(),
        format: Format::Anthropic,
        token_id: None,
        caller: caller.to_owned(),
        project: project.map(str::to_owned),
        requested_model: request["model"].as_str().unwrap_or("").to_owned(),
        stream: false,
        started: Instant::now(),
    };
    let inbound = Inbound::anthropic(request, Vec::new());
    let (served, _warnings) = dispatch(&ctx, &inbound, None)
        .await
        .map_err(|stop| match stop {
            Stop::Unavailable => LlmError::Unavailable,
            Stop::Refused(m) => LlmError::Refused(m),
            Stop::Client {
                provider,
                status,
                message,
                ..
            } => LlmError::Rejected {
                provider,
                status,
                message,
            },
            Stop::Exhausted {
                message, failed, ..
            } => LlmError::Failed {
                message,
                kinds: failed.iter().map(|f| f.kind).collect(),
            },
        })?;
    match served.body {
        ServedBody::Complete { completion, .. } => {
            ctx.record_complete(
                (served.provider, &served.model, &served.failed),
                &completion,
                &inbound,
            );
            Ok(completion)
        }
        ServedBody::Stream(_) => {
            // Not asked for; a provider that streams anyway is answered as a failure.
            let message = format!(
                "{} streamed an answer that was not asked for",
                served.provider
            );
            ctx.record(
                Some(served.provider),
                &served.model,
                Usage::default(),
                false,
                Outcome::Failed,
                502,
                &served.failed,
                Some(message.clone()),
            );
            Err(LlmError::Failed {
                message,
                kinds: vec!["bad_response"],
            })
        }
    }
}
