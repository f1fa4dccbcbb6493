//! Service accounts (issue 18 item 5, SPEC "Activity & Accounts"): the external accounts the
//! fleet uses — an LLM provider's API account, a cloud or Git host account — with provider,
//! account name, plan, the vault secret that holds its key (the name only, never the value) and
//! a monthly budget. `GET /api/accounts/aggregate` adds what each account costs and does: spend
//! and calls this month and in all from the LLM ledger (matched by provider name, as the
//! gateway records it: `claude`, `openai`, `gemini`, ...), its last use, and the tasks done by
//! workers per the account they registered with.
//!
//! Files: `store.rs` SQL (the accounts table, and the read-only sums over the ledger and the
//! task queue); `actions.rs` changes with their activity rows and the aggregate; `api.rs`,
//! `pages.rs` HTTP.

pub mod actions;
pub mod api;
pub mod pages;
pub mod store;

use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};

/// What the accounts domain's operations reach. Built from `AppState` by `FromRef` (app.rs);
/// callers outside a handler use `state.accounts_state()`. Cheap to clone.
#[derive(Clone)]
pub struct AccountsState {
    pub db: crate::db::Db,
    pub clock: crate::clock::Clock,
    /// The LLM gateway's write-behind ledger buffer, flushed before the aggregate reads the
    /// ledger (the only part of the LLM domain the aggregate needs; its sums are store reads).
    pub ledger: std::sync::Arc<crate::llm::ledger::Ledger>,
}

pub const MAX_TEXT: usize = 100;
pub const MAX_NOTES: usize = 2_000;
/// A budget above this (a billion dollars a month) is a typo.
pub const MAX_BUDGET_USD: f64 = 1e9;

/// An account as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub id: i64,
    pub provider: String,
    pub name: String,
    pub plan: Option<String>,
    /// The vault reference of its key (`vault:NAME`), never the value.
    pub secret: Option<String>,
    pub monthly_budget_usd: Option<f64>,
    pub notes: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /api/accounts`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub provider: String,
    #[serde(alias = "account_name")]
    pub name: String,
    #[serde(default)]
    pub plan: Option<String>,
    /// The vault secret holding its key: `NAME` or `vault:NAME`.
    #[serde(default, alias = "secret_name")]
    pub secret: Option<String>,
    #[serde(default)]
    pub monthly_budget_usd: Option<f64>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// `PUT /api/accounts/{id}`: absent keeps; `""` clears a text, a budget of 0 clears the budget.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default, alias = "account_name")]
    pub name: Option<String>,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default, alias = "secret_name")]
    pub secret: Option<String>,
    #[serde(default)]
    pub monthly_budget_usd: Option<f64>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// The checked values an account row holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountFields {
    pub provider: String,
    pub name: String,
    pub plan: Option<String>,
    /// The secret's bare name.
    pub secret_name: Option<String>,
    pub monthly_budget_micros: Option<i64>,
    pub notes: Option<String>,
}

fn required(field: &str, v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} must be 1 to {MAX_TEXT} characters, without control characters"),
        ));
    }
    Ok(v.to_string())
}

fn optional(field: &str, v: &str, max: usize) -> Result<Option<String>, Invalid> {
    let v = v.trim();
    if v.chars().count() > max || v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok((!v.is_empty()).then(|| v.to_string()))
}

/// `NAME` or `vault:NAME` → `NAME` (letters, digits, `_`, `-`, `.`).
fn secret_name(v: &str) -> Result<Option<String>, Invalid> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let name = crate::vault::reference_name(v).unwrap_or(v);
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(invalid(
            "secret",
            "secret is the vault secret's name (NAME or vault:NAME), never its value",
        ));
    }
    Ok(Some(name.to_string()))
}

fn budget(usd: f64) -> Result<Option<i64>, Invalid> {
    if !usd.is_finite() || !(0.0..=MAX_BUDGET_USD).contains(&usd) {
        return Err(invalid(
            "monthly_budget_usd",
            "monthly_budget_usd must be 0 (none) to 1e9 dollars",
        ));
    }
    let micros = (usd * 1e6).round() as i64;
    Ok((micros > 0).then_some(micros))
}

impl NewAccount {
    pub fn fields(&self) -> Result<AccountFields, Invalid> {
        Ok(AccountFields {
            provider: required("provider", &self.provider)?.to_lowercase(),
            name: required("name", &self.name)?,
            plan: optional("plan", self.plan.as_deref().unwrap_or(""), MAX_TEXT)?,
            secret_name: secret_name(self.secret.as_deref().unwrap_or(""))?,
            monthly_budget_micros: match self.monthly_budget_usd {
                Some(b) => budget(b)?,
                None => None,
            },
            notes: optional("notes", self.notes.as_deref().unwrap_or(""), MAX_NOTES)?,
        })
    }
}

impl AccountChange {
    /// `current` with this change applied, checked.
    pub fn apply(&self, mut f: AccountFields) -> Result<AccountFields, Invalid> {
        if let Some(p) = &self.provider {
            f.provider = required("provider", p)?.to_lowercase();
        }
        if let Some(n) = &self.name {
            f.name = required("name", n)?;
        }
        if let Some(p) = &self.plan {
            f.plan = optional("plan", p, MAX_TEXT)?;
        }
        if let Some(s) = &self.secret {
            f.secret_name = secret_name(s)?;
        }
        if let Some(b) = self.monthly_budget_usd {
            f.monthly_budget_micros = budget(b)?;
        }
        if let Some(n) = &self.notes {
            f.notes = optional("notes", n, MAX_NOTES)?;
        }
        Ok(f)
    }
}

/// One account with what it cost and did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountUsage {
    #[serde(flatten)]
    pub account: Account,
    /// Gateway calls served by this account's provider since the month began (UTC).
    pub calls_month: i64,
    pub spend_usd_month: f64,
    pub cost_nanos_month: i64,
    pub calls_total: i64,
    pub cost_nanos_total: i64,
    /// The last gateway call its provider served.
    pub last_used_at: Option<String>,
    /// Spend this month as a percentage of the monthly budget, when it has one.
    pub budget_used_percent: Option<f64>,
    /// Another account names the same provider: the ledger cannot tell them apart (the
    /// gateway holds one key per provider), so each shows the provider's whole figures.
    pub shares_provider: bool,
}

/// Tasks done by the workers that registered as one account (API token owner).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, sqlx::FromRow)]
pub struct WorkerAccountTasks {
    /// As the activity log names it: `alice (token 3)`.
    pub account: String,
    pub workers: i64,
    pub tasks: i64,
    pub completed: i64,
    pub failed: i64,
    pub running: i64,
    pub last_task_at: Option<String>,
}

/// `GET /api/accounts/aggregate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Aggregate {
    /// Start of the month the `*_month` figures count from (UTC).
    pub month_start: String,
    pub accounts: Vec<AccountUsage>,
    /// Providers the ledger has calls for that no account names.
    pub unaccounted_providers: Vec<String>,
    pub worker_accounts: Vec<WorkerAccountTasks>,
    pub spend_usd_month: f64,
}

pub fn usd(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_and_cleaned() {
        let f = NewAccount {
            provider: " Claude ".into(),
            name: "team".into(),
            secret: Some("vault:ANTHROPIC_KEY".into()),
            monthly_budget_usd: Some(12.5),
            ..Default::default()
        }
        .fields()
        .unwrap();
        assert_eq!(f.provider, "claude");
        assert_eq!(f.secret_name.as_deref(), Some("ANTHROPIC_KEY"));
        assert_eq!(f.monthly_budget_micros, Some(12_500_000));
        let bad = NewAccount {
            provider: "x".into(),
            name: "y".into(),
            secret: Some("sk-ant abc".into()),
            ..Default::default()
        };
        assert_eq!(bad.fields().unwrap_err().field, "secret");
        let cleared = AccountChange {
            plan: Some(String::new()),
            monthly_budget_usd: Some(0.0),
            ..Default::default()
        }
        .apply(f)
        .unwrap();
        assert_eq!(cleared.monthly_budget_micros, None);
        assert_eq!(cleared.plan, None);
    }
}
