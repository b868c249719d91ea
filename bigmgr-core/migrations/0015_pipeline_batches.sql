-- bigmgr store schema, version 15: the pipelines' metastore (docs/pipelines.md) — every batch at
-- every node with its state (RECEIVED → PROCESSED → CLEAN), where its data is, and the lease of
-- the replica processing it. Rows are keyed by the batch's id, so recording a batch twice is
-- recording it once.

CREATE TABLE pipeline_batches (
    pipeline      INTEGER NOT NULL REFERENCES pipelines (id),
    node          TEXT    NOT NULL,
    batch         TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    location      TEXT    NOT NULL,
    lease_holder  TEXT,
    lease_until   INTEGER,
    attempts      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (pipeline, node, batch)
);
CREATE INDEX pipeline_batches_waiting ON pipeline_batches (pipeline, node, state, created_at);
