#!/bin/bash
# Builds bigmgr-agent as hosts get it: profile `agent` (built for size: opt-level "z", fat LTO,
# one codegen unit), linked statically against glibc, so that an idle agent maps no shared
# libraries and needs none on the host, with packed relative relocations, so that relocating
# itself at start does not read a 270 KiB table (docs/performance.md §3). Prints the binary's
# path, target/<host triple>/agent/bigmgr-agent. Extra arguments go to cargo (-q, say).
#
# The explicit --target keeps the static flag off build scripts and proc macros, and keeps this
# build's artefacts apart from the workspace's usual ones. Names are looked up by glibc's
# built-in "files" and "dns" services (/etc/hosts, then the resolvers in /etc/resolv.conf);
# other NSS modules (mdns, ldap, systemd's resolve) a static binary can load only from the
# same glibc version it was built with: on hosts whose name lookups need them, install the
# dynamically linked build instead (`cargo build --profile agent -p bigmgr-agent`).
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" \
    cargo build --profile agent -p bigmgr-agent --bin bigmgr-agent --target "$host" "$@"
echo "target/$host/agent/bigmgr-agent"
