//! Secure vault: envelope-encrypted secrets with versions and an audit trail (being built).

pub mod api;
pub mod pages;
