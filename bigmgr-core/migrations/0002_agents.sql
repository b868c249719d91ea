-- bigmgr store schema, version 2: agents joining with tokens, their credentials, host facts
-- and metrics from heartbeats, unit health.
-- Secrets are stored as the hex SHA-256 of their value, never in the clear.

ALTER TABLE hosts ADD COLUMN credential TEXT;
ALTER TABLE hosts ADD COLUMN facts TEXT;
ALTER TABLE hosts ADD COLUMN metrics TEXT;
ALTER TABLE units ADD COLUMN health TEXT;

CREATE TABLE join_tokens (
    hash        TEXT    PRIMARY KEY,
    cluster     INTEGER NOT NULL REFERENCES clusters (id),
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX join_tokens_by_cluster ON join_tokens (cluster);
