-- Per-project error ingest keys: the public key of a Sentry-style DSN
-- (`http://KEY@host/PROJECT_ID`). Like API tokens, only an HMAC of the key is stored (under
-- SECRET_KEY) with a short prefix to recognise it; the key itself is shown once. A project has
-- at most one active key: rotating revokes the old one in the same transaction.

CREATE TABLE error_ingest_keys (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id      INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key_hash        TEXT    NOT NULL UNIQUE,
    prefix          TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    revoked_at      TEXT
);
CREATE UNIQUE INDEX error_ingest_keys_active ON error_ingest_keys(project_id)
    WHERE revoked_at IS NULL;
