#!/bin/sh
# sleeper_server: `work` prints a numbered line a second for a minute; every other command
# succeeds at once (there is nothing to install, configure or run).
set -eu
case "${1:-}" in
  work)
    i=0
    while [ "$i" -lt 60 ]; do
      i=$((i + 1))
      echo "working $i"
      sleep 1
    done
    ;;
  status) exit 0 ;;
  *) echo "sleeper: $1" ;;
esac
