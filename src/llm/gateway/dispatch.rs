//! The request path every gateway call shares, over HTTP (`serve`) or in process
//! ([`super::complete`]): prices and budgets (a spent budget refuses), vault keys, the failover
//! chain with its breakers, and the ledger row of every outcome.

use super::*;

/// Everything about a request the ledger row needs.
pub(super) struct Ctx {
    pub(super) state: crate::llm::LlmState,
    pub(super) format: Format,
    pub(super) token_id: Option<i64>,
    pub(super) caller: String,
    pub(super) project: Option<String>,
    pub(super) requested_model: String,
    pub(super) stream: bool,
    pub(super) started: Instant,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        provider: Option<ProviderId>,
        model: &str,
        usage: Usage,
        estimated: bool,
        outcome: Outcome,
        status: u16,
        failovers: usize,
        error: Option<String>,
    ) -> (LedgerRow, i64) {
        let cost = match provider {
            Some(p) => self.state.llm.book.cost(p, model, usage),
            None => 0,
        };
        let row = LedgerRow {
            at: self.state.clock.now_str(),
            provider,
            model: model.to_owned(),
            requested_model: self.requested_model.clone(),
            format: self.format,
            caller_token_id: self.token_id,
            caller: self.caller.clone(),
            project: self.project.clone(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_nanos: cost,
            estimated,
            outcome,
            status,
            latency_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            stream: self.stream,
            failovers: u32::try_from(failovers).unwrap_or(u32::MAX),
            error,
        };
        (row, cost)
    }

    /// Records the row (write-behind), the failover events, spend and Prometheus counters.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &self,
        provider: Option<ProviderId>,
        model: &str,
        usage: Usage,
        estimated: bool,
        outcome: Outcome,
        status: u16,
        failed: &[FailedAttempt],
        error: Option<String>,
    ) {
        let called: Vec<&FailedAttempt> = failed.iter().filter(|f| f.called).collect();
        let (row, cost) = self.row(
            provider,
            model,
            usage,
            estimated,
            outcome,
            status,
            called.len(),
            error,
        );
        let at = row.at.clone();
        let events = called
            .iter()
            .enumerate()
            .map(|(i, f)| FailoverEvent {
                at: at.clone(),
                from: f.provider,
                to: called.get(i + 1).map(|n| n.provider).or(provider),
                kind: f.kind,
                reason: f.reason.clone(),
                caller_token_id: self.token_id,
                project: self.project.clone(),
            })
            .collect();
        if let Some(p) = provider {
            Metrics::usage(p, usage, cost);
        }
        self.state.llm.book.add_spend(
            self.token_id,
            self.project.as_deref(),
            cost,
            self.state.clock.now(),
        );
        self.state.llm.ledger.record(row, events);
    }

    /// Records a complete (not streamed) answer; its usage, estimated when the provider
    /// reported none.
    pub(super) fn record_complete(
        &self,
        (provider, model, failed): (ProviderId, &str, &[FailedAttempt]),
        completion: &super::super::completion::Completion,
        inbound: &Inbound,
    ) -> Usage {
        let (usage, estimated) = match completion.usage {
            Some(u) => (u, false),
            None => (estimate_usage(inbound, completion.text().len()), true),
        };
        self.record(
            Some(provider),
            model,
            usage,
            estimated,
            Outcome::Ok,
            200,
            failed,
            None,
        );
        usage
    }
}

/// Why a dispatched request has no answer. Each is recorded in the ledger already (except
/// `Unavailable`, which spent nothing).
pub(super) enum Stop {
    /// The price table could not be loaded.
    Unavailable,
    /// A budget is spent.
    Refused(String),
    /// The provider refused the request itself (no failover).
    Client {
        provider: ProviderId,
        status: u16,
        message: String,
        raw: Bytes,
        failed: Vec<FailedAttempt>,
        warnings: Vec<String>,
    },
    /// Every provider failed or was skipped.
    Exhausted {
        status: StatusCode,
        message: String,
        retry_after: Option<u64>,
        failed: Vec<FailedAttempt>,
    },
}

impl Stop {
    /// The error as the HTTP gateway answers it (`Client` is relayed by `serve` itself).
    pub(super) fn into_error(self) -> GatewayError {
        match self {
            Stop::Unavailable => GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the gateway's price table is unavailable; try again shortly",
            ),
            Stop::Refused(message) => {
                let mut e =
                    GatewayError::new(StatusCode::TOO_MANY_REQUESTS, "budget_exceeded", message);
                e.retry_after = Some(3600);
                e
            }
            Stop::Client {
                provider,
                status,
                message,
                ..
            } => GatewayError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                "provider_rejected",
                format!("{provider} rejected the request: {message}"),
            ),
            Stop::Exhausted {
                status,
                message,
                retry_after,
                ..
            } => {
                let mut e = GatewayError::new(status, "providers_unavailable", message);
                e.retry_after = retry_after;
                e
            }
        }
    }
}

/// Budgets, vault keys and the failover chain for one request: the provider's answer with the
/// budget warnings to pass on, or why there is none (recorded).
pub(super) async fn dispatch(
    ctx: &Ctx,
    inbound: &Inbound,
    prefer: Option<ProviderId>,
) -> Result<(Served, Vec<String>), Stop> {
    let state = &ctx.state;
    if let Err(e) = state.llm.book.ensure_loaded(state).await {
        tracing::error!(error = %e, "llm: cannot load prices and budgets");
        return Err(Stop::Unavailable);
    }
    let warnings = match state.llm.book.check(
        ctx.token_id,
        ctx.project.as_deref(),
        state.clock.now(),
    ) {
        Verdict::Refuse { message } => {
            tracing::warn!(caller = %ctx.caller, project = ?ctx.project, "llm budget spent: request refused");
            metrics::counter!("llm_budget_refusals_total").increment(1);
            ctx.record(
                None,
                "",
                Usage::default(),
                false,
                Outcome::Refused,
                429,
                &[],
                Some(message.clone()),
            );
            return Err(Stop::Refused(message));
        }
        Verdict::Allow { warnings } => {
            for w in &warnings {
                tracing::warn!(caller = %ctx.caller, warning = %w, "llm budget warning");
                metrics::counter!("llm_budget_warnings_total").increment(1);
            }
            warnings
        }
    };
    refresh_vault_keys(state).await;
    match state.llm.client.send(inbound, prefer).await {
        Ok(s) => Ok((s, warnings)),
        Err(CallError::Client {
            provider,
            status,
            message,
            raw,
            failed,
        }) => {
            ctx.record(
                Some(provider),
                "",
                Usage::default(),
                false,
                Outcome::ClientError,
                status,
                &failed,
                Some(message.clone()),
            );
            Err(Stop::Client {
                provider,
                status,
                message,
                raw,
                failed,
                warnings,
            })
        }
        Err(e @ CallError::Exhausted { .. }) => {
            let message = e.to_string();
            let CallError::Exhausted {
                failed,
                retry_after,
            } = e
            else {
                unreachable!()
            };
            let all_limited = !failed.is_empty()
                && failed
                    .iter()
                    .all(|f| matches!(f.kind, "rate_limited" | "status_429" | "not_configured"));
            let status = if all_limited && retry_after.is_some() {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            ctx.record(
                None,
                "",
                Usage::default(),
                false,
                Outcome::Failed,
                status.as_u16(),
                &failed,
                Some(message.clone()),
            );
            Err(Stop::Exhausted {
                status,
                message,
                retry_after,
                failed,
            })
        }
    }
}
