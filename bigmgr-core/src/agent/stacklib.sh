# bigmgr stack library: the functions every stack script needs, so that scripts say only what is
# particular to their service. The bigmgr agent writes this file beside the scripts it stores
# (<root>/scripts/<hash>-bigmgr.sh, once per content) and gives its path to every script it
# runs as BIGMGR_LIB; a script sources it first:
#
#   . "${BIGMGR_LIB:?BIGMGR_LIB is not set (the bigmgr agent sets it)}"
#   bm_init zookeeper_server
#
# POSIX sh: sourced by /bin/sh (dash) scripts and by bash scripts alike, under `set -eu` (and
# `set -o pipefail`). It defines only names starting with bm_, BM_ or _bm_, sets no shell
# option, and runs nothing but definitions when sourced. Every value is used quoted and nothing
# is eval'd. The API (each function, its arguments and exit status) is documented in
# docs/stacks.md, "The stack library"; it is stable: functions may be added, none changes.

# shellcheck shell=sh disable=SC2034 # BM_* variables are set for the scripts that source this
BM_LIB_VERSION=2

# --- setup and logging --------------------------------------------------------------------------

# bm_init NAME: sets BM_NAME, BM_UNIT (BIGMGR_UNIT_DIR, absolute, without trailing '/'), BM_HOST
# (BIGMGR_HOST, else the host name), BM_ADDRESS (BIGMGR_ADDRESS, else 127.0.0.1) and
# BM_LOG_PREFIX ("NAME[host]: "). Exits 2 if BIGMGR_UNIT_DIR is unset, empty or "/".
bm_init() {
    BM_NAME=${1:?bm_init: NAME is missing}
    if [ -z "${BIGMGR_UNIT_DIR:-}" ]; then
        echo "$BM_NAME: BIGMGR_UNIT_DIR is not set" >&2
        exit 2
    fi
    BM_UNIT=$BIGMGR_UNIT_DIR
    case "$BM_UNIT" in /*) ;; *) BM_UNIT="$PWD/$BM_UNIT" ;; esac
    while :; do
        case "$BM_UNIT" in */) BM_UNIT=${BM_UNIT%/} ;; *) break ;; esac
    done
    if [ -z "$BM_UNIT" ]; then
        echo "$BM_NAME: refusing to use unit dir '$BIGMGR_UNIT_DIR'" >&2
        exit 2
    fi
    BM_HOST=${BIGMGR_HOST:-$(hostname)}
    BM_ADDRESS=${BIGMGR_ADDRESS:-127.0.0.1}
    BM_LOG_PREFIX="${BM_NAME}[${BM_HOST}]: "
}

# bm_log MSG...: MSG on stdout, after BM_LOG_PREFIX. bm_warn: the same on stderr.
bm_log() { printf '%s%s\n' "${BM_LOG_PREFIX:-}" "$*"; }
bm_warn() { printf '%s%s\n' "${BM_LOG_PREFIX:-}" "$*" >&2; }

# bm_die MSG...: MSG on stderr, then exit 1 (from a function run in a subshell, such as $(...),
# that subshell exits 1).
bm_die() {
    bm_warn "$@"
    exit 1
}

# bm_main COMMAND: runs the script's function do_COMMAND. COMMAND must be one of BM_COMMANDS
# (default: "install configure start stop restart status check remove"); anything else prints
# the usage and exits 2. Where the script has no do_COMMAND: restart runs stop, then start; stop
# and status of the daemon declared with bm_daemon run bm_daemon_stop and bm_daemon_status.
bm_main() {
    _bm_commands=${BM_COMMANDS:-install configure start stop restart status check remove}
    _bm_cmd=${1:-}
    case "$_bm_cmd" in
        "" | *[!a-z0-9_]*) _bm_cmd="" ;;
        *)
            case " $_bm_commands " in
                *" $_bm_cmd "*) ;;
                *) _bm_cmd="" ;;
            esac
            ;;
    esac
    if [ -z "$_bm_cmd" ]; then
        echo "usage: $0 $(printf '%s' "$_bm_commands" | tr ' ' '|') (got '${1:-}')" >&2
        exit 2
    fi
    _bm_run "$_bm_cmd"
}

# _bm_run COMMAND: the script's do_COMMAND, else the library's (see bm_main and
# bm_heartbeat_main, which names its functions' prefix in _bm_impl).
_bm_run() {
    if _bm_is_function "do_$1"; then
        "do_$1"
    elif [ -n "${_bm_impl:-}" ] && _bm_is_function "${_bm_impl}_$1"; then
        "${_bm_impl}_$1"
    elif [ "$1" = restart ]; then
        _bm_run stop
        _bm_run start
    elif [ -n "${BM_PIDFILE:-}" ] && { [ "$1" = stop ] || [ "$1" = status ]; }; then
        "bm_daemon_$1"
    else
        "do_$1"
    fi
}

_bm_is_function() {
    case "$(command -V "$1" 2>/dev/null)" in
        *function*) return 0 ;;
        *) return 1 ;;
    esac
}

# bm_have CMD...: whether every CMD is a command (on PATH, builtin or function).
bm_have() {
    for _bm_c in "$@"; do
        command -v "$_bm_c" >/dev/null 2>&1 || return 1
    done
}

# bm_first_exe PATH...: prints the first PATH that is an executable file (an empty PATH is
# skipped); 1 if none is.
bm_first_exe() {
    for _bm_x in "$@"; do
        if [ -n "$_bm_x" ] && [ -x "$_bm_x" ]; then
            printf '%s\n' "$_bm_x"
            return 0
        fi
    done
    return 1
}

# --- waiting ----------------------------------------------------------------------------------

# bm_nap: sleeps 0.2 s (1 s where sleep takes whole seconds only).
bm_nap() { sleep 0.2 2>/dev/null || sleep 1; }

# bm_wait SECONDS CMD [ARG...]: runs CMD every 0.2 s until it succeeds (0), for SECONDS (1 if it
# never did). Time is counted in whole seconds: "SECONDS" is at least SECONDS, at most one more.
# CMD may be a function of the script: it runs in the script's shell, so it may set variables
# (and may itself call bm_wait).
bm_wait() {
    _bm_t=$(($(date +%s) + ${1:?bm_wait: SECONDS is missing}))
    shift
    set -- "$_bm_t" "$@"
    while :; do
        if _bm_skip 1 "$@"; then return 0; fi
        [ "$(date +%s)" -le "$1" ] || return 1
        bm_nap
    done
}

# _bm_skip N ARG...: runs the command that follows the first N arguments.
_bm_skip() {
    _bm_n=$1
    shift
    shift "$_bm_n"
    "$@"
}

# --- processes --------------------------------------------------------------------------------

# bm_running PIDFILE [WORD]: whether PIDFILE holds the pid of a live process whose command line
# (its arguments joined by spaces) contains WORD as whole arguments: a path or flag only this
# unit's daemon has, such as "$BM_UNIT/conf/zoo.cfg" or "--config.file=$conf/x.yml". So a pid
# the system recycled for another process is never taken for the daemon. Without WORD (or
# without /proc) a live pid is enough.
bm_running() (
    [ -f "$1" ] || exit 1
    pid=$(cat "$1" 2>/dev/null) || exit 1
    case "$pid" in "" | *[!0-9]*) exit 1 ;; esac
    _bm_alive "$pid" || exit 1
    [ -n "${2:-}" ] && [ -d /proc/self ] || exit 0
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || exit 1
    case " $cmdline " in
        *" $2 "*) exit 0 ;;
        *) exit 1 ;;
    esac
)

# bm_spawn PIDFILE LOGFILE CMD [ARG...]: starts CMD detached from the script (its own session
# where setsid exists, nohup, stdin /dev/null, stdout and stderr appended to LOGFILE) and
# returns at once. The process writes its own pid into PIDFILE before it becomes CMD (exec),
# so PIDFILE names CMD however it was detached. Follow with bm_wait_started.
bm_spawn() {
    _bm_spawn_pidfile=${1:?bm_spawn: PIDFILE is missing}
    _bm_spawn_log=${2:?bm_spawn: LOGFILE is missing}
    shift 2
    rm -f "$_bm_spawn_pidfile"
    if command -v setsid >/dev/null 2>&1; then
        # shellcheck disable=SC2016 # $$ and "$@" belong to the launched shell
        setsid nohup sh -c 'echo $$ >"$1"; shift; exec "$@"' bigmgr-launch "$_bm_spawn_pidfile" "$@" \
            </dev/null >>"$_bm_spawn_log" 2>&1 &
    else
        # shellcheck disable=SC2016
        nohup sh -c 'echo $$ >"$1"; shift; exec "$@"' bigmgr-launch "$_bm_spawn_pidfile" "$@" \
            </dev/null >>"$_bm_spawn_log" 2>&1 &
    fi
}

# bm_wait_started PIDFILE WORD SECONDS CMD [ARG...]: after a start, waits until the daemon runs
# (bm_running PIDFILE WORD) and CMD succeeds (it answers on its port, say). 0: ready; 1: the
# daemon exited (its pid file names no such process, twice 0.2 s apart); 2: SECONDS passed
# (counted as in bm_wait).
bm_wait_started() {
    _bm_t=$(($(date +%s) + ${3:?bm_wait_started: SECONDS is missing}))
    _bm_pf=$1 _bm_w=$2
    shift 3
    set -- "$_bm_pf" "$_bm_w" "$_bm_t" "$@"
    while :; do
        if [ -s "$1" ] && ! bm_running "$1" "$2"; then
            bm_nap
            bm_running "$1" "$2" || return 1
        fi
        if bm_running "$1" "$2" && _bm_skip 3 "$@"; then return 0; fi
        [ "$(date +%s)" -le "$3" ] || return 2
        bm_nap
    done
}

# bm_stop PIDFILE WORD SECONDS: stops the daemon of PIDFILE (see bm_running): SIGTERM, SECONDS
# (as in bm_wait) for it to end, then SIGKILL (saying so on stderr) and up to 5 s more; removes
# PIDFILE. Logs "stopped (was pid N)", or "already stopped" if it was not running, in which case
# no process is signalled (a recycled pid is left alone). Exit 0.
bm_stop() (
    pidfile=$1 word=$2 secs=${3:-30}
    if ! bm_running "$pidfile" "$word"; then
        rm -f "$pidfile"
        bm_log "already stopped"
        exit 0
    fi
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    if ! _bm_gone "$secs" "$pid"; then
        bm_warn "pid $pid did not stop within $secs s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        _bm_gone 5 "$pid" || true
    fi
    rm -f "$pidfile"
    bm_log "stopped (was pid $pid)"
)

# _bm_alive PID: whether PID is a live process: it exists and is no zombie (a zombie has exited
# and holds nothing; it stays until its parent, often init, reaps it).
_bm_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ -d /proc/self ] || return 0
    _bm_stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    case "${_bm_stat##*") "}" in
        Z* | X*) return 1 ;;
        *) return 0 ;;
    esac
}

# _bm_gone SECONDS PID: waits up to SECONDS for PID to end; 1 if it did not.
_bm_gone() (
    end=$(($(date +%s) + $1))
    while _bm_alive "$2"; do
        [ "$(date +%s)" -le "$end" ] || exit 1
        sleep 0.1 2>/dev/null || sleep 1
    done
)

# --- the unit's daemon ---------------------------------------------------------------------------

# bm_daemon PIDFILE LOGFILE WORD [STOP_SECONDS]: declares the unit's daemon for the bm_daemon_*
# functions and for bm_main's stop and status: its pid file, the log its output goes to, the
# WORD that tells it from any other process (see bm_running) and how long stop waits after
# SIGTERM (default 30). Sets BM_PIDFILE, BM_DAEMON_LOG, BM_DAEMON_WORD and BM_STOP_SECONDS.
bm_daemon() {
    BM_PIDFILE=${1:?bm_daemon: PIDFILE is missing}
    BM_DAEMON_LOG=${2:?bm_daemon: LOGFILE is missing}
    BM_DAEMON_WORD=${3:?bm_daemon: WORD is missing}
    BM_STOP_SECONDS=${4:-30}
}

# bm_daemon_running: whether the daemon runs (bm_running PIDFILE WORD).
bm_daemon_running() { bm_running "${BM_PIDFILE:?call bm_daemon first}" "$BM_DAEMON_WORD"; }

# bm_daemon_pid: prints the daemon's pid, as its pid file has it.
bm_daemon_pid() { cat "$BM_PIDFILE"; }

# bm_already_running: if the daemon runs, logs "already running (pid N)" and returns 0, else 1:
# `bm_already_running && return 0` makes a start idempotent.
bm_already_running() {
    bm_daemon_running || return 1
    bm_log "already running (pid $(bm_daemon_pid))"
}

# bm_daemon_spawn CMD [ARG...]: starts CMD as the daemon (bm_spawn PIDFILE LOGFILE CMD...).
bm_daemon_spawn() { bm_spawn "${BM_PIDFILE:?call bm_daemon first}" "$BM_DAEMON_LOG" "$@"; }

# bm_daemon_wait SECONDS CMD [ARG...]: bm_wait_started PIDFILE WORD SECONDS CMD...: 0 ready, 1 the
# daemon exited, 2 SECONDS passed.
bm_daemon_wait() { bm_wait_started "${BM_PIDFILE:?call bm_daemon first}" "$BM_DAEMON_WORD" "$@"; }

# bm_daemon_ready SECONDS WHAT NOT_READY CMD [ARG...]: waits as bm_daemon_wait does; returns 0
# once CMD succeeds. Else the start fails (exit 1), saying on stderr "NAME: WHAT exited during
# startup" if the daemon exited, or "NAME: WHAT NOT_READY within SECONDS s" if the time passed,
# followed by "; last lines of LOGFILE:" and those lines (or, if BM_DAEMON_TAIL names a
# command, by what that command prints); a daemon that was not ready in time is stopped
# (bm_daemon_stop, its messages on stderr).
bm_daemon_ready() {
    _bm_ready_s=${1:?bm_daemon_ready: SECONDS is missing} _bm_ready_what=$2 _bm_ready_late=$3
    shift 3
    _bm_ready_rc=0
    bm_daemon_wait "$_bm_ready_s" "$@" || _bm_ready_rc=$?
    case $_bm_ready_rc in
        0) return 0 ;;
        1) _bm_daemon_failed "$_bm_ready_what exited during startup" ;;
        *)
            _bm_daemon_failed "$_bm_ready_what $_bm_ready_late within $_bm_ready_s s"
            bm_daemon_stop >&2 || true
            ;;
    esac
    exit 1
}

_bm_daemon_failed() {
    if [ -n "${BM_DAEMON_TAIL:-}" ]; then
        printf '%s: %s\n' "$BM_NAME" "$1" >&2
        "$BM_DAEMON_TAIL"
    else
        printf '%s: %s; last lines of %s:\n' "$BM_NAME" "$1" "$BM_DAEMON_LOG" >&2
        bm_tail "$BM_DAEMON_LOG"
    fi
}

# bm_daemon_stop: stops the daemon (bm_stop PIDFILE WORD STOP_SECONDS). bm_main's stop.
bm_daemon_stop() { bm_stop "${BM_PIDFILE:?call bm_daemon first}" "$BM_DAEMON_WORD" "$BM_STOP_SECONDS"; }

# bm_daemon_status [RUNNING [STOPPED]]: logs "RUNNING (pid N)" and exits 0 if the daemon runs,
# else logs STOPPED and exits 3 (LSB). RUNNING is "is running" and STOPPED "is not running"
# unless given. bm_main's status.
bm_daemon_status() {
    if bm_daemon_running; then
        bm_log "${1:-is running} (pid $(bm_daemon_pid))"
        exit 0
    fi
    bm_log "${2:-is not running}"
    exit 3
}

# --- network ----------------------------------------------------------------------------------

# bm_port_open ADDRESS PORT: whether a TCP connection to ADDRESS:PORT succeeds (within 5 s).
bm_port_open() {
    if command -v bash >/dev/null 2>&1; then
        # shellcheck disable=SC2016 # $1 and $2 belong to bash -c
        timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' bm-port "$1" "$2" </dev/null >/dev/null 2>&1
    else
        timeout 5 python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5).close()' \
            "$1" "$2" </dev/null >/dev/null 2>&1
    fi
}

# bm_wait_port ADDRESS PORT SECONDS: waits until ADDRESS:PORT accepts connections; 0 when it
# does, 1 if it did not within SECONDS.
bm_wait_port() { bm_wait "${3:?bm_wait_port: SECONDS is missing}" bm_port_open "$1" "$2"; }

# bm_port_holders ADDRESS PORT: prints "address:port process" for each socket listening on
# ADDRESS:PORT or on the wildcard address with that port (nothing if none, or without ss).
bm_port_holders() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -Hltnp "sport = :$2" 2>/dev/null | awk -v a="$1:$2" -v p=":$2" \
        '$4 == a || $4 == "0.0.0.0" p || $4 == "*" p || $4 == "[::]" p { print $4, $6 }' || true
}

# bm_need_free_port ADDRESS PORT: before a start: exits 1 (bm_die "cannot start: ADDRESS:PORT is
# already in use by another process: …", naming it) if a socket listens there (bm_port_holders)
# for BM_PORT_WAIT seconds (default 15): a daemon just stopped (a JVM whose main thread is gone
# while others still close its sockets) may hold its port a moment longer.
bm_need_free_port() {
    _bm_port_end=$(($(date +%s) + ${BM_PORT_WAIT:-15}))
    while _bm_holders=$(bm_port_holders "$1" "$2") && [ -n "$_bm_holders" ]; do
        [ "$(date +%s)" -lt "$_bm_port_end" ] ||
            bm_die "cannot start: $1:$2 is already in use by another process: $_bm_holders"
        sleep 0.2
    done
}

# --- packages ---------------------------------------------------------------------------------

# bm_pkg_installed PKG: whether the package PKG is installed (dpkg, else rpm).
bm_pkg_installed() {
    if command -v dpkg-query >/dev/null 2>&1; then
        # shellcheck disable=SC2016 # ${Status} is dpkg-query's, not the shell's
        [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
    else
        rpm -q "$1" >/dev/null 2>&1
    fi
}

# bm_pkg_install PKG...: installs the packages that are missing, with apt-get (then dnf, yum).
# The units of one machine take turns on the lock file BM_PKG_LOCK (default
# /var/lock/bigmgr-pkg.lock), and each checks again under the lock, so a package is installed
# once however many units install at once. Sets BM_PKG_NEW to the packages that were missing
# (empty if none: nothing ran, no lock was taken). Exits 1 (bm_die) if the install fails or a
# name is not a package name.
bm_pkg_install() {
    BM_PKG_NEW=""
    _bm_missing=$(_bm_pkg_missing "$@") || exit 1
    [ -n "$_bm_missing" ] || return 0
    (
        flock -w 1200 9 || bm_die "timed out waiting for ${BM_PKG_LOCK:-/var/lock/bigmgr-pkg.lock}"
        missing=$(_bm_pkg_missing "$@") || exit 1
        [ -n "$missing" ] || exit 0
        bm_log "installing $missing"
        # shellcheck disable=SC2086 # package names: checked, no blanks, no patterns
        set -- $missing
        if command -v apt-get >/dev/null 2>&1; then
            export DEBIAN_FRONTEND=noninteractive
            lock_timeout="DPkg::Lock::Timeout=600"
            apt-get install -y -q -o "$lock_timeout" -o Dpkg::Options::=--force-confdef \
                -o Dpkg::Options::=--force-confold "$@" ||
                {
                    apt-get update -q -o "$lock_timeout" &&
                        apt-get install -y -q -o "$lock_timeout" -o Dpkg::Options::=--force-confdef \
                            -o Dpkg::Options::=--force-confold "$@"
                }
        elif command -v dnf >/dev/null 2>&1; then
            dnf install -y -q "$@"
        elif command -v yum >/dev/null 2>&1; then
            yum install -y -q "$@"
        else
            bm_die "no known package manager (apt-get, dnf, yum) to install $missing"
        fi
    ) 9>"${BM_PKG_LOCK:-/var/lock/bigmgr-pkg.lock}" || bm_die "installing $* failed"
    BM_PKG_NEW=$_bm_missing
}

# The missing ones of the packages given, space-separated; exits 1 on a name that is not one.
_bm_pkg_missing() (
    missing=""
    for p in "$@"; do
        case "$p" in
            "" | [!A-Za-z0-9]* | *[!A-Za-z0-9.+_:~-]*) bm_die "'$p' is not a package name" ;;
        esac
        bm_pkg_installed "$p" || missing="$missing${missing:+ }$p"
    done
    printf '%s' "$missing"
)

# bm_quiet_service SERVICE [FRESH]: the system's own SERVICE (the package's daemon) must not
# hold the ports units use: stops it if it runs, and disables it if it ran or if FRESH is
# neither empty nor 0 (its package was just installed: pass "$BM_PKG_NEW"). Only the init
# system (systemd, else /etc/init.d) is asked; no process is killed by name. Exit 0.
bm_quiet_service() (
    svc=$1 fresh=${2:-} was_active=0
    [ "$fresh" = 0 ] && fresh=""
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet "$svc" 2>/dev/null; then
            was_active=1
            bm_log "stopping the package's own $svc service"
            systemctl stop "$svc" || true
        fi
        if [ $was_active = 1 ] || [ -n "$fresh" ]; then
            if systemctl is-enabled --quiet "$svc" 2>/dev/null; then
                systemctl disable "$svc" 2>/dev/null || true
            fi
        fi
    elif [ -x "/etc/init.d/$svc" ]; then
        if service "$svc" status >/dev/null 2>&1; then
            was_active=1
            bm_log "stopping the package's own $svc service"
            service "$svc" stop || true
        fi
        if [ $was_active = 1 ] || [ -n "$fresh" ]; then
            if command -v update-rc.d >/dev/null 2>&1; then
                update-rc.d "$svc" disable >/dev/null 2>&1 || true
            elif command -v chkconfig >/dev/null 2>&1; then
                chkconfig "$svc" off >/dev/null 2>&1 || true
            fi
        fi
    fi
    exit 0
)

# --- the context file (BIGMGR_CONTEXT) ----------------------------------------------------------

# bm_ctx_present: whether BIGMGR_CONTEXT names a file.
bm_ctx_present() { [ -n "${BIGMGR_CONTEXT:-}" ] && [ -f "$BIGMGR_CONTEXT" ]; }

# bm_ctx_value KEY: prints the context's top-level value KEY (a property, secrets included, or
# cluster, service, host, …): true/false for booleans, JSON for lists and objects, nothing if
# it is absent or null or there is no context file. Exit 0 (non-zero only if the file is not
# JSON or python3 is missing).
bm_ctx_value() {
    bm_ctx_present || return 0
    python3 -c "$_bm_ctx_py"'
v = get(ctx, sys.argv[2])
print("" if v is None else text(v))' "$BIGMGR_CONTEXT" "$1"
}

# bm_ctx_units LIST FIELD...: one line per unit of the context's LIST ("peers.quorum",
# "relations.metrics"), with the unit's FIELDs ("host", "address", "index", "self",
# "component", "configs.clientPort", …) separated by tabs; a field that is absent, null or
# empty prints as "-". Nothing if the list is absent or empty. Exit 1 (saying so) if there is
# no context file.
bm_ctx_units() {
    bm_ctx_present || {
        bm_warn "BIGMGR_CONTEXT is not set or missing; cannot find the other units"
        return 1
    }
    python3 -c "$_bm_ctx_py"'
for u in get(ctx, sys.argv[2]) or []:
    print("\t".join("-" if get(u, f) in (None, "") else text(get(u, f)) for f in sys.argv[3:]))' \
        "$BIGMGR_CONTEXT" "$@"
}

# bm_ctx_endpoints LIST PORT_FIELD [COMPONENT]: "address:port" of each unit of the context's LIST
# (of COMPONENT only, if given), PORT_FIELD being the unit's field that holds its port
# ("configs.port"), one a line; an absent or empty field prints as "-". Exit status as
# bm_ctx_units.
bm_ctx_endpoints() {
    _bm_units=$(bm_ctx_units "$1" component address "$2") || return 1
    printf '%s\n' "$_bm_units" | awk -F '\t' -v c="${3:-}" 'NF && (c == "" || $1 == c) { print $2 ":" $3 }'
}

_bm_ctx_py='
import json, sys
def get(v, path):
    for k in path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    return v
def text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v).replace("\t", " ").replace("\n", " ")
ctx = json.load(open(sys.argv[1])).get("context") or {}'

# --- files ------------------------------------------------------------------------------------

# bm_write FILE [MODE]: writes stdin to FILE atomically (a temporary file beside it, chmod MODE
# if given, then rename), so a reader sees the old or the new content, never a part.
bm_write() (
    tmp="$1.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    cat >"$tmp"
    [ -z "${2:-}" ] || chmod "$2" "$tmp"
    mv -f "$tmp" "$1"
)

# bm_unit_rm PATH...: removes each PATH (rm -rf), which must lie inside BM_UNIT (and have no '.'
# or '..' component). Exits 1 (bm_die) if one does not, removing nothing.
bm_unit_rm() {
    _bm_unit_set
    for _bm_p in "$@"; do
        case "$_bm_p" in
            "$BM_UNIT"/*) ;;
            *) bm_die "refusing to remove '$_bm_p': it is not inside the unit directory $BM_UNIT" ;;
        esac
        case "/$_bm_p/" in
            */../* | */./*) bm_die "refusing to remove '$_bm_p': a path with '.' or '..'" ;;
        esac
    done
    [ $# -eq 0 ] || rm -rf "$@"
}

# bm_unit_clear: empties BM_UNIT (hidden files too) and keeps the directory.
bm_unit_clear() {
    _bm_unit_set
    rm -rf "${BM_UNIT:?}"/* "${BM_UNIT:?}"/.[!.]* "${BM_UNIT:?}"/..?*
}

_bm_unit_set() {
    if [ -z "${BM_UNIT:-}" ] || [ "$BM_UNIT" = / ]; then bm_die "BM_UNIT is not set: run bm_init first"; fi
}

# bm_tail FILE [LINES]: the last LINES (default 30) lines of FILE on stderr, if it exists.
bm_tail() {
    [ -f "$1" ] || return 0
    tail -n "${2:-30}" "$1" >&2 || true
}

# bm_die_log FILE MSG...: "MSG; last lines of FILE:" and those lines (bm_tail) on stderr, then
# exit 1.
bm_die_log() {
    _bm_dl_file=$1
    shift
    printf '%s; last lines of %s:\n' "$*" "$_bm_dl_file" >&2
    bm_tail "$_bm_dl_file"
    exit 1
}

# bm_conf_get FILE KEY: prints the value of FILE's last line "KEY=value" (KEY as it is, no
# pattern); nothing if there is none or no FILE.
bm_conf_get() {
    [ -f "$1" ] || return 0
    awk -v k="$2=" 'index($0, k) == 1 { v = substr($0, length(k) + 1); f = 1 } END { if (f) print v }' "$1"
}

# _bm_sha256 FILE: the hex SHA-256 of FILE (sha256sum, else python3).
_bm_sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print $1}'
    else
        python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
    fi
}

# bm_fetch URL SHA256 NAME: the software a unit installs, fetched once per host into its download
# cache (BIGMGR_CACHE_DIR, else BIGMGR_ROOT/cache, else BM_UNIT/.cache) as NAME, and verified:
# prints the cached file's path. A file of that name with that SHA-256 already there is used as
# is. A download whose SHA-256 differs exits 1 (bm_die) naming the URL and both sums, and leaves
# nothing in the cache. URL may be http(s):// or file://; SHA256 is 64 hex digits; NAME a plain
# file name.
bm_fetch() {
    _bm_url=${1:?bm_fetch: URL is missing}
    _bm_want=${2:?bm_fetch: SHA256 is missing}
    _bm_name=${3:?bm_fetch: NAME is missing}
    case "$_bm_want" in
        *[!0-9a-f]*) bm_die "bm_fetch: '$_bm_want' is not a SHA-256 (64 lowercase hex digits)" ;;
    esac
    [ "${#_bm_want}" -eq 64 ] || bm_die "bm_fetch: '$_bm_want' is not a SHA-256 (64 lowercase hex digits)"
    case "$_bm_name" in
        */* | .* | '') bm_die "bm_fetch: '$_bm_name' is not a plain file name" ;;
    esac
    case "$_bm_url" in
        http://* | https://* | file://*) ;;
        *) bm_die "bm_fetch: '$_bm_url' is not an http(s):// or file:// URL" ;;
    esac
    _bm_cache=${BIGMGR_CACHE_DIR:-${BIGMGR_ROOT:+$BIGMGR_ROOT/cache}}
    _bm_cache=${_bm_cache:-$BM_UNIT/.cache}
    mkdir -p "$_bm_cache" || bm_die "cannot create the download cache $_bm_cache"
    if [ -f "$_bm_cache/$_bm_name" ] && [ "$(_bm_sha256 "$_bm_cache/$_bm_name")" = "$_bm_want" ]; then
        printf '%s\n' "$_bm_cache/$_bm_name"
        return 0
    fi
    _bm_tmp=$(mktemp "$_bm_cache/.fetch.XXXXXX") || bm_die "cannot write into $_bm_cache"
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --retry 2 -o "$_bm_tmp" "$_bm_url" </dev/null >&2
    else
        python3 -c 'import shutil, sys, urllib.request; shutil.copyfileobj(urllib.request.urlopen(sys.argv[1], timeout=60), open(sys.argv[2], "wb"))' \
            "$_bm_url" "$_bm_tmp" </dev/null >&2
    fi || {
        rm -f "$_bm_tmp"
        bm_die "${BM_FETCH_WHAT:+$BM_FETCH_WHAT: }cannot fetch $_bm_url"
    }
    _bm_got=$(_bm_sha256 "$_bm_tmp")
    if [ "$_bm_got" != "$_bm_want" ]; then
        rm -f "$_bm_tmp"
        bm_die "${BM_FETCH_WHAT:+$BM_FETCH_WHAT: }the download of $_bm_url has SHA-256 $_bm_got, not the expected $_bm_want: nothing was installed (fix the source's URL or its sha256)"
    fi
    mv -f "$_bm_tmp" "$_bm_cache/$_bm_name" || bm_die "cannot keep $_bm_name in $_bm_cache"
    printf '%s\n' "$_bm_cache/$_bm_name"
}

# bm_unpack ARCHIVE DEST: extracts a tarball (tar's own compression detection) or a zip file (a
# wheel: *.whl, *.zip; file modes kept) into DEST, whole or not at all: into a temporary
# directory beside DEST, renamed to DEST once complete. A DEST already there is left as it is
# (returns 0), also when another unit finished unpacking it first. A broken archive exits 1
# (bm_die) and leaves no DEST and no temporary directory.
bm_unpack() {
    _bm_archive=${1:?bm_unpack: ARCHIVE is missing}
    _bm_dest=${2:?bm_unpack: DEST is missing}
    [ -e "$_bm_dest" ] && return 0
    mkdir -p "$(dirname "$_bm_dest")" || bm_die "cannot create $(dirname "$_bm_dest")"
    _bm_tmp=$(mktemp -d "$_bm_dest.unpack.XXXXXX") || bm_die "cannot create a directory beside $_bm_dest"
    case "$_bm_archive" in
        *.whl | *.zip)
            python3 -c "$_bm_unzip_py" "$_bm_archive" "$_bm_tmp" >&2 ;;
        *) tar -xf "$_bm_archive" -C "$_bm_tmp" >&2 ;;
    esac || {
        rm -rf "$_bm_tmp"
        bm_die "cannot unpack $_bm_archive (is it a tarball or a zip file?): nothing was installed"
    }
    if ! mv -T "$_bm_tmp" "$_bm_dest" 2>/dev/null; then
        rm -rf "$_bm_tmp"
        [ -d "$_bm_dest" ] || bm_die "cannot move the unpacked files to $_bm_dest"
    fi
}

# Extracts zip file argv[1] into directory argv[2], keeping the members' Unix modes (zipfile
# alone drops them: a wheel's bin/*.sh would lose their execute bit); refuses members that would
# land outside the directory.
_bm_unzip_py='
import os, sys, zipfile
dest = os.path.realpath(sys.argv[2])
with zipfile.ZipFile(sys.argv[1]) as z:
    for m in z.infolist():
        target = os.path.realpath(os.path.join(dest, m.filename))
        if not target.startswith(dest + os.sep):
            sys.exit("refusing member %r: it lands outside the directory" % m.filename)
        z.extract(m, dest)
        mode = (m.external_attr >> 16) & 0o777
        if mode and not m.is_dir():
            os.chmod(target, mode)'

# bm_software NAME: installs the unit's software source NAME, one of its service's [[software]]
# sources, as the context gives it (the properties NAME_kind, NAME_package, NAME_version,
# NAME_file, NAME_url, NAME_index, NAME_sha256, which an operator may change per service or per
# host; core has checked them). Sets BM_SOFTWARE_DIR:
#   deb      bm_pkg_install PACKAGE... (one or several names separated by spaces; BM_PKG_NEW as
#            it sets it); BM_SOFTWARE_DIR is empty.
#   pypi     finds FILE on the PEP 503 index page of PACKAGE (INDEX, default pypi.org/simple),
#            fetches it (bm_fetch: cached per host, SHA-256 checked) and unpacks it (bm_unpack)
#            once per host into the download cache's unpacked/<sha256>; BM_SOFTWARE_DIR names it.
#   tarball  fetches URL (kept as FILE, else the URL's last part) and unpacks it the same way.
# The unpacked directory is shared by the host's units: read it, never write into it. A wrong
# SHA-256 exits 1 naming the source, the URL and both sums, and installs nothing.
bm_software() {
    _bm_sw=${1:?bm_software: NAME is missing}
    bm_ctx_present || bm_die "software source '$_bm_sw': BIGMGR_CONTEXT is missing (the bigmgr agent gives it)"
    _bm_sw_kind=$(bm_ctx_value "${_bm_sw}_kind")
    _bm_sw_pkg=$(bm_ctx_value "${_bm_sw}_package")
    _bm_sw_file=$(bm_ctx_value "${_bm_sw}_file")
    _bm_sw_sum=$(bm_ctx_value "${_bm_sw}_sha256")
    BM_SOFTWARE_DIR="" _bm_sw_cached=""
    case "$_bm_sw_kind" in
        deb)
            # shellcheck disable=SC2086 # several names; bm_pkg_install checks each
            bm_pkg_install $_bm_sw_pkg
            return 0 ;;
        pypi)
            _bm_sw_ver=$(bm_ctx_value "${_bm_sw}_version")
            _bm_sw_index=$(bm_ctx_value "${_bm_sw}_index")
            _bm_sw_what="software source '$_bm_sw' (pypi $_bm_sw_pkg $_bm_sw_ver, $_bm_sw_file)"
            # A file already cached with its sum needs no index (a host reinstalls offline).
            _bm_sw_c=${BIGMGR_CACHE_DIR:-${BIGMGR_ROOT:+$BIGMGR_ROOT/cache}}
            _bm_sw_c=${_bm_sw_c:-$BM_UNIT/.cache}
            if [ -f "$_bm_sw_c/$_bm_sw_file" ] && [ "$(_bm_sha256 "$_bm_sw_c/$_bm_sw_file")" = "$_bm_sw_sum" ]; then
                _bm_sw_cached="$_bm_sw_c/$_bm_sw_file"
            else
                _bm_sw_url=$(python3 -c "$_bm_pypi_py" "${_bm_sw_index:-https://pypi.org/simple}" \
                    "$_bm_sw_pkg" "$_bm_sw_file" </dev/null) ||
                    bm_die "$_bm_sw_what: not found on the index ${_bm_sw_index:-https://pypi.org/simple}"
            fi ;;
        tarball)
            _bm_sw_url=$(bm_ctx_value "${_bm_sw}_url")
            if [ -z "$_bm_sw_file" ]; then
                _bm_sw_file=${_bm_sw_url##*/}
                _bm_sw_file=${_bm_sw_file%%[?#]*}
            fi
            _bm_sw_what="software source '$_bm_sw' (tarball $_bm_sw_url)" ;;
        "") bm_die "software source '$_bm_sw': the context has no ${_bm_sw}_kind (is it one of the service's [[software]]?)" ;;
        *) bm_die "software source '$_bm_sw': kind '$_bm_sw_kind' is not deb, pypi or tarball" ;;
    esac
    if [ -z "$_bm_sw_cached" ]; then
        _bm_sw_cached=$(BM_FETCH_WHAT=$_bm_sw_what bm_fetch "$_bm_sw_url" "$_bm_sw_sum" "$_bm_sw_file") || exit 1
    fi
    BM_SOFTWARE_DIR="$(dirname "$_bm_sw_cached")/unpacked/$_bm_sw_sum"
    bm_unpack "$_bm_sw_cached" "$BM_SOFTWARE_DIR"
    bm_log "$_bm_sw_what: in $BM_SOFTWARE_DIR"
}

# Prints the URL of file argv[3] on the PEP 503 page of project argv[2] of index argv[1].
_bm_pypi_py='
import re, sys, urllib.parse, urllib.request
index, project, want = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
page = "%s/%s/" % (index, re.sub(r"[-_.]+", "-", project).lower())
html = urllib.request.urlopen(page, timeout=60).read().decode("utf-8", "replace")
for href in re.findall(r"""href=["\x27]([^"\x27]+)""", html):
    url = urllib.parse.urljoin(page, href.replace("&amp;", "&"))
    if urllib.parse.unquote(url.split("#")[0].split("?")[0].rsplit("/", 1)[-1]) == want:
        print(url.split("#")[0])
        sys.exit(0)
sys.exit("%s is not on %s" % (want, page))'

# bm_mark_installed VERSION: the install of a unit that has nothing to install but a marker:
# writes "NAME VERSION installed on HOST" into BM_UNIT/installed and logs "installed in UNIT",
# or logs "already installed" if the marker is there.
bm_mark_installed() {
    mkdir -p "$BM_UNIT"
    if [ -f "$BM_UNIT/installed" ]; then
        bm_log "already installed"
        return 0
    fi
    printf '%s %s installed on %s\n' "$BM_NAME" "${1:?bm_mark_installed: VERSION is missing}" \
        "$BM_HOST" >"$BM_UNIT/installed"
    bm_log "installed in $BM_UNIT"
}

# bm_need_installed: exits 1 (bm_die "is not installed; run install first") unless
# bm_mark_installed ran.
bm_need_installed() { [ -f "$BM_UNIT/installed" ] || bm_die "is not installed; run install first"; }

# --- the heartbeat daemon -----------------------------------------------------------------------

# bm_heartbeat_main VERSION CONF GREETING COMMAND: the whole of a script whose unit runs the
# library's heartbeat daemon (the demo stack's servers): a shell loop that writes
# "<epoch seconds> <greeting>" into BM_UNIT/heartbeat every interval seconds. install is
# bm_mark_installed VERSION; configure writes BM_UNIT/NAME.run from CONF's greeting= and
# interval= (GREETING and 5 where CONF has none) with the host and address; start runs the loop
# (pid file NAME.pid, log NAME.log, NAME.run on its command line); check waits 5 s for a
# heartbeat; remove stops it and empties the unit directory. Runs COMMAND as bm_main does (a
# do_COMMAND of the script comes first).
bm_heartbeat_main() {
    _bm_hb_version=${1:?bm_heartbeat_main: VERSION is missing} _bm_hb_conf=${2:?bm_heartbeat_main: CONF is missing}
    _bm_hb_greeting=${3:?bm_heartbeat_main: GREETING is missing} _bm_hb_run="$BM_UNIT/$BM_NAME.run"
    bm_daemon "$BM_UNIT/$BM_NAME.pid" "$BM_UNIT/$BM_NAME.log" "$_bm_hb_run" 10
    _bm_impl=_bm_hb
    bm_main "${4:-}"
}

_bm_hb_install() { bm_mark_installed "$_bm_hb_version"; }

_bm_hb_configure() {
    bm_need_installed
    _bm_hb_g=$(bm_conf_get "$_bm_hb_conf" greeting)
    _bm_hb_i=$(bm_conf_get "$_bm_hb_conf" interval)
    case "$_bm_hb_i" in "" | *[!0-9]*) _bm_hb_i=5 ;; esac
    printf 'greeting=%s\ninterval=%s\nhost=%s\naddress=%s\n' \
        "${_bm_hb_g:-$_bm_hb_greeting}" "$_bm_hb_i" "$BM_HOST" "$BM_ADDRESS" | bm_write "$_bm_hb_run"
    bm_log "configured: $(tr '\n' ' ' <"$_bm_hb_run")"
}

_bm_hb_start() {
    if bm_already_running; then return 0; fi
    bm_need_installed
    [ -f "$_bm_hb_run" ] || _bm_run configure
    bm_daemon_spawn sh -c "$_bm_hb_sh" "$BM_NAME-daemon" "$_bm_hb_run" "$BM_UNIT/heartbeat"
    bm_daemon_wait 10 true || bm_die "did not start; see $BM_DAEMON_LOG"
    bm_log "started (pid $(bm_daemon_pid))"
}

_bm_hb_check() {
    bm_daemon_running || _bm_hb_fail "is not running"
    bm_wait 5 test -s "$BM_UNIT/heartbeat" || _bm_hb_fail "wrote no heartbeat"
    printf 'check passed: %s pid %s says: %s\n' "$BM_NAME" "$(bm_daemon_pid)" "$(cat "$BM_UNIT/heartbeat")"
}

_bm_hb_fail() {
    printf 'check failed: %s %s\n' "$BM_NAME" "$1" >&2
    exit 1
}

_bm_hb_remove() {
    _bm_run stop
    bm_unit_clear
    bm_log "removed from $BM_UNIT"
}

# The loop, run by sh -c: $1 is NAME.run, $2 the heartbeat file.
# shellcheck disable=SC2016 # the daemon's own script: $1 and $2 are its arguments
_bm_hb_sh='
        greeting=$(sed -n "s/^greeting=//p" "$1")
        interval=$(sed -n "s/^interval=//p" "$1")
        child=""
        trap "[ -n \"\$child\" ] && kill \$child 2>/dev/null; exit 0" TERM INT
        while :; do
            echo "$(date +%s) $greeting" > "$2.tmp" && mv "$2.tmp" "$2"
            sleep "${interval:-5}" & child=$!
            wait $child || true
        done
    '
