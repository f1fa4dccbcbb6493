//! The pane classifier: which agent a tmux pane runs and what it is doing (`idle`, `busy`,
//! `waiting_for_permission`, or `unknown`), plus whether its input line holds text.
//!
//! Driven by an ordered pattern table kept as data: the built-in rows in [`BUILTIN`] (written
//! against the real captures in `tests/fixtures/agents/captures/`), preceded by user rows stored
//! in the database (`pane_patterns`). Evaluation, for one pane:
//! 1. agent kind: a known hint (architect launched the session) wins; else the first enabled
//!    `detect` row that matches;
//! 2. state: the first enabled row of that agent whose signal is a state and whose regex
//!    matches; **no match means `unknown`** — a screen nobody recognises is never guessed idle;
//! 3. input line (idle only): the first `input_empty` / `input_text` row that matches; no match
//!    means `unknown`, which the dispatcher treats as "do not type here".
//!
//! Each row matches one source: the whole screen, its last N non-blank lines (`tail`), the pane
//! title, or the pane's current command. Footers are matched on substrings of the last lines,
//! never on whole lines (they change with the pane width).

use regex::Regex;
use serde::{Deserialize, Serialize};

mod builtin;
pub use builtin::*;

crate::text_enum! {
    /// What an agent in a pane is doing.
    pub enum PaneState ("pane state") {
        Idle = "idle",
        Busy = "busy",
        WaitingForPermission = "waiting_for_permission",
        /// Nothing in the table recognised the screen (or a row said so on purpose, e.g. a
        /// blocking dialog): never sent a prompt.
        Unknown = "unknown",
    }
}

crate::text_enum! {
    /// The program in a pane.
    pub enum AgentKind ("agent kind") {
        Claude = "claude",
        Codex = "codex",
        Gemini = "gemini",
        Ollama = "ollama",
        /// `architect chat --worker` (the LLM gateway's chat worker).
        ArchitectChat = "architect_chat",
        Shell = "shell",
        Other = "other",
    }
}

crate::text_enum! {
    /// What a pattern row says when it matches.
    pub enum Signal ("pattern signal") {
        /// The pane runs this row's agent.
        Detect = "detect",
        Idle = "idle",
        Busy = "busy",
        WaitingForPermission = "waiting_for_permission",
        /// A screen recognised as not safe to type into (a blocking dialog).
        Unknown = "unknown",
        InputEmpty = "input_empty",
        InputText = "input_text",
    }
}

crate::text_enum! {
    /// Where a row looks.
    pub enum Source ("pattern source") {
        Screen = "screen",
        /// The last `tail_lines` non-blank lines.
        Tail = "tail",
        Title = "title",
        Command = "command",
    }
}

crate::text_enum! {
    /// Whether the agent's input line is empty (safe to type a prompt into).
    pub enum InputLine ("input line") {
        Empty = "empty",
        HasText = "has_text",
        Unknown = "unknown",
    }
}

impl Signal {
    fn state(self) -> Option<PaneState> {
        match self {
            Signal::Idle => Some(PaneState::Idle),
            Signal::Busy => Some(PaneState::Busy),
            Signal::WaitingForPermission => Some(PaneState::WaitingForPermission),
            Signal::Unknown => Some(PaneState::Unknown),
            Signal::Detect | Signal::InputEmpty | Signal::InputText => None,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanePattern {
    /// Database id of a user row; `None` for built-in rows.
    pub id: Option<i64>,
    /// Stable name, reported as the row that decided a classification.
    pub name: String,
    pub agent: AgentKind,
    pub signal: Signal,
    pub source: Source,
    /// Lines looked at for `tail` (ignored otherwise).
    pub tail_lines: i64,
    pub regex: String,
    pub enabled: bool,
    /// Why the row exists, and whether it was verified against a real program.
    pub note: String,
}

crate::text_enum! {
    /// Whether a built-in row was checked against the real program: data beside each row.
    pub enum Verification ("verification") {
        /// Written against a real capture or an observed run (the note names it).
        Real = "real",
        /// Written against architect's own code (the chat worker, a plain shell).
        OwnCode = "own_code",
        /// From documentation only: off unless enabled by name (`--classifier-enable`).
        Unverified = "unverified",
    }
}

/// `(name, agent, signal, source, tail_lines, regex, note, verification)`.
type Row = (
    &'static str,
    AgentKind,
    Signal,
    Source,
    i64,
    &'static str,
    &'static str,
    Verification,
);

/// What the classifier looks at.
#[derive(Debug, Clone, Default)]
pub struct PaneView<'a> {
    /// Plain captured text (no escapes).
    pub screen: &'a str,
    pub title: &'a str,
    pub command: &'a str,
    /// The agent architect launched there, when known: skips detection.
    pub agent_hint: Option<AgentKind>,
}

/// The answer, with the rows that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub agent: AgentKind,
    pub state: PaneState,
    pub input: InputLine,
    /// Name of the row that gave the agent (`hint` when it was known).
    pub agent_by: Option<String>,
    /// Name of the row that gave the state; `None` for an unrecognised screen.
    pub state_by: Option<String>,
}

impl Classification {
    /// Safe to type a prompt into: idle with an empty input line.
    pub fn ready_for_prompt(&self) -> bool {
        self.state == PaneState::Idle && self.input == InputLine::Empty
    }
}

/// A compiled table.
pub struct Classifier {
    rows: Vec<(PanePattern, Regex)>,
}

/// A row whose regex does not compile.
#[derive(Debug, Clone, PartialEq)]
pub struct BadPattern {
    pub name: String,
    pub error: String,
}

/// Checks a regex the way the classifier will compile it (bounded size).
pub fn compile(regex: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(regex)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

impl Classifier {
    /// User rows first (in the order given), then the built-ins: the verified ones, and the
    /// unverified ones `enable` names (by row or agent). A user row that fails to compile is
    /// skipped and reported (the API refuses such rows, so this is a stored row written by an
    /// older version or by hand).
    pub fn new(user: Vec<PanePattern>, enable: &[String]) -> (Classifier, Vec<BadPattern>) {
        let mut rows = Vec::new();
        let mut bad = Vec::new();
        for p in user.into_iter().chain(builtin_patterns_enabling(enable)) {
            if !p.enabled {
                continue;
            }
            match compile(&p.regex) {
                Ok(re) => rows.push((p, re)),
                Err(error) => bad.push(BadPattern {
                    name: p.name.clone(),
                    error,
                }),
            }
        }
        (Classifier { rows }, bad)
    }

    pub fn builtin() -> Classifier {
        Classifier::new(Vec::new(), &[]).0
    }

    fn matches(&self, p: &PanePattern, re: &Regex, view: &PaneView<'_>) -> bool {
        match p.source {
            Source::Screen => re.is_match(view.screen),
            Source::Tail => re.is_match(&tail(view.screen, p.tail_lines)),
            Source::Title => re.is_match(view.title),
            Source::Command => re.is_match(view.command),
        }
    }

    pub fn classify(&self, view: &PaneView<'_>) -> Classification {
        // A side panel (Claude Code's diff panel) is not the agent's own screen: its text is
        // whatever the agent wrote into files, and must never decide a state.
        let stripped = strip_side_panel(view.screen);
        let view = &PaneView {
            screen: &stripped,
            ..view.clone()
        };
        let (agent, agent_by) = match view.agent_hint {
            Some(a) => (a, Some("hint".to_string())),
            None => self
                .rows
                .iter()
                .find(|(p, re)| p.signal == Signal::Detect && self.matches(p, re, view))
                .map(|(p, _)| (p.agent, Some(p.name.clone())))
                .unwrap_or((AgentKind::Other, None)),
        };
        let of_agent = |want: &dyn Fn(Signal) -> bool| {
            self.rows
                .iter()
                .find(|(p, re)| p.agent == agent && want(p.signal) && self.matches(p, re, view))
                .map(|(p, _)| p)
        };
        let (state, state_by) = match of_agent(&|s| s.state().is_some()) {
            Some(p) => (
                p.signal.state().unwrap_or(PaneState::Unknown),
                Some(p.name.clone()),
            ),
            None => (PaneState::Unknown, None),
        };
        let input = if state == PaneState::Idle {
            match of_agent(&|s| matches!(s, Signal::InputEmpty | Signal::InputText)) {
                Some(p) if p.signal == Signal::InputEmpty => InputLine::Empty,
                Some(_) => InputLine::HasText,
                None => InputLine::Unknown,
            }
        } else {
            InputLine::Unknown
        };
        Classification {
            agent,
            state,
            input,
            agent_by,
            state_by,
        }
    }
}

/// Terminal cells a character takes (tmux's `capture-pane -p` writes a wide character once).
fn cells(c: char) -> usize {
    let u = u32::from(c);
    let zero = (0x300..=0x36F).contains(&u)
        || (0x200B..=0x200F).contains(&u)
        || (0xFE00..=0xFE0F).contains(&u);
    let wide = (0x1100..=0x115F).contains(&u)
        || ((0x2E80..=0xA4CF).contains(&u) && u != 0x303F)
        || (0xAC00..=0xD7A3).contains(&u)
        || (0xF900..=0xFAFF).contains(&u)
        || (0xFE30..=0xFE4F).contains(&u)
        || (0xFF00..=0xFF60).contains(&u)
        || (0xFFE0..=0xFFE6).contains(&u)
        || (0x1F300..=0x1F64F).contains(&u)
        || (0x1F900..=0x1F9FF).contains(&u)
        || (0x20000..=0x3FFFD).contains(&u);
    if zero {
        0
    } else if wide {
        2
    } else {
        1
    }
}

/// Vertical box-drawing borders.
fn is_vertical_border(c: char) -> bool {
    matches!(c, '│' | '┃' | '║' | '▕' | '▏')
}

/// Least lines a vertical border must run through to be a side panel's edge rather than a
/// boxed dialog (Gemini's permission box is ~10 lines of a 40-line pane).
const SIDE_PANEL_MIN_LINES: usize = 8;

/// `screen` without a side panel: when one vertical border runs down the same cell column of
/// most non-blank lines (at least 60 %, and [`SIDE_PANEL_MIN_LINES`]), every line is cut there
/// — the panel beyond a right-hand border is dropped, a left-hand border (column 0) and the
/// space after it removed. Boxed dialogs that span a few lines stay as drawn.
pub fn strip_side_panel(screen: &str) -> std::borrow::Cow<'_, str> {
    let lines: Vec<&str> = screen.lines().collect();
    let mut count: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut nonblank = 0;
    for l in &lines {
        if l.trim().is_empty() {
            continue;
        }
        nonblank += 1;
        let mut col = 0;
        for c in l.chars() {
            if is_vertical_border(c) {
                *count.entry(col).or_default() += 1;
            }
            col += cells(c);
        }
    }
    let border = count
        .iter()
        .filter(|(_, &n)| n >= SIDE_PANEL_MIN_LINES && n * 10 >= nonblank * 6)
        .map(|(&col, _)| col)
        .min();
    let Some(border) = border else {
        return std::borrow::Cow::Borrowed(screen);
    };
    let mut out = String::with_capacity(screen.len());
    for l in &lines {
        let mut col = 0;
        let mut kept = String::new();
        for c in l.chars() {
            if border == 0 {
                if col == 0 && is_vertical_border(c) {
                    col += 1;
                    continue;
                }
                if col == 1 && c == ' ' && l.starts_with(is_vertical_border) {
                    col += 1;
                    continue;
                }
            } else if col >= border {
                break;
            }
            kept.push(c);
            col += cells(c);
        }
        out.push_str(kept.trim_end_matches(' '));
        out.push('\n');
    }
    std::borrow::Cow::Owned(out)
}

/// The last `n` non-blank lines of `screen`, trailing spaces trimmed.
pub fn tail(screen: &str, n: i64) -> String {
    let n = usize::try_from(n.max(1)).unwrap_or(1);
    let lines: Vec<&str> = screen
        .lines()
        .map(|l| l.trim_end_matches([' ', '\t']))
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a permission prompt asks for, read from the screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionRequest {
    /// `Bash`, `Write`, `Edit`, ... (Claude) or `exec`, `edit` (Codex).
    pub tool: String,
    /// The shell command, when the tool runs one.
    pub command: Option<String>,
    /// The file, when the tool writes one.
    pub path: Option<String>,
    /// The whole prompt panel.
    pub prompt_text: String,
    /// Options carry numbers (Claude's `1. Yes`); unnumbered dialogs need a person.
    pub numbered: bool,
}

impl PermissionRequest {
    /// Which prompt this is: a hash of the tool, the command or path and the prompt panel as
    /// drawn (side panel removed, blanks collapsed). Two readings of one prompt agree; the
    /// next prompt of the agent differs unless it asks the very same thing again.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text: Vec<&str> = self.prompt_text.split_whitespace().collect();
        let mut h = Sha256::new();
        for part in [
            self.tool.as_str(),
            self.command.as_deref().unwrap_or(""),
            self.path.as_deref().unwrap_or(""),
            &text.join(" "),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// A hash of the whole screen as the agent drew it (side panel removed, trailing blanks and
/// blank lines dropped): unchanged while nothing on it changed.
pub fn screen_hash(screen: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for l in strip_side_panel(screen).lines() {
        let l = l.trim_end();
        if !l.is_empty() {
            h.update(l.as_bytes());
            h.update([b'\n']);
        }
    }
    hex::encode(&h.finalize()[..16])
}

/// Reads the tool and command or file of a permission prompt (`None` when the screen holds
/// none this code knows).
pub fn permission_request(agent: AgentKind, screen: &str) -> Option<PermissionRequest> {
    let screen = strip_side_panel(screen);
    let lines: Vec<&str> = screen.lines().map(|l| l.trim_end()).collect();
    match agent {
        AgentKind::Claude => {
            // The panel starts after the last full-width `─` rule.
            let start = lines
                .iter()
                .rposition(|l| l.starts_with("──"))
                .map_or(0, |i| i + 1);
            let panel = &lines[start..];
            let title = panel.iter().find(|l| !l.trim().is_empty())?.trim();
            let prompt_text = panel.join("\n").trim().to_string();
            // Every permission panel asks "Do you want to …?"; anything else (a footer, a
            // screen caught mid-redraw) is no prompt.
            if !prompt_text.contains("Do you want to") {
                return None;
            }
            let numbered = prompt_text.contains("1. Yes");
            let between_dashes = |panel: &[&str]| -> Option<String> {
                let first = panel.iter().position(|l| l.starts_with('╌'))?;
                let second = panel[first + 1..].iter().position(|l| l.starts_with('╌'))?;
                let body: Vec<&str> = panel[first + 1..first + 1 + second]
                    .iter()
                    .map(|l| l.trim())
                    .collect();
                Some(body.join("\n"))
            };
            let (tool, command, path) = match title {
                "Bash command" => ("Bash".to_string(), between_dashes(panel), None),
                t if t.starts_with("Create file")
                    || t.starts_with("Overwrite file")
                    || t.starts_with("Edit file") =>
                {
                    let path = panel
                        .iter()
                        .skip_while(|l| l.trim() != t)
                        .nth(1)
                        .map(|l| l.trim().to_string());
                    let tool = if t.starts_with("Edit") {
                        "Edit"
                    } else {
                        "Write"
                    };
                    (tool.to_string(), None, path)
                }
                other => (other.split_whitespace().next()?.to_string(), None, None),
            };
            Some(PermissionRequest {
                tool,
                command,
                path,
                prompt_text,
                numbered,
            })
        }
        AgentKind::Codex => {
            let start = lines
                .iter()
                .rposition(|l| l.contains("Would you like to"))?;
            let panel = &lines[start..];
            let prompt_text = panel.join("\n").trim().to_string();
            // A long command wraps onto the next lines (up to a blank line or the options):
            // they are kept, one a line, so the reading is known to be wrapped and never
            // passes for the whole command.
            let command = panel
                .iter()
                .position(|l| l.trim_start().starts_with("$ "))
                .map(|at| {
                    let mut parts = vec![panel[at].trim_start()["$ ".len()..].to_string()];
                    for l in &panel[at + 1..] {
                        let t = l.trim();
                        let option = t.starts_with('›')
                            || t.split_once(". ")
                                .is_some_and(|(n, _)| n.parse::<u8>().is_ok());
                        if t.is_empty() || option {
                            break;
                        }
                        parts.push(t.to_string());
                    }
                    parts.join("\n")
                });
            let tool = if panel[0].contains("edits") {
                "edit"
            } else {
                "exec"
            };
            Some(PermissionRequest {
                tool: tool.into(),
                command,
                path: None,
                prompt_text,
                numbered: true,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! capture {
        ($name:literal) => {
            include_str!(concat!(
                "../../tests/fixtures/agents/captures/",
                $name,
                ".txt"
            ))
        };
    }

    fn classify(screen: &str) -> Classification {
        Classifier::builtin().classify(&PaneView {
            screen,
            ..Default::default()
        })
    }

    fn check(screen: &str, agent: AgentKind, state: PaneState, input: InputLine) {
        let c = classify(screen);
        assert_eq!(
            (c.agent, c.state, c.input),
            (agent, state, input),
            "{c:?}\n{screen}"
        );
    }

    #[test]
    fn every_builtin_row_compiles_and_names_are_unique() {
        let (_, bad) = Classifier::new(Vec::new(), &[]);
        assert_eq!(bad, Vec::new());
        let mut names: Vec<&str> = BUILTIN.iter().map(|r| r.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUILTIN.len());
    }

    #[test]
    fn claude_captures() {
        use AgentKind::Claude as C;
        use InputLine::{Empty, Unknown};
        use PaneState::{Busy, Idle, WaitingForPermission};
        check(capture!("claude-1-idle"), C, Idle, Empty);
        check(capture!("claude-2-busy"), C, Busy, Unknown);
        check(capture!("claude-3-after-answer"), C, Idle, Empty);
        check(
            capture!("claude-4-permission-bash"),
            C,
            WaitingForPermission,
            Unknown,
        );
        check(capture!("claude-5-after-approve-bash"), C, Idle, Empty);
        check(
            capture!("claude-6-permission-write"),
            C,
            WaitingForPermission,
            Unknown,
        );
        check(capture!("claude-7-after-deny"), C, Idle, Empty);
        check(
            capture!("claude-x-automode-fallback-permission"),
            C,
            WaitingForPermission,
            Unknown,
        );
        // Blocking dialogs are recognised, and are not safe to type into.
        for s in [
            capture!("claude-x-automode-classifier-unreachable-dialog"),
            capture!("claude-x-dialog-make-auto-mode-default"),
        ] {
            let c = classify(s);
            assert_eq!((c.agent, c.state), (C, PaneState::Unknown), "{c:?}");
            assert!(c.state_by.is_some(), "a named dialog row decided: {c:?}");
        }
    }

    #[test]
    fn architect_chat_worker_markers() {
        // The screens `architect chat --worker` draws (src/cli/chat.rs), as capture-pane shows
        // them (trailing spaces trimmed).
        let c = Classifier::builtin();
        let idle = "ARCHITECT-CHAT READY session=w1 provider=auto\nchat>\n";
        let r = c.classify(&PaneView {
            screen: idle,
            title: "architect-chat w1: idle",
            command: "architect",
            ..Default::default()
        });
        assert_eq!(
            (r.agent, r.state, r.input),
            (AgentKind::ArchitectChat, PaneState::Idle, InputLine::Empty),
            "{r:?}"
        );
        assert!(r.ready_for_prompt());
        let typed = "ARCHITECT-CHAT READY session=w1 provider=auto\nchat> half a thought\n";
        let r = c.classify(&PaneView {
            screen: typed,
            title: "architect-chat w1: idle",
            command: "architect",
            ..Default::default()
        });
        assert_eq!(r.input, InputLine::HasText, "{r:?}");
        assert!(!r.ready_for_prompt());
        let busy = "ARCHITECT-CHAT READY session=w1 provider=auto\nchat> explain\nARCHITECT-CHAT BUSY session=w1\n  The answer so far\n";
        let r = c.classify(&PaneView {
            screen: busy,
            title: "architect-chat w1: busy",
            command: "architect",
            ..Default::default()
        });
        assert_eq!(
            (r.agent, r.state),
            (AgentKind::ArchitectChat, PaneState::Busy),
            "{r:?}"
        );
        // Mid-answer with the title not yet updated: not guessed idle.
        let r = c.classify(&PaneView {
            screen: busy,
            title: "",
            command: "architect",
            ..Default::default()
        });
        assert_ne!(r.state, PaneState::Idle, "{r:?}");
    }

    #[test]
    fn claude_interrupted_before_output_puts_the_prompt_back_in_the_input() {
        // README: after Escape with nothing streamed, Claude puts the prompt text back into the
        // input box; the dispatcher must not type over it.
        let c = classify(capture!("claude-8-interrupted-before-output"));
        assert_eq!(
            (c.agent, c.state),
            (AgentKind::Claude, PaneState::Idle),
            "{c:?}"
        );
        assert_eq!(c.input, InputLine::HasText, "{c:?}");
        assert!(!c.ready_for_prompt());
    }

    #[test]
    fn claude_holding_a_pasted_prompt_is_idle_with_text() {
        // Real 2.1.332: after a bracketed paste the footer is only "paste again to expand".
        let c = classify(capture!("claude-10-pasted-text-idle"));
        assert_eq!(
            (c.agent, c.state, c.input),
            (AgentKind::Claude, PaneState::Idle, InputLine::HasText),
            "{c:?}"
        );
        assert!(!c.ready_for_prompt());
    }

    #[test]
    fn claude_with_typed_text_is_idle_but_not_ready() {
        let screen = capture!("claude-1-idle")
            .replace("❯\u{a0}", "❯\u{a0}half-typed thought")
            .replace(" · ? for shortcuts · ← for agents", "");
        let c = classify(&screen);
        assert_eq!(
            (c.state, c.input),
            (PaneState::Idle, InputLine::HasText),
            "{c:?}"
        );
        assert!(!c.ready_for_prompt());
    }

    #[test]
    fn codex_captures() {
        use AgentKind::Codex as X;
        use InputLine::{Empty, HasText, Unknown};
        use PaneState::{Busy, Idle, WaitingForPermission};
        check(capture!("codex-1-idle"), X, Idle, Empty);
        check(capture!("codex-2-busy"), X, Busy, Unknown);
        check(capture!("codex-3-after-answer"), X, Idle, Empty);
        check(
            capture!("codex-4-permission-exec"),
            X,
            WaitingForPermission,
            Unknown,
        );
        check(capture!("codex-5-after-approve"), X, Idle, Empty);
        check(capture!("codex-6-after-deny-esc"), X, Idle, Empty);
        check(capture!("codex-7-interrupted"), X, Idle, Empty);
        let typed = capture!("codex-1-idle").replace("› Ask Codex to do anything", "› fix the");
        check(&typed, X, Idle, HasText);
    }

    #[test]
    fn gemini_captures() {
        use AgentKind::Gemini as G;
        use InputLine::{Empty, HasText, Unknown};
        use PaneState::{Busy, Idle, WaitingForPermission};
        check(capture!("gemini-1-idle"), G, Idle, Empty);
        check(capture!("gemini-x-idle-80x24"), G, Idle, Empty);
        check(capture!("gemini-2-idle-typed"), G, Idle, HasText);
        check(capture!("gemini-3-busy"), G, Busy, Unknown);
        check(capture!("gemini-x-busy-80x24"), G, Busy, Unknown);
        check(capture!("gemini-4-after-answer"), G, Idle, Empty);
        check(
            capture!("gemini-5-permission-shell"),
            G,
            WaitingForPermission,
            Unknown,
        );
        check(
            capture!("gemini-x-permission-80x24"),
            G,
            WaitingForPermission,
            Unknown,
        );
        check(capture!("gemini-6-after-approve"), G, Idle, Empty);
        check(capture!("gemini-7-after-deny"), G, Idle, Empty);
        check(capture!("gemini-8-interrupted"), G, Idle, Empty);
        assert!(!classify(capture!("gemini-2-idle-typed")).ready_for_prompt());
        assert!(classify(capture!("gemini-1-idle")).ready_for_prompt());
    }

    #[test]
    fn gemini_rows_leave_other_screens_alone() {
        // No Claude, Codex or chat-worker capture is taken for Gemini, and no Gemini capture
        // for another agent.
        for s in [
            capture!("claude-1-idle"),
            capture!("claude-2-busy"),
            capture!("claude-4-permission-bash"),
            capture!("codex-1-idle"),
            capture!("codex-2-busy"),
            capture!("codex-4-permission-exec"),
            "ARCHITECT-CHAT READY session=w1 provider=auto\nchat>\n",
        ] {
            assert_ne!(classify(s).agent, AgentKind::Gemini, "{s}");
        }
        // A shell whose output happens to hold Gemini-looking lines stays a shell.
        let r = Classifier::builtin().classify(&PaneView {
            screen: " > Type your message or @path/to/file\n(esc to cancel, 1s)\nuser@host:~$",
            command: "bash",
            ..Default::default()
        });
        assert_eq!((r.agent, r.state), (AgentKind::Shell, PaneState::Idle));
        // Gemini with a screen none of its rows knows (a dialog, a future version): unknown.
        for screen in [
            "",
            "Loading...",
            "Waiting for auth... (Press ESC or CTRL+C to cancel)",
            // The idle input box with its footer cut off is not enough to call it idle.
            " >   Type your message or @path/to/file",
        ] {
            let c = Classifier::builtin().classify(&PaneView {
                screen,
                agent_hint: Some(AgentKind::Gemini),
                ..Default::default()
            });
            assert_eq!(c.state, PaneState::Unknown, "{screen:?}: {c:?}");
            assert!(!c.ready_for_prompt());
        }
    }

    #[test]
    fn gemini_titles_decide_too() {
        let c = Classifier::builtin();
        let v = |title| PaneView {
            screen: "",
            title,
            command: "node",
            agent_hint: None,
        };
        let r = c.classify(&v("✋  Action Required (agent-gem)"));
        assert_eq!(
            (r.agent, r.state),
            (AgentKind::Gemini, PaneState::WaitingForPermission)
        );
        let r = c.classify(&v("◇  Ready (agent-gem)"));
        // The title says which agent, but idle needs the screen.
        assert_eq!((r.agent, r.state), (AgentKind::Gemini, PaneState::Unknown));
        let r = Classifier::builtin().classify(&PaneView {
            screen: "",
            title: "✦  Working… (agent-gem)",
            command: "node",
            agent_hint: Some(AgentKind::Gemini),
        });
        assert_eq!(r.state, PaneState::Busy);
    }

    #[test]
    fn codex_titles_decide_too() {
        let c = Classifier::builtin();
        let v = |title| PaneView {
            screen: "",
            title,
            command: "",
            agent_hint: Some(AgentKind::Codex),
        };
        assert_eq!(
            c.classify(&v("⠇ Mock task title | work")).state,
            PaneState::Busy
        );
        assert_eq!(
            c.classify(&v("[ ! ] Action Required | t | d")).state,
            PaneState::WaitingForPermission
        );
        assert_eq!(
            c.classify(&v("Mock task title | work")).state,
            PaneState::Unknown
        );
    }

    #[test]
    fn unrecognised_screens_are_unknown_never_idle() {
        for screen in ["", "random output\nmore", "Loading...", "❯ "] {
            let c = classify(screen);
            assert_eq!(c.state, PaneState::Unknown, "{screen:?}: {c:?}");
            assert!(!c.ready_for_prompt());
        }
        // A known agent whose screen matches none of its rows: still unknown.
        let c = Classifier::builtin().classify(&PaneView {
            screen: "something new in a future version",
            agent_hint: Some(AgentKind::Claude),
            ..Default::default()
        });
        assert_eq!(c.state, PaneState::Unknown);
    }

    #[test]
    fn shells_are_idle_in_the_foreground_only() {
        let c = Classifier::builtin();
        let r = c.classify(&PaneView {
            screen: "user@host:~$ ",
            command: "bash",
            ..Default::default()
        });
        assert_eq!(
            (r.agent, r.state, r.input),
            (AgentKind::Shell, PaneState::Idle, InputLine::Empty)
        );
        let r = c.classify(&PaneView {
            screen: "user@host:~$ ls -",
            command: "bash",
            ..Default::default()
        });
        assert_eq!(r.input, InputLine::HasText);
        let r = c.classify(&PaneView {
            screen: "compiling...",
            command: "cargo",
            ..Default::default()
        });
        assert_eq!((r.agent, r.state), (AgentKind::Other, PaneState::Unknown));
    }

    #[test]
    fn user_rows_come_first_and_disabled_rows_are_ignored() {
        let mut p = builtin_patterns()[0].clone();
        p.name = "my_busy".into();
        p.agent = AgentKind::Claude;
        p.signal = Signal::Busy;
        p.source = Source::Screen;
        p.regex = "Claude Code v".into();
        let (c, _) = Classifier::new(vec![p.clone()], &[]);
        let r = c.classify(&PaneView {
            screen: capture!("claude-1-idle"),
            ..Default::default()
        });
        assert_eq!(
            (r.state, r.state_by.as_deref()),
            (PaneState::Busy, Some("my_busy"))
        );
        p.enabled = false;
        let (c, _) = Classifier::new(vec![p.clone()], &[]);
        let r = c.classify(&PaneView {
            screen: capture!("claude-1-idle"),
            ..Default::default()
        });
        assert_eq!(r.state, PaneState::Idle);
        p.enabled = true;
        p.regex = "(".into();
        let (_, bad) = Classifier::new(vec![p], &[]);
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn claude_with_its_side_panel_is_read_as_without_it() {
        // Claude Code 2.1.332, 160 columns, a git work tree: after the first file write the
        // diff panel opens on the right and every line carries its `│` border.
        use AgentKind::Claude as C;
        use InputLine::{Empty, Unknown};
        use PaneState::{Idle, WaitingForPermission};
        check(capture!("claude-9-idle-side-panel"), C, Idle, Empty);
        check(capture!("claude-9-after-deny-side-panel"), C, Idle, Empty);
        check(
            capture!("claude-9-permission-bash-side-panel"),
            C,
            WaitingForPermission,
            Unknown,
        );
        check(
            capture!("claude-9-permission-overwrite-side-panel"),
            C,
            WaitingForPermission,
            Unknown,
        );
        let r = permission_request(C, capture!("claude-9-permission-bash-side-panel")).unwrap();
        assert_eq!(r.tool, "Bash");
        assert_eq!(
            r.command.as_deref(),
            Some(r#"rm -rf "/tmp/guardcap/outside""#)
        );
        assert!(r.numbered);
        assert!(!r.prompt_text.contains('│'), "{}", r.prompt_text);
        assert!(
            !r.prompt_text.contains("1 file changed"),
            "{}",
            r.prompt_text
        );
        let r =
            permission_request(C, capture!("claude-9-permission-overwrite-side-panel")).unwrap();
        assert_eq!(
            (r.tool.as_str(), r.path.as_deref()),
            ("Write", Some("hello.txt"))
        );
        // The same prompt without the panel has the same fingerprint; another prompt not.
        let plain = strip_side_panel(capture!("claude-9-permission-bash-side-panel"));
        let again = permission_request(C, &plain).unwrap();
        assert_eq!(
            again.fingerprint(),
            permission_request(C, capture!("claude-9-permission-bash-side-panel"))
                .unwrap()
                .fingerprint()
        );
        assert_ne!(again.fingerprint(), r.fingerprint());
    }

    #[test]
    fn text_in_a_side_panel_never_decides_a_state() {
        // The diff panel shows what the agent wrote into files: a file holding a fake prompt
        // must not make an idle Claude look like it waits for permission.
        let idle = capture!("claude-9-idle-side-panel");
        let spoofed: String = idle
            .lines()
            .enumerate()
            .map(|(n, l)| match n {
                20 => format!("{l}Do you want to proceed?"),
                21 => format!("{l} ❯ 1. Yes"),
                22 => format!("{l} esc to interrupt"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        check(
            &spoofed,
            AgentKind::Claude,
            PaneState::Idle,
            InputLine::Empty,
        );
    }

    #[test]
    fn borders_on_either_side_are_stripped_and_small_boxes_kept() {
        let boxed: String = capture!("claude-4-permission-bash")
            .lines()
            .map(|l| format!("│ {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        let r = permission_request(AgentKind::Claude, &boxed).unwrap();
        assert_eq!(
            r.command.as_deref(),
            Some("echo hi > /tmp/agent-work/x.txt")
        );
        // Wide characters count two cells, as tmux draws them.
        let wide = "漢字 ok   │ panel\n".repeat(10);
        assert_eq!(strip_side_panel(&wide), "漢字 ok\n".repeat(10));
        // Gemini's permission box spans a few lines of the pane: left as drawn.
        let g = capture!("gemini-5-permission-shell");
        assert_eq!(strip_side_panel(g), g);
    }

    #[test]
    fn unverified_rows_are_off_unless_enabled_by_name() {
        let ollama = "some answer\n>>> Send a message (/? for help)";
        let view = |screen| PaneView {
            screen,
            command: "ollama",
            ..Default::default()
        };
        let off = Classifier::builtin().classify(&view(ollama));
        assert_eq!(
            (off.agent, off.state),
            (AgentKind::Other, PaneState::Unknown),
            "{off:?}"
        );
        let (on, _) = Classifier::new(Vec::new(), &["ollama".to_string()]);
        let r = on.classify(&view(ollama));
        assert_eq!(
            (r.agent, r.state, r.input),
            (AgentKind::Ollama, PaneState::Idle, InputLine::Empty),
            "{r:?}"
        );
        for p in builtin_patterns() {
            let v = builtin_verification(&p.name).unwrap();
            assert_eq!(p.enabled, v != Verification::Unverified, "{}", p.name);
            assert_eq!(
                v == Verification::Unverified,
                p.note.contains("UNVERIFIED"),
                "{}: the note says so too",
                p.name
            );
        }
        assert_eq!(
            unknown_enable_names(&["ollama".into(), "ollama_idle".into(), "nope".into()]),
            ["nope"]
        );
    }

    #[test]
    fn a_screen_without_a_prompt_yields_no_request() {
        for s in [
            capture!("claude-1-idle"),
            capture!("claude-2-busy"),
            capture!("claude-9-idle-side-panel"),
        ] {
            assert_eq!(permission_request(AgentKind::Claude, s), None);
        }
    }

    #[test]
    fn permission_requests_are_read_from_the_screen() {
        let r =
            permission_request(AgentKind::Claude, capture!("claude-4-permission-bash")).unwrap();
        assert_eq!(r.tool, "Bash");
        assert_eq!(
            r.command.as_deref(),
            Some("echo hi > /tmp/agent-work/x.txt")
        );
        assert!(r.numbered && r.prompt_text.contains("Do you want to proceed?"));
        let r =
            permission_request(AgentKind::Claude, capture!("claude-6-permission-write")).unwrap();
        assert_eq!(
            (r.tool.as_str(), r.path.as_deref()),
            ("Write", Some("hello.txt"))
        );
        let r = permission_request(
            AgentKind::Claude,
            capture!("claude-x-automode-fallback-permission"),
        )
        .unwrap();
        assert!(!r.numbered, "the fallback dialog has no numbers: {r:?}");
        let r = permission_request(AgentKind::Codex, capture!("codex-4-permission-exec")).unwrap();
        assert_eq!(r.tool, "exec");
        assert_eq!(
            r.command.as_deref(),
            Some("echo hi > /tmp/agent-work/x.txt")
        );
        // Wrapped, the command reads as lines (and so as unreadable to the guard).
        let wrapped = capture!("codex-4-permission-exec").replace(
            "$ echo hi > /tmp/agent-work/x.txt",
            "$ cat /home/u/.s\n    sh/id_rsa",
        );
        let r = permission_request(AgentKind::Codex, &wrapped).unwrap();
        assert_eq!(r.command.as_deref(), Some("cat /home/u/.s\nsh/id_rsa"));
    }
}
