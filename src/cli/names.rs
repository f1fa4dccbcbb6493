//! Names accepted where ids are: `--project shop` (a project's name, case-insensitive) and
//! `--milestone "v1.0"` (a milestone's name within its project), resolved on the client
//! through the list API, so the server keeps one meaning per field (`project_id` is an id).
//!
//! A value made of digits only is an id. A name matches exactly, ignoring case; an active
//! project wins over archived ones of the same name (names are unique among active
//! projects only). No match, or several, is an error that says what to do.

use crate::client::Client;
use crate::tracking::{MilestoneFilter, ProjectFilter};

/// Most rows read to resolve a name (the API's page limit).
const MAX_ROWS: i64 = 1000;

fn as_id(raw: &str) -> Option<i64> {
    let t = raw.trim();
    (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .then(|| t.parse().ok())
        .flatten()
}

/// The id of the project `raw` names (an id, or a name).
pub async fn project_id(c: &Client, raw: &str) -> anyhow::Result<i64> {
    if let Some(id) = as_id(raw) {
        return Ok(id);
    }
    let name = raw.trim();
    let filter = ProjectFilter {
        status: None,
        q: Some(name.to_string()),
        include_archived: Some(true),
    };
    let key = name.to_lowercase();
    let found: Vec<_> = c
        .projects(&filter, MAX_ROWS)
        .await?
        .into_iter()
        .filter(|p| p.name.to_lowercase() == key)
        .collect();
    let active: Vec<_> = found.iter().filter(|p| !p.archived).collect();
    match (active.as_slice(), found.as_slice()) {
        ([one], _) => Ok(one.id),
        ([], [one]) => Ok(one.id),
        ([], []) => anyhow::bail!(
            "no project named '{name}' (`architect projects list --all` shows every project)"
        ),
        (_, all) => anyhow::bail!(
            "'{name}' names {} projects (ids {}): give the id instead",
            all.len(),
            ids(all.iter().map(|p| p.id))
        ),
    }
}

/// [`project_id`] of an optional argument.
pub async fn project_opt(c: &Client, raw: Option<&str>) -> anyhow::Result<Option<i64>> {
    match raw {
        Some(r) => Ok(Some(project_id(c, r).await?)),
        None => Ok(None),
    }
}

/// The id of the milestone `raw` names: an id, or a name within `project` (within every
/// project when none is known, which is an error when two projects use the name).
pub async fn milestone_id(c: &Client, project: Option<i64>, raw: &str) -> anyhow::Result<i64> {
    if let Some(id) = as_id(raw) {
        return Ok(id);
    }
    let name = raw.trim();
    let filter = MilestoneFilter {
        project_id: project,
        status: None,
    };
    let key = name.to_lowercase();
    let found: Vec<_> = c
        .milestones(&filter, MAX_ROWS)
        .await?
        .into_iter()
        .filter(|m| m.name.to_lowercase() == key)
        .collect();
    let scope = project
        .map(|p| format!(" in project {p}"))
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one.id),
        [] => anyhow::bail!("no milestone named '{name}'{scope}"),
        all => anyhow::bail!(
            "'{name}' names {} milestones{scope} (ids {}): give the id instead{}",
            all.len(),
            ids(all.iter().map(|m| m.id)),
            if project.is_none() {
                ", or --project"
            } else {
                ""
            }
        ),
    }
}

fn ids(it: impl Iterator<Item = i64>) -> String {
    it.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::as_id;

    #[test]
    fn only_digits_are_ids() {
        assert_eq!(as_id("12"), Some(12));
        assert_eq!(as_id(" 7 "), Some(7));
        assert_eq!(as_id("shop"), None);
        assert_eq!(as_id("-1"), None);
        assert_eq!(as_id("v2"), None);
        assert_eq!(as_id(""), None);
    }
}
