#!/bin/sh
# hello_server: the demo stack's tiny daemon. It writes a heartbeat line with its greeting
# into the unit directory every few seconds, and keeps a pid file there.
#
# Usage: hello_server.sh install|configure|start|stop|restart|status|check|remove
# Reads BIGMGR_UNIT_DIR (required), BIGMGR_HOST and BIGMGR_ADDRESS (optional), and BIGMGR_LIB:
# the stack library the agent gives every script (bm_* functions, see docs/stacks.md).
# Every command is idempotent. status exits 0 if running, 3 if not (LSB).
#
# The daemon is the library's heartbeat daemon (bm_heartbeat_main): configure reads the
# greeting and the interval from conf/hello.conf, which the agent renders from the stack's
# template before running this script, into hello.run; start runs the loop with hello.pid and
# hello.log; check waits for its heartbeat file.
set -eu
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

bm_init hello
BM_LOG_PREFIX="hello "
bm_heartbeat_main 1.0.0 "$BM_UNIT/conf/hello.conf" hello "${1:-}"
