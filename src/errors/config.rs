//! Settings of this domain: flattened into `architect serve` (`ServeConfig`).

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct ErrorsConfig {
    /// Require a bearer token with the `ingest` scope (or `admin`) on `POST /api/errors`.
    /// Off by default: SPEC.md has error reporting open, still bounded by the caps and rate
    /// limits below. The Sentry endpoints always need their DSN key (an ingest token).
    #[arg(long, env = "ARCHITECT_ERRORS_REQUIRE_TOKEN", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub errors_require_token: bool,

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

    /// Raw occurrences kept per error group (the most recent ones); counts are kept forever.
    #[arg(long, env = "ARCHITECT_ERRORS_SAMPLES_PER_GROUP", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub errors_samples_per_group: u32,

    /// Days of hourly occurrence counts kept for charts.
    #[arg(long, env = "ARCHITECT_ERRORS_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub errors_retention_days: u32,
}

/// The same values as the clap defaults (tests build configs with `Default::default()`).
impl Default for ErrorsConfig {
    fn default() -> Self {
        ErrorsConfig {
            errors_require_token: false,
            errors_max_body_bytes: 256 * 1024,
            errors_max_decompressed_bytes: 1024 * 1024,
            errors_rate_per_source: 1000.0,
            errors_burst: 2000,
            errors_samples_per_group: 50,
            errors_retention_days: 30,
        }
    }
}
