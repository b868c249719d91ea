#!/bin/bash
# zookeeper_client: the ZooKeeper command line client, set up to talk to this service's servers.
#
# Usage: zookeeper_client.sh install|configure|check|remove
#
# Environment (set by the bigmgr agent):
#   BIGMGR_UNIT_DIR  the unit's directory (required); it holds the rendered conf/zkclient.env
#                    (ZK_CONNECT: every zookeeper_server unit's address:clientPort, from
#                    peers.quorum); configure writes bin/zkcli there, a zkCli.sh wrapper
#   BIGMGR_HOST      the host's name, for messages
#   BIGMGR_ADDRESS, BIGMGR_CONTEXT  not needed
#   BIGMGR_ZK_CHECK_TIMEOUT  optional; seconds check retries while the ensemble settles (default 60)
#   BIGMGR_LIB       the stack library (bm_* functions, docs/stacks.md)
#
# Every command is idempotent. check creates, reads and deletes a znode through the connect
# string, so it passes only when the ensemble has a quorum and serves writes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

bm_init zookeeper_client
BM_COMMANDS="install configure check remove"
PKG=zookeeper
unit="$BM_UNIT"
host="$BM_HOST"
conf="$unit/conf"

zkcli_path() {
    bm_first_exe /usr/share/zookeeper/bin/zkCli.sh /usr/lib/zookeeper/bin/zkCli.sh /usr/bin/zookeeper-client ||
        command -v zkCli.sh 2>/dev/null || return 1
}

connect_string() {
    local ZK_CONNECT=""
    [ -f "$conf/zkclient.env" ] || bm_die "$conf/zkclient.env is missing (it is rendered by bigmgr before configure)"
    # shellcheck disable=SC1091
    . "$conf/zkclient.env"
    [ -n "$ZK_CONNECT" ] || bm_die "the service has no zookeeper_server unit: ZK_CONNECT is empty"
    echo "$ZK_CONNECT"
}

do_install() {
    mkdir -p "$unit"
    bm_software zookeeper
    zkcli_path >/dev/null || bm_die "zkCli.sh not found after installing $PKG"
    bm_log "$PKG client installed ($(zkcli_path))"
}

do_configure() {
    local connect cli
    connect=$(connect_string)
    cli=$(zkcli_path) || bm_die "zkCli.sh is not installed; run install first"
    mkdir -p "$unit/bin" "$unit/logs"
    # The wrapper is a script: every path in it is quoted for bash by printf %q.
    {
        echo '#!/bin/bash'
        echo "# ZooKeeper CLI against this service's servers; written by the zookeeper_client script."
        echo '# Usage: bin/zkcli [zkCli.sh arguments, e.g. ls /]'
        printf '. %q\n' "$conf/zkclient.env"
        printf 'export ZOO_LOG_DIR=%q\n' "$unit/logs"
        # shellcheck disable=SC2016 # "$ZK_CONNECT" and "$@" are the wrapper's
        printf 'exec %q -server "$ZK_CONNECT" "$@"\n' "$cli"
    } | bm_write "$unit/bin/zkcli" 755
    bm_log "configured: servers $connect; CLI $unit/bin/zkcli"
}

do_check() {
    local connect cli node out timeout deadline
    connect=$(connect_string)
    cli=$(zkcli_path) || bm_die "zkCli.sh is not installed; run install first"
    mkdir -p "$unit/logs"
    export ZOO_LOG_DIR="$unit/logs"
    node="/bigmgr-check-${host//[^A-Za-z0-9_-]/_}-$$"
    timeout="${BIGMGR_ZK_CHECK_TIMEOUT:-60}"
    deadline=$((SECONDS + timeout))
    while :; do
        # One zkCli session per step: zkCli.sh runs a single command given on its command line.
        out=$( { timeout 30 "$cli" -server "$connect" create "$node" "$host" &&
                 timeout 30 "$cli" -server "$connect" get "$node";
                 timeout 30 "$cli" -server "$connect" delete "$node"; } </dev/null 2>&1 || true)
        if printf '%s\n' "$out" | grep -q "^Created $node" && printf '%s\n' "$out" | grep -qx -- "$host"; then
            bm_log "check passed: created, read and deleted $node through $connect"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$BM_NAME: check failed after ${timeout} s: could not create and read $node through $connect" >&2
            printf '%s\n' "$out" | grep -v -E '^\s*at |^$' | tail -n 20 >&2
            exit 1
        fi
        sleep 2
    done
}

do_remove() {
    bm_unit_rm "$unit/bin" "$unit/logs" "$conf" "$unit/data"
    bm_log "removed the client's files from $unit (the $PKG package stays)"
}

bm_main "${1:-}"
