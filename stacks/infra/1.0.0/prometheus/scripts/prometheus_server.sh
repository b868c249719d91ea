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
#                    as scrape targets, relations.alerting: the Alertmanagers check expects, and
#                    alert_rules: the rules configure writes to conf/alert_rules.yml
#   BIGMGR_CHECK_TIMEOUT  optional; seconds check waits (default 2 × scrape_interval + 15)
#
# Every command is idempotent. status exits 0 if the server runs, 3 if it does not.
# Prometheus reads its configuration at start, so restart (stop, start) applies a new
# prometheus.yml or new flags. start returns once /-/ready answers. check (run once) waits
# until the active targets of the related units are exactly relations.metrics
# (address:metrics_port) and every target, the server's own included, is up, and until the
# active Alertmanagers are exactly relations.alerting (address:port).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

bm_init prometheus_server
conf="$BM_UNIT/conf"
data="$BM_UNIT/data"
logs="$BM_UNIT/logs"
# The daemon: its command line names this unit's prometheus.yml (so a recycled pid is never
# mistaken for it). It flushes its head block on shutdown: stop gives it 60 s. stop and
# status are the library's (bm_daemon_stop, bm_daemon_status).
bm_daemon "$BM_UNIT/prometheus_server.pid" "$logs/prometheus.log" "--config.file=$conf/prometheus.yml" 60

# --- the daemon -----------------------------------------------------------------------------

prometheus_bin() { bm_first_exe /usr/bin/prometheus /usr/local/bin/prometheus; }

load_env() {
    [ -f "$conf/prometheus.env" ] || bm_die "$conf/prometheus.env is missing (it is rendered by bigmgr before configure)"
    [ -f "$conf/prometheus.yml" ] || bm_die "$conf/prometheus.yml is missing (it is rendered by bigmgr before configure)"
    PROM_PORT=9090 PROM_RETENTION=15d PROM_RETENTION_SIZE=0 PROM_SCRAPE_INTERVAL=15s PROM_EXTRA_ARGS=""
    # shellcheck disable=SC1091
    . "$conf/prometheus.env"
}

# --- commands -------------------------------------------------------------------------------

do_install() {
    mkdir -p "$BM_UNIT"
    bm_software prometheus
    # The package's own daemon listens on *:9090, which would take the port from the unit.
    bm_quiet_service prometheus "$BM_PKG_NEW"
    prometheus_bin >/dev/null || bm_die "no prometheus binary found after installing it"
    bm_log "installed ($(prometheus_bin))"
}

# conf/alert_rules.yml from the alert_rules property (prometheus.yml names it when it is set);
# promtool checks it (and promtool check config once more, as a rule file of prometheus.yml).
write_rules() {
    local rules="$conf/alert_rules.yml"
    bm_ctx_present || return 0
    local text
    text=$(bm_ctx_value alert_rules)
    if [ -z "$text" ]; then
        bm_unit_rm "$rules"
        return 0
    fi
    printf '%s\n' "$text" | bm_write "$rules" 0644
    if command -v promtool >/dev/null 2>&1; then
        local out
        out=$(promtool check rules "$rules" 2>&1) || bm_die "alert_rules is not a valid rules file: $out"
    fi
}

do_configure() {
    load_env
    mkdir -p "$data" "$logs"
    write_rules
    if command -v promtool >/dev/null 2>&1; then
        local out
        out=$(promtool check config "$conf/prometheus.yml" 2>&1) ||
            bm_die "prometheus.yml is not valid: $out"
    fi
    local targets ams=0
    targets=$(sed -n '/^scrape_configs:/,$p' "$conf/prometheus.yml" | grep -c -- "- targets:" || true)
    ! bm_ctx_present || ams=$(bm_ctx_units relations.alerting address | grep -c . || true)
    bm_log "configured: http://$BM_ADDRESS:$PROM_PORT, $targets scrape target(s) every $PROM_SCRAPE_INTERVAL, $ams Alertmanager(s), retention $PROM_RETENTION"
}

do_start() {
    bm_already_running && return 0
    local bin url size_flag=()
    bin=$(prometheus_bin) || bm_die "prometheus is not installed; run install first"
    load_env
    mkdir -p "$data" "$logs"
    bm_need_free_port "$BM_ADDRESS" "$PROM_PORT"
    case "$PROM_RETENTION_SIZE" in "" | 0 | 0B) ;; *) size_flag=(--storage.tsdb.retention.size="$PROM_RETENTION_SIZE") ;; esac
    # The console templates of the Debian package are used when present.
    local consoles=()
    [ -d /etc/prometheus/consoles ] && consoles+=(--web.console.templates=/etc/prometheus/consoles)
    [ -d /etc/prometheus/console_libraries ] && consoles+=(--web.console.libraries=/etc/prometheus/console_libraries)
    # shellcheck disable=SC2086 # PROM_EXTRA_ARGS: several flags, split into words
    bm_daemon_spawn "$bin" --config.file="$conf/prometheus.yml" --storage.tsdb.path="$data" \
        --storage.tsdb.retention.time="$PROM_RETENTION" "${size_flag[@]}" \
        --web.listen-address="$BM_ADDRESS:$PROM_PORT" --web.enable-lifecycle \
        "${consoles[@]}" $PROM_EXTRA_ARGS
    url="http://$BM_ADDRESS:$PROM_PORT/-/ready"
    bm_daemon_ready 120 prometheus "was not ready at $url" curl -sf --max-time 3 -o /dev/null "$url"
    bm_log "started (pid $(bm_daemon_pid)), serving http://$BM_ADDRESS:$PROM_PORT"
}

do_status() { bm_daemon_status running "not running"; }

do_check() {
    bm_daemon_running || bm_die "check failed: prometheus is not running"
    load_env
    bm_ctx_present ||
        bm_die "check needs BIGMGR_CONTEXT (relations.metrics says which targets to expect)"
    python3 - "$BIGMGR_CONTEXT" "http://$BM_ADDRESS:$PROM_PORT" "$PROM_SCRAPE_INTERVAL" \
        "${BIGMGR_CHECK_TIMEOUT:-}" <<'EOF'
import json, re, sys, time, urllib.parse, urllib.request

ctx = json.load(open(sys.argv[1]))["context"]
base, interval, timeout = sys.argv[2], sys.argv[3], sys.argv[4]


def seconds(d):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d)
    return sum(int(n) * units[u] for n, u in parts) or 15


timeout = float(timeout) if timeout else 2 * seconds(interval) + 15
expected = {"%s:%s" % (u["address"], u["configs"]["metrics_port"]) for u in ctx["relations"]["metrics"]}
alerting = {"%s:%s" % (u["address"], u["configs"]["port"]) for u in ctx["relations"].get("alerting", [])}
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
        try:
            with urllib.request.urlopen(base + "/api/v1/alertmanagers", timeout=5) as r:
                ams = json.load(r)["data"]["activeAlertmanagers"]
            active_ams = {urllib.parse.urlsplit(a["url"]).netloc for a in ams}
        except Exception as e:  # noqa: BLE001 - any failure is retried, then reported
            active_ams = set()
            problems.append("cannot read %s/api/v1/alertmanagers: %s" % (base, e))
        if not problems and active_ams != alerting:
            problems.append("active Alertmanagers are %s, not the related %s (old configuration?)"
                            % (", ".join(sorted(active_ams)) or "none", ", ".join(sorted(alerting)) or "none"))
    if not problems:
        print("prometheus_server: check passed: %d related target(s) up, and the server itself; %d Alertmanager(s)"
              % (len(related), len(alerting)))
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
    bm_daemon_stop
    bm_unit_rm "$conf" "$data" "$logs" "$BM_PIDFILE"
    bm_log "removed the server's data, logs and configs from $BM_UNIT (the package stays)"
}

bm_main "${1:-}"
