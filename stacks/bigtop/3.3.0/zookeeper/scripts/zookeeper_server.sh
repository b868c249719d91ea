#!/bin/bash
# zookeeper_server: one member of a ZooKeeper ensemble, run as this unit's own JVM.
#
# Usage: zookeeper_server.sh install|configure|start|stop|restart|status|check|remove
#
# Environment (set by the bigmgr agent):
#   BIGMGR_UNIT_DIR  the unit's directory (required); it holds the rendered conf/zoo.cfg,
#                    conf/zookeeper-env.sh, conf/zkclient.env and data/myid, and the
#                    server's data (data/), logs (logs/) and pid file (zookeeper_server.pid)
#   BIGMGR_ADDRESS   the address the server binds to (zoo.cfg's clientPortAddress says the same)
#   BIGMGR_HOST      the host's name, for messages
#   BIGMGR_CONTEXT   JSON file whose "context" holds peers.quorum: check asks every server
#   BIGMGR_ZK_CHECK_TIMEOUT  optional; seconds check waits for the ensemble (default 60)
#   BIGMGR_LIB       the stack library (bm_* functions, docs/stacks.md)
#
# Every command is idempotent. status exits 0 if the server runs, 3 if it does not.
# The server is started directly (java … QuorumPeerMain conf/zoo.cfg), detached, with its
# logs in logs/; start returns once the server answers "ruok" on its client port (it does
# not wait for a quorum: the other servers may not be started yet). check (run once, on one
# unit) waits until every server of peers.quorum answers "srvr" as leader or follower
# (standalone for a single server) with exactly one leader.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

bm_init zookeeper_server
PKG=zookeeper
address="$BM_ADDRESS"
conf="$BM_UNIT/conf"
data="$BM_UNIT/data"
logs="$BM_UNIT/logs"
# The server: its command line names this unit's zoo.cfg (so a recycled pid is never mistaken
# for it); the JVM's output goes to logs/zookeeper.out, its log4j log to logs/zookeeper.log,
# and a failed start shows both (log_tail). stop is the library's (bm_daemon_stop).
bm_daemon "$BM_UNIT/zookeeper_server.pid" "$logs/zookeeper.out" "$conf/zoo.cfg" 30
BM_DAEMON_TAIL=log_tail

# --- the server -----------------------------------------------------------------------------

java_bin() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "$JAVA_HOME/bin/java"; return 0; fi
    command -v java 2>/dev/null || return 1
}

# The classpath: Debian's libzookeeper-java (its jar's manifest names its dependencies) with
# the slf4j->log4j binding so the server logs into logs/, else a tarball-style layout.
zk_classpath() {
    local cp="$conf" j
    if [ -f /usr/share/java/zookeeper.jar ]; then
        cp="$cp:/usr/share/java/zookeeper.jar"
        for j in slf4j-log4j12 log4j-1.2; do
            [ -f "/usr/share/java/$j.jar" ] && cp="$cp:/usr/share/java/$j.jar"
        done
    else
        for j in /usr/lib/zookeeper/*.jar /usr/lib/zookeeper/lib/*.jar \
                 /usr/share/zookeeper/*.jar /usr/share/zookeeper/lib/*.jar; do
            [ -f "$j" ] && cp="$cp:$j"
        done
    fi
    [ "$cp" != "$conf" ] || return 1
    echo "$cp"
}

# fourlw ADDRESS PORT WORD: send a four letter word, print the answer (empty on failure).
fourlw() {
    # shellcheck disable=SC2016 # $1 $2 $3 belong to bash -c
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf %s "$3" >&3 && cat <&3' \
        fourlw "$1" "$2" "$3" </dev/null 2>/dev/null || true
}

# The directory the JVM runs in. zoo.cfg's dataDir is {{unit_dir}}/data; unit_dir is
# absolute once the agent reported its root, and relative to that root before: then the JVM
# runs in the root so the relative dataDir still means this unit's data directory.
run_dir() {
    local dd suffix root
    dd=$(bm_conf_get "$conf/zoo.cfg" dataDir)
    case "$dd" in
        "$data") echo "$BM_UNIT" ;;
        /*) bm_die "zoo.cfg's dataDir '$dd' is not this unit's data directory $data" ;;
        */data)
            suffix="${dd%/data}"; root="${BM_UNIT%/"$suffix"}"
            if [ "$root" = "$BM_UNIT" ] || [ "$root/$dd" != "$data" ]; then
                bm_die "zoo.cfg's dataDir '$dd' is not this unit's data directory $data"
            fi
            echo "$root" ;;
        *) bm_die "zoo.cfg's dataDir '$dd' is not this unit's data directory $data" ;;
    esac
}

client_port() {
    local p
    p=$(bm_conf_get "$conf/zoo.cfg" clientPort)
    echo "${p:-2181}"
}

log_tail() {
    echo "--- last lines of $logs/zookeeper.log ---" >&2
    bm_tail "$logs/zookeeper.log" 40
    echo "--- last lines of $BM_DAEMON_LOG ---" >&2
    bm_tail "$BM_DAEMON_LOG" 20
}

# zk_answers ADDRESS PORT: the server there answers "imok" to "ruok".
zk_answers() { [ "$(fourlw "$1" "$2" ruok)" = "imok" ]; }

# --- commands -------------------------------------------------------------------------------

do_install() {
    mkdir -p "$BM_UNIT"
    bm_software zookeeper
    # The package's own daemon (zookeeperd, Bigtop's zookeeper-server) must not hold the
    # ports the units use.
    bm_quiet_service zookeeper "$BM_PKG_NEW"
    bm_quiet_service zookeeper-server "$BM_PKG_NEW"
    java_bin >/dev/null || bm_pkg_install default-jre-headless
    java_bin >/dev/null || bm_die "no java found after installing $PKG"
    zk_classpath >/dev/null || bm_die "no ZooKeeper jars found after installing $PKG"
    bm_log "$PKG installed ($(java_bin))"
}

do_configure() {
    [ -f "$conf/zoo.cfg" ] || bm_die "$conf/zoo.cfg is missing (it is rendered by bigmgr before configure)"
    [ -f "$conf/zookeeper-env.sh" ] || bm_die "$conf/zookeeper-env.sh is missing"
    mkdir -p "$data" "$logs"
    local myid
    myid=$(tr -d '[:space:]' <"$data/myid" 2>/dev/null || true)
    case "$myid" in
        "" | *[!0-9]*) bm_die "data/myid is '$myid': this unit is not in peers.quorum, or myid was not rendered" ;;
    esac
    grep -q "^server\.$myid=" "$conf/zoo.cfg" || bm_die "zoo.cfg has no server.$myid line for this unit"
    run_dir >/dev/null
    # A static log4j setup; level and directory come from the JVM's system properties.
    bm_write "$conf/log4j.properties" <<'EOF'
# Written by the zookeeper_server script. Level: zookeeper-env's logLevel.
log4j.rootLogger=${zookeeper.root.logger}
log4j.appender.ROLLINGFILE=org.apache.log4j.RollingFileAppender
log4j.appender.ROLLINGFILE.File=${zookeeper.log.dir}/zookeeper.log
log4j.appender.ROLLINGFILE.MaxFileSize=10MB
log4j.appender.ROLLINGFILE.MaxBackupIndex=5
log4j.appender.ROLLINGFILE.layout=org.apache.log4j.PatternLayout
log4j.appender.ROLLINGFILE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
EOF
    local servers
    servers=$(grep -c '^server\.[0-9]*=' "$conf/zoo.cfg" || true)
    bm_log "configured: myid $myid, $servers server(s) in the ensemble, client port $address:$(client_port)"
}

do_start() {
    bm_already_running && return 0
    if [ ! -f "$conf/log4j.properties" ] || [ ! -s "$data/myid" ]; then do_configure; fi
    local java cp port rundir
    java=$(java_bin) || bm_die "java is not installed; run install first"
    cp=$(zk_classpath) || bm_die "ZooKeeper is not installed; run install first"
    ZK_HEAP_MB=256 ZK_JVM_FLAGS="" ZK_LOG_LEVEL=INFO
    # shellcheck disable=SC1091
    . "$conf/zookeeper-env.sh"
    port=$(client_port)
    rundir=$(run_dir)
    bm_need_free_port "$address" "$port"
    [ -z "$(fourlw "$address" "$port" ruok)" ] || bm_die "cannot start: another server already answers on $address:$port"
    mkdir -p "$data" "$logs"
    # shellcheck disable=SC2086 # ZK_JVM_FLAGS: several flags, split into words
    (cd "$rundir" && bm_daemon_spawn \
        "$java" -Xms"${ZK_HEAP_MB}m" -Xmx"${ZK_HEAP_MB}m" -XX:+UseG1GC -XX:-UsePerfData \
        -Djava.net.preferIPv4Stack=true \
        -Dzookeeper.log.dir="$logs" -Dzookeeper.root.logger="${ZK_LOG_LEVEL},ROLLINGFILE" \
        -Dlog4j.configuration="file:$conf/log4j.properties" \
        -Dzookeeper.jmx.log4j.disable=true \
        $ZK_JVM_FLAGS \
        -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$conf/zoo.cfg")
    # Wait until it answers on its client port (a server without quorum still answers ruok).
    bm_daemon_ready 90 "the server" "did not answer on $address:$port" zk_answers "$address" "$port"
    bm_log "started (pid $(bm_daemon_pid)), answering on $address:$port"
}

# serving: the `zookeeper.serving` alert's check. Exit 0 when the server serves requests (a
# leader, follower, observer or standalone), 2 when it does not (no quorum, or not answering);
# its first line says which.
do_serving() {
    local mode
    mode=$(fourlw "$address" "$(client_port)" srvr | sed -n 's/^Mode: //p')
    case "$mode" in
        leader | follower | observer | standalone) echo "serving as $mode" ;;
        "") echo "not serving requests on $address:$(client_port): no quorum, or not running"; exit 2 ;;
        *) echo "unexpected mode '$mode' on $address:$(client_port)"; exit 1 ;;
    esac
}

do_status() {
    bm_daemon_running || { bm_log "not running"; exit 3; }
    local mode
    mode=$(fourlw "$address" "$(client_port)" srvr | sed -n 's/^Mode: //p')
    bm_log "running (pid $(bm_daemon_pid)), mode ${mode:-unknown (no quorum yet?)}"
}

# The servers to ask: peers.quorum of the context, else the rendered connect string.
ensemble() {
    if bm_ctx_present; then
        bm_ctx_units peers.quorum address configs.clientPort host
    elif [ -f "$conf/zkclient.env" ]; then
        local ZK_CONNECT="" hp
        # shellcheck disable=SC1091
        . "$conf/zkclient.env"
        for hp in ${ZK_CONNECT//,/ }; do echo "${hp%:*} ${hp##*:} ${hp%:*}"; done
    else
        bm_die "neither BIGMGR_CONTEXT nor conf/zkclient.env says which servers to check"
    fi
}

do_check() {
    local servers n timeout deadline grace report leaders bad addr port h answer mode
    servers=$(ensemble)
    n=$(printf '%s\n' "$servers" | grep -c . || true)
    [ "$n" -gt 0 ] || bm_die "check failed: peers.quorum is empty"
    timeout="${BIGMGR_ZK_CHECK_TIMEOUT:-60}"
    deadline=$((SECONDS + timeout))
    # Every server should answer; a server down is tolerated after a grace period as long
    # as a quorum (a majority) serves with one leader — the ensemble still works, as it must
    # with one node stopped.
    grace=$((SECONDS + ${BIGMGR_ZK_CHECK_GRACE:-10}))
    while :; do
        report="" leaders=0 bad=0
        while read -r addr port h; do
            answer=$(fourlw "$addr" "$port" srvr)
            mode=$(printf '%s\n' "$answer" | sed -n 's/^Mode: //p')
            report="$report  $h $addr:$port: ${mode:-no answer${answer:+ ($(printf '%s' "$answer" | head -n 1))}}"$'\n'
            case "$mode" in
                leader) leaders=$((leaders + 1)) ;;
                follower) ;;
                standalone) [ "$n" -eq 1 ] || bad=$((bad + 1)) ;;
                *) bad=$((bad + 1)) ;;
            esac
        done <<<"$servers"
        if [ $bad -eq 0 ] && { [ "$n" -eq 1 ] || [ $leaders -eq 1 ]; }; then
            bm_log "check passed: $n server(s), ${leaders} leader"
            printf '%s' "$report"
            return 0
        fi
        if [ $SECONDS -ge $grace ] && [ $leaders -eq 1 ] && [ $(( (n - bad) * 2 )) -gt "$n" ]; then
            bm_log "check passed with a quorum: $((n - bad)) of $n server(s) serving, 1 leader;" \
                "$bad not serving"
            printf '%s' "$report"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$BM_NAME: check failed after ${timeout} s: $bad server(s) not serving, $leaders leader(s) among $n" >&2
            printf '%s' "$report" >&2
            exit 1
        fi
        sleep 1
    done
}

do_remove() {
    bm_daemon_stop
    bm_unit_rm "$conf" "$data" "$logs" "$BM_PIDFILE"
    bm_log "removed the server's data, logs and configs from $BM_UNIT (the $PKG package stays)"
}

BM_COMMANDS="install configure start stop restart status check remove serving"
bm_main "${1:-}"
