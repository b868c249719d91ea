-- bigmgr store schema, version 4: hosts and service instances are removed softly, because
-- tasks and stages of finished jobs keep referring to them (history stays readable by id).
-- A removed row gets removed_at (milliseconds since the epoch) and its name becomes
-- `<name>#<id>`, which no valid name can be, so the name can be used again.

ALTER TABLE hosts ADD COLUMN removed_at INTEGER;
ALTER TABLE services ADD COLUMN removed_at INTEGER;
