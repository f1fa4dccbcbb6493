//! Settings of this domain: flattened into `architect serve` (`ServeConfig`).

use clap::Args;

/// Default for `--dispatch-interval-ms`; see the field.
pub const DEFAULT_DISPATCH_INTERVAL_MS: u64 = 250;
/// Default prompt timeout (SPEC.md: 30 minutes).
pub const DEFAULT_PROMPT_TIMEOUT_MINUTES: i64 = 30;
/// Default retries of a failed prompt (SPEC.md: max_retries 3).
pub const DEFAULT_PROMPT_MAX_RETRIES: i64 = 3;

#[derive(Args, Clone, Debug)]
pub struct AgentsConfig {
    /// tmux server to manage: a `tmux -L` socket name. Empty: the user's default server.
    #[arg(long, env = "ARCHITECT_TMUX_SOCKET")]
    pub tmux_socket: Option<String>,

    /// Run the assigner's dispatcher inside serve (it only touches tmux while prompts are
    /// queued or running).
    #[arg(long, env = "ARCHITECT_ASSIGNER", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub assigner: bool,

    /// How often the dispatcher looks at queued prompts and their sessions (ms). Queued
    /// prompts also wake it at once; this bounds how late a session turning idle is noticed.
    #[arg(long, env = "ARCHITECT_DISPATCH_INTERVAL_MS", default_value_t = DEFAULT_DISPATCH_INTERVAL_MS)]
    pub dispatch_interval_ms: u64,

    /// Default timeout of a prompt, in minutes, when the sender gives none.
    #[arg(long, env = "ARCHITECT_PROMPT_TIMEOUT_MINUTES", default_value_t = DEFAULT_PROMPT_TIMEOUT_MINUTES)]
    pub prompt_timeout_minutes: i64,

    /// Default retries of a failed prompt.
    #[arg(long, env = "ARCHITECT_PROMPT_MAX_RETRIES", default_value_t = DEFAULT_PROMPT_MAX_RETRIES)]
    pub prompt_max_retries: i64,

    /// Built-in classifier rows not verified against the real program (`ollama`'s) to turn on,
    /// by agent or row name, comma-separated. Unverified rows are off otherwise: a screen no
    /// verified row knows is `unknown`, never guessed.
    #[arg(long, env = "ARCHITECT_CLASSIFIER_ENABLE", value_delimiter = ',')]
    pub classifier_enable: Vec<String>,
}

impl Default for AgentsConfig {
    /// The same values as clap's defaults.
    fn default() -> Self {
        AgentsConfig {
            tmux_socket: None,
            assigner: true,
            dispatch_interval_ms: DEFAULT_DISPATCH_INTERVAL_MS,
            prompt_timeout_minutes: DEFAULT_PROMPT_TIMEOUT_MINUTES,
            prompt_max_retries: DEFAULT_PROMPT_MAX_RETRIES,
            classifier_enable: Vec::new(),
        }
    }
}
