//! Real `bigmgr serve` and `bigmgr-agent` processes for the tests, killed (by pid) when
//! dropped, also when a test fails; an agent's drop also kills the daemons its scripts left
//! (the pid files under `<root>/units`).

#![allow(dead_code)]

use bigmgr_core::view::JobDetailView;
use bigmgr_py::backend::Backend;
use bigmgr_py::rest::Rest;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a server may take to print its listening line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The target directory holding `bigmgr` and `bigmgr-agent`: `BIGMGR_TARGET_DIR`, else the
/// one this test executable was built in (it runs from `<target>/debug/deps/`).
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BIGMGR_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's directory");
    deps.parent().unwrap_or(deps).to_path_buf()
}

/// A binary of the target directory; panics with how to build it if it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build -p bigmgr-server --bin bigmgr -p bigmgr-agent` first \
         (or set BIGMGR_TARGET_DIR)",
        path.display()
    );
    path
}

/// The repository's `stacks/` directory.
pub fn stacks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks")
}

/// A free loopback port: binds port 0, notes it, lets it go.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A child process whose output is read on threads (so it never blocks on a full pipe),
/// killed by pid and reaped on drop.
pub struct Proc {
    what: String,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Spawns `cmd` with piped output, without the test's own `BIGMGR_*` variables.
    pub fn spawn(what: &str, mut cmd: Command) -> Proc {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BIGMGR_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("BIGMGR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = capture(child.stdout.take().expect("piped stdout"), Some(tx));
        let stderr = capture(child.stderr.take().expect("piped stderr"), None);
        Proc {
            what: what.to_string(),
            child,
            stdout,
            stderr,
            lines,
        }
    }

    /// Waits for a stdout line `pred` accepts; panics with the output if none comes.
    pub fn expect_stdout(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "{} did not print the expected line within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.what,
                    self.stdout.lock().unwrap().join("\n"),
                    self.stderr.lock().unwrap().join("\n")
                ),
            }
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn capture(
    stream: impl Read + Send + 'static,
    tx: Option<mpsc::Sender<String>>,
) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let shared = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &tx {
                let _ = tx.send(line.clone());
            }
            shared.lock().unwrap().push(line);
        }
    });
    lines
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        if std::thread::panicking() {
            let lines = self.stderr.lock().unwrap();
            eprintln!("--- last stderr lines of {} ---", self.what);
            for l in lines.iter().rev().take(40).rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A running `bigmgr serve` with a temporary data directory.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin token.
    pub token: String,
    proc: Proc,
    _tmp: TempDir,
}

impl Server {
    /// Starts `bigmgr serve` on a free loopback port with the repository's stacks and 1 s
    /// heartbeats, and waits until it listens.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let mut cmd = Command::new(bin("bigmgr"));
        cmd.arg("serve")
            .arg("--data")
            .arg(&data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--stacks")
            .arg(stacks_dir())
            .arg("--heartbeat-interval")
            .arg("1s");
        let proc = Proc::spawn("bigmgr serve", cmd);
        let line = proc.expect_stdout(READY_TIMEOUT, |l| {
            l.starts_with("bigmgr listening on http://")
        });
        let url = format!(
            "http://{}",
            line["bigmgr listening on http://".len()..].trim()
        );
        let token_file = data.join("admin-token");
        let token = std::fs::read_to_string(&token_file)
            .unwrap_or_else(|e| panic!("{}: {e}", token_file.display()))
            .trim()
            .to_string();
        Server {
            url,
            token,
            proc,
            _tmp: tmp,
        }
    }

    /// A REST backend with the admin token.
    pub fn rest(&self) -> Arc<dyn Backend> {
        Arc::new(
            Rest::new(&self.url, Some(&self.token), Duration::from_secs(30))
                .expect("the server's URL is valid"),
        )
    }
}

/// A running `bigmgr-agent` with a temporary root.
pub struct Agent {
    /// Its root directory.
    pub root: PathBuf,
    proc: Option<Proc>,
    _tmp: TempDir,
}

impl Agent {
    /// Starts an agent named `name` on `address`, joining the server at `url` with `token`.
    pub fn start(url: &str, token: &str, name: &str, address: &str) -> Agent {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("root");
        let mut cmd = Command::new(bin("bigmgr-agent"));
        cmd.arg("--server")
            .arg(url)
            .arg("--join-token")
            .arg(token)
            .arg("--name")
            .arg(name)
            .arg("--address")
            .arg(address)
            .arg("--root")
            .arg(&root);
        let proc = Proc::spawn(&format!("bigmgr-agent {name}"), cmd);
        Agent {
            root,
            proc: Some(proc),
            _tmp: tmp,
        }
    }
}

impl Drop for Agent {
    /// The agent first (so it starts nothing more), then the daemons its scripts started.
    fn drop(&mut self) {
        drop(self.proc.take());
        kill_daemons(&self.root.join("units"));
    }
}

/// Kills (SIGKILL) the process group, and the process, of every pid in a `*.pid` file below
/// `dir` (the demo daemons run detached, in their own sessions).
pub fn kill_daemons(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            kill_daemons(&path);
        } else if path.extension().is_some_and(|x| x == "pid") {
            let pid = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
                .filter(|p| *p > 1);
            if let Some(pid) = pid {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// Polls `f` every 100 ms until it answers `Some`; panics naming `what` after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls a job until it is final, and answers it.
pub async fn wait_job(rest: &dyn Backend, id: i64, timeout: Duration) -> JobDetailView {
    wait_until(&format!("job {id} to end"), timeout, || async {
        let j = rest.job(id).await.expect("the job");
        j.job.state.is_final().then_some(j)
    })
    .await
}
