-- Mirrors SQLite's migration 0013: the SSH host key fingerprint of each host added over SSH.

ALTER TABLE hosts ADD COLUMN ssh_host_key TEXT;
