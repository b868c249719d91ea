-- bigmgr store schema, version 1.
-- States are stored as their text form (as_str), times as INTEGER milliseconds since the epoch,
-- a job's target and options as JSON text.

CREATE TABLE clusters (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE hosts (
    id              INTEGER PRIMARY KEY,
    cluster         INTEGER NOT NULL REFERENCES clusters (id),
    name            TEXT    NOT NULL UNIQUE,
    address         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    last_heartbeat  INTEGER
);
CREATE INDEX hosts_by_cluster ON hosts (cluster);

CREATE TABLE services (
    id             INTEGER PRIMARY KEY,
    cluster        INTEGER NOT NULL REFERENCES clusters (id),
    name           TEXT    NOT NULL,
    stack          TEXT    NOT NULL,
    stack_version  TEXT    NOT NULL,
    service        TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (cluster, name)
);

CREATE TABLE units (
    id         INTEGER PRIMARY KEY,
    service    INTEGER NOT NULL REFERENCES services (id),
    component  TEXT    NOT NULL,
    host       INTEGER NOT NULL REFERENCES hosts (id),
    state      TEXT    NOT NULL
);
CREATE INDEX units_by_service ON units (service);
CREATE INDEX units_by_host ON units (host);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    cluster      INTEGER NOT NULL REFERENCES clusters (id),
    command      TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    options      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER
);
CREATE INDEX jobs_by_cluster ON jobs (cluster, id);
CREATE INDEX jobs_by_state ON jobs (state, id);

CREATE TABLE stages (
    id         INTEGER PRIMARY KEY,
    job        INTEGER NOT NULL REFERENCES jobs (id),
    seq        INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    service    INTEGER NOT NULL REFERENCES services (id),
    component  TEXT    NOT NULL,
    command    TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    UNIQUE (job, seq)
);

CREATE TABLE stage_deps (
    stage  INTEGER NOT NULL REFERENCES stages (id),
    after  INTEGER NOT NULL REFERENCES stages (id),
    PRIMARY KEY (stage, after)
) WITHOUT ROWID;

CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY,
    job          INTEGER NOT NULL REFERENCES jobs (id),
    stage        INTEGER NOT NULL REFERENCES stages (id),
    unit         INTEGER NOT NULL REFERENCES units (id),
    host         INTEGER NOT NULL REFERENCES hosts (id),
    attempt      INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    exit_code    INTEGER,
    pid          INTEGER,
    started_at   INTEGER,
    finished_at  INTEGER,
    message      TEXT
);
CREATE INDEX tasks_by_job ON tasks (job, id);

CREATE TABLE task_logs (
    task     INTEGER NOT NULL REFERENCES tasks (id),
    attempt  INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    stream   TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    line     TEXT    NOT NULL,
    PRIMARY KEY (task, attempt, seq)
) WITHOUT ROWID;
