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
cargo test --workspace --locked
