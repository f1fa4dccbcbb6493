//! The built-in rows of the pattern table, as data (written against real screens; see
//! tests/fixtures/agents/captures/), and which of them are enabled.

use super::*;

use AgentKind as A;
use Signal as S;
use Source as Src;
use Verification as V;

/// The built-in table, in evaluation order. Verified rows cite the capture they were written
/// against; rows marked [`Verification::Unverified`] come from documentation, need a real
/// capture, and are off unless enabled by name.
pub const BUILTIN: &[Row] = &[
    // --- which agent -------------------------------------------------------------------------
    (
        "claude_banner",
        A::Claude,
        S::Detect,
        Src::Screen,
        0,
        r"Claude Code v\d",
        "claude-1-idle",
        V::Real,
    ),
    (
        "claude_footer",
        A::Claude,
        S::Detect,
        Src::Tail,
        3,
        r"(⏸|⏵⏵) \S.* mode on",
        "claude-1/2; mode footer",
        V::Real,
    ),
    (
        "claude_panel",
        A::Claude,
        S::Detect,
        Src::Tail,
        3,
        r"Esc to cancel · Tab to amend",
        "claude-4/6 permission panel",
        V::Real,
    ),
    (
        "claude_dialog",
        A::Claude,
        S::Detect,
        Src::Screen,
        0,
        r"Make auto mode your default permission mode|Enter to stay in auto mode",
        "claude-x dialogs",
        V::Real,
    ),
    (
        "codex_placeholder",
        A::Codex,
        S::Detect,
        Src::Tail,
        6,
        r"(?m)^› Ask Codex to do anything",
        "codex-1-idle",
        V::Real,
    ),
    (
        "codex_footer",
        A::Codex,
        S::Detect,
        Src::Tail,
        3,
        r"← for agents · \? for shortcuts",
        "codex-1..7",
        V::Real,
    ),
    (
        "codex_approval",
        A::Codex,
        S::Detect,
        Src::Tail,
        3,
        r"Press enter to confirm or esc to cancel",
        "codex-4",
        V::Real,
    ),
    (
        "codex_title",
        A::Codex,
        S::Detect,
        Src::Title,
        0,
        r"^\[ ! \] Action Required",
        "README: approval title",
        V::Real,
    ),
    (
        "codex_command",
        A::Codex,
        S::Detect,
        Src::Command,
        0,
        r"^codex",
        "process name",
        V::Real,
    ),
    (
        "claude_command",
        A::Claude,
        S::Detect,
        Src::Command,
        0,
        r"^claude",
        "process name",
        V::Real,
    ),
    (
        "gemini_footer",
        A::Gemini,
        S::Detect,
        Src::Tail,
        6,
        r"(?m)^ workspace \(/directory\) +sandbox +/model",
        "gemini-1..4, 6..8: footer header (80 and 120 columns)",
        V::Real,
    ),
    (
        "gemini_panel",
        A::Gemini,
        S::Detect,
        Src::Tail,
        10,
        r"│ ● 1\. Allow once",
        "gemini-5 permission panel",
        V::Real,
    ),
    (
        "gemini_banner",
        A::Gemini,
        S::Detect,
        Src::Screen,
        0,
        r"Gemini CLI v\d",
        "gemini-1 banner (scrolls away: not on the alternate screen)",
        V::Real,
    ),
    (
        "gemini_title",
        A::Gemini,
        S::Detect,
        Src::Title,
        0,
        r"^(◇  Ready|✋  Action Required|⏲  Working…|Gemini CLI) \(",
        "gemini 0.61.0 dynamic pane titles (observed: Ready, Action Required)",
        V::Real,
    ),
    (
        "gemini_command",
        A::Gemini,
        S::Detect,
        Src::Command,
        0,
        r"^gemini",
        "a binary named gemini; the npm CLI shows up as `node` (observed)",
        V::Real,
    ),
    (
        "ollama_prompt",
        A::Ollama,
        S::Detect,
        Src::Tail,
        3,
        r"Send a message \(/\? for help\)",
        "UNVERIFIED: ollama run placeholder",
        V::Unverified,
    ),
    (
        "ollama_command",
        A::Ollama,
        S::Detect,
        Src::Command,
        0,
        r"^ollama$",
        "UNVERIFIED: process name",
        V::Unverified,
    ),
    // `architect chat --worker` (src/cli/chat.rs): marker lines `ARCHITECT-CHAT READY|BUSY|DONE|
    // ERROR session=NAME ...` and the pane title `architect-chat NAME: idle|busy`.
    (
        "architect_chat_banner",
        A::ArchitectChat,
        S::Detect,
        Src::Title,
        0,
        r"^architect-chat \S+: (idle|busy)$",
        "cli/chat.rs pane title",
        V::OwnCode,
    ),
    (
        "architect_chat_marker",
        A::ArchitectChat,
        S::Detect,
        Src::Screen,
        0,
        r"(?m)^ARCHITECT-CHAT (READY|BUSY|DONE|ERROR) session=",
        "cli/chat.rs MARKER_*",
        V::OwnCode,
    ),
    (
        "shell_command",
        A::Shell,
        S::Detect,
        Src::Command,
        0,
        r"^-?(bash|zsh|sh|fish|dash|ksh)$",
        "a shell in the foreground",
        V::OwnCode,
    ),
    // --- Claude Code 2.1.332, manual mode ----------------------------------------------------
    (
        "claude_busy",
        A::Claude,
        S::Busy,
        Src::Tail,
        2,
        r"esc to interrupt",
        "claude-2-busy footer",
        V::Real,
    ),
    (
        "claude_permission",
        A::Claude,
        S::WaitingForPermission,
        Src::Tail,
        12,
        r"Do you want to (proceed|create|make|overwrite)[^\n]*\?[\s\S]*(❯ 1\. Yes|❯ No|❯ Yes)",
        "claude-4, claude-6, claude-9-permission-overwrite-side-panel, claude-x-automode-fallback",
        V::Real,
    ),
    (
        "claude_auto_mode_dialog",
        A::Claude,
        S::Unknown,
        Src::Tail,
        3,
        r"Enter to stay in auto mode",
        "claude-x-automode-classifier-unreachable: needs a person",
        V::Real,
    ),
    (
        "claude_default_mode_dialog",
        A::Claude,
        S::Unknown,
        Src::Tail,
        4,
        r"Make auto mode your default|No, keep manual mode",
        "claude-x-dialog-make-auto-mode-default: needs a person",
        V::Real,
    ),
    (
        "claude_idle",
        A::Claude,
        S::Idle,
        Src::Tail,
        2,
        r"(⏸|⏵⏵) \S.* mode on|\? for shortcuts|paste again to expand",
        "claude-1/3/5/7/8 footer without esc to interrupt; claude-10 after a paste",
        V::Real,
    ),
    (
        "claude_input_empty",
        A::Claude,
        S::InputEmpty,
        Src::Tail,
        4,
        "(?m)^❯\u{a0}\\s*$",
        "empty input is ❯ + NBSP",
        V::Real,
    ),
    (
        "claude_input_text",
        A::Claude,
        S::InputText,
        Src::Tail,
        4,
        "(?m)^❯[\u{a0} ]*\\S",
        "text after the input ❯",
        V::Real,
    ),
    // --- Codex 0.169.0 -----------------------------------------------------------------------
    (
        "codex_permission",
        A::Codex,
        S::WaitingForPermission,
        Src::Tail,
        16,
        r"Would you like to (run the following command|make the following edits)\?[\s\S]*Press enter to confirm or esc to cancel",
        "codex-4-permission-exec",
        V::Real,
    ),
    (
        "codex_permission_title",
        A::Codex,
        S::WaitingForPermission,
        Src::Title,
        0,
        r"^\[ ! \] Action Required",
        "README: approval pane title",
        V::Real,
    ),
    (
        "codex_busy",
        A::Codex,
        S::Busy,
        Src::Tail,
        8,
        r"Working \([^)]*esc to interrupt\)",
        "codex-2-busy",
        V::Real,
    ),
    (
        "codex_busy_title",
        A::Codex,
        S::Busy,
        Src::Title,
        0,
        r"^[\x{2801}-\x{28FF}] ",
        "README: braille spinner title while busy",
        V::Real,
    ),
    (
        "codex_idle",
        A::Codex,
        S::Idle,
        Src::Tail,
        2,
        r"\? for shortcuts",
        "codex-1/3/5/6/7 footer",
        V::Real,
    ),
    (
        "codex_input_empty",
        A::Codex,
        S::InputEmpty,
        Src::Tail,
        5,
        r"(?m)^› (Ask Codex to do anything|Explain this codebase|Summarize recent commits|Find and fix a bug in @filename|Write tests for @filename|Improve documentation in @filename|Implement \{feature\})\s*$",
        "codex placeholders (input empty)",
        V::Real,
    ),
    (
        "codex_input_text",
        A::Codex,
        S::InputText,
        Src::Tail,
        5,
        r"(?m)^› \S",
        "text after the input ›",
        V::Real,
    ),
    // --- Gemini CLI 0.61.0 (not on the alternate screen; the input box stays drawn while busy) -
    (
        "gemini_permission",
        A::Gemini,
        S::WaitingForPermission,
        Src::Tail,
        14,
        r"(Allow execution of [^\n]*|Apply this change)\?[\s\S]*1\. Allow once",
        "gemini-5-permission-shell (\"Apply this change?\" is the edit prompt, from the source)",
        V::Real,
    ),
    (
        "gemini_permission_title",
        A::Gemini,
        S::WaitingForPermission,
        Src::Title,
        0,
        r"^✋  Action Required",
        "pane title while the panel is up (observed)",
        V::Real,
    ),
    (
        "gemini_busy",
        A::Gemini,
        S::Busy,
        Src::Tail,
        8,
        r"\(esc to cancel, \d",
        "gemini-3-busy spinner line `⠹ Thinking... (esc to cancel, 1s)`",
        V::Real,
    ),
    (
        "gemini_busy_title",
        A::Gemini,
        S::Busy,
        Src::Title,
        0,
        r"^(✦|⏲)  ",
        "pane title while a turn runs (observed `✦  Working… (dir)`)",
        V::Real,
    ),
    (
        "gemini_idle",
        A::Gemini,
        S::Idle,
        Src::Tail,
        4,
        r"(?m)^ > .*\n( .*\n)? workspace \(/directory\)",
        "gemini-1/2/4/6/7/8: input line over the footer, no spinner, no panel",
        V::Real,
    ),
    (
        "gemini_input_empty",
        A::Gemini,
        S::InputEmpty,
        Src::Tail,
        4,
        r"(?m)^ >   Type your message or @path/to/file$",
        "gemini-1 placeholder",
        V::Real,
    ),
    (
        "gemini_input_text",
        A::Gemini,
        S::InputText,
        Src::Tail,
        4,
        r"(?m)^ > \S",
        "gemini-2-idle-typed",
        V::Real,
    ),
    // --- ollama run (UNVERIFIED) --------------------------------------------------------------
    (
        "ollama_idle",
        A::Ollama,
        S::Idle,
        Src::Tail,
        1,
        r"^>>> ",
        "UNVERIFIED",
        V::Unverified,
    ),
    (
        "ollama_input_empty",
        A::Ollama,
        S::InputEmpty,
        Src::Tail,
        1,
        r"^>>> Send a message",
        "UNVERIFIED",
        V::Unverified,
    ),
    (
        "ollama_input_text",
        A::Ollama,
        S::InputText,
        Src::Tail,
        1,
        r"^>>> \S",
        "UNVERIFIED",
        V::Unverified,
    ),
    // --- architect chat --worker (src/cli/chat.rs; tested in tests/integration/llm/chat.rs) ----
    (
        "architect_chat_busy",
        A::ArchitectChat,
        S::Busy,
        Src::Title,
        0,
        r"^architect-chat \S+: busy$",
        "cli/chat.rs pane title while a turn runs",
        V::OwnCode,
    ),
    (
        "architect_chat_idle",
        A::ArchitectChat,
        S::Idle,
        Src::Tail,
        2,
        r"(?m)^ARCHITECT-CHAT READY session=\S+.*\n(chat>.*)$",
        "cli/chat.rs MARKER_READY followed by the chat> prompt",
        V::OwnCode,
    ),
    (
        "architect_chat_input_empty",
        A::ArchitectChat,
        S::InputEmpty,
        Src::Tail,
        1,
        r"^chat>$",
        "cli/chat.rs prompt (capture-pane trims its trailing space)",
        V::OwnCode,
    ),
    (
        "architect_chat_input_text",
        A::ArchitectChat,
        S::InputText,
        Src::Tail,
        1,
        r"^chat> \S",
        "cli/chat.rs prompt with typed text",
        V::OwnCode,
    ),
    // --- a plain shell: idle whenever it is the foreground process ----------------------------
    (
        "shell_idle",
        A::Shell,
        S::Idle,
        Src::Command,
        0,
        r".",
        "the shell itself is in the foreground",
        V::OwnCode,
    ),
    (
        "shell_input_empty",
        A::Shell,
        S::InputEmpty,
        Src::Tail,
        1,
        r"[$#%>❯] ?$",
        "the last line ends in a prompt",
        V::OwnCode,
    ),
    (
        "shell_input_text",
        A::Shell,
        S::InputText,
        Src::Tail,
        1,
        r"[$#%>❯] \S",
        "text after the prompt",
        V::OwnCode,
    ),
];

/// Whether built-in row `name` (of `agent`) is on: verified rows always, unverified ones only
/// when `enable` names the row or its agent (`--classifier-enable ollama`).
fn builtin_enabled(row: &Row, enable: &[String]) -> bool {
    row.7 != Verification::Unverified || enable.iter().any(|n| n == row.0 || n == row.1.as_str())
}

/// The built-in rows as values, on or off as with no `--classifier-enable`.
pub fn builtin_patterns() -> Vec<PanePattern> {
    builtin_patterns_enabling(&[])
}

/// The built-in rows as values; unverified rows are on when `enable` names them or their agent.
pub fn builtin_patterns_enabling(enable: &[String]) -> Vec<PanePattern> {
    BUILTIN
        .iter()
        .map(|row| {
            let &(name, agent, signal, source, tail_lines, regex, note, _) = row;
            PanePattern {
                id: None,
                name: name.into(),
                agent,
                signal,
                source,
                tail_lines,
                regex: regex.into(),
                enabled: builtin_enabled(row, enable),
                note: note.into(),
            }
        })
        .collect()
}

/// The verification status of built-in row `name`.
pub fn builtin_verification(name: &str) -> Option<Verification> {
    BUILTIN.iter().find(|r| r.0 == name).map(|r| r.7)
}

/// Names in `enable` that are neither a built-in row nor an agent with rows.
pub fn unknown_enable_names(enable: &[String]) -> Vec<String> {
    enable
        .iter()
        .filter(|n| {
            !BUILTIN
                .iter()
                .any(|r| r.0 == n.as_str() || r.1.as_str() == n.as_str())
        })
        .cloned()
        .collect()
}
