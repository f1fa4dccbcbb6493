//! Project tracking: projects, milestones, features, bugs and devops tasks.
//!
//! One folder per entity (`projects/`, `milestones/`, `features/`, `bugs/`, `devops/`), each
//! with its model, status enum (allowed transitions written beside it) and validation in
//! `mod.rs`, its SQL in `store.rs` and its operations in `actions.rs`. This file holds the
//! shared field limits and cleaners every input passes before any SQL runs; [`store`] and
//! [`actions`] gather the entities' functions and hold what they share.

pub mod actions;
pub mod api;
pub mod bugs;
pub mod devops;
pub mod features;
pub mod milestones;
pub mod pages;
pub mod projects;
pub mod store;

pub use bugs::*;
pub use devops::*;
pub use features::*;
pub use milestones::*;
pub use projects::*;

use serde::{Deserialize, Serialize};

// ---- limits ----
pub const MAX_NAME: usize = 200;
pub const MAX_DESCRIPTION: usize = 20_000;
pub const MAX_PATH: usize = 1024;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG: usize = 50;
pub const MAX_ASSIGNEE: usize = 100;
pub const MAX_COMMENT: usize = 2_000;
pub const MAX_PRIORITY: i64 = 10;

pub use crate::validate::{invalid, Invalid};

/// Trims and checks a required name or title.
pub fn clean_name(field: &'static str, v: &str) -> Result<String, Invalid> {
    let t = v.trim();
    if t.is_empty() {
        return Err(invalid(field, format!("{field} must not be empty")));
    }
    if t.chars().count() > MAX_NAME {
        return Err(invalid(
            field,
            format!("{field} must be at most {MAX_NAME} characters"),
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

pub fn check_len(field: &'static str, v: &str, max: usize) -> Result<(), Invalid> {
    if v.chars().count() > max {
        return Err(invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(())
}

pub fn check_priority(p: i64) -> Result<(), Invalid> {
    if !(0..=MAX_PRIORITY).contains(&p) {
        return Err(invalid(
            "priority",
            format!("priority must be between 0 and {MAX_PRIORITY}"),
        ));
    }
    Ok(())
}

pub fn clean_tags(tags: &[String]) -> Result<Vec<String>, Invalid> {
    if tags.len() > MAX_TAGS {
        return Err(invalid("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if t.is_empty() || t.chars().count() > MAX_TAG {
            return Err(invalid(
                "tags",
                format!("each tag must be 1 to {MAX_TAG} characters"),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// Optional text that may be cleared: empty or blank means "none".
pub fn clean_optional(
    field: &'static str,
    v: Option<&str>,
    max: usize,
) -> Result<Option<String>, Invalid> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => {
            check_len(field, s, max)?;
            Ok(Some(s.to_string()))
        }
    }
}

/// A `YYYY-MM-DD` date.
pub fn check_date(field: &'static str, v: &str) -> Result<(), Invalid> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(v, fmt)
        .map(|_| ())
        .map_err(|_| invalid(field, format!("{field} must be a date as YYYY-MM-DD")))
}

/// `GET /api/stats`: counts by status for each entity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub projects: std::collections::BTreeMap<String, i64>,
    pub milestones: std::collections::BTreeMap<String, i64>,
    pub features: std::collections::BTreeMap<String, i64>,
    pub bugs: std::collections::BTreeMap<String, i64>,
    pub devops_tasks: std::collections::BTreeMap<String, i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_is_connected_and_has_no_self_loops() {
        for s in FeatureStatus::ALL {
            assert!(!s.next().contains(s), "{s} -> itself");
            assert!(!s.next().is_empty(), "{s} is a dead end");
        }
        assert!(FeatureStatus::Draft.can_move_to(FeatureStatus::Spec));
        assert!(!FeatureStatus::Draft.can_move_to(FeatureStatus::Completed));
        assert!(FeatureStatus::Review.can_move_to(FeatureStatus::Completed));
        for s in BugStatus::ALL {
            assert!(!s.next().contains(s), "{s} -> itself");
            assert!(!s.next().is_empty(), "{s} is a dead end");
        }
        use BugStatus as B;
        assert!(B::InProgress.can_move_to(B::Review));
        assert!(!B::Open.can_move_to(B::Review), "review follows work");
        for to in [B::Resolved, B::InProgress, B::Open, B::Closed] {
            assert!(B::Review.can_move_to(to), "review -> {to}");
        }
        assert!(!B::Review.is_done());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("name", "  x ").unwrap(), "x");
        assert!(clean_name("name", "   ").is_err());
        assert!(clean_name("name", &"a".repeat(MAX_NAME + 1)).is_err());
        assert!(clean_name("name", "a\u{0}b").is_err());
    }

    #[test]
    fn unknown_enum_value_lists_valid_ones() {
        let e = serde_json::from_str::<FeatureStatus>("\"done\"").unwrap_err();
        assert!(e.to_string().contains("draft, spec, in_progress"), "{e}");
    }
}
