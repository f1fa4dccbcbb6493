-- Exactly-once delivery into a pane (issue 12): a prompt counts as typed only once the agent
-- took it. The dispatcher presses Enter again when the text still sits in the input line;
-- these record how often and when it last did, so a restart of serve keeps the bound and the
-- spacing instead of starting over (see src/agents/assigner/dispatch.rs).

ALTER TABLE assigner_prompts ADD COLUMN enter_presses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE assigner_prompts ADD COLUMN entered_at TEXT;   -- the last Enter pressed
