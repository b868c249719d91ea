#!/bin/bash
# Every performance figure of issue 20, each beside its floor or target, in one run:
#   1. one no-op command on N real agents through the CLI, against N scripts started directly
#      (scripts/bench-fanout.sh);
#   2. burst dispatch: 1 000 simulated agents over real gRPC streams reporting at once, and a
#      10 000-task no-op job over them (cargo bench --bench agents);
#   3. agents per server: 18 000 simulated agents held by one server, spread over bench
#      processes, resident memory per agent, join rate, heartbeat CPU; an idle real agent,
#      as the release build and as hosts get it (scripts/build-agent.sh)
#      (cargo bench --bench agents -- --scale);
#   4. live logs: a task's line to an SSE follower (cargo bench --bench logs);
#   5. the store: the 10 000-task job on PostgreSQL against SQLite (cargo bench --bench engine).
#
# Usage: scripts/bench.sh [--smoke] [--readme]
#   --smoke   each harness once at a small size, in the dev profile (what the test command
#             runs, so that none of them rots): checks that each runs and prints its figures,
#             never a time.
#   --readme  replaces README.md's performance summary (between the bench markers) with this
#             run's output, the date and the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0 readme=0
for a in "$@"; do
    case "$a" in
        --smoke) smoke=1 ;;
        --readme) readme=1 ;;
        *) echo "usage: $0 [--smoke] [--readme]" >&2; exit 2 ;;
    esac
done
export BIGMGR_UI="${BIGMGR_UI:-skip}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if [ "$smoke" = 1 ]; then
    export BIGMGR_BENCH_PROFILE=dev
    bench=(cargo bench -q --profile dev)
    fanout=(5) burst=(--agents 5 --components 20 --runs 1) scale=(--scale 5 --per-process 3)
    logs=(--lines 20 --idle-secs 1) engine=(--hosts 5 --components 20 --runs 1)
    runs=1
else
    bench=(cargo bench -q)
    fanout=(10 100 300) burst=(--agents 1000 --components 10 --runs 3) scale=(--scale 18000 --per-process 6000)
    logs=() engine=()
    runs=3
fi
# The agent as hosts get it, by its own recipe (built for size, linked statically): the burst
# bench checks that it registers with a real server and measures its idle RSS beside the
# release (or, in the smoke run, dev) build's.
scripts/build-agent.sh -q >/dev/null

run() {
    echo "== $1" | tee -a "$out"
    shift
    "$@" 2>&1 | tee -a "$out"
}
RUNS=$runs run "1. one command on many hosts" scripts/bench-fanout.sh "${fanout[@]}"
run "2. burst dispatch" "${bench[@]}" -p bigmgr-server --bench agents -- "${burst[@]}"
run "3. agents per server" "${bench[@]}" -p bigmgr-server --bench agents -- "${scale[@]}"
run "4. live logs" "${bench[@]}" -p bigmgr-server --bench logs -- "${logs[@]}"
run "5. the store" "${bench[@]}" -p bigmgr-core --bench engine -- "${engine[@]}"

# Each harness printed its figures: the lines below are what the README and the issue quote.
missing=0
for want in "^fanout N=[0-9]+: CLI wall [0-9]+ ms, job [0-9]+ ms; floor .* wall/floor [0-9.]+x, job/floor [0-9.]+x" \
    "^run 1: [0-9]+ tasks in [0-9.]+ s .*dispatch latency p50 [0-9.]+ ms p99 [0-9.]+ ms" \
    "^one real bigmgr-agent, registered and idle: RSS [0-9]+ KiB .*statically linked" \
    "^scale: [0-9]+ simulated agents .* joins/s; .* KiB per agent; .* server CPU [0-9.]+% of one core" \
    "^live logs: [0-9]+ lines, .*p99 [0-9.]+ ms" \
    "^median job time: SQLite [0-9.]+ s, PostgreSQL [0-9.]+ s: PostgreSQL/SQLite [0-9.]+x"; do
    grep -Eq "$want" "$out" || { echo "bench.sh: no line matching: $want" >&2; missing=1; }
done
[ "$missing" = 0 ] || exit 1

if [ "$readme" = 1 ]; then
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
    python3 - "$out" "$(date -u +%Y-%m-%d)" "$(nproc) cores ($cpu), $mem" <<'EOF'
import re, sys
out, day, machine = sys.argv[1:]
lines = [l for l in open(out).read().splitlines() if not l.startswith(("warning", "   Compiling", "    Finished", "     Running"))]
block = (f"<!-- bench:begin (scripts/bench.sh --readme writes this block) -->\n"
         f"`scripts/bench.sh` on {day}, {machine}:\n\n```\n" + "\n".join(lines) + "\n```\n<!-- bench:end -->")
text = open("README.md").read()
new, n = re.subn(r"<!-- bench:begin.*?<!-- bench:end -->", lambda _: block, text, flags=re.S)
if n != 1:
    sys.exit("README.md has no bench:begin/bench:end markers")
open("README.md", "w").write(new)
print("README.md: performance summary replaced")
EOF
fi
