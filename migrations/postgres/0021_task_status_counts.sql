-- Task counts by status without counting the queue (issue 15 item 5): `GET /api/tasks/counts`,
-- the Tasks panel and the overview read the handful of rows of `task_status_counts` instead of
-- scanning task_queue's status index (300–850 ms at 5 M tasks, and tasks are never purged).
--
-- Every status change of a task moves the counts in the statement that makes it, by trigger,
-- so no code path can forget one (enqueue, claim, complete, fail, retry, cancel, release, the
-- lease reaper, a DELETE by hand).
--
-- PostgreSQL form: the triggers only INSERT signed deltas (+1 entered, -1 left) into
-- `task_status_deltas`, a table without index or key. No transaction updates a shared row, so
-- replicas' concurrent group commits never queue on a hot counter row and cannot deadlock on
-- mixed transitions. The leader folds the committed deltas into `task_status_counts` every
-- second (tasks::store::fold_status_deltas: `DELETE … RETURNING` takes only committed rows,
-- and the fold commits as one statement); a reader sums the counters and the deltas not yet
-- folded in one statement, i.e. one snapshot, so it never sees a delta twice or not at all.
CREATE TABLE task_status_counts (
    status          TEXT    PRIMARY KEY,
    n               BIGINT  NOT NULL
);

CREATE TABLE task_status_deltas (
    status          TEXT    NOT NULL,
    n               BIGINT  NOT NULL             -- +1 entered the status, -1 left it
);

CREATE FUNCTION task_status_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO task_status_deltas (status, n) VALUES (NEW.status, 1);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO task_status_deltas (status, n) VALUES (OLD.status, -1);
    ELSE
        INSERT INTO task_status_deltas (status, n) VALUES (OLD.status, -1), (NEW.status, 1);
    END IF;
    RETURN NULL;
END;
$$;

-- Created before the backfill: CREATE TRIGGER locks task_queue against writes until this
-- migration commits, so no change falls between the count below and the triggers.
CREATE TRIGGER task_status_counted_insert AFTER INSERT ON task_queue
FOR EACH ROW EXECUTE FUNCTION task_status_counted();

CREATE TRIGGER task_status_counted_update AFTER UPDATE OF status ON task_queue
FOR EACH ROW
WHEN (OLD.status <> NEW.status)
EXECUTE FUNCTION task_status_counted();

CREATE TRIGGER task_status_counted_delete AFTER DELETE ON task_queue
FOR EACH ROW EXECUTE FUNCTION task_status_counted();

INSERT INTO task_status_counts (status, n)
SELECT status, COUNT(*) FROM task_queue GROUP BY status;
