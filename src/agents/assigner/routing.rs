//! Routing rules as data: a prompt sent without any target takes the role or group of the first
//! enabled rule whose regex matches its content and whose task type (if set) equals the
//! prompt's `metadata.task_type`. The prompt's metadata records the rule (`routed_by`).

use crate::db::Db;
use crate::validate::{invalid, Invalid};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RoutingRule {
    pub id: i64,
    pub name: String,
    pub content_regex: String,
    pub task_type: Option<String>,
    pub target_role: Option<String>,
    pub target_group: Option<String>,
    pub position: i64,
    pub enabled: i64,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub name: String,
    #[serde(default)]
    pub content_regex: String,
    pub task_type: Option<String>,
    pub target_role: Option<String>,
    pub target_group: Option<String>,
    pub position: Option<i64>,
}

impl NewRule {
    pub fn check(&self) -> Result<(), Invalid> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(invalid("name", "name must be 1-200 characters"));
        }
        if self.content_regex.len() > 2000 {
            return Err(invalid(
                "content_regex",
                "content_regex is longer than 2000 characters",
            ));
        }
        compile(&self.content_regex)
            .map_err(|e| invalid("content_regex", format!("invalid regex: {e}")))?;
        match (&self.target_role, &self.target_group) {
            (None, None) => return Err(invalid("target_role", "give target_role or target_group")),
            (Some(r), _) => {
                r.parse::<crate::agents::SessionRole>()
                    .map_err(|e| invalid("target_role", e))?;
            }
            _ => {}
        }
        if let Some(g) = &self.target_group {
            let ok = !g.is_empty()
                && g.len() <= 64
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(invalid(
                    "target_group",
                    "target_group must be 1-64 letters, digits, '_' or '-'",
                ));
            }
        }
        Ok(())
    }
}

fn compile(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(re)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
}

const COLS: &str = "id, name, content_regex, task_type, target_role, target_group, position, \
    enabled, created_by, created_at";

pub async fn rules(db: &Db) -> Result<Vec<RoutingRule>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLS} FROM routing_rules ORDER BY position, id"
    ))
    .fetch_all(db)
    .await
}

pub async fn insert(db: &Db, r: &NewRule, by: &str, now: &str) -> Result<RoutingRule, sqlx::Error> {
    let sql = format!(
        "INSERT INTO routing_rules (name, content_regex, task_type, target_role, target_group, \
            position, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         RETURNING {COLS}"
    );
    let q = sqlx::query_as(&sql)
        .bind(r.name.trim())
        .bind(&r.content_regex)
        .bind(&r.task_type)
        .bind(&r.target_role)
        .bind(&r.target_group)
        .bind(r.position.unwrap_or(0))
        .bind(by)
        .bind(now);
    crate::activity::store::fetch_logged(db, q, |rule: &RoutingRule| {
        crate::activity::store::Entry {
            actor: by,
            action: "create",
            entity_type: "routing_rule",
            entity_id: Some(rule.id),
            details: serde_json::json!({
                "name": rule.name, "content_regex": rule.content_regex, "task_type": rule.task_type,
                "target_role": rule.target_role, "target_group": rule.target_group,
            }),
            now,
        }
    })
    .await?
    .ok_or(sqlx::Error::RowNotFound)
}

pub async fn delete(db: &Db, actor: &str, id: i64, now: &str) -> Result<bool, sqlx::Error> {
    let q = sqlx::query("DELETE FROM routing_rules WHERE id = $1").bind(id);
    let entry = crate::activity::store::Entry::deleted(actor, "routing_rule", id, now);
    Ok(crate::activity::store::execute_logged(db, q, entry).await? > 0)
}

/// The first rule that applies to a prompt.
pub fn route<'a>(
    rules: &'a [RoutingRule],
    content: &str,
    metadata: &serde_json::Value,
) -> Option<&'a RoutingRule> {
    let task_type = metadata.get("task_type").and_then(|v| v.as_str());
    rules.iter().filter(|r| r.enabled != 0).find(|r| {
        r.task_type.as_deref().is_none_or(|t| Some(t) == task_type)
            && (r.content_regex.is_empty()
                || compile(&r.content_regex).is_ok_and(|re| re.is_match(content)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: i64, re: &str, task_type: Option<&str>, group: &str) -> RoutingRule {
        RoutingRule {
            id,
            name: format!("r{id}"),
            content_regex: re.into(),
            task_type: task_type.map(str::to_string),
            target_role: None,
            target_group: Some(group.into()),
            position: 0,
            enabled: 1,
            created_by: String::new(),
            created_at: String::new(),
        }
    }

    #[test]
    fn the_first_matching_rule_routes() {
        let rs = vec![
            rule(1, r"\b(bug|crash)\b", None, "debug"),
            rule(2, "", Some("docs"), "writers"),
        ];
        let m = serde_json::json!({});
        assert_eq!(
            route(&rs, "Fix the CRASH in login", &m).map(|r| r.id),
            Some(1)
        );
        assert_eq!(
            route(
                &rs,
                "write a guide",
                &serde_json::json!({"task_type": "docs"})
            )
            .map(|r| r.id),
            Some(2)
        );
        assert_eq!(route(&rs, "write a guide", &m), None);
    }
}
