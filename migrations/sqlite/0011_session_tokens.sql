-- A session's own token acts for that session only (issue 12): the token row names the
-- session it was minted for, so every request made with it resolves to that session without
-- a second lookup. Tokens minted before this migration are bound from agent_sessions.
ALTER TABLE api_tokens ADD COLUMN session_node TEXT;
ALTER TABLE api_tokens ADD COLUMN session_name TEXT;

UPDATE api_tokens
   SET session_node = (SELECT s.node FROM agent_sessions s WHERE s.hook_token_id = api_tokens.id),
       session_name = (SELECT s.name FROM agent_sessions s WHERE s.hook_token_id = api_tokens.id)
 WHERE id IN (SELECT hook_token_id FROM agent_sessions WHERE hook_token_id IS NOT NULL);

-- A remote session start hands its node a one-time claim, never the token: the node's agent
-- redeems the claim (with its own node-bound token) and the session's token is minted then.
-- Only the claim's keyed hash is stored; a claim is used once and expires.
CREATE TABLE session_token_claims (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    claim_hash      TEXT    NOT NULL UNIQUE,
    node_id         INTEGER NOT NULL,                 -- the node whose agent may redeem it
    session_node    TEXT    NOT NULL,
    session_name    TEXT    NOT NULL,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, -- the token's owner
    created_at      TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    redeemed_at     TEXT
);

-- Session tokens that older versions stored in session-start commands (and failed to scrub
-- after a crash) are removed.
UPDATE node_commands SET args = json_set(args, '$.token', '[redacted]')
 WHERE command = 'session-start' AND json_extract(args, '$.token') NOT IN ('', '[redacted]');
