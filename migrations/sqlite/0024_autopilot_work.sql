-- Autopilot work (issue 17, second part): the agent a project's runs start, a run's work items
-- (one worktree, branch and agent session each, with their prompts and test tasks), and the
-- gates a person decides (a change request to merge, a production deploy).

ALTER TABLE autopilot_projects ADD COLUMN agent TEXT NOT NULL DEFAULT '{}';  -- JSON AgentSpec
ALTER TABLE autopilot_runs ADD COLUMN agent TEXT NOT NULL DEFAULT '{}';
ALTER TABLE autopilot_runs ADD COLUMN user_id INTEGER;                      -- whose rights the run acts with

CREATE TABLE autopilot_items (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          INTEGER NOT NULL REFERENCES autopilot_runs(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,                 -- 1, 2, ... within the run
    title           TEXT    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT '',
    source          TEXT    NOT NULL,                 -- goal | feature:<id>
    state           TEXT    NOT NULL,                 -- pending | implementing | testing | review | merged | rejected | failed
    session         TEXT,                             -- the agent session working on it
    token_id        INTEGER,                          -- that session's own token (its LLM cost)
    branch          TEXT,
    worktree        TEXT,
    base_commit     TEXT,                             -- the commit the branch started from
    head_commit     TEXT,                             -- the branch's commit proposed for review
    attempts        INTEGER NOT NULL DEFAULT 0,       -- prompts typed for it
    prompt_id       INTEGER,                          -- the latest
    task_id         INTEGER,                          -- the latest test task
    summary         TEXT    NOT NULL DEFAULT '',      -- the agent's last answer
    test_output     TEXT    NOT NULL DEFAULT '',      -- the latest test run's output (tail)
    diff_stat       TEXT    NOT NULL DEFAULT '',
    reason          TEXT    NOT NULL DEFAULT '',
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    UNIQUE (run_id, seq)
);

CREATE TABLE autopilot_gates (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          INTEGER NOT NULL REFERENCES autopilot_runs(id) ON DELETE CASCADE,
    item_id         INTEGER REFERENCES autopilot_items(id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL,                 -- change_request | deploy_production
    state           TEXT    NOT NULL,                 -- pending | approved | rejected
    reason          TEXT    NOT NULL DEFAULT '',
    decided_by      TEXT,
    created_at      TEXT    NOT NULL,
    decided_at      TEXT
);
CREATE INDEX autopilot_gates_state ON autopilot_gates(state, id);
CREATE UNIQUE INDEX autopilot_gates_once ON autopilot_gates(run_id, kind, COALESCE(item_id, 0));
