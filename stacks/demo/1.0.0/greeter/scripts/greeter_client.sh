#!/bin/sh
# greeter_client: the demo stack's client. It installs nothing but a marker and a config
# file; check prints the greeting the config holds.
#
# Usage: greeter_client.sh install|configure|check|remove
# Reads BIGMGR_UNIT_DIR (required), BIGMGR_HOST and BIGMGR_ADDRESS (optional), and BIGMGR_LIB:
# the stack library the agent gives every script (bm_* functions, see docs/stacks.md).
# Every command is idempotent.
set -eu
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

NAME=greeter_client
BM_COMMANDS="install configure check remove"
bm_init "$NAME"
BM_LOG_PREFIX="$NAME "
unit="$BM_UNIT"
conf="$unit/$NAME.conf"

do_install() {
    mkdir -p "$unit"
    if [ -f "$unit/installed" ]; then bm_log "already installed"; return 0; fi
    echo "$NAME 1.0.0 installed on $BM_HOST" > "$unit/installed"
    bm_log "installed in $unit"
}

do_configure() {
    [ -f "$unit/installed" ] || bm_die "is not installed; run install first"
    greeting="greetings"
    # The agent renders conf/greeter-client.conf from the stack's template before this runs.
    if [ -f "$unit/conf/greeter-client.conf" ]; then
        g=$(sed -n 's/^greeting=//p' "$unit/conf/greeter-client.conf" | tail -n 1)
        [ -n "$g" ] && greeting="$g"
    fi
    printf 'greeting=%s\nhost=%s\naddress=%s\n' "$greeting" "$BM_HOST" "$BM_ADDRESS" | bm_write "$conf"
    bm_log "configured: $(tr '\n' ' ' < "$conf")"
}

do_check() {
    [ -f "$unit/installed" ] || { echo "check failed: $NAME is not installed" >&2; exit 1; }
    [ -f "$conf" ] || { echo "check failed: $NAME is not configured" >&2; exit 1; }
    echo "check passed: $(sed -n 's/^greeting=//p' "$conf"), from $BM_HOST"
}

do_remove() {
    bm_unit_clear
    bm_log "removed from $unit"
}

bm_main "${1:-}"
