-- Error aggregation: one row per group of like errors (`errors`, the SPEC's table), the nodes
-- each group was seen on with per-node counts, an hourly histogram, and a bounded sample of
-- recent raw occurrences. Times are fixed-width RFC 3339 UTC text (see src/clock.rs); levels and
-- statuses are text checked in Rust (src/errors/mod.rs).

CREATE TABLE errors (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint     TEXT    NOT NULL UNIQUE,          -- hex sha-256 prefix of the grouping key
    error_type      TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    title           TEXT    NOT NULL,                 -- normalised message (placeholders for ids)
    message         TEXT    NOT NULL,                 -- raw message of the latest occurrence
    level           TEXT    NOT NULL,                 -- of the latest occurrence
    status          TEXT    NOT NULL,                 -- open | resolved
    regressed       INTEGER NOT NULL DEFAULT 0,       -- reopened by a new occurrence after a resolve
    occurrences     INTEGER NOT NULL,                 -- every accepted event, ever
    first_seen      TEXT    NOT NULL,
    last_seen       TEXT    NOT NULL,
    last_node       TEXT    NOT NULL,
    stack_trace     TEXT,                             -- latest non-empty one
    resolved_at     TEXT,
    resolved_by     TEXT,
    bug_id          INTEGER REFERENCES bugs(id) ON DELETE SET NULL,
    updated_at      TEXT    NOT NULL
);
-- No index on last_seen / occurrences: every batch of occurrences changes them (index entries
-- rewritten on the ingest path), while sorting even tens of thousands of groups for a list
-- page is cheap.
CREATE INDEX errors_bug ON errors(bug_id);

CREATE TABLE error_nodes (
    error_id        INTEGER NOT NULL REFERENCES errors(id) ON DELETE CASCADE,
    node_id         TEXT    NOT NULL,
    occurrences     INTEGER NOT NULL,
    first_seen      TEXT    NOT NULL,
    last_seen       TEXT    NOT NULL,
    PRIMARY KEY (error_id, node_id)
) WITHOUT ROWID;
CREATE INDEX error_nodes_node ON error_nodes(node_id);

CREATE TABLE error_hours (
    error_id        INTEGER NOT NULL REFERENCES errors(id) ON DELETE CASCADE,
    hour            TEXT    NOT NULL,                 -- 'YYYY-MM-DDTHH' (UTC)
    occurrences     INTEGER NOT NULL,
    PRIMARY KEY (error_id, hour)
) WITHOUT ROWID;
CREATE INDEX error_hours_hour ON error_hours(hour);

-- Plain rowid ids (no AUTOINCREMENT bookkeeping per insert): pruning keeps the newest rows, so
-- the largest id is never deleted and ids keep growing.
CREATE TABLE error_occurrences (
    id              INTEGER PRIMARY KEY,
    error_id        INTEGER NOT NULL REFERENCES errors(id) ON DELETE CASCADE,
    node_id         TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    level           TEXT    NOT NULL,
    stack_trace     TEXT,
    context         TEXT,                             -- JSON object from the client, or NULL
    received_at     TEXT    NOT NULL
);
CREATE INDEX error_occurrences_error ON error_occurrences(error_id, id);
