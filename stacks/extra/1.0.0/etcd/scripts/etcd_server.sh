#!/bin/bash
# etcd_server.sh: one member of the extra stack's etcd cluster.
# The unit runs its own etcd bound to BIGMGR_ADDRESS, member name = BIGMGR_HOST, data dir and
# log and pid file under BIGMGR_UNIT_DIR. The initial cluster comes from peers.cluster (rendered
# into conf/etcd.env), so the members of a new service bootstrap together; a unit added to a
# cluster that already runs joins it with `etcdctl member add` and initial-cluster-state existing.
#
# Usage: etcd_server.sh install|configure|start|stop|restart|status|check|remove
# Environment: BIGMGR_UNIT_DIR (required), BIGMGR_ADDRESS, BIGMGR_HOST, BIGMGR_CONTEXT (JSON file
# whose field `context` is the template context: properties, peers.cluster …), BIGMGR_LIB (the
# stack library: bm_* functions, docs/stacks.md).
# Files rendered by bigmgr before `configure`: conf/etcd.env (ETCD_* variables).
# Every command is idempotent. status exits 0 if running, 3 if not (LSB).
# start does not wait for quorum (the other members may start later): it waits until the local
# member listens. check (run once, on one unit) waits for every member to be healthy, then
# puts a key through one member and reads it from every other one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

bm_init etcd
BM_LOG_PREFIX="etcd "
# The member: its command line names this unit's data directory (so a recycled pid is never
# mistaken for it); stop gives it 60 s. stop and status are the library's (bm_daemon_stop,
# bm_daemon_status).
bm_daemon "$BM_UNIT/etcd.pid" "$BM_UNIT/etcd.log" "--data-dir=$BM_UNIT/data" 60
envfile="$BM_UNIT/conf/etcd.env"
data="$BM_UNIT/data"
export ETCDCTL_API=3

# ctx_members: one line per unit of peers.cluster: host address client_port peer_port self
# (self: true for this unit).
ctx_members() { bm_ctx_units peers.cluster host address configs.client_port configs.peer_port self; }

load_env() {
    [ -f "$envfile" ] || { echo "$envfile is missing; run configure first" >&2; exit 1; }
    set -a
    # shellcheck disable=SC1090
    . "$envfile"
    set +a
    # The data directory is the one the agent really uses, given on etcd's command line (where
    # it also tells this unit's etcd from any other process): etcd refuses the same setting
    # from its environment too.
    unset ETCD_DATA_DIR
    CLIENT_PORT="${BIGMGR_ETCD_CLIENT_PORT:?missing in $envfile}"
    PEER_PORT="${BIGMGR_ETCD_PEER_PORT:?missing in $envfile}"
}

ctl() { etcdctl --dial-timeout=2s --command-timeout="${CTL_TIMEOUT:-5s}" "$@"; }

# listening ADDRESS PORT...: every PORT of ADDRESS accepts connections.
listening() {
    local a="$1" p
    shift
    for p in "$@"; do bm_port_open "$a" "$p" || return 1; done
}

do_install() {
    mkdir -p "$BM_UNIT"
    if bm_have dpkg-query apt-get; then
        bm_software etcd
        # The package may have started its own system-wide etcd on localhost:2379/2380: units
        # run their own members, so stop and disable it (only when we installed it).
        case " $BM_PKG_NEW " in *" etcd-server "*) bm_quiet_service etcd 1 ;; esac
    elif ! bm_have etcd && { bm_have dnf || bm_have yum; }; then
        bm_pkg_install etcd
    fi
    bm_have etcd etcdctl || { echo "etcd/etcdctl not found after install" >&2; exit 1; }
    bm_log "installed for unit $BM_UNIT ($(etcd --version | head -n1))"
}

do_configure() {
    bm_have etcd || { echo "etcd is not installed; run install first" >&2; exit 1; }
    load_env
    chmod 700 "$BM_UNIT/conf" 2>/dev/null || true
    [ -n "${ETCD_INITIAL_CLUSTER:-}" ] || { echo "ETCD_INITIAL_CLUSTER is empty in $envfile (no peers?)" >&2; exit 1; }
    case ",$ETCD_INITIAL_CLUSTER," in
        *",$ETCD_NAME=$ETCD_INITIAL_ADVERTISE_PEER_URLS,"*) ;;
        *) echo "this member ($ETCD_NAME=$ETCD_INITIAL_ADVERTISE_PEER_URLS) is not in the initial cluster $ETCD_INITIAL_CLUSTER" >&2; exit 1 ;;
    esac
    local note=""
    [ -d "$data/member" ] && note=" (data dir exists: membership comes from it, not from the initial cluster)"
    bm_log "configured: member $ETCD_NAME, client $ETCD_ADVERTISE_CLIENT_URLS, peer $ETCD_INITIAL_ADVERTISE_PEER_URLS, initial cluster $ETCD_INITIAL_CLUSTER$note"
}

# A new member whose data dir is empty, while the other members already form a cluster that
# does not know it: add it (member add) and start it with initial-cluster-state existing.
maybe_join() {
    [ -d "$data/member" ] && return 0
    local others=() h a cp pp s list
    while read -r h a cp pp s; do
        [ -n "$h" ] && [ "$s" != true ] && others+=("http://$a:$cp")
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
    bm_already_running && return 0
    bm_have etcd || { echo "etcd is not installed; run install first" >&2; exit 1; }
    load_env
    maybe_join
    mkdir -p "$data"
    chmod 700 "$data"
    bm_daemon_spawn etcd --data-dir="$data"
    # Up to 60 s for the member to listen (quorum may come later).
    bm_daemon_wait 60 listening "$BM_ADDRESS" "$CLIENT_PORT" "$PEER_PORT" ||
        bm_die_log "$BM_DAEMON_LOG" "$BM_NAME did not listen on $BM_ADDRESS:$CLIENT_PORT and :$PEER_PORT"
    local state="waiting for quorum (the other members start in parallel)"
    CTL_TIMEOUT=2s ctl --endpoints="http://$BM_ADDRESS:$CLIENT_PORT" endpoint health >/dev/null 2>&1 &&
        state="healthy"
    bm_log "started (pid $(bm_daemon_pid)): member $ETCD_NAME on $BM_ADDRESS:$CLIENT_PORT (peer $PEER_PORT), $state"
}

do_check() {
    bm_have etcdctl || { echo "check failed: etcdctl is not installed" >&2; exit 1; }
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
    key="/bigmgr/check/$BM_HOST/$(date +%s%N)-$$-$RANDOM"
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
        if [ "$s" = true ]; then mine="http://$a:$pp"; else others+=("http://$a:$cp"); fi
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
    bm_daemon_stop
    leave_cluster
    bm_unit_rm "$data" "$BM_UNIT/conf" "$BM_DAEMON_LOG" "$BM_PIDFILE"
    bm_log "removed from $BM_UNIT (the package stays installed)"
}

bm_main "${1:-}"
