#!/bin/bash
# flink: the units of an Apache Flink standalone session cluster, one script for the three
# components — flink_jobmanager and flink_taskmanager (each its own JVM) and flink_client.
#
# Usage: flink.sh install|configure|start|stop|restart|status|check|remove
#        (a flink_client unit: install|configure|check|remove)
#
# Environment (set by the bigmgr agent):
#   BIGMGR_COMPONENT  which component the unit is (else the unit directory's name)
#   BIGMGR_UNIT_DIR   the unit's directory (required). It is the unit's FLINK_HOME: bin/, lib/
#                     and opt/ hold symlinks into the unpacked wheels (plugins is one), conf/
#                     the rendered config.yaml and the logging configs, log/ the JVM's logs,
#                     tmp/ its io.tmp.dirs, run/ Flink's own pid file; <component>.pid is the
#                     daemon's pid file
#   BIGMGR_ADDRESS    the address every port of the unit binds to (config.yaml says the same)
#   BIGMGR_HOST       the host's name: a TaskManager's resource id at the JobManager
#   BIGMGR_CONTEXT    JSON file: the software sources (flink_*, flink_libraries_*), the
#                     configs, peers.jobmanagers, peers.taskmanagers and relations.zookeeper
#   BIGMGR_CACHE_DIR  optional; the download cache (else <agent root>/cache), see bm_software
#   BIGMGR_FLINK_CHECK_TIMEOUT  optional; seconds check waits for taskmanagers (default 90)
#   BIGMGR_LIB        the stack library (bm_* functions, docs/stacks.md)
#
# Every command is idempotent. status exits 0 if the JVM runs, 3 if it does not.
# install: Java 17 (the JDK on a JobManager, which compiles the check's word count), then the
#   two wheels (bm_software, once per host), then the unit's FLINK_HOME.
# start: bin/jobmanager.sh or bin/taskmanager.sh start-foreground, detached (its pid is the
#   JVM's; the unit's `-D io.tmp.dirs=<unit>/tmp` on its command line tells it from any other
#   process); a JobManager is started when its REST API answers, a TaskManager when the
#   JobManager lists it. stop: SIGTERM, then SIGKILL after 30 s.
# check: a TaskManager (each) that the JobManager lists it with its slots; the JobManager (once)
#   that every TaskManager of the service is registered, then a word count: the Java program
#   below, compiled against flink-dist, counts the words of the text below on the cluster
#   (bin/flink run, parallelism = the free slots, so every TaskManager takes part), and its
#   counts must equal those the shell counts from the same text; a client that bin/flink list
#   reaches the JobManager through its config.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../../../../bigmgr-core/src/agent/stacklib.sh
. "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"

component=${BIGMGR_COMPONENT:-${BIGMGR_UNIT_DIR:+$(basename "$BIGMGR_UNIT_DIR")}}
case "$component" in
    flink_jobmanager | flink_taskmanager | flink_client) ;;
    *)
        echo "flink.sh: the component '$component' is not flink_jobmanager, flink_taskmanager or flink_client" >&2
        exit 2
        ;;
esac
bm_init "$component"
address="$BM_ADDRESS"
home="$BM_UNIT"
conf="$home/conf"
logs="$home/log"
tmp="$home/tmp"
# The entry points of the software, and what every unit links.
LINKED="bin lib opt plugins"

# Flink's scripts find FLINK_HOME from where their files really are (the read-only unpacked
# wheel); these make them use the unit's instead, and keep pid file and logs in the unit.
export _FLINK_HOME_DETERMINED=1 FLINK_HOME="$home" FLINK_CONF_DIR="$conf" FLINK_LOG_DIR="$logs"
export FLINK_PID_DIR="$home/run" FLINK_IDENT_STRING=bigmgr
unset JVM_ARGS FLINK_ENV_JAVA_OPTS FLINK_ENV_JAVA_OPTS_JM FLINK_ENV_JAVA_OPTS_TM \
    FLINK_ENV_JAVA_OPTS_CLI ROOT_LOG_LEVEL FLINK_LIB_DIR FLINK_OPT_DIR FLINK_PLUGINS_DIR

case "$component" in
    flink_jobmanager) launcher=jobmanager.sh java_pkg=openjdk-17-jdk-headless what="the jobmanager" ;;
    flink_taskmanager) launcher=taskmanager.sh java_pkg=openjdk-17-jre-headless what="the taskmanager" ;;
    *) launcher="" java_pkg=openjdk-17-jre-headless what="the client" ;;
esac
if [ -n "$launcher" ]; then
    bm_daemon "$BM_UNIT/$component.pid" "$logs/$component.console" "-D io.tmp.dirs=$tmp" 30
    BM_DAEMON_TAIL=log_tail
else
    BM_COMMANDS="install configure check remove"
fi

# --- helpers --------------------------------------------------------------------------------

java_bin() {
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "$JAVA_HOME/bin/java"; return 0; fi
    command -v java 2>/dev/null || return 1
}

# jdk_tool NAME: javac or jar, beside java or on PATH.
jdk_tool() {
    local java
    java=$(java_bin) || return 1
    java=$(readlink -f "$java")
    bm_first_exe "$(dirname "$java")/$1" || command -v "$1" 2>/dev/null || return 1
}

log_tail() {
    local f
    for f in "$(newest "$logs"/flink-*.log)" "$(newest "$logs"/flink-*.err)" "$(newest "$logs"/flink-*.out)"; do
        if [ -z "$f" ] || [ ! -s "$f" ]; then continue; fi
        echo "--- last lines of $f ---" >&2
        bm_tail "$f" 30
    done
    echo "--- last lines of $BM_DAEMON_LOG ---" >&2
    bm_tail "$BM_DAEMON_LOG" 20
}

# newest FILE...: the most recently modified of the existing FILEs (nothing if none).
newest() {
    local f best=""
    for f in "$@"; do
        [ -f "$f" ] || continue
        if [ -z "$best" ] || [ "$f" -nt "$best" ]; then best=$f; fi
    done
    printf '%s' "$best"
}

# ctx KEY: a value of the context (a property), or DEFAULT when there is none.
ctx() { local v; v=$(bm_ctx_value "$1"); printf '%s' "${v:-${2:-}}"; }

# rest_get URL: the body of a GET (10 s), failing on an error status or no answer.
rest_get() {
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
        "$1" </dev/null 2>/dev/null
}

# json EXPR [ARG...]: evaluates the Python expression EXPR (the script's own) over the JSON
# document on stdin (d); ARGs are sys.argv[2:].
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(r if isinstance(r, str) else json.dumps(r) if isinstance(r, (dict, list)) else r)' "$@"; }

# The JobManagers: "address rest_port rpc_port host" lines, from the context.
jobmanagers() { bm_ctx_units peers.jobmanagers address configs.rest_port configs.rpc_port host; }

ha() { [ "$(bm_ctx_units relations.zookeeper address | grep -c .)" -gt 0 ]; }

# rest_base: the http://address:port of the first JobManager whose REST API answers (a standby
# JobManager answers for the leader); fails if none does.
rest_base() {
    local a p
    while read -r a p _; do
        [ -n "$a" ] || continue
        if rest_get "http://$a:$p/config" >/dev/null; then
            echo "http://$a:$p"
            return 0
        fi
    done <<<"$(jobmanagers)"
    return 1
}

need_installed() {
    local dist
    dist=$(newest "$home"/lib/flink-dist-*.jar)
    if [ ! -e "$home/bin/config.sh" ] || [ -z "$dist" ] || [ ! -e "$dist" ]; then
        bm_die "Flink is not installed in $home (or its unpacked software is gone); run install first"
    fi
    java_bin >/dev/null || bm_die "java is not installed; run install first"
}

# --- install: the unit's FLINK_HOME ----------------------------------------------------------

# relink NAME SOURCE...: makes NAME in the unit a directory of symlinks to each SOURCE's files
# (built beside it, then swapped in: a reinstall never leaves a half-made directory).
relink() {
    local name=$1 new="$home/.$1.new" src f
    shift
    rm -rf "$new"
    mkdir -p "$new"
    for src in "$@"; do
        for f in "$src"/* ; do
            [ -e "$f" ] || continue
            ln -sfn "$f" "$new/$(basename "$f")"
        done
    done
    rm -rf "${home:?}/$name"
    mv -T "$new" "$home/$name"
}

do_install() {
    local dist libs
    mkdir -p "$BM_UNIT"
    bm_pkg_install "$java_pkg"
    java_bin >/dev/null || bm_die "no java found after installing $java_pkg"
    bm_software flink
    dist="$BM_SOFTWARE_DIR/pyflink"
    bm_software flink_libraries
    libs="$BM_SOFTWARE_DIR/pyflink"
    if [ ! -f "$dist/bin/config.sh" ] || [ ! -f "$dist/conf/log4j-console.properties" ]; then
        bm_die "software source 'flink' has no pyflink/bin/config.sh and pyflink/conf: is it the apache-flink wheel?"
    fi
    if [ ! -f "$libs/bin/bash-java-utils.jar" ] || [ -z "$(newest "$libs"/lib/flink-dist-*.jar)" ]; then
        bm_die "software source 'flink_libraries' has no pyflink/lib/flink-dist-*.jar and pyflink/bin/bash-java-utils.jar: is it the apache-flink-libraries wheel?"
    fi
    # bin: the scripts and bash-java-utils.jar side by side; lib, opt: directories of links
    # (Flink's scripts list them with find, which does not enter a linked directory).
    relink bin "$dist/bin" "$libs/bin"
    relink lib "$libs/lib"
    relink opt "$libs/opt"
    ln -sfn "$libs/plugins" "$home/.plugins.new"
    mv -T "$home/.plugins.new" "$home/plugins"
    mkdir -p "$conf" "$logs"
    # The logging configs are the wheel's, kept with this version.
    mkdir -p "$home/.dist-conf"
    cp -f "$dist"/conf/log4j*.properties "$dist"/conf/logback*.xml "$home/.dist-conf/"
    # bin/bigmgr-flink: bin/flink for operators, with this unit's FLINK_HOME.
    {
        echo '#!/bin/sh'
        echo "# bin/flink of this unit's FLINK_HOME; written by the flink stack's script."
        printf 'export _FLINK_HOME_DETERMINED=1 FLINK_HOME=%q FLINK_CONF_DIR=%q FLINK_LOG_DIR=%q\n' \
            "$home" "$conf" "$logs"
        # shellcheck disable=SC2016 # "$@" is the wrapper's
        printf 'exec %q "$@"\n' "$home/bin/flink"
    } | bm_write "$home/bin/bigmgr-flink" 755
    bm_log "Flink $(bm_ctx_value flink_version) installed in $home (java: $(java_bin))"
}

# --- configure: check the values, add the static configs -------------------------------------

# check_values: the context's values that Flink's scripts would take wrongly (its launcher
# evaluates java options with the shell) or that the service cannot run with.
check_values() {
    local v n jms
    bm_ctx_present || return 0
    for n in jobmanager_memory taskmanager_memory; do
        v=$(ctx "$n")
        [[ "$v" =~ ^[0-9]+[[:space:]]?([kKmMgGtT]([bB])?|[bB])$ ]] ||
            bm_die "$n '$v' is not a memory size such as 1024m or 2g"
    done
    v=$(ctx log_level)
    case "$v" in
        TRACE | DEBUG | INFO | WARN | ERROR | OFF) ;;
        *) bm_die "log_level '$v' is not one of TRACE, DEBUG, INFO, WARN, ERROR, OFF" ;;
    esac
    # Each option starts with '-' and has only letters, digits and = : , . / + @ % _ - (Flink's
    # launcher evaluates the options with the shell, and reads them back from flattened YAML).
    local opts=()
    read -r -a opts <<<"$(ctx java_opts)"
    for v in ${opts[@]+"${opts[@]}"}; do
        if ! [[ "$v" =~ ^-[A-Za-z0-9=:,./+@%_-]*$ ]] || [[ "$v" == *: ]]; then
            bm_die "java_opts: '$v' is not a JVM option of letters, digits and = : , . / + @ % _ - starting with '-'"
        fi
    done
    v=$(ctx taskmanager_slots)
    if ! [[ "$v" =~ ^[0-9]+$ ]] || [ "$v" -lt 1 ] || [ "$v" -gt 64 ]; then
        bm_die "taskmanager_slots '$v' is not a number from 1 to 64"
    fi
    v=$(ctx parallelism_default)
    if ! [[ "$v" =~ ^[0-9]+$ ]] || [ "$v" -lt 1 ] || [ "$v" -gt 1024 ]; then
        bm_die "parallelism_default '$v' is not a number from 1 to 1024"
    fi
    v=$(ctx taskmanager_managed_fraction)
    python3 -c 'import sys; f = float(sys.argv[1]); sys.exit(0 if 0 <= f <= 0.9 else 1)' "$v" 2>/dev/null ||
        bm_die "taskmanager_managed_fraction '$v' is not a fraction from 0 to 0.9"
    jms=$(jobmanagers | grep -c . || true)
    [ "$jms" -ge 1 ] || bm_die "the service has no flink_jobmanager unit (peers.jobmanagers is empty)"
    if ha; then
        v=$(ctx ha_storage_dir)
        [ -n "$v" ] || bm_die "ha_storage_dir is empty: ZooKeeper high availability needs a directory every JobManager reaches (file:///shared/…, hdfs://…)"
        [[ "$v" =~ ^[A-Za-z0-9:/._@%+=-]+$ ]] || bm_die "ha_storage_dir '$v' is not a path or URI (letters, digits and : / . _ @ % + = -)"
    elif [ "$jms" -gt 1 ]; then
        bm_die "$jms jobmanagers need ZooKeeper high availability: relate this service's zookeeper endpoint to a ZooKeeper service, or keep one flink_jobmanager"
    fi
}

# check_flink_config: what the JVM's start would find wrong in config.yaml, found now with
# Flink's own code (its launcher's BashJavaUtils): the YAML, and the memory sizes, which must
# leave room for Flink's fixed parts (a TaskManager needs about 900m with the default managed
# fraction, a JobManager about 640m).
check_flink_config() {
    local params=GET_JM_RESOURCE_PARAMS out
    [ "$component" != flink_taskmanager ] || params=GET_TM_RESOURCE_PARAMS
    # shellcheck disable=SC2016 # the inner shell's variables and functions (Flink's config.sh)
    out=$(bash -c '. "$1/bin/config.sh" >/dev/null && runBashJavaUtilsCmd "$2" "$FLINK_CONF_DIR" "$FLINK_BIN_DIR/bash-java-utils.jar:$(findFlinkDistJar)"' \
        check-config "$home" "$params" </dev/null 2>&1) || true
    if ! printf '%s\n' "$out" | grep -q '^BASH_JAVA_UTILS_EXEC_RESULT:'; then
        printf '%s\n' "$out" | grep -v -E '^\s+at |^$|^INFO ' | tail -n 15 >&2
        bm_die "Flink refuses $conf/config.yaml: $(printf '%s\n' "$out" | grep -o -m 1 -E '(IllegalConfigurationException|ERROR\]|Exception): .*' || echo 'see above')"
    fi
}

# prepare: the checks and files configure and start need.
prepare() {
    need_installed
    [ -f "$conf/config.yaml" ] || bm_die "$conf/config.yaml is missing (it is rendered by bigmgr before configure)"
    check_values
    grep -q '^jobmanager.rpc.address: ' "$conf/config.yaml" ||
        bm_die "$conf/config.yaml names no jobmanager (jobmanager.rpc.address): does the service have a flink_jobmanager unit?"
    mkdir -p "$logs" "$tmp" "$home/run"
    local f
    for f in "$home"/.dist-conf/*; do
        cmp -s "$f" "$conf/$(basename "$f")" || cp -f "$f" "$conf/"
    done
}

do_configure() {
    prepare
    [ -z "$launcher" ] || check_flink_config
    local jm
    if ha; then
        jm="the leading jobmanager found through ZooKeeper ($(sed -n "s/^high-availability.zookeeper.quorum: '\(.*\)'$/\1/p" "$conf/config.yaml")) among $(jobmanagers | awk '{printf "%s%s:%s", (NR > 1 ? ", " : ""), $1, $2}')"
    else
        jm="jobmanager REST at $(sed -n "s/^rest.address: '\(.*\)'$/\1/p" "$conf/config.yaml"):$(sed -n 's/^rest.port: //p' "$conf/config.yaml")"
    fi
    bm_log "configured: $what on $address; $jm"
}

# --- start: the daemons ------------------------------------------------------------------------

# rest_ok ADDRESS PORT: the JobManager's REST API answers there as Flink.
rest_ok() { rest_get "http://$1:$2/overview" | grep -q '"flink-version"'; }

# registered: the JobManager lists this TaskManager (its resource id is the host's name) with
# its slots.
registered() {
    local base
    base=$(rest_base) || return 1
    rest_get "$base/taskmanagers" |
        json '[t for t in d["taskmanagers"] if t["id"] == sys.argv[2] and t["slotsNumber"] > 0] != []' "$BM_HOST" 2>/dev/null |
        grep -qx True
}

my_ports() {
    if [ "$component" = flink_jobmanager ]; then
        echo "$(ctx rpc_port 6123) $(ctx rest_port 8081) $(ctx blob_port 6124)"
    else
        echo "$(ctx taskmanager_rpc_port 6122) $(ctx taskmanager_data_port 6121)"
    fi
}

do_start() {
    bm_already_running && return 0
    prepare
    local port
    for port in $(my_ports); do bm_need_free_port "$address" "$port"; done
    # The JVM runs in the unit (Flink resolves no path against it, but nothing else either).
    (cd "$home" && bm_daemon_spawn "$home/bin/$launcher" start-foreground -D "io.tmp.dirs=$tmp")
    if [ "$component" = flink_jobmanager ]; then
        local rest
        rest=$(ctx rest_port 8081)
        bm_daemon_ready 120 "$what" "did not answer on http://$address:$rest/overview" rest_ok "$address" "$rest"
        bm_log "started (pid $(bm_daemon_pid)): REST http://$address:$rest, RPC $address:$(ctx rpc_port 6123)"
    else
        bm_daemon_ready 120 "$what" "was not listed by the jobmanager ($(jobmanagers | awk '{printf "%s:%s ", $1, $2}'))" registered
        bm_log "started (pid $(bm_daemon_pid)): registered with the jobmanager as $BM_HOST, RPC $address:$(ctx taskmanager_rpc_port 6122)"
    fi
}

# --- check ------------------------------------------------------------------------------------

check_timeout() { echo "${BIGMGR_FLINK_CHECK_TIMEOUT:-90}"; }

# The TaskManagers the JobManager should list: "host slots" lines.
expected_taskmanagers() { bm_ctx_units peers.taskmanagers host configs.taskmanager_slots; }

# registered_report BASE: "host slots" of every TaskManager the JobManager at BASE lists.
registered_report() {
    rest_get "$1/taskmanagers" |
        json '"\n".join("%s %s" % (t["id"], t["slotsNumber"]) for t in sorted(d["taskmanagers"], key=lambda t: t["id"]))'
}

check_taskmanager() {
    local deadline base
    deadline=$((SECONDS + $(check_timeout)))
    until registered; do
        if [ $SECONDS -ge $deadline ]; then
            bm_die "check failed: the jobmanager does not list this taskmanager ($BM_HOST) after $(check_timeout) s; it lists: $( (base=$(rest_base) && registered_report "$base") | tr '\n' ' ' || echo 'nothing (no jobmanager answers)')"
        fi
        sleep 2
    done
    bm_log "check passed: the jobmanager lists this taskmanager ($BM_HOST, RPC $address:$(ctx taskmanager_rpc_port 6122))"
}

check_client() {
    local out
    if ! out=$(run_flink list 2>&1); then
        printf '%s\n' "$out" | grep -v -E '^\s+at |^$' | tail -n 20 >&2
        bm_die "check failed: bin/flink list did not reach the jobmanager"
    fi
    printf '%s\n' "$out" | grep -v '^$' | tail -n 10
    bm_log "check passed: bin/flink list reached the jobmanager through $conf/config.yaml"
}

# run_flink ARG...: bin/flink of this unit with a small client heap; without ZooKeeper the
# JobManager is named (-m) so nothing depends on the client's own config for it.
run_flink() {
    local sub=$1
    shift
    local m=()
    if ! ha; then
        local a p
        read -r a p _ <<<"$(jobmanagers | head -n 1)"
        m=(-m "$a:$p")
    fi
    JVM_ARGS="-Xmx256m" timeout 240 "$home/bin/flink" "$sub" "${m[@]}" "$@" </dev/null
}

# The word count: a DataStream program that reads a local text file into the job, splits it
# into lower-case words on the cluster, sums per word and collects the sums back to the client,
# which prints "wordcount WORD COUNT" for each word.
wordcount_source() {
    cat <<'EOF'
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.util.Collector;

/** bigmgr's word count (the flink stack's check): counts the words of a text file on the cluster. */
public class BigmgrWordCount {
    /** Splits a line into lower-case words, each counted once. */
    public static class Tokenizer implements FlatMapFunction<String, Tuple2<String, Integer>> {
        @Override
        public void flatMap(String line, Collector<Tuple2<String, Integer>> out) {
            for (String w : line.toLowerCase().split("[^a-z]+")) {
                if (!w.isEmpty()) {
                    out.collect(Tuple2.of(w, 1));
                }
            }
        }
    }

    /** The word of a pair. */
    public static class Word implements KeySelector<Tuple2<String, Integer>, String> {
        @Override
        public String getKey(Tuple2<String, Integer> t) {
            return t.f0;
        }
    }

    public static void main(String[] args) throws Exception {
        List<String> lines = Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        Map<String, Integer> counts = new TreeMap<>();
        // The running sums arrive as they grow: the largest of a word is its count.
        try (CloseableIterator<Tuple2<String, Integer>> it = env.fromData(lines)
                .flatMap(new Tokenizer())
                .returns(Types.TUPLE(Types.STRING, Types.INT))
                .keyBy(new Word())
                .sum(1)
                .executeAndCollect("bigmgr word count")) {
            while (it.hasNext()) {
                Tuple2<String, Integer> t = it.next();
                counts.merge(t.f0, t.f1, Math::max);
            }
        }
        for (Map.Entry<String, Integer> e : counts.entrySet()) {
            System.out.println("wordcount " + e.getKey() + " " + e.getValue());
        }
    }
}
EOF
}

# The text it counts.
wordcount_text() {
    cat <<'EOF'
To be, or not to be, that is the question:
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Or to take arms against a sea of troubles
And by opposing end them. To die: to sleep;
No more; and by a sleep to say we end
The heart-ache and the thousand natural shocks
That flesh is heir to.
EOF
}

# build_wordcount: compiles the word count into wordcount/wordcount.jar, again only when its
# source (or flink-dist) changed; prints the jar's path.
build_wordcount() {
    local dir="$home/wordcount" javac jar dist
    mkdir -p "$dir"
    dist=$(newest "$home"/lib/flink-dist-*.jar)
    if ! wordcount_source | cmp -s - "$dir/BigmgrWordCount.java" || [ ! -s "$dir/wordcount.jar" ] ||
        [ "$(readlink -f "$dist")" != "$(cat "$dir/built-against" 2>/dev/null)" ]; then
        javac=$(jdk_tool javac) || bm_die "javac is not installed (openjdk-17-jdk-headless); run install first"
        jar=$(jdk_tool jar) || bm_die "jar is not installed (openjdk-17-jdk-headless); run install first"
        wordcount_source | bm_write "$dir/BigmgrWordCount.java"
        rm -rf "$dir/classes" "$dir/wordcount.jar"
        "$javac" -nowarn -encoding UTF-8 -cp "$dist" -d "$dir/classes" "$dir/BigmgrWordCount.java" >&2 ||
            bm_die "compiling the word count against $dist failed"
        "$jar" --create --file "$dir/wordcount.jar" --main-class BigmgrWordCount -C "$dir/classes" . >&2 ||
            bm_die "packing the word count failed"
        readlink -f "$dist" >"$dir/built-against"
    fi
    echo "$dir/wordcount.jar"
}

check_jobmanager() {
    local timeout deadline base want got missing overview slots free jar input out expected actual job ran n
    timeout=$(check_timeout)
    deadline=$((SECONDS + timeout))
    want=$(expected_taskmanagers | awk '{print $1}' | sort)
    [ -n "$want" ] || bm_die "check failed: the service has no flink_taskmanager unit"
    # 1. Every TaskManager of the service is registered.
    while :; do
        missing="" got=""
        if base=$(rest_base); then
            got=$(registered_report "$base" || true)
            missing=$(comm -23 <(printf '%s\n' "$want") <(printf '%s\n' "$got" | awk 'NF {print $1}' | sort))
        else
            missing=$want
        fi
        [ -n "$missing" ] || break
        if [ $SECONDS -ge $deadline ]; then
            bm_die "check failed after $timeout s: $(if [ -n "${base:-}" ]; then echo "the jobmanager at $base does not list the taskmanager(s) $(echo "$missing" | tr '\n' ' ')(it lists: $(printf '%s' "$got" | tr '\n' ' '))"; else echo "no jobmanager answers ($(jobmanagers | awk '{printf "%s:%s ", $1, $2}'))"; fi)"
        fi
        sleep 2
    done
    overview=$(rest_get "$base/overview") || bm_die "check failed: $base/overview does not answer"
    slots=$(printf '%s' "$overview" | json 'd["slots-total"]')
    free=$(printf '%s' "$overview" | json 'd["slots-available"]')
    bm_log "the jobmanager at $base lists every taskmanager of the service: $(printf '%s' "$got" | awk 'NF {printf "%s (%s slots) ", $1, $2}')— $(printf '%s' "$overview" | json '"%d taskmanagers, %d slots, Flink %s" % (d["taskmanagers"], d["slots-total"], d["flink-version"])')"
    # 2. The word count, as parallel as the free slots allow (all of them on an idle cluster,
    # so that every TaskManager runs a part of it).
    [ "$free" -ge 1 ] || bm_die "check failed: no free task slot for the word count ($slots slots, all taken)"
    jar=$(build_wordcount)
    input="$home/wordcount/input.txt"
    wordcount_text | bm_write "$input"
    bm_log "running the word count on the cluster: bin/flink run -p $free $jar"
    if ! out=$(run_flink run -p "$free" -c BigmgrWordCount "$jar" "$input" 2>&1); then
        printf '%s\n' "$out" | grep -v -E '^\s+at |^$' | tail -n 30 >&2
        bm_die "check failed: the word count did not run (bin/flink run failed; see above and $logs/flink-bigmgr-client-*.log)"
    fi
    job=$(printf '%s\n' "$out" | sed -n 's/.*JobID \([0-9a-f]\{32\}\).*/\1/p' | head -n 1)
    expected=$(wordcount_text | LC_ALL=C tr '[:upper:]' '[:lower:]' | LC_ALL=C tr -cs '[:lower:]' '\n' | grep . | LC_ALL=C sort | uniq -c | awk '{print $2, $1}')
    actual=$(printf '%s\n' "$out" | sed -n 's/^wordcount //p' | LC_ALL=C sort)
    if [ "$expected" != "$actual" ]; then
        echo "--- the text's own counts (<) and the job's (>), where they differ ---" >&2
        diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") | grep '^[<>]' | head -n 40 >&2 || true
        bm_die "check failed: the word count's result (job ${job:-?}) differs from the text's own counts"
    fi
    n=$(printf '%s\n' "$expected" | awk '{s += $2} END {print s}')
    # 3. Where it ran: the TaskManagers of its tasks.
    ran=""
    if [ -n "$job" ]; then
        ran=$(job_taskmanagers "$base" "$job" || true)
    fi
    if [ "$free" = "$slots" ]; then
        missing=$(comm -23 <(printf '%s\n' "$want") <(printf '%s\n' "$ran" | sort))
        [ -z "$missing" ] ||
            bm_die "check failed: the word count (job $job, parallelism $free) did not run on the taskmanager(s) $(echo "$missing" | tr '\n' ' ')(it ran on: $(echo "$ran" | tr '\n' ' '))"
    fi
    bm_log "word count verified: job $job FINISHED on taskmanagers $(echo "$ran" | tr '\n' ' ')with parallelism $free: $n words, $(printf '%s\n' "$expected" | grep -c .) distinct, as counted from the text; the most frequent:"
    printf '%s\n' "$actual" | sort -k2,2nr -k1,1 | head -n 5 | awk '{printf "  %s %s\n", $1, $2}'
    bm_log "check passed"
}

# job_taskmanagers BASE JOB: the TaskManagers (resource ids) that ran tasks of JOB, once the
# job FINISHED (its client may have its last result a moment before); fails if it did not
# within 30 s.
job_taskmanagers() {
    local state="" vertex end=$((SECONDS + 30))
    while :; do
        state=$(rest_get "$1/jobs/$2" | json 'd["state"]' || true)
        [ "$state" != FINISHED ] || break
        [ $SECONDS -lt $end ] || bm_die "check failed: job $2 is ${state:-unknown}, not FINISHED"
        sleep 1
    done
    for vertex in $(rest_get "$1/jobs/$2" | json '" ".join(v["id"] for v in d["vertices"])'); do
        rest_get "$1/jobs/$2/vertices/$vertex/taskmanagers" |
            json '"\n".join(t["taskmanager-id"] for t in d["taskmanagers"])'
    done | sort -u
}

do_check() {
    need_installed
    case "$component" in
        flink_jobmanager) check_jobmanager ;;
        flink_taskmanager) check_taskmanager ;;
        *) check_client ;;
    esac
}

# --- remove -----------------------------------------------------------------------------------

do_remove() {
    if [ -n "$launcher" ]; then bm_daemon_stop; fi
    local p paths=()
    for p in $LINKED; do paths+=("$home/$p" "$home/.$p.new"); done
    for p in conf log tmp run wordcount .dist-conf; do paths+=("$home/$p"); done
    [ -z "$launcher" ] || paths+=("$BM_PIDFILE")
    bm_unit_rm "${paths[@]}"
    bm_log "removed $what's FLINK_HOME, configs, logs and data from $home (the unpacked software stays in the download cache)"
}

bm_main "${1:-}"
