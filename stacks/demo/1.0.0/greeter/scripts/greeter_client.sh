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

bm_init greeter_client
BM_COMMANDS="install configure check remove"
BM_LOG_PREFIX="greeter_client "
conf="$BM_UNIT/greeter_client.conf"

do_install() { bm_mark_installed 1.0.0; }

do_configure() {
    bm_need_installed
    # The agent renders conf/greeter-client.conf from the stack's template before this runs.
    greeting=$(bm_conf_get "$BM_UNIT/conf/greeter-client.conf" greeting)
    printf 'greeting=%s\nhost=%s\naddress=%s\n' "${greeting:-greetings}" "$BM_HOST" "$BM_ADDRESS" | bm_write "$conf"
    bm_log "configured: $(tr '\n' ' ' <"$conf")"
}

do_check() {
    [ -f "$BM_UNIT/installed" ] || { echo "check failed: $BM_NAME is not installed" >&2; exit 1; }
    [ -f "$conf" ] || { echo "check failed: $BM_NAME is not configured" >&2; exit 1; }
    echo "check passed: $(bm_conf_get "$conf" greeting), from $BM_HOST"
}

do_remove() {
    bm_unit_clear
    bm_log "removed from $BM_UNIT"
}

bm_main "${1:-}"
