//! architect: the control plane for a fleet of AI coding agents, in one binary.
//!
//! A map of the crate:
//!
//! * [`cli`] — the one clap command tree (`serve`, `migrate`, and the client roles); `main.rs`
//!   only parses and dispatches.
//! * [`config`] — every `serve` setting as a flag plus env var.
//! * [`app`] — `AppState` and the single router builder that tests use too.
//! * [`serve`] — starting and gracefully stopping the server; [`background`] — its loops.
//! * [`db`] — the pool, embedded migrations and portable-SQL helpers.
//! * [`http`] — domain-free plumbing: `ApiError`, house extractors, request ids, metrics.
//! * [`web`] — the dashboard frame, error page, static assets.
//! * [`client`] — the typed HTTP client every CLI role uses.
//! * [`activity`] — the activity log every domain writes in its own transaction (a leaf; its
//!   API and page are [`overview`]'s views).
//! * Domains, each `mod.rs` (types and rules) / `store.rs` (SQL) / `api.rs` / `pages.rs`:
//!   [`auth`], [`tracking`], [`vault`], [`tasks`], [`errors`], [`nodes`],
//!   [`llm`], [`agents`]; [`system`] holds /health and /metrics.
//! * Orchestrators over several domains: [`assign`] (a work item as an agent's prompt),
//!   [`planning`], [`autopilot`], [`overview`].

pub mod text_enum;

pub mod accounts;
pub mod activity;
pub mod agents;
pub mod app;
pub mod assign;
pub mod auth;
pub mod autopilot;
pub mod background;
pub mod backoff;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod docs;
pub mod errors;
pub mod events;
pub mod files;
pub mod git;
pub mod http;
pub mod llm;
pub mod nodes;
pub mod overview;
pub mod planning;
pub mod serve;
pub mod sources;
pub mod suites;
pub mod system;
pub mod tasks;
pub mod termius;
pub mod testing;
pub mod tmux;
pub mod tracking;
pub mod validate;
pub mod vault;
pub mod web;
pub mod wire;

/// The version shown in the dashboard, /health and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
