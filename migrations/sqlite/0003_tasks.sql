-- Task queue: tasks with leased claims, their finished attempts, registered workers, and the
-- per-project commands that `test` / `build` / `deploy` tasks run. Times are fixed-width RFC 3339
-- UTC text (see src/clock.rs); statuses and types are text checked in Rust (src/tasks/mod.rs).

CREATE TABLE workers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    node            TEXT    NOT NULL,
    types           TEXT    NOT NULL DEFAULT '[]',    -- JSON array of task types it runs ([] = any)
    tags            TEXT    NOT NULL DEFAULT '[]',    -- JSON array: the task tags it satisfies
    concurrency     INTEGER NOT NULL,
    pid             INTEGER,
    version         TEXT,
    registered_by   TEXT    NOT NULL,
    registered_at   TEXT    NOT NULL,
    last_heartbeat_at TEXT  NOT NULL,
    stopped_at      TEXT                              -- set by a graceful stop; cleared on register
);
-- A worker restarted under the same name on the same node keeps its id and history.
CREATE UNIQUE INDEX workers_name_node ON workers(name, node);

CREATE TABLE task_queue (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    task_type       TEXT    NOT NULL,
    payload         TEXT    NOT NULL DEFAULT '{}',    -- JSON object, shape depends on the type
    priority        INTEGER NOT NULL DEFAULT 0,       -- 0..10, higher is claimed first
    status          TEXT    NOT NULL,                 -- see TaskStatus
    max_retries     INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,       -- claims since created or last re-queued by hand
    timeout_s       INTEGER NOT NULL,
    run_after       TEXT    NOT NULL,                 -- not claimable before this (delay, backoff)
    tags            TEXT    NOT NULL DEFAULT '[]',    -- JSON array: a claimer must offer every tag
    node            TEXT,                             -- only a worker on this node may claim it
    project_id      INTEGER REFERENCES projects(id),
    worker_id       INTEGER REFERENCES workers(id),   -- current or last worker
    lease_token     TEXT,                             -- set while running; fences late answers
    lease_expires_at TEXT,
    started_at      TEXT,                             -- of the current or last attempt
    finished_at     TEXT,
    result          TEXT,                             -- JSON, from the worker
    output          TEXT,                             -- captured output (tail)
    error           TEXT,
    exit_code       INTEGER,
    duration_ms     INTEGER,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
-- The claim scans pending tasks by priority then age.
CREATE INDEX task_queue_claim ON task_queue(status, priority DESC, id);
-- The lease reaper looks for running tasks whose lease ran out.
CREATE INDEX task_queue_lease ON task_queue(status, lease_expires_at);
CREATE INDEX task_queue_worker ON task_queue(worker_id, status);

-- Tags of tasks that have any, one row each, so the claim can test "every tag offered" in SQL.
CREATE TABLE task_tags (
    task_id         INTEGER NOT NULL REFERENCES task_queue(id) ON DELETE CASCADE,
    tag             TEXT    NOT NULL,
    PRIMARY KEY (task_id, tag)
);

-- One row per finished attempt (completed, failed, expired, cancelled, released). The running
-- attempt lives on the task row until it ends.
CREATE TABLE task_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id         INTEGER NOT NULL REFERENCES task_queue(id) ON DELETE CASCADE,
    worker_id       INTEGER REFERENCES workers(id),
    outcome         TEXT    NOT NULL,                 -- see AttemptOutcome
    started_at      TEXT    NOT NULL,
    finished_at     TEXT    NOT NULL,
    error           TEXT,
    output          TEXT,
    exit_code       INTEGER,
    duration_ms     INTEGER
);
CREATE INDEX task_attempts_task ON task_attempts(task_id);
CREATE INDEX task_attempts_worker ON task_attempts(worker_id, finished_at);

-- What `test`, `build` and `deploy` tasks run for a project (in its source_path).
CREATE TABLE task_project_commands (
    project_id      INTEGER PRIMARY KEY REFERENCES projects(id),
    test_command    TEXT,
    build_command   TEXT,
    deploy_command  TEXT,
    updated_at      TEXT    NOT NULL
);
