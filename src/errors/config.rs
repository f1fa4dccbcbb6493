//! Settings of this domain: flattened into `architect serve` (`ServeConfig`).

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct ErrorsConfig {
    /// Require a bearer token with the `ingest` scope (or `admin`) on `POST /api/errors` (a
    /// project's ingest key is accepted too).
    /// Off by default: SPEC.md has error reporting open, still bounded by the caps and rate
    /// limits below. The Sentry endpoints always need their DSN key (an ingest token).
    #[arg(long, env = "ARCHITECT_ERRORS_REQUIRE_TOKEN", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub errors_require_token: bool,

    /// Require credentials on `POST /api/errors`: a project's ingest key (the key of its DSN,
    /// `POST /api/projects/<id>/ingest-key`) or an ingest token. Anonymous reports get 401.
    #[arg(long, env = "ARCHITECT_ERRORS_REQUIRE_KEY", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub errors_require_key: bool,

    /// Largest error report accepted as sent on the wire (possibly compressed), in bytes;
    /// larger gets 413 before anything is decompressed.
    #[arg(long, env = "ARCHITECT_ERRORS_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub errors_max_body_bytes: usize,

    /// Largest error report after gzip/deflate decompression, in bytes; decompression stops
    /// at this size and answers 413 (so a small "zip bomb" cannot fill memory).
    #[arg(long, env = "ARCHITECT_ERRORS_MAX_DECOMPRESSED_BYTES", default_value_t = 1024 * 1024)]
    pub errors_max_decompressed_bytes: usize,

    /// Sustained events per second accepted per source (the report's `source`, or the Sentry
    /// project); more gets 429 with Retry-After. 0 turns the limit off.
    #[arg(
        long,
        env = "ARCHITECT_ERRORS_RATE_PER_SOURCE",
        default_value_t = 1000.0
    )]
    pub errors_rate_per_source: f64,

    /// Events a quiet source may send at once before the per-second rate applies.
    #[arg(long, env = "ARCHITECT_ERRORS_BURST", default_value_t = 2000)]
    pub errors_burst: u32,

    /// Sustained events per second accepted per client address (the trusted-proxy rule
    /// applies), whatever `source` the reports name; more gets 429. 0 turns the limit off.
    #[arg(
        long,
        env = "ARCHITECT_ERRORS_RATE_PER_ADDRESS",
        default_value_t = 200.0
    )]
    pub errors_rate_per_address: f64,

    /// Events a quiet client address may send at once before its per-second rate applies.
    #[arg(long, env = "ARCHITECT_ERRORS_ADDRESS_BURST", default_value_t = 1000)]
    pub errors_address_burst: u32,

    /// Raw occurrences kept per error group (the most recent ones); counts are kept forever.
    #[arg(long, env = "ARCHITECT_ERRORS_SAMPLES_PER_GROUP", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub errors_samples_per_group: u32,

    /// Days of hourly occurrence counts and raw occurrences kept.
    #[arg(long, env = "ARCHITECT_ERRORS_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub errors_retention_days: u32,

    /// Days an error group is kept after it was last seen; then it goes with its counts.
    #[arg(long, env = "ARCHITECT_ERRORS_GROUP_MAX_AGE_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub errors_group_max_age_days: u32,

    /// Error groups kept at most; past it the retention loop deletes the least recently seen.
    #[arg(long, env = "ARCHITECT_ERRORS_MAX_GROUPS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub errors_max_groups: u32,

    /// Raw occurrences kept at most over all groups (the newest); 0 = only the per-group bound.
    #[arg(
        long,
        env = "ARCHITECT_ERRORS_MAX_OCCURRENCES",
        default_value_t = 100_000
    )]
    pub errors_max_occurrences: u32,

    /// Error reports are refused (507) while the data dir's file system has less free space
    /// than this, in bytes. 0 turns the check off.
    #[arg(long, env = "ARCHITECT_ERRORS_MIN_FREE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub errors_min_free_bytes: u64,

    /// Error reports are refused (507) while the database (with its WAL) is larger than this,
    /// in bytes. 0 turns the check off.
    #[arg(long, env = "ARCHITECT_ERRORS_MAX_DB_BYTES", default_value_t = 0)]
    pub errors_max_db_bytes: u64,
}

/// The same values as the clap defaults (tests build configs with `Default::default()`).
impl Default for ErrorsConfig {
    fn default() -> Self {
        ErrorsConfig {
            errors_require_token: false,
            errors_require_key: false,
            errors_max_body_bytes: 256 * 1024,
            errors_max_decompressed_bytes: 1024 * 1024,
            errors_rate_per_source: 1000.0,
            errors_burst: 2000,
            errors_samples_per_group: 50,
            errors_retention_days: 30,
            errors_rate_per_address: 200.0,
            errors_address_burst: 1000,
            errors_group_max_age_days: 90,
            errors_max_groups: 10_000,
            errors_max_occurrences: 100_000,
            errors_min_free_bytes: 256 * 1024 * 1024,
            errors_max_db_bytes: 0,
        }
    }
}
