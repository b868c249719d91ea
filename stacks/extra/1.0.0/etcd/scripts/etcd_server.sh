#!/bin/bash
# etcd_server.sh: one member of the extra stack's etcd cluster.
# The unit runs its own etcd bound to BIGMGR_ADDRESS, member name = BIGMGR_HOST, data dir and
# log and pid file under BIGMGR_UNIT_DIR. The initial cluster comes from peers.cluster (rendered
# into conf/etcd.env), so the members of a new service bootstrap together; a unit added to a
# cluster that already runs joins it with `etcdctl member add` and initial-cluster-state existing.
#
# Usage: etcd_server.sh install|configure|start|stop|restart|status|check|remove
# Environment: BIGMGR_UNIT_DIR (required), BIGMGR_ADDRESS, BIGMGR_HOST, BIGMGR_CONTEXT (JSON file
# whose field `context` is the template context: properties, peers.cluster …).
# Files rendered by bigmgr before `configure`: conf/etcd.env (ETCD_* variables).
# Every command is idempotent. status exits 0 if running, 3 if not (LSB).
# start does not wait for quorum (the other members may start later): it waits until the local
# member listens. check (run once, on one unit) waits for every member to be healthy, then
# puts a key through one member and reads it from every other one.
set -euo pipefail

NAME=etcd
cmd="${1:-}"
unit="${BIGMGR_UNIT_DIR:?BIGMGR_UNIT_DIR is not set}"
case "$unit" in "" | "/") echo "refusing to use unit dir '$unit'" >&2; exit 2 ;; esac
case "$unit" in /*) ;; *) unit="$PWD/$unit" ;; esac  # the daemons chdir: keep paths absolute
address="${BIGMGR_ADDRESS:-127.0.0.1}"
host="${BIGMGR_HOST:-$(hostname)}"
envfile="$unit/conf/etcd.env"
pidfile="$unit/etcd.pid"
log="$unit/etcd.log"
data="$unit/data"
export ETCDCTL_API=3

log_tail() { [ -f "$log" ] && tail -n "${1:-30}" "$log" >&2 || true; }

# ctx_members: one line per unit of peers.cluster: host address client_port peer_port self
ctx_members() {
    [ -n "${BIGMGR_CONTEXT:-}" ] && [ -f "$BIGMGR_CONTEXT" ] || {
        echo "BIGMGR_CONTEXT is not set or missing; cannot find the other members" >&2; return 1; }
    python3 -c '
import json, sys
c = json.load(open(sys.argv[1])).get("context", {})
for u in (c.get("peers") or {}).get("cluster") or []:
    cf = u.get("configs") or {}
    print(u["host"], u["address"], cf.get("client_port", c.get("client_port", 2379)),
          cf.get("peer_port", c.get("peer_port", 2380)), "self" if u.get("self") else "-")' "$BIGMGR_CONTEXT"
}

load_env() {
    [ -f "$envfile" ] || { echo "$envfile is missing; run configure first" >&2; exit 1; }
    set -a
    # shellcheck disable=SC1090
    . "$envfile"
    set +a
    export ETCD_DATA_DIR="$data"
    CLIENT_PORT="${BIGMGR_ETCD_CLIENT_PORT:?missing in $envfile}"
    PEER_PORT="${BIGMGR_ETCD_PEER_PORT:?missing in $envfile}"
}

ctl() { etcdctl --dial-timeout=2s --command-timeout="${CTL_TIMEOUT:-5s}" "$@"; }

running() {
    [ -f "$pidfile" ] || return 1
    local pid
    pid="$(cat "$pidfile" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    grep -qa 'etcd' "/proc/$pid/cmdline" 2>/dev/null || [ ! -d /proc ]
}

listening() { # listening ADDRESS PORT
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

do_install() {
    mkdir -p "$unit"
    if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        local pkgs=(etcd-server etcd-client) missing=() p
        for p in "${pkgs[@]}"; do pkg_installed "$p" || missing+=("$p"); done
        if [ ${#missing[@]} -gt 0 ]; then
            echo "installing ${missing[*]}"
            # One apt at a time on this machine, even with several units installing at once.
            flock -w 1200 /var/lock/bigmgr-pkg.lock bash -c '
                set -e
                for p in "$@"; do
                    dpkg-query -W -f="\${Status}" "$p" 2>/dev/null | grep -q "install ok installed" || todo+=("$p")
                done
                [ ${#todo[@]} -eq 0 ] && exit 0
                export DEBIAN_FRONTEND=noninteractive
                apt-get install -y -q -o DPkg::Lock::Timeout=600 "${todo[@]}" ||
                    { apt-get update -q -o DPkg::Lock::Timeout=600 &&
                      apt-get install -y -q -o DPkg::Lock::Timeout=600 "${todo[@]}"; }
            ' bigmgr-apt "${missing[@]}"
            # The package may have started its own system-wide etcd on localhost:2379/2380:
            # units run their own members, so stop and disable it (only when we installed it).
            case " ${missing[*]} " in
                *" etcd-server "*)
                    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
                        systemctl disable --now etcd >/dev/null 2>&1 || true
                    elif command -v service >/dev/null 2>&1; then
                        service etcd stop >/dev/null 2>&1 || true
                        command -v update-rc.d >/dev/null 2>&1 && update-rc.d etcd disable >/dev/null 2>&1 || true
                    fi ;;
            esac
        fi
    elif command -v dnf >/dev/null 2>&1 || command -v yum >/dev/null 2>&1; then
        command -v etcd >/dev/null 2>&1 ||
            flock -w 1200 /var/lock/bigmgr-pkg.lock "$(command -v dnf || command -v yum)" install -y etcd
    fi
    command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1 || {
        echo "etcd/etcdctl not found after install" >&2; exit 1; }
    echo "$NAME installed for unit $unit ($(etcd --version | head -n1))"
}

do_configure() {
    command -v etcd >/dev/null 2>&1 || { echo "etcd is not installed; run install first" >&2; exit 1; }
    load_env
    chmod 700 "$unit/conf" 2>/dev/null || true
    [ -n "${ETCD_INITIAL_CLUSTER:-}" ] || { echo "ETCD_INITIAL_CLUSTER is empty in $envfile (no peers?)" >&2; exit 1; }
    case ",$ETCD_INITIAL_CLUSTER," in
        *",$ETCD_NAME=$ETCD_INITIAL_ADVERTISE_PEER_URLS,"*) ;;
        *) echo "this member ($ETCD_NAME=$ETCD_INITIAL_ADVERTISE_PEER_URLS) is not in the initial cluster $ETCD_INITIAL_CLUSTER" >&2; exit 1 ;;
    esac
    local note=""
    [ -d "$data/member" ] && note=" (data dir exists: membership comes from it, not from the initial cluster)"
    echo "$NAME configured: member $ETCD_NAME, client $ETCD_ADVERTISE_CLIENT_URLS, peer $ETCD_INITIAL_ADVERTISE_PEER_URLS, initial cluster $ETCD_INITIAL_CLUSTER$note"
}

# A new member whose data dir is empty, while the other members already form a cluster that
# does not know it: add it (member add) and start it with initial-cluster-state existing.
maybe_join() {
    [ -d "$data/member" ] && return 0
    local others=() h a cp pp s list
    while read -r h a cp pp s; do
        [ -n "$h" ] && [ "$s" != self ] && others+=("http://$a:$cp")
    done < <(ctx_members 2>/dev/null || true)
    [ ${#others[@]} -gt 0 ] || return 0
    local eps
    eps="$(IFS=,; echo "${others[*]}")"
    # Without quorum (the usual case: every member is starting now) this fails fast: bootstrap.
    list="$(CTL_TIMEOUT=3s ctl --endpoints="$eps" member list 2>/dev/null)" || return 0
    if grep -q "$ETCD_INITIAL_ADVERTISE_PEER_URLS" <<<"$list"; then
        return 0  # the cluster already expects this member (bootstrapped with it)
    fi
    echo "the cluster at $eps runs without this member: adding $ETCD_NAME ($ETCD_INITIAL_ADVERTISE_PEER_URLS)"
    local out n=0
    # etcd refuses to add a member until every started member has been up for a few seconds
    # ("unhealthy cluster"): retry for a while.
    until out="$(CTL_TIMEOUT=10s ctl --endpoints="$eps" member add "$ETCD_NAME" \
            --peer-urls="$ETCD_INITIAL_ADVERTISE_PEER_URLS" 2>&1)"; do
        n=$((n + 1))
        if [ $n -ge 20 ]; then echo "etcdctl member add failed: $out" >&2; exit 1; fi
        sleep 3
    done
    ETCD_INITIAL_CLUSTER="$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$out")"
    [ -n "$ETCD_INITIAL_CLUSTER" ] || { echo "cannot read the initial cluster from: $out" >&2; exit 1; }
    export ETCD_INITIAL_CLUSTER ETCD_INITIAL_CLUSTER_STATE=existing
    echo "joining with initial cluster $ETCD_INITIAL_CLUSTER"
}

do_start() {
    if running; then echo "$NAME already running (pid $(cat "$pidfile"))"; return 0; fi
    command -v etcd >/dev/null 2>&1 || { echo "etcd is not installed; run install first" >&2; exit 1; }
    load_env
    maybe_join
    mkdir -p "$data"
    chmod 700 "$data"
    rm -f "$pidfile"
    # The launcher writes its own pid and execs etcd, so the pid file holds etcd's pid.
    setsid nohup sh -c 'echo $$ > "$1"; shift; exec "$@"' etcd-launch "$pidfile" etcd \
        </dev/null >>"$log" 2>&1 &
    local n=0
    while [ $n -lt 300 ]; do  # up to 60 s for the member to listen (quorum may come later)
        if [ -s "$pidfile" ] && ! running; then break; fi
        if running && listening "$address" "$CLIENT_PORT" && listening "$address" "$PEER_PORT"; then
            local state="waiting for quorum (the other members start in parallel)"
            CTL_TIMEOUT=2s ctl --endpoints="http://$address:$CLIENT_PORT" endpoint health >/dev/null 2>&1 &&
                state="healthy"
            echo "$NAME started (pid $(cat "$pidfile")): member $ETCD_NAME on $address:$CLIENT_PORT (peer $PEER_PORT), $state"
            return 0
        fi
        sleep 0.2; n=$((n + 1))
    done
    echo "$NAME did not listen on $address:$CLIENT_PORT and :$PEER_PORT; last lines of $log:" >&2
    log_tail
    exit 1
}

do_stop() {
    if ! running; then rm -f "$pidfile"; echo "$NAME already stopped"; return 0; fi
    local pid n=0
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    while [ $n -lt 300 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.2; n=$((n + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$NAME pid $pid did not stop within 60s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
    echo "$NAME stopped (was pid $pid)"
}

do_status() {
    if running; then echo "$NAME is running (pid $(cat "$pidfile"))"; exit 0; fi
    echo "$NAME is not running"
    exit 3
}

do_check() {
    command -v etcdctl >/dev/null 2>&1 || { echo "check failed: etcdctl is not installed" >&2; exit 1; }
    local eps=() h a cp pp s
    while read -r h a cp pp s; do
        [ -n "$h" ] && eps+=("http://$a:$cp")
    done < <(ctx_members)
    [ ${#eps[@]} -gt 0 ] || { echo "check failed: no members in peers.cluster" >&2; exit 1; }
    local all out n=0
    all="$(IFS=,; echo "${eps[*]}")"
    while :; do  # up to ~90 s for quorum and every member to be healthy
        if out="$(CTL_TIMEOUT=5s ctl --endpoints="$all" endpoint health 2>&1)"; then break; fi
        n=$((n + 1))
        if [ $n -ge 45 ]; then
            echo "check failed: not every member is healthy:" >&2; echo "$out" >&2; exit 1
        fi
        sleep 2
    done
    echo "$out"
    local members
    members="$(ctl --endpoints="$all" member list 2>&1)" || { echo "check failed: member list: $members" >&2; exit 1; }
    local count
    count="$(grep -c ', started, ' <<<"$members" || true)"
    if [ "$count" -ne ${#eps[@]} ]; then
        echo "check failed: $count started members, expected ${#eps[@]}:" >&2; echo "$members" >&2; exit 1
    fi
    echo "$count members started"

    local key val got e
    key="/bigmgr/check/$host/$(date +%s%N)-$$-$RANDOM"
    val="ok-$RANDOM$RANDOM"
    got="$(ctl --endpoints="${eps[0]}" put "$key" "$val" 2>&1)" || { echo "check failed: put on ${eps[0]}: $got" >&2; exit 1; }
    echo "put $key through ${eps[0]}"
    local failed=0
    for e in "${eps[@]}"; do
        n=0; got=""
        while [ $n -lt 30 ]; do  # serializable read: what this member itself has applied
            got="$(ctl --endpoints="$e" get "$key" --print-value-only --consistency=s 2>/dev/null || true)"
            [ "$got" = "$val" ] && break
            sleep 0.5; n=$((n + 1))
        done
        if [ "$got" = "$val" ]; then echo "member $e has the key"; else
            echo "check failed: member $e does not have $key after 15s (got '$got')" >&2; failed=1; fi
    done
    ctl --endpoints="$all" del "$key" >/dev/null 2>&1 || true
    [ $failed -eq 0 ] || exit 1
    echo "check passed: ${#eps[@]} healthy members replicate"
}

# Best effort: when the other members keep running with quorum, take this member out of the
# cluster so that it does not count against quorum and a new unit can join at its address.
leave_cluster() {
    local others=() h a cp pp s mine="" eps list id
    while read -r h a cp pp s; do
        [ -z "$h" ] && continue
        if [ "$s" = self ]; then mine="http://$a:$pp"; else others+=("http://$a:$cp"); fi
    done < <(ctx_members 2>/dev/null || true)
    [ -n "$mine" ] && [ ${#others[@]} -gt 0 ] || return 0
    eps="$(IFS=,; echo "${others[*]}")"
    list="$(CTL_TIMEOUT=3s ctl --endpoints="$eps" member list 2>/dev/null)" || return 0
    id="$(awk -F', ' -v u="$mine" '$4 == u { print $1 }' <<<"$list")"
    [ -n "$id" ] || return 0
    if CTL_TIMEOUT=5s ctl --endpoints="$eps" member remove "$id" >/dev/null 2>&1; then
        echo "removed member $id ($mine) from the cluster"
    else
        echo "could not remove member $id ($mine) from the cluster (no quorum?); leaving it"
    fi
}

do_remove() {
    do_stop
    leave_cluster
    rm -rf "${unit:?}/data" "$unit/conf" "$log" "$pidfile"
    echo "$NAME removed from $unit (the package stays installed)"
}

case "$cmd" in
    install) do_install ;;
    configure) do_configure ;;
    start) do_start ;;
    stop) do_stop ;;
    restart) do_stop; do_start ;;
    status) do_status ;;
    check) do_check ;;
    remove) do_remove ;;
    *) echo "usage: $0 install|configure|start|stop|restart|status|check|remove (got '$cmd')" >&2; exit 2 ;;
esac
