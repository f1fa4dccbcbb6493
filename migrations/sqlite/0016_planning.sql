-- Planning (issue 16): the work items the scanner finds in each project (and the open bugs and
-- error groups it gathers with them), the scans, the milestone plans made of the items, and the
-- task suggestions offered to a person. Times are fixed-width RFC 3339 UTC text (src/clock.rs);
-- kinds and statuses are text checked in Rust (src/planning/mod.rs).

CREATE TABLE plan_scans (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    status          TEXT    NOT NULL,                 -- running | done | failed
    started_by      TEXT    NOT NULL,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT,
    files           INTEGER NOT NULL DEFAULT 0,       -- tracked files considered
    files_read      INTEGER NOT NULL DEFAULT 0,       -- read this time (the rest: unchanged blobs)
    items           INTEGER NOT NULL DEFAULT 0,       -- open items after the scan
    added           INTEGER NOT NULL DEFAULT 0,
    edited          INTEGER NOT NULL DEFAULT 0,
    done            INTEGER NOT NULL DEFAULT 0,       -- items that disappeared
    skipped         TEXT    NOT NULL DEFAULT '[]',    -- JSON [{path, reason}], the first 200
    skipped_count   INTEGER NOT NULL DEFAULT 0,
    error           TEXT
);
-- One scan of a project at a time, across every replica.
CREATE UNIQUE INDEX plan_scans_one_running ON plan_scans(project_id) WHERE status = 'running';
CREATE INDEX plan_scans_project ON plan_scans(project_id, id);

CREATE TABLE plan_items (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    kind            TEXT    NOT NULL,                 -- fixme | hack | xxx | todo | checkbox | bug | error
    path            TEXT,                             -- repository-relative, for file items
    line            INTEGER,
    text            TEXT    NOT NULL,
    heading         TEXT,                             -- Markdown heading path of a checkbox
    fingerprint     TEXT    NOT NULL,                 -- stable across rescans (src/planning/scan.rs)
    source_id       INTEGER,                          -- the bug or error group an item stands for
    weight          INTEGER NOT NULL,                 -- rank: marker, severity, error count
    status          TEXT    NOT NULL,                 -- open | done
    author          TEXT,                             -- from git blame, where cheap
    authored_at     TEXT,
    feature_id      INTEGER REFERENCES features(id) ON DELETE SET NULL,
    first_seen_at   TEXT    NOT NULL,
    last_seen_at    TEXT    NOT NULL,
    done_at         TEXT,
    updated_at      TEXT    NOT NULL
);
CREATE UNIQUE INDEX plan_items_fingerprint ON plan_items(project_id, fingerprint);
CREATE INDEX plan_items_open ON plan_items(project_id, status);
CREATE INDEX plan_items_feature ON plan_items(feature_id);

CREATE TABLE plan_milestones (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    scan_id         INTEGER REFERENCES plan_scans(id),
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    priority        INTEGER NOT NULL,
    phases          TEXT    NOT NULL,                 -- JSON [{name, tasks: [{title, priority, items: [id]}]}]
    items_key       TEXT    NOT NULL,                 -- hash of its items' fingerprints
    status          TEXT    NOT NULL,                 -- pending_approval | approved | rejected | superseded
    reason          TEXT,                             -- why it was rejected
    decided_by      TEXT,
    decided_at      TEXT,
    milestone_id    INTEGER REFERENCES milestones(id) ON DELETE SET NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX plan_milestones_status ON plan_milestones(status, project_id);
CREATE INDEX plan_milestones_key ON plan_milestones(project_id, items_key);

CREATE TABLE suggestions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    source          TEXT    NOT NULL,                 -- item | bug | error_group | failed_task
    source_id       INTEGER NOT NULL,
    title           TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    score           INTEGER NOT NULL,
    proposed        TEXT    NOT NULL,                 -- feature | bug | prompt | task
    status          TEXT    NOT NULL,                 -- pending | confirmed | skipped | completed
    result_kind     TEXT,                             -- what confirming made
    result_id       INTEGER,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
-- A source is suggested once: a skipped suggestion is not offered again.
CREATE UNIQUE INDEX suggestions_source ON suggestions(source, source_id);
CREATE INDEX suggestions_status ON suggestions(status, score DESC, id);

CREATE TABLE suggestion_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    suggestion_id   INTEGER NOT NULL REFERENCES suggestions(id) ON DELETE CASCADE,
    status          TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    note            TEXT,
    at              TEXT    NOT NULL
);
CREATE INDEX suggestion_history_of ON suggestion_history(suggestion_id, id);
