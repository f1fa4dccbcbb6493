//! Assertions and captures over a step's [`Answer`].

use super::format::{Assertion, Capture, Check, JsonType, Subject};
use super::vars::Vars;
use serde_json::Value;
use std::time::Duration;

/// What a step answered: an HTTP response or a process's outcome.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub cookies: Vec<(String, String)>,
    pub body: String,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

impl Answer {
    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The text regexes and `body` read: the HTTP body, or a process's stdout.
    fn text(&self) -> &str {
        if self.status.is_some() {
            &self.body
        } else {
            &self.stdout
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The value of a capture, as text; an error says what was missing.
pub fn capture(c: &Capture, a: &Answer) -> Result<String, String> {
    match c {
        Capture::Jsonpath(p) => {
            let json = a.json().ok_or("the body is not JSON")?;
            let first = p.path.query(&json).all().first().map(|v| (*v).clone());
            match first {
                Some(Value::String(s)) => Ok(s),
                Some(v) => Ok(v.to_string()),
                None => Err(format!("JSONPath {} matched nothing", p.source)),
            }
        }
        Capture::Header(h) => a
            .header(h)
            .map(str::to_string)
            .ok_or_else(|| format!("no header {h}")),
        Capture::Cookie(c) => a
            .cookies
            .iter()
            .find(|(k, _)| k == c)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("no cookie {c}")),
        Capture::Regex(r) => {
            let caps =
                r.0.captures(a.text())
                    .ok_or_else(|| format!("regex {} matched nothing", r.0))?;
            Ok(caps
                .get(1)
                .or_else(|| caps.get(0))
                .map(|m| m.as_str().to_string())
                .unwrap_or_default())
        }
    }
}

/// One assertion's outcome: `Err` holds the actual value (redacted, bounded) or why.
pub fn evaluate(asrt: &Assertion, a: &Answer, vars: &Vars) -> Result<(), String> {
    // The subject's values: several for a JSONPath, none when absent.
    let values: Vec<Value> = match &asrt.that {
        Subject::Status => a.status.map(Value::from).into_iter().collect(),
        Subject::Body => vec![Value::String(a.text().to_string())],
        Subject::Header(h) => a
            .header(h)
            .map(|v| Value::String(v.into()))
            .into_iter()
            .collect(),
        Subject::Jsonpath(p) => match a.json() {
            Some(j) => p.path.query(&j).all().into_iter().cloned().collect(),
            None => return Err("the body is not JSON".into()),
        },
        Subject::ExitCode => a.exit_code.map(Value::from).into_iter().collect(),
        Subject::Stdout => vec![Value::String(a.stdout.clone())],
        Subject::Stderr => vec![Value::String(a.stderr.clone())],
        Subject::Duration => vec![Value::from(a.duration.as_millis() as u64)],
        Subject::Var(n) => vars
            .get(n)
            .map(|v| Value::String(v.into()))
            .into_iter()
            .collect(),
    };
    let actual = values.first();
    let shown = |v: Option<&Value>| match v {
        Some(v) => format!(
            "actual {}",
            super::excerpt(&vars.redact(&v.to_string()), 200)
        ),
        None => "absent".to_string(),
    };
    let ok = match &asrt.check {
        Check::Exists(want) => {
            return if values.is_empty() != *want {
                Ok(())
            } else {
                Err(shown(actual))
            }
        }
        Check::Count(n) => {
            let got = match (&asrt.that, actual) {
                (Subject::Jsonpath(_), Some(Value::Array(a))) if values.len() == 1 => a.len(),
                (Subject::Jsonpath(_), _) => values.len(),
                (_, Some(Value::String(s))) => s.chars().count(),
                (_, Some(Value::Array(a))) => a.len(),
                _ => 0,
            };
            return if got as u64 == *n {
                Ok(())
            } else {
                Err(format!("actual count {got}"))
            };
        }
        _ if actual.is_none() => return Err("absent".into()),
        Check::Equals(want) => actual.is_some_and(|v| loosely_equal(v, want)),
        Check::Contains(s) => actual.is_some_and(|v| match v {
            Value::String(t) => t.contains(s.as_str()),
            Value::Array(items) => items
                .iter()
                .any(|i| loosely_equal(i, &Value::String(s.clone()))),
            other => other.to_string().contains(s.as_str()),
        }),
        Check::Matches(r) => actual.is_some_and(|v| r.0.is_match(&text_of(v))),
        Check::TypeIs(t) => actual.is_some_and(|v| type_of(v) == *t),
        Check::LessThan(n) | Check::Below(n) => actual.and_then(number).is_some_and(|x| x < *n),
        Check::GreaterThan(n) => actual.and_then(number).is_some_and(|x| x > *n),
    };
    if ok {
        Ok(())
    } else {
        Err(shown(actual))
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Equal as JSON, or as text when one side is a string (`equals: "200"` against 200).
fn loosely_equal(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x == y;
    }
    a == b || ((a.is_string() || b.is_string()) && text_of(a) == text_of(b))
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn type_of(v: &Value) -> JsonType {
    match v {
        Value::String(_) => JsonType::String,
        Value::Number(_) => JsonType::Number,
        Value::Bool(_) => JsonType::Boolean,
        Value::Null => JsonType::Null,
        Value::Array(_) => JsonType::Array,
        Value::Object(_) => JsonType::Object,
    }
}

/// How an assertion reads in a report: `jsonpath $.name equals "admin"`.
pub fn describe(a: &Assertion) -> String {
    let that = String::from(a.that.clone());
    let check = match &a.check {
        Check::Equals(v) => format!("equals {v}"),
        Check::Contains(s) => format!("contains {s:?}"),
        Check::Matches(r) => format!("matches /{}/", r.0),
        Check::Exists(true) => "exists".into(),
        Check::Exists(false) => "does not exist".into(),
        Check::TypeIs(t) => format!("is of type {}", format!("{t:?}").to_lowercase()),
        Check::Count(n) => format!("count is {n}"),
        Check::LessThan(n) => format!("less than {n}"),
        Check::GreaterThan(n) => format!("greater than {n}"),
        Check::Below(n) => format!("below {n} ms"),
    };
    format!("{that} {check}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse::parse_suite;

    fn asserts(yaml_list: &str) -> Vec<Assertion> {
        let t = format!("name: s\ncases:\n  - name: c\n    steps:\n      - http: {{url: x}}\n        assert: {yaml_list}\n");
        let mut s = parse_suite("t.yaml", &t, false).unwrap();
        s.cases.remove(0).steps.remove(0).asserts
    }

    fn answer() -> Answer {
        Answer {
            status: Some(201),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: r#"{"name":"admin","items":[1,2,3],"ok":true,"n":"42"}"#.into(),
            duration: Duration::from_millis(120),
            ..Default::default()
        }
    }

    #[test]
    fn every_check_passes_on_a_matching_answer() {
        let list = r#"[{that: status, equals: 201}, {that: status, less_than: 300}, {that: jsonpath $.name, equals: admin}, {that: header content-type, contains: json}, {that: body, matches: '"ok":true'}, {that: jsonpath $.ok, type: boolean}, {that: jsonpath $.items, count: 3}, {that: 'jsonpath $.items[*]', count: 3}, {that: jsonpath $.missing, exists: false}, {that: jsonpath $.n, greater_than: 41}, {that: duration, below: 1000}, {that: jsonpath $.items, contains: '2'}]"#;
        let v = Vars::default();
        for a in asserts(list) {
            assert_eq!(evaluate(&a, &answer(), &v), Ok(()), "{}", describe(&a));
        }
    }

    #[test]
    fn failures_say_the_actual_value() {
        let v = Vars::default();
        let a = &asserts("[{that: jsonpath $.name, equals: root}]")[0];
        assert_eq!(evaluate(a, &answer(), &v), Err("actual \"admin\"".into()));
        assert_eq!(describe(a), "jsonpath $.name equals \"root\"");
        let a = &asserts("[{that: jsonpath $.items, count: 2}]")[0];
        assert_eq!(evaluate(a, &answer(), &v), Err("actual count 3".into()));
        let a = &asserts("[{that: duration, below: 50}]")[0];
        assert!(evaluate(a, &answer(), &v).is_err());
        let a = &asserts("[{that: header x-nope, exists: true}]")[0];
        assert_eq!(evaluate(a, &answer(), &v), Err("absent".into()));
    }

    #[test]
    fn captures_read_jsonpath_header_regex_and_cookie() {
        let mut a = answer();
        a.cookies = vec![("sid".into(), "abc".into())];
        let t = "name: s\ncases:\n  - name: c\n    steps:\n      - http: {url: x}\n        capture:\n          n: {jsonpath: $.name}\n          i: {jsonpath: '$.items'}\n          h: {header: content-type}\n          r: {regex: '\"n\":\"(\\d+)\"'}\n          c: {cookie: sid}\n";
        let s = parse_suite("t.yaml", t, false).unwrap();
        let caps = &s.cases[0].steps[0].capture;
        let got: Vec<String> = ["n", "i", "h", "r", "c"]
            .iter()
            .map(|k| capture(&caps[*k], &a).unwrap())
            .collect();
        assert_eq!(got, ["admin", "[1,2,3]", "application/json", "42", "abc"]);
    }
}
