-- What each registered worker may do beyond claiming (issue 12): a JSON list of capability
-- names, e.g. ["exec"] for a worker started with --allow-exec. Workers registered before this
-- show none until they register again.

ALTER TABLE workers ADD COLUMN capabilities TEXT NOT NULL DEFAULT '[]';
