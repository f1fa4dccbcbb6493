-- The project's rollback command (issue 17): what the autopilot runs, as a `deploy` task with
-- `payload.rollback`, when a deploy's monitoring window crosses the run's error threshold.
ALTER TABLE task_project_commands ADD COLUMN rollback_command TEXT;
