//! The stack library (`bigmgr_core::agent::STACKLIB`) as scripts use it: sourced by a real
//! `sh` (dash) and a real `bash` under `set -eu`, against temporary unit directories. Pid files
//! with a recycled pid, starting and stopping daemons (SIGTERM, then SIGKILL), waiting for a
//! port, installing packages under the lock (with a fake `dpkg-query` and `apt-get`), the
//! context file, files, the command dispatcher, a declared daemon (`bm_daemon`: start, ready
//! or not, status, stop, restart through `bm_main`) and the heartbeat daemon of the demo stack.
//!
//! Every daemon a test starts has the test's temporary directory on its command line; the
//! [`Lib`] guard kills each such process (and its process group) when the test ends, passed or
//! failed.

use bigmgr_core::agent::{STACKLIB, write_stacklib};
use bigmgr_test_support::{procs, write_executable};
use nix::unistd::Pid;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shells the library must work in: the demo scripts are `sh`, the others `bash`.
const SHELLS: [&str; 2] = ["sh", "bash"];

/// What a script printed and how it ended.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A temporary directory with the library written into it and a unit directory; kills every
/// process whose command line names the directory when dropped.
struct Lib {
    dir: tempfile::TempDir,
    lib: PathBuf,
    unit: PathBuf,
    children: Vec<Child>,
}

impl Lib {
    fn new() -> Lib {
        let dir = tempfile::tempdir().expect("tempdir");
        let lib = dir.path().join("scripts/0123-bigmgr.sh");
        write_stacklib(&lib).expect("write the library");
        let unit = dir.path().join("unit");
        std::fs::create_dir_all(&unit).expect("unit dir");
        Lib {
            dir,
            lib,
            unit,
            children: Vec::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `body` in `shell` after `set -eu`, sourcing the library and `bm_init t`.
    fn run(&self, shell: &str, body: &str) -> Out {
        self.run_with(shell, body, &[])
    }

    fn run_with(&self, shell: &str, body: &str, env: &[(&str, &str)]) -> Out {
        let script = format!("set -eu\n. \"$BIGMGR_LIB\"\nbm_init t\n{body}\n");
        let out = Command::new(shell)
            .arg("-c")
            .arg(&script)
            .arg(shell)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("BIGMGR_LIB", &self.lib)
            .env("BIGMGR_UNIT_DIR", &self.unit)
            .env("BIGMGR_HOST", "h1")
            .env("BIGMGR_ADDRESS", "127.0.0.1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("the shell runs");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// [`Lib::run`], which must exit 0.
    #[track_caller]
    fn ok(&self, shell: &str, body: &str) -> Out {
        let out = self.run(shell, body);
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        out
    }

    /// Asserts that the daemon `pid` of `t.pid` is stopped and its pid file gone.
    #[track_caller]
    fn assert_stopped(&self, pid: i32, shell: &str) {
        assert!(!alive(pid), "{shell}: {pid} still runs");
        assert!(!self.unit.join("t.pid").exists(), "{shell}: t.pid is left");
    }

    /// The pid in `name` (in the unit directory).
    fn pid(&self, name: &str) -> i32 {
        std::fs::read_to_string(self.unit.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .trim()
            .parse()
            .expect("a pid")
    }

    /// A process that has nothing to do with the unit (as a recycled pid would be).
    fn stranger(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("300")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep");
        let pid = child.id() as i32;
        self.children.push(child);
        pid
    }
}

impl Drop for Lib {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let needle = self.path().to_string_lossy().into_owned();
        for pid in procs::pids_mentioning("cmdline", &needle) {
            procs::kill_with_group(pid);
        }
    }
}

/// Whether `pid` is a live process (exists and is no zombie).
fn alive(pid: i32) -> bool {
    procs::running(pid)
}

/// A daemon for `bm_spawn`: runs until SIGTERM, `$1` (a path in the unit) on its command line.
const DAEMON: &str =
    r#"sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' t-daemon "$BM_UNIT/conf/t.cfg""#;

#[test]
fn init_makes_the_unit_dir_absolute_and_refuses_the_root() {
    let lib = Lib::new();
    for shell in SHELLS {
        let out = lib.ok(
            shell,
            r#"printf '%s|%s|%s|%s\n' "$BM_UNIT" "$BM_HOST" "$BM_ADDRESS" "$BM_LOG_PREFIX""#,
        );
        assert_eq!(
            out.stdout,
            format!("{}|h1|127.0.0.1|t[h1]: \n", lib.unit.display()),
            "{shell}"
        );
        // Relative and with trailing slashes: made absolute from the working directory.
        let out = lib.run_with(
            shell,
            r#"echo "$BM_UNIT""#,
            &[("BIGMGR_UNIT_DIR", "unit//")],
        );
        assert_eq!(
            out.stdout.trim(),
            lib.unit.to_string_lossy(),
            "{shell}: {out:?}"
        );
        for bad in ["", "/", "//"] {
            let out = lib.run_with(shell, "echo ran", &[("BIGMGR_UNIT_DIR", bad)]);
            assert_eq!(out.code, 2, "{shell} {bad:?}: {out:?}");
            assert!(!out.stdout.contains("ran"), "{shell} {bad:?}: {out:?}");
        }
        let out = lib.run(
            shell,
            "bm_log one two; bm_warn three; bm_die four; echo never",
        );
        assert_eq!(out.code, 1, "{shell}: {out:?}");
        assert_eq!(out.stdout, "t[h1]: one two\n", "{shell}");
        assert_eq!(out.stderr, "t[h1]: three\nt[h1]: four\n", "{shell}");
    }
}

#[test]
fn a_recycled_pid_is_not_taken_for_the_daemon_nor_signalled() {
    let mut lib = Lib::new();
    let stranger = lib.stranger();
    for shell in SHELLS {
        std::fs::write(lib.unit.join("t.pid"), format!("{stranger}\n")).unwrap();
        let out = lib.ok(
            shell,
            r#"pf="$BM_UNIT/t.pid"
if bm_running "$pf" "$BM_UNIT/conf/t.cfg"; then echo word-yes; else echo word-no; fi
if bm_running "$pf"; then echo pid-yes; else echo pid-no; fi
bm_stop "$pf" "$BM_UNIT/conf/t.cfg" 1"#,
        );
        assert_eq!(
            out.stdout, "word-no\npid-yes\nt[h1]: already stopped\n",
            "{shell}"
        );
        assert!(alive(stranger), "{shell}: the stranger was signalled");
        assert!(
            !lib.unit.join("t.pid").exists(),
            "{shell}: the pid file stays"
        );

        // Garbage, an empty file, a pid that is no process, no file at all: not running.
        for content in ["abc", "", "12 34", "-1", "999999999"] {
            std::fs::write(lib.unit.join("t.pid"), content).unwrap();
            let out = lib.run(shell, r#"bm_running "$BM_UNIT/t.pid" || echo no"#);
            assert_eq!(out.stdout, "no\n", "{shell} {content:?}: {out:?}");
        }
        std::fs::remove_file(lib.unit.join("t.pid")).unwrap();
        let out = lib.run(shell, r#"bm_running "$BM_UNIT/t.pid" || echo no"#);
        assert_eq!(out.stdout, "no\n", "{shell}: {out:?}");
    }
}

#[test]
fn spawn_waits_for_the_daemon_and_stop_ends_it_with_sigterm() {
    let lib = Lib::new();
    let start = format!(
        r#"mkdir -p "$BM_UNIT/conf"
bm_spawn "$BM_UNIT/t.pid" "$BM_UNIT/t.log" {DAEMON}
bm_wait_started "$BM_UNIT/t.pid" "$BM_UNIT/conf/t.cfg" 10 true
bm_running "$BM_UNIT/t.pid" "$BM_UNIT/conf/t.cfg" && echo running
bm_running "$BM_UNIT/t.pid" "$BM_UNIT/conf" || echo "a part of an argument is no match""#
    );
    for shell in SHELLS {
        let out = lib.ok(shell, &start);
        assert_eq!(
            out.stdout, "running\na part of an argument is no match\n",
            "{shell}"
        );
        let pid = lib.pid("t.pid");
        assert!(alive(pid));
        // Detached: its own session, so it outlives the script and its process group.
        assert_eq!(
            nix::unistd::getsid(Some(Pid::from_raw(pid))),
            Ok(Pid::from_raw(pid))
        );

        let started = Instant::now();
        let out = lib.ok(
            shell,
            r#"bm_stop "$BM_UNIT/t.pid" "$BM_UNIT/conf/t.cfg" 10
bm_stop "$BM_UNIT/t.pid" "$BM_UNIT/conf/t.cfg" 10"#,
        );
        assert_eq!(
            out.stdout,
            format!("t[h1]: stopped (was pid {pid})\nt[h1]: already stopped\n"),
            "{shell}"
        );
        assert_eq!(out.stderr, "", "{shell}: no SIGKILL was needed");
        assert!(started.elapsed() < Duration::from_secs(5), "{shell}");
        lib.assert_stopped(pid, shell);
    }
}

#[test]
fn stop_kills_a_daemon_that_ignores_sigterm() {
    let lib = Lib::new();
    for shell in SHELLS {
        lib.ok(shell, r#"bm_spawn "$BM_UNIT/t.pid" "$BM_UNIT/t.log" sh -c 'trap "" TERM; while :; do sleep 0.1; done' t-stubborn "$BM_UNIT/stubborn"
bm_wait_started "$BM_UNIT/t.pid" "$BM_UNIT/stubborn" 10 true"#);
        let pid = lib.pid("t.pid");
        let started = Instant::now();
        let out = lib.run(shell, r#"bm_stop "$BM_UNIT/t.pid" "$BM_UNIT/stubborn" 1"#);
        let took = started.elapsed();
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert_eq!(
            out.stderr,
            format!("t[h1]: pid {pid} did not stop within 1 s; killing it\n"),
            "{shell}"
        );
        assert_eq!(out.stdout, format!("t[h1]: stopped (was pid {pid})\n"));
        assert!(took >= Duration::from_millis(900), "{shell}: {took:?}");
        assert!(took < Duration::from_secs(6), "{shell}: {took:?}");
        lib.assert_stopped(pid, shell);
    }
}

#[test]
fn wait_started_tells_an_exited_daemon_from_a_slow_one() {
    let lib = Lib::new();
    for shell in SHELLS {
        // The daemon exits at once: 1, without waiting out the time.
        let started = Instant::now();
        let out = lib.run(
            shell,
            r#"rm -f "$BM_UNIT/t.log"
bm_spawn "$BM_UNIT/t.pid" "$BM_UNIT/t.log" sh -c 'echo dying; exit 3' t-dies "$BM_UNIT/dies"
rc=0; bm_wait_started "$BM_UNIT/t.pid" "$BM_UNIT/dies" 20 true || rc=$?
echo "rc=$rc"; cat "$BM_UNIT/t.log""#,
        );
        assert_eq!(out.stdout, "rc=1\ndying\n", "{shell}: {out:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{shell}");

        // The daemon runs but is never ready: 2 after the time, and it still runs.
        let out = lib.run(
            shell,
            &format!(
                r#"mkdir -p "$BM_UNIT/conf"
bm_spawn "$BM_UNIT/t.pid" "$BM_UNIT/t.log" {DAEMON}
rc=0; bm_wait_started "$BM_UNIT/t.pid" "$BM_UNIT/conf/t.cfg" 1 false || rc=$?
echo "rc=$rc"
bm_stop "$BM_UNIT/t.pid" "$BM_UNIT/conf/t.cfg" 10 >/dev/null"#
            ),
        );
        assert_eq!(out.stdout, "rc=2\n", "{shell}: {out:?}");

        // bm_wait: the command runs in the script's shell (it may set variables).
        let out = lib.run(
            shell,
            r#"n=0
third() { n=$((n + 1)); [ "$n" -ge 3 ]; }
bm_wait 10 third && echo "ready after $n"
bm_wait 1 false || echo "timed out""#,
        );
        assert_eq!(out.stdout, "ready after 3\ntimed out\n", "{shell}: {out:?}");
    }
}

#[test]
fn wait_port_sees_a_listener_and_times_out_without_one() {
    let lib = Lib::new();
    for shell in SHELLS {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let out = lib.run(
            shell,
            &format!(
                "bm_port_open 127.0.0.1 {port} && bm_wait_port 127.0.0.1 {port} 5 && echo open"
            ),
        );
        assert_eq!(out.stdout, "open\n", "{shell}: {out:?}");
        drop(listener);

        // Nothing listens: 1 after about the time given. The port is another, bound but not
        // listening while it is probed, so connecting to it is refused: no other process can
        // start listening on it, and the kernel cannot give it to the probe as its own source
        // port (a TCP connection to itself), which CI once saw succeed on a just-freed port.
        let holder = tokio::net::TcpSocket::new_v4().expect("socket");
        holder
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind a closed port");
        let port = holder.local_addr().expect("its port").port();
        let started = Instant::now();
        let out = lib.run(
            shell,
            &format!(
                "bm_port_open 127.0.0.1 {port} || echo closed\nbm_wait_port 127.0.0.1 {port} 1 || echo timed-out"
            ),
        );
        let took = started.elapsed();
        assert_eq!(out.stdout, "closed\ntimed-out\n", "{shell}: {out:?}");
        assert!(took >= Duration::from_millis(900), "{shell}: {took:?}");
        assert!(took < Duration::from_secs(8), "{shell}: {took:?}");
        drop(holder);

        // A listener that comes late is found.
        // The library's path on its command line: the guard ends it if the test fails.
        let child = Command::new(shell)
            .arg("-c")
            .arg(format!(
                ". \"$1\"; bm_wait_port 127.0.0.1 {port} 20 && echo found"
            ))
            .arg(shell)
            .arg(&lib.lib)
            .stdout(Stdio::piped())
            .spawn()
            .expect("shell");
        std::thread::sleep(Duration::from_millis(700));
        let listener = TcpListener::bind(("127.0.0.1", port));
        let out = child.wait_with_output().expect("wait");
        if listener.is_ok() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "found\n", "{shell}");
        }
    }
}

/// A fake `dpkg-query` and `apt-get` in `bin`: packages are files in `state`; `apt-get`
/// appends its arguments to `state/apt.log` and takes 0.5 s to install (fails if FAIL is set).
fn fake_apt(bin: &Path, state: &Path) {
    std::fs::create_dir_all(bin).unwrap();
    std::fs::create_dir_all(state).unwrap();
    let write = |name: &str, body: &str| {
        write_executable(&bin.join(name), &format!("#!/bin/sh\n{body}\n"));
    };
    write(
        "dpkg-query",
        r#"for pkg; do :; done
if [ -e "$STATE/$pkg" ]; then printf 'install ok installed'; else echo "no packages found matching $pkg" >&2; exit 1; fi"#,
    );
    write(
        "apt-get",
        r#"echo "$*" >>"$STATE/apt.log"
[ "$1" = install ] || exit 0
shift
sleep 0.5
[ -z "${FAIL:-}" ] || exit 100
while [ $# -gt 0 ]; do
    case "$1" in -o) shift 2 ;; -*) shift ;; *) : >"$STATE/$1"; shift ;; esac
done"#,
    );
}

#[test]
fn packages_are_installed_once_under_the_lock() {
    let lib = Lib::new();
    let bin = lib.path().join("bin");
    let state = lib.path().join("state");
    fake_apt(&bin, &state);
    let lock = lib.path().join("pkg.lock");
    let path = format!("{}:/usr/bin:/bin:/usr/sbin:/sbin", bin.display());
    let env = |extra: &[(&'static str, String)]| -> Vec<(String, String)> {
        let mut v = vec![
            ("PATH".to_owned(), path.clone()),
            ("STATE".to_owned(), state.display().to_string()),
            ("BM_PKG_LOCK".to_owned(), lock.display().to_string()),
        ];
        v.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        v
    };
    let run = |shell: &str, body: &str, extra: &[(&'static str, String)]| {
        let vars = env(extra);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        lib.run_with(shell, body, &vars)
    };
    for shell in SHELLS {
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("base"), "").unwrap();
        let _ = std::fs::remove_file(&lock);

        // Installed already: nothing runs, no lock is taken.
        let out = run(
            shell,
            r#"bm_pkg_install base; echo "new=[$BM_PKG_NEW]""#,
            &[],
        );
        assert_eq!(out.stdout, "new=[]\n", "{shell}: {out:?}");
        assert!(!state.join("apt.log").exists() && !lock.exists(), "{shell}");

        // Two units install at once: apt-get installs each missing package once.
        let body = r#"bm_pkg_install base pkg-a pkg-b; echo "new=[$BM_PKG_NEW]""#;
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| run(shell, body, &[]));
            let b = s.spawn(|| run(shell, body, &[]));
            (a.join().unwrap(), b.join().unwrap())
        });
        for out in [&a, &b] {
            assert_eq!(out.code, 0, "{shell}: {out:?}");
            assert_eq!(
                out.stdout.lines().last(),
                Some("new=[pkg-a pkg-b]"),
                "{shell}"
            );
        }
        let log = std::fs::read_to_string(state.join("apt.log")).unwrap();
        let installs: Vec<&str> = log.lines().filter(|l| l.starts_with("install")).collect();
        assert_eq!(installs.len(), 1, "{shell}: {log}");
        assert!(installs[0].ends_with(" pkg-a pkg-b"), "{shell}: {log}");
        let said: Vec<&str> = [&a, &b]
            .iter()
            .flat_map(|o| o.stdout.lines())
            .filter(|l| l.contains("installing"))
            .collect();
        assert_eq!(said, ["t[h1]: installing pkg-a pkg-b"], "{shell}");
        assert!(lock.exists(), "{shell}");

        // A failing install: apt-get update, one more try, then the script fails saying so.
        let out = run(
            shell,
            "bm_pkg_install pkg-c; echo never",
            &[("FAIL", "1".into())],
        );
        assert_eq!(out.code, 1, "{shell}: {out:?}");
        assert!(!out.stdout.contains("never"), "{shell}: {out:?}");
        assert!(
            out.stderr.contains("installing pkg-c failed"),
            "{shell}: {out:?}"
        );
        let log = std::fs::read_to_string(state.join("apt.log")).unwrap();
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        assert!(
            tail[0].starts_with("install")
                && tail[1].starts_with("update")
                && tail[2].starts_with("install"),
            "{shell}: {log}"
        );

        // Names are checked before anything runs (they are split into words for apt-get).
        for bad in ["a b", "*", "-y", "x;y", ""] {
            let out = run(shell, &format!("bm_pkg_install '{bad}'; echo never"), &[]);
            assert_eq!(out.code, 1, "{shell} {bad:?}: {out:?}");
            assert!(
                out.stderr.contains("is not a package name"),
                "{shell}: {out:?}"
            );
        }
        let out = run(
            shell,
            "bm_pkg_installed pkg-a && echo yes; bm_pkg_installed pkg-z || echo no",
            &[],
        );
        assert_eq!(out.stdout, "yes\nno\n", "{shell}: {out:?}");
    }
}

#[test]
fn context_values_and_units() {
    let lib = Lib::new();
    let ctx = lib.path().join("context.json");
    std::fs::write(
        &ctx,
        serde_json::json!({
            "run": "1.1",
            "context": {
                "port": 2181, "flag": true, "name": "it's \"x\" $(y)", "none": null,
                "list": [1, 2], "secret": "pa ss",
                "peers": {"quorum": [
                    {"host": "h1", "address": "10.0.0.1", "index": 1, "self": true,
                     "component": "zk", "configs": {"clientPort": 2181, "empty": ""}},
                    {"host": "h2", "address": "10.0.0.2", "index": 2, "self": false,
                     "component": "other", "configs": {"clientPort": 2182}}
                ]}
            }
        })
        .to_string(),
    )
    .unwrap();
    let ctx = ctx.display().to_string();
    for shell in SHELLS {
        let out = lib.run_with(
            shell,
            r#"for k in port flag name none list secret missing; do printf '%s=[%s]\n' "$k" "$(bm_ctx_value "$k")"; done
bm_ctx_units peers.quorum host address configs.clientPort self index configs.empty configs.nope
bm_ctx_units peers.nope host
bm_ctx_present && echo present
bm_ctx_endpoints peers.quorum configs.clientPort; bm_ctx_endpoints peers.quorum configs.empty
bm_ctx_endpoints peers.quorum configs.clientPort zk; bm_ctx_endpoints peers.nope configs.clientPort"#,
            &[("BIGMGR_CONTEXT", &ctx)],
        );
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert_eq!(
            out.stdout,
            "port=[2181]\nflag=[true]\nname=[it's \"x\" $(y)]\nnone=[]\nlist=[[1,2]]\n\
             secret=[pa ss]\nmissing=[]\n\
             h1\t10.0.0.1\t2181\ttrue\t1\t-\t-\nh2\t10.0.0.2\t2182\tfalse\t2\t-\t-\npresent\n\
             10.0.0.1:2181\n10.0.0.2:2182\n10.0.0.1:-\n10.0.0.2:-\n10.0.0.1:2181\n",
            "{shell}"
        );
        // No context file: values are empty, units are an error that says why.
        let out = lib.run_with(
            shell,
            r#"echo "[$(bm_ctx_value port)]"
bm_ctx_present || echo absent
bm_ctx_units peers.quorum host || echo "units: $?"
bm_ctx_endpoints peers.quorum configs.clientPort || echo "endpoints: $?""#,
            &[("BIGMGR_CONTEXT", "/nonexistent/context.json")],
        );
        assert_eq!(
            out.stdout, "[]\nabsent\nunits: 1\nendpoints: 1\n",
            "{shell}: {out:?}"
        );
        assert!(out.stderr.contains("BIGMGR_CONTEXT"), "{shell}: {out:?}");
    }
}

#[test]
fn files_are_written_atomically_and_removed_only_inside_the_unit() {
    let lib = Lib::new();
    let outside = lib.path().join("outside");
    std::fs::write(&outside, "keep").unwrap();
    for shell in SHELLS {
        let out = lib.ok(
            shell,
            r#"mkdir -p "$BM_UNIT/conf" "$BM_UNIT/data/x"
printf 'a=1\n' | bm_write "$BM_UNIT/conf/a.conf" 600
printf 'b\n' | bm_write "$BM_UNIT/conf/b"
touch "$BM_UNIT/.hidden" "$BM_UNIT/..dots"
ls -A "$BM_UNIT/conf"
bm_unit_rm "$BM_UNIT/data" "$BM_UNIT/nothing-here"
ls -A "$BM_UNIT""#,
        );
        assert_eq!(out.stdout, "a.conf\nb\n..dots\n.hidden\nconf\n", "{shell}");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(lib.unit.join("conf/a.conf"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{shell}");
        }
        for bad in [
            outside.display().to_string(),
            format!("{}/../outside", lib.unit.display()),
            lib.unit.display().to_string(),
            "/".to_owned(),
            String::new(),
        ] {
            let out = lib.run(shell, &format!("bm_unit_rm '{bad}'; echo never"));
            assert_eq!(out.code, 1, "{shell} {bad}: {out:?}");
            assert!(
                out.stderr.contains("refusing to remove"),
                "{shell}: {out:?}"
            );
        }
        assert!(
            outside.exists() && lib.unit.join("conf/b").exists(),
            "{shell}"
        );
        // Without a path: the unit directory is emptied (hidden files too) and stays.
        let out = lib.run(shell, r#"bm_unit_clear; ls -A "$BM_UNIT"; echo end"#);
        assert_eq!(out.stdout, "end\n", "{shell}: {out:?}");
        assert!(lib.unit.is_dir() && outside.exists(), "{shell}");
    }
}

#[test]
fn main_runs_the_command_function_and_refuses_others() {
    let lib = Lib::new();
    for shell in SHELLS {
        let defs = r#"do_start() { echo start; }
do_stop() { echo stop; }
do_status() { echo status; exit 3; }"#;
        for (cmd, code, stdout) in [
            ("start", 0, "start\n"),
            ("restart", 0, "stop\nstart\n"),
            ("status", 3, "status\n"),
        ] {
            let out = lib.run(shell, &format!("{defs}\nbm_main {cmd}"));
            assert_eq!(
                (out.code, out.stdout.as_str()),
                (code, stdout),
                "{shell} {cmd}: {out:?}"
            );
        }
        for cmd in ["", "nope", "do_start", "start;id", "START", "check"] {
            let body = format!("{defs}\nBM_COMMANDS='start stop restart status'\nbm_main '{cmd}'");
            let out = lib.run(shell, &body);
            assert_eq!(out.code, 2, "{shell} {cmd:?}: {out:?}");
            assert_eq!(out.stdout, "", "{shell} {cmd:?}");
            assert!(
                out.stderr.starts_with("usage: ")
                    && out.stderr.contains("start|stop|restart|status")
                    && out.stderr.contains(&format!("(got '{cmd}')")),
                "{shell} {cmd:?}: {out:?}"
            );
        }
    }
}

#[test]
fn the_library_sources_cleanly_and_runs_nothing() {
    let lib = Lib::new();
    for shell in SHELLS {
        let out = lib.run(shell, r#"echo "$BM_LIB_VERSION""#);
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (0, "2\n", ""),
            "{shell}"
        );
        let check = Command::new(shell)
            .arg("-n")
            .arg(&lib.lib)
            .output()
            .expect("shell");
        assert!(check.status.success(), "{shell} -n: {check:?}");
    }
    assert!(STACKLIB.starts_with("# bigmgr stack library"));
}

/// Runs `script` with `{cmd}` replaced by each command of `steps` and checks its exit code,
/// stdout and stderr; in an expected text, `{unit}` stands for the unit directory and `{pid}`
/// for the pid in `pidfile` (as it was after the command, or before it for a stop).
fn steps(lib: &Lib, shell: &str, script: &str, pidfile: &str, steps: &[(&str, i32, &str, &str)]) {
    let mut pid = String::new();
    for (cmd, code, stdout, stderr) in steps {
        let out = lib.run(shell, &script.replace("{cmd}", cmd));
        if let Ok(now) = std::fs::read_to_string(lib.unit.join(pidfile)) {
            pid = now.trim().to_owned();
        }
        let want = |s: &str| {
            s.replace("{pid}", &pid)
                .replace("{unit}", &lib.unit.to_string_lossy())
        };
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (*code, want(stdout).as_str(), want(stderr).as_str()),
            "{shell} {cmd}"
        );
    }
}

/// A script whose daemon is declared with `bm_daemon`: start is the script's, stop, status and
/// restart the library's.
const DECLARED: &str = r#"bm_daemon "$BM_UNIT/d.pid" "$BM_UNIT/d.log" "$BM_UNIT/conf/t.cfg" 5
do_start() {
    bm_already_running && return 0
    mkdir -p "$BM_UNIT/conf"
    bm_daemon_spawn sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done' t-daemon "$BM_UNIT/conf/t.cfg"
    bm_daemon_ready 10 "the daemon" "was not ready" true
    bm_log "started (pid $(bm_daemon_pid))"
}"#;

#[test]
fn a_declared_daemon_gets_stop_status_and_restart_from_the_library() {
    let lib = Lib::new();
    for shell in SHELLS {
        steps(
            &lib,
            shell,
            &format!("{DECLARED}\nbm_main {{cmd}}"),
            "d.pid",
            &[
                ("status", 3, "t[h1]: is not running\n", ""),
                ("start", 0, "t[h1]: started (pid {pid})\n", ""),
                ("start", 0, "t[h1]: already running (pid {pid})\n", ""),
                ("status", 0, "t[h1]: is running (pid {pid})\n", ""),
                ("stop", 0, "t[h1]: stopped (was pid {pid})\n", ""),
                ("stop", 0, "t[h1]: already stopped\n", ""),
                ("start", 0, "t[h1]: started (pid {pid})\n", ""),
            ],
        );
        let before = lib.pid("d.pid");
        let out = lib.run(shell, &format!("{DECLARED}\nbm_main restart"));
        let after = lib.pid("d.pid");
        assert_eq!(
            out.stdout,
            format!("t[h1]: stopped (was pid {before})\nt[h1]: started (pid {after})\n"),
            "{shell}: {out:?}"
        );
        assert!(!alive(before) && alive(after), "{shell}");
        // The script's own status words; the script's do_stop comes before the library's.
        let out = lib.run(
            shell,
            &format!(
                "{DECLARED}\ndo_stop() {{ echo mine; }}\nbm_daemon_status running 'not running'"
            ),
        );
        assert_eq!(
            (out.code, out.stdout),
            (0, format!("t[h1]: running (pid {after})\n"))
        );
        let out = lib.run(
            shell,
            &format!("{DECLARED}\ndo_stop() {{ echo mine; }}\nbm_main stop"),
        );
        assert_eq!(out.stdout, "mine\n", "{shell}");
        let out = lib.run(
            shell,
            &format!("{DECLARED}\nbm_daemon_stop; bm_daemon_running || echo gone"),
        );
        assert_eq!(
            out.stdout,
            format!("t[h1]: stopped (was pid {after})\ngone\n")
        );
        assert!(!alive(after), "{shell}");
    }
}

#[test]
fn a_daemon_that_exits_or_is_not_ready_fails_the_start_with_its_log() {
    let lib = Lib::new();
    let log = lib.unit.join("d.log");
    for shell in SHELLS {
        let _ = std::fs::remove_file(&log);
        // It exits at once: its log follows the message, or what BM_DAEMON_TAIL prints.
        let dies = r#"bm_daemon "$BM_UNIT/d.pid" "$BM_UNIT/d.log" "$BM_UNIT/dies"
bm_daemon_spawn sh -c 'echo dying; exit 3' t-dies "$BM_UNIT/dies"
bm_daemon_ready 20 "the daemon" "was not ready" true; echo never"#;
        let out = lib.run(shell, dies);
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr),
            (
                1,
                "",
                format!(
                    "t: the daemon exited during startup; last lines of {}:\ndying\n",
                    log.display()
                )
            ),
            "{shell}"
        );
        let out = lib.run(
            shell,
            &format!("tail_it() {{ echo TAIL >&2; }}\nBM_DAEMON_TAIL=tail_it\n{dies}"),
        );
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (1, "t: the daemon exited during startup\nTAIL\n"),
            "{shell}"
        );
        // It runs but is never ready: the message, its log, and it is stopped.
        let never_ready = DECLARED
            .replace(
                "10 \"the daemon\" \"was not ready\" true",
                "1 \"the daemon\" \"was not ready\" false",
            )
            .replace(
                "mkdir -p",
                "echo 'a line' >\"$BM_UNIT/d.log\"\n    mkdir -p",
            );
        let out = lib.run(shell, &format!("{never_ready}\nbm_main start"));
        assert_eq!(out.code, 1, "{shell}: {out:?}");
        let (message, stopped) = out.stderr.split_once("a line\n").expect("the log");
        assert_eq!(
            message,
            format!(
                "t: the daemon was not ready within 1 s; last lines of {}:\n",
                log.display()
            ),
            "{shell}"
        );
        assert!(
            stopped.starts_with("t[h1]: stopped (was pid "),
            "{shell}: {out:?}"
        );
        assert!(!lib.unit.join("d.pid").exists(), "{shell}: still running");
    }
}

#[test]
fn small_helpers_for_scripts() {
    let lib = Lib::new();
    std::fs::write(
        lib.unit.join("c.conf"),
        "k=1\nkk=2\nk=3\nabc=no\na.c=dot\nempty=\n",
    )
    .unwrap();
    std::fs::write(lib.unit.join("l.log"), "one\ntwo\n").unwrap();
    for shell in SHELLS {
        let out = lib.run(
            shell,
            r#"f="$BM_UNIT/c.conf"
for k in k kk a.c empty none; do printf '%s=[%s] ' "$k" "$(bm_conf_get "$f" "$k")"; done
printf 'nofile=[%s]\n' "$(bm_conf_get "$BM_UNIT/nothing" k)"
bm_first_exe "" /nonexistent "$f" /bin/sh /bin/ls
bm_first_exe /nonexistent "$f" || echo none
bm_die_log "$BM_UNIT/l.log" a failed step; echo never"#,
        );
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr),
            (
                1,
                "k=[3] kk=[2] a.c=[dot] empty=[] none=[] nofile=[]\n/bin/sh\nnone\n",
                format!(
                    "a failed step; last lines of {}/l.log:\none\ntwo\n",
                    lib.unit.display()
                )
            ),
            "{shell}"
        );
        // The marker of a unit that installs nothing.
        let _ = std::fs::remove_file(lib.unit.join("installed"));
        let out = lib.run(
            shell,
            "(bm_need_installed) || echo no\nbm_mark_installed 1.2\nbm_mark_installed 1.2\nbm_need_installed && echo yes",
        );
        assert_eq!(
            (out.stdout, out.stderr),
            (
                format!(
                    "no\nt[h1]: installed in {}\nt[h1]: already installed\nyes\n",
                    lib.unit.display()
                ),
                "t[h1]: is not installed; run install first\n".to_owned()
            ),
            "{shell}"
        );
        assert_eq!(
            std::fs::read_to_string(lib.unit.join("installed")).unwrap(),
            "t 1.2 installed on h1\n"
        );
        // A port someone listens on.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let out = lib.run(shell, &format!("BM_PORT_WAIT=1\nbm_need_free_port 127.0.0.2 {port} && echo free\nbm_need_free_port 127.0.0.1 {port}"));
        assert_eq!(out.code, 1, "{shell}: {out:?}");
        assert_eq!(out.stdout, "free\n", "{shell}");
        assert!(
            out.stderr.starts_with(&format!(
                "t[h1]: cannot start: 127.0.0.1:{port} is already in use by another process: 127.0.0.1:{port} "
            )),
            "{shell}: {out:?}"
        );
        // A port freed within the wait (a daemon just stopped) is free.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(700));
            drop(listener);
        });
        let out = lib.run(
            shell,
            &format!("BM_PORT_WAIT=10\nbm_need_free_port 127.0.0.1 {port} && echo free"),
        );
        releaser.join().expect("released");
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (0, "free\n"),
            "{shell}: {out:?}"
        );
    }
}

#[test]
fn the_heartbeat_daemon_runs_a_whole_unit() {
    let lib = Lib::new();
    for shell in SHELLS {
        let main = r#"bm_heartbeat_main 9.9 "$BM_UNIT/conf/hb.conf" dflt"#;
        let unit = lib.unit.display().to_string();
        steps(
            &lib,
            shell,
            &format!("{main} {{cmd}}"),
            "t.pid",
            &[
                (
                    "configure",
                    1,
                    "",
                    "t[h1]: is not installed; run install first\n",
                ),
                ("install", 0, "t[h1]: installed in {unit}\n", ""),
                (
                    "configure",
                    0,
                    "t[h1]: configured: greeting=dflt interval=5 host=h1 address=127.0.0.1 \n",
                    "",
                ),
                ("check", 1, "", "check failed: t is not running\n"),
                ("start", 0, "t[h1]: started (pid {pid})\n", ""),
                ("status", 0, "t[h1]: is running (pid {pid})\n", ""),
            ],
        );
        let pid = lib.pid("t.pid");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            String::from_utf8_lossy(&cmdline)
                .contains(&format!("t-daemon\0{unit}/t.run\0{unit}/heartbeat")),
            "{shell}"
        );
        let out = lib.run(shell, &format!("{main} check"));
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert!(
            out.stdout
                .starts_with(&format!("check passed: t pid {pid} says: "))
                && out.stdout.ends_with(" dflt\n"),
            "{shell}: {out:?}"
        );
        // The rendered config's values, after a restart; a script's own do_check comes first.
        std::fs::create_dir_all(lib.unit.join("conf")).unwrap();
        std::fs::write(lib.unit.join("conf/hb.conf"), "greeting=yo\ninterval=1\n").unwrap();
        let out = lib.run(shell, &format!("{main} configure && {main} restart"));
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert!(
            out.stdout.contains("greeting=yo interval=1 "),
            "{shell}: {out:?}"
        );
        let out = lib.run(shell, &format!("do_check() {{ echo mine; }}\n{main} check"));
        assert_eq!(out.stdout, "mine\n", "{shell}");
        let out = lib.run(
            shell,
            &format!("{main} remove; ls -A \"$BM_UNIT\"; {main} status"),
        );
        assert_eq!(out.code, 3, "{shell}: {out:?}");
        assert!(
            out.stdout.starts_with("t[h1]: stopped (was pid ")
                && out.stdout.ends_with(&format!(
                    "t[h1]: removed from {unit}\nt[h1]: is not running\n"
                )),
            "{shell}: {out:?}"
        );
    }
}

/// Software a unit installs from a tarball source: fetched once per host into the download
/// cache and verified by its SHA-256 (a wrong sum fails naming the URL and both sums, and
/// leaves nothing in the cache), then unpacked whole or not at all.
#[test]
fn fetch_verifies_the_sha256_and_unpack_is_all_or_nothing() {
    use sha2::{Digest, Sha256};
    let lib = Lib::new();
    let src = lib.path().join("src");
    std::fs::create_dir_all(src.join("pkg/bin")).unwrap();
    std::fs::write(src.join("pkg/bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    let tarball = lib.path().join("pkg-1.0.tar.gz");
    let made = Command::new("tar")
        .args(["-czf"])
        .arg(&tarball)
        .args(["-C"])
        .arg(&src)
        .arg("pkg")
        .status()
        .expect("tar");
    assert!(made.success());
    let sum = hex::encode(Sha256::digest(std::fs::read(&tarball).unwrap()));
    let url = format!("file://{}", tarball.display());
    let cache = lib.path().join("cache");
    let cache_s = cache.display().to_string();
    let env = [("BIGMGR_CACHE_DIR", cache_s.as_str())];
    let listing = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    for shell in SHELLS {
        // A wrong sum: exit 1 naming the URL and both sums; nothing kept.
        let wrong = "0".repeat(64);
        let out = lib.run_with(
            shell,
            &format!("f=$(bm_fetch '{url}' {wrong} pkg-1.0.tar.gz)\necho \"got $f\""),
            &env,
        );
        assert_eq!(out.code, 1, "{shell}: {out:?}");
        assert!(out.stdout.is_empty(), "{shell}: {out:?}");
        for part in [
            url.as_str(),
            sum.as_str(),
            wrong.as_str(),
            "nothing was installed",
        ] {
            assert!(out.stderr.contains(part), "{shell}: no {part} in {out:?}");
        }
        assert!(listing(&cache).is_empty(), "{shell}: {:?}", listing(&cache));
        // Not a sum, not a plain name, not a URL: refused before fetching.
        for bad in [
            format!("bm_fetch '{url}' abc x.tgz"),
            format!("bm_fetch '{url}' {sum} ../x.tgz"),
            format!("bm_fetch '/etc/passwd' {sum} x.tgz"),
        ] {
            let out = lib.run_with(shell, &bad, &env);
            assert_eq!(out.code, 1, "{shell}: {bad}: {out:?}");
        }
        // The right sum: cached and its path printed; once cached, the source is not needed.
        let fetch = format!("bm_fetch '{url}' {sum} pkg-1.0.tar.gz");
        let out = lib.run_with(shell, &fetch, &env);
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert_eq!(
            out.stdout.trim(),
            cache.join("pkg-1.0.tar.gz").display().to_string()
        );
        assert_eq!(listing(&cache), ["pkg-1.0.tar.gz"], "{shell}");
        let moved = lib.path().join("moved.tar.gz");
        std::fs::rename(&tarball, &moved).unwrap();
        let out = lib.run_with(shell, &fetch, &env);
        assert_eq!(out.code, 0, "{shell}: the cached copy serves: {out:?}");
        std::fs::rename(&moved, &tarball).unwrap();
        // Unpacked whole into DEST; a DEST already there is left alone.
        let dest = lib.path().join(format!("sw-{shell}/pkg-1.0"));
        let unpack = format!(
            "bm_unpack \"$(bm_fetch '{url}' {sum} pkg-1.0.tar.gz)\" '{}'",
            dest.display()
        );
        let out = lib.run_with(shell, &unpack, &env);
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert!(dest.join("pkg/bin/hello").is_file(), "{shell}");
        let out = lib.run_with(shell, &unpack, &env);
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        // A broken archive: exit 1, no DEST, no temporary directory beside it.
        let broken = lib.path().join("broken.tar.gz");
        std::fs::write(&broken, b"not a tarball").unwrap();
        let dest = lib.path().join(format!("bad-{shell}/pkg"));
        let out = lib.run_with(
            shell,
            &format!("bm_unpack '{}' '{}'", broken.display(), dest.display()),
            &env,
        );
        assert_eq!(out.code, 1, "{shell}: {out:?}");
        assert!(
            out.stderr.contains("nothing was installed"),
            "{shell}: {out:?}"
        );
        assert!(listing(dest.parent().unwrap()).is_empty(), "{shell}");
        std::fs::remove_dir_all(&cache).unwrap();
    }
}
