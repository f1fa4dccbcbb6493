//! Task queue tests (being built).
