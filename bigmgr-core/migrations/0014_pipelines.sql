-- bigmgr store schema, version 14: pipelines (docs/pipelines.md) — a checked definition (TOML,
-- as written) per name and cluster, and its state. A removed pipeline keeps its row (removed_at)
-- and frees its name.

CREATE TABLE pipelines (
    id          INTEGER PRIMARY KEY,
    cluster     INTEGER NOT NULL REFERENCES clusters (id),
    name        TEXT    NOT NULL,
    author      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    definition  TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    removed_at  INTEGER
);
CREATE UNIQUE INDEX pipelines_live ON pipelines (cluster, name) WHERE removed_at IS NULL;
