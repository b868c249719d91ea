-- Mirrors SQLite's migration 0009: the SHA-256 fingerprint of each host's current agent
-- certificate (mutual TLS); NULL until the host's agent got one.

ALTER TABLE hosts ADD COLUMN cert_fingerprint TEXT;
CREATE INDEX hosts_by_cert ON hosts (cert_fingerprint);
