//! The suite format (docs/test-suites.md): suite → cases → steps → assertions, as read from
//! JSON or YAML. Every rule a file can break is checked while it is read (unknown fields,
//! a step with no kind or two, an assertion with no check or two, a JSONPath or a regex that
//! does not parse), so the reader's error carries the line and the field. The JSON Schema in
//! docs/test-suite.schema.json is generated from these types (`architect test schema`).

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A whole suite file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Shown in results and reports.
    pub name: String,
    /// `{{name}}` values for every step; `--var k=v` and `vault:NAME` values may override or
    /// fill them (a value `vault:NAME` is read from the vault at run time).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Steps run once before the cases; a failure here fails every case.
    #[serde(default)]
    pub setup: Vec<Step>,
    /// Steps run once after the cases, whatever their outcome.
    #[serde(default)]
    pub teardown: Vec<Step>,
    pub cases: Vec<Case>,
}

impl Suite {
    /// True when any step runs a program or types into a terminal ([`StepKind::runs_code`]).
    pub fn runs_code(&self) -> bool {
        self.setup
            .iter()
            .chain(&self.teardown)
            .chain(self.cases.iter().flat_map(|c| &c.steps))
            .any(|s| s.kind.runs_code())
    }

    /// Every `vault:NAME` the suite's variables name.
    pub fn vault_names(&self) -> Vec<String> {
        super::vars::vault_references(self.variables.values())
    }
}

/// One case: steps run in order; captures flow from one step to the next.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// `--tag T` runs only the cases carrying T.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Extra attempts after a failure; a case that passes on one is flaky.
    #[serde(default)]
    pub retries: u32,
    /// Seconds for one attempt of the whole case (default 60).
    #[serde(default)]
    pub timeout: Option<f64>,
    pub steps: Vec<Step>,
}

/// One step: exactly one of `http`, `shell`, `tmux`, `wait_until`; then captures and
/// assertions on what it answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawStep")]
pub struct Step {
    pub name: Option<String>,
    pub kind: StepKind,
    /// Variables taken from this step's answer, usable as `{{name}}` by later steps.
    pub capture: BTreeMap<String, Capture>,
    pub asserts: Vec<Assertion>,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    Http(HttpStep),
    Shell(ShellStep),
    Tmux(TmuxStep),
    WaitUntil(Box<WaitUntil>),
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Http(_) => "http",
            StepKind::Shell(_) => "shell",
            StepKind::Tmux(_) => "tmux",
            StepKind::WaitUntil(_) => "wait_until",
        }
    }

    /// True for a step that runs a program or types into a terminal on the machine that runs
    /// the suite (`shell`, `tmux`, or a `wait_until` around one).
    pub fn runs_code(&self) -> bool {
        match self {
            StepKind::Http(_) => false,
            StepKind::Shell(_) | StepKind::Tmux(_) => true,
            StepKind::WaitUntil(w) => w.step.kind.runs_code(),
        }
    }
}

/// The schema of a type read through its raw form (`try_from`): the raw form's, under the
/// checked type's name.
macro_rules! schema_as {
    ($t:ident, $raw:ty) => {
        impl JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($t).into()
            }
            fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
                <$raw>::json_schema(g)
            }
        }
    };
}

schema_as!(Step, RawStep);
schema_as!(Assertion, RawAssertion);
schema_as!(Capture, RawCapture);

// The step as written; `Step` is it with its kind checked.
/// One step: exactly one of `http`, `shell`, `tmux`, `wait_until`; then optional captures
/// and assertions on what it answered.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    #[serde(default)]
    name: Option<String>,
    /// An HTTP request.
    #[serde(default)]
    http: Option<HttpStep>,
    /// A command run by `sh -c`.
    #[serde(default)]
    shell: Option<ShellStep>,
    /// Keys typed into a tmux session, then its screen read (and waited on).
    #[serde(default)]
    tmux: Option<TmuxStep>,
    /// A step repeated until its assertions hold or the deadline passes.
    #[serde(default)]
    wait_until: Option<Box<WaitUntil>>,
    #[serde(default)]
    capture: BTreeMap<String, Capture>,
    #[serde(default, rename = "assert")]
    asserts: Vec<Assertion>,
}

impl TryFrom<RawStep> for Step {
    type Error = String;
    fn try_from(r: RawStep) -> Result<Step, String> {
        let mut kinds = Vec::new();
        if let Some(h) = r.http {
            kinds.push(StepKind::Http(h));
        }
        if let Some(s) = r.shell {
            kinds.push(StepKind::Shell(s));
        }
        if let Some(t) = r.tmux {
            kinds.push(StepKind::Tmux(t));
        }
        if let Some(w) = r.wait_until {
            kinds.push(StepKind::WaitUntil(w));
        }
        if kinds.len() != 1 {
            return Err(format!(
                "a step needs exactly one of `http`, `shell`, `tmux`, `wait_until` (found {})",
                kinds.len()
            ));
        }
        let kind = kinds.remove(0);
        for a in &r.asserts {
            a.that.fits(&kind)?;
        }
        Ok(Step {
            name: r.name,
            kind,
            capture: r.capture,
            asserts: r.asserts,
        })
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    #[serde(default = "get")]
    pub method: String,
    /// Absolute URL; `{{var}}` allowed anywhere in it.
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// A JSON body (strings inside are interpolated).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// A form body (application/x-www-form-urlencoded).
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
    /// A raw body, sent as written.
    #[serde(default)]
    pub body: Option<String>,
    /// Seconds before the request is abandoned (default 10).
    #[serde(default)]
    pub timeout: Option<f64>,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellStep {
    /// Run by `sh -c`; `{{var}}` interpolated (a vault value reaches it through `env` only).
    pub command: String,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seconds before the process group is killed (default 60).
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// Types into a tmux session's active pane (through the agents' tmux driver, src/tmux), then
/// reads its screen: with `expect`/`expect_regex`, until the text shows or `timeout` passes.
/// The screen is the step's `body` (and `stdout`) for assertions and captures.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TmuxStep {
    /// The session (letters, digits, `-`, `_`, `.`); it must exist.
    pub session: String,
    /// A private tmux server (`tmux -L NAME`); the default server when absent.
    #[serde(default)]
    pub socket: Option<String>,
    /// Text typed literally (`{{var}}` interpolated), then Enter unless `enter: false`.
    #[serde(default)]
    pub send: Option<String>,
    #[serde(default)]
    pub enter: Option<bool>,
    /// tmux key names pressed after `send` (`C-c`, `Escape`, `Up`, ...).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Text the screen must show within `timeout`.
    #[serde(default)]
    pub expect: Option<String>,
    /// A regex the screen must match within `timeout`.
    #[serde(default)]
    pub expect_regex: Option<Pattern>,
    /// Lines of the pane read (default 50).
    #[serde(default)]
    pub lines: Option<u32>,
    /// Seconds to wait for `expect`/`expect_regex` (default 10).
    #[serde(default)]
    pub timeout: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitUntil {
    /// The step to repeat; its own assertions are the condition.
    pub step: Step,
    /// Seconds before giving up (default 30).
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Seconds between tries (default 0.2).
    #[serde(default)]
    pub interval: Option<f64>,
}

/// Where a captured value comes from: exactly one of the four.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawCapture")]
pub enum Capture {
    Jsonpath(JsonPath),
    Header(String),
    Regex(Pattern),
    Cookie(String),
}

// A capture as written; `Capture` is it with exactly one source.
/// Where a captured value comes from: exactly one of the four.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    /// The first match of an RFC 9535 JSONPath in the JSON body (strings as is, other values
    /// as JSON).
    #[serde(default)]
    jsonpath: Option<JsonPath>,
    /// A response header.
    #[serde(default)]
    header: Option<String>,
    /// The first group (or the whole match) of a regex over the body or stdout.
    #[serde(default)]
    regex: Option<Pattern>,
    /// A cookie the response set.
    #[serde(default)]
    cookie: Option<String>,
}

impl TryFrom<RawCapture> for Capture {
    type Error = String;
    fn try_from(r: RawCapture) -> Result<Capture, String> {
        let all: Vec<Capture> = [
            r.jsonpath.map(Capture::Jsonpath),
            r.header.map(Capture::Header),
            r.regex.map(Capture::Regex),
            r.cookie.map(Capture::Cookie),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[Capture; 1]>::try_from(all) {
            Ok([c]) => Ok(c),
            Err(v) => Err(format!(
                "a capture needs exactly one of `jsonpath`, `header`, `regex`, `cookie` (found {})",
                v.len()
            )),
        }
    }
}

/// One check: `that` names the subject, then exactly one check.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawAssertion")]
pub struct Assertion {
    pub that: Subject,
    pub check: Check,
}

// An assertion as written; `Assertion` is it with exactly one check.
/// One assertion: `that` names the subject, then exactly one check.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAssertion {
    /// `status`, `body`, `header NAME`, `jsonpath EXPR`, `exit_code`, `stdout`, `stderr`,
    /// `duration` (milliseconds) or `var NAME`.
    that: Subject,
    #[serde(default)]
    equals: Option<serde_json::Value>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    matches: Option<Pattern>,
    /// `true`: the subject is there; `false`: it is not.
    #[serde(default)]
    exists: Option<bool>,
    /// `string`, `number`, `boolean`, `null`, `array` or `object`.
    #[serde(default, rename = "type")]
    type_is: Option<JsonType>,
    /// The number of JSONPath matches (the length of the one array matched), or the length of
    /// an array or string.
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    less_than: Option<f64>,
    #[serde(default)]
    greater_than: Option<f64>,
    /// For `duration`: milliseconds the step must stay under.
    #[serde(default)]
    below: Option<f64>,
}

#[derive(Debug, Clone)]
pub enum Check {
    Equals(serde_json::Value),
    Contains(String),
    Matches(Pattern),
    Exists(bool),
    TypeIs(JsonType),
    Count(u64),
    LessThan(f64),
    GreaterThan(f64),
    Below(f64),
}

impl TryFrom<RawAssertion> for Assertion {
    type Error = String;
    fn try_from(r: RawAssertion) -> Result<Assertion, String> {
        let checks: Vec<Check> = [
            r.equals.map(Check::Equals),
            r.contains.map(Check::Contains),
            r.matches.map(Check::Matches),
            r.exists.map(Check::Exists),
            r.type_is.map(Check::TypeIs),
            r.count.map(Check::Count),
            r.less_than.map(Check::LessThan),
            r.greater_than.map(Check::GreaterThan),
            r.below.map(Check::Below),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[Check; 1]>::try_from(checks) {
            Ok([check]) => {
                if matches!(check, Check::Below(_)) && r.that != Subject::Duration {
                    return Err("`below` checks `that: duration` only".into());
                }
                Ok(Assertion { that: r.that, check })
            }
            Err(v) => Err(format!(
                "an assertion needs exactly one of `equals`, `contains`, `matches`, `exists`, `type`, `count`, `less_than`, `greater_than`, `below` (found {})",
                v.len()
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JsonType {
    String,
    Number,
    Boolean,
    Null,
    Array,
    Object,
}

/// What an assertion looks at, parsed from `that`.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(with = "String")]
pub enum Subject {
    Status,
    Body,
    Header(String),
    Jsonpath(JsonPath),
    ExitCode,
    Stdout,
    Stderr,
    Duration,
    Var(String),
}

impl Subject {
    /// Refuses a subject the step kind never produces (`status` of a shell step).
    fn fits(&self, kind: &StepKind) -> Result<(), String> {
        let http_only = matches!(self, Subject::Status | Subject::Header(_));
        let shell_only = matches!(self, Subject::ExitCode | Subject::Stdout | Subject::Stderr);
        let ok = match kind {
            StepKind::Http(_) => !shell_only,
            StepKind::Shell(_) => !http_only,
            // The screen is the body and the stdout; there is no status nor exit code.
            StepKind::Tmux(_) => !http_only && !matches!(self, Subject::ExitCode | Subject::Stderr),
            // The outer step's own assertions see the inner step's last answer.
            StepKind::WaitUntil(w) => return self.fits(&w.step.kind),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "`that: {}` does not apply to a {} step",
                String::from(self.clone()),
                kind.name()
            ))
        }
    }
}

impl TryFrom<String> for Subject {
    type Error = String;
    fn try_from(s: String) -> Result<Subject, String> {
        let t = s.trim();
        let (head, rest) = match t.split_once(char::is_whitespace) {
            Some((h, r)) => (h, r.trim()),
            None => (t, ""),
        };
        let needs = |what: &str| format!("`{head}` needs {what}: `{head} <{what}>`");
        Ok(match (head, rest.is_empty()) {
            ("status", true) => Subject::Status,
            ("body", true) => Subject::Body,
            ("exit_code", true) => Subject::ExitCode,
            ("stdout", true) => Subject::Stdout,
            ("stderr", true) => Subject::Stderr,
            ("duration", true) => Subject::Duration,
            ("header", false) => Subject::Header(rest.to_string()),
            ("var", false) => Subject::Var(rest.to_string()),
            ("jsonpath", false) => Subject::Jsonpath(JsonPath::try_from(rest.to_string())?),
            ("header", true) => return Err(needs("name")),
            ("var", true) => return Err(needs("name")),
            ("jsonpath", true) => return Err(needs("expression")),
            _ => {
                return Err(format!(
                "unknown subject `{t}`: expected status, body, header NAME, jsonpath EXPR, exit_code, stdout, stderr, duration or var NAME"
            ))
            }
        })
    }
}

impl From<Subject> for String {
    fn from(s: Subject) -> String {
        match s {
            Subject::Status => "status".into(),
            Subject::Body => "body".into(),
            Subject::Header(h) => format!("header {h}"),
            Subject::Jsonpath(p) => format!("jsonpath {}", p.source),
            Subject::ExitCode => "exit_code".into(),
            Subject::Stdout => "stdout".into(),
            Subject::Stderr => "stderr".into(),
            Subject::Duration => "duration".into(),
            Subject::Var(v) => format!("var {v}"),
        }
    }
}

/// An RFC 9535 JSONPath, parsed when the file is read.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(with = "String")]
pub struct JsonPath {
    pub source: String,
    pub path: serde_json_path::JsonPath,
}

impl PartialEq for JsonPath {
    fn eq(&self, o: &JsonPath) -> bool {
        self.source == o.source
    }
}

impl TryFrom<String> for JsonPath {
    type Error = String;
    fn try_from(s: String) -> Result<JsonPath, String> {
        let path = serde_json_path::JsonPath::parse(&s)
            .map_err(|e| format!("JSONPath `{s}` does not parse: {e}"))?;
        Ok(JsonPath { source: s, path })
    }
}

impl From<JsonPath> for String {
    fn from(p: JsonPath) -> String {
        p.source
    }
}

/// A regex, compiled when the file is read.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(with = "String")]
pub struct Pattern(pub regex::Regex);

impl TryFrom<String> for Pattern {
    type Error = String;
    fn try_from(s: String) -> Result<Pattern, String> {
        regex::Regex::new(&s)
            .map(Pattern)
            .map_err(|e| format!("regex `{s}` does not compile: {e}"))
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.0.as_str().to_string()
    }
}
