#!/bin/bash
# alertmanager_server: a Prometheus Alertmanager run as this unit's own daemon.
#
# Usage: alertmanager_server.sh install|configure|start|stop|restart|status|check|remove
#
# Environment (set by the bigmgr agent):
#   BIGMGR_UNIT_DIR  the unit's directory (required); it holds the rendered
#                    conf/alertmanager.yml and conf/alertmanager.env, the silences and
#                    notification log (data/), the log (logs/alertmanager.log) and the pid file
#                    (alertmanager_server.pid)
#   BIGMGR_ADDRESS   the address the web UI, the API and (with peers) the gossip bind to
#   BIGMGR_HOST      the host's name, for messages
#   BIGMGR_CONTEXT   JSON file whose "context" holds the properties (configure names a bad one)
#                    and peers.cluster: the units check asks
#   BIGMGR_CHECK_TIMEOUT  optional; seconds check waits (default 90: a cluster settles in ~10 s)
#
# Every command is idempotent. status exits 0 if the daemon runs and answers /-/healthy, 3 if
# it does not run, 1 if it runs but is not healthy. Alertmanager reads its configuration at
# start, so restart (stop, start) applies a new alertmanager.yml, new flags or new peers.
# start returns once /-/ready answers. check (run once) asks every unit's /api/v2/status: its
# cluster status must be "ready" with every unit as a peer ("disabled" for a lone unit).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

bm_init alertmanager_server
conf="$BM_UNIT/conf"
data="$BM_UNIT/data"
logs="$BM_UNIT/logs"
# The daemon: its command line names this unit's alertmanager.yml (so a recycled pid is never
# mistaken for it). It writes its silences and notification log on shutdown: stop gives it
# 30 s. stop is the library's (bm_daemon_stop).
bm_daemon "$BM_UNIT/alertmanager_server.pid" "$logs/alertmanager.log" "--config.file=$conf/alertmanager.yml" 30

# --- the daemon -----------------------------------------------------------------------------

alertmanager_bin() { bm_first_exe /usr/bin/prometheus-alertmanager /usr/bin/alertmanager /usr/local/bin/alertmanager; }

load_env() {
    [ -f "$conf/alertmanager.env" ] || bm_die "$conf/alertmanager.env is missing (it is rendered by bigmgr before configure)"
    [ -f "$conf/alertmanager.yml" ] || bm_die "$conf/alertmanager.yml is missing (it is rendered by bigmgr before configure)"
    AM_PORT=9093 AM_CLUSTER_PORT=9094 AM_RETENTION=120h AM_EXTRA_ARGS="" AM_PEERS=""
    # shellcheck disable=SC1091
    . "$conf/alertmanager.env"
}

# The other units' gossip addresses (address:cluster_port), one a line: AM_PEERS without this
# unit. Empty when the unit is alone.
other_peers() {
    local p
    for p in ${AM_PEERS//,/ }; do
        [ "$p" = "$BM_ADDRESS:$AM_CLUSTER_PORT" ] || echo "$p"
    done
}

# A Prometheus duration for the YAML (5m, 1h30m, 2d; no sign, no fraction) and a Go duration
# for the flags (120h, 90m).
prom_duration() { [[ "$1" =~ ^([0-9]+(ms|s|m|h|d|w|y))+$ ]]; }
go_duration() { [[ "$1" =~ ^([0-9]+(ms|s|m|h))+$ ]]; }

# The properties that go into alertmanager.yml, checked by name before amtool checks the file.
check_properties() {
    local name value
    for name in resolve_timeout group_wait group_interval repeat_interval; do
        value=$(bm_ctx_value "$name")
        prom_duration "$value" ||
            bm_die "$name '$value' is not a duration: write it as 30s, 5m, 4h or 1h30m"
    done
    value=$(bm_ctx_value receiver_webhook_url)
    [ -z "$value" ] || [[ "$value" =~ ^https?://[^[:space:]]+$ ]] ||
        bm_die "receiver_webhook_url '$value' is not an http:// or https:// URL"
}

url() { echo "http://$BM_ADDRESS:$AM_PORT$1"; }

# --- commands -------------------------------------------------------------------------------

do_install() {
    mkdir -p "$BM_UNIT"
    bm_software alertmanager
    # The package's own daemon listens on *:9093 and *:9094, which would take the ports from
    # the unit.
    bm_quiet_service prometheus-alertmanager "$BM_PKG_NEW"
    alertmanager_bin >/dev/null || bm_die "no alertmanager binary found after installing it"
    bm_log "installed ($(alertmanager_bin))"
}

do_configure() {
    load_env
    mkdir -p "$data" "$logs"
    ! bm_ctx_present || check_properties
    go_duration "$AM_RETENTION" ||
        bm_die "retention '$AM_RETENTION' is not a duration: write it as 120h or 90m"
    if bm_have amtool; then
        local out
        out=$(amtool check-config "$conf/alertmanager.yml" 2>&1) ||
            bm_die "alertmanager.yml is not valid: $out"
    fi
    local peers gossip="alone (no gossip)"
    peers=$(other_peers | grep -c . || true)
    [ "$peers" -eq 0 ] || gossip="gossip with $peers peer(s) on $BM_ADDRESS:$AM_CLUSTER_PORT"
    bm_log "configured: http://$BM_ADDRESS:$AM_PORT, $gossip, retention $AM_RETENTION"
}

do_start() {
    bm_already_running && return 0
    local bin p cluster=()
    bin=$(alertmanager_bin) || bm_die "alertmanager is not installed; run install first"
    load_env
    mkdir -p "$data" "$logs"
    bm_need_free_port "$BM_ADDRESS" "$AM_PORT"
    # Alone: gossip off (an empty listen address). With peers: gossip on the unit's address.
    if [ -n "$(other_peers)" ]; then
        bm_need_free_port "$BM_ADDRESS" "$AM_CLUSTER_PORT"
        cluster=(--cluster.listen-address="$BM_ADDRESS:$AM_CLUSTER_PORT"
            --cluster.advertise-address="$BM_ADDRESS:$AM_CLUSTER_PORT")
        while read -r p; do cluster+=(--cluster.peer="$p"); done < <(other_peers)
    else
        cluster=(--cluster.listen-address=)
    fi
    # shellcheck disable=SC2086 # AM_EXTRA_ARGS: several flags, split into words
    bm_daemon_spawn "$bin" --config.file="$conf/alertmanager.yml" --storage.path="$data" \
        --data.retention="$AM_RETENTION" --web.listen-address="$BM_ADDRESS:$AM_PORT" \
        "${cluster[@]}" $AM_EXTRA_ARGS
    bm_daemon_ready 60 alertmanager "was not ready at $(url /-/ready)" \
        curl -sf --max-time 3 -o /dev/null "$(url /-/ready)"
    bm_log "started (pid $(bm_daemon_pid)), serving http://$BM_ADDRESS:$AM_PORT"
}

do_status() {
    bm_daemon_running || { bm_log "not running"; exit 3; }
    load_env
    if curl -sf --max-time 3 -o /dev/null "$(url /-/healthy)"; then
        bm_log "running (pid $(bm_daemon_pid)), healthy"
    else
        bm_log "running (pid $(bm_daemon_pid)) but $(url /-/healthy) does not answer"
        exit 1
    fi
}

# The units to ask, one "host address port" a line: peers.cluster of the context, else this
# unit.
units() {
    if bm_ctx_present; then
        bm_ctx_units peers.cluster host address configs.port
    else
        echo "$BM_HOST $BM_ADDRESS $AM_PORT"
    fi
}

do_check() {
    load_env
    local list
    list=$(units)
    [ -n "$list" ] || bm_die "check failed: no alertmanager units in peers.cluster"
    python3 - "$list" "${BIGMGR_CHECK_TIMEOUT:-90}" <<'EOF'
import json, sys, time, urllib.request

units = [line.split() for line in sys.argv[1].splitlines() if line.strip()]
timeout = float(sys.argv[2])
want = sorted(a for _, a, _ in units) if len(units) > 1 else []
deadline = time.monotonic() + timeout
while True:
    problems, report = [], []
    for host, addr, port in units:
        url = "http://%s:%s/api/v2/status" % (addr, port)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                status = json.load(r)
        except Exception as e:  # noqa: BLE001 - any failure is retried, then reported
            problems.append("%s: cannot read %s: %s" % (host, url, e))
            continue
        cluster = status.get("cluster") or {}
        state = cluster.get("status")
        peers = sorted(p.get("address", "").rsplit(":", 1)[0] for p in cluster.get("peers") or [])
        if len(units) == 1 and state not in ("ready", "disabled"):
            problems.append("%s: cluster status %r, not ready" % (host, state))
        elif len(units) > 1 and (state != "ready" or peers != want):
            problems.append("%s: cluster status %r with peers %s, not ready with %s"
                            % (host, state, ", ".join(peers) or "none", ", ".join(want)))
        else:
            report.append("  %s %s:%s %s, version %s" % (host, addr, port, state,
                                                      status.get("versionInfo", {}).get("version")))
    if not problems:
        print("alertmanager_server: check passed: %d unit(s) answer, cluster %s"
              % (len(units), "of %d ready" % len(units) if len(units) > 1 else "disabled (alone)"))
        print("\n".join(report))
        sys.exit(0)
    if time.monotonic() >= deadline:
        print("alertmanager_server: check failed after %.0f s:" % timeout, file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    time.sleep(1)
EOF
}

do_remove() {
    bm_daemon_stop
    bm_unit_rm "$conf" "$data" "$logs" "$BM_PIDFILE"
    bm_log "removed the daemon's data, logs and configs from $BM_UNIT (the package stays)"
}

bm_main "${1:-}"
