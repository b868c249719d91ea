-- bigmgr store schema, version 13: the SSH host key fingerprint (`SHA256:…`) of each host added
-- over SSH, recorded at its first bootstrap (given by the operator, or trusted on first use):
-- later bootstraps refuse a host that shows another key. NULL for hosts never bootstrapped.

ALTER TABLE hosts ADD COLUMN ssh_host_key TEXT;
