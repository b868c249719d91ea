//! Integration tests of the `bigmgr-agent` binary: its settings, exit codes and signals. The
//! tests of agents joining a server live with the server's tests (they need both binaries).

use bigmgr_test_support::{Proc, assert_contains, free_addr, temp_file};
use nix::sys::signal::Signal;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Starts `bigmgr-agent` with `args` and `env` (and no other `BIGMGR_*` variable); the
/// harness reads its output as it comes and kills it on drop.
fn start(args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bigmgr-agent"));
    cmd.args(args);
    let env: Vec<(String, String)> = [("BIGMGR_LOG", "info")]
        .iter()
        .chain(env)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Proc::spawn(format!("bigmgr-agent {}", args.join(" ")), cmd, &env)
}

/// Waits for a stderr line containing `needle`, and answers all of stderr so far.
fn wait_stderr(agent: &Proc, needle: &str, timeout: Duration) -> String {
    agent.expect_stderr(timeout, needle);
    agent.stderr.text()
}

/// An address nothing listens on.
fn unused_url() -> String {
    format!("http://{}", free_addr())
}

/// Runs the agent with `args` and `env` until it exits by itself, which must be with code 2
/// (a refused setting); answers its stderr.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut agent = start(args, env);
    let status = agent.wait_exit(Duration::from_secs(20));
    let stderr = agent.stderr.text();
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    stderr
}

/// The arguments of an agent on 127.0.0.2 with `root`, of a server that is not there.
fn offline(url: &str, root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    ["--server", url, "--address", "127.0.0.2", "--root", &root]
        .map(String::from)
        .to_vec()
}

/// Sends `signal` and asserts that the agent exits with code 0.
fn stop(agent: &mut Proc, signal: Signal) {
    agent.signal(signal);
    let status = agent.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{signal}:\n{}", agent.stderr.text());
}

/// `bigmgr-agent ARG`'s stdout.
fn stdout_of(arg: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bigmgr-agent"))
        .arg(arg)
        .env("BIGMGR_JOIN_TOKEN", "bmj_secret_in_env")
        .output()
        .unwrap();
    assert!(out.status.success(), "{arg}: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn missing_settings_exit_2_naming_the_flag_and_variable() {
    let stderr = refused(&["--address", "127.0.0.2"], &[]);
    assert_contains(&stderr, "bigmgr-agent: the server's URL is not set");
    assert!(
        stderr.contains("--server") && stderr.contains("BIGMGR_SERVER"),
        "{stderr}"
    );

    let stderr = refused(&[], &[("BIGMGR_SERVER", "http://127.0.0.1:1")]);
    assert!(
        stderr.contains("--address") && stderr.contains("BIGMGR_ADDRESS"),
        "{stderr}"
    );

    let stderr = refused(&["--server", "bigmgr:7070", "--address", "127.0.0.2"], &[]);
    assert_contains(&stderr, "http://");

    let stderr = refused(&["--grace", "5"], &[]);
    assert_contains(&stderr, "is not a duration; write a number and a unit");
}

#[test]
fn an_unknown_config_key_exits_2_naming_it() {
    let (_dir, file) = temp_file("agent.toml", "sever = \"http://127.0.0.1:1\"\n");
    let stderr = refused(&["--config", file.to_str().unwrap()], &[]);
    assert!(
        stderr.contains("unknown field `sever`") && stderr.contains("agent.toml"),
        "{stderr}"
    );
}

#[test]
fn the_file_fills_in_the_environment_and_flags_override_it() {
    let text = format!(
        "server = \"{}\"\nname = \"from-file\"\naddress = \"10.0.0.1\"\nroot = \"root\"\ngrace = \"1s\"\n",
        unused_url()
    );
    let (dir, file) = temp_file("agent.toml", &text);
    let mut agent = start(
        &["--config", file.to_str().unwrap(), "--name", "from-flag"],
        &[("BIGMGR_ADDRESS", "127.0.0.9"), ("BIGMGR_NAME", "from-env")],
    );
    let stderr = wait_stderr(&agent, "starting bigmgr-agent", Duration::from_secs(10));
    let root = dir.path().join("root");
    for want in [
        "name=from-flag",
        "address=127.0.0.9",
        &format!("root={}", root.display()),
    ] {
        assert!(stderr.contains(want), "no {want} in:\n{stderr}");
    }
    stop(&mut agent, Signal::SIGTERM);
}

/// An agent whose server is not there keeps trying until it is told to stop; it stops cleanly
/// on SIGTERM and SIGINT, and idles small (docs/design.md §10: under 10 MB resident; a debug build
/// gets some slack).
#[test]
fn it_idles_small_and_stops_on_signals() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let args = offline(&unused_url(), &root);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut agent = start(&args, &[("BIGMGR_JOIN_TOKEN", "bmj_x")]);
        let stderr = wait_stderr(&agent, "starting bigmgr-agent", Duration::from_secs(10));
        assert!(
            !stderr.contains("bmj_x"),
            "the join token is not logged:\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(500));
        let rss = agent.status_kib("VmRSS:");
        assert!(rss > 0, "no VmRSS in /proc/{}/status", agent.pid());
        let limit = if cfg!(debug_assertions) {
            20 * 1024
        } else {
            10 * 1024
        };
        assert!(rss < limit, "idle RSS {rss} KiB is over {limit} KiB");
        stop(&mut agent, signal);
        assert_contains(agent.stderr.text(), "stopping");
    }
}

#[test]
fn version_and_help() {
    assert_contains(stdout_of("--version"), env!("CARGO_PKG_VERSION"));
    let help = stdout_of("--help");
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
        let stderr = refused(&["--server", &unused_url(), "--address", bad], &[]);
        assert!(
            stderr.contains("--address") && stderr.contains("is not an address"),
            "{bad}: {stderr}"
        );
    }
}

/// Waits until `agent` holds the lock of `root`: its pid is written there.
fn wait_lock_holder(root: &Path, agent: &Proc, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let lock = root.join("agent.lock");
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != agent.pid().to_string() {
        assert!(Instant::now() < deadline, "{who} never took its root");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A second agent on a root another agent holds says so in its log, with the holder's pid, and
/// waits; once the first stops, it takes the root over. `--help` says so too.
#[test]
fn a_second_agent_on_a_held_root_says_what_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let args = offline(&unused_url(), &root);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut first = start(&args, &[]);
    wait_stderr(&first, "starting bigmgr-agent", Duration::from_secs(10));
    wait_lock_holder(&root, &first, "the first agent");
    let mut second = start(&args, &[]);
    let log = wait_stderr(
        &second,
        "another agent holds this root",
        Duration::from_secs(10),
    );
    assert!(
        log.contains(&format!("holder_pid={}", first.pid())),
        "the log names the holder's pid:\n{log}"
    );
    assert!(second.try_exit().is_none(), "the second agent waits");
    stop(&mut first, Signal::SIGTERM);
    wait_stderr(
        &second,
        "this one holds the root now",
        Duration::from_secs(10),
    );
    // It logs that before it writes its pid into the lock.
    wait_lock_holder(&root, &second, "the second agent");
    stop(&mut second, Signal::SIGTERM);
    assert_contains(stdout_of("--help"), "One agent per root");
}
