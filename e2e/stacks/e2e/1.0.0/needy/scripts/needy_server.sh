#!/bin/sh
# needy_server: `start` runs a tool that is not installed (and fails saying so); every other
# command succeeds at once.
set -e
case "${1:-}" in
  start)
    echo "starting needy"
    no-such-tool-for-bigmgr --serve
    ;;
  *) exit 0 ;;
esac
