-- bigmgr store schema, version 8: recent heartbeat metrics per host (the console's sparklines,
-- window averages), kept for an hour; and tasks found by host (a host's recent tasks).

CREATE TABLE host_metrics (
    host     INTEGER NOT NULL REFERENCES hosts (id),
    at       INTEGER NOT NULL,
    metrics  TEXT    NOT NULL
);
CREATE INDEX host_metrics_by_host ON host_metrics (host, at);

CREATE INDEX tasks_by_host ON tasks (host, id);
