-- Issue 16: which pass grouped a proposed milestone (the deterministic planner or the LLM pass
-- through the gateway), and what the scan's LLM pass did (or why it kept the deterministic plan).
ALTER TABLE plan_milestones ADD COLUMN grouped_by TEXT NOT NULL DEFAULT 'deterministic'; -- deterministic | llm
ALTER TABLE plan_scans ADD COLUMN grouped_by TEXT NOT NULL DEFAULT 'deterministic';      -- deterministic | llm
ALTER TABLE plan_scans ADD COLUMN grouping_note TEXT;
