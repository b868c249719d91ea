-- bigmgr store schema, version 16: pipeline runs (docs/pipelines.md) — what a run last said (why
-- it failed or stopped), and the replicas a unit was scaled to (JSON: unit → replicas), which
-- outlive a restart of the server.

ALTER TABLE pipelines ADD COLUMN message TEXT;
ALTER TABLE pipelines ADD COLUMN replicas TEXT;
-- Cleaning finds every row of a batch's data by its location.
CREATE INDEX pipeline_batches_location ON pipeline_batches (pipeline, location);
