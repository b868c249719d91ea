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
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

bm_init node_exporter
conf="$BM_UNIT/conf"
logs="$BM_UNIT/logs"
# The daemon: its command line names this unit's textfile directory (so a recycled pid is
# never mistaken for it). stop and status are the library's (bm_daemon_stop, bm_daemon_status).
bm_daemon "$BM_UNIT/node_exporter.pid" "$logs/node_exporter.log" \
    "--collector.textfile.directory=$BM_UNIT/textfile" 20

# --- the daemon -----------------------------------------------------------------------------

exporter_bin() {
    bm_first_exe /usr/bin/prometheus-node-exporter /usr/bin/node_exporter /usr/local/bin/node_exporter
}

load_env() {
    [ -f "$conf/node_exporter.env" ] || bm_die "$conf/node_exporter.env is missing (it is rendered by bigmgr before configure)"
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
    mkdir -p "$BM_UNIT"
    if bm_have dpkg-query; then
        bm_software node_exporter
    else
        bm_pkg_install node_exporter curl
    fi
    # The package's own daemon listens on *:9100, which would take the port from every unit
    # on the machine.
    bm_quiet_service prometheus-node-exporter "$BM_PKG_NEW"
    bm_quiet_service node_exporter "$BM_PKG_NEW"
    exporter_bin >/dev/null || bm_die "no node exporter binary found after installing it"
    bm_log "installed ($(exporter_bin))"
}

do_configure() {
    load_env
    mkdir -p "$logs" "$BM_UNIT/textfile"
    bm_log "configured: metrics on http://$BM_ADDRESS:$METRICS_PORT$METRICS_PATH${EXTRA_ARGS:+, extra flags: $EXTRA_ARGS}"
}

do_start() {
    bm_already_running && return 0
    local bin url
    bin=$(exporter_bin) || bm_die "the node exporter is not installed; run install first"
    load_env
    mkdir -p "$logs" "$BM_UNIT/textfile"
    bm_need_free_port "$BM_ADDRESS" "$METRICS_PORT"
    # shellcheck disable=SC2086 # EXTRA_ARGS: several flags, split into words
    bm_daemon_spawn "$bin" --web.listen-address="$BM_ADDRESS:$METRICS_PORT" \
        --web.telemetry-path="$METRICS_PATH" --collector.textfile.directory="$BM_UNIT/textfile" $EXTRA_ARGS
    url="http://$BM_ADDRESS:$METRICS_PORT$METRICS_PATH"
    bm_daemon_ready 45 "the exporter" "did not serve $url" has_node_metrics "$url"
    bm_log "started (pid $(bm_daemon_pid)), serving $url"
}

do_status() { bm_daemon_status running "not running"; }

# The exporters to ask, one "host url" a line: peers.exporters of the context, else this unit.
exporters() {
    if bm_ctx_present; then
        local h a p path
        bm_ctx_units peers.exporters host address configs.metrics_port configs.metrics_path |
            while read -r h a p path; do
                [ "$path" != - ] || path=/metrics
                case "$path" in /*) ;; *) path="/$path" ;; esac
                echo "$h http://$a:$p$path"
            done
    else
        load_env
        echo "$BM_HOST http://$BM_ADDRESS:$METRICS_PORT$METRICS_PATH"
    fi
}

do_check() {
    local list n timeout deadline failed h url
    list=$(exporters)
    n=$(printf '%s\n' "$list" | grep -c . || true)
    [ "$n" -gt 0 ] || bm_die "check failed: no node_exporter units in peers.exporters"
    timeout="${BIGMGR_CHECK_TIMEOUT:-30}"
    deadline=$((SECONDS + timeout))
    while :; do
        failed=""
        while read -r h url; do
            has_node_metrics "$url" </dev/null || failed="$failed $h($url)"
        done <<<"$list"
        if [ -z "$failed" ]; then
            bm_log "check passed: $n exporter(s) serve node metrics"
            printf '%s\n' "$list" | sed 's/^/  /'
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$BM_NAME: check failed after ${timeout} s: no node_* metrics from:$failed" >&2
            exit 1
        fi
        sleep 1
    done
}

do_remove() {
    bm_daemon_stop
    bm_unit_rm "$conf" "$logs" "$BM_UNIT/textfile" "$BM_PIDFILE"
    bm_log "removed the exporter's files from $BM_UNIT (the package stays)"
}

bm_main "${1:-}"
