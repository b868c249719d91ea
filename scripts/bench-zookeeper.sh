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
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
# Plain h2c, as this bench's earlier figures were measured.
export BIGMGR_BENCH_PLAIN="${BIGMGR_BENCH_PLAIN:-1}"
bench_build
work=""
trap bench_cleanup EXIT

job_ms=()
wall_ms=()
for run in $(seq 1 "$runs"); do
    work=$(mktemp -d /tmp/bigmgr-bench-zk.XXXXXX)
    # shellcheck disable=SC2119 # no extra server arguments
    bench_server
    bench_agents bench 3
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
    bench_cleanup
    work=""
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "min %d ms, median %d ms, max %d ms", a[1], a[int((NR+1)/2)], a[NR]}'; }
echo "3-node ZooKeeper, deploy -> check passed, $runs run(s): job $(stats "${job_ms[@]}"); wall $(stats "${wall_ms[@]}")"
