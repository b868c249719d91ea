-- PostgreSQL only: a task's four references are checked as two composite keys, its stage
-- within its job and its unit on its host. PostgreSQL checks every foreign key of every
-- inserted row with a query of its own, and the four of a task were most of the cost of
-- inserting a job's tasks (docs/performance.md §5). The two keys check that the same rows
-- exist (a stage's job and a unit's host have keys of their own) and, besides, that they
-- agree. SQLite checks its four in-process, for little, and keeps them.
ALTER TABLE stages ADD CONSTRAINT stages_job_id_key UNIQUE (job, id);
ALTER TABLE units ADD CONSTRAINT units_id_host_key UNIQUE (id, host);
ALTER TABLE tasks
    DROP CONSTRAINT tasks_job_fkey,
    DROP CONSTRAINT tasks_stage_fkey,
    DROP CONSTRAINT tasks_unit_fkey,
    DROP CONSTRAINT tasks_host_fkey,
    ADD CONSTRAINT tasks_stage_in_job FOREIGN KEY (job, stage) REFERENCES stages (job, id),
    ADD CONSTRAINT tasks_unit_on_host FOREIGN KEY (unit, host) REFERENCES units (id, host);

-- A task is written three or four times within seconds of its insert (queued, started,
-- finished), and a unit's state with every job on it. With room left on each page the new
-- version of a row goes on the same page and no index entry is added (a HOT update): a
-- 500-row task update took 2.5 ms instead of 5 (docs/performance.md §5). New pages are
-- filled to half; tasks then take about twice the space on disk.
ALTER TABLE tasks SET (fillfactor = 50);
ALTER TABLE units SET (fillfactor = 50);
