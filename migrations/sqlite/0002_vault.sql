-- Secure vault: secrets (metadata), their encrypted versions, the audit trail and the one-row
-- key state. Values never appear in any column: each version holds an XChaCha20-Poly1305
-- ciphertext under its own random data key, and that data key wrapped by the master key
-- (which lives outside the database). See docs/decisions/0004-vault-encryption.md.

CREATE TABLE secrets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    name_key        TEXT    NOT NULL,                 -- lower-cased name, unique among non-purged secrets
    category        TEXT    NOT NULL,                 -- api_key | password | token | certificate | ssh_key | env_var | general
    description     TEXT    NOT NULL DEFAULT '',
    current_version INTEGER NOT NULL,                 -- the version a plain read returns
    access_count    INTEGER NOT NULL DEFAULT 0,       -- value reads (API, dashboard, internal references)
    last_accessed   TEXT,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    deleted_at      TEXT,                             -- soft delete: hidden, values unreadable, restorable
    purged_at       TEXT                              -- purge: versions destroyed, name free again
);
CREATE UNIQUE INDEX secrets_live_name ON secrets(name_key) WHERE purged_at IS NULL;

CREATE TABLE secret_versions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_id       INTEGER NOT NULL REFERENCES secrets(id),
    version         INTEGER NOT NULL,                 -- 1, 2, ... per secret; part of both AADs
    ciphertext      BLOB    NOT NULL,                 -- value under the data key (tag appended)
    nonce           BLOB    NOT NULL,                 -- 24 bytes, random per value
    wrapped_key     BLOB    NOT NULL,                 -- data key under the master key (tag appended)
    key_nonce       BLOB    NOT NULL,                 -- 24 bytes, random per wrap
    master_key_id   TEXT    NOT NULL,                 -- fingerprint of the wrapping master key
    restored_from   INTEGER,                          -- the version this one copied, if a restore
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    UNIQUE (secret_id, version)
);
CREATE INDEX secret_versions_key ON secret_versions(master_key_id);

CREATE TABLE secret_audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_id       INTEGER REFERENCES secrets(id),   -- NULL for vault-wide events (key rotation)
    secret_name     TEXT,                             -- the name at the time
    version         INTEGER,
    action          TEXT    NOT NULL,                 -- create | view | update | delete | undelete | restore | purge | rotate_key | resolve
    actor           TEXT    NOT NULL,
    user_id         INTEGER,
    client_addr     TEXT,
    details         TEXT    NOT NULL DEFAULT '{}',    -- JSON object; never a value
    created_at      TEXT    NOT NULL
);
CREATE INDEX secret_audit_secret ON secret_audit(secret_id, id);

-- One row: which master key new data keys are wrapped under. Writers read it inside their
-- transaction and rotation changes it in the re-wrap transaction, so the database, not a
-- process's memory, decides which key is current.
CREATE TABLE vault_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    active_key_id   TEXT    NOT NULL,
    rotated_at      TEXT,
    updated_at      TEXT    NOT NULL
);
