//! Time for the whole program comes from a [`Clock`] held in `AppState`, so tests can move it.
//!
//! Stored times are RFC 3339 UTC strings of one fixed width (`2026-11-26T10:44:29.123456Z`):
//! fixed width makes text order equal time order, so SQL can compare and sort them on SQLite and
//! PostgreSQL without a timestamp type.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

const STORED: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Formats a time the way every table stores it.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(STORED)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000000Z"))
}

/// Parses a stored (or any RFC 3339) time.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// The source of "now". `System` in production; `Manual` lets tests advance time by hand.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// Offset in seconds added to the real time; shared so every clone moves together.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual() -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(0)))
    }

    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    pub fn now(&self) -> OffsetDateTime {
        let real = OffsetDateTime::now_utc();
        match self {
            Clock::System => real,
            Clock::Manual(offset) => real + Duration::seconds(offset.load(Ordering::SeqCst)),
        }
    }

    pub fn now_str(&self) -> String {
        format(self.now())
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, seconds: i64) {
        if let Clock::Manual(offset) = self {
            offset.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_format_is_fixed_width_and_round_trips() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.5 UTC);
        let s = format(t);
        assert_eq!(s, "2026-01-02T03:04:05.500000Z");
        assert_eq!(parse(&s), Some(t));
    }

    #[test]
    fn manual_clock_advances() {
        let c = Clock::manual();
        let a = c.now();
        c.advance(3600);
        assert!(c.now() - a >= Duration::seconds(3599));
    }
}
