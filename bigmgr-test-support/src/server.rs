//! Real `bigmgr serve` (and `bigmgr quickstart`) processes.

use crate::api::Api;
use crate::bins::bigmgr_bin;
use crate::net::free_addr;
use crate::postgres::PgSchema;
use crate::process::Proc;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;
use tempfile::TempDir;

/// How long a server may take to print its listening line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The line `bigmgr serve` prints once it listens, before `ADDR:PORT`.
const LISTENING: &str = "bigmgr listening on ";

/// How to start a `bigmgr` process: `ServerProc::serve()` then options, then `start()`.
pub struct ServerCmd {
    subcommand: &'static str,
    data: Option<PathBuf>,
    tmp: Option<TempDir>,
    listen: Option<SocketAddr>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ready: &'static str,
    /// Serve TLS (the server's default); the harness asks for plain HTTP unless told.
    tls: bool,
    /// `--store URL`, if not SQLite in the data directory.
    store: Option<String>,
    /// The PostgreSQL schema of this server's own, dropped after the process is stopped.
    schema: Option<PgSchema>,
}

args_and_env!(ServerCmd);

impl ServerCmd {
    /// Uses this data directory (the caller keeps it) instead of a fresh temporary one.
    pub fn data(mut self, dir: &Path) -> Self {
        self.data = Some(dir.to_path_buf());
        self
    }

    /// Listens on this address instead of a fresh free one.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
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

    /// `--stacks DIR`: the stacks of this directory instead of the shipped ones.
    pub fn stacks(self, dir: &Path) -> Self {
        self.arg("--stacks").arg(dir.display().to_string())
    }

    /// `--heartbeat-interval 1s`: agents are seen (and lost) quickly.
    pub fn fast_heartbeat(self) -> Self {
        self.arg("--heartbeat-interval").arg("1s")
    }

    /// Serve over TLS with the server's own CA (its default) instead of `--insecure-http`.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// `--store URL`: a store shared with other servers (replicas), which the caller keeps;
    /// replaces a schema of the server's own.
    pub fn store(mut self, url: impl Into<String>) -> Self {
        self.store = Some(url.into());
        self.schema = None;
        self
    }

    /// A PostgreSQL schema of its own as the store, dropped after the server is stopped.
    pub fn postgres(mut self) -> Self {
        let schema = PgSchema::create(self.subcommand);
        self.store = Some(schema.url());
        self.schema = Some(schema);
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
        if !self.tls && self.subcommand == "serve" {
            cmd.arg("--insecure-http");
        }
        if let Some(url) = &self.store {
            cmd.arg("--store").arg(url);
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
        // Tests talk to it with reqwest, which needs the process's TLS provider.
        crate::api::install_crypto();
        let proc = self.spawn();
        let line = proc.expect_stdout(READY_TIMEOUT, "listening line", |l| {
            l.starts_with(LISTENING)
        });
        let url = line[LISTENING.len()..].trim().to_string();
        let addr: SocketAddr = url
            .split_once("://")
            .map(|(_, a)| a)
            .unwrap_or_default()
            .parse()
            .expect("the listening line ends with a URL http(s)://ADDR:PORT");
        if !self.ready.is_empty() {
            proc.expect_stdout(Duration::from_secs(600), self.ready, |l| {
                l.contains(self.ready)
            });
        }
        ServerProc {
            url,
            addr,
            data: self.data.clone(),
            proc,
            _schema: self.schema,
            _tmp: self.tmp,
        }
    }

    /// Runs it expecting it to exit by itself (a refused setting), and returns how it ended:
    /// the status, stdout and stderr.
    pub fn run_to_exit(self) -> (ExitStatus, String, String) {
        let mut proc = self.spawn();
        let status = proc.wait_exit(READY_TIMEOUT);
        (status, proc.stdout.text(), proc.stderr.text())
    }
}

/// A running `bigmgr` process, killed when dropped.
pub struct ServerProc {
    /// The process.
    pub proc: Proc,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://ADDR:PORT`.
    pub url: String,
    /// Its data directory, if the harness passed one.
    pub data: Option<PathBuf>,
    // Dropped after `proc` (fields drop in order): the server is stopped before its schema goes.
    _schema: Option<PgSchema>,
    _tmp: Option<TempDir>,
}

impl ServerProc {
    /// `bigmgr serve` with a fresh temporary data directory on a free port; its store is SQLite
    /// in that directory, or a PostgreSQL schema of its own when `BIGMGR_TEST_STORE=postgres`
    /// (how the scenario tests run a second time, on PostgreSQL).
    pub fn serve() -> ServerCmd {
        let tmp = tempfile::tempdir().expect("temp dir");
        let cmd = ServerCmd {
            subcommand: "serve",
            data: Some(tmp.path().join("data")),
            tmp: Some(tmp),
            listen: Some(free_addr()),
            args: Vec::new(),
            env: Vec::new(),
            ready: "",
            tls: false,
            store: None,
            schema: None,
        };
        match PgSchema::when_testing_postgres("serve") {
            Some(schema) => ServerCmd {
                store: Some(schema.url()),
                schema: Some(schema),
                ..cmd
            },
            None => cmd,
        }
    }

    /// `bigmgr quickstart` with a fresh temporary data directory on a free port, ready when it
    /// prints `quickstart ready`.
    pub fn quickstart() -> ServerCmd {
        ServerCmd {
            subcommand: "quickstart",
            ready: "quickstart ready",
            tls: true,
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

    /// A REST client with the admin token (trusting the server's CA when it speaks TLS).
    pub fn api(&self) -> Api {
        let api = Api::new(&self.url, Some(self.token()));
        match self.ca() {
            Some(ca) => api.with_ca(&ca),
            None => api,
        }
    }

    /// The server's CA certificate (`<data>/tls/ca.pem`) when it speaks TLS.
    pub fn ca(&self) -> Option<PathBuf> {
        self.url
            .starts_with("https://")
            .then(|| self.data_dir().join("tls").join("ca.pem"))
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.proc.terminate()
    }
}
