-- bigmgr store schema, version 6: versioned configs, units added and removed one by one, named
-- config snapshots, relations between service instances and their events.
-- Config values, host overrides and snapshot entries are JSON; a relation event's kind is its
-- text form (as_str). Units and relations are removed softly (removed_at), like hosts and
-- services, because tasks and events keep referring to them.

-- The desired config version of a service instance and its host layer (JSON: host name ->
-- config type -> property -> value; NULL is none). `configs` (0005) is its service layer.
ALTER TABLE services ADD COLUMN host_overrides TEXT;
ALTER TABLE services ADD COLUMN config_version INTEGER NOT NULL DEFAULT 1;

-- What a unit's files were last rendered from by a successful configure.
ALTER TABLE units ADD COLUMN applied_version INTEGER;
ALTER TABLE units ADD COLUMN applied_hash TEXT;
ALTER TABLE units ADD COLUMN removed_at INTEGER;
-- The units of services removed before this version go with them.
UPDATE units SET removed_at = (SELECT s.removed_at FROM services s WHERE s.id = units.service)
    WHERE service IN (SELECT id FROM services WHERE removed_at IS NOT NULL);

-- Every version of every service instance's configs; never changed once written.
CREATE TABLE config_versions (
    service         INTEGER NOT NULL REFERENCES services (id),
    version         INTEGER NOT NULL,
    author          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    message         TEXT    NOT NULL,
    configs         TEXT    NOT NULL,
    host_overrides  TEXT    NOT NULL,
    PRIMARY KEY (service, version)
) WITHOUT ROWID;
-- Services added before this version: their configs are their version 1.
INSERT INTO config_versions (service, version, author, created_at, message, configs,
                             host_overrides)
    SELECT id, 1, 'system', created_at, 'initial configs', COALESCE(configs, '{}'), '{}'
    FROM services;

CREATE TABLE snapshots (
    id          INTEGER PRIMARY KEY,
    cluster     INTEGER NOT NULL REFERENCES clusters (id),
    name        TEXT    NOT NULL,
    author      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    message     TEXT    NOT NULL,
    entries     TEXT    NOT NULL,
    UNIQUE (cluster, name)
);

CREATE TABLE relations (
    id                 INTEGER PRIMARY KEY,
    cluster            INTEGER NOT NULL REFERENCES clusters (id),
    requirer           INTEGER NOT NULL REFERENCES services (id),
    requirer_endpoint  TEXT    NOT NULL,
    provider           INTEGER NOT NULL REFERENCES services (id),
    provider_endpoint  TEXT    NOT NULL,
    interface          TEXT    NOT NULL,
    auto_reconfigure   INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    removed_at         INTEGER
);
CREATE INDEX relations_by_cluster ON relations (cluster, id);
-- The same endpoints are related at most once at a time.
CREATE UNIQUE INDEX relations_live ON relations
    (requirer, requirer_endpoint, provider, provider_endpoint) WHERE removed_at IS NULL;

-- AUTOINCREMENT: ids are never reused, so they ascend in the order events were added.
CREATE TABLE relation_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    relation  INTEGER NOT NULL REFERENCES relations (id),
    at        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    service   INTEGER NOT NULL REFERENCES services (id),
    detail    TEXT    NOT NULL,
    job       INTEGER REFERENCES jobs (id)
);
CREATE INDEX relation_events_by_relation ON relation_events (relation, id);
