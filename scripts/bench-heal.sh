#!/usr/bin/env bash
# Alert detection and self-healing on a real 3-node ZooKeeper: kill -9 one server's JVM five
# times; prints, per run and as medians, how long until unit_down was CRITICAL and until the
# ensemble had a leader and two followers again (healed by a self-heal restart job).
# Needs the Debian packages scripts/test.sh installs (zookeeper, prometheus-alertmanager).
set -euo pipefail
cd "$(dirname "$0")/.."
export BIGMGR_UI="${BIGMGR_UI:-skip}"
cargo build -q -p bigmgr-server --bin bigmgr -p bigmgr-agent --bin bigmgr-agent
BIGMGR_HEAL_RUNS="${RUNS:-5}" cargo test -q -p bigmgr-server --test it \
    alerts::a_killed_zookeeper_server_is_detected_notified_to_alertmanager_and_healed \
    -- --nocapture 2>&1 | grep -E '^heal'
