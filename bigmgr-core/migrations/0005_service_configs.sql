-- bigmgr store schema, version 5: a service instance's config values over the stack's
-- defaults, as JSON (config type -> property -> value); NULL is none.

ALTER TABLE services ADD COLUMN configs TEXT;
