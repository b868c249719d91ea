-- Leases of replicas sharing this database (PostgreSQL only: a SQLite store has one server).
-- `engine` is held by the replica that runs the job engine; its epoch grows each time another
-- replica (or a new incarnation) takes it, and every write of the engine checks it in its
-- transaction (the fence). Times are the database's clock, in milliseconds.

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
