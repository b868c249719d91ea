#!/bin/bash
# A pipeline run by real agents (issue 19's benchmark): a real `bigmgr serve` (release build,
# SQLite) and three real agents on 127.0.0.2-4, each with its own root; the pipeline
# `files (h1) → cat (3 replicas on h1, h2, h3) → sink (h3)` over N small records, so batches
# made on h1 and h2 are carried to h3 through the agents' streams. Against the floor measured
# in the same run: the same records through `cat | cat` in one shell on one host.
#
# Usage: scripts/bench-pipeline.sh [RECORDS] [RECORDS_PER_BATCH]   (default 1000000 10000)
# Prints the run's time (from the server's own log lines: "run started" → "run ended"),
# records/s, the overhead per batch over the floor, and the ratio.
set -euo pipefail

records="${1:-1000000}"
batch="${2:-10000}"
for n in "$records" "$batch"; do
    case "$n" in "" | *[!0-9]* | 0) echo "usage: $0 [RECORDS] [RECORDS_PER_BATCH]" >&2; exit 2 ;; esac
done
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
# Plain h2c, as this bench's earlier figures were measured.
export BIGMGR_BENCH_PLAIN="${BIGMGR_BENCH_PLAIN:-1}"
bench_build
work=$(mktemp -d /tmp/bigmgr-bench-pipeline.XXXXXX)
trap bench_cleanup EXIT

mkdir -p "$work/in" "$work/out"
python3 -c "
import sys
with open('$work/in/records', 'w') as f:
    for i in range($records):
        f.write(f'record {i}\n')
"
# shellcheck disable=SC2016 # the program's own $1 and $2
printf '#!/bin/sh\ncat "$1"/* > "$2/part"\n' >"$work/cat.sh"
chmod 755 "$work/cat.sh"

# The floor: the same records through the same program shape, one shell pipeline.
start=$(date +%s%N)
sh -c "cat '$work/in/records' | cat > '$work/floor.out'"
end=$(date +%s%N)
floor_ms=$(( (end - start) / 1000000 ))

# shellcheck disable=SC2119 # no extra server arguments
bench_server
bench_agents bench 3

cat >"$work/bench.toml" <<EOF
name = "bench"

[sources.files]
kind = "dir"
host = "h1"
path = "$work/in"
records = $batch

[units.cat]
program = "$work/cat.sh"
kind = "non-blocking"
replicas = 3
hosts = ["h1", "h2", "h3"]
inputs = ["files"]

[sinks.out]
kind = "dir"
host = "h3"
path = "$work/out"
inputs = ["cat"]
EOF
"$bin/bigmgr" pipeline create bench -f "$work/bench.toml" >/dev/null
"$bin/bigmgr" pipeline start bench bench >/dev/null
state=""
for _ in $(seq 6000); do
    state=$("$bin/bigmgr" pipeline show bench bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    case "$state" in FINISHED | FAILED) break ;; esac
    sleep 0.1
done
[ "$state" = FINISHED ] || { echo "the run ended $state" >&2; "$bin/bigmgr" pipeline logs bench bench >&2; exit 1; }
run_ms=$("$bin/bigmgr" pipeline logs bench bench --json | python3 -c '
import json, sys
lines = json.load(sys.stdin)["lines"]
start = next(l["at"] for l in lines if l["line"].startswith("run started"))
end = next(l["at"] for l in lines if l["line"].startswith("run ended"))
print(end - start)')
got=$(cat "$work"/out/*/* | wc -l)
[ "$got" = "$records" ] || { echo "the sink holds $got records, not $records" >&2; exit 1; }
batches=$(( (records + batch - 1) / batch ))
python3 - "$records" "$batches" "$run_ms" "$floor_ms" <<'EOF'
import sys
records, batches, run_ms, floor_ms = (int(a) for a in sys.argv[1:])
rate = records / (run_ms / 1000) if run_ms else float("inf")
per_batch = (run_ms - floor_ms) / batches
ratio = run_ms / floor_ms if floor_ms else float("inf")
print(f"pipeline across 3 agents: {records} records in {batches} batches in {run_ms} ms "
      f"({rate:,.0f} records/s); {per_batch:.1f} ms overhead per batch; "
      f"shell floor (cat | cat, one host) {floor_ms} ms; ratio {ratio:.1f}x")
EOF
