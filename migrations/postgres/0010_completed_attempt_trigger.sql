-- A completion's attempt row is written by the database, inside the completing UPDATE itself:
-- the queue's hot path then costs one statement (one round trip to the connection) instead of
-- two. Only `running -> completed` matches, which is store::complete_leased; every other
-- attempt outcome (failed, expired, cancelled, released) is inserted by store::insert_attempt.
-- (PostgreSQL form of the SQLite trigger: a PL/pgSQL function, fired per row after the UPDATE.)
CREATE FUNCTION task_completed_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_attempts (task_id, worker_id, outcome, started_at, finished_at, error,
                               output, exit_code, duration_ms)
    VALUES (NEW.id, NEW.worker_id, 'completed', COALESCE(NEW.started_at, NEW.finished_at),
            NEW.finished_at, NULL, NEW.output, NEW.exit_code, NEW.duration_ms);
    RETURN NULL;
END;
$$;

CREATE TRIGGER task_completed_attempt AFTER UPDATE OF status ON task_queue
FOR EACH ROW
WHEN (NEW.status = 'completed' AND OLD.status = 'running')
EXECUTE FUNCTION task_completed_attempt();
