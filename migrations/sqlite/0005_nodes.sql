-- Cluster nodes: the registry, metric history and the command channel to each node's agent.
-- Times are fixed-width RFC 3339 UTC text (see src/clock.rs); statuses are text checked in Rust
-- (src/nodes/mod.rs). A node's online/stale/offline state is computed on read, never stored.

CREATE TABLE nodes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,          -- the agent's --node-id (default: host name)
    hostname        TEXT    NOT NULL,
    os              TEXT,
    version         TEXT,                             -- architect version the agent runs
    interval_s      INTEGER NOT NULL,                 -- the agent's heartbeat interval
    is_local        INTEGER NOT NULL DEFAULT 0,       -- 1: this server's own host (in-process agent)
    token_id        INTEGER,                          -- the API token bound to this node (acts for it alone)
    metrics         TEXT,                             -- JSON: the latest heartbeat's metrics
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    registered_at   TEXT,                             -- last time an agent registered
    last_heartbeat_at TEXT
);

-- One row per heartbeat (resolution 0), rolled up into 5-minute averages (resolution 300) after
-- 24 hours; those are deleted after 7 days (nodes::retention).
CREATE TABLE node_metrics (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id         INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    at              TEXT    NOT NULL,                 -- sample time (rollups: bucket start)
    resolution      INTEGER NOT NULL,                 -- seconds per row: 0 raw, 300 rollup
    samples         INTEGER NOT NULL DEFAULT 1,       -- heartbeats averaged into this row
    cpu_percent     REAL    NOT NULL,
    mem_used        INTEGER NOT NULL,                 -- bytes
    mem_total       INTEGER NOT NULL,
    disk_used       INTEGER NOT NULL,                 -- bytes, summed over the reported mounts
    disk_total      INTEGER NOT NULL,
    load1           REAL    NOT NULL
);
CREATE INDEX node_metrics_node_at ON node_metrics(node_id, at);
CREATE INDEX node_metrics_resolution_at ON node_metrics(resolution, at);

-- Control plane → agent. pending → delivered (claimed once by the agent's long-poll) →
-- succeeded | failed; pending or delivered past expires_at → timed_out. Never re-delivered.
CREATE TABLE node_commands (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id         INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    command         TEXT    NOT NULL,
    args            TEXT    NOT NULL DEFAULT '{}',    -- JSON object
    status          TEXT    NOT NULL,
    timeout_s       INTEGER NOT NULL,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,                 -- created_at + timeout_s
    delivered_at    TEXT,
    finished_at     TEXT,
    result          TEXT,                             -- JSON, when succeeded
    error           TEXT                              -- when failed or timed out
);
CREATE INDEX node_commands_claim ON node_commands(node_id, status, id);
CREATE INDEX node_commands_expiry ON node_commands(status, expires_at);
