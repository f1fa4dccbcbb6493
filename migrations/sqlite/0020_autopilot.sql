-- Autopilot (issue 17): a project's autopilot setting (mode, goal, constraints, its own pause
-- switch), the global kill switch, runs as a durable state machine with every transition kept
-- with its reason, and each run's steps keyed by (run, step) so a restarted run never repeats a
-- side effect it already made.

CREATE TABLE autopilot_projects (
    project_id      INTEGER PRIMARY KEY REFERENCES projects(id),
    mode            TEXT    NOT NULL,                 -- off | observe | fix_forward | auto_staging | auto_prod
    goal            TEXT    NOT NULL DEFAULT '',
    constraints     TEXT    NOT NULL DEFAULT '{}',    -- JSON (src/autopilot/mod.rs Constraints)
    paused          INTEGER NOT NULL DEFAULT 0,
    updated_by      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- One row: the kill switch for every project.
CREATE TABLE autopilot_switch (
    id              INTEGER PRIMARY KEY,
    paused          INTEGER NOT NULL DEFAULT 0,
    updated_by      TEXT,
    updated_at      TEXT
);
INSERT INTO autopilot_switch (id, paused) VALUES (1, 0);

CREATE TABLE autopilot_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    mode            TEXT    NOT NULL,
    goal            TEXT    NOT NULL,
    constraints     TEXT    NOT NULL,
    state           TEXT    NOT NULL,                 -- planning | implementing | ... | done (see RunState)
    reason          TEXT    NOT NULL DEFAULT '',      -- why it is in its state
    resume_to       TEXT,                             -- the state a paused or blocked run goes back to
    started_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    finished_at     TEXT
);
CREATE INDEX autopilot_runs_state ON autopilot_runs(state, id);
CREATE INDEX autopilot_runs_project ON autopilot_runs(project_id, id);

CREATE TABLE autopilot_transitions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          INTEGER NOT NULL REFERENCES autopilot_runs(id) ON DELETE CASCADE,
    from_state      TEXT,
    to_state        TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    at              TEXT    NOT NULL
);
CREATE INDEX autopilot_transitions_run ON autopilot_transitions(run_id, id);

CREATE TABLE autopilot_steps (
    run_id          INTEGER NOT NULL REFERENCES autopilot_runs(id) ON DELETE CASCADE,
    step_key        TEXT    NOT NULL,                 -- e.g. planning:scan
    result          TEXT    NOT NULL DEFAULT '{}',    -- JSON: what the step made
    done_at         TEXT    NOT NULL,
    PRIMARY KEY (run_id, step_key)
);
