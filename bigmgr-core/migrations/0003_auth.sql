-- bigmgr store schema, version 3: users, their API tokens, and the audit log (DESIGN.md §9).
-- Passwords are stored as Argon2id PHC strings, API tokens as the hex SHA-256 of their value;
-- neither is ever stored in the clear. Roles and outcomes are stored as their text forms.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    password_hash  TEXT,
    role           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    user          INTEGER NOT NULL REFERENCES users (id),
    hash          TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens (user);

-- AUTOINCREMENT: ids are never reused, so an id cursor never skips or repeats events.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    outcome  TEXT    NOT NULL,
    detail   TEXT    NOT NULL
);
CREATE INDEX audit_by_actor ON audit (actor, id);
