#!/bin/bash
# spark.sh: every component of the bigtop stack's spark service — spark_master, spark_worker,
# spark_history_server (daemons, each its own JVM bound to the unit's address) and spark_client.
#
# Usage: spark.sh install|configure|start|stop|restart|status|check|remove
#
# Environment (set by the bigmgr agent):
#   BIGMGR_COMPONENT  which component this unit is
#   BIGMGR_UNIT_DIR   the unit's directory: conf/ (rendered spark-defaults.conf, spark-env.sh,
#                     software.env), logs/, work/ (a worker's), spark/ (this unit's SPARK_HOME:
#                     links into the software the host unpacked once), the pid file
#   BIGMGR_ADDRESS    the address every daemon, driver and executor of the unit binds to
#   BIGMGR_CONTEXT    JSON whose "context" holds the properties (the software sources spark_*
#                     and java_* among them), peers.masters and relations.zookeeper
#   BIGMGR_LIB        the stack library (bm_* functions, docs/stacks.md)
#
# install: Java (the `java` source, a Debian package) and Spark (the `spark` source: the pyspark
# sdist from PyPI, or a spark-*-bin tarball), then this unit's SPARK_HOME of links. Every command
# is idempotent; status exits 0 if the daemon runs, 3 if not.
# check: spark_master submits the check application (below) through the masters' URL and
# verifies its answer and that an executor of it ran on every worker the ALIVE master lists;
# spark_worker checks that every worker is registered ALIVE; spark_history_server that its REST
# API answers; spark_client that spark-submit runs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

component="${BIGMGR_COMPONENT:?BIGMGR_COMPONENT is not set (the bigmgr agent sets it)}"
case "$component" in
    spark_master | spark_worker | spark_history_server | spark_client) ;;
    *) echo "spark.sh: unknown component '$component'" >&2; exit 2 ;;
esac
bm_init "$component"
address="$BM_ADDRESS"
conf="$BM_UNIT/conf"
logs="$BM_UNIT/logs"
home="$BM_UNIT/spark"
export SPARK_HOME="$home" SPARK_CONF_DIR="$conf" SPARK_LOG_DIR="$logs" SPARK_PID_DIR="$BM_UNIT"
export SPARK_LOCAL_IP="$address"
case "$component" in
    spark_master) class=org.apache.spark.deploy.master.Master ;;
    spark_worker) class=org.apache.spark.deploy.worker.Worker ;;
    spark_history_server) class=org.apache.spark.deploy.history.HistoryServer ;;
    spark_client) class="" ;;
esac
# The daemon's JVM carries -Dbigmgr.unit=<unit dir> (SPARK_DAEMON_JAVA_OPTS), which tells it
# from every other unit's JVM.
unit_flag="-Dbigmgr.unit=$BM_UNIT"
bm_daemon "$BM_UNIT/$component.pid" "$logs/$component.out" "$unit_flag" 30

# --- software -------------------------------------------------------------------------------

java_bin() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "$JAVA_HOME/bin/java"; return 0; fi
    command -v java 2>/dev/null || return 1
}

# spark_dist DIR: the Spark distribution in an unpacked source: the directory with
# bin/spark-class (deps/ of the pyspark sdist, the top of a spark-*-bin tarball).
spark_dist() {
    local d
    for d in "$1" "$1"/* "$1"/*/* "$1"/*/*/*; do
        if [ -f "$d/bin/spark-class" ] && [ -d "$d/jars" ]; then echo "$d"; return 0; fi
    done
    return 1
}

# python_lib DIST: the directory with pyspark.zip and py4j (python/lib of a tarball; the sdist
# keeps them in lib/ beside deps/).
python_lib() {
    local d
    for d in "$1/python/lib" "$1/../lib"; do
        if ls "$d"/pyspark.zip >/dev/null 2>&1; then (cd "$d" && pwd); return 0; fi
    done
    return 1
}

do_install() {
    mkdir -p "$BM_UNIT" "$conf" "$logs"
    bm_software java
    java_bin >/dev/null || bm_die "no java found after installing the java source"
    bm_software spark
    local dist pylib d
    dist=$(spark_dist "$BM_SOFTWARE_DIR") ||
        bm_die "the spark source has no Spark distribution (bin/spark-class and jars/) in $BM_SOFTWARE_DIR"
    pylib=$(python_lib "$dist") || bm_die "the spark source has no pyspark.zip (python/lib) in $BM_SOFTWARE_DIR"
    # This unit's SPARK_HOME: links into the shared, read-only distribution.
    rm -rf "$home.new"
    mkdir -p "$home.new/python"
    for d in bin sbin jars examples data licenses; do
        [ -e "$dist/$d" ] && ln -s "$dist/$d" "$home.new/$d"
    done
    ln -s "$pylib" "$home.new/python/lib"
    rm -rf "$home"
    mv "$home.new" "$home"
    "$home/bin/spark-submit" --version >"$BM_UNIT/version.txt" 2>&1 ||
        bm_die_log "$BM_UNIT/version.txt" "spark-submit --version failed"
    bm_log "installed Spark $(sed -n 's/.*version \([0-9][0-9.]*\).*/\1/p' "$BM_UNIT/version.txt" | head -n 1) from $dist ($(java_bin))"
}

# --- configuration --------------------------------------------------------------------------

# conf_get KEY: the value of KEY in spark-defaults.conf ("key value" lines).
conf_get() {
    awk -v k="$1" '$1 == k { $1 = ""; sub(/^ +/, ""); v = $0 } END { print v }' "$conf/spark-defaults.conf"
}

# The component's own env file (spark-master.env, spark-worker.env), if it has one.
role_env() {
    case "$component" in
        spark_master) echo "$conf/spark-master.env" ;;
        spark_worker) echo "$conf/spark-worker.env" ;;
    esac
}

load_env() {
    [ -f "$conf/spark-env.sh" ] || bm_die "$conf/spark-env.sh is missing (bigmgr renders it before configure)"
    [ -f "$conf/spark-defaults.conf" ] || bm_die "$conf/spark-defaults.conf is missing"
    # shellcheck disable=SC1091
    . "$conf/spark-env.sh"
    local own
    own=$(role_env)
    if [ -n "$own" ]; then
        [ -f "$own" ] || bm_die "$own is missing (bigmgr renders it before configure)"
        # shellcheck disable=SC1090
        . "$own"
    fi
    BIGMGR_SPARK_HISTORY_PORT=$(conf_get spark.history.ui.port)
}

master_url() { conf_get spark.master; }

do_configure() {
    [ -x "$home/bin/spark-class" ] || bm_die "is not installed; run install first"
    load_env
    mkdir -p "$logs"
    case "$(master_url)" in
        spark://?*:[0-9]*) ;;
        *) bm_die "spark.master is '$(master_url)': the service has no spark_master unit" ;;
    esac
    local events
    events=$(conf_get spark.eventLog.dir)
    case "$events" in
        file:*) mkdir -p "${events#file:}" || bm_die "cannot create the event log directory ${events#file:}" ;;
    esac
    bm_write "$conf/log4j2-daemon.properties" <<EOF
# Written by the spark stack's script: the daemon logs into logs/ (applications submitted
# from this unit log to their console: Spark reads only log4j2.properties by itself).
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $logs/$component.log
appender.file.filePattern = $logs/$component.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 10MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 5
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
EOF
    local recovery
    recovery=$(conf_get spark.deploy.recoveryMode)
    bm_log "configured: masters $(master_url)${recovery:+, recovery $recovery through $(conf_get spark.deploy.zookeeper.url)}"
}

# --- daemons --------------------------------------------------------------------------------

log_tail() {
    echo "--- last lines of $logs/$component.log ---" >&2
    bm_tail "$logs/$component.log" 40
    echo "--- last lines of $BM_DAEMON_LOG ---" >&2
    bm_tail "$BM_DAEMON_LOG" 20
}
BM_DAEMON_TAIL=log_tail

# http_get URL: the body of a GET (empty on failure).
http_get() { curl -fsS --max-time 5 "$1" 2>/dev/null || true; }

# json_field JSON FIELD: a top-level field of a JSON document.
json_field() {
    printf '%s' "$1" | python3 -c 'import json, sys
try:
    v = json.load(sys.stdin).get(sys.argv[1])
except Exception:
    v = None
print("" if v is None else v)' "$2"
}

# The daemon's own port and web UI port.
ports() {
    case "$component" in
        spark_master) echo "$BIGMGR_SPARK_MASTER_PORT $BIGMGR_SPARK_MASTER_WEBUI_PORT" ;;
        spark_worker) echo "$BIGMGR_SPARK_WORKER_PORT $BIGMGR_SPARK_WORKER_WEBUI_PORT" ;;
        spark_history_server) echo "$BIGMGR_SPARK_HISTORY_PORT $BIGMGR_SPARK_HISTORY_PORT" ;;
    esac
}

# ready: the daemon answers on its web UI (a master in any state: ALIVE, STANDBY, RECOVERING).
ready() {
    local web
    web=$(ports | cut -d' ' -f2)
    case "$component" in
        spark_history_server) [ -n "$(http_get "http://$address:$web/api/v1/version")" ] ;;
        spark_worker) [ -n "$(json_field "$(http_get "http://$address:$web/json/")" id)" ] ;;
        *) [ -n "$(json_field "$(http_get "http://$address:$web/json/")" status)" ] ;;
    esac
}

# daemon_env: exports what spark-class's load-spark-env.sh would (spark-env.sh, the Scala
# version of the distribution's jars) and the daemon's JVM flags, for the launcher and for the
# daemon itself (a worker builds its executors' command lines with the same launcher code).
daemon_env() {
    set -a
    load_env
    set +a
    local scala
    scala=$(find "$home/jars/" -maxdepth 1 -name 'scala-library-*.jar' -printf '%f\n' |
        sed -n 's/^scala-library-\([0-9]*\.[0-9]*\).*/\1/p' | head -n 1)
    export SPARK_SCALA_VERSION="${scala:-2.13}"
    export SPARK_DAEMON_JAVA_OPTS="$unit_flag -Dlog4j.configurationFile=file:$conf/log4j2-daemon.properties ${SPARK_DAEMON_JAVA_OPTS:-}"
}

# daemon_command ARG...: the daemon's java command line, NUL-separated, as Spark's launcher
# builds it for spark-class (classpath, module flags, SPARK_DAEMON_MEMORY and
# SPARK_DAEMON_JAVA_OPTS; run daemon_env first). The daemon is started as that java process
# directly, so its pid file names the JVM from the start (spark-class would run the launcher
# first under its own pid).
daemon_command() {
    "$(java_bin)" -Xmx128m -cp "$home/jars/*" org.apache.spark.launcher.Main "$class" "$@"
}

do_start() {
    [ -n "$class" ] || bm_die "a client has no daemon"
    bm_already_running && return 0
    [ -f "$conf/log4j2-daemon.properties" ] || do_configure
    load_env
    java_bin >/dev/null || bm_die "java is not installed; run install first"
    local port web args
    read -r port web <<<"$(ports)"
    bm_need_free_port "$address" "$port"
    bm_need_free_port "$address" "$web"
    case "$BM_UNIT" in *[[:space:]]*) bm_die "the unit directory '$BM_UNIT' has blanks, which Spark's launcher splits" ;; esac
    case "$component" in
        spark_master) args=(--host "$address" --port "$port" --webui-port "$web") ;;
        spark_worker)
            mkdir -p "$BM_UNIT/work"
            args=(--host "$address" --port "$port" --webui-port "$web"
                --memory "$BIGMGR_SPARK_WORKER_MEMORY" --work-dir "$BM_UNIT/work")
            [ "$BIGMGR_SPARK_WORKER_CORES" -gt 0 ] && args+=(--cores "$BIGMGR_SPARK_WORKER_CORES")
            args+=("$(master_url)") ;;
        spark_history_server) args=(--properties-file "$conf/spark-defaults.conf") ;;
    esac
    daemon_env
    local cmd=()
    mapfile -t -d '' cmd < <(daemon_command "${args[@]}") ||
        bm_die "Spark's launcher could not build the $component's command line"
    # The launcher's output starts with a marker (NUL, newline) before the arguments.
    if [ "${#cmd[@]}" -gt 0 ] && [ -z "${cmd[0]}" ]; then cmd=("${cmd[@]:1}"); fi
    [ "${#cmd[@]}" -gt 0 ] && cmd[0]=${cmd[0]#$'\n'}
    [ "${#cmd[@]}" -gt 1 ] || bm_die "Spark's launcher could not build the $component's command line"
    (cd "$BM_UNIT" && bm_daemon_spawn "${cmd[@]}")
    bm_daemon_ready 120 "the $component" "did not answer on http://$address:$web/" ready
    bm_log "started (pid $(bm_daemon_pid)), web UI http://$address:$web/"
}

do_status() {
    [ -n "$class" ] || { bm_log "a client has no daemon"; exit 0; }
    bm_daemon_running || { bm_log "not running"; exit 3; }
    load_env
    local web state=""
    web=$(ports | cut -d' ' -f2)
    [ "$component" = spark_master ] && state=$(json_field "$(http_get "http://$address:$web/json/")" status)
    bm_log "running (pid $(bm_daemon_pid))${state:+, $state}"
}

do_stop() {
    [ -n "$class" ] || return 0
    bm_daemon_stop
}

# --- checks ---------------------------------------------------------------------------------

# The masters: "address webui_port" per line, from the context (else the rendered URL with
# the default web UI port).
masters() {
    if bm_ctx_present; then
        bm_ctx_units peers.masters address configs.master_webui_port
    else
        local hp
        for hp in $(master_url | sed 's|^spark://||; s|,| |g'); do echo "${hp%:*} 8080"; done
    fi
}

# alive_master: "address webui_port" of the ALIVE master, else fails.
alive_master() {
    local a w
    while read -r a w; do
        if [ "$(json_field "$(http_get "http://$a:$w/json/")" status)" = ALIVE ]; then
            echo "$a $w"
            return 0
        fi
    done <<<"$(masters)"
    return 1
}

# The ALIVE master's workers: "id state webuiaddress" per line.
workers_of() {
    http_get "http://$1:$2/json/" | python3 -c 'import json, sys
for w in json.load(sys.stdin).get("workers", []):
    print(w.get("id"), w.get("state"), w.get("webuiaddress"))'
}

# The service's worker units, as "address" lines.
worker_units() { bm_ctx_units peers.workers address; }

# The check application: the sum of the squares of 1..n over many partitions, with the id of
# the application, so its executors can be found on the workers.
write_app() {
    cat >"$1" <<'EOF'
import sys
from pyspark.sql import SparkSession

n, parts = int(sys.argv[1]), int(sys.argv[2])
spark = SparkSession.builder.appName("bigmgr-check").getOrCreate()
sc = spark.sparkContext
total = sc.parallelize(range(1, n + 1), parts).map(lambda x: x * x).sum()
print("BIGMGR_APP_ID", sc.applicationId)
print("BIGMGR_SUM", total)
spark.stop()
EOF
}

check_application() {
    load_env
    local master aw mh mw workers n dir out app sum want w id state ui ran=0 missing=""
    aw=$(wait_alive 90) || bm_die "check failed: no master is ALIVE among $(masters | tr '\n' ' ')"
    read -r mh mw <<<"$aw"
    workers=$(workers_of "$mh" "$mw" | awk '$2 == "ALIVE"')
    n=$(printf '%s\n' "$workers" | grep -c . || true)
    [ "$n" -gt 0 ] || bm_die "check failed: the ALIVE master $mh has no ALIVE worker"
    master=$(master_url)
    dir="${BIGMGR_TASK_DIR:-$BM_UNIT}/check"
    mkdir -p "$dir"
    write_app "$dir/app.py"
    out="$dir/app.out"
    # One executor of one core per worker, and the job waits until all of them registered.
    if ! (cd "$dir" && "$home/bin/spark-submit" --master "$master" \
        --conf spark.ui.enabled=false --conf spark.executor.cores=1 --conf "spark.cores.max=$n" \
        --conf spark.scheduler.minRegisteredResourcesRatio=1.0 \
        --conf spark.scheduler.maxRegisteredResourcesWaitingTime=90s \
        --conf "spark.driver.host=$address" --conf "spark.driver.bindAddress=$address" \
        "$dir/app.py" 20000 $((n * 4)) >"$out" 2>"$dir/app.err"); then
        echo "--- errors of the application ($dir/app.err) ---" >&2
        grep -E 'ERROR|WARN|Exception|Caused by' "$dir/app.err" | grep -v '^\s*at ' | head -n 30 >&2 || true
        bm_die "check failed: the application did not complete on $master"
    fi
    app=$(sed -n 's/^BIGMGR_APP_ID //p' "$out")
    sum=$(sed -n 's/^BIGMGR_SUM //p' "$out")
    want=$(python3 -c 'n = 20000; print(n * (n + 1) * (2 * n + 1) // 6)')
    [ "$sum" = "$want" ] || bm_die "check failed: the application computed '$sum', not $want"
    while read -r id state ui; do
        if http_get "$ui/json/" | python3 -c 'import json, sys
w = json.load(sys.stdin)
ids = {e.get("appid") for e in w.get("executors", []) + w.get("finishedexecutors", [])}
sys.exit(0 if sys.argv[1] in ids else 1)' "$app"; then
            ran=$((ran + 1))
        else
            missing="$missing $id"
        fi
    done <<<"$workers"
    [ -z "$missing" ] || bm_die "check failed: no executor of $app ran on worker(s)$missing"
    bm_log "check passed: $app computed $sum (right) with executors on all $ran worker(s) of the ALIVE master $mh"
}

# wait_alive SECONDS: prints the ALIVE master once there is one.
wait_alive() {
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        alive_master && return 0
        sleep 1
    done
    return 1
}

check_workers() {
    load_env
    local aw mh mw registered units u missing=""
    aw=$(wait_alive 60) || bm_die "check failed: no master is ALIVE"
    read -r mh mw <<<"$aw"
    units=$(worker_units)
    local deadline=$((SECONDS + 60))
    while :; do
        registered=$(workers_of "$mh" "$mw" | awk '$2 == "ALIVE" { print $1 }')
        missing=""
        for u in $units; do
            printf '%s\n' "$registered" | grep -q -- "-$u-" || missing="$missing $u"
        done
        [ -n "$missing" ] || break
        [ $SECONDS -lt $deadline ] || bm_die "check failed: worker(s)$missing are not registered ALIVE with the master $mh"
        sleep 1
    done
    bm_log "check passed: $(printf '%s\n' "$units" | grep -c .) worker(s) registered ALIVE with $mh"
}

do_check() {
    case "$component" in
        spark_master) check_application ;;
        spark_worker) check_workers ;;
        spark_history_server)
            load_env
            bm_wait 30 ready || bm_die "check failed: the history server does not answer on $address:$BIGMGR_SPARK_HISTORY_PORT"
            bm_log "check passed: the history server answers on http://$address:$BIGMGR_SPARK_HISTORY_PORT/" ;;
        spark_client)
            "$home/bin/spark-submit" --version >/dev/null 2>&1 || bm_die "check failed: spark-submit does not run"
            load_env
            bm_log "check passed: spark-submit runs; masters $(master_url)" ;;
    esac
}

do_remove() {
    [ -z "$class" ] || bm_daemon_stop
    bm_unit_rm "$home" "$conf" "$logs" "$BM_UNIT/work" "$BM_UNIT/version.txt" "$BM_UNIT/$component.pid"
    bm_log "removed the unit's Spark home, configs, logs and work from $BM_UNIT (the host's download cache stays)"
}

bm_main "${1:-}"
