#!/usr/bin/env bash
# Failover time of two `bigmgr serve` replicas on the machine's PostgreSQL (127.0.0.1:5432, or
# BIGMGR_TEST_POSTGRES), over TLS with three agents plus one: the leader is killed (kill -9) in
# the middle of a job, and the time from the kill to the first task the new leader dispatches
# is measured, RUNS times (default 5). It is the failover test of bigmgr-server
# (`replicas::the_leader_killed_…`, lease 3 s), run with --nocapture; each run prints its line.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
cargo build --quiet -p bigmgr-server --bin bigmgr -p bigmgr-agent --bin bigmgr-agent
times=()
for i in $(seq "$runs"); do
  line=$(cargo test --quiet -p bigmgr-server --test it \
    replicas::the_leader_killed_mid_job_is_replaced_and_the_job_finishes_with_every_task_once \
    -- --nocapture 2>&1 | grep '^failover:')
  echo "run $i: ${line#failover: }"
  times+=("$(echo "$line" | sed -E 's/.*new leader: ([0-9]+) ms.*/\1/')")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "failover (kill -9 of the leader -> first task dispatched by the new leader), $runs runs:" \
  "min $(echo "$sorted" | head -1) ms, median $(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p") ms," \
  "max $(echo "$sorted" | tail -1) ms"
