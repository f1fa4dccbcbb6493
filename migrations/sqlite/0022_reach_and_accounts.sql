-- Issue 18 items 4 and 5: how to reach a node, and the service accounts the fleet uses.
--
-- Nodes: `address` is the host name or IP address to connect to (set by an admin or by the
-- registering client, original `ip_address`); `addresses` is what the node's agent reports
-- (JSON array of its interface addresses); `services` and `tags` are JSON arrays of text;
-- `ssh_secret` names the vault secret (`vault:NAME`) holding the SSH password or key, never
-- the value.
ALTER TABLE nodes ADD COLUMN address TEXT;
ALTER TABLE nodes ADD COLUMN addresses TEXT;
ALTER TABLE nodes ADD COLUMN ssh_user TEXT;
ALTER TABLE nodes ADD COLUMN ssh_port INTEGER;
ALTER TABLE nodes ADD COLUMN role TEXT;
ALTER TABLE nodes ADD COLUMN services TEXT;
ALTER TABLE nodes ADD COLUMN tags TEXT;
ALTER TABLE nodes ADD COLUMN ssh_secret TEXT;

-- External accounts (an LLM provider's API account, a cloud account): which provider, the
-- account's name, its plan, the vault secret holding its key (the name only) and a monthly
-- budget in USD micro-dollars. `provider` matches the LLM ledger's provider name, so spend is
-- summed per account from the ledger (accounts::store).
CREATE TABLE service_accounts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    provider        TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    plan            TEXT,
    secret_name     TEXT,
    monthly_budget_micros INTEGER,
    notes           TEXT,
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE UNIQUE INDEX service_accounts_provider_name ON service_accounts(provider, name);
