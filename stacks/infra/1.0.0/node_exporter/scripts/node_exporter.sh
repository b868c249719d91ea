#!/bin/bash
# node_exporter: the Prometheus node exporter of one host, run as this unit's own daemon.
#
# Usage: node_exporter.sh install|configure|start|stop|restart|status|check|remove
#
# Environment (set by the bigmgr agent):
#   BIGMGR_UNIT_DIR  the unit's directory (required); it holds the rendered
#                    conf/node_exporter.env, the log (logs/node_exporter.log), the textfile
#                    collector's directory (textfile/) and the pid file (node_exporter.pid)
#   BIGMGR_ADDRESS   the address the exporter binds to
#   BIGMGR_HOST      the host's name, for messages
#   BIGMGR_CONTEXT   JSON file whose "context" holds peers.exporters: check asks every unit
#   BIGMGR_CHECK_TIMEOUT  optional; seconds check retries (default 30)
#
# Every command is idempotent. status exits 0 if the exporter runs, 3 if it does not.
# start returns once the exporter serves its metrics. check (run once, on one unit) fetches
# the metrics of every unit of peers.exporters and expects node_* series from each.
set -euo pipefail

NAME=node_exporter
cmd="${1:-}"
unit="${BIGMGR_UNIT_DIR:?BIGMGR_UNIT_DIR is not set}"
case "$unit" in "" | "/") echo "refusing to use unit dir '$unit'" >&2; exit 2 ;; esac
unit="${unit%/}"
address="${BIGMGR_ADDRESS:-127.0.0.1}"
host="${BIGMGR_HOST:-$(hostname)}"
conf="$unit/conf"
logs="$unit/logs"
pidfile="$unit/$NAME.pid"
logfile="$logs/$NAME.log"

log() { echo "$NAME[$host]: $*"; }
die() { echo "$NAME[$host]: $*" >&2; exit 1; }

# --- packages -------------------------------------------------------------------------------

pkg_installed() {
    local st
    if command -v dpkg-query >/dev/null 2>&1; then
        st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
        [ "$st" = "install ok installed" ]
    else
        rpm -q "$1" >/dev/null 2>&1
    fi
}

# Installs the packages that are missing; sets PKG_FRESH=1 if it installed any. Several
# units on one machine may install at once: they take turns on a lock, and the one that
# comes second finds the package installed.
PKG_FRESH=0
pkg_install() {
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    (
        flock -w 1200 9 || { echo "timed out waiting for /var/lock/bigmgr-pkg.lock" >&2; exit 1; }
        missing=()
        for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
        [ ${#missing[@]} -eq 0 ] && exit 0
        log "installing ${missing[*]}"
        if command -v apt-get >/dev/null 2>&1; then
            export DEBIAN_FRONTEND=noninteractive
            apt_opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
            apt-get install "${apt_opts[@]}" "${missing[@]}" ||
                { apt-get update -q -o DPkg::Lock::Timeout=600 && apt-get install "${apt_opts[@]}" "${missing[@]}"; }
        elif command -v dnf >/dev/null 2>&1; then
            dnf install -y -q "${missing[@]}"
        elif command -v yum >/dev/null 2>&1; then
            yum install -y -q "${missing[@]}"
        else
            echo "no known package manager (apt-get, dnf, yum) to install ${missing[*]}" >&2
            exit 1
        fi
    ) 9>/var/lock/bigmgr-pkg.lock || die "installing $* failed"
    PKG_FRESH=1
}

# The package's own daemon listens on *:9100, which would take the port from every unit on
# the machine: stop it if it runs, and disable it if it ran or was just installed. Only the
# init system is asked; no process is killed by name.
quiet_system_service() {
    local svc="$1" fresh="$2" was_active=0
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet "$svc" 2>/dev/null; then
            was_active=1; log "stopping the package's own $svc service"
            systemctl stop "$svc" || true
        fi
        if [ $was_active = 1 ] || [ "$fresh" = 1 ]; then
            systemctl is-enabled --quiet "$svc" 2>/dev/null && systemctl disable "$svc" 2>/dev/null || true
        fi
    elif [ -x "/etc/init.d/$svc" ]; then
        if service "$svc" status >/dev/null 2>&1; then
            was_active=1; log "stopping the package's own $svc service"
            service "$svc" stop || true
        fi
        if [ $was_active = 1 ] || [ "$fresh" = 1 ]; then
            if command -v update-rc.d >/dev/null 2>&1; then update-rc.d "$svc" disable >/dev/null 2>&1 || true
            elif command -v chkconfig >/dev/null 2>&1; then chkconfig "$svc" off >/dev/null 2>&1 || true; fi
        fi
    fi
}

# --- the daemon -----------------------------------------------------------------------------

exporter_bin() {
    local c
    for c in /usr/bin/prometheus-node-exporter /usr/bin/node_exporter /usr/local/bin/node_exporter; do
        [ -x "$c" ] && { echo "$c"; return 0; }
    done
    return 1
}

# Running means: the pid file names a live process whose command line names this unit's
# textfile directory (so a recycled pid is never mistaken for it).
running() {
    local pid cmdline
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    case "$pid" in "" | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *"--collector.textfile.directory=$unit/textfile "* ]]
}

# port_holders ADDRESS PORT: what already listens on ADDRESS:PORT or on the wildcard address
# (empty if nothing, or if ss is not available).
port_holders() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -Hltnp "sport = :$2" 2>/dev/null | awk -v a="$1:$2" -v p=":$2" \
        '$4 == a || $4 == "0.0.0.0" p || $4 == "*" p || $4 == "[::]" p { print $4, $6 }' || true
}

load_env() {
    [ -f "$conf/node_exporter.env" ] || die "$conf/node_exporter.env is missing (it is rendered by bigmgr before configure)"
    METRICS_PORT=9100 METRICS_PATH=/metrics EXTRA_ARGS=""
    # shellcheck disable=SC1091
    . "$conf/node_exporter.env"
    case "$METRICS_PATH" in /*) ;; *) METRICS_PATH="/$METRICS_PATH" ;; esac
}

# has_node_metrics URL: the URL serves node_* series.
has_node_metrics() {
    local body
    body=$(curl -sf --max-time 5 "$1" 2>/dev/null) || return 1
    [[ "$body" == *$'\n'node_* ]]
}

# --- commands -------------------------------------------------------------------------------

do_install() {
    mkdir -p "$unit"
    if command -v dpkg-query >/dev/null 2>&1; then
        pkg_install prometheus-node-exporter curl
    else
        pkg_install node_exporter curl
    fi
    quiet_system_service prometheus-node-exporter "$PKG_FRESH"
    quiet_system_service node_exporter "$PKG_FRESH"
    exporter_bin >/dev/null || die "no node exporter binary found after installing it"
    log "installed ($(exporter_bin))"
}

do_configure() {
    load_env
    mkdir -p "$logs" "$unit/textfile"
    log "configured: metrics on http://$address:$METRICS_PORT$METRICS_PATH${EXTRA_ARGS:+, extra flags: $EXTRA_ARGS}"
}

do_start() {
    if running; then log "already running (pid $(cat "$pidfile"))"; return 0; fi
    local bin holders url
    bin=$(exporter_bin) || die "the node exporter is not installed; run install first"
    load_env
    mkdir -p "$logs" "$unit/textfile"
    holders=$(port_holders "$address" "$METRICS_PORT")
    [ -z "$holders" ] || die "cannot start: $address:$METRICS_PORT is already in use by another process: $holders"
    rm -f "$pidfile"
    # The launcher writes its own pid and then becomes the exporter.
    # shellcheck disable=SC2086
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' node-exporter-launch "$pidfile" \
        "$bin" --web.listen-address="$address:$METRICS_PORT" --web.telemetry-path="$METRICS_PATH" \
        --collector.textfile.directory="$unit/textfile" $EXTRA_ARGS \
        </dev/null >>"$logfile" 2>&1 &
    url="http://$address:$METRICS_PORT$METRICS_PATH"
    local deadline=$((SECONDS + 45))
    while [ $SECONDS -lt $deadline ]; do
        if [ -s "$pidfile" ] && ! running; then
            sleep 0.2
            running || { echo "$NAME: the exporter exited during startup; last lines of $logfile:" >&2; tail -n 30 "$logfile" >&2; exit 1; }
        fi
        if running && has_node_metrics "$url"; then
            log "started (pid $(cat "$pidfile")), serving $url"
            return 0
        fi
        sleep 0.2
    done
    echo "$NAME: the exporter did not serve $url within 45 s; last lines of $logfile:" >&2
    tail -n 30 "$logfile" >&2 || true
    do_stop >&2 || true
    exit 1
}

do_stop() {
    if ! running; then rm -f "$pidfile"; log "already stopped"; return 0; fi
    local pid n=0
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    while [ $n -lt 100 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.2; n=$((n + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop within 20 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        n=0; while [ $n -lt 50 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; n=$((n + 1)); done
    fi
    rm -f "$pidfile"
    log "stopped (was pid $pid)"
}

do_status() {
    if running; then log "running (pid $(cat "$pidfile"))"; exit 0; fi
    log "not running"
    exit 3
}

# The exporters to ask, one "host url" a line: peers.exporters of the context, else this unit.
exporters() {
    if [ -n "${BIGMGR_CONTEXT:-}" ] && [ -f "$BIGMGR_CONTEXT" ]; then
        python3 -c '
import json, sys
ctx = json.load(open(sys.argv[1]))["context"]
for u in ctx["peers"]["exporters"]:
    c = u["configs"]
    path = c.get("metrics_path") or "/metrics"
    if not path.startswith("/"):
        path = "/" + path
    print(u["host"], "http://%s:%s%s" % (u["address"], c["metrics_port"], path))
' "$BIGMGR_CONTEXT"
    else
        load_env
        echo "$host http://$address:$METRICS_PORT$METRICS_PATH"
    fi
}

do_check() {
    local list n timeout deadline failed h url
    list=$(exporters)
    n=$(printf '%s\n' "$list" | grep -c . || true)
    [ "$n" -gt 0 ] || die "check failed: no node_exporter units in peers.exporters"
    timeout="${BIGMGR_CHECK_TIMEOUT:-30}"
    deadline=$((SECONDS + timeout))
    while :; do
        failed=""
        while read -r h url; do
            has_node_metrics "$url" </dev/null || failed="$failed $h($url)"
        done <<<"$list"
        if [ -z "$failed" ]; then
            log "check passed: $n exporter(s) serve node metrics"
            printf '%s\n' "$list" | sed 's/^/  /'
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$NAME: check failed after ${timeout} s: no node_* metrics from:$failed" >&2
            exit 1
        fi
        sleep 1
    done
}

do_remove() {
    do_stop
    rm -rf "${unit:?}/conf" "${unit:?}/logs" "${unit:?}/textfile" "$pidfile"
    log "removed the exporter's files from $unit (the package stays)"
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
