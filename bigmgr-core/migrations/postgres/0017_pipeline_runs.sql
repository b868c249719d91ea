-- Mirrors SQLite's migration 0016: pipeline runs' message and scaled replicas.

ALTER TABLE pipelines ADD COLUMN message TEXT;
ALTER TABLE pipelines ADD COLUMN replicas TEXT;
