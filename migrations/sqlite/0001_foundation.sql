-- Foundation schema: accounts, sessions, API tokens, login throttling, project tracking and the
-- activity log. Times are RFC 3339 UTC text in one fixed width (see src/clock.rs), so they sort
-- and compare as text on SQLite and PostgreSQL alike. Enumerations are text checked in Rust.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL,
    username_key    TEXT    NOT NULL UNIQUE,          -- lower-cased: logins are case-insensitive
    password_hash   TEXT    NOT NULL,                 -- argon2id PHC string
    role            TEXT    NOT NULL,                 -- admin | member | viewer
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    password_changed_at TEXT NOT NULL
);

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash      TEXT    NOT NULL UNIQUE,          -- sha256 of the cookie value; the value is never stored
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    authenticated_at TEXT   NOT NULL,                 -- last time the password was given (step-up checks)
    last_seen_at    TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,                 -- last_seen_at + SESSION_TIMEOUT
    client_addr     TEXT,
    user_agent      TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);

CREATE TABLE api_tokens (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    token_hash      TEXT    NOT NULL UNIQUE,          -- sha256 of the secret; shown once at creation
    prefix          TEXT    NOT NULL,                 -- first characters, to recognise a token in lists
    scope           TEXT    NOT NULL,                 -- admin | agent | worker | ingest | read
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      TEXT    NOT NULL,
    last_used_at    TEXT,
    expires_at      TEXT,
    revoked_at      TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE login_throttle (
    throttle_key    TEXT    PRIMARY KEY,              -- 'user:<name>' or 'addr:<ip>'
    failures        INTEGER NOT NULL,
    window_started_at TEXT  NOT NULL,
    locked_until    TEXT
);

CREATE TABLE projects (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    name_key        TEXT    NOT NULL,                 -- lower-cased name, unique among active projects
    description     TEXT    NOT NULL DEFAULT '',
    source_path     TEXT,
    status          TEXT    NOT NULL,
    tags            TEXT    NOT NULL DEFAULT '[]',    -- JSON array of strings
    archived_at     TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE UNIQUE INDEX projects_active_name ON projects(name_key) WHERE archived_at IS NULL;

CREATE TABLE milestones (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    target_date     TEXT,                             -- YYYY-MM-DD
    status          TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX milestones_project ON milestones(project_id);

CREATE TABLE features (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    milestone_id    INTEGER REFERENCES milestones(id) ON DELETE SET NULL,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    assignee        TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX features_project ON features(project_id, status);
CREATE INDEX features_milestone ON features(milestone_id);

CREATE TABLE feature_status_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    feature_id      INTEGER NOT NULL REFERENCES features(id) ON DELETE CASCADE,
    from_status     TEXT,                             -- NULL for the initial status
    to_status       TEXT    NOT NULL,
    comment         TEXT,
    actor           TEXT    NOT NULL,
    changed_at      TEXT    NOT NULL
);
CREATE INDEX feature_status_history_feature ON feature_status_history(feature_id);

CREATE TABLE bugs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id),
    milestone_id    INTEGER REFERENCES milestones(id) ON DELETE SET NULL,
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    severity        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    assignee        TEXT,
    resolved_at     TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX bugs_project ON bugs(project_id, status);
CREATE INDEX bugs_milestone ON bugs(milestone_id);

CREATE TABLE devops_tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER REFERENCES projects(id),
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    category        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    schedule        TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX devops_tasks_project ON devops_tasks(project_id, status);

CREATE TABLE activity_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    actor           TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    entity_type     TEXT    NOT NULL,
    entity_id       INTEGER,
    details         TEXT    NOT NULL DEFAULT '{}',    -- JSON object
    created_at      TEXT    NOT NULL
);
CREATE INDEX activity_log_created ON activity_log(created_at);
CREATE INDEX activity_log_entity ON activity_log(entity_type, entity_id);
