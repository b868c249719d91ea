-- bigmgr store schema, version 7: a host's address is the operator's; an address its agent
-- reports that differs is kept beside it (reported_address) until an admin accepts it. Hosts no
-- agent ever registered for are WAITING, not ONLINE.

ALTER TABLE hosts ADD COLUMN reported_address TEXT;
UPDATE hosts SET state = 'WAITING'
 WHERE credential IS NULL AND last_heartbeat IS NULL AND removed_at IS NULL;
