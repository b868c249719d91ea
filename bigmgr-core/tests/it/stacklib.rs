//! The stack library (`bigmgr_core::agent::STACKLIB`) as scripts use it: sourced by a real
//! `sh` (dash) and a real `bash` under `set -eu`, against temporary unit directories. Pid files
//! with a recycled pid, starting and stopping daemons (SIGTERM, then SIGKILL), waiting for a
//! port, installing packages under the lock (with a fake `dpkg-query` and `apt-get`), the
//! context file, files and the command dispatcher.
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

        // Nothing listens: 1 after about the time given.
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
                     "configs": {"clientPort": 2181, "empty": ""}},
                    {"host": "h2", "address": "10.0.0.2", "index": 2, "self": false,
                     "configs": {"clientPort": 2182}}
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
bm_ctx_present && echo present"#,
            &[("BIGMGR_CONTEXT", &ctx)],
        );
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert_eq!(
            out.stdout,
            "port=[2181]\nflag=[true]\nname=[it's \"x\" $(y)]\nnone=[]\nlist=[[1,2]]\n\
             secret=[pa ss]\nmissing=[]\n\
             h1\t10.0.0.1\t2181\ttrue\t1\t-\t-\nh2\t10.0.0.2\t2182\tfalse\t2\t-\t-\npresent\n",
            "{shell}"
        );
        // No context file: values are empty, units are an error that says why.
        let out = lib.run_with(
            shell,
            r#"echo "[$(bm_ctx_value port)]"
bm_ctx_present || echo absent
bm_ctx_units peers.quorum host || echo "units: $?""#,
            &[("BIGMGR_CONTEXT", "/nonexistent/context.json")],
        );
        assert_eq!(out.stdout, "[]\nabsent\nunits: 1\n", "{shell}: {out:?}");
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
            (0, "1\n", ""),
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
