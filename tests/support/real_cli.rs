//! The real agent CLIs in tests: `RealCli::start("claude" | "codex" | "gemini")` gives the
//! pinned CLI (installed by `.ci/run` into `.agent-clis/`), a private tmux server, a scripted
//! mock of the LLM APIs (`tests/fixtures/mock_llm.py`, see /work/shared/agents/README.md) and a
//! fresh HOME whose config makes the CLI start straight at its input prompt in `work`, offline.
//! A test then starts it through architect either straight against the mock
//! ([`RealCli::direct_launcher`], with `no_gateway`) or through the gateway
//! ([`RealCli::session_env`], the server built on [`RealCli::mock`]).

use super::{prerequisite, until};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A tmux server of its own (`tmux -L <socket>`), killed on drop.
pub struct PrivateTmux {
    pub socket: String,
}

impl Default for PrivateTmux {
    fn default() -> Self {
        PrivateTmux::new()
    }
}

impl PrivateTmux {
    pub fn new() -> PrivateTmux {
        PrivateTmux {
            socket: format!("arch-test-{:x}", rand::random::<u64>()),
        }
    }

    /// Runs a tmux command on this server (for test set-up and checks).
    pub fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts idle sessions (`sleep`) with these names: live targets a prompt may name
    /// (docs/decisions/0006 refuses prompts for sessions that are not there).
    pub fn idle_sessions(&self, names: &[&str]) {
        for name in names {
            self.run(&["new-session", "-d", "-s", name, "sleep 3600"]);
        }
    }
}

impl Drop for PrivateTmux {
    fn drop(&mut self) {
        architect::tmux::Tmux::new(Some(&self.socket)).kill_server_blocking();
    }
}

/// `tests/fixtures/mock_llm.py` on a free port, writing its request log in `dir`; killed on
/// drop.
pub struct MockLlm {
    child: std::process::Child,
    pub port: u16,
    /// Every request as a JSON line.
    pub log: PathBuf,
}

impl MockLlm {
    /// Its tool calls write in `workdir`; `env` adds settings (`MOCK_BASH_CMD`, ...).
    pub async fn start(dir: &Path, workdir: &Path, env: &[(&str, &str)]) -> MockLlm {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("requests.jsonl");
        let child = std::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mock_llm.py"))
            .arg(port.to_string())
            .arg(&log)
            .env("MOCK_WORKDIR", workdir)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        until("the mock LLM to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        MockLlm { child, port, log }
    }

    /// The request log so far.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes an executable script.
pub fn write_exec(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Sends SIGTERM to the process group whose leader's pid the file holds, when dropped.
struct KillGroup(PathBuf);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", pid.trim())])
                .status();
        }
    }
}

/// Which CLI, at the version its config and the classifier were checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliKind {
    /// Claude Code 2.1.332.
    Claude,
    /// Codex 0.169.0.
    Codex,
    /// Gemini CLI 0.61.0.
    Gemini,
}

/// One real agent CLI, ready to start (module docs). Dropped in field order: the tmux server
/// (and the CLIs in it) first, then the mock, then the files.
pub struct RealCli {
    pub kind: CliKind,
    /// The CLI's executable.
    pub bin: PathBuf,
    pub tmux: PrivateTmux,
    /// Gemini survives the SIGHUP of kill-server: its launcher's process group is killed.
    _group: Option<KillGroup>,
    pub mock: MockLlm,
    /// HOME, with the CLI's config.
    pub home: PathBuf,
    /// The CLI's cwd, trusted in its config; the mock's tool calls write here.
    pub work: PathBuf,
    /// Holds `home`, `work`, the launchers and the mock's log.
    pub dir: tempfile::TempDir,
}

impl RealCli {
    /// The CLI `name` (`claude`, `codex`, `gemini`), or `None` when it or python3 is missing
    /// and the test may skip (see [`prerequisite`]).
    pub async fn start(name: &str) -> Option<RealCli> {
        RealCli::start_with(name, &[]).await
    }

    /// With extra environment for the mock (`MOCK_BASH_CMD`, ...).
    pub async fn start_with(name: &str, mock_env: &[(&str, &str)]) -> Option<RealCli> {
        let kind = match name {
            "claude" => CliKind::Claude,
            "codex" => CliKind::Codex,
            "gemini" => CliKind::Gemini,
            other => panic!("no real CLI called {other}"),
        };
        let bin = real_cli(name)?;
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let home = dir.path().join("home");
        let mock = MockLlm::start(dir.path(), &work, mock_env).await;
        let cli = RealCli {
            kind,
            bin,
            tmux: PrivateTmux::new(),
            _group: (kind == CliKind::Gemini).then(|| KillGroup(dir.path().join("cli.pid"))),
            mock,
            home,
            work,
            dir,
        };
        cli.write_home(&cli.home, &cli.work, false);
        Some(cli)
    }

    /// Claude Code: approves `key` instead of `sk-test` as its API key (for a run whose key is
    /// an architect token, e.g. `claude -p` straight at the gateway).
    pub fn approve_api_key(&self, key: &str) {
        assert_eq!(
            self.kind,
            CliKind::Claude,
            "only Claude Code asks about API keys"
        );
        claude_state(&self.home, &self.work_s(), key);
    }

    /// The mock's base URL.
    pub fn mock_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.mock.port)
    }

    /// `work` as text (a session's `cwd`).
    pub fn work_s(&self) -> String {
        self.work.display().to_string()
    }

    /// The environment `session start` gives the CLI when it goes through the gateway: this
    /// HOME and what the CLI needs offline.
    pub fn session_env(&self) -> Value {
        let home = self.home.display().to_string();
        match self.kind {
            CliKind::Claude => json!({"HOME": home, "DISABLE_TELEMETRY": "1",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
                "DISABLE_ERROR_REPORTING": "1", "TERM": "xterm-256color",
                "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1"}),
            CliKind::Codex => json!({"HOME": home,
                "CODEX_HOME": self.home.join(".codex").display().to_string(),
                "TERM": "xterm-256color"}),
            CliKind::Gemini => json!({"HOME": home, "TERM": "xterm-256color"}),
        }
    }

    /// A script that runs the CLI in this HOME straight against the mock (its own provider
    /// settings, no gateway): a session's `program` with `no_gateway`.
    pub fn direct_launcher(&self) -> PathBuf {
        self.launcher_for("cli", &self.home, &self.work)
    }

    /// Another HOME and cwd for one more session of this CLI on the same mock: `(launcher,
    /// work)`, both named after `label`.
    pub fn another_seat(&self, label: &str) -> (PathBuf, PathBuf) {
        let home = self.dir.path().join(format!("home-{label}"));
        let work = self.dir.path().join(format!("work-{label}"));
        std::fs::create_dir_all(&work).unwrap();
        (self.launcher_for(label, &home, &work), work)
    }

    fn launcher_for(&self, label: &str, home: &Path, work: &Path) -> PathBuf {
        self.write_home(home, work, true);
        let launcher = self.dir.path().join(format!("run-{label}.sh"));
        let (h, port, bin) = (home.display(), self.mock.port, self.bin.display());
        let body = match self.kind {
            CliKind::Claude => format!(
                "#!/bin/bash\nexport HOME='{h}'\nexport ANTHROPIC_BASE_URL=http://127.0.0.1:{port}\nexport ANTHROPIC_API_KEY=sk-test\nexport DISABLE_TELEMETRY=1\nexport CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\nexport DISABLE_AUTOUPDATER=1\nexport DISABLE_ERROR_REPORTING=1\nexport CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL=1\nexport TERM=xterm-256color\nexec '{bin}' \"$@\"\n"
            ),
            CliKind::Codex => format!(
                "#!/bin/bash\nexport HOME='{h}'\nexport CODEX_HOME='{h}/.codex'\nexport OPENAI_API_KEY=sk-test\nexport TERM=xterm-256color\nexec '{bin}' \"$@\"\n"
            ),
            // CI=true (or GITHUB_ACTIONS=true) makes Gemini CLI headless: it would exit at
            // once. Gemini survives the SIGHUP of kill-session / kill-server (it and the node
            // child it re-launches itself as): the launcher notes its pid, the pane's process
            // group, for the guard that kills it.
            CliKind::Gemini => format!(
                "#!/bin/bash\nunset CI GITHUB_ACTIONS\necho $$ > '{}'\nexport HOME='{h}'\nexport GEMINI_API_KEY=sk-test\nexport GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:{port}\nexport TERM=xterm-256color\ncd '{}'\nexec '{bin}' \"$@\"\n",
                self.dir.path().join("cli.pid").display(),
                work.display()
            ),
        };
        write_exec(&launcher, &body);
        launcher
    }

    /// The CLI's config in `home`, trusting `work`: the README recipes. `direct`: Codex's
    /// model provider is the mock (through the gateway, `session start` sets it).
    fn write_home(&self, home: &Path, work: &Path, direct: bool) {
        let work_s = work.display().to_string();
        match self.kind {
            CliKind::Claude => {
                std::fs::create_dir_all(home.join(".claude")).unwrap();
                claude_state(home, &work_s, "sk-test");
                std::fs::write(
                    home.join(".claude/settings.json"),
                    json!({"permissions": {"defaultMode": "default"},
                           "env": {"DISABLE_AUTOUPDATER": "1"}})
                    .to_string(),
                )
                .unwrap();
            }
            CliKind::Codex => {
                std::fs::create_dir_all(home.join(".codex")).unwrap();
                let provider = if direct {
                    "model_provider = \"mock\"\n".to_string()
                } else {
                    String::new()
                };
                let providers = if direct {
                    format!(
                        "[model_providers.mock]\nname = \"Mock\"\nbase_url = \"http://127.0.0.1:{}/v1\"\nenv_key = \"OPENAI_API_KEY\"\nwire_api = \"responses\"\nrequest_max_retries = 0\nstream_max_retries = 0\n\n",
                        self.mock.port
                    )
                } else {
                    String::new()
                };
                std::fs::write(
                    home.join(".codex/config.toml"),
                    format!(
                        "model = \"gpt-5-codex\"\n{provider}approval_policy = \"on-request\"\nsandbox_mode = \"workspace-write\"\ncheck_for_update_on_startup = false\n\n{providers}[projects.\"{work_s}\"]\ntrust_level = \"trusted\"\n\n[notice]\nhide_full_access_warning = true\n\n[analytics]\nenabled = false\n"
                    ),
                )
                .unwrap();
            }
            CliKind::Gemini => {
                std::fs::create_dir_all(home.join(".gemini")).unwrap();
                std::fs::write(
                    home.join(".gemini/settings.json"),
                    json!({"general": {"enableAutoUpdate": false,
                                       "enableAutoUpdateNotification": false},
                           "privacy": {"usageStatisticsEnabled": false},
                           "telemetry": {"enabled": false},
                           "security": {"auth": {"selectedType": "gemini-api-key"},
                                        "folderTrust": {"enabled": false}},
                           "model": {"name": "gemini-2.5-flash"}})
                    .to_string(),
                )
                .unwrap();
            }
        }
    }
}

/// Claude Code's `~/.claude.json`: onboarding done, `work` trusted, the API key `key` approved
/// (Claude keeps the last 20 characters of an approved key).
fn claude_state(home: &Path, work: &str, key: &str) {
    let tail: String = {
        let key = key.trim();
        let skip = key.chars().count().saturating_sub(20);
        key.chars().skip(skip).collect()
    };
    std::fs::write(
        home.join(".claude.json"),
        json!({"hasCompletedOnboarding": true, "lastOnboardingVersion": "2.1.332",
               "lastReleaseNotesSeen": "2.1.332", "hasSeenAutoDefaultNotice": true,
               "hasSeenAutoDefaultNudge": true, "theme": "dark", "autoUpdates": false,
               "customApiKeyResponses": {"approved": [tail], "rejected": []},
               "projects": {work: {"hasTrustDialogAccepted": true,
                   "hasCompletedProjectOnboarding": true, "allowedTools": []}}})
        .to_string(),
    )
    .unwrap();
}

/// The pinned CLI `name` in `.agent-clis/`, python3 and the mock; when something is missing: a
/// failure under CI, a printed skip otherwise ([`prerequisite`]).
pub fn real_cli(name: &str) -> Option<PathBuf> {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".agent-clis/node_modules/.bin")
        .join(name);
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok();
    let ok = prerequisite(
        bin.exists(),
        &format!("the real {name} CLI ({})", bin.display()),
        "npm install --prefix .agent-clis @anthropic-ai/claude-code@2.1.332 \
         @openai/codex@0.169.0 @google/gemini-cli@0.61.0",
    ) && prerequisite(
        python,
        "python3 (mock_llm.py needs it)",
        "apt-get install python3",
    );
    ok.then_some(bin)
}
