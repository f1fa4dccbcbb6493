//! Reading a suite file: JSON or YAML (by extension, or by the first character), with every
//! error placed at its line, column and field (`cases[0].steps[1].assert[0].that`).

use super::format::Suite;
use std::path::Path;

/// Why a suite file could not be read. Display: `FILE:LINE:COLUMN: FIELD: message`.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The path of the field in the file, as `cases[0].steps[1].http.url`; empty for the root.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for SuiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": ")?;
        if !self.field.is_empty() && self.field != "." {
            write!(f, "field `{}`: ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for SuiteError {}

/// Reads and checks the suite at `path`.
pub fn read_suite(path: &Path) -> Result<Suite, SuiteError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SuiteError {
        file: file.clone(),
        line: None,
        column: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    let json = path.extension().is_some_and(|x| x == "json");
    parse_suite(&file, &text, json)
}

/// Parses `text` as JSON (`json`, or when it starts with `{`) or YAML.
pub fn parse_suite(file: &str, text: &str, json: bool) -> Result<Suite, SuiteError> {
    let err = |line, column, field: String, message: String| SuiteError {
        file: file.to_string(),
        line,
        column,
        field,
        message,
    };
    let suite = if json || text.trim_start().starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        let suite: Suite = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let message = strip_position(&inner.to_string());
            err(Some(inner.line()), Some(inner.column()), field, message)
        })?;
        de.end().map_err(|e| {
            err(
                Some(e.line()),
                Some(e.column()),
                String::new(),
                strip_position(&e.to_string()),
            )
        })?;
        suite
    } else {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let loc = inner.location();
            err(
                loc.as_ref().map(|l| l.line()),
                loc.as_ref().map(|l| l.column()),
                field,
                strip_position(&inner.to_string()),
            )
        })?
    };
    if suite.cases.is_empty() {
        return Err(err(
            None,
            None,
            "cases".into(),
            "a suite needs at least one case".into(),
        ));
    }
    Ok(suite)
}

/// The parsers append " at line L column C" (JSON) or prefix "FIELD: " and append it (YAML);
/// the position is ours to print, once.
fn strip_position(msg: &str) -> String {
    let mut m = msg.to_string();
    for marker in [" at line ", " at position "] {
        if let Some(i) = m.find(marker) {
            m.truncate(i);
        }
    }
    // serde_yaml_ng prefixes the path it knows ("cases[0].steps: ..."); the field is ours too.
    if let Some((head, rest)) = m.split_once(": ") {
        if !head.contains(' ') && (head.contains('.') || head.contains('[')) {
            m = rest.to_string();
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(t: &str) -> Result<Suite, SuiteError> {
        parse_suite("s.yaml", t, false)
    }

    const OK: &str = "name: s\nvariables: {base: http://x}\ncases:\n  - name: c\n    steps:\n      - http: {url: '{{base}}/health'}\n        capture:\n          v: {jsonpath: $.version}\n        assert:\n          - {that: status, equals: 200}\n          - {that: jsonpath $.ok, type: boolean}\n          - {that: duration, below: 500}\n";

    #[test]
    fn a_good_suite_parses() {
        let s = yaml(OK).unwrap();
        assert_eq!(s.cases[0].steps[0].asserts.len(), 3);
        assert_eq!(s.cases[0].steps[0].kind.name(), "http");
    }

    #[test]
    fn json_and_yaml_read_alike() {
        let j = r#"{"name":"s","cases":[{"name":"c","steps":[{"shell":{"command":"true"},"assert":[{"that":"exit_code","equals":0}]}]}]}"#;
        let s = parse_suite("s.json", j, true).unwrap();
        assert_eq!(s.cases[0].steps[0].kind.name(), "shell");
    }

    #[test]
    fn an_unknown_step_kind_names_line_and_field() {
        let e =
            yaml("name: s\ncases:\n  - name: c\n    steps:\n      - grpc: {url: x}\n").unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.field.starts_with("cases[0].steps[0]"), "{e}");
        assert!(e.message.contains("unknown field `grpc`"), "{e}");
    }

    #[test]
    fn an_unknown_assertion_name_is_refused() {
        let e = yaml("name: s\ncases:\n  - name: c\n    steps:\n      - shell: {command: 'true'}\n        assert:\n          - {that: exit_code, roughly: 0}\n").unwrap_err();
        assert_eq!(e.line, Some(7), "{e}");
        assert!(e.message.contains("unknown field `roughly`"), "{e}");
    }

    #[test]
    fn a_bad_jsonpath_and_a_bad_regex_are_refused_with_their_field() {
        let e = yaml("name: s\ncases:\n  - name: c\n    steps:\n      - http: {url: x}\n        assert:\n          - {that: 'jsonpath $.[[', exists: true}\n").unwrap_err();
        assert!(e.message.contains("JSONPath `$.[[` does not parse"), "{e}");
        assert!(e.field.contains("assert[0]"), "{e}");
        assert_eq!(e.line, Some(7), "{e}");
        let e = yaml("name: s\ncases:\n  - name: c\n    steps:\n      - http: {url: x}\n        capture:\n          t: {regex: '(unclosed'}\n").unwrap_err();
        assert!(e.message.contains("does not compile"), "{e}");
        assert!(e.field.contains("capture.t"), "{e}");
    }

    #[test]
    fn steps_and_assertions_need_exactly_one_kind_and_check() {
        let e =
            yaml("name: s\ncases:\n  - name: c\n    steps:\n      - name: nothing\n").unwrap_err();
        assert!(e.message.contains("exactly one of `http`"), "{e}");
        let e = yaml("name: s\ncases:\n  - name: c\n    steps:\n      - shell: {command: x}\n        assert:\n          - {that: stdout, contains: a, matches: b}\n").unwrap_err();
        assert!(e.message.contains("found 2"), "{e}");
        let e = yaml("name: s\ncases:\n  - name: c\n    steps:\n      - shell: {command: x}\n        assert:\n          - {that: status, equals: 200}\n").unwrap_err();
        assert!(e.message.contains("does not apply to a shell step"), "{e}");
    }

    #[test]
    fn malformed_yaml_and_json_name_line_and_column() {
        let e = yaml("name: s\ncases:\n  - name: [c\n").unwrap_err();
        assert!(e.line.is_some() && e.column.is_some(), "{e}");
        let e = parse_suite("s.json", "{\"name\": \"s\",\n \"cases\": [}", true).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().starts_with("s.json:2:"), "{e}");
    }
}
