-- LLM gateway: the cost ledger (one row per gateway request), failover events, the price table
-- (data, editable through /api/llm/prices) and budgets. Money in the ledger is integer
-- nano-dollars (1e-9 USD) so sums are exact; prices are USD per million tokens as people quote
-- them. Times are the fixed-width UTC text of clock.rs.

CREATE TABLE llm_ledger (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT    NOT NULL,                 -- when the request finished
    provider        TEXT,                             -- serving provider; NULL when none answered
    model           TEXT    NOT NULL DEFAULT '',      -- model the provider was asked for
    requested_model TEXT    NOT NULL DEFAULT '',      -- model the client named
    format          TEXT    NOT NULL,                 -- anthropic | openai (the client's format)
    caller_token_id INTEGER,                          -- the API token that called (a caller)
    caller          TEXT    NOT NULL,                 -- its owner's username
    project         TEXT,                             -- X-Architect-Project, if sent
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cost_nanos      INTEGER NOT NULL DEFAULT 0,
    estimated       INTEGER NOT NULL DEFAULT 0,       -- 1: usage not reported (e.g. stream cut), estimated from text
    outcome         TEXT    NOT NULL,                 -- ok | failed | client_error | cut | refused | cancelled
    status          INTEGER NOT NULL,                 -- HTTP status the client got
    latency_ms      INTEGER NOT NULL,                 -- to the answer or a stream's first event
    stream          INTEGER NOT NULL DEFAULT 0,
    failovers       INTEGER NOT NULL DEFAULT 0,       -- providers tried and failed before the answer
    error           TEXT
);
CREATE INDEX llm_ledger_at ON llm_ledger(at);
CREATE INDEX llm_ledger_token ON llm_ledger(caller_token_id, at);
CREATE INDEX llm_ledger_project ON llm_ledger(project, at);

CREATE TABLE llm_failover_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT    NOT NULL,
    from_provider   TEXT    NOT NULL,
    to_provider     TEXT,                             -- the next provider tried; NULL if none was left
    kind            TEXT    NOT NULL,                 -- connect | timeout | status_5xx | status_429 | ...
    reason          TEXT    NOT NULL,
    caller_token_id INTEGER,
    project         TEXT
);
CREATE INDEX llm_failover_events_at ON llm_failover_events(at);

CREATE TABLE llm_prices (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    provider            TEXT    NOT NULL,
    model               TEXT    NOT NULL,             -- exact name, or a prefix ending in '*'
    input_usd_per_mtok  REAL    NOT NULL,
    output_usd_per_mtok REAL    NOT NULL,
    updated_by          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    UNIQUE (provider, model)
);

-- List prices at the time of writing; edit them with PUT /api/llm/prices.
INSERT INTO llm_prices (provider, model, input_usd_per_mtok, output_usd_per_mtok, updated_by, updated_at) VALUES
    ('claude', 'claude-*',            3.0, 15.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('claude', 'claude-opus-4*',     15.0, 75.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('claude', 'claude-opus-4-5*',    5.0, 25.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('claude', 'claude-sonnet-4*',    3.0, 15.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('claude', 'claude-haiku-4*',     1.0,  5.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('claude', 'claude-3-5-haiku*',   0.8,  4.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('openai', 'gpt-*',               2.5, 10.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('openai', 'gpt-4o*',             2.5, 10.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('openai', 'gpt-4o-mini*',        0.15, 0.6, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('openai', 'gpt-4.1*',            2.0,  8.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('openai', 'gpt-4.1-mini*',       0.4,  1.6, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('openai', 'o3*',                 2.0,  8.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('openai', 'o4-mini*',            1.1,  4.4, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('gemini', 'gemini-*',            1.25, 10.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('gemini', 'gemini-2.5-flash*',   0.3,  2.5, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('gemini', 'gemini-2.0-flash*',   0.1,  0.4, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('ollama', '*',                   0.0,  0.0, 'migration', '2026-01-01T00:00:00.000000Z'),
    ('anythingllm', '*',              0.0,  0.0, 'migration', '2026-01-01T00:00:00.000000Z');

CREATE TABLE llm_budgets (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    scope           TEXT    NOT NULL,                 -- token | project
    target          TEXT    NOT NULL,                 -- token id (as text) or project name
    period          TEXT    NOT NULL,                 -- day | month | total
    limit_usd       REAL    NOT NULL,
    warn_ratio      REAL    NOT NULL DEFAULT 0.8,     -- warn when spend reaches this share of the limit
    created_by      TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    UNIQUE (scope, target, period)
);
