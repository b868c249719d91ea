#!/bin/bash
# prometheus_server: a Prometheus server run as this unit's own daemon.
#
# Usage: prometheus_server.sh install|configure|start|stop|restart|status|check|remove
#
# Environment (set by the bigmgr agent):
#   BIGMGR_UNIT_DIR  the unit's directory (required); it holds the rendered conf/prometheus.yml
#                    and conf/prometheus.env, the time series database (data/), the log
#                    (logs/prometheus.log) and the pid file (prometheus_server.pid)
#   BIGMGR_ADDRESS   the address the web UI and API bind to
#   BIGMGR_HOST      the host's name, for messages
#   BIGMGR_CONTEXT   JSON file whose "context" holds relations.metrics: the units check expects
#                    as scrape targets
#   BIGMGR_CHECK_TIMEOUT  optional; seconds check waits (default 2 × scrape_interval + 15)
#
# Every command is idempotent. status exits 0 if the server runs, 3 if it does not.
# Prometheus reads its configuration at start, so restart (stop, start) applies a new
# prometheus.yml or new flags. start returns once /-/ready answers. check (run once) waits
# until the active targets of the related units are exactly relations.metrics
# (address:metrics_port) and every target, the server's own included, is up.
set -euo pipefail

NAME=prometheus_server
cmd="${1:-}"
unit="${BIGMGR_UNIT_DIR:?BIGMGR_UNIT_DIR is not set}"
case "$unit" in "" | "/") echo "refusing to use unit dir '$unit'" >&2; exit 2 ;; esac
unit="${unit%/}"
address="${BIGMGR_ADDRESS:-127.0.0.1}"
host="${BIGMGR_HOST:-$(hostname)}"
conf="$unit/conf"
data="$unit/data"
logs="$unit/logs"
pidfile="$unit/$NAME.pid"
logfile="$logs/prometheus.log"

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

# The package's own daemon listens on *:9090, which would take the port from the unit: stop
# it if it runs, and disable it if it ran or was just installed. Only the init system is
# asked; no process is killed by name.
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

prometheus_bin() {
    local c
    for c in /usr/bin/prometheus /usr/local/bin/prometheus; do
        [ -x "$c" ] && { echo "$c"; return 0; }
    done
    return 1
}

# Running means: the pid file names a live process whose command line names this unit's
# prometheus.yml (so a recycled pid is never mistaken for it).
running() {
    local pid cmdline
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    case "$pid" in "" | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *"--config.file=$conf/prometheus.yml "* ]]
}

# port_holders ADDRESS PORT: what already listens on ADDRESS:PORT or on the wildcard address
# (empty if nothing, or if ss is not available).
port_holders() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -Hltnp "sport = :$2" 2>/dev/null | awk -v a="$1:$2" -v p=":$2" \
        '$4 == a || $4 == "0.0.0.0" p || $4 == "*" p || $4 == "[::]" p { print $4, $6 }' || true
}

load_env() {
    [ -f "$conf/prometheus.env" ] || die "$conf/prometheus.env is missing (it is rendered by bigmgr before configure)"
    [ -f "$conf/prometheus.yml" ] || die "$conf/prometheus.yml is missing (it is rendered by bigmgr before configure)"
    PROM_PORT=9090 PROM_RETENTION=15d PROM_RETENTION_SIZE=0 PROM_SCRAPE_INTERVAL=15s PROM_EXTRA_ARGS=""
    # shellcheck disable=SC1091
    . "$conf/prometheus.env"
}

# --- commands -------------------------------------------------------------------------------

do_install() {
    mkdir -p "$unit"
    pkg_install prometheus curl
    quiet_system_service prometheus "$PKG_FRESH"
    prometheus_bin >/dev/null || die "no prometheus binary found after installing it"
    log "installed ($(prometheus_bin))"
}

do_configure() {
    load_env
    mkdir -p "$data" "$logs"
    if command -v promtool >/dev/null 2>&1; then
        local out
        out=$(promtool check config "$conf/prometheus.yml" 2>&1) ||
            die "prometheus.yml is not valid: $out"
    fi
    local targets
    targets=$(grep -c -- "- targets:" "$conf/prometheus.yml" || true)
    log "configured: http://$address:$PROM_PORT, $targets scrape target(s) every $PROM_SCRAPE_INTERVAL, retention $PROM_RETENTION"
}

do_start() {
    if running; then log "already running (pid $(cat "$pidfile"))"; return 0; fi
    local bin holders url size_flag=()
    bin=$(prometheus_bin) || die "prometheus is not installed; run install first"
    load_env
    mkdir -p "$data" "$logs"
    holders=$(port_holders "$address" "$PROM_PORT")
    [ -z "$holders" ] || die "cannot start: $address:$PROM_PORT is already in use by another process: $holders"
    case "$PROM_RETENTION_SIZE" in "" | 0 | 0B) ;; *) size_flag=(--storage.tsdb.retention.size="$PROM_RETENTION_SIZE") ;; esac
    rm -f "$pidfile"
    # The launcher writes its own pid and then becomes prometheus. The console templates of
    # the Debian package are used when present.
    local consoles=()
    [ -d /etc/prometheus/consoles ] && consoles+=(--web.console.templates=/etc/prometheus/consoles)
    [ -d /etc/prometheus/console_libraries ] && consoles+=(--web.console.libraries=/etc/prometheus/console_libraries)
    # shellcheck disable=SC2086
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' prometheus-launch "$pidfile" \
        "$bin" --config.file="$conf/prometheus.yml" --storage.tsdb.path="$data" \
        --storage.tsdb.retention.time="$PROM_RETENTION" "${size_flag[@]}" \
        --web.listen-address="$address:$PROM_PORT" --web.enable-lifecycle \
        "${consoles[@]}" $PROM_EXTRA_ARGS \
        </dev/null >>"$logfile" 2>&1 &
    url="http://$address:$PROM_PORT/-/ready"
    local deadline=$((SECONDS + 120))
    while [ $SECONDS -lt $deadline ]; do
        if [ -s "$pidfile" ] && ! running; then
            sleep 0.2
            running || { echo "$NAME: prometheus exited during startup; last lines of $logfile:" >&2; tail -n 30 "$logfile" >&2; exit 1; }
        fi
        if running && curl -sf --max-time 3 -o /dev/null "$url"; then
            log "started (pid $(cat "$pidfile")), serving http://$address:$PROM_PORT"
            return 0
        fi
        sleep 0.2
    done
    echo "$NAME: prometheus was not ready at $url within 120 s; last lines of $logfile:" >&2
    tail -n 30 "$logfile" >&2 || true
    do_stop >&2 || true
    exit 1
}

do_stop() {
    if ! running; then rm -f "$pidfile"; log "already stopped"; return 0; fi
    local pid n=0
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    # Prometheus flushes its head block on shutdown: give it time.
    while [ $n -lt 300 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.2; n=$((n + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop within 60 s; killing it"
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

do_check() {
    running || die "check failed: prometheus is not running"
    load_env
    [ -n "${BIGMGR_CONTEXT:-}" ] && [ -f "$BIGMGR_CONTEXT" ] ||
        die "check needs BIGMGR_CONTEXT (relations.metrics says which targets to expect)"
    python3 - "$BIGMGR_CONTEXT" "http://$address:$PROM_PORT" "$PROM_SCRAPE_INTERVAL" \
        "${BIGMGR_CHECK_TIMEOUT:-}" <<'EOF'
import json, re, sys, time, urllib.request

ctx = json.load(open(sys.argv[1]))["context"]
base, interval, timeout = sys.argv[2], sys.argv[3], sys.argv[4]


def seconds(d):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d)
    return sum(int(n) * units[u] for n, u in parts) or 15


timeout = float(timeout) if timeout else 2 * seconds(interval) + 15
expected = {"%s:%s" % (u["address"], u["configs"]["metrics_port"]) for u in ctx["relations"]["metrics"]}
deadline = time.monotonic() + timeout
while True:
    problems = []
    try:
        with urllib.request.urlopen(base + "/api/v1/targets?state=active", timeout=5) as r:
            active = json.load(r)["data"]["activeTargets"]
    except Exception as e:  # noqa: BLE001 - any failure is retried, then reported
        active = []
        problems.append("cannot read %s/api/v1/targets: %s" % (base, e))
    related = {}
    for t in active:
        inst = t["labels"].get("instance", "")
        if t["labels"].get("bigmgr_relation") == "metrics":
            related[inst] = t
        if t["health"] != "up":
            problems.append("%s (job %s) is %s%s" % (inst, t["labels"].get("job"), t["health"],
                                                     ": " + t["lastError"] if t.get("lastError") else ""))
    if not problems:
        if not any(t["labels"].get("job") == "prometheus" for t in active):
            problems.append("the server's own target is missing")
        missing = sorted(expected - set(related))
        extra = sorted(set(related) - expected)
        if missing:
            problems.append("targets not scraped yet (old configuration?): " + ", ".join(missing))
        if extra:
            problems.append("targets that are no longer related (old configuration?): " + ", ".join(extra))
    if not problems:
        print("prometheus_server: check passed: %d related target(s) up, and the server itself" % len(related))
        for inst in sorted(related):
            t = related[inst]
            print("  %s %s (job %s, host %s)" % (inst, t["health"], t["labels"].get("job"), t["labels"].get("host")))
        sys.exit(0)
    if time.monotonic() >= deadline:
        print("prometheus_server: check failed after %.0f s:" % timeout, file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    time.sleep(1)
EOF
}

do_remove() {
    do_stop
    rm -rf "${unit:?}/conf" "${unit:?}/data" "${unit:?}/logs" "$pidfile"
    log "removed the server's data, logs and configs from $unit (the package stays)"
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
