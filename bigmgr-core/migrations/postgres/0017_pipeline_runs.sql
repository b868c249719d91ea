-- Mirrors SQLite's migration 0016: pipeline runs' message and scaled replicas.

ALTER TABLE pipelines ADD COLUMN message TEXT;
ALTER TABLE pipelines ADD COLUMN replicas TEXT;
-- Cleaning finds every row of a batch's data by its location.
CREATE INDEX pipeline_batches_location ON pipeline_batches (pipeline, location);
