-- Which replica keeps a supervised local worker (POST /api/workers/start/<type>): the id from
-- its data dir's `replica-id` (db::leader::replica_id). A replica restores only its own rows at
-- start and stops only its own workers (another replica's stop answers 409 naming the owner).
-- NULL: a row from before this migration; the first replica that starts it adopts it (one
-- conditional UPDATE, so only one does).
ALTER TABLE supervised_workers ADD COLUMN replica TEXT;
