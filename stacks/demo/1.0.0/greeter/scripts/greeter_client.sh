#!/bin/sh
# greeter_client: the demo stack's client. It installs nothing but a marker and a config
# file; check prints the greeting the config holds.
#
# Usage: greeter_client.sh install|configure|check|remove
# Reads BIGMGR_UNIT_DIR (required), BIGMGR_HOST and BIGMGR_ADDRESS (optional).
# Every command is idempotent.
set -eu

NAME=greeter_client
cmd="${1:-}"
unit="${BIGMGR_UNIT_DIR:?BIGMGR_UNIT_DIR is not set}"
case "$unit" in "" | "/") echo "refusing to use unit dir '$unit'" >&2; exit 2 ;; esac
conf="$unit/$NAME.conf"

do_install() {
    mkdir -p "$unit"
    if [ -f "$unit/installed" ]; then echo "$NAME already installed"; return 0; fi
    echo "$NAME 1.0.0 installed on ${BIGMGR_HOST:-$(hostname)}" > "$unit/installed"
    echo "$NAME installed in $unit"
}

do_configure() {
    [ -f "$unit/installed" ] || { echo "$NAME is not installed; run install first" >&2; exit 1; }
    greeting="greetings"
    # The agent renders conf/greeter-client.conf from the stack's template before this runs.
    if [ -f "$unit/conf/greeter-client.conf" ]; then
        g=$(sed -n 's/^greeting=//p' "$unit/conf/greeter-client.conf" | tail -n 1)
        [ -n "$g" ] && greeting="$g"
    fi
    tmp="$conf.tmp.$$"
    {
        echo "greeting=$greeting"
        echo "host=${BIGMGR_HOST:-$(hostname)}"
        echo "address=${BIGMGR_ADDRESS:-127.0.0.1}"
    } > "$tmp"
    mv "$tmp" "$conf"
    echo "$NAME configured: $(tr '\n' ' ' < "$conf")"
}

do_check() {
    [ -f "$unit/installed" ] || { echo "check failed: $NAME is not installed" >&2; exit 1; }
    [ -f "$conf" ] || { echo "check failed: $NAME is not configured" >&2; exit 1; }
    echo "check passed: $(sed -n 's/^greeting=//p' "$conf"), from ${BIGMGR_HOST:-$(hostname)}"
}

do_remove() {
    rm -rf "$unit"/* "$unit"/.[!.]* "$unit"/..?*
    echo "$NAME removed from $unit"
}

case "$cmd" in
    install) do_install ;;
    configure) do_configure ;;
    check) do_check ;;
    remove) do_remove ;;
    *) echo "usage: $0 install|configure|check|remove (got '$cmd')" >&2; exit 2 ;;
esac
