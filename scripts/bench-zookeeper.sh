#!/bin/bash
# Times a 3-node ZooKeeper ensemble from "deploy" to "check passed": a real `bigmgr serve`
# (release build, SQLite), three real agents on 127.0.0.2-4 with empty roots, and the
# bigtop stack's zookeeper (the Debian package must be installed already: scripts/test.sh
# installs it). Each run starts from nothing: a new server, new agents, new roots.
#
# Usage: scripts/bench-zookeeper.sh [RUNS]      (default 3)
# Prints one line per run and then min / median / max of the job's duration (submitted ->
# ended, from the server's own timestamps) and of the wall time the client waited.
set -euo pipefail

runs="${1:-3}"
case "$runs" in "" | *[!0-9]* | 0) echo "usage: $0 [RUNS]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
dpkg-query -W -f='${Status}' zookeeper 2>/dev/null | grep -q 'install ok installed' || {
    echo "bench-zookeeper: the zookeeper package is not installed (scripts/test.sh installs it)" >&2
    exit 2
}
cargo build --release -q -p bigmgr-server -p bigmgr-agent --bins
bin="$PWD/target/release"

work=""
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
    if [ -n "$work" ]; then
        # The ensemble's JVMs run detached from the agents: stop them by their pid files.
        find "$work" -name '*.pid' -path '*/units/*' 2>/dev/null | while read -r f; do
            p=$(cat "$f" 2>/dev/null || true)
            case "$p" in "" | *[!0-9]*) ;; *) kill -9 "$p" 2>/dev/null || true ;; esac
        done
        rm -rf "$work"
    fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

job_ms=()
wall_ms=()
for run in $(seq 1 "$runs"); do
    work=$(mktemp -d /tmp/bigmgr-bench-zk.XXXXXX)
    port=$(free_port)
    url="http://127.0.0.1:$port"
    "$bin/bigmgr" serve --insecure-http --listen "127.0.0.1:$port" --data "$work/server" \
        >"$work/server.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$work/server/admin-token" ] && curl -sf "$url/api/v1/health" >/dev/null && break; sleep 0.1; done
    export BIGMGR_SERVER="$url" BIGMGR_TOKEN
    BIGMGR_TOKEN=$(cat "$work/server/admin-token")
    "$bin/bigmgr" cluster create bench >/dev/null
    token=$("$bin/bigmgr" cluster join-token bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    for i in 1 2 3; do
        "$bin/bigmgr-agent" --server "$url" --join-token "$token" --name "h$i" \
            --address "127.0.0.$((i + 1))" --root "$work/agent-h$i" >"$work/agent-h$i.log" 2>&1 &
        pids+=($!)
    done
    online=0
    for _ in $(seq 300); do
        online=$("$bin/bigmgr" host list bench --json | python3 -c 'import json,sys; print(sum(h["state"]=="ONLINE" for h in json.load(sys.stdin)))')
        [ "$online" = 3 ] && break
        sleep 0.1
    done
    [ "$online" = 3 ] || { echo "run $run: only $online of 3 agents came online" >&2; tail -n 5 "$work"/agent-h*.log >&2; exit 1; }
    "$bin/bigmgr" service add bench --stack bigtop --service zookeeper --name zk \
        --place zookeeper_server=h1,h2,h3 >/dev/null
    start=$(date +%s%N)
    "$bin/bigmgr" job run bench deploy --service zk --wait >"$work/job.log" 2>&1 || {
        echo "run $run: the deploy failed:" >&2; cat "$work/job.log" >&2; exit 1
    }
    end=$(date +%s%N)
    id=$("$bin/bigmgr" job list bench --json | python3 -c 'import json,sys; print(max(j["id"] for j in json.load(sys.stdin)))')
    ms=$("$bin/bigmgr" job show "$id" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["finished_at"]-j["created_at"])')
    wall=$(( (end - start) / 1000000 ))
    job_ms+=("$ms")
    wall_ms+=("$wall")
    echo "run $run: deploy -> check passed in $ms ms (job), $wall ms (client wall time)"
    cleanup
    work=""
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "min %d ms, median %d ms, max %d ms", a[1], a[int((NR+1)/2)], a[NR]}'; }
echo "3-node ZooKeeper, deploy -> check passed, $runs run(s): job $(stats "${job_ms[@]}"); wall $(stats "${wall_ms[@]}")"
