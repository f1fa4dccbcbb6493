-- A session holds at most one active (assigned or in progress) prompt (issue 15): the claim's
-- NOT EXISTS re-check is enough on SQLite, where one writer runs at a time, but on PostgreSQL
-- two replicas' dispatchers (both leading for a moment) could each claim a different prompt
-- for one session in the same instant; the index refuses the second.

-- A session that already holds two (it cannot on SQLite) keeps its first; the others fail for
-- a person to look at, never to be typed again.
UPDATE assigner_prompts
   SET status = 'failed', error = 'a second active prompt in one session (migration 0018)',
       completed_at = updated_at
 WHERE status IN ('assigned', 'in_progress')
   AND id NOT IN (SELECT MIN(id) FROM assigner_prompts
                   WHERE status IN ('assigned', 'in_progress')
                   GROUP BY node, assigned_session);

CREATE UNIQUE INDEX assigner_prompts_one_active_per_session
    ON assigner_prompts(node, assigned_session)
    WHERE status IN ('assigned', 'in_progress');
