//! SQL for planning: scans, items, proposed milestones, suggestions and their history. Nothing
//! else touches these tables.

mod items;
mod plans;
mod scans;
mod suggestions;

pub use items::*;
pub use plans::*;
pub use scans::*;
pub use suggestions::*;

/// A stored text value as its enum, or `or` for a value this version does not know.
fn parse<T: std::str::FromStr>(s: &str, or: T) -> T {
    s.parse().unwrap_or(or)
}
