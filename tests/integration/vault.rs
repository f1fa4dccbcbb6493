//! Vault tests (being built).
