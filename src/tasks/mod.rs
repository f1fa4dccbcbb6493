//! Task queue: leased claims, retries with backoff, workers on any node (being built).

pub mod api;
pub mod pages;
