-- Issue 19 items 4 and 5: test suites stored per project, their runs and per-case results.
--
-- `test_suites.content` is the suite file as uploaded or read from the project's
-- `test_suites/` folder (`source` = 'upload' | 'folder'; `path` is the file under the project
-- root for 'folder'); `runs_code` is 1 when it has shell or tmux steps (who may store it:
-- suites::Suite::runs_code). Runs go queued -> passed | failed | error, written by the
-- worker's report (one transaction with the cases and the activity row). `failure` and
-- `excerpt` are bounded and already redacted by the runner; no vault value is ever stored.
CREATE TABLE test_suites (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    path            TEXT,
    content         TEXT    NOT NULL,
    cases           INTEGER NOT NULL,
    runs_code       INTEGER NOT NULL,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE UNIQUE INDEX test_suites_project_name ON test_suites(project_id, name);

CREATE TABLE test_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    suite_id        INTEGER NOT NULL REFERENCES test_suites(id) ON DELETE CASCADE,
    project_id      INTEGER NOT NULL,
    task_id         INTEGER,
    status          TEXT    NOT NULL,
    passed          INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    flaky           INTEGER NOT NULL DEFAULT 0,
    duration_ms     INTEGER,
    error           TEXT,
    node            TEXT,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    finished_at     TEXT
);
CREATE INDEX test_runs_suite ON test_runs(suite_id, id);
CREATE UNIQUE INDEX test_runs_task ON test_runs(task_id);

CREATE TABLE test_case_results (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          INTEGER NOT NULL REFERENCES test_runs(id) ON DELETE CASCADE,
    suite_id        INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    failure         TEXT,
    excerpt         TEXT
);
CREATE INDEX test_case_results_run ON test_case_results(run_id);
CREATE INDEX test_case_results_suite_name ON test_case_results(suite_id, name, run_id);
