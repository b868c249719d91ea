-- bigmgr store schema, version 11: maintenance windows (a host or a service whose alerts are
-- silenced until an end time), per-service policies (self-healing), and the kind of an alert
-- target (a webhook, or Prometheus Alertmanager's v2 API).

CREATE TABLE maintenance (
    id          INTEGER PRIMARY KEY,
    cluster     INTEGER NOT NULL REFERENCES clusters (id),
    host        INTEGER REFERENCES hosts (id),
    service     INTEGER REFERENCES services (id),
    until       INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    by_actor    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX maintenance_by_cluster ON maintenance (cluster, until);

CREATE TABLE service_policies (
    service            INTEGER PRIMARY KEY REFERENCES services (id),
    heal_restart       INTEGER NOT NULL,
    heal_grace_ms      INTEGER NOT NULL,
    heal_max_per_hour  INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

ALTER TABLE alert_targets ADD COLUMN kind TEXT NOT NULL DEFAULT 'webhook';

-- The latest result of each check (an alert definition a stack declares: port, web, script)
-- of each unit, as its agent reported it with a heartbeat.
CREATE TABLE unit_checks (
    unit        INTEGER NOT NULL REFERENCES units (id),
    name        TEXT    NOT NULL,
    result      TEXT    NOT NULL,
    checked_at  INTEGER NOT NULL,
    PRIMARY KEY (unit, name)
);

-- Per-cluster changes of alert definitions (thresholds, `for`, interval, disabled), versioned
-- like configs: the highest version of a definition is in force.
CREATE TABLE alert_overrides (
    cluster     INTEGER NOT NULL REFERENCES clusters (id),
    definition  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    settings    TEXT    NOT NULL,
    author      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (cluster, definition, version)
);
