-- Task counts by status without counting the queue (issue 15 item 5): `GET /api/tasks/counts`,
-- the Tasks panel and the overview read the handful of rows of `task_status_counts` instead of
-- scanning task_queue's status index (300–850 ms at 5 M tasks, and tasks are never purged).
--
-- Every status change of a task moves the counters in the statement that makes it, by trigger,
-- so no code path can forget one (enqueue, claim, complete, fail, retry, cancel, release, the
-- lease reaper, a DELETE by hand).
--
-- SQLite form: one writer at a time, so the triggers update the counter rows directly; no
-- contention is possible. `task_status_deltas` exists for the PostgreSQL form (whose triggers
-- insert signed deltas there, folded into the counters by the leader) and stays empty here;
-- the one reading statement (tasks::store::status_counts) adds it in on both backends.
CREATE TABLE task_status_counts (
    status          TEXT    PRIMARY KEY,
    n               INTEGER NOT NULL
);

CREATE TABLE task_status_deltas (
    status          TEXT    NOT NULL,
    n               INTEGER NOT NULL             -- +1 entered the status, -1 left it
);

CREATE TRIGGER task_status_counted_insert AFTER INSERT ON task_queue
BEGIN
    INSERT INTO task_status_counts (status, n) VALUES (NEW.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER task_status_counted_update AFTER UPDATE OF status ON task_queue
WHEN OLD.status <> NEW.status
BEGIN
    UPDATE task_status_counts SET n = n - 1 WHERE status = OLD.status;
    INSERT INTO task_status_counts (status, n) VALUES (NEW.status, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER task_status_counted_delete AFTER DELETE ON task_queue
BEGIN
    UPDATE task_status_counts SET n = n - 1 WHERE status = OLD.status;
END;

-- Backfill: the migration holds SQLite's write lock, so no task changes between this count and
-- the triggers taking over.
INSERT INTO task_status_counts (status, n)
SELECT status, COUNT(*) FROM task_queue GROUP BY status;
