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
#
# Every command is idempotent. status exits 0 if the server runs, 3 if it does not.
# The server is started directly (java … QuorumPeerMain conf/zoo.cfg), detached, with its
# logs in logs/; start returns once the server answers "ruok" on its client port (it does
# not wait for a quorum: the other servers may not be started yet). check (run once, on one
# unit) waits until every server of peers.quorum answers "srvr" as leader or follower
# (standalone for a single server) with exactly one leader.
set -euo pipefail

NAME=zookeeper_server
PKG=zookeeper
cmd="${1:-}"
unit="${BIGMGR_UNIT_DIR:?BIGMGR_UNIT_DIR is not set}"
case "$unit" in "" | "/") echo "refusing to use unit dir '$unit'" >&2; exit 2 ;; esac
unit="${unit%/}"
address="${BIGMGR_ADDRESS:-127.0.0.1}"
host="${BIGMGR_HOST:-$(hostname)}"
conf="$unit/conf"
data="$unit/data"
logs="$unit/logs"
pidfile="$unit/$NAME.pid"
outlog="$logs/zookeeper.out"

log() { echo "$NAME[$host]: $*"; }
die() { echo "$NAME[$host]: $*" >&2; exit 1; }

# --- packages -------------------------------------------------------------------------------

pkg_installed() {
    local st
    if command -v dpkg-query >/dev/null 2>&1; then
        st=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
        [ "$st" = "install ok installed" ]
    else
        rpm -q "$1" >/dev/null 2>&1
    fi
}

# Installs the packages that are missing; sets PKG_FRESH=1 if it installed any. Several
# units on one machine may install at once: they take turns on a lock, and the one that
# comes second finds the package installed.
PKG_FRESH=0
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
    PKG_FRESH=1
}

# The package's own daemon (zookeeperd, Bigtop's zookeeper-server) must not hold the ports
# the units use: stop it if it runs, and disable it if it ran or was just installed. Only the
# init system is asked; no process is killed by name.
quiet_system_service() {
    local svc="$1" fresh="$2" was_active=0
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet "$svc" 2>/dev/null; then
            was_active=1; log "stopping the package's own $svc service"
            systemctl stop "$svc" || true
        fi
        if [ $was_active = 1 ] || [ "$fresh" = 1 ]; then
            systemctl is-enabled --quiet "$svc" 2>/dev/null && systemctl disable "$svc" 2>/dev/null || true
        fi
    elif [ -x "/etc/init.d/$svc" ]; then
        if service "$svc" status >/dev/null 2>&1; then
            was_active=1; log "stopping the package's own $svc service"
            service "$svc" stop || true
        fi
        if [ $was_active = 1 ] || [ "$fresh" = 1 ]; then
            if command -v update-rc.d >/dev/null 2>&1; then update-rc.d "$svc" disable >/dev/null 2>&1 || true
            elif command -v chkconfig >/dev/null 2>&1; then chkconfig "$svc" off >/dev/null 2>&1 || true; fi
        fi
    fi
}

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

# Running means: the pid file names a live process that is this unit's server (its command
# line names this unit's zoo.cfg), so a recycled pid is never mistaken for it.
running() {
    local pid cmdline
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    case "$pid" in "" | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *" $conf/zoo.cfg"* ]]
}

# fourlw ADDRESS PORT WORD: send a four letter word, print the answer (empty on failure).
fourlw() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf %s "$3" >&3 && cat <&3' \
        fourlw "$1" "$2" "$3" </dev/null 2>/dev/null || true
}

# port_holders ADDRESS PORT: what already listens on ADDRESS:PORT or on the wildcard address
# (empty if nothing, or if ss is not available).
port_holders() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -Hltnp "sport = :$2" 2>/dev/null | awk -v a="$1:$2" -v p=":$2" \
        '$4 == a || $4 == "0.0.0.0" p || $4 == "*" p || $4 == "[::]" p { print $4, $6 }' || true
}

# The directory the JVM runs in. zoo.cfg's dataDir is {{unit_dir}}/data; unit_dir is
# absolute once the agent reported its root, and relative to that root before: then the JVM
# runs in the root so the relative dataDir still means this unit's data directory.
run_dir() {
    local dd suffix root
    dd=$(sed -n 's/^dataDir=//p' "$conf/zoo.cfg" 2>/dev/null | tail -n 1)
    case "$dd" in
        "$unit/data") echo "$unit" ;;
        /*) die "zoo.cfg's dataDir '$dd' is not this unit's data directory $unit/data" ;;
        */data)
            suffix="${dd%/data}"; root="${unit%/"$suffix"}"
            [ "$root" != "$unit" ] && [ "$root/$dd" = "$unit/data" ] ||
                die "zoo.cfg's dataDir '$dd' is not this unit's data directory $unit/data"
            echo "$root" ;;
        *) die "zoo.cfg's dataDir '$dd' is not this unit's data directory $unit/data" ;;
    esac
}

client_port() {
    local p
    p=$(sed -n 's/^clientPort=//p' "$conf/zoo.cfg" 2>/dev/null | tail -n 1)
    echo "${p:-2181}"
}

log_tail() {
    echo "--- last lines of $logs/zookeeper.log ---" >&2
    tail -n 40 "$logs/zookeeper.log" >&2 2>/dev/null || true
    echo "--- last lines of $outlog ---" >&2
    tail -n 20 "$outlog" >&2 2>/dev/null || true
}

# --- commands -------------------------------------------------------------------------------

do_install() {
    mkdir -p "$unit"
    pkg_install "$PKG"
    quiet_system_service zookeeper "$PKG_FRESH"
    quiet_system_service zookeeper-server "$PKG_FRESH"
    java_bin >/dev/null || pkg_install default-jre-headless
    java_bin >/dev/null || die "no java found after installing $PKG"
    zk_classpath >/dev/null || die "no ZooKeeper jars found after installing $PKG"
    log "$PKG installed ($(java_bin))"
}

do_configure() {
    [ -f "$conf/zoo.cfg" ] || die "$conf/zoo.cfg is missing (it is rendered by bigmgr before configure)"
    [ -f "$conf/zookeeper-env.sh" ] || die "$conf/zookeeper-env.sh is missing"
    mkdir -p "$data" "$logs"
    local myid
    myid=$(tr -d '[:space:]' <"$data/myid" 2>/dev/null || true)
    case "$myid" in
        "" | *[!0-9]*) die "data/myid is '$myid': this unit is not in peers.quorum, or myid was not rendered" ;;
    esac
    grep -q "^server\.$myid=" "$conf/zoo.cfg" || die "zoo.cfg has no server.$myid line for this unit"
    run_dir >/dev/null
    # A static log4j setup; level and directory come from the JVM's system properties.
    cat >"$conf/log4j.properties.tmp" <<'EOF'
# Written by the zookeeper_server script. Level: zookeeper-env's logLevel.
log4j.rootLogger=${zookeeper.root.logger}
log4j.appender.ROLLINGFILE=org.apache.log4j.RollingFileAppender
log4j.appender.ROLLINGFILE.File=${zookeeper.log.dir}/zookeeper.log
log4j.appender.ROLLINGFILE.MaxFileSize=10MB
log4j.appender.ROLLINGFILE.MaxBackupIndex=5
log4j.appender.ROLLINGFILE.layout=org.apache.log4j.PatternLayout
log4j.appender.ROLLINGFILE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
EOF
    mv "$conf/log4j.properties.tmp" "$conf/log4j.properties"
    local servers
    servers=$(grep -c '^server\.[0-9]*=' "$conf/zoo.cfg" || true)
    log "configured: myid $myid, $servers server(s) in the ensemble, client port $address:$(client_port)"
}

do_start() {
    if running; then log "already running (pid $(cat "$pidfile"))"; return 0; fi
    [ -f "$conf/log4j.properties" ] && [ -s "$data/myid" ] || do_configure
    local java cp port rundir
    java=$(java_bin) || die "java is not installed; run install first"
    cp=$(zk_classpath) || die "ZooKeeper is not installed; run install first"
    ZK_HEAP_MB=256 ZK_JVM_FLAGS="" ZK_LOG_LEVEL=INFO
    # shellcheck disable=SC1091
    . "$conf/zookeeper-env.sh"
    port=$(client_port)
    rundir=$(run_dir)
    local holders
    holders=$(port_holders "$address" "$port")
    [ -z "$holders" ] || die "cannot start: $address:$port is already in use by another process: $holders"
    [ -z "$(fourlw "$address" "$port" ruok)" ] || die "cannot start: another server already answers on $address:$port"
    mkdir -p "$data" "$logs"
    rm -f "$pidfile"
    # The launcher writes its own pid and then becomes the JVM, so the pid file is the JVM's.
    # shellcheck disable=SC2086
    (cd "$rundir" && exec setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' zookeeper-launch "$pidfile" \
        "$java" -Xms"${ZK_HEAP_MB}m" -Xmx"${ZK_HEAP_MB}m" -XX:+UseG1GC -XX:-UsePerfData \
        -Djava.net.preferIPv4Stack=true \
        -Dzookeeper.log.dir="$logs" -Dzookeeper.root.logger="${ZK_LOG_LEVEL},ROLLINGFILE" \
        -Dlog4j.configuration="file:$conf/log4j.properties" \
        -Dzookeeper.jmx.log4j.disable=true \
        $ZK_JVM_FLAGS \
        -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$conf/zoo.cfg" \
        </dev/null >>"$outlog" 2>&1 &)
    # Wait until it answers on its client port (a server without quorum still answers ruok).
    local deadline=$((SECONDS + 90))
    while [ $SECONDS -lt $deadline ]; do
        if [ -s "$pidfile" ] && ! running; then
            sleep 0.2; running || { echo "$NAME: the server exited during startup" >&2; log_tail; exit 1; }
        fi
        if [ "$(fourlw "$address" "$port" ruok)" = "imok" ]; then
            log "started (pid $(cat "$pidfile")), answering on $address:$port"
            return 0
        fi
        sleep 0.2
    done
    echo "$NAME: the server did not answer on $address:$port within 90 s" >&2
    log_tail
    do_stop >&2 || true
    exit 1
}

do_stop() {
    if ! running; then rm -f "$pidfile"; log "already stopped"; return 0; fi
    local pid n=0
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    while [ $n -lt 150 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.2; n=$((n + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop within 30 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        n=0; while [ $n -lt 50 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; n=$((n + 1)); done
    fi
    rm -f "$pidfile"
    log "stopped (was pid $pid)"
}

do_status() {
    if running; then
        local port mode
        port=$(client_port)
        mode=$(fourlw "$address" "$port" srvr | sed -n 's/^Mode: //p')
        log "running (pid $(cat "$pidfile")), mode ${mode:-unknown (no quorum yet?)}"
        exit 0
    fi
    log "not running"
    exit 3
}

# The servers to ask: peers.quorum of the context, else the rendered connect string.
ensemble() {
    if [ -n "${BIGMGR_CONTEXT:-}" ] && [ -f "$BIGMGR_CONTEXT" ]; then
        python3 -c '
import json, sys
ctx = json.load(open(sys.argv[1]))["context"]
for u in ctx["peers"]["quorum"]:
    print(u["address"], u["configs"]["clientPort"], u["host"])
' "$BIGMGR_CONTEXT"
    elif [ -f "$conf/zkclient.env" ]; then
        local ZK_CONNECT="" hp
        # shellcheck disable=SC1091
        . "$conf/zkclient.env"
        for hp in ${ZK_CONNECT//,/ }; do echo "${hp%:*} ${hp##*:} ${hp%:*}"; done
    else
        die "neither BIGMGR_CONTEXT nor conf/zkclient.env says which servers to check"
    fi
}

do_check() {
    local servers n timeout deadline grace report leaders bad addr port h answer mode
    servers=$(ensemble)
    n=$(printf '%s\n' "$servers" | grep -c . || true)
    [ "$n" -gt 0 ] || die "check failed: peers.quorum is empty"
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
            log "check passed: $n server(s), ${leaders} leader"
            printf '%s' "$report"
            return 0
        fi
        if [ $SECONDS -ge $grace ] && [ $leaders -eq 1 ] && [ $(( (n - bad) * 2 )) -gt "$n" ]; then
            log "check passed with a quorum: $((n - bad)) of $n server(s) serving, 1 leader;" \
                "$bad not serving"
            printf '%s' "$report"
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$NAME: check failed after ${timeout} s: $bad server(s) not serving, $leaders leader(s) among $n" >&2
            printf '%s' "$report" >&2
            exit 1
        fi
        sleep 1
    done
}

do_remove() {
    do_stop
    rm -rf "${unit:?}/conf" "${unit:?}/data" "${unit:?}/logs" "$pidfile"
    log "removed the server's data, logs and configs from $unit (the $PKG package stays)"
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
