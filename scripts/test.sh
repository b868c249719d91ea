#!/usr/bin/env bash
# Runs every test of bigmgr on a fresh machine: formatting, lints, and the whole workspace's
# unit and integration tests (real child processes, real SQLite). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
# The scripts the tests run need a POSIX shell, sleep and kill: on every Debian image.
for tool in cargo sh sleep; do
  command -v "$tool" >/dev/null || { echo "missing $tool: install Rust (rustup) and coreutils first" >&2; exit 1; }
done
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary, the last often 0 of 0).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
