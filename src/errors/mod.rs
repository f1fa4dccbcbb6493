//! Error aggregation: every node and app reports errors here; like errors are grouped, counted
//! per node and per hour, and can be turned into bugs.
//!
//! The path of one report: `api.rs` (or the Sentry endpoints) caps and decompresses the body
//! (`body.rs`), parses and validates it into an [`ErrorEvent`] (rules below), computes its
//! group key (`fingerprint.rs`), applies the per-source rate limit (`limits.rs`) and hands it
//! to the one writer task (`ingest.rs`). The writer commits whole batches in one transaction
//! (group commit) and only then answers each waiting request: an acknowledged event is on
//! disk. Reads, resolve and create-bug are ordinary transactions (`store.rs`, `actions.rs`);
//! `retention` keeps the sample and histogram tables bounded.
//!
//! Review: a group can be assigned to an agent session like a feature or a bug
//! (`assign`). When that prompt completes, the group is marked *in review*
//! (`review_at`, `review_prompt_id`; [`actions::mark_in_review`]) rather than given a third
//! status: the ingest upsert sets `status = 'open'` on every occurrence, and an error keeps
//! occurring until the fix is deployed, so a `review` status would be overwritten within
//! seconds. The mark survives new occurrences (the page shows them after `review_at`) and is
//! cleared when the group is resolved.
//!
//! Files: `fingerprint.rs` normalisation and group keys; `sentry.rs` Sentry envelopes and
//! events; `body.rs` caps and decompression; `limits.rs` rate limits; `ingest.rs` the writer;
//! `store.rs` SQL; `actions.rs` transactional operations; `api.rs` / `pages.rs` HTTP.

pub mod actions;
pub mod api;
pub mod body;
pub mod config;
pub mod disk;
pub mod fingerprint;
pub mod ingest;
pub mod ingest_keys;
pub mod limits;
pub mod pages;
pub mod sentry;
pub mod store;

pub use config::ErrorsConfig;

use crate::app::AppState;
use crate::config::ServeConfig;
pub use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

crate::text_enum! {
    /// How bad one occurrence is (Sentry's levels).
    pub enum ErrorLevel ("error level") {
        Debug = "debug",
        Info = "info",
        Warning = "warning",
        Error = "error",
        Fatal = "fatal",
    }
}

impl ErrorLevel {
    /// Sentry and logging libraries spell some levels differently.
    pub fn lenient(s: &str) -> ErrorLevel {
        match s.to_ascii_lowercase().as_str() {
            "debug" | "trace" => ErrorLevel::Debug,
            "info" | "log" | "notice" => ErrorLevel::Info,
            "warning" | "warn" => ErrorLevel::Warning,
            "fatal" | "critical" | "emergency" | "alert" => ErrorLevel::Fatal,
            _ => ErrorLevel::Error,
        }
    }
}

crate::text_enum! {
    /// A group's state. Any new occurrence of a resolved group reopens it and flags it
    /// `regressed` (see `store::record_batch_group`); resolving clears the flag.
    pub enum GroupStatus ("error status") {
        Open = "open",
        Resolved = "resolved",
    }
}

crate::text_enum! {
    /// List orders.
    pub enum GroupSort ("sort") {
        /// Most recently seen first (the default).
        LastSeen = "last_seen",
        /// Most occurrences first.
        Count = "count",
        /// Newest groups first.
        FirstSeen = "first_seen",
    }
}

// ---- limits ----

pub const MAX_IDENT: usize = 200;
/// Longer messages are cut (and marked), like Sentry does, rather than refused.
pub const MAX_MESSAGE: usize = 8 * 1024;
pub const MAX_STACK: usize = 64 * 1024;
/// A larger `context` is replaced by a note saying so; the event itself is kept.
pub const MAX_CONTEXT: usize = 16 * 1024;
/// Raw occurrences written per group per batch: under a flood a group's sample is spread
/// over time instead of being the last few milliseconds.
pub const SAMPLES_PER_BATCH: usize = 3;
/// Hourly buckets returned with a group unless asked otherwise (one day, the sparkline).
pub const DEFAULT_HOURS: i64 = 24;

/// A report as sent to `POST /api/errors`. Unknown fields are ignored: many different clients
/// report here, and a newer client's extra field must not lose its error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewErrorReport {
    pub node_id: String,
    pub error_type: String,
    pub message: String,
    pub source: String,
    #[serde(default)]
    pub stack_trace: Option<String>,
    #[serde(default)]
    pub level: Option<ErrorLevel>,
    #[serde(default)]
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// A validated report with its group key, ready for the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEvent {
    pub fingerprint: String,
    pub error_type: String,
    pub source: String,
    /// The normalised message (the group's title).
    pub title: String,
    pub message: String,
    pub level: ErrorLevel,
    pub node_id: String,
    pub stack_trace: Option<String>,
    /// JSON object text.
    pub context: Option<String>,
    pub received_at: String,
}

fn ident(field: &'static str, v: &str) -> Result<String, Invalid> {
    let t = v.trim();
    if t.is_empty() {
        return Err(invalid(field, format!("{field} must not be empty")));
    }
    if t.chars().count() > MAX_IDENT {
        return Err(invalid(
            field,
            format!("{field} must be at most {MAX_IDENT} characters"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(t.to_string())
}

/// Cuts `s` to at most `max` bytes on a character boundary, keeping the head and the tail
/// (a stack trace's both ends matter) with a note of how much was dropped.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let half = max / 2;
    let mut head = half;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - half;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}\n… [{} bytes cut] …\n{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
}

impl NewErrorReport {
    /// Checks the identifiers (refused when wrong), cuts the long texts (kept, marked), and
    /// computes the group key.
    pub fn into_event(self, received_at: &str) -> Result<ErrorEvent, Invalid> {
        let node_id = ident("node_id", &self.node_id)?;
        let error_type = ident("error_type", &self.error_type)?;
        let source = ident("source", &self.source)?;
        let client_fp = match self.fingerprint.as_deref() {
            None => None,
            Some(f) => Some(ident("fingerprint", f)?),
        };
        let message = cut(&self.message, MAX_MESSAGE);
        let normalised = fingerprint::normalise(&message);
        let fp = fingerprint::fingerprint(&error_type, &source, &normalised, client_fp.as_deref());
        let stack_trace = self
            .stack_trace
            .filter(|s| !s.trim().is_empty())
            .map(|s| cut(&s, MAX_STACK));
        let context = self.context.filter(|c| !c.is_empty()).map(|c| {
            let text = serde_json::Value::Object(c).to_string();
            if text.len() > MAX_CONTEXT {
                serde_json::json!({"_dropped": format!("context of {} bytes is over the {MAX_CONTEXT}-byte limit", text.len())}).to_string()
            } else {
                text
            }
        });
        Ok(ErrorEvent {
            fingerprint: fp,
            title: fingerprint::title(&normalised),
            error_type,
            source,
            message,
            level: self.level.unwrap_or(ErrorLevel::Error),
            node_id,
            stack_trace,
            context,
            received_at: received_at.to_string(),
        })
    }
}

/// The hour bucket of a stored time: `2026-11-26T13`.
pub fn hour_of(t: &str) -> &str {
    t.get(..13).unwrap_or(t)
}

// ---- read models ----

/// One group, as lists and the detail show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorGroup {
    pub id: i64,
    pub fingerprint: String,
    pub error_type: String,
    pub source: String,
    /// The normalised message: what all occurrences share.
    pub title: String,
    /// The raw message of the latest occurrence.
    pub message: String,
    pub level: ErrorLevel,
    pub status: GroupStatus,
    pub regressed: bool,
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub last_node: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub bug_id: Option<i64>,
    /// Set when an agent prompt assigned for this group completed: a fix waits for a person's
    /// check. Cleared by resolving. Not a status (see the module doc).
    pub review_at: Option<String>,
    /// That prompt.
    pub review_prompt_id: Option<i64>,
    /// Nodes it was seen on, most occurrences first.
    pub nodes: Vec<NodeCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeCount {
    pub node_id: String,
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HourCount {
    /// `YYYY-MM-DDTHH` (UTC).
    pub hour: String,
    pub count: i64,
}

/// A raw occurrence from the group's recent sample.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Occurrence {
    pub id: i64,
    pub node_id: String,
    pub message: String,
    pub level: ErrorLevel,
    pub stack_trace: Option<String>,
    pub context: Option<serde_json::Value>,
    pub received_at: String,
}

/// `GET /api/errors/<id>`: the group, its latest stack trace, hourly counts (oldest first,
/// zero-filled) and recent occurrences (newest first).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupDetail {
    #[serde(flatten)]
    pub group: ErrorGroup,
    pub stack_trace: Option<String>,
    pub hourly: Vec<HourCount>,
    pub occurrences: Vec<Occurrence>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupFilter {
    pub status: Option<GroupStatus>,
    pub node: Option<String>,
    pub source: Option<String>,
    pub level: Option<ErrorLevel>,
    pub q: Option<String>,
    pub sort: Option<GroupSort>,
    /// Groups linked to this bug.
    pub bug_id: Option<i64>,
}

/// What `POST /api/errors` answers once the event is on disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Accepted {
    pub group_id: i64,
    pub fingerprint: String,
}

/// A project's ingest key as listed: never the key itself (only its HMAC is stored).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IngestKey {
    pub id: i64,
    pub project_id: i64,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub created_at: String,
    pub created_by: String,
}

/// `POST /api/projects/<id>/ingest-key` answers the new key once, with the DSN a Sentry SDK
/// takes (`http://KEY@HOST/PROJECT_ID`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedIngestKey {
    #[serde(flatten)]
    pub info: IngestKey,
    pub key: String,
    pub dsn: String,
    /// True when it replaced (revoked) an earlier key of the project.
    pub rotated: bool,
}

/// `POST /api/errors/<id>/create-bug`. Everything optional: the project is inferred when
/// there is one obvious choice (see `actions::infer_project`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BugFromError {
    #[serde(default)]
    pub project_id: Option<i64>,
    #[serde(default)]
    pub severity: Option<crate::tracking::BugSeverity>,
    #[serde(default)]
    pub title: Option<String>,
}

/// The bug severity an error level suggests.
pub fn severity_for(level: ErrorLevel) -> crate::tracking::BugSeverity {
    use crate::tracking::BugSeverity;
    match level {
        ErrorLevel::Fatal => BugSeverity::Critical,
        ErrorLevel::Error => BugSeverity::High,
        ErrorLevel::Warning => BugSeverity::Medium,
        ErrorLevel::Info | ErrorLevel::Debug => BugSeverity::Low,
    }
}

// ---- runtime ----

/// What this domain's operations reach, and nothing else: the pool, the clock, the ingest
/// runtime (its settings) and the key ingest keys are hashed under. Built from `AppState` by
/// `FromRef` (app.rs); callers outside a handler use `state.errors_state()`. Cheap to clone.
#[derive(Clone)]
pub struct ErrorsState {
    pub db: crate::db::Db,
    pub clock: crate::clock::Clock,
    pub errors: ErrorsRuntime,
    pub secret_key: Arc<Vec<u8>>,
}

/// Runtime state of this domain held in `AppState`: the writer's queue and the rate limits.
#[derive(Clone)]
pub struct ErrorsRuntime {
    pub config: Arc<ErrorsConfig>,
    pub ingest: Arc<ingest::Ingest>,
    /// Per source (the report's `source`, or `sentry:<project>`).
    pub limiter: Arc<limits::RateLimiter>,
    /// Per client address: a caller inventing sources still meets this one.
    pub address_limiter: Arc<limits::RateLimiter>,
    /// Refuses reports while the disk is nearly full or the database too large.
    pub disk: Arc<disk::DiskGuard>,
}

impl ErrorsRuntime {
    pub fn new(config: &ServeConfig) -> Self {
        let c = config.errors.clone();
        ErrorsRuntime {
            limiter: Arc::new(limits::RateLimiter::new(
                c.errors_rate_per_source,
                c.errors_burst,
            )),
            address_limiter: Arc::new(limits::RateLimiter::new(
                c.errors_rate_per_address,
                c.errors_address_burst,
            )),
            disk: Arc::new(disk::DiskGuard::new(
                c.errors_min_free_bytes,
                c.errors_max_db_bytes,
            )),
            ingest: Arc::new(ingest::Ingest::new(c.errors_samples_per_group)),
            config: Arc::new(c),
        }
    }
}

/// Samples over the bound and old histogram buckets are deleted this often. The writer
/// already prunes hot groups as it goes; this catches the rest, so a minute is plenty.
pub const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// One retention pass: deletes groups not seen for `group_max_age_days` and the least recently
/// seen past `max_groups` (with their counts and samples, one activity record for the pass),
/// occurrences older than `retention_days` and the oldest past `max_occurrences`, keeps the
/// newest `samples_per_group` occurrences of every group and the hourly buckets of the last
/// `retention_days`. Returns the rows deleted.
pub async fn retention_tick(state: &ErrorsState) -> Result<u64, sqlx::Error> {
    let cfg = &state.errors.config;
    let now = state.clock.now();
    let cutoff =
        crate::clock::format(now - time::Duration::days(i64::from(cfg.errors_retention_days)));
    let group_cutoff =
        crate::clock::format(now - time::Duration::days(i64::from(cfg.errors_group_max_age_days)));
    let mut tx = crate::db::begin_write(&state.db).await?;
    let groups = store::delete_groups_seen_before(&mut tx, &group_cutoff).await?
        + store::delete_groups_past(&mut tx, i64::from(cfg.errors_max_groups)).await?;
    let mut occurrences = store::delete_occurrences_before(&mut tx, &cutoff).await?;
    if cfg.errors_max_occurrences > 0 {
        occurrences +=
            store::delete_occurrences_past(&mut tx, i64::from(cfg.errors_max_occurrences)).await?;
    }
    if groups > 0 {
        crate::activity::store::record(
            &mut tx,
            "system",
            "prune",
            "error_group",
            None,
            &serde_json::json!({"groups": groups, "occurrences": occurrences}),
            &crate::clock::format(now),
        )
        .await?;
    }
    tx.commit().await?;
    let mut conn = state.db.acquire().await?;
    let hours = store::delete_hours_before(&mut conn, hour_of(&cutoff)).await?;
    let samples =
        store::prune_all_samples(&mut conn, i64::from(cfg.errors_samples_per_group)).await?;
    Ok(groups + occurrences + hours + samples)
}

/// This domain's background loops, started by `background::spawn_all`: the ingest writer
/// (per replica: it commits what this replica acknowledges) and retention (leader-only).
pub fn loops(state: &AppState, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    if let Some(writer) =
        state
            .errors
            .ingest
            .spawn_writer(state.db.clone(), state.events.clone(), shutdown.clone())
    {
        handles.push(writer);
    }
    let st = state.errors_state();
    handles.push(tokio::spawn(crate::background::run_every_on_leader(
        state.loops.clone(),
        "error_retention",
        RETENTION_EVERY,
        shutdown.clone(),
        move || {
            let state = st.clone();
            async move {
                match retention_tick(&state).await {
                    Ok(n) if n > 0 => tracing::debug!(removed = n, "error retention pruned rows"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "error retention failed"),
                }
            }
        },
    )));
    handles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> NewErrorReport {
        NewErrorReport {
            node_id: " web-1 ".into(),
            error_type: "KeyError".into(),
            message: "'user_42' missing".into(),
            source: "api".into(),
            ..Default::default()
        }
    }

    #[test]
    fn reports_become_events_with_keys_and_cut_texts() {
        let e = report().into_event("2026-11-26T13:00:00.000000Z").unwrap();
        assert_eq!(e.node_id, "web-1");
        assert_eq!(e.title, "'<str>' missing");
        assert_eq!(e.level, ErrorLevel::Error);
        let mut long = report();
        long.message = "é".repeat(MAX_MESSAGE);
        long.stack_trace = Some("  ".into());
        let mut ctx = serde_json::Map::new();
        ctx.insert("blob".into(), "x".repeat(MAX_CONTEXT).into());
        long.context = Some(ctx);
        let e = long.into_event("t").unwrap();
        assert!(e.message.len() < MAX_MESSAGE + 100 && e.message.contains("bytes cut"));
        assert_eq!(e.stack_trace, None, "a blank stack trace is no stack trace");
        assert!(e.context.unwrap().contains("_dropped"));
        let mut bad = report();
        bad.source = "a\u{7}b".into();
        assert_eq!(bad.into_event("t").unwrap_err().field, "source");
        let mut bad = report();
        bad.error_type = "x".repeat(MAX_IDENT + 1);
        assert_eq!(bad.into_event("t").unwrap_err().field, "error_type");
    }

    #[test]
    fn cut_keeps_head_and_tail_on_char_boundaries() {
        let s = format!("{}{}", "a".repeat(10), "é".repeat(10));
        let c = cut(&s, 12);
        assert!(c.starts_with("aaaaaa") && c.ends_with("ééé"), "{c}");
        assert_eq!(cut("short", 12), "short");
        assert_eq!(ErrorLevel::lenient("WARN"), ErrorLevel::Warning);
        assert_eq!(ErrorLevel::lenient("critical"), ErrorLevel::Fatal);
        assert_eq!(hour_of("2026-11-26T13:17:10.000000Z"), "2026-11-26T13");
    }
}
