//! The original's wire shapes, accepted beside architect's own (issue 18 item 7). Field names
//! are `#[serde(alias)]`es on the request structs themselves; this file holds the few
//! conversions an alias cannot express: a value the original sends as one string where
//! architect takes a list, or as text where architect takes an object. Every conversion is
//! listed in docs/original-wire-names.md. Unknown fields stay errors (`deny_unknown_fields`).

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            // The original sends comma-separated text ("web,db") where architect takes a list.
            OneOrMany::One(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            OneOrMany::Many(v) => v,
        }
    }
}

/// A list of text, or one text of comma-separated items (`"worker_type": "shell"`,
/// `"services": "nginx,postgres"`).
pub fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(OneOrMany::deserialize(d)?.into_vec())
}

/// [`one_or_many`] for an optional field.
pub fn one_or_many_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Option::<OneOrMany>::deserialize(d)?.map(OneOrMany::into_vec))
}

/// A JSON object, or text (the original's `details: "..."`), kept as `{"message": text}`.
pub fn object_or_text<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    Ok(
        Option::<serde_json::Value>::deserialize(d)?.map(|v| match v {
            serde_json::Value::String(s) => serde_json::json!({ "message": s }),
            other => other,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "one_or_many")]
        v: Vec<String>,
        #[serde(default, deserialize_with = "object_or_text")]
        d: Option<serde_json::Value>,
    }

    #[test]
    fn text_becomes_a_list_or_an_object() {
        let t: T = serde_json::from_str(r#"{"v": "a, b,,c", "d": "hi"}"#).unwrap();
        assert_eq!(t.v, ["a", "b", "c"]);
        assert_eq!(t.d.unwrap(), serde_json::json!({"message": "hi"}));
        let t: T = serde_json::from_str(r#"{"v": ["x"], "d": {"k": 1}}"#).unwrap();
        assert_eq!(t.v, ["x"]);
        assert_eq!(t.d.unwrap(), serde_json::json!({"k": 1}));
        assert!(serde_json::from_str::<T>(r#"{"v": 3}"#).is_err());
    }
}
