//! The test harness: real `bigmgr` and `bigmgr-agent` processes, a REST client that sends the
//! admin token, and polling helpers.
//!
//! Processes get their own stdout/stderr readers (so a test can wait for a line) and are
//! killed and reaped when dropped, also when the test fails; a failing test prints the
//! process's stderr.

#![allow(dead_code)]

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use std::collections::VecDeque;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a server may take to print its listening line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to exit after a signal.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// The `bigmgr` binary cargo built for these tests.
pub fn bigmgr_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bigmgr"))
}

/// The `bigmgr-agent` binary, next to `bigmgr` in the target directory. Cargo builds it for
/// `cargo test --workspace` (or `cargo build -p bigmgr-agent`), not for `-p bigmgr-server`
/// alone, so a missing binary panics with that advice.
pub fn agent_bin() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_bigmgr")).with_file_name("bigmgr-agent");
    assert!(
        path.exists(),
        "{} is not built: run `cargo test --workspace` or `cargo build -p bigmgr-agent` first",
        path.display()
    );
    path
}

/// A free loopback address: binds port 0, notes the port, lets it go.
pub fn free_addr() -> SocketAddr {
    free_addrs::<1>()[0]
}

/// `N` distinct free loopback addresses (all held until every one is chosen).
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("local addr"))
}

/// The lines a child process wrote to one stream, as they arrive.
#[derive(Clone, Default)]
pub struct Lines(Arc<Captured>);

/// What a reader thread shares with the test.
#[derive(Default)]
struct Captured {
    /// The lines so far, and whether the stream ended.
    state: Mutex<(Vec<String>, bool)>,
    /// Notified on every line and at the end.
    changed: Condvar,
}

impl Lines {
    /// Reads `stream` line by line on a thread.
    fn capture(stream: impl Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let shared = lines.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                shared.state.lock().unwrap().0.push(line);
                shared.changed.notify_all();
            }
            shared.state.lock().unwrap().1 = true;
            shared.changed.notify_all();
        });
        lines
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.0.state.lock().unwrap().0.clone()
    }

    /// Every line so far, joined.
    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    /// Waits for a line (written so far or later) that `pred` accepts; `None` if the stream
    /// ends or `timeout` passes first.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.0.state.lock().unwrap();
        loop {
            if let Some(l) = guard.0.iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if guard.1 || now >= deadline {
                return None;
            }
            guard = self
                .0
                .changed
                .wait_timeout(guard, deadline - now)
                .unwrap()
                .0;
        }
    }
}

/// A child process with captured output, killed and reaped on drop.
pub struct Proc {
    /// What it is, for messages.
    pub what: String,
    child: Child,
    /// Its stdout.
    pub stdout: Lines,
    /// Its stderr.
    pub stderr: Lines,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` with piped output and the variables `env`. Every `BIGMGR_*` variable of
    /// the test's own environment is removed first, so a developer's settings can't leak in.
    pub fn spawn(what: impl Into<String>, mut cmd: Command, env: &[(String, String)]) -> Proc {
        let what = what.into();
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("BIGMGR_") {
                cmd.env_remove(&k);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = Lines::capture(child.stdout.take().expect("piped stdout"));
        let stderr = Lines::capture(child.stderr.take().expect("piped stderr"));
        Proc {
            what,
            child,
            stdout,
            stderr,
            status: None,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, signal);
    }

    /// Waits for it to exit, at most `timeout`; panics (showing stderr) if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.status = Some(s);
                // Let the readers drain what it wrote last.
                self.stdout.wait_for(Duration::from_secs(2), |_| false);
                self.stderr.wait_for(Duration::from_secs(2), |_| false);
                return s;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not exit within {timeout:?}; stderr:\n{}",
                    self.what,
                    self.stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(EXIT_TIMEOUT)
    }

    /// Waits for a stdout line `pred` accepts; panics with both streams if none comes.
    pub fn expect_stdout(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        self.stdout.wait_for(timeout, pred).unwrap_or_else(|| {
            panic!(
                "{} printed no {what} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.what,
                self.stdout.text(),
                self.stderr.text()
            )
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let lines = self.stderr.all();
            let tail: VecDeque<_> = lines.iter().rev().take(60).rev().collect();
            eprintln!("--- last stderr lines of {} ---", self.what);
            for l in tail {
                eprintln!("{l}");
            }
        }
    }
}

/// How to start a `bigmgr` process: `ServerProc::serve()` then options, then `start()`.
pub struct ServerCmd {
    subcommand: &'static str,
    data: Option<PathBuf>,
    tmp: Option<TempDir>,
    listen: Option<SocketAddr>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ready: &'static str,
}

impl ServerCmd {
    /// Uses this data directory (the caller keeps it) instead of a fresh temporary one.
    pub fn data(mut self, dir: &Path) -> Self {
        self.data = Some(dir.to_path_buf());
        self
    }

    /// Passes no `--listen` (the config file or environment decides).
    pub fn no_listen_flag(mut self) -> Self {
        self.listen = None;
        self
    }

    /// Passes no `--data` (the config file or environment decides).
    pub fn no_data_flag(mut self) -> Self {
        self.data = None;
        self.tmp = None;
        self
    }

    /// One more argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// One more environment variable.
    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Waits for a stdout line containing this instead of the listening line (after it).
    pub fn ready_line(mut self, line: &'static str) -> Self {
        self.ready = line;
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(bigmgr_bin());
        cmd.arg(self.subcommand);
        if let Some(d) = &self.data {
            cmd.arg("--data").arg(d);
        }
        if let Some(a) = self.listen {
            cmd.arg("--listen").arg(a.to_string());
        }
        cmd.args(&self.args);
        cmd
    }

    fn spawn(&self) -> Proc {
        let mut env = vec![(
            "BIGMGR_LOG".to_string(),
            "info,bigmgr_server=debug".to_string(),
        )];
        env.extend(self.env.iter().cloned());
        Proc::spawn(format!("bigmgr {}", self.subcommand), self.command(), &env)
    }

    /// Starts it and waits for `bigmgr listening on http://ADDR` (then for the ready line, if
    /// one was set); panics with its output if it does not get there.
    pub fn start(self) -> ServerProc {
        let proc = self.spawn();
        let line = proc.expect_stdout(READY_TIMEOUT, "listening line", |l| {
            l.starts_with("bigmgr listening on http://")
        });
        let addr: SocketAddr = line["bigmgr listening on http://".len()..]
            .trim()
            .parse()
            .expect("the listening line ends with ADDR:PORT");
        if !self.ready.is_empty() {
            proc.expect_stdout(Duration::from_secs(600), self.ready, |l| {
                l.contains(self.ready)
            });
        }
        ServerProc {
            url: format!("http://{addr}"),
            addr,
            data: self.data.clone(),
            proc,
            _tmp: self.tmp,
        }
    }

    /// Runs it expecting it to exit by itself (a refused setting), and returns how it ended.
    pub fn run_to_exit(self) -> (ExitStatus, String, String) {
        let mut proc = self.spawn();
        let status = proc.wait_exit(READY_TIMEOUT);
        (status, proc.stdout.text(), proc.stderr.text())
    }
}

/// A running `bigmgr` process.
pub struct ServerProc {
    /// The process.
    pub proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://ADDR:PORT`.
    pub url: String,
    /// Its data directory, if the harness passed one.
    pub data: Option<PathBuf>,
    _tmp: Option<TempDir>,
}

impl ServerProc {
    /// `bigmgr serve` with a fresh temporary data directory on a free port.
    pub fn serve() -> ServerCmd {
        let tmp = tempfile::tempdir().expect("temp dir");
        ServerCmd {
            subcommand: "serve",
            data: Some(tmp.path().join("data")),
            tmp: Some(tmp),
            listen: Some(free_addr()),
            args: Vec::new(),
            env: Vec::new(),
            ready: "",
        }
    }

    /// `bigmgr quickstart` with a fresh temporary data directory on a free port, ready when it
    /// prints `quickstart ready`.
    pub fn quickstart() -> ServerCmd {
        ServerCmd {
            subcommand: "quickstart",
            ready: "quickstart ready",
            ..ServerProc::serve()
        }
    }

    /// Starts `bigmgr serve` with the defaults.
    pub fn start() -> ServerProc {
        ServerProc::serve().start()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data
            .as_deref()
            .expect("the harness chose the data dir")
    }

    /// The admin token, from `<data>/admin-token`.
    pub fn token(&self) -> String {
        let path = self.data_dir().join("admin-token");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// A REST client with the admin token.
    pub fn api(&self) -> Api {
        Api::new(&self.url, Some(self.token()))
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.proc.terminate()
    }
}

/// How to start a `bigmgr-agent`: `AgentProc::cmd(url)` then options, then `start()`.
pub struct AgentCmd {
    args: Vec<String>,
    env: Vec<(String, String)>,
    root: PathBuf,
    tmp: Option<TempDir>,
}

/// A running `bigmgr-agent` process.
pub struct AgentProc {
    /// The process.
    pub proc: Proc,
    /// Its root directory.
    pub root: PathBuf,
    _tmp: Option<TempDir>,
}

impl Drop for AgentProc {
    /// After the agent process (dropped with `proc`), whatever its scripts left running: the
    /// daemons whose pid files are under `<root>/units/`, each with its process group (they
    /// run detached, in their own sessions), so no test leaves a daemon behind.
    fn drop(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
        kill_daemons(&self.root.join("units"));
    }
}

/// Kills (SIGKILL) the process group of every pid found in a `*.pid` file below `dir`.
fn kill_daemons(dir: &Path) {
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

impl AgentProc {
    /// An agent of the server at `url` named `name` on `address`, with a fresh root.
    pub fn cmd(url: &str, name: &str, address: &str) -> AgentCmd {
        let tmp = tempfile::tempdir().expect("temp dir");
        AgentCmd {
            args: vec![
                "--server".into(),
                url.into(),
                "--name".into(),
                name.into(),
                "--address".into(),
                address.into(),
            ],
            env: vec![("BIGMGR_LOG".into(), "info".into())],
            root: tmp.path().join("root"),
            tmp: Some(tmp),
        }
    }
}

impl AgentCmd {
    /// Joins with this token (passed in `BIGMGR_JOIN_TOKEN`, as an operator should).
    pub fn join_token(self, token: &str) -> Self {
        self.env("BIGMGR_JOIN_TOKEN", token)
    }

    /// Uses this root (the caller keeps it).
    pub fn root(mut self, dir: &Path) -> Self {
        self.root = dir.to_path_buf();
        self
    }

    /// One more argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// One more environment variable.
    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Starts it.
    pub fn start(self) -> AgentProc {
        let mut cmd = Command::new(agent_bin());
        cmd.args(&self.args).arg("--root").arg(&self.root);
        let what = format!("bigmgr-agent {}", self.args.join(" "));
        let proc = Proc::spawn(what, cmd, &self.env);
        AgentProc {
            proc,
            root: self.root,
            _tmp: self.tmp,
        }
    }
}

/// A REST answer.
#[derive(Debug)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The Content-Type.
    pub content_type: String,
    /// The Location header, if any.
    pub location: Option<String>,
    /// The body as JSON (`Null` if empty or not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl Resp {
    /// Asserts the status, showing the body if it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        &self.body
    }

    /// Asserts an RFC 9457 problem with this status, and returns its detail.
    #[track_caller]
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status, "{}", self.text);
        let kind = self.body["type"].as_str().expect("a type");
        assert!(kind.starts_with("urn:bigmgr:problem:"), "{kind}");
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()));
        let detail = self.body["detail"].as_str().expect("a detail");
        assert!(!detail.is_empty());
        detail.to_string()
    }
}

/// A REST client of one server, under `/api/v1`.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client of `url` sending `token` as bearer token, if given.
    pub fn new(url: &str, token: Option<String>) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("{url}/api/v1"),
            token,
        }
    }

    /// The same client with another token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            token: token.map(str::to_string),
            ..self.clone()
        }
    }

    /// Sends a request to `path` (under `/api/v1`).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status().as_u16();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type").unwrap_or_default();
        let location = header("location");
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            content_type,
            location,
            body,
            text,
        }
    }

    /// PATCH with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        let bytes = serde_json::to_vec(&body).expect("json");
        self.send(
            reqwest::Method::PATCH,
            path,
            Some(("application/json", bytes)),
        )
        .await
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        let bytes = serde_json::to_vec(&body).expect("json");
        self.send(
            reqwest::Method::POST,
            path,
            Some(("application/json", bytes)),
        )
        .await
    }

    /// POST raw bytes as JSON (for malformed bodies).
    pub async fn post_raw(&self, path: &str, bytes: impl Into<Vec<u8>>) -> Resp {
        self.send(
            reqwest::Method::POST,
            path,
            Some(("application/json", bytes.into())),
        )
        .await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a cluster and returns it.
    pub async fn create_cluster(&self, name: &str) -> Value {
        self.post("/clusters", serde_json::json!({ "name": name }))
            .await
            .expect(201)
            .clone()
    }

    /// Waits until a job reaches a final state and returns its detail.
    pub async fn wait_job(&self, id: i64, timeout: Duration) -> Value {
        wait_until(&format!("job {id} to finish"), timeout, || async move {
            let job = self.get(&format!("/jobs/{id}")).await;
            let state = job.body["state"].as_str().unwrap_or_default().to_string();
            ["SUCCEEDED", "FAILED", "CANCELED"]
                .contains(&state.as_str())
                .then_some(job.body)
        })
        .await
    }
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Copies a directory tree (for making test stacks out of the shipped ones).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The shipped stacks directory of this source tree.
pub fn shipped_stacks() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../stacks")
}
