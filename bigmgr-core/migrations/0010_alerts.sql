-- bigmgr store schema, version 10: alerts. One row per alert definition and subject (a
-- cluster, or one of its hosts, services or units; `subject` is their key as one text, so that
-- the pair is unique although some of the ids are NULL), and every change of state.

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    definition  TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    cluster     INTEGER NOT NULL REFERENCES clusters (id),
    host        INTEGER REFERENCES hosts (id),
    service     INTEGER REFERENCES services (id),
    unit        INTEGER REFERENCES units (id),
    state       TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    since       INTEGER NOT NULL,
    checked_at  INTEGER NOT NULL,
    UNIQUE (definition, subject)
);
CREATE INDEX alerts_by_cluster ON alerts (cluster, id);

CREATE TABLE alert_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    alert       INTEGER NOT NULL REFERENCES alerts (id),
    cluster     INTEGER NOT NULL REFERENCES clusters (id),
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX alert_changes_by_cluster ON alert_changes (cluster, id);
CREATE INDEX alert_changes_by_alert ON alert_changes (alert, id);

-- Where a cluster's alert changes are sent (webhooks), what waits to be delivered or was
-- (the outbox: it survives a restart), and every attempt (the delivery log).
CREATE TABLE alert_targets (
    id          INTEGER PRIMARY KEY,
    cluster     INTEGER NOT NULL REFERENCES clusters (id),
    name        TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (cluster, name)
);

CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY,
    target        INTEGER NOT NULL REFERENCES alert_targets (id),
    body          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    attempts      INTEGER NOT NULL,
    next_at       INTEGER NOT NULL,
    delivered_at  INTEGER
);
CREATE INDEX notifications_due ON notifications (delivered_at, next_at);

CREATE TABLE delivery_attempts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    notification  INTEGER NOT NULL REFERENCES notifications (id),
    at            INTEGER NOT NULL,
    status        INTEGER,
    answer        TEXT    NOT NULL
);
CREATE INDEX delivery_attempts_by_notification ON delivery_attempts (notification, id);
