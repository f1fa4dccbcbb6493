-- Hourly and daily roll-ups of the LLM ledger, hourly ones of failover events (issue 15 item 5): the summaries
-- (`/api/llm-metrics/summary`, `/costs`, `/providers`, the dashboard) sum these instead of
-- every ledger row. The ledger flush writes both in the transaction that inserts the rows
-- (src/llm/store.rs, `insert_batch`); this migration fills them from the rows already there.
--
-- The key columns hold the summaries' grouping keys themselves, computed from a ledger row as
-- src/llm/store.rs does (`ROLLUP_KEYS`): the serving provider or '(none)', the model or
-- '(none)' when empty, the caller as `name (token N)`, the project or '(none)'. So a sum over
-- the roll-up groups exactly as the same sum over the ledger. `hour` is 'YYYY-MM-DDTHH' (UTC),
-- the first 13 characters of `at`, as in `error_hours`. Never purged: the roll-ups are the
-- history the summaries answer from.

CREATE TABLE llm_ledger_hours (
    hour            TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    caller          TEXT    NOT NULL,
    project         TEXT    NOT NULL,
    requests        BIGINT  NOT NULL,
    succeeded       BIGINT  NOT NULL,                 -- outcome 'ok'
    failed          BIGINT  NOT NULL,                 -- outcome 'failed' or 'cut'
    input_tokens    BIGINT  NOT NULL,
    output_tokens   BIGINT  NOT NULL,
    cost_nanos      BIGINT  NOT NULL,
    estimated       BIGINT  NOT NULL,
    failovers       BIGINT  NOT NULL,
    PRIMARY KEY (hour, provider, model, caller, project)
);

-- The same per day ('YYYY-MM-DD'): an all-time summary sums a day's row instead of 24.
CREATE TABLE llm_ledger_days (
    day             TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    caller          TEXT    NOT NULL,
    project         TEXT    NOT NULL,
    requests        BIGINT  NOT NULL,
    succeeded       BIGINT  NOT NULL,
    failed          BIGINT  NOT NULL,
    input_tokens    BIGINT  NOT NULL,
    output_tokens   BIGINT  NOT NULL,
    cost_nanos      BIGINT  NOT NULL,
    estimated       BIGINT  NOT NULL,
    failovers       BIGINT  NOT NULL,
    PRIMARY KEY (day, provider, model, caller, project)
);

CREATE TABLE llm_failover_hours (
    hour            TEXT    NOT NULL PRIMARY KEY,     -- 'YYYY-MM-DDTHH' (UTC)
    events          BIGINT  NOT NULL
);

INSERT INTO llm_ledger_hours (hour, provider, model, caller, project, requests, succeeded,
    failed, input_tokens, output_tokens, cost_nanos, estimated, failovers)
SELECT substr(at, 1, 13),
    COALESCE(provider, '(none)'),
    CASE WHEN model = '' THEN '(none)' ELSE model END,
    caller || CASE WHEN caller_token_id IS NULL THEN '' ELSE ' (token ' || caller_token_id || ')' END,
    COALESCE(project, '(none)'),
    COUNT(*),
    SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome IN ('failed', 'cut') THEN 1 ELSE 0 END),
    SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos), SUM(estimated), SUM(failovers)
FROM llm_ledger
GROUP BY 1, 2, 3, 4, 5;

INSERT INTO llm_failover_hours (hour, events)
SELECT substr(at, 1, 13), COUNT(*) FROM llm_failover_events GROUP BY 1;

INSERT INTO llm_ledger_days (day, provider, model, caller, project, requests, succeeded,
    failed, input_tokens, output_tokens, cost_nanos, estimated, failovers)
SELECT substr(hour, 1, 10), provider, model, caller, project, SUM(requests), SUM(succeeded),
    SUM(failed), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos), SUM(estimated), SUM(failovers)
FROM llm_ledger_hours
GROUP BY 1, 2, 3, 4, 5;
