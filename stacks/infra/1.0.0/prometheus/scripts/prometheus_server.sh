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
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

NAME=prometheus_server
bm_init "$NAME"
unit="$BM_UNIT"
address="$BM_ADDRESS"
conf="$unit/conf"
data="$unit/data"
logs="$unit/logs"
pidfile="$unit/$NAME.pid"
logfile="$logs/prometheus.log"

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
running() { bm_running "$pidfile" "--config.file=$conf/prometheus.yml"; }

load_env() {
    [ -f "$conf/prometheus.env" ] || bm_die "$conf/prometheus.env is missing (it is rendered by bigmgr before configure)"
    [ -f "$conf/prometheus.yml" ] || bm_die "$conf/prometheus.yml is missing (it is rendered by bigmgr before configure)"
    PROM_PORT=9090 PROM_RETENTION=15d PROM_RETENTION_SIZE=0 PROM_SCRAPE_INTERVAL=15s PROM_EXTRA_ARGS=""
    # shellcheck disable=SC1091
    . "$conf/prometheus.env"
}

# --- commands -------------------------------------------------------------------------------

do_install() {
    mkdir -p "$unit"
    bm_pkg_install prometheus curl
    # The package's own daemon listens on *:9090, which would take the port from the unit.
    bm_quiet_service prometheus "$BM_PKG_NEW"
    prometheus_bin >/dev/null || bm_die "no prometheus binary found after installing it"
    bm_log "installed ($(prometheus_bin))"
}

do_configure() {
    load_env
    mkdir -p "$data" "$logs"
    if command -v promtool >/dev/null 2>&1; then
        local out
        out=$(promtool check config "$conf/prometheus.yml" 2>&1) ||
            bm_die "prometheus.yml is not valid: $out"
    fi
    local targets
    targets=$(grep -c -- "- targets:" "$conf/prometheus.yml" || true)
    bm_log "configured: http://$address:$PROM_PORT, $targets scrape target(s) every $PROM_SCRAPE_INTERVAL, retention $PROM_RETENTION"
}

do_start() {
    if running; then bm_log "already running (pid $(cat "$pidfile"))"; return 0; fi
    local bin holders url size_flag=()
    bin=$(prometheus_bin) || bm_die "prometheus is not installed; run install first"
    load_env
    mkdir -p "$data" "$logs"
    holders=$(bm_port_holders "$address" "$PROM_PORT")
    [ -z "$holders" ] || bm_die "cannot start: $address:$PROM_PORT is already in use by another process: $holders"
    case "$PROM_RETENTION_SIZE" in "" | 0 | 0B) ;; *) size_flag=(--storage.tsdb.retention.size="$PROM_RETENTION_SIZE") ;; esac
    # The console templates of the Debian package are used when present.
    local consoles=()
    [ -d /etc/prometheus/consoles ] && consoles+=(--web.console.templates=/etc/prometheus/consoles)
    [ -d /etc/prometheus/console_libraries ] && consoles+=(--web.console.libraries=/etc/prometheus/console_libraries)
    # shellcheck disable=SC2086 # PROM_EXTRA_ARGS: several flags, split into words
    bm_spawn "$pidfile" "$logfile" \
        "$bin" --config.file="$conf/prometheus.yml" --storage.tsdb.path="$data" \
        --storage.tsdb.retention.time="$PROM_RETENTION" "${size_flag[@]}" \
        --web.listen-address="$address:$PROM_PORT" --web.enable-lifecycle \
        "${consoles[@]}" $PROM_EXTRA_ARGS
    url="http://$address:$PROM_PORT/-/ready"
    local rc=0
    bm_wait_started "$pidfile" "--config.file=$conf/prometheus.yml" 120 curl -sf --max-time 3 -o /dev/null "$url" || rc=$?
    case $rc in
        0) bm_log "started (pid $(cat "$pidfile")), serving http://$address:$PROM_PORT"; return 0 ;;
        1) echo "$NAME: prometheus exited during startup; last lines of $logfile:" >&2; bm_tail "$logfile"; exit 1 ;;
    esac
    echo "$NAME: prometheus was not ready at $url within 120 s; last lines of $logfile:" >&2
    bm_tail "$logfile"
    do_stop >&2 || true
    exit 1
}

# Prometheus flushes its head block on shutdown: give it time.
do_stop() { bm_stop "$pidfile" "--config.file=$conf/prometheus.yml" 60; }

do_status() {
    if running; then bm_log "running (pid $(cat "$pidfile"))"; exit 0; fi
    bm_log "not running"
    exit 3
}

do_check() {
    running || bm_die "check failed: prometheus is not running"
    load_env
    bm_ctx_present ||
        bm_die "check needs BIGMGR_CONTEXT (relations.metrics says which targets to expect)"
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
    bm_unit_rm "$conf" "$data" "$logs" "$pidfile"
    bm_log "removed the server's data, logs and configs from $unit (the package stays)"
}

bm_main "${1:-}"
