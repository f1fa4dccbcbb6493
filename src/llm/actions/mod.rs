//! Prices, budgets and the summaries built from the ledger: the [`Book`] here, edits in
//! `edits.rs`, ledger summaries in `summaries.rs`.
//!
//! The [`Book`] caches the price table and the budgets (with each budget's spend in its current
//! period) so the gateway's hot path prices a request and checks budgets without touching the
//! database. Every edit through the API reloads it; spend is seeded from the ledger at load and
//! then kept current by the gateway as it records costs.
//!
//! Budgets act: at `warn_ratio` of the limit the gateway adds an `x-architect-budget-warning`
//! header, logs a warning and counts `llm_budget_warnings_total`; once the limit is reached it
//! refuses with 429 `budget_exceeded` until the period (day, month) rolls over or the budget
//! is raised.

use super::store;
use super::{dollars, Nanos, ProviderId, Usage};
use crate::llm::LlmState;
use crate::validate::Invalid;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use time::OffsetDateTime;

mod edits;
mod summaries;
pub use edits::*;
pub use summaries::*;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("{}", .0.message)]
    Invalid(Invalid),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

crate::text_enum! {
    /// What a budget is attached to.
    pub enum BudgetScope ("budget scope") {
        /// One API token (a caller: an agent session, a worker, a person's CLI).
        Token = "token",
        /// Requests sent with `X-Architect-Project: <name>`.
        Project = "project",
    }
}

crate::text_enum! {
    /// The window a budget's limit applies to (UTC calendar periods).
    pub enum Period ("period") {
        Day = "day",
        Month = "month",
        Total = "total",
    }
}

impl Period {
    /// Start of the period containing `now`, in stored-time text.
    pub fn start(self, now: OffsetDateTime) -> String {
        let d = now.to_offset(time::UtcOffset::UTC).date();
        match self {
            Period::Day => format!(
                "{:04}-{:02}-{:02}T00:00:00.000000Z",
                d.year(),
                u8::from(d.month()),
                d.day()
            ),
            Period::Month => format!(
                "{:04}-{:02}-01T00:00:00.000000Z",
                d.year(),
                u8::from(d.month())
            ),
            Period::Total => String::new(),
        }
    }
}

/// A budget as the hot path uses it.
#[derive(Debug, Clone)]
pub struct Budget {
    pub id: i64,
    pub scope: BudgetScope,
    pub target: String,
    pub period: Period,
    pub limit_nanos: Nanos,
    pub warn_ratio: f64,
}

impl Budget {
    fn applies(&self, token_id: Option<i64>, project: Option<&str>) -> bool {
        match self.scope {
            BudgetScope::Token => token_id.is_some_and(|t| self.target == t.to_string()),
            BudgetScope::Project => project.is_some_and(|p| self.target == p),
        }
    }

    fn describe(&self) -> String {
        let per = match self.period {
            Period::Day => " per day",
            Period::Month => " per month",
            Period::Total => "",
        };
        format!(
            "{} budget of {}{per} for {} '{}'",
            self.scope,
            dollars(self.limit_nanos),
            self.scope,
            self.target
        )
    }
}

/// A price with its per-token cost in nano-dollars.
#[derive(Debug, Clone)]
struct Rate {
    provider: String,
    model: String,
    input: Nanos,
    output: Nanos,
}

/// USD per million tokens → nano-dollars per token (exact to $0.001 per million).
fn per_token(usd_per_mtok: f64) -> Nanos {
    (usd_per_mtok * 1000.0).round() as Nanos
}

#[derive(Default)]
struct Loaded {
    rates: Vec<Rate>,
    budgets: Vec<Budget>,
}

/// Cached prices and budgets with current spend.
#[derive(Default)]
pub struct Book {
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// Budget id → (start of the period the spend belongs to, spend in nano-dollars).
    spend: Mutex<HashMap<i64, (String, Nanos)>>,
}

/// What the budget check says about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allow { warnings: Vec<String> },
    Refuse { message: String },
}

impl Book {
    fn current(&self) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads prices and budgets on first use.
    pub async fn ensure_loaded(&self, state: &LlmState) -> Result<(), sqlx::Error> {
        if self.current().is_some() {
            return Ok(());
        }
        self.reload(state).await
    }

    /// Re-reads prices and budgets, and seeds each budget's spend from the ledger (buffered
    /// rows are written first so they count).
    pub async fn reload(&self, state: &LlmState) -> Result<(), sqlx::Error> {
        state.llm.ledger.flush(&state.db).await?;
        let prices = store::list_prices(&state.db).await?;
        let rows = store::list_budgets(&state.db).await?;
        let now = state.clock.now();
        let mut budgets = Vec::new();
        let mut spend = HashMap::new();
        for r in rows {
            let (Ok(scope), Ok(period)) =
                (r.scope.parse::<BudgetScope>(), r.period.parse::<Period>())
            else {
                continue;
            };
            let b = Budget {
                id: r.id,
                scope,
                target: r.target,
                period,
                limit_nanos: (r.limit_usd * 1e9).round() as Nanos,
                warn_ratio: r.warn_ratio,
            };
            let since = period.start(now);
            let spent = match scope {
                BudgetScope::Token => match b.target.parse::<i64>() {
                    Ok(t) => store::spent_by_token(&state.db, t, &since).await?,
                    Err(_) => 0,
                },
                BudgetScope::Project => {
                    store::spent_by_project(&state.db, &b.target, &since).await?
                }
            };
            spend.insert(b.id, (since, spent));
            budgets.push(b);
        }
        let rates = prices
            .into_iter()
            .map(|p| Rate {
                input: per_token(p.input_usd_per_mtok),
                output: per_token(p.output_usd_per_mtok),
                provider: p.provider,
                model: p.model,
            })
            .collect();
        *self.spend.lock().unwrap_or_else(|e| e.into_inner()) = spend;
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Arc::new(Loaded { rates, budgets }));
        Ok(())
    }

    /// Cost of `usage` on `provider`'s `model`: the exact model's price, else the longest
    /// matching `prefix*`; no price → 0 (logged once per call at debug).
    pub fn cost(&self, provider: ProviderId, model: &str, usage: Usage) -> Nanos {
        let Some(l) = self.current() else { return 0 };
        let mut best: Option<(&Rate, usize)> = None;
        for r in l.rates.iter().filter(|r| r.provider == provider.as_str()) {
            let score = if r.model == model {
                usize::MAX
            } else if let Some(prefix) = r.model.strip_suffix('*') {
                if model.starts_with(prefix) {
                    prefix.len()
                } else {
                    continue;
                }
            } else {
                continue;
            };
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((r, score));
            }
        }
        match best {
            Some((r, _)) => {
                let i = i64::try_from(usage.input_tokens).unwrap_or(i64::MAX);
                let o = i64::try_from(usage.output_tokens).unwrap_or(i64::MAX);
                i.saturating_mul(r.input)
                    .saturating_add(o.saturating_mul(r.output))
            }
            None => {
                tracing::debug!(%provider, model, "no price for this model; cost recorded as 0");
                0
            }
        }
    }

    fn spent(&self, b: &Budget, now: OffsetDateTime) -> Nanos {
        let start = b.period.start(now);
        let mut spend = self.spend.lock().unwrap_or_else(|e| e.into_inner());
        let e = spend.entry(b.id).or_insert_with(|| (start.clone(), 0));
        if e.0 != start {
            *e = (start, 0);
        }
        e.1
    }

    /// Checks every budget that applies to this caller and project.
    pub fn check(
        &self,
        token_id: Option<i64>,
        project: Option<&str>,
        now: OffsetDateTime,
    ) -> Verdict {
        let Some(l) = self.current() else {
            return Verdict::Allow {
                warnings: Vec::new(),
            };
        };
        let mut warnings = Vec::new();
        for b in l.budgets.iter().filter(|b| b.applies(token_id, project)) {
            let spent = self.spent(b, now);
            if spent >= b.limit_nanos {
                return Verdict::Refuse {
                    message: format!(
                        "the {} is spent ({} used); raise it or wait for the next period",
                        b.describe(),
                        dollars(spent)
                    ),
                };
            }
            if spent as f64 >= b.limit_nanos as f64 * b.warn_ratio {
                warnings.push(format!("{} of the {} used", dollars(spent), b.describe()));
            }
        }
        Verdict::Allow { warnings }
    }

    /// Adds a recorded cost to every budget it counts against.
    pub fn add_spend(
        &self,
        token_id: Option<i64>,
        project: Option<&str>,
        cost: Nanos,
        now: OffsetDateTime,
    ) {
        if cost == 0 {
            return;
        }
        let Some(l) = self.current() else { return };
        for b in l.budgets.iter().filter(|b| b.applies(token_id, project)) {
            self.spent(b, now);
            let mut spend = self.spend.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = spend.get_mut(&b.id) {
                e.1 = e.1.saturating_add(cost);
            }
        }
    }

    /// Budgets with their current spend, for the API and the page.
    pub fn budget_status(&self, now: OffsetDateTime) -> Vec<BudgetStatus> {
        let Some(l) = self.current() else {
            return Vec::new();
        };
        l.budgets
            .iter()
            .map(|b| {
                let spent = self.spent(b, now);
                BudgetStatus {
                    id: b.id,
                    scope: b.scope.as_str(),
                    target: b.target.clone(),
                    period: b.period.as_str(),
                    limit_usd: b.limit_nanos as f64 / 1e9,
                    warn_ratio: b.warn_ratio,
                    spent_usd: spent as f64 / 1e9,
                    state: if spent >= b.limit_nanos {
                        "exceeded"
                    } else if spent as f64 >= b.limit_nanos as f64 * b.warn_ratio {
                        "warning"
                    } else {
                        "ok"
                    },
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BudgetStatus {
    pub id: i64,
    pub scope: &'static str,
    pub target: String,
    pub period: &'static str,
    pub limit_usd: f64,
    pub warn_ratio: f64,
    pub spent_usd: f64,
    /// ok | warning | exceeded
    pub state: &'static str,
}

/// Reads vault-held provider keys that are due (first use, or older than the cache TTL).
/// A key that cannot be read leaves its provider skipped with that reason.
pub async fn refresh_vault_keys(state: &LlmState) {
    for (provider, name) in state.llm.client.vault_keys_due() {
        match crate::vault::resolve_reference(
            &state.vault,
            &format!("{}{name}", crate::vault::REFERENCE_PREFIX),
        )
        .await
        {
            Ok(v) => state.llm.client.set_vault_key(provider, v),
            Err(e) => {
                tracing::warn!(%provider, secret = %name, error = %e, "cannot read the provider key from the vault")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_per_token() {
        assert_eq!(per_token(3.0), 3000);
        assert_eq!(per_token(0.3), 300);
        assert_eq!(per_token(0.075), 75);
        let book = Book::default();
        *book.loaded.write().unwrap() = Some(Arc::new(Loaded {
            rates: vec![
                Rate {
                    provider: "claude".into(),
                    model: "claude-*".into(),
                    input: 3000,
                    output: 15000,
                },
                Rate {
                    provider: "claude".into(),
                    model: "claude-opus-4*".into(),
                    input: 15000,
                    output: 75000,
                },
            ],
            budgets: vec![Budget {
                id: 1,
                scope: BudgetScope::Project,
                target: "p".into(),
                period: Period::Day,
                limit_nanos: 100_000,
                warn_ratio: 0.5,
            }],
        }));
        let u = Usage {
            input_tokens: 10,
            output_tokens: 2,
        };
        assert_eq!(
            book.cost(ProviderId::Claude, "claude-sonnet-4-5", u),
            60_000
        );
        assert_eq!(book.cost(ProviderId::Claude, "claude-opus-4-1", u), 300_000);
        assert_eq!(book.cost(ProviderId::Ollama, "llama", u), 0);
        let now = time::macros::datetime!(2026-03-04 10:00 UTC);
        assert_eq!(
            book.check(None, Some("p"), now),
            Verdict::Allow { warnings: vec![] }
        );
        book.add_spend(None, Some("p"), 60_000, now);
        assert!(
            matches!(book.check(None, Some("p"), now), Verdict::Allow { warnings } if warnings.len() == 1)
        );
        book.add_spend(None, Some("p"), 40_000, now);
        assert!(matches!(
            book.check(None, Some("p"), now),
            Verdict::Refuse { .. }
        ));
        assert!(matches!(
            book.check(None, Some("other"), now),
            Verdict::Allow { .. }
        ));
        // A new day starts from zero.
        let tomorrow = now + time::Duration::days(1);
        assert_eq!(
            book.check(None, Some("p"), tomorrow),
            Verdict::Allow { warnings: vec![] }
        );
    }

    #[test]
    fn period_starts() {
        let now = time::macros::datetime!(2026-03-04 10:00 UTC);
        assert_eq!(Period::Day.start(now), "2026-03-04T00:00:00.000000Z");
        assert_eq!(Period::Month.start(now), "2026-03-01T00:00:00.000000Z");
        assert_eq!(Period::Total.start(now), "");
    }
}
