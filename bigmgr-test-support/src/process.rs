//! A child process whose output is read line by line on threads, killed by pid and reaped on
//! drop.

use nix::sys::signal::Signal;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a process may take to exit after a signal.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

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

/// A child process with captured output, killed (by pid) and reaped on drop.
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
    pub fn signal(&self, signal: Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, signal);
    }

    /// Its exit status if it has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits for it to exit, at most `timeout`; panics (showing stderr) if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_exit() {
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
        self.signal(Signal::SIGTERM);
        self.wait_exit(EXIT_TIMEOUT)
    }

    /// SIGKILL (if it still runs) and reap.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Waits for a stdout line `pred` accepts; panics with both streams if none comes.
    pub fn expect_stdout(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        Self::expect_line(self, &self.stdout, timeout, what, pred)
    }

    /// Waits for a stderr line containing `needle`; panics with both streams if none comes.
    pub fn expect_stderr(&self, timeout: Duration, needle: &str) -> String {
        Self::expect_line(self, &self.stderr, timeout, needle, |l| l.contains(needle))
    }

    fn expect_line(
        &self,
        lines: &Lines,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        lines.wait_for(timeout, pred).unwrap_or_else(|| {
            panic!(
                "{} printed no {what} within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.what,
                self.stdout.text(),
                self.stderr.text()
            )
        })
    }

    /// A field of its `/proc/<pid>/status`, in KiB (`VmRSS:`, `VmHWM:`).
    pub fn status_kib(&self, field: &str) -> u64 {
        status_kib(self.pid(), field)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
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

/// A field of `/proc/<pid>/status` in KiB (`VmRSS:`, `VmHWM:`); 0 if it cannot be read.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
