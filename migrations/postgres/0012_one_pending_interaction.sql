-- One prompt on screen is one interaction (issue 12): each interaction remembers which prompt
-- it was (a fingerprint of the prompt panel read off the pane), the whole screen its key was
-- pressed on, and when that prompt was seen to leave the screen; a session holds at most one
-- pending interaction.
ALTER TABLE agent_interactions ADD COLUMN fingerprint TEXT;
ALTER TABLE agent_interactions ADD COLUMN screen_hash TEXT;
ALTER TABLE agent_interactions ADD COLUMN screen_left_at TEXT;

-- Older duplicates (the same prompt recorded twice) close as superseded before the index.
UPDATE agent_interactions
   SET status = 'gone', decision_by = 'migration:superseded', decided_at = created_at
 WHERE status = 'pending'
   AND id NOT IN (SELECT MAX(id) FROM agent_interactions WHERE status = 'pending'
                  GROUP BY node, session);

CREATE UNIQUE INDEX agent_interactions_one_pending ON agent_interactions(node, session)
    WHERE status = 'pending';
