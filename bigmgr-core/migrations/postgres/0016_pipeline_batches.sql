-- Mirrors SQLite's migration 0015: the pipelines' metastore.

CREATE TABLE pipeline_batches (
    pipeline      BIGINT NOT NULL REFERENCES pipelines (id),
    node          TEXT COLLATE "C" NOT NULL,
    batch         TEXT COLLATE "C" NOT NULL,
    state         TEXT COLLATE "C" NOT NULL,
    location      TEXT NOT NULL,
    lease_holder  TEXT COLLATE "C",
    lease_until   BIGINT,
    attempts      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (pipeline, node, batch)
);
CREATE INDEX pipeline_batches_waiting ON pipeline_batches (pipeline, node, state, created_at);
