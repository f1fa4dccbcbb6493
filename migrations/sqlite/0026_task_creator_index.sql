-- The autopilot finds a test or deploy task it made again by its creator text (a restart
-- between making a task and recording it must not make a second one). Partial, so only the
-- autopilot's own tasks carry the index entry; the lookup repeats the predicate to use it.
CREATE INDEX task_queue_autopilot_creator ON task_queue(created_by, id)
    WHERE created_by LIKE 'autopilot (%';
