-- Assigning features, bugs and error groups to agent sessions (issue 5): an item's page lists
-- the prompts sent for it, and an error group whose prompt completed is marked "in review"
-- (a fix waits for a person's check) until it is resolved. The mark is not a status: the
-- ingest upsert sets `status` on every occurrence, and an error keeps occurring until the fix
-- ships (see src/errors/mod.rs).

CREATE INDEX assigner_prompts_source ON assigner_prompts(source_kind, source_id);

ALTER TABLE errors ADD COLUMN review_at TEXT;             -- when the assigned prompt completed
ALTER TABLE errors ADD COLUMN review_prompt_id BIGINT;   -- that prompt (no FK: prompts are cleared)
