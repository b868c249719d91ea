#!/bin/bash
# redis_server.sh: one Redis unit (the primary or a replica) of the extra stack's redis service.
# The unit runs its own redis-server bound to BIGMGR_ADDRESS, with its data, log and pid file
# under BIGMGR_UNIT_DIR; a replica follows the primary through `replicaof` in its rendered
# conf/redis.conf (built from peers.replication).
#
# Usage: redis_server.sh install|configure|start|stop|restart|status|check|remove
# Environment: BIGMGR_UNIT_DIR (required), BIGMGR_ADDRESS, BIGMGR_HOST, BIGMGR_CONTEXT (JSON file
# whose field `context` is the template context: properties, peers.replication …).
# Files rendered by bigmgr before `configure`: conf/redis.conf, conf/redis.env.
# Every command is idempotent. status exits 0 if running, 3 if not (LSB).
# check (run once, on one unit): writes a unique key on the primary, reads it back from every
# replica, and checks every replica's link to the primary is up.
set -euo pipefail

NAME=redis
cmd="${1:-}"
unit="${BIGMGR_UNIT_DIR:?BIGMGR_UNIT_DIR is not set}"
case "$unit" in "" | "/") echo "refusing to use unit dir '$unit'" >&2; exit 2 ;; esac
case "$unit" in /*) ;; *) unit="$PWD/$unit" ;; esac  # the daemons chdir: keep paths absolute
address="${BIGMGR_ADDRESS:-127.0.0.1}"
host="${BIGMGR_HOST:-$(hostname)}"
conf="$unit/conf/redis.conf"
envfile="$unit/conf/redis.env"
pidfile="$unit/redis.pid"
log="$unit/redis.log"
data="$unit/data"

log_tail() { [ -f "$log" ] && tail -n "${1:-30}" "$log" >&2 || true; }

# --- context -------------------------------------------------------------------------------
# ctx_value KEY: a top-level value of the template context (secrets included), '' if absent.
ctx_value() {
    [ -n "${BIGMGR_CONTEXT:-}" ] && [ -f "$BIGMGR_CONTEXT" ] || return 0
    python3 -c '
import json, sys
c = json.load(open(sys.argv[1])).get("context", {})
v = c.get(sys.argv[2])
if v is None: v = ""
elif isinstance(v, bool): v = "true" if v else "false"
print(v)' "$BIGMGR_CONTEXT" "$1"
}

# ctx_peers: one line per unit of peers.replication: component address port host
ctx_peers() {
    [ -n "${BIGMGR_CONTEXT:-}" ] && [ -f "$BIGMGR_CONTEXT" ] || {
        echo "BIGMGR_CONTEXT is not set or missing; cannot find the other units" >&2; return 1; }
    python3 -c '
import json, sys
c = json.load(open(sys.argv[1])).get("context", {})
for u in (c.get("peers") or {}).get("replication") or []:
    port = (u.get("configs") or {}).get("port", c.get("port", 6379))
    print(u["component"], u["address"], port, u.get("host", "-"))' "$BIGMGR_CONTEXT"
}

load_env() {
    [ -f "$envfile" ] || { echo "$envfile is missing; run configure first" >&2; exit 1; }
    # shellcheck disable=SC1090
    . "$envfile"
    PORT="${PORT:?PORT is not set in $envfile}"
}

# Authentication for redis-cli without putting the password on the command line.
setup_auth() {
    local pass
    pass="$(ctx_value requirepass)"
    if [ -n "$pass" ]; then export REDISCLI_AUTH="$pass"; else unset REDISCLI_AUTH; fi
}

rcli() { # rcli ADDRESS PORT ARGS…
    local a="$1" p="$2"; shift 2
    redis-cli --no-auth-warning -h "$a" -p "$p" "$@"
}

# --- process -------------------------------------------------------------------------------
running() {
    [ -f "$pidfile" ] || return 1
    local pid
    pid="$(cat "$pidfile" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: it must be a redis-server.
    grep -qa 'redis' "/proc/$pid/cmdline" 2>/dev/null || [ ! -d /proc ]
}

# --- packages ------------------------------------------------------------------------------
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

do_install() {
    mkdir -p "$unit"
    if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        local pkgs=(redis-server redis-tools) missing=() p
        for p in "${pkgs[@]}"; do pkg_installed "$p" || missing+=("$p"); done
        if [ ${#missing[@]} -gt 0 ]; then
            echo "installing ${missing[*]}"
            # One apt at a time on this machine, even with several units installing at once.
            flock -w 1200 /var/lock/bigmgr-pkg.lock bash -c '
                set -e
                for p in "$@"; do
                    dpkg-query -W -f="\${Status}" "$p" 2>/dev/null | grep -q "install ok installed" || todo+=("$p")
                done
                [ ${#todo[@]} -eq 0 ] && exit 0
                export DEBIAN_FRONTEND=noninteractive
                apt-get install -y -q -o DPkg::Lock::Timeout=600 "${todo[@]}" ||
                    { apt-get update -q -o DPkg::Lock::Timeout=600 &&
                      apt-get install -y -q -o DPkg::Lock::Timeout=600 "${todo[@]}"; }
            ' bigmgr-apt "${missing[@]}"
            # The package may have started its own system-wide redis-server: units run their
            # own daemons, so stop and disable the packaged service (only when we installed it).
            case " ${missing[*]} " in
                *" redis-server "*)
                    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
                        systemctl disable --now redis-server >/dev/null 2>&1 || true
                    elif command -v service >/dev/null 2>&1; then
                        service redis-server stop >/dev/null 2>&1 || true
                        command -v update-rc.d >/dev/null 2>&1 && update-rc.d redis-server disable >/dev/null 2>&1 || true
                    fi ;;
            esac
        fi
    elif command -v dnf >/dev/null 2>&1 || command -v yum >/dev/null 2>&1; then
        command -v redis-server >/dev/null 2>&1 ||
            flock -w 1200 /var/lock/bigmgr-pkg.lock "$(command -v dnf || command -v yum)" install -y redis
    fi
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || {
        echo "redis-server/redis-cli not found after install" >&2; exit 1; }
    mkdir -p "$data"
    echo "$NAME installed for unit $unit ($(redis-server --version | head -n1))"
}

do_configure() {
    command -v redis-server >/dev/null 2>&1 || { echo "redis is not installed; run install first" >&2; exit 1; }
    [ -f "$conf" ] || { echo "$conf is missing: bigmgr renders it before configure" >&2; exit 1; }
    load_env
    mkdir -p "$data"
    chmod 700 "$unit/conf" 2>/dev/null || true
    chmod 600 "$conf" "$envfile" 2>/dev/null || true  # may hold requirepass
    local from=""
    [ "${ROLE:-}" = redis_replica ] && from=", replicating from ${PRIMARY_ADDRESS:-?}:${PRIMARY_PORT:-?}"
    echo "$NAME configured: ${ROLE:-?} on ${ADDRESS:-$address}:$PORT$from"
}

do_start() {
    if running; then echo "$NAME already running (pid $(cat "$pidfile"))"; return 0; fi
    command -v redis-server >/dev/null 2>&1 || { echo "redis is not installed; run install first" >&2; exit 1; }
    [ -f "$conf" ] || { echo "$conf is missing; run configure first" >&2; exit 1; }
    load_env
    setup_auth
    mkdir -p "$data"
    rm -f "$pidfile"
    # redis-server daemonizes itself and writes the pid file; paths always follow the real
    # unit directory whatever the template rendered.
    (cd "$data" && redis-server "$conf" --daemonize yes --bind "$address" --port "$PORT" \
        --dir "$data" --pidfile "$pidfile" --logfile "$log" </dev/null >>"$log" 2>&1) || {
        echo "$NAME failed to start; last lines of $log:" >&2; log_tail; exit 1; }
    local n=0 reply=""
    while [ $n -lt 150 ]; do  # up to 30 s
        reply="$(rcli "$address" "$PORT" ping 2>/dev/null || true)"
        if [ "$reply" = "PONG" ] && running; then
            echo "$NAME started (pid $(cat "$pidfile")) on $address:$PORT as ${ROLE:-?}"
            return 0
        fi
        sleep 0.2; n=$((n + 1))
    done
    echo "$NAME did not answer PING on $address:$PORT within 30s (last reply: ${reply:-none}); last lines of $log:" >&2
    log_tail
    exit 1
}

do_stop() {
    if ! running; then rm -f "$pidfile"; echo "$NAME already stopped"; return 0; fi
    local pid n=0
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true  # redis saves (if configured) and exits on TERM
    while [ $n -lt 300 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.2; n=$((n + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$NAME pid $pid did not stop within 60s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
    echo "$NAME stopped (was pid $pid)"
}

do_status() {
    if running; then echo "$NAME is running (pid $(cat "$pidfile"))"; exit 0; fi
    echo "$NAME is not running"
    exit 3
}

do_check() {
    command -v redis-cli >/dev/null 2>&1 || { echo "check failed: redis-cli is not installed" >&2; exit 1; }
    setup_auth
    local peers primary="" pport="" replicas=() comp a p h
    peers="$(ctx_peers)"
    while read -r comp a p h; do
        [ -n "$comp" ] || continue
        case "$comp" in
            redis_primary) primary="$a"; pport="$p" ;;
            redis_replica) replicas+=("$a:$p") ;;
        esac
    done <<<"$peers"
    [ -n "$primary" ] || { echo "check failed: no redis_primary in peers.replication" >&2; exit 1; }

    local key val got
    key="bigmgr:check:$host:$(date +%s%N):$$:$RANDOM"
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

do_remove() {
    do_stop
    rm -rf "${unit:?}/data" "$unit/conf" "$log" "$pidfile"
    echo "$NAME removed from $unit (the package stays installed)"
}

case "$cmd" in
    install) do_install ;;
    configure) do_configure ;;
    start) do_start ;;
    stop) do_stop ;;
    restart) do_stop; do_start ;;
    status) do_status ;;
    check) do_check ;;
    remove) do_remove ;;
    *) echo "usage: $0 install|configure|start|stop|restart|status|check|remove (got '$cmd')" >&2; exit 2 ;;
esac
