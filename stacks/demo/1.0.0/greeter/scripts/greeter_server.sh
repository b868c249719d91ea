#!/bin/sh
# greeter_server: the demo stack's tiny daemon. It writes a heartbeat line with its greeting
# into the unit directory every few seconds, and keeps a pid file there.
#
# Usage: greeter_server.sh install|configure|start|stop|restart|status|check|remove
# Reads BIGMGR_UNIT_DIR (required), BIGMGR_HOST and BIGMGR_ADDRESS (optional).
# Every command is idempotent. status exits 0 if running, 3 if not (LSB).
set -eu

NAME=greeter
cmd="${1:-}"
unit="${BIGMGR_UNIT_DIR:?BIGMGR_UNIT_DIR is not set}"
case "$unit" in "" | "/") echo "refusing to use unit dir '$unit'" >&2; exit 2 ;; esac
pidfile="$unit/$NAME.pid"
log="$unit/$NAME.log"
runconf="$unit/$NAME.run"

running() {
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

nap() { sleep 0.2 2>/dev/null || sleep 1; }

do_install() {
    mkdir -p "$unit"
    if [ -f "$unit/installed" ]; then echo "$NAME already installed"; return 0; fi
    echo "$NAME 1.0.0 installed on ${BIGMGR_HOST:-$(hostname)}" > "$unit/installed"
    echo "$NAME installed in $unit"
}

do_configure() {
    [ -f "$unit/installed" ] || { echo "$NAME is not installed; run install first" >&2; exit 1; }
    greeting="greetings"
    interval=5
    # The agent renders conf/greeter.conf from the stack's template before running this script.
    if [ -f "$unit/conf/greeter.conf" ]; then
        g=$(sed -n 's/^greeting=//p' "$unit/conf/greeter.conf" | tail -n 1)
        i=$(sed -n 's/^interval=//p' "$unit/conf/greeter.conf" | tail -n 1)
        [ -n "$g" ] && greeting="$g"
        case "$i" in "" | *[!0-9]*) ;; *) interval="$i" ;; esac
    fi
    tmp="$runconf.tmp.$$"
    {
        echo "greeting=$greeting"
        echo "interval=$interval"
        echo "host=${BIGMGR_HOST:-$(hostname)}"
        echo "address=${BIGMGR_ADDRESS:-127.0.0.1}"
    } > "$tmp"
    mv "$tmp" "$runconf"
    echo "$NAME configured: $(tr '\n' ' ' < "$runconf")"
}

do_start() {
    if running; then echo "$NAME already running (pid $(cat "$pidfile"))"; return 0; fi
    [ -f "$unit/installed" ] || { echo "$NAME is not installed; run install first" >&2; exit 1; }
    [ -f "$runconf" ] || do_configure
    rm -f "$pidfile"
    # The daemon writes its own pid, so it is right however it was detached.
    detach=""
    command -v setsid >/dev/null 2>&1 && detach="setsid"
    $detach nohup sh -c '
        echo $$ > "$1"
        greeting=$(sed -n "s/^greeting=//p" "$2")
        interval=$(sed -n "s/^interval=//p" "$2")
        child=""
        trap "[ -n \"\$child\" ] && kill \$child 2>/dev/null; exit 0" TERM INT
        while :; do
            echo "$(date +%s) $greeting" > "$3.tmp" && mv "$3.tmp" "$3"
            sleep "${interval:-5}" & child=$!
            wait $child || true
        done
    ' "$NAME-daemon" "$pidfile" "$runconf" "$unit/heartbeat" </dev/null >>"$log" 2>&1 &
    n=0
    while [ $n -lt 50 ]; do
        if running; then echo "$NAME started (pid $(cat "$pidfile"))"; return 0; fi
        nap; n=$((n + 1))
    done
    echo "$NAME did not start; see $log" >&2
    exit 1
}

do_stop() {
    if ! running; then rm -f "$pidfile"; echo "$NAME already stopped"; return 0; fi
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    n=0
    while [ $n -lt 50 ] && kill -0 "$pid" 2>/dev/null; do nap; n=$((n + 1)); done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
    echo "$NAME stopped (was pid $pid)"
}

do_status() {
    if running; then echo "$NAME is running (pid $(cat "$pidfile"))"; exit 0; fi
    echo "$NAME is not running"
    exit 3
}

do_check() {
    running || { echo "check failed: $NAME is not running" >&2; exit 1; }
    n=0
    while [ ! -s "$unit/heartbeat" ] && [ $n -lt 25 ]; do nap; n=$((n + 1)); done
    [ -s "$unit/heartbeat" ] || { echo "check failed: $NAME wrote no heartbeat" >&2; exit 1; }
    echo "check passed: $NAME pid $(cat "$pidfile") says: $(cat "$unit/heartbeat")"
}

do_remove() {
    do_stop
    rm -rf "$unit"/* "$unit"/.[!.]* "$unit"/..?*
    echo "$NAME removed from $unit"
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
