#!/bin/sh
# hello_server: the demo stack's tiny daemon. It writes a heartbeat line with its greeting
# into the unit directory every few seconds, and keeps a pid file there.
#
# Usage: hello_server.sh install|configure|start|stop|restart|status|check|remove
# Reads BIGMGR_UNIT_DIR (required), BIGMGR_HOST and BIGMGR_ADDRESS (optional), and BIGMGR_LIB:
# the stack library the agent gives every script (bm_* functions, see docs/stacks.md).
# Every command is idempotent. status exits 0 if running, 3 if not (LSB).
set -eu
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

NAME=hello
bm_init "$NAME"
BM_LOG_PREFIX="$NAME "
unit="$BM_UNIT"
pidfile="$unit/$NAME.pid"
log="$unit/$NAME.log"
runconf="$unit/$NAME.run"

# The daemon is the process whose command line names this unit's $runconf.
running() { bm_running "$pidfile" "$runconf"; }

do_install() {
    mkdir -p "$unit"
    if [ -f "$unit/installed" ]; then bm_log "already installed"; return 0; fi
    echo "$NAME 1.0.0 installed on $BM_HOST" > "$unit/installed"
    bm_log "installed in $unit"
}

do_configure() {
    [ -f "$unit/installed" ] || bm_die "is not installed; run install first"
    greeting="hello"
    interval=5
    # The agent renders conf/hello.conf from the stack's template before running this script.
    if [ -f "$unit/conf/hello.conf" ]; then
        g=$(sed -n 's/^greeting=//p' "$unit/conf/hello.conf" | tail -n 1)
        i=$(sed -n 's/^interval=//p' "$unit/conf/hello.conf" | tail -n 1)
        [ -n "$g" ] && greeting="$g"
        case "$i" in "" | *[!0-9]*) ;; *) interval="$i" ;; esac
    fi
    printf 'greeting=%s\ninterval=%s\nhost=%s\naddress=%s\n' \
        "$greeting" "$interval" "$BM_HOST" "$BM_ADDRESS" | bm_write "$runconf"
    bm_log "configured: $(tr '\n' ' ' < "$runconf")"
}

do_start() {
    if running; then bm_log "already running (pid $(cat "$pidfile"))"; return 0; fi
    [ -f "$unit/installed" ] || bm_die "is not installed; run install first"
    [ -f "$runconf" ] || do_configure
    # shellcheck disable=SC2016 # the daemon's own script: $1 and $2 are its arguments
    bm_spawn "$pidfile" "$log" sh -c '
        greeting=$(sed -n "s/^greeting=//p" "$1")
        interval=$(sed -n "s/^interval=//p" "$1")
        child=""
        trap "[ -n \"\$child\" ] && kill \$child 2>/dev/null; exit 0" TERM INT
        while :; do
            echo "$(date +%s) $greeting" > "$2.tmp" && mv "$2.tmp" "$2"
            sleep "${interval:-5}" & child=$!
            wait $child || true
        done
    ' "$NAME-daemon" "$runconf" "$unit/heartbeat"
    bm_wait_started "$pidfile" "$runconf" 10 true || bm_die "did not start; see $log"
    bm_log "started (pid $(cat "$pidfile"))"
}

do_stop() { bm_stop "$pidfile" "$runconf" 10; }

do_status() {
    if running; then bm_log "is running (pid $(cat "$pidfile"))"; exit 0; fi
    bm_log "is not running"
    exit 3
}

do_check() {
    running || { echo "check failed: $NAME is not running" >&2; exit 1; }
    bm_wait 5 test -s "$unit/heartbeat" || { echo "check failed: $NAME wrote no heartbeat" >&2; exit 1; }
    echo "check passed: $NAME pid $(cat "$pidfile") says: $(cat "$unit/heartbeat")"
}

do_remove() {
    do_stop
    bm_unit_clear
    bm_log "removed from $unit"
}

bm_main "${1:-}"
