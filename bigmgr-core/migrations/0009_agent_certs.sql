-- bigmgr store schema, version 9: the SHA-256 fingerprint of each host's current agent
-- certificate (mutual TLS): a session presenting another certificate is refused. NULL until the
-- host's agent got one (and always, on a server serving plain HTTP).

ALTER TABLE hosts ADD COLUMN cert_fingerprint TEXT;
CREATE INDEX hosts_by_cert ON hosts (cert_fingerprint);
