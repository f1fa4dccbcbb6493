-- Local workers that `serve` was asked to keep running (POST /api/workers/start/<type>), so a
-- restarted `serve` starts them again. A row is removed by /stop/<type>; a stop of `serve`
-- itself keeps it.

CREATE TABLE supervised_workers (
    task_type   TEXT    PRIMARY KEY,
    started_by  BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    started_at  TEXT    NOT NULL
);
