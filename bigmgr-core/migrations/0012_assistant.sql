-- bigmgr store schema, version 12: the assistant — model providers (OpenAI-compatible
-- endpoints; the API key is written by an admin and never read back through the API), chat
-- threads per user and cluster, their messages, and proposals (changes the assistant suggested,
-- run only when their user confirms them).

CREATE TABLE assistant_providers (
    name        TEXT    PRIMARY KEY,
    base_url    TEXT    NOT NULL,
    model       TEXT    NOT NULL,
    api_key     TEXT,
    is_default  INTEGER NOT NULL,
    timeout_ms  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE assistant_threads (
    id          INTEGER PRIMARY KEY,
    "user"      INTEGER NOT NULL REFERENCES users (id),
    cluster     INTEGER NOT NULL REFERENCES clusters (id),
    title       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX assistant_threads_by_user ON assistant_threads ("user", id);

CREATE TABLE assistant_messages (
    id            INTEGER PRIMARY KEY,
    thread        INTEGER NOT NULL REFERENCES assistant_threads (id),
    role          TEXT    NOT NULL,
    content       TEXT    NOT NULL,
    tool_calls    TEXT    NOT NULL,
    tool_call_id  TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX assistant_messages_by_thread ON assistant_messages (thread, id);

CREATE TABLE assistant_proposals (
    id          INTEGER PRIMARY KEY,
    thread      INTEGER NOT NULL REFERENCES assistant_threads (id),
    title       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    result      TEXT,
    created_at  INTEGER NOT NULL,
    decided_at  INTEGER
);
CREATE INDEX assistant_proposals_by_thread ON assistant_proposals (thread, id);
