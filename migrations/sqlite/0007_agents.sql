-- Agent sessions (issue 5): tmux sessions architect tracks, their state changes and the signal
-- that decided each, user rows of the pane-classifier table, the assigner's durable prompt
-- queue, permission interactions, permission patterns and their audit. Times are fixed-width
-- RFC 3339 UTC text (src/clock.rs); enums are text checked in Rust (src/agents/).

CREATE TABLE agent_sessions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    node            TEXT    NOT NULL,                 -- 'local' or a node name
    name            TEXT    NOT NULL,                 -- tmux session name
    agent           TEXT,                             -- AgentKind when known (launched or detected)
    launched        INTEGER NOT NULL DEFAULT 0,       -- 1: started by `architect session start`
    role            TEXT,                             -- high_level | manager | worker
    groups          TEXT    NOT NULL DEFAULT '[]',    -- JSON array of group names
    manager         TEXT,                             -- session that owns this one (escalation)
    cwd             TEXT,
    branch          TEXT,
    state           TEXT    NOT NULL DEFAULT 'unknown',  -- PaneState
    input           TEXT    NOT NULL DEFAULT 'unknown',  -- InputLine
    state_by        TEXT,                             -- signal of the last change: pane:<row> | hook:<event>
    state_changed_at TEXT,
    last_busy_at    TEXT,
    last_seen_at    TEXT,                             -- last time tmux listed it
    gone_at         TEXT,                             -- set when tmux no longer lists it
    transcript_path TEXT,                             -- from Claude Code hooks
    hook_token_id   INTEGER,                          -- the session's agent token (revoked when it ends)
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE UNIQUE INDEX agent_sessions_node_name ON agent_sessions(node, name);

-- Every state change of a session, with the signal that decided it.
CREATE TABLE agent_state_changes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      INTEGER NOT NULL REFERENCES agent_sessions(id) ON DELETE CASCADE,
    from_state      TEXT    NOT NULL,
    to_state        TEXT    NOT NULL,
    signal          TEXT    NOT NULL,
    at              TEXT    NOT NULL
);
CREATE INDEX agent_state_changes_session ON agent_state_changes(session_id, id);

-- User rows of the pane classifier, evaluated (by position, then id) before the built-in rows.
CREATE TABLE pane_patterns (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    agent           TEXT    NOT NULL,
    signal          TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    tail_lines      INTEGER NOT NULL DEFAULT 5,
    regex           TEXT    NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    note            TEXT    NOT NULL DEFAULT '',
    position        INTEGER NOT NULL DEFAULT 0,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- The assigner's queue. A prompt moves pending -> assigned -> in_progress -> completed, or to
-- failed / cancelled (see PromptStatus::next in src/agents/assigner/mod.rs).
CREATE TABLE assigner_prompts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    content         TEXT    NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,       -- 0..10, higher first, then oldest
    status          TEXT    NOT NULL,
    target_session  TEXT,                             -- a session name, or NULL
    target_role     TEXT,
    target_group    TEXT,
    node            TEXT    NOT NULL DEFAULT 'local',
    timeout_minutes INTEGER NOT NULL,
    max_retries     INTEGER NOT NULL,
    retries         INTEGER NOT NULL DEFAULT 0,
    metadata        TEXT    NOT NULL DEFAULT '{}',    -- JSON object (cwd, branch, env, project, ...)
    parent_id       INTEGER REFERENCES assigner_prompts(id),
    assigned_session TEXT,
    -- The dispatch protocol: `dispatch_token` is set in the same UPDATE that moves the prompt to
    -- `assigned`, before any key is typed; `typed_at` is set once the text was typed. A restart
    -- that finds an assigned prompt with no typed_at re-checks the pane instead of typing again.
    dispatch_token  TEXT,
    assigned_at     TEXT,
    typed_at        TEXT,
    started_at      TEXT,                             -- acceptance confirmed (busy or hook)
    accepted_by     TEXT,                             -- pane:<row> | hook:<event>
    completed_at    TEXT,
    completed_by    TEXT,
    response        TEXT,                             -- final pane text
    transcript_path TEXT,
    error           TEXT,
    escalated_to    TEXT,                             -- manager session, or 'dashboard'
    escalated_at    TEXT,
    source_kind     TEXT,                             -- feature | bug | error (assign-to-tmux)
    source_id       INTEGER,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX assigner_prompts_queue ON assigner_prompts(status, priority DESC, id);
CREATE INDEX assigner_prompts_session ON assigner_prompts(assigned_session, status);
CREATE INDEX assigner_prompts_parent ON assigner_prompts(parent_id);

-- A permission prompt seen in a session (from the pane or a pre-tool-use hook).
CREATE TABLE agent_interactions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    node            TEXT    NOT NULL DEFAULT 'local',
    session         TEXT    NOT NULL,
    agent           TEXT    NOT NULL,
    tool            TEXT    NOT NULL,
    command         TEXT,
    path            TEXT,
    prompt_text     TEXT    NOT NULL,
    source          TEXT    NOT NULL,                 -- pane | hook
    status          TEXT    NOT NULL,                 -- pending | approved | denied | gone
    decision_by     TEXT,                             -- pattern:<id> | user:<name> | guard
    created_at      TEXT    NOT NULL,
    decided_at      TEXT
);
CREATE INDEX agent_interactions_status ON agent_interactions(status, id);
CREATE INDEX agent_interactions_session ON agent_interactions(session, status);

-- Auto-approval / denial rules.
CREATE TABLE permission_patterns (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    tool_regex      TEXT    NOT NULL,
    subject_regex   TEXT    NOT NULL DEFAULT '',      -- on the command or path ('' = any)
    session_scope   TEXT,                             -- session name, or NULL for any
    role_scope      TEXT,                             -- role, or NULL for any
    decision        TEXT    NOT NULL,                 -- approve | deny
    enabled         INTEGER NOT NULL DEFAULT 1,
    override_guard  INTEGER NOT NULL DEFAULT 0,       -- may approve what the never-list blocks
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- Every permission decision, automatic, manual or dry-run.
CREATE TABLE permission_audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    interaction_id  INTEGER REFERENCES agent_interactions(id) ON DELETE SET NULL,
    session         TEXT    NOT NULL,
    tool            TEXT    NOT NULL,
    subject         TEXT,
    decision        TEXT    NOT NULL,                 -- approve | deny | ask (no rule applied)
    decided_by      TEXT    NOT NULL,                 -- pattern:<id> | guard:<rule> | user:<name> | none
    dry_run         INTEGER NOT NULL DEFAULT 0,
    reason          TEXT    NOT NULL,
    at              TEXT    NOT NULL
);
CREATE INDEX permission_audit_at ON permission_audit(id);

-- Routing rules: a prompt sent without a target goes to the role or group of the first enabled
-- rule (by position, then id) whose regex matches its content and whose task type (if any)
-- equals its metadata.task_type.
CREATE TABLE routing_rules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    content_regex   TEXT    NOT NULL DEFAULT '',
    task_type       TEXT,
    target_role     TEXT,
    target_group    TEXT,
    position        INTEGER NOT NULL DEFAULT 0,
    enabled         INTEGER NOT NULL DEFAULT 1,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL
);
