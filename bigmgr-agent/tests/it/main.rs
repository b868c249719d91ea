//! Integration tests of the `bigmgr-agent` binary: its settings, exit codes and signals. The
//! tests of agents joining a server live with the server's tests (they need both binaries).

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `bigmgr-agent` process, killed and reaped on drop.
struct Agent {
    child: Child,
    stderr_file: tempfile::NamedTempFile,
}

impl Agent {
    /// Starts the agent with `args` and `env` (and no other `BIGMGR_*` variable); stderr goes
    /// to a file the test can read while it runs.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Agent {
        let stderr_file = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bigmgr-agent"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BIGMGR_") {
                cmd.env_remove(&k);
            }
        }
        cmd.args(args)
            .envs(env.iter().copied())
            .env("BIGMGR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr_file.reopen().unwrap());
        Agent {
            child: cmd.spawn().expect("start bigmgr-agent"),
            stderr_file,
        }
    }

    fn stderr(&self) -> String {
        let mut s = String::new();
        self.stderr_file
            .reopen()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stderr();
            if s.contains(needle) {
                return s;
            }
            assert!(Instant::now() < deadline, "no '{needle}' in stderr:\n{s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "bigmgr-agent did not exit within {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// Resident memory in KiB, from /proc.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An address nothing listens on.
fn unused_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut agent = Agent::start(args, env);
    let status = agent.wait_exit(Duration::from_secs(20));
    (status.code(), agent.stderr())
}

#[test]
fn missing_settings_exit_2_naming_the_flag_and_variable() {
    let (code, stderr) = run_to_exit(&["--address", "127.0.0.2"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("bigmgr-agent: the server's URL is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--server") && stderr.contains("BIGMGR_SERVER"),
        "{stderr}"
    );

    let (code, stderr) = run_to_exit(&[], &[("BIGMGR_SERVER", "http://127.0.0.1:1")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--address") && stderr.contains("BIGMGR_ADDRESS"),
        "{stderr}"
    );

    let (code, stderr) = run_to_exit(&["--server", "bigmgr:7070", "--address", "127.0.0.2"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("http://"), "{stderr}");

    let (code, stderr) = run_to_exit(&["--grace", "5"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is not a duration; write a number and a unit"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_config_key_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, "sever = \"http://127.0.0.1:1\"\n").unwrap();
    let (code, stderr) = run_to_exit(&["--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown field `sever`") && stderr.contains("agent.toml"),
        "{stderr}"
    );
}

#[test]
fn the_file_fills_in_the_environment_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        format!(
            "server = \"{}\"\nname = \"from-file\"\naddress = \"10.0.0.1\"\nroot = \"root\"\ngrace = \"1s\"\n",
            unused_url()
        ),
    )
    .unwrap();
    let mut agent = Agent::start(
        &["--config", file.to_str().unwrap(), "--name", "from-flag"],
        &[("BIGMGR_ADDRESS", "127.0.0.9"), ("BIGMGR_NAME", "from-env")],
    );
    let stderr = agent.wait_stderr("starting bigmgr-agent", Duration::from_secs(10));
    let root = dir.path().join("root");
    for want in [
        "name=from-flag",
        "address=127.0.0.9",
        &format!("root={}", root.display()),
    ] {
        assert!(stderr.contains(want), "no {want} in:\n{stderr}");
    }
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(15)).code(), Some(0));
}

/// An agent whose server is not there keeps trying until it is told to stop; it stops cleanly
/// on SIGTERM and SIGINT, and idles small (docs/design.md §10: under 10 MB resident; a debug build
/// gets some slack).
#[test]
fn it_idles_small_and_stops_on_signals() {
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let url = unused_url();
        let mut agent = Agent::start(
            &[
                "--server",
                &url,
                "--address",
                "127.0.0.2",
                "--root",
                root.to_str().unwrap(),
            ],
            &[("BIGMGR_JOIN_TOKEN", "bmj_x")],
        );
        let stderr = agent.wait_stderr("starting bigmgr-agent", Duration::from_secs(10));
        assert!(
            !stderr.contains("bmj_x"),
            "the join token is not logged:\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(500));
        let rss = agent.rss_kib();
        let limit = if cfg!(debug_assertions) {
            20 * 1024
        } else {
            10 * 1024
        };
        assert!(rss < limit, "idle RSS {rss} KiB is over {limit} KiB");
        agent.signal(signal);
        let status = agent.wait_exit(Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "{signal}:\n{}", agent.stderr());
        assert!(agent.stderr().contains("stopping"));
    }
}

#[test]
fn version_and_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_bigmgr-agent"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_bigmgr-agent"))
        .arg("--help")
        .env("BIGMGR_JOIN_TOKEN", "bmj_secret_in_env")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--server",
        "--join-token",
        "--name",
        "--address",
        "--root",
        "--grace",
        "--config",
    ] {
        assert!(help.contains(flag), "no {flag} in:\n{help}");
    }
    assert!(
        !help.contains("bmj_secret_in_env"),
        "help shows the token:\n{help}"
    );
    assert!(Path::new(env!("CARGO_BIN_EXE_bigmgr-agent")).exists());
}

/// An address that is not an IP address or a DNS name is refused before the agent dials,
/// naming the setting — it would reach other hosts' config files.
#[test]
fn a_hostile_address_exits_2_naming_the_setting() {
    for bad in [
        "$(touch /tmp/bigmgr-pwned)",
        "x';id;'",
        "../../etc/passwd",
        "h1 h2",
    ] {
        let (code, stderr) = run_to_exit(&["--server", &unused_url(), "--address", bad], &[]);
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("--address") && stderr.contains("is not an address"),
            "{bad}: {stderr}"
        );
    }
}

/// A second agent on a root another agent holds says so in its log, with the holder's pid, and
/// waits; once the first stops, it takes the root over. `--help` says so too.
#[test]
fn a_second_agent_on_a_held_root_says_what_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let url = unused_url();
    let args = [
        "--server",
        &url,
        "--address",
        "127.0.0.2",
        "--root",
        root.to_str().unwrap(),
    ];
    let mut first = Agent::start(&args, &[]);
    first.wait_stderr("starting bigmgr-agent", Duration::from_secs(10));
    // The first agent holds the lock once it wrote its pid there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(root.join("agent.lock"))
        .unwrap_or_default()
        .trim()
        != first.child.id().to_string()
    {
        assert!(
            Instant::now() < deadline,
            "the first agent never took its root"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut second = Agent::start(&args, &[]);
    let log = second.wait_stderr("another agent holds this root", Duration::from_secs(10));
    assert!(
        log.contains(&format!("holder_pid={}", first.child.id())),
        "the log names the holder's pid:\n{log}"
    );
    assert!(
        second.child.try_wait().unwrap().is_none(),
        "the second agent waits"
    );
    first.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(first.wait_exit(Duration::from_secs(15)).code(), Some(0));
    second.wait_stderr("this one holds the root now", Duration::from_secs(10));
    assert_eq!(
        std::fs::read_to_string(root.join("agent.lock"))
            .unwrap()
            .trim(),
        second.child.id().to_string()
    );
    second.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(second.wait_exit(Duration::from_secs(15)).code(), Some(0));

    let out = Command::new(env!("CARGO_BIN_EXE_bigmgr-agent"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("One agent per root"), "{help}");
}
