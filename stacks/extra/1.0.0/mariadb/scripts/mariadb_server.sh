#!/bin/bash
# mariadb_server.sh: one MariaDB unit (the primary or a replica) of the extra stack's mariadb
# service. The unit runs its own mariadbd bound to BIGMGR_ADDRESS, with its own datadir, socket,
# pid file and error log under BIGMGR_UNIT_DIR (never /var/lib/mysql, never the system server).
# The primary keeps a binary log and creates the replication account; a replica runs read-only
# and replicates from the primary found in peers.replication with GTID (MASTER_USE_GTID=slave_pos).
#
# Usage: mariadb_server.sh install|configure|start|stop|restart|status|check|remove|replication
# Environment: BIGMGR_UNIT_DIR (required), BIGMGR_ADDRESS, BIGMGR_HOST, BIGMGR_CONTEXT (JSON file
# whose field `context` is the template context: properties incl. replication_password,
# peers.replication …), BIGMGR_LIB (the stack library: bm_* functions, docs/stacks.md).
# Files rendered by bigmgr before `configure`: conf/my.cnf, conf/mariadb.env.
# Every command is idempotent. status exits 0 if running, 3 if not (LSB).
# start on a running unit changes nothing unless the replication settings differ from what the
# unit applied (then it converges: creates/updates the account, or points the replica anew).
# check (run once, on one unit): inserts a unique row on the primary, reads it on every replica,
# and checks both replication threads of every replica run.
# replication (a replica's `mariadb.replication` alert): exit 0 if both its replication threads
# run, 2 if not; the first line of output says which, naming the primary it points at.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

bm_init mariadb
BM_LOG_PREFIX="mariadb "
# The server is the process whose command line names this unit's pid file (--pid-file=…).
# mariadbd shuts down cleanly on TERM: stop gives it 120 s. stop and status are the library's
# (bm_daemon_stop, bm_daemon_status).
bm_daemon "$BM_UNIT/mariadb.pid" "$BM_UNIT/mariadb.log" "--pid-file=$BM_UNIT/mariadb.pid" 120
conf="$BM_UNIT/conf/my.cnf"
envfile="$BM_UNIT/conf/mariadb.env"
data="$BM_UNIT/data"
rundir="$BM_UNIT/run"
sock="$rundir/mariadb.sock"
initmark="$BM_UNIT/.initialized"
replmark="$BM_UNIT/.replication"
osuser="$(id -un)"

# --- context -------------------------------------------------------------------------------
load_env() {
    [ -f "$envfile" ] || { echo "$envfile is missing; run configure first" >&2; exit 1; }
    # shellcheck disable=SC1090
    . "$envfile"
    PORT="${PORT:?PORT is not set in $envfile}"
    case "${UNIT_INDEX:-}" in "" | *[!0-9]*) echo "this unit is not in peers.replication ($envfile)" >&2; exit 1 ;; esac
    SERVER_ID=$((SERVER_ID_BASE + UNIT_INDEX))
}

repl_password() {
    local pw
    pw="$(bm_ctx_value replication_password)"
    [ -n "$pw" ] || { echo "replication_password is empty or BIGMGR_CONTEXT is missing" >&2; exit 1; }
    printf '%s' "$pw"
}

sql_str() { # a SQL string literal
    python3 -c 'import sys; print("\x27" + sys.argv[1].replace("\\", "\\\\").replace("\x27", "\\\x27") + "\x27")' "$1"
}

fingerprint() { printf '%s' "$*" | sha256sum | cut -c1-64; }

# SQL on this unit as the OS user (unix_socket authentication, set up by mariadb-install-db).
sql_local() { mariadb --no-defaults --protocol=socket --socket="$sock" -u "$osuser" -N -B "$@"; }
slave_status_local() {
    mariadb --no-defaults --protocol=socket --socket="$sock" -u "$osuser" -B -e 'SHOW SLAVE STATUS\G'
}

# SQL on a unit over TCP with the replication account: sql_remote ADDRESS PORT ARGS…
sql_remote() {
    local a="$1" p="$2"; shift 2
    MYSQL_PWD="$REPL_PW" mariadb --no-defaults --protocol=tcp -h "$a" -P "$p" -u "$REPLICATION_USER" \
        --connect-timeout=5 -B "$@"
}

# slave_field NAME STATUS: a field of SHOW SLAVE STATUS\G output
slave_field() { sed -n "s/^ *$1: //p" <<<"$2" | head -n1; }

# --- process -------------------------------------------------------------------------------

alive() { mariadb-admin --no-defaults --protocol=socket --socket="$sock" -u "$osuser" --connect-timeout=2 ping >/dev/null 2>&1; }

# --- packages ------------------------------------------------------------------------------
do_install() {
    mkdir -p "$BM_UNIT"
    if bm_have dpkg-query apt-get; then
        # The server core and the clients only: no packaged mariadb service gets installed or
        # started. (If mariadb-server is already there, its service is left alone.)
        bm_software mariadb
    elif ! mariadbd_bin >/dev/null && { bm_have dnf || bm_have yum; }; then
        # mariadb-server's service is not started by the package on these systems.
        bm_pkg_install mariadb-server
    fi
    mariadbd_bin >/dev/null || { echo "mariadbd not found after install" >&2; exit 1; }
    bm_have mariadb-install-db mariadb || { echo "mariadb-install-db/mariadb not found after install" >&2; exit 1; }
    bm_log "installed for unit $BM_UNIT ($("$(mariadbd_bin)" --version))"
}

mariadbd_bin() { bm_first_exe "$(command -v mariadbd 2>/dev/null || true)" /usr/sbin/mariadbd /usr/libexec/mariadbd; }

# mariadbd options that always follow the real unit directory (command line beats my.cnf).
server_opts() {
    opts=(--defaults-file="$conf" --datadir="$data" --socket="$sock" --pid-file="$BM_PIDFILE"
          --log-error="$BM_DAEMON_LOG" --bind-address="$BM_ADDRESS" --port="$PORT" --tmpdir="$BM_UNIT/tmp")
    [ "$(id -u)" = 0 ] && opts+=(--user=root)
    return 0
}

init_datadir() {
    [ -f "$initmark" ] && [ -d "$data/mysql" ] && return 0
    # No marker: nothing or a failed initialisation is there; start afresh.
    rm -rf "$data"
    mkdir -p "$data" "$rundir" "$BM_UNIT/tmp"
    echo "initialising $data"
    local iopts=(--defaults-file="$conf" --datadir="$data" --skip-test-db
                 --auth-root-authentication-method=socket --tmpdir="$BM_UNIT/tmp")
    [ "$(id -u)" = 0 ] && iopts+=(--user=root)
    mariadb-install-db "${iopts[@]}" >>"$BM_UNIT/install-db.log" 2>&1 ||
        bm_die_log "$BM_UNIT/install-db.log" "mariadb-install-db failed"
    date -u +%FT%TZ > "$initmark"
}

do_configure() {
    mariadbd_bin >/dev/null || { echo "mariadb is not installed; run install first" >&2; exit 1; }
    [ -f "$conf" ] || { echo "$conf is missing: bigmgr renders it before configure" >&2; exit 1; }
    load_env
    chmod 700 "$BM_UNIT/conf" 2>/dev/null || true
    mkdir -p "$rundir" "$BM_UNIT/tmp"
    # Let mariadbd validate the rendered file (unknown options are errors).
    server_opts
    "$(mariadbd_bin)" "${opts[@]}" --server-id="$SERVER_ID" --help --verbose >/dev/null 2>"$BM_UNIT/.validate.err" || {
        echo "mariadbd rejects $conf:" >&2; grep -v '^$' "$BM_UNIT/.validate.err" | tail -n 10 >&2; exit 1; }
    rm -f "$BM_UNIT/.validate.err"
    init_datadir
    local from=""
    [ "$ROLE" = mariadb_replica ] && from=", replicating from ${PRIMARY_ADDRESS:-?}:${PRIMARY_PORT:-?}"
    bm_log "configured: $ROLE on $BM_ADDRESS:$PORT, server-id $SERVER_ID$from"
}

# The primary: the replication account exists with the configured password and grants.
ensure_primary() {
    local pw fp u
    pw="$(repl_password)"
    fp="$(fingerprint "primary" "$REPLICATION_USER" "$pw")"
    u="$(sql_str "$REPLICATION_USER")"
    if [ "$(cat "$replmark" 2>/dev/null)" = "$fp" ] &&
        [ "$(sql_local -e "SELECT COUNT(*) FROM mysql.user WHERE User=$u AND Host='%'")" = 1 ]; then
        echo "replication account $REPLICATION_USER@% is in place"; return 0
    fi
    sql_local <<SQL
CREATE USER IF NOT EXISTS $u@'%' IDENTIFIED BY $(sql_str "$pw");
ALTER USER $u@'%' IDENTIFIED BY $(sql_str "$pw");
GRANT REPLICATION SLAVE, SLAVE MONITOR ON *.* TO $u@'%';
GRANT SELECT, INSERT, DELETE, CREATE ON \`bigmgr_check\`.* TO $u@'%';
SQL
    echo "$fp" > "$replmark"
    echo "replication account $REPLICATION_USER@% created/updated"
}

# A replica: replicates from the primary of peers.replication, with GTID.
ensure_replica() {
    [ -n "${PRIMARY_ADDRESS:-}" ] || { echo "no mariadb_primary in peers.replication; not replicating" >&2; exit 1; }
    local pw fp st mh mp io sq n
    pw="$(repl_password)"
    fp="$(fingerprint "replica" "$PRIMARY_ADDRESS" "$PRIMARY_PORT" "$REPLICATION_USER" "$pw")"
    st="$(slave_status_local)"
    mh="$(slave_field Master_Host "$st")"; mp="$(slave_field Master_Port "$st")"
    io="$(slave_field Slave_IO_Running "$st")"; sq="$(slave_field Slave_SQL_Running "$st")"
    if [ "$(cat "$replmark" 2>/dev/null)" = "$fp" ] && [ "$mh" = "$PRIMARY_ADDRESS" ] && [ "$mp" = "$PRIMARY_PORT" ]; then
        if [ "$io" = No ] || [ "$sq" = No ]; then
            echo "replication from $mh:$mp is set up but stopped (io=$io sql=$sq): starting it"
            sql_local -e 'START SLAVE'
        else
            echo "already replicating from $mh:$mp (io=$io sql=$sq)"
        fi
    else
        echo "pointing replication at $PRIMARY_ADDRESS:$PRIMARY_PORT${mh:+ (was $mh:$mp)}"
        sql_local <<SQL
STOP SLAVE;
CHANGE MASTER TO MASTER_HOST=$(sql_str "$PRIMARY_ADDRESS"), MASTER_PORT=$PRIMARY_PORT,
  MASTER_USER=$(sql_str "$REPLICATION_USER"), MASTER_PASSWORD=$(sql_str "$pw"),
  MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=5;
START SLAVE;
SQL
        echo "$fp" > "$replmark"
    fi
    n=0
    while [ $n -lt 120 ]; do  # up to 60 s for both threads to run
        st="$(slave_status_local)"
        io="$(slave_field Slave_IO_Running "$st")"; sq="$(slave_field Slave_SQL_Running "$st")"
        [ "$io" = Yes ] && [ "$sq" = Yes ] && { echo "replication running (io=Yes sql=Yes, gtid $(slave_field Gtid_IO_Pos "$st"))"; return 0; }
        sleep 0.5; n=$((n + 1))
    done
    echo "replication from $PRIMARY_ADDRESS:$PRIMARY_PORT does not run: io=$io sql=$sq" >&2
    echo "Last_IO_Error: $(slave_field Last_IO_Error "$st")" >&2
    echo "Last_SQL_Error: $(slave_field Last_SQL_Error "$st")" >&2
    exit 1
}

do_start() {
    mariadbd_bin >/dev/null || { echo "mariadb is not installed; run install first" >&2; exit 1; }
    [ -f "$conf" ] || { echo "$conf is missing; run configure first" >&2; exit 1; }
    load_env
    REPLICATION_USER="${REPLICATION_USER:?missing in $envfile}"
    if bm_daemon_running && alive; then
        bm_log "already running (pid $(bm_daemon_pid))"
    else
        init_datadir
        mkdir -p "$rundir" "$BM_UNIT/tmp"
        server_opts
        # mariadbd rewrites the pid file with the same pid. Crash recovery can take a while.
        bm_daemon_spawn "$(mariadbd_bin)" "${opts[@]}" --server-id="$SERVER_ID"
        bm_daemon_wait 120 alive ||
            bm_die_log "$BM_DAEMON_LOG" "$BM_NAME did not come up on $sock / $BM_ADDRESS:$PORT"
        bm_log "started (pid $(bm_daemon_pid)) on $BM_ADDRESS:$PORT as $ROLE, server-id $SERVER_ID"
    fi
    case "$ROLE" in
        mariadb_primary) ensure_primary ;;
        mariadb_replica) ensure_replica ;;
        *) echo "unknown role '$ROLE' in $envfile" >&2; exit 1 ;;
    esac
}

do_check() {
    bm_have mariadb || { echo "check failed: the mariadb client is not installed" >&2; exit 1; }
    REPLICATION_USER="$(bm_ctx_value replication_user)"
    [ -n "$REPLICATION_USER" ] || { echo "check failed: replication_user is not in the context" >&2; exit 1; }
    REPL_PW="$(repl_password)"
    local primary pport replicas=()
    primary="$(bm_ctx_endpoints peers.replication configs.port mariadb_primary | tail -n 1)"
    [ -n "$primary" ] || { echo "check failed: no mariadb_primary in peers.replication" >&2; exit 1; }
    pport="${primary##*:}" primary="${primary%:*}"
    mapfile -t replicas < <(bm_ctx_endpoints peers.replication configs.port mariadb_replica)

    local token out
    token="$BM_HOST-$(date +%s%N)-$$-$RANDOM"
    out="$(sql_remote "$primary" "$pport" -N 2>&1 <<SQL
CREATE DATABASE IF NOT EXISTS bigmgr_check;
CREATE TABLE IF NOT EXISTS bigmgr_check.probe (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  token VARCHAR(128) NOT NULL,
  host VARCHAR(255) NOT NULL,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  KEY (token)
) ENGINE=InnoDB;
DELETE FROM bigmgr_check.probe WHERE created < NOW() - INTERVAL 1 DAY;
INSERT INTO bigmgr_check.probe (token, host) VALUES ($(sql_str "$token"), $(sql_str "$BM_HOST"));
SELECT COUNT(*) FROM bigmgr_check.probe WHERE token = $(sql_str "$token");
SQL
)" || { echo "check failed: writing on the primary $primary:$pport: $out" >&2; exit 1; }
    [ "$(tail -n1 <<<"$out")" = 1 ] || { echo "check failed: the primary does not read back its row: $out" >&2; exit 1; }
    echo "primary $primary:$pport: inserted token $token into bigmgr_check.probe"

    local r ra rp n got st io sq mh failed=0
    for r in "${replicas[@]+"${replicas[@]}"}"; do
        ra="${r%:*}"; rp="${r##*:}"
        n=0; got=""
        while [ $n -lt 60 ]; do  # up to 30 s for the row to arrive
            got="$(sql_remote "$ra" "$rp" -N -e "SELECT COUNT(*) FROM bigmgr_check.probe WHERE token = $(sql_str "$token")" 2>&1 || true)"
            [ "$got" = 1 ] && break
            sleep 0.5; n=$((n + 1))
        done
        if [ "$got" != 1 ]; then
            echo "check failed: replica $ra:$rp does not have the row after 30s: $got" >&2
            failed=1; continue
        fi
        st="$(sql_remote "$ra" "$rp" -e 'SHOW SLAVE STATUS\G' 2>&1)" || {
            echo "check failed: SHOW SLAVE STATUS on $ra:$rp: $st" >&2; failed=1; continue; }
        io="$(slave_field Slave_IO_Running "$st")"; sq="$(slave_field Slave_SQL_Running "$st")"
        mh="$(slave_field Master_Host "$st"):$(slave_field Master_Port "$st")"
        if [ "$io" != Yes ] || [ "$sq" != Yes ] || [ "$mh" != "$primary:$pport" ]; then
            echo "check failed: replica $ra:$rp: io=$io sql=$sq master=$mh (expected $primary:$pport)" >&2
            echo "  Last_IO_Error: $(slave_field Last_IO_Error "$st")" >&2
            echo "  Last_SQL_Error: $(slave_field Last_SQL_Error "$st")" >&2
            failed=1; continue
        fi
        echo "replica $ra:$rp: has the row; Slave_IO_Running=Yes Slave_SQL_Running=Yes from $mh"
    done
    [ $failed -eq 0 ] || exit 1
    echo "check passed: primary $primary:$pport and ${#replicas[@]} replica(s) replicate"
}

# replication: the `mariadb.replication` alert's check, on a replica. What the replica itself
# says (SHOW SLAVE STATUS over its socket), never what bigmgr expects: exit 0 when both threads
# run, 2 (CRITICAL) when not; the first line says why, with the primary it points at and the
# replica's last error.
do_replication() {
    load_env
    local st io sq mh err
    if ! st="$(slave_status_local 2>&1)"; then
        echo "replica $BM_ADDRESS:$PORT does not answer SHOW SLAVE STATUS: $(head -n1 <<<"$st")"
        exit 2
    fi
    if [ -z "$st" ]; then
        echo "not replicating: $BM_ADDRESS:$PORT has no replication set up (expected from ${PRIMARY_ADDRESS:-?}:${PRIMARY_PORT:-?})"
        exit 2
    fi
    io="$(slave_field Slave_IO_Running "$st")"; sq="$(slave_field Slave_SQL_Running "$st")"
    mh="$(slave_field Master_Host "$st"):$(slave_field Master_Port "$st")"
    if [ "$io" = Yes ] && [ "$sq" = Yes ]; then
        echo "replicating from primary $mh: Slave_IO_Running=Yes Slave_SQL_Running=Yes, $(slave_field Seconds_Behind_Master "$st") s behind"
        return 0
    fi
    err="$(slave_field Last_IO_Error "$st")"
    [ -n "$err" ] || err="$(slave_field Last_SQL_Error "$st")"
    echo "not replicating: Slave_IO_Running=$io Slave_SQL_Running=$sq from primary $mh${err:+: $err}"
    exit 2
}

do_remove() {
    bm_daemon_stop
    bm_unit_rm "$data" "$rundir" "$BM_UNIT/tmp" "$BM_UNIT/conf" "$BM_DAEMON_LOG" "$BM_PIDFILE" "$initmark" "$replmark" "$BM_UNIT/install-db.log"
    bm_log "removed from $BM_UNIT (the package stays installed)"
}

BM_COMMANDS="install configure start stop restart status check remove replication"
bm_main "${1:-}"
