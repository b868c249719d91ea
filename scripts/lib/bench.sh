# shellcheck shell=bash
# What the shell benchmarks share (sourced, not run): building the binaries, starting a real
# `bigmgr serve` and real agents on 127.0.x.y with roots of their own, waiting for them to come
# online, and stopping every process they started (by pid, on exit, whatever happened).
#
# The caller sets `work` (a fresh directory) before starting anything. Profile: release, or
# BIGMGR_BENCH_PROFILE=dev for a quick run of the harness itself (the test command's smoke run).

bench_pids=()

# Stops what the benchmark started: the agents and the server (by pid), then the daemons their
# scripts left behind (by their pid files), then removes `work`.
bench_cleanup() {
    for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    bench_pids=()
    if [ -n "${work:-}" ] && [ -d "$work" ]; then
        find "$work" -name '*.pid' -path '*/units/*' 2>/dev/null | while read -r f; do
            p=$(cat "$f" 2>/dev/null || true)
            case "$p" in "" | *[!0-9]*) ;; *) kill -9 "$p" 2>/dev/null || true ;; esac
        done
        rm -rf "$work"
    fi
}

# Builds `bigmgr` and `bigmgr-agent` in the chosen profile and sets `bin` to their directory.
bench_build() {
    local profile="${BIGMGR_BENCH_PROFILE:-release}"
    case "$profile" in
        release) cargo build --release -q -p bigmgr-server -p bigmgr-agent --bins; bin="$PWD/target/release" ;;
        dev) cargo build -q -p bigmgr-server -p bigmgr-agent --bins; bin="$PWD/target/debug" ;;
        *) echo "BIGMGR_BENCH_PROFILE is release or dev, not $profile" >&2; exit 2 ;;
    esac
}

bench_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The CPU time the whole machine has spent working (user, nice, system, irq, softirq; steal and
# idle left out) in milliseconds, from /proc/stat: less disturbed than wall time by a noisy host.
bench_cpu_ms() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%d\n", ($2 + $3 + $4 + $7 + $8) * 1000 / hz; exit }' /proc/stat
}

# Milliseconds since the epoch.
bench_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Starts `bigmgr serve` on a free port with its data in `$work/server` and any extra arguments,
# over TLS with its own CA as a user runs it (or plain h2c with BIGMGR_BENCH_PLAIN=1); exports
# BIGMGR_SERVER, BIGMGR_TOKEN and BIGMGR_CA for the CLI, and sets `url`.
bench_server() {
    local port scheme=https tls_args=()
    port=$(bench_free_port)
    if [ "${BIGMGR_BENCH_PLAIN:-0}" = 1 ]; then scheme=http; tls_args=(--insecure-http); fi
    url="$scheme://127.0.0.1:$port"
    BIGMGR_LOG="${BIGMGR_LOG:-warn}" "$bin/bigmgr" serve "${tls_args[@]}" --listen "127.0.0.1:$port" \
        --data "$work/server" "$@" >"$work/server.log" 2>&1 &
    bench_pids+=($!)
    export BIGMGR_SERVER="$url" BIGMGR_TOKEN BIGMGR_CA
    if [ "$scheme" = https ]; then BIGMGR_CA="$work/server/tls/ca.pem"; else unset BIGMGR_CA; fi
    for _ in $(seq 200); do
        if [ -s "$work/server/admin-token" ]; then
            BIGMGR_TOKEN=$(cat "$work/server/admin-token")
            "$bin/bigmgr" cluster list >/dev/null 2>&1 && return 0
        fi
        sleep 0.05
    done
    echo "the server did not start:" >&2
    tail -n 20 "$work/server.log" >&2
    exit 1
}

# The address of agent number I (1-based): 127.0.0.2, 127.0.0.3, … 127.0.0.251, 127.0.1.2, …
bench_address() { local k=$(( $1 - 1 )); echo "127.0.$(( k / 250 )).$(( k % 250 + 2 ))"; }

# Creates cluster CLUSTER and starts agents h1..hN of it, each on its own loopback address
# with its own root under `$work`; returns once all N are ONLINE (or fails saying how many).
bench_agents() {
    local cluster="$1" n="$2" answer token pin i
    "$bin/bigmgr" cluster create "$cluster" >/dev/null
    answer=$("$bin/bigmgr" cluster join-token "$cluster" --json)
    token=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["token"])' "$answer")
    pin=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("ca_fingerprint") or "")' "$answer")
    local pin_args=()
    [ -n "$pin" ] && pin_args=(--ca-fingerprint "$pin")
    for i in $(seq 1 "$n"); do
        BIGMGR_LOG="${BIGMGR_LOG:-warn}" BIGMGR_JOIN_TOKEN="$token" "$bin/bigmgr-agent" \
            --server "$url" "${pin_args[@]}" --name "h$i" --address "$(bench_address "$i")" \
            --root "$work/agent-h$i" >"$work/agent-h$i.log" 2>&1 &
        bench_pids+=($!)
    done
    local online=0
    for _ in $(seq 1200); do
        online=$("$bin/bigmgr" host list "$cluster" --json | python3 -c 'import json,sys; print(sum(h["state"]=="ONLINE" for h in json.load(sys.stdin)))')
        [ "$online" = "$n" ] && return 0
        sleep 0.1
    done
    echo "only $online of $n agents came online" >&2
    tail -n 5 "$work"/agent-h1.log >&2
    exit 1
}

# The median of the numbers given.
bench_median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
