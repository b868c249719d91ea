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
#
# Every command is idempotent. check creates, reads and deletes a znode through the connect
# string, so it passes only when the ensemble has a quorum and serves writes.
set -euo pipefail

NAME=zookeeper_client
PKG=zookeeper
cmd="${1:-}"
unit="${BIGMGR_UNIT_DIR:?BIGMGR_UNIT_DIR is not set}"
case "$unit" in "" | "/") echo "refusing to use unit dir '$unit'" >&2; exit 2 ;; esac
unit="${unit%/}"
host="${BIGMGR_HOST:-$(hostname)}"
conf="$unit/conf"

log() { echo "$NAME[$host]: $*"; }
die() { echo "$NAME[$host]: $*" >&2; exit 1; }

pkg_installed() {
    local st
    if command -v dpkg-query >/dev/null 2>&1; then
        st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
        [ "$st" = "install ok installed" ]
    else
        rpm -q "$1" >/dev/null 2>&1
    fi
}

# Installs the packages that are missing. Several units on one machine may install at once:
# they take turns on a lock, and the one that comes second finds the package installed.
pkg_install() {
    local missing=() p
    for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    (
        flock -w 1200 9 || { echo "timed out waiting for /var/lock/bigmgr-pkg.lock" >&2; exit 1; }
        missing=()
        for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
        [ ${#missing[@]} -eq 0 ] && exit 0
        log "installing ${missing[*]}"
        if command -v apt-get >/dev/null 2>&1; then
            export DEBIAN_FRONTEND=noninteractive
            apt_opts=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
            apt-get install "${apt_opts[@]}" "${missing[@]}" ||
                { apt-get update -q -o DPkg::Lock::Timeout=600 && apt-get install "${apt_opts[@]}" "${missing[@]}"; }
        elif command -v dnf >/dev/null 2>&1; then
            dnf install -y -q "${missing[@]}"
        elif command -v yum >/dev/null 2>&1; then
            yum install -y -q "${missing[@]}"
        else
            echo "no known package manager (apt-get, dnf, yum) to install ${missing[*]}" >&2
            exit 1
        fi
    ) 9>/var/lock/bigmgr-pkg.lock || die "installing $* failed"
}

zkcli_path() {
    local c
    for c in /usr/share/zookeeper/bin/zkCli.sh /usr/lib/zookeeper/bin/zkCli.sh /usr/bin/zookeeper-client; do
        [ -x "$c" ] && { echo "$c"; return 0; }
    done
    command -v zkCli.sh 2>/dev/null || return 1
}

connect_string() {
    local ZK_CONNECT=""
    [ -f "$conf/zkclient.env" ] || die "$conf/zkclient.env is missing (it is rendered by bigmgr before configure)"
    # shellcheck disable=SC1091
    . "$conf/zkclient.env"
    [ -n "$ZK_CONNECT" ] || die "the service has no zookeeper_server unit: ZK_CONNECT is empty"
    echo "$ZK_CONNECT"
}

do_install() {
    mkdir -p "$unit"
    pkg_install "$PKG"
    zkcli_path >/dev/null || die "zkCli.sh not found after installing $PKG"
    log "$PKG client installed ($(zkcli_path))"
}

do_configure() {
    local connect cli
    connect=$(connect_string)
    cli=$(zkcli_path) || die "zkCli.sh is not installed; run install first"
    mkdir -p "$unit/bin" "$unit/logs"
    # The wrapper is a script: every path in it is quoted for bash by printf %q.
    {
        echo '#!/bin/bash'
        echo "# ZooKeeper CLI against this service's servers; written by the zookeeper_client script."
        echo '# Usage: bin/zkcli [zkCli.sh arguments, e.g. ls /]'
        printf '. %q\n' "$conf/zkclient.env"
        printf 'export ZOO_LOG_DIR=%q\n' "$unit/logs"
        printf 'exec %q -server "$ZK_CONNECT" "$@"\n' "$cli"
    } >"$unit/bin/zkcli.tmp"
    chmod 755 "$unit/bin/zkcli.tmp"
    mv "$unit/bin/zkcli.tmp" "$unit/bin/zkcli"
    log "configured: servers $connect; CLI $unit/bin/zkcli"
}

do_check() {
    local connect cli node out timeout deadline
    connect=$(connect_string)
    cli=$(zkcli_path) || die "zkCli.sh is not installed; run install first"
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
            log "check passed: created, read and deleted $node through $connect"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$NAME: check failed after ${timeout} s: could not create and read $node through $connect" >&2
            printf '%s\n' "$out" | grep -v -E '^\s*at |^$' | tail -n 20 >&2
            exit 1
        fi
        sleep 2
    done
}

do_remove() {
    rm -rf "${unit:?}/bin" "${unit:?}/logs" "${unit:?}/conf" "${unit:?}/data"
    log "removed the client's files from $unit (the $PKG package stays)"
}

case "$cmd" in
    install) do_install ;;
    configure) do_configure ;;
    check) do_check ;;
    remove) do_remove ;;
    *) echo "usage: $0 install|configure|check|remove (got '$cmd')" >&2; exit 2 ;;
esac
