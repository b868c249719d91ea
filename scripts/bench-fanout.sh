#!/bin/bash
# One no-op command on N hosts, as a user runs it (issue 20, target 1): a real `bigmgr serve`
# (TLS with its own CA, SQLite) and N real `bigmgr-agent` processes on 127.0.x.y with roots of
# their own; the stack's no-op script (`#!/bin/sh`, `exit 0`) placed on every host and run with
# `bigmgr job run bench start --service noop --wait`, the client's wall time measured around it
# and the job's own time read from the server (created -> finished). In the same run, the floor:
# the same N scripts started in parallel directly from this shell (and waited for). On its host
# each task also costs its supervisor, a fork of the agent that outlives a killed agent to record
# the script's exit status (bigmgr-core/src/agent/supervisor.rs): a fork, no second exec.
#
# Usage: scripts/bench-fanout.sh [N...]        (default 10 100 300; RUNS=3 runs of each)
# Prints per N the medians, the floor and the ratios wall/floor and job/floor, and the CPU time
# the whole machine spent on the CLI run and on the floor (from /proc/stat; 10 ms ticks).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 100 300)
runs="${RUNS:-3}"
for n in "${sizes[@]}" "$runs"; do
    case "$n" in "" | *[!0-9]* | 0) echo "usage: $0 [N...] (N > 0; RUNS > 0)" >&2; exit 2 ;; esac
done
bench_build
trap bench_cleanup EXIT

for n in "${sizes[@]}"; do
    work=$(mktemp -d "${TMPDIR:-/tmp}/bigmgr-bench-fanout.XXXXXX")
    stack="$work/stacks/bench/1.0.0/noop"
    mkdir -p "$stack"
    cat >"$stack/service.toml" <<EOF
[service]
name = "noop"
version = "1"
description = "does nothing"

[[component]]
name = "c0"
category = "server"
cardinality = "0+"
script = "noop.sh"
EOF
    printf '#!/bin/sh\nexit 0\n' >"$stack/noop.sh"
    chmod 755 "$stack/noop.sh"
    bench_server --stacks "$work/stacks"
    bench_agents bench "$n"
    hosts=$(seq -s, -f 'h%g' 1 "$n")
    "$bin/bigmgr" service add bench --stack bench --service noop --name noop --place "c0=$hosts" >/dev/null
    # One job first, so that every agent has fetched the script and opened its unit (a first
    # run on a fresh host is not what is measured).
    "$bin/bigmgr" job run bench start --service noop --wait >/dev/null 2>&1

    floors=() walls=() jobs=() floor_cpus=() cpus=()
    for _ in $(seq 1 "$runs"); do
        cpu=$(bench_cpu_ms)
        start=$(date +%s%N)
        scripts=()
        for _ in $(seq 1 "$n"); do "$stack/noop.sh" start & scripts+=($!); done
        wait "${scripts[@]}"
        end=$(date +%s%N)
        floors+=($(( (end - start) / 1000 )))
        floor_cpus+=($(( $(bench_cpu_ms) - cpu )))

        cpu=$(bench_cpu_ms)
        start=$(date +%s%N)
        "$bin/bigmgr" job run bench start --service noop --wait >"$work/job.log" 2>&1 || {
            echo "the job failed:" >&2; cat "$work/job.log" >&2; exit 1
        }
        end=$(date +%s%N)
        walls+=($(( (end - start) / 1000 )))
        cpus+=($(( $(bench_cpu_ms) - cpu )))
        id=$("$bin/bigmgr" job list bench --json | python3 -c 'import json,sys; print(max(j["id"] for j in json.load(sys.stdin)))')
        jobs+=("$("$bin/bigmgr" job show "$id" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print((j["finished_at"]-j["created_at"])*1000)')")
    done
    python3 - "$n" "$(bench_median "${floors[@]}")" "$(bench_median "${walls[@]}")" "$(bench_median "${jobs[@]}")" "$runs" \
        "$(bench_median "${floor_cpus[@]}")" "$(bench_median "${cpus[@]}")" <<'EOF'
import sys
n, floor, wall, job, runs, floor_cpu, cpu = (int(a) for a in sys.argv[1:])
ms = lambda us: f"{us / 1000:.0f} ms"
print(f"fanout N={n}: CLI wall {ms(wall)}, job {ms(job)}; floor ({n} scripts in parallel) {ms(floor)}; "
      f"wall/floor {wall / floor:.2f}x, job/floor {job / floor:.2f}x; "
      f"machine CPU: CLI run {cpu} ms, floor {floor_cpu} ms, {cpu / max(floor_cpu, 1):.2f}x (medians of {runs})")
EOF
    bench_cleanup
    work=""
done
