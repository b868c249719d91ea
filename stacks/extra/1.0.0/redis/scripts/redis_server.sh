#!/bin/bash
# redis_server.sh: one Redis unit (the primary or a replica) of the extra stack's redis service.
# The unit runs its own redis-server bound to BIGMGR_ADDRESS, with its data, log and pid file
# under BIGMGR_UNIT_DIR; a replica follows the primary through `replicaof` in its rendered
# conf/redis.conf (built from peers.replication).
#
# Usage: redis_server.sh install|configure|start|stop|restart|status|check|remove|replication
# Environment: BIGMGR_UNIT_DIR (required), BIGMGR_ADDRESS, BIGMGR_HOST, BIGMGR_CONTEXT (JSON file
# whose field `context` is the template context: properties, peers.replication …), BIGMGR_LIB
# (the stack library: bm_* functions, docs/stacks.md).
# Files rendered by bigmgr before `configure`: conf/redis.conf, conf/redis.env.
# Every command is idempotent. status exits 0 if running, 3 if not (LSB).
# check (run once, on one unit): writes a unique key on the primary, reads it back from every
# replica, and checks every replica's link to the primary is up.
# replication (a replica's `redis.replication` alert): exit 0 if its link to the primary is up,
# 2 if not; the first line of output says which, naming the primary it points at.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

bm_init redis
BM_LOG_PREFIX="redis "
conf="$BM_UNIT/conf/redis.conf"
envfile="$BM_UNIT/conf/redis.env"
data="$BM_UNIT/data"

# title: what tells this unit's server from any other process (a recycled pid included):
# redis-server names itself "redis-server ADDRESS:PORT" (its process title), PORT being
# conf/redis.env's; without that file (before configure, after remove) the name has to do.
title() {
    local port=""
    if [ -f "$envfile" ]; then
        # shellcheck disable=SC1090
        port="$(. "$envfile" && printf '%s' "${PORT:-}")" || port=""
    fi
    if [ -n "$port" ]; then echo "$BM_ADDRESS:$port"; else echo redis-server; fi
}

# The server writes its own pid file and log. redis saves (if configured) and exits on TERM:
# stop gives it 60 s. stop and status are the library's (bm_daemon_stop, bm_daemon_status).
bm_daemon "$BM_UNIT/redis.pid" "$BM_UNIT/redis.log" "$(title)" 60

load_env() {
    [ -f "$envfile" ] || { echo "$envfile is missing; run configure first" >&2; exit 1; }
    # shellcheck disable=SC1090
    . "$envfile"
    PORT="${PORT:?PORT is not set in $envfile}"
}

# Authentication for redis-cli without putting the password on the command line.
setup_auth() {
    local pass
    pass="$(bm_ctx_value requirepass)"
    if [ -n "$pass" ]; then export REDISCLI_AUTH="$pass"; else unset REDISCLI_AUTH; fi
}

rcli() { # rcli ADDRESS PORT ARGS…
    local a="$1" p="$2"; shift 2
    redis-cli --no-auth-warning -h "$a" -p "$p" "$@"
}

# pong ADDRESS PORT: the server there answers PING (the last answer is in $reply).
pong() {
    reply="$(rcli "$1" "$2" ping 2>/dev/null || true)"
    [ "$reply" = "PONG" ]
}

# --- packages ------------------------------------------------------------------------------
do_install() {
    mkdir -p "$BM_UNIT"
    if bm_have dpkg-query apt-get; then
        bm_software redis
        # The package may have started its own system-wide redis-server: units run their own
        # daemons, so stop and disable the packaged service (only when we installed it).
        case " $BM_PKG_NEW " in *" redis-server "*) bm_quiet_service redis-server 1 ;; esac
    elif ! bm_have redis-server && { bm_have dnf || bm_have yum; }; then
        bm_pkg_install redis
    fi
    bm_have redis-server redis-cli || { echo "redis-server/redis-cli not found after install" >&2; exit 1; }
    mkdir -p "$data"
    bm_log "installed for unit $BM_UNIT ($(redis-server --version | head -n1))"
}

do_configure() {
    bm_have redis-server || { echo "redis is not installed; run install first" >&2; exit 1; }
    [ -f "$conf" ] || { echo "$conf is missing: bigmgr renders it before configure" >&2; exit 1; }
    load_env
    mkdir -p "$data"
    chmod 700 "$BM_UNIT/conf" 2>/dev/null || true
    chmod 600 "$conf" "$envfile" 2>/dev/null || true  # may hold requirepass
    local from=""
    [ "${ROLE:-}" = redis_replica ] && from=", replicating from ${PRIMARY_ADDRESS:-?}:${PRIMARY_PORT:-?}"
    bm_log "configured: ${ROLE:-?} on ${ADDRESS:-$BM_ADDRESS}:$PORT$from"
}

do_start() {
    bm_already_running && return 0
    bm_have redis-server || { echo "redis is not installed; run install first" >&2; exit 1; }
    [ -f "$conf" ] || { echo "$conf is missing; run configure first" >&2; exit 1; }
    load_env
    setup_auth
    mkdir -p "$data"
    rm -f "$BM_PIDFILE"
    # redis-server daemonizes itself and writes the pid file; paths always follow the real
    # unit directory whatever the template rendered.
    # shellcheck disable=SC2094 # redis-server appends to its log itself once it runs
    (cd "$data" && redis-server "$conf" --daemonize yes --bind "$BM_ADDRESS" --port "$PORT" \
        --dir "$data" --pidfile "$BM_PIDFILE" --logfile "$BM_DAEMON_LOG" </dev/null >>"$BM_DAEMON_LOG" 2>&1) ||
        bm_die_log "$BM_DAEMON_LOG" "$BM_NAME failed to start"
    reply=""
    bm_daemon_wait 30 pong "$BM_ADDRESS" "$PORT" ||
        bm_die_log "$BM_DAEMON_LOG" "$BM_NAME did not answer PING on $BM_ADDRESS:$PORT within 30s (last reply: ${reply:-none})"
    bm_log "started (pid $(bm_daemon_pid)) on $BM_ADDRESS:$PORT as ${ROLE:-?}"
}

do_check() {
    bm_have redis-cli || { echo "check failed: redis-cli is not installed" >&2; exit 1; }
    setup_auth
    local primary pport replicas=()
    primary="$(bm_ctx_endpoints peers.replication configs.port redis_primary | tail -n 1)"
    [ -n "$primary" ] || { echo "check failed: no redis_primary in peers.replication" >&2; exit 1; }
    pport="${primary##*:}" primary="${primary%:*}"
    mapfile -t replicas < <(bm_ctx_endpoints peers.replication configs.port redis_replica)

    local key val got
    key="bigmgr:check:$BM_HOST:$(date +%s%N):$$:$RANDOM"
    val="ok-$RANDOM$RANDOM"
    got="$(rcli "$primary" "$pport" set "$key" "$val" EX 600 2>&1)" || true
    [ "$got" = "OK" ] || { echo "check failed: SET on primary $primary:$pport answered: $got" >&2; exit 1; }
    got="$(rcli "$primary" "$pport" get "$key" 2>&1)" || true
    [ "$got" = "$val" ] || { echo "check failed: GET on primary $primary:$pport answered: $got" >&2; exit 1; }
    echo "primary $primary:$pport: wrote $key"

    local r ra rp n info failed=0
    for r in "${replicas[@]+"${replicas[@]}"}"; do
        ra="${r%:*}"; rp="${r##*:}"
        got="$(rcli "$ra" "$rp" ping 2>&1 || true)"
        if [ "$got" != "PONG" ]; then
            echo "check failed: replica $ra:$rp does not answer PING: $got" >&2
            failed=1; continue
        fi
        n=0; got=""
        while [ $n -lt 60 ]; do  # up to 30 s for the key to arrive
            got="$(rcli "$ra" "$rp" get "$key" 2>/dev/null || true)"
            [ "$got" = "$val" ] && break
            sleep 0.5; n=$((n + 1))
        done
        if [ "$got" != "$val" ]; then
            echo "check failed: replica $ra:$rp does not have $key after 30s (got '${got}')" >&2
            failed=1; continue
        fi
        info="$(rcli "$ra" "$rp" info replication 2>&1 | tr -d '\r')" || true
        if ! grep -qx 'master_link_status:up' <<<"$info"; then
            echo "check failed: replica $ra:$rp: master_link_status is not up:" >&2
            grep -E '^(role|master_host|master_port|master_link_status)' <<<"$info" >&2 || echo "$info" >&2
            failed=1; continue
        fi
        if ! grep -qx "master_host:$primary" <<<"$info" || ! grep -qx "master_port:$pport" <<<"$info"; then
            echo "check failed: replica $ra:$rp follows $(grep -E '^master_(host|port):' <<<"$info" | tr '\n' ' ')instead of $primary:$pport" >&2
            failed=1; continue
        fi
        echo "replica $ra:$rp: has the key, master_link_status:up"
    done
    rcli "$primary" "$pport" del "$key" >/dev/null 2>&1 || true
    [ $failed -eq 0 ] || exit 1
    echo "check passed: primary $primary:$pport and ${#replicas[@]} replica(s) replicate"
}

# replication: the `redis.replication` alert's check, on a replica. What the replica itself
# says (INFO replication), never what bigmgr expects: exit 0 when it follows the primary of its
# conf/redis.env with master_link_status:up, 2 (CRITICAL) when not; the first line says why.
do_replication() {
    load_env
    setup_auth
    local info role mhost mport link down
    if ! info="$(rcli "$BM_ADDRESS" "$PORT" info replication 2>&1 | tr -d '\r')" || ! grep -q '^role:' <<<"$info"; then
        echo "replica $BM_ADDRESS:$PORT does not answer INFO replication: $(head -n1 <<<"$info")"
        exit 2
    fi
    field() { sed -n "s/^$1://p" <<<"$info" | head -n1; }
    role="$(field role)" mhost="$(field master_host)" mport="$(field master_port)"
    link="$(field master_link_status)" down="$(field master_link_down_since_seconds)"
    if [ "$role" != slave ]; then
        echo "not replicating: $BM_ADDRESS:$PORT is a $role, not a replica of ${PRIMARY_ADDRESS:-?}:${PRIMARY_PORT:-?}"
        exit 2
    fi
    if [ "$mhost:$mport" != "${PRIMARY_ADDRESS:-}:${PRIMARY_PORT:-}" ]; then
        echo "not replicating from the primary: $BM_ADDRESS:$PORT follows $mhost:$mport instead of ${PRIMARY_ADDRESS:-?}:${PRIMARY_PORT:-?}"
        exit 2
    fi
    [ "$down" = -1 ] && down=""  # never up since it started
    if [ "$link" != up ]; then
        echo "not replicating: master_link_status:$link from primary $mhost:$mport${down:+ (down for $down s)}"
        exit 2
    fi
    echo "replicating from primary $mhost:$mport: master_link_status:up"
}

do_remove() {
    bm_daemon_stop
    bm_unit_rm "$data" "$BM_UNIT/conf" "$BM_DAEMON_LOG" "$BM_PIDFILE"
    bm_log "removed from $BM_UNIT (the package stays installed)"
}

BM_COMMANDS="install configure start stop restart status check remove replication"
bm_main "${1:-}"
