//! The process executor: runs a task's script detached from the agent, so the script survives
//! the agent being killed (even with SIGKILL) and a later agent can adopt it.
//!
//! The agent forks a supervisor for each run (see [`super::supervisor`]): a copy of the agent
//! that leads a process group of its own, starts the script in it (stdin from `/dev/null`,
//! stdout and stderr appended to `stdout.log` and `stderr.log` in the run's task directory),
//! waits for it and writes its exit status to the task directory's `exit` file. The status
//! counts only once its line is complete (it ends with a newline), so a file read mid-write, or
//! left empty by a supervisor killed mid-write, is no status at all. The supervisor ignores
//! SIGTERM, SIGINT and SIGHUP only to outlive the script and record its status; the script gets
//! them as usual. A task costs the two processes it must (the supervisor and the script) and
//! one exec, the script's.
//!
//! While the agent lives it waits for the supervisor, its child; a timeout or a cancel sends
//! SIGTERM to the whole group (the script and everything it started), then SIGKILL after the
//! grace period. It tails both log files, handing each complete line to the [`ExecSink`] as soon
//! as it is written: inotify on the task directory wakes it when a file there changes, and it
//! also reads every [`FALLBACK_POLL`] without a change (in case the watch cannot be set up), so
//! a run that prints nothing costs no more than that. When the supervisor has exited it reads
//! both files to their end once more (output of daemons the script started and that keep the
//! files open is not followed further). A line longer than [`MAX_LOG_LINE`] is cut with a marker
//! (`… [line truncated: N bytes; full output in <task dir>/stdout.log]`): the sink gets its
//! head, the file keeps it whole, and the tailer holds no more than the head in memory however
//! long the line (binary output without newlines included). Output that is not UTF-8 arrives
//! with U+FFFD for the invalid bytes.
//!
//! A later agent adopts a run whose supervisor still runs ([`Executor::resume`]): it tails the
//! log files from the start, looks for the `exit` file (woken when it appears) and, every
//! [`FALLBACK_POLL`], for the supervisor to be gone (its pid alive, not a zombie, and with the
//! start time the ledger recorded, so a reused pid is not mistaken for it), and enforces the
//! rest of the timeout and a cancel by signalling the group.

use super::supervisor::{Launch, Supervisor};
use super::{ExecEnv, ExecOutcome, ExecSink, Executor, StartedRun, UNKNOWN_OUTCOME};
use crate::model::{LogStream, RunId, TaskState, now_ms};
use crate::transport::TaskSpec;
use crate::transport::limits::{self, MAX_LOG_LINE};
use async_trait::async_trait;
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// The run's standard output, in its task directory.
pub(crate) const STDOUT_LOG: &str = "stdout.log";
/// The run's standard error, in its task directory.
pub(crate) const STDERR_LOG: &str = "stderr.log";
/// The script's exit status (a decimal number and a newline), in the run's task directory;
/// written by the supervisor once the script has ended.
pub(crate) const EXIT_FILE: &str = "exit";

/// How often the log files are read when no change woke the tailer (the task directory could
/// not be watched, or a change went unreported), and how often an adopted run's process is
/// checked.
const FALLBACK_POLL: Duration = Duration::from_secs(1);

/// How often [`wait_until`] looks while an adopted run's process is being stopped.
const STOP_POLL: Duration = Duration::from_millis(50);

/// How long to wait for an adopted run's process to go after SIGKILL before giving up on it.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Runs scripts as detached processes: `<script> <command>` in the unit directory, with the
/// prepared environment, stdin from `/dev/null` and stdout/stderr appended to files in the run's
/// task directory, read line by line (see the module documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessExecutor;

impl ProcessExecutor {
    /// A process executor.
    pub fn new() -> ProcessExecutor {
        ProcessExecutor
    }
}

/// Why the script's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// It exited (or died) on its own.
    Natural,
    /// It ran past its timeout.
    TimedOut,
    /// It was cancelled.
    Canceled,
}

/// How the script ended, as far as the agent can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ended {
    /// Its exit status, from the `exit` file (or the supervisor's own status).
    Code(i32),
    /// The supervisor was killed by this signal before it could write the `exit` file.
    Signal(i32),
    /// It ended some other way; the message says how.
    Abnormal(String),
    /// Waiting for the supervisor failed; the message says why.
    WaitFailed(String),
    /// An adopted run's process is gone and left no `exit` file.
    Lost,
}

#[async_trait]
impl Executor for ProcessExecutor {
    async fn run(
        &self,
        spec: &TaskSpec,
        env: &ExecEnv,
        sink: &dyn ExecSink,
        cancel: watch::Receiver<bool>,
    ) -> ExecOutcome {
        let cannot_run = |e: std::io::Error| ExecOutcome {
            state: TaskState::Failed,
            exit_code: None,
            pid: None,
            message: Some(format!("cannot run script {}: {e}", env.script.display())),
            outcome_unknown: false,
        };
        if let Err(e) = check_runnable(&env.script) {
            return cannot_run(e);
        }
        let mut child = match spawn(spec, env) {
            Ok(child) => child,
            Err(e) => return cannot_run(e),
        };
        let pid = child.id();
        sink.started(&StartedRun {
            pid,
            start_time: start_time(pid).unwrap_or(0),
            started_at: now_ms(),
            timeout_ms: u64::try_from(spec.timeout.as_millis()).unwrap_or(u64::MAX),
        });
        let pid = Some(pid);
        let mut tail = Tail::new(&env.task_dir);
        let mut wake = Wake::new(&env.task_dir);
        let supervise = supervise(&mut child, pid, spec.timeout, env.grace, cancel);
        tokio::pin!(supervise);
        let (status, ending) = loop {
            tokio::select! {
                biased;
                done = &mut supervise => break done,
                () = wake.next() => tail.poll(sink),
            }
        };
        // Daemons the script started may write on: read what is there now, then stop.
        tail.finish(sink);
        let ended = match read_exit(&env.task_dir) {
            Some(code) => Ended::Code(code),
            None => ended_from_status(status),
        };
        outcome(ended, ending, pid, spec.timeout, env.grace)
    }

    fn resumable(&self, _run: RunId, task_dir: &Path, started: Option<&StartedRun>) -> bool {
        read_exit(task_dir).is_some() || started.is_some_and(is_running)
    }

    async fn resume(
        &self,
        run: RunId,
        task_dir: &Path,
        started: Option<&StartedRun>,
        grace: Duration,
        sink: &dyn ExecSink,
        mut cancel: watch::Receiver<bool>,
    ) -> ExecOutcome {
        tracing::info!(%run, pid = started.map(|s| s.pid), "following a run an earlier agent started");
        let pid = started.map(|s| s.pid);
        let alive = || started.is_some_and(is_running);
        let ended = || read_exit(task_dir).is_some() || !alive();
        let mut tail = Tail::new(task_dir);
        let mut wake = Wake::new(task_dir);
        let timeout = async {
            match started {
                Some(s) => {
                    let left = u64::try_from(s.deadline().saturating_sub(now_ms())).unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(left)).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        let canceled = async {
            if cancel.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(canceled);
        let ending = loop {
            tokio::select! {
                biased;
                _ = &mut canceled => break Ending::Canceled,
                _ = &mut timeout => break Ending::TimedOut,
                () = wake.next() => {
                    tail.poll(sink);
                    if ended() {
                        break Ending::Natural;
                    }
                }
            }
        };
        // A run that ended by itself just before its deadline or its cancel was neither.
        let ending = if ending != Ending::Natural && ended() {
            Ending::Natural
        } else {
            ending
        };
        if ending != Ending::Natural {
            signal_group(pid, Signal::SIGTERM);
            if !wait_until(grace, ended).await {
                signal_group(pid, Signal::SIGKILL);
                if !wait_until(KILL_WAIT, || !alive()).await {
                    tracing::warn!(%run, ?pid, "the run's process outlived SIGKILL");
                }
            }
        }
        if ending != Ending::Natural {
            // The script is gone; whatever it left behind in its group goes too.
            signal_group(pid, Signal::SIGKILL);
        }
        tail.finish(sink);
        let ended = match read_exit(task_dir) {
            Some(code) => Ended::Code(code),
            None => Ended::Lost,
        };
        let timeout = started.map_or(Duration::ZERO, StartedRun::timeout);
        outcome(ended, ending, pid, timeout, grace)
    }
}

/// Fails as spawning the script directly would, for what the supervisor could only report as exit
/// code 126 or 127: the script is missing, or names an interpreter that is missing.
fn check_runnable(script: &Path) -> std::io::Result<()> {
    let mut head = [0u8; 256];
    let n = File::open(script)?.read(&mut head)?;
    let Some(line) = head[..n].strip_prefix(b"#!") else {
        return Ok(());
    };
    let line = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    // A relative interpreter is looked up from the unit directory: leave that to the kernel.
    if let Some(interpreter) = line
        .split_whitespace()
        .next()
        .filter(|i| i.starts_with('/'))
    {
        std::fs::metadata(interpreter).map_err(|e| {
            std::io::Error::new(e.kind(), format!("its interpreter {interpreter}: {e}"))
        })?;
    }
    Ok(())
}

/// Starts the run's supervisor (see [`super::supervisor`]) with fresh log files and no `exit`
/// file. The supervisor and the script outlive the agent.
fn spawn(spec: &TaskSpec, env: &ExecEnv) -> std::io::Result<Supervisor> {
    let dir = &env.task_dir;
    for name in [EXIT_FILE, STDOUT_LOG, STDERR_LOG] {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    let log = |name: &str| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
    };
    Supervisor::spawn(Launch {
        script: &env.script,
        command: &spec.command,
        cwd: &env.unit_dir,
        env: &env.env,
        stdout: log(STDOUT_LOG)?,
        stderr: log(STDERR_LOG)?,
        exit_file: &dir.join(EXIT_FILE),
    })
}

/// The exit status the supervisor recorded in `task_dir`, if it did: a number on a complete line
/// (a file still being written, or left empty, holds none).
fn read_exit(task_dir: &Path) -> Option<i32> {
    std::fs::read_to_string(task_dir.join(EXIT_FILE))
        .ok()?
        .strip_suffix('\n')?
        .parse()
        .ok()
}

/// The state (field 3) and start time (field 22) in `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything: parse after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

/// The start time of process `pid` (clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, t)| t)
}

/// Whether the process recorded in `started` still runs: its pid exists, is not a zombie and
/// started when the recorded one did (so it is not another process that got the pid).
fn is_running(started: &StartedRun) -> bool {
    proc_stat(started.pid).is_some_and(|(state, t)| state != 'Z' && t == started.start_time)
}

/// Polls `done` every [`STOP_POLL`] for up to `limit`; whether it came true.
async fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let until = tokio::time::Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(STOP_POLL).await;
    }
}

/// Wakes a run's tailer: when a file of its task directory changes (inotify on the directory:
/// a log file written, the `exit` file created or written), and after [`FALLBACK_POLL`]
/// without a change.
struct Wake {
    /// The directory's watch; `None` if it could not be set up or failed (then only the
    /// fallback wakes).
    inotify: Option<AsyncFd<InotifyFd>>,
    /// Fires [`FALLBACK_POLL`] after the last wakeup, and at once the first time.
    fallback: tokio::time::Interval,
}

/// An inotify instance, as tokio waits for it to be readable: it owns its descriptor, and always
/// gives that one.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl Wake {
    /// Watches `task_dir`. The first [`Wake::next`] returns at once, so what was written before
    /// the watch is read too.
    fn new(task_dir: &Path) -> Wake {
        let inotify = watch(task_dir)
            .inspect_err(|e| {
                tracing::debug!(
                    dir = %task_dir.display(), error = %e,
                    "cannot watch the run's task directory (inotify): its logs are read every {FALLBACK_POLL:?}"
                );
            })
            .ok();
        let mut fallback = tokio::time::interval(FALLBACK_POLL);
        fallback.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Wake { inotify, fallback }
    }

    /// Waits until a file of the directory changes, or [`FALLBACK_POLL`] has passed since the
    /// last wakeup.
    async fn next(&mut self) {
        tokio::select! {
            changed = changed(self.inotify.as_ref()) => {
                if let Err(e) = changed {
                    tracing::debug!(
                        error = %e,
                        "watching the run's task directory failed: its logs are read every {FALLBACK_POLL:?}"
                    );
                    self.inotify = None;
                }
                self.fallback.reset();
            }
            _ = self.fallback.tick() => {}
        }
    }
}

/// An inotify instance watching `dir` for files written, created or moved in, ready for tokio
/// to wait on.
fn watch(dir: &Path) -> std::io::Result<AsyncFd<InotifyFd>> {
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    let changes = AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO;
    inotify.add_watch(dir, changes)?;
    // Deprecated for an `unsafe` constructor whose contract is the I/O safety `InotifyFd` gives
    // (the descriptor stays open and the same while registered); this crate has no `unsafe`.
    #[allow(deprecated)]
    AsyncFd::with_interest(InotifyFd(inotify), Interest::READABLE)
}

/// Waits until `inotify` reports changes, and takes every change it holds; never returns
/// without one.
async fn changed(inotify: Option<&AsyncFd<InotifyFd>>) -> std::io::Result<()> {
    let Some(fd) = inotify else {
        return std::future::pending().await;
    };
    loop {
        let mut guard = fd.readable().await?;
        let mut any = false;
        let drained = guard.try_io(|fd| -> std::io::Result<()> {
            loop {
                match fd.get_ref().0.read_events() {
                    Ok(_) => any = true,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        });
        match drained {
            // Read until it would block, which cleared its readiness.
            Err(_would_block) if any => return Ok(()),
            Err(_would_block) => {}
            Ok(failed) => return failed,
        }
    }
}

/// Follows a run's two log files.
struct Tail {
    logs: [LogTail; 2],
}

impl Tail {
    fn new(task_dir: &Path) -> Tail {
        Tail {
            logs: [
                LogTail::new(task_dir.join(STDOUT_LOG), LogStream::Stdout),
                LogTail::new(task_dir.join(STDERR_LOG), LogStream::Stderr),
            ],
        }
    }

    /// Hands the complete lines written since the last poll to `sink`.
    fn poll(&mut self, sink: &dyn ExecSink) {
        for log in &mut self.logs {
            log.read(sink, None);
        }
    }

    /// Reads both files to their current end and hands everything left to `sink`, including
    /// a last line without a newline.
    fn finish(&mut self, sink: &dyn ExecSink) {
        for log in &mut self.logs {
            let end = std::fs::metadata(&log.path).map_or(0, |m| m.len());
            log.read(sink, Some(end));
            log.flush(sink);
        }
    }
}

/// The most of a log file read at once.
const READ_CHUNK: usize = 64 * 1024;

/// Follows one log file from its start, handing each line to the sink. A line longer than
/// [`MAX_LOG_LINE`] is cut, and ends with a marker saying how long it was and where the whole
/// output is; only its head is held in memory, the rest is skipped up to the next newline.
struct LogTail {
    path: PathBuf,
    stream: LogStream,
    /// Opened on the first read that finds the file.
    file: Option<File>,
    /// Bytes read so far.
    pos: u64,
    /// The start of a line whose newline has not been read yet: at most [`MAX_LOG_LINE`]
    /// bytes of it.
    partial: Vec<u8>,
    /// How many bytes of that line were skipped after `partial`.
    skipped: u64,
}

impl LogTail {
    fn new(path: PathBuf, stream: LogStream) -> LogTail {
        LogTail {
            path,
            stream,
            file: None,
            pos: 0,
            partial: Vec::new(),
            skipped: 0,
        }
    }

    /// Reads what the file holds (up to byte `end`, if given) and hands each complete line to
    /// `sink`.
    fn read(&mut self, sink: &dyn ExecSink, end: Option<u64>) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(mut file) = self.file.take() else {
            return;
        };
        let mut buf = Vec::new();
        loop {
            // Only what the file holds now: most runs print nothing, and a buffer zeroed for
            // nothing is pages written (and, after each fork, copied) for nothing.
            let size = file.metadata().map_or(u64::MAX, |m| m.len());
            let want = end.map_or(size, |e| e.min(size)).saturating_sub(self.pos);
            let want = usize::try_from(want.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
            if want == 0 {
                break;
            }
            if buf.len() < want {
                buf.resize(want, 0);
            }
            match file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    self.pos += n as u64;
                    self.take(sink, &buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot read a run's log");
                    break;
                }
            }
        }
        self.file = Some(file);
    }

    /// Takes `chunk`, the next bytes of the file: hands each line it completes to `sink` and
    /// keeps the start of the line it leaves open.
    fn take(&mut self, sink: &dyn ExecSink, mut chunk: &[u8]) {
        while let Some(i) = chunk.iter().position(|b| *b == b'\n') {
            if self.partial.is_empty() && self.skipped == 0 {
                // The whole line is in the chunk: no copy.
                let line = &chunk[..i];
                let skipped = line.len().saturating_sub(MAX_LOG_LINE);
                self.emit(sink, &line[..line.len() - skipped], skipped as u64);
            } else {
                self.keep(&chunk[..i]);
                let line = std::mem::take(&mut self.partial);
                let skipped = std::mem::take(&mut self.skipped);
                self.emit(sink, &line, skipped);
                // Reuse the buffer for the next line.
                self.partial = line;
                self.partial.clear();
            }
            chunk = &chunk[i + 1..];
        }
        self.keep(chunk);
    }

    /// Keeps the bytes of the open line that fit under [`MAX_LOG_LINE`]; counts the rest.
    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_LOG_LINE.saturating_sub(self.partial.len());
        let kept = room.min(bytes.len());
        self.partial.extend_from_slice(&bytes[..kept]);
        self.skipped += (bytes.len() - kept) as u64;
    }

    /// Hands a last line without a newline to `sink`.
    fn flush(&mut self, sink: &dyn ExecSink) {
        if !self.partial.is_empty() || self.skipped > 0 {
            let line = std::mem::take(&mut self.partial);
            let skipped = std::mem::take(&mut self.skipped);
            self.emit(sink, &line, skipped);
        }
    }

    /// Hands a line to `sink`: `head` is its start (without the newline), followed by
    /// `skipped` more bytes that were not kept. Invalid UTF-8 and NUL (which no store keeps)
    /// are replaced (U+FFFD); a line cut, or grown past [`MAX_LOG_LINE`] by the replacements,
    /// ends with the marker.
    fn emit(&self, sink: &dyn ExecSink, head: &[u8], skipped: u64) {
        let total = head.len() as u64 + skipped;
        let mut head = head;
        if skipped == 0 {
            if let Some(h) = head.strip_suffix(b"\r") {
                head = h;
            }
        } else {
            head = without_broken_last_char(head);
        }
        let mut line = String::from_utf8_lossy(head).into_owned();
        if line.contains('\0') {
            line = line.replace('\0', "\u{FFFD}");
        }
        if skipped > 0 || line.len() > MAX_LOG_LINE {
            let marker = format!(
                " … [line truncated: {total} bytes; full output in {}]",
                self.path.display()
            );
            limits::truncate_with(&mut line, MAX_LOG_LINE, &marker);
        }
        sink.line(self.stream, line);
    }
}

/// `bytes` without a last UTF-8 character that the cut left incomplete (so a cut line does not
/// end in a replacement character that the output never had).
fn without_broken_last_char(bytes: &[u8]) -> &[u8] {
    let from = bytes.len().saturating_sub(3);
    match (from..bytes.len()).rev().find(|&i| bytes[i] & 0xC0 != 0x80) {
        Some(start) => match std::str::from_utf8(&bytes[start..]) {
            Err(e) if e.error_len().is_none() => &bytes[..start],
            _ => bytes,
        },
        None => bytes,
    }
}

/// Waits for the child, enforcing the timeout and the cancel: SIGTERM to its group, then
/// SIGKILL after the grace period. Always reaps the child.
async fn supervise(
    child: &mut Supervisor,
    pid: Option<u32>,
    timeout: Duration,
    grace: Duration,
    mut cancel: watch::Receiver<bool>,
) -> (std::io::Result<ExitStatus>, Ending) {
    let canceled = async {
        // A dropped sender means nobody can cancel any more: wait for the other branches.
        if cancel.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let ending = tokio::select! {
        status = child.wait() => return (status, Ending::Natural),
        _ = tokio::time::sleep(timeout) => Ending::TimedOut,
        _ = canceled => Ending::Canceled,
    };
    signal_group(pid, Signal::SIGTERM);
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            signal_group(pid, Signal::SIGKILL);
            child.wait().await
        }
    };
    // The script is gone; whatever it left behind in its group goes too.
    signal_group(pid, Signal::SIGKILL);
    (status, ending)
}

/// Sends `signal` to the process group led by `pid`; a group that is already gone is fine.
fn signal_group(pid: Option<u32>, signal: Signal) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    match killpg(Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(pid, %signal, error = %e, "cannot signal the script's process group")
        }
    }
}

/// How the supervisor's own exit status says the script ended (when it left no `exit` file).
fn ended_from_status(status: std::io::Result<ExitStatus>) -> Ended {
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Ended::Code(code),
            (None, Some(sig)) => Ended::Signal(sig),
            (None, None) => Ended::Abnormal(format!("the script ended abnormally ({status})")),
        },
        Err(e) => Ended::WaitFailed(format!("cannot wait for the script: {e}")),
    }
}

/// Turns how the script ended into an [`ExecOutcome`].
fn outcome(
    ended: Ended,
    ending: Ending,
    pid: Option<u32>,
    timeout: Duration,
    grace: Duration,
) -> ExecOutcome {
    if let Ended::WaitFailed(message) = ended {
        return ExecOutcome {
            state: TaskState::Failed,
            exit_code: None,
            pid,
            message: Some(message),
            outcome_unknown: false,
        };
    }
    let exit_code = match ended {
        Ended::Code(code) => Some(code),
        _ => None,
    };
    let outcome_unknown = matches!((&ending, &ended), (Ending::Natural, Ended::Lost));
    let (state, message) = match ending {
        Ending::TimedOut => (
            TaskState::TimedOut,
            Some(format!(
                "timed out after {}; sent SIGTERM, then SIGKILL after {} if still running",
                human(timeout),
                human(grace)
            )),
        ),
        Ending::Canceled => (
            TaskState::Canceled,
            Some("canceled; sent SIGTERM, then SIGKILL if still running".to_owned()),
        ),
        Ending::Natural => match ended {
            Ended::Code(0) => (TaskState::Succeeded, None),
            Ended::Code(code) => (
                TaskState::Failed,
                Some(format!("the script exited with code {code}")),
            ),
            Ended::Signal(sig) => (
                TaskState::Failed,
                Some(format!(
                    "the script was killed by signal {}",
                    signal_name(sig)
                )),
            ),
            Ended::Abnormal(message) | Ended::WaitFailed(message) => {
                (TaskState::Failed, Some(message))
            }
            Ended::Lost => (TaskState::Failed, Some(UNKNOWN_OUTCOME.to_owned())),
        },
    };
    ExecOutcome {
        state,
        exit_code,
        pid,
        message,
        outcome_unknown,
    }
}

/// `SIGKILL`, or the number if it has no name.
fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("{sig}"))
}

/// A duration as people write it: `1s`, `1.5s`, `250ms`.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn outcomes_name_what_happened() {
        let exited = |code: i32| ended_from_status(Ok(ExitStatus::from_raw(code << 8)));
        let signaled = |sig: i32| ended_from_status(Ok(ExitStatus::from_raw(sig)));
        let t = Duration::from_secs(1);
        let o = outcome(exited(0), Ending::Natural, Some(7), t, t);
        assert_eq!(
            (o.state, o.exit_code, o.pid),
            (TaskState::Succeeded, Some(0), Some(7))
        );
        let o = outcome(exited(3), Ending::Natural, Some(7), t, t);
        assert_eq!((o.state, o.exit_code), (TaskState::Failed, Some(3)));
        let o = outcome(signaled(9), Ending::Natural, Some(7), t, t);
        assert_eq!((o.state, o.exit_code), (TaskState::Failed, None));
        assert!(o.message.unwrap().contains("SIGKILL"));
        let o = outcome(signaled(15), Ending::TimedOut, Some(7), t, t);
        assert_eq!(o.state, TaskState::TimedOut);
        assert!(o.message.unwrap().contains("timed out after 1s"));
        let o = outcome(exited(143), Ending::Canceled, Some(7), t, t);
        assert_eq!((o.state, o.exit_code), (TaskState::Canceled, Some(143)));
        let o = outcome(Ended::Lost, Ending::Natural, Some(7), t, t);
        assert_eq!((o.state, o.exit_code), (TaskState::Failed, None));
        assert!(o.message.unwrap().contains("outcome is unknown"));
        let o = outcome(Ended::Lost, Ending::TimedOut, Some(7), t, t);
        assert_eq!((o.state, o.exit_code), (TaskState::TimedOut, None));
    }

    #[test]
    fn an_exit_status_counts_only_once_its_line_is_complete() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(read_exit(dir.path()), None, "no file");
        for (text, want) in [
            ("", None),
            ("1", None),
            ("12", None),
            ("12\n", Some(12)),
            ("0\n", Some(0)),
            ("143\n", Some(143)),
            ("x\n", None),
        ] {
            std::fs::write(dir.path().join(EXIT_FILE), text).expect("write");
            assert_eq!(read_exit(dir.path()), want, "{text:?}");
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn own_process_is_running_and_a_stale_start_time_is_not() {
        let pid = std::process::id();
        let start_time = start_time(pid).expect("/proc/self/stat");
        assert!(start_time > 0);
        let started = StartedRun {
            pid,
            start_time,
            started_at: 0,
            timeout_ms: 0,
        };
        assert!(is_running(&started));
        assert!(!is_running(&StartedRun {
            start_time: start_time + 1,
            ..started
        }));
    }

    /// Collects lines.
    #[derive(Default)]
    struct Lines(Mutex<Vec<(LogStream, String)>>);

    impl ExecSink for Lines {
        fn started(&self, _started: &StartedRun) {}
        fn line(&self, stream: LogStream, line: String) {
            self.0.lock().unwrap().push((stream, line));
        }
    }

    #[test]
    fn tail_emits_complete_lines_then_the_rest() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut out = File::create(dir.path().join(STDOUT_LOG)).unwrap();
        let sink = Lines::default();
        let mut tail = Tail::new(dir.path());
        tail.poll(&sink);
        out.write_all(b"one\r\ntw").unwrap();
        tail.poll(&sink);
        out.write_all(b"o\nthree").unwrap();
        std::fs::write(dir.path().join(STDERR_LOG), "oops\n").unwrap();
        tail.poll(&sink);
        tail.finish(&sink);
        let lines: Vec<String> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(s, l)| format!("{s:?}:{l}"))
            .collect();
        assert_eq!(
            lines,
            ["Stdout:one", "Stdout:two", "Stderr:oops", "Stdout:three"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_line_written_while_the_tailer_waits_wakes_it_before_the_fallback() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut out = File::create(dir.path().join(STDOUT_LOG)).unwrap();
        let sink = Lines::default();
        let mut tail = Tail::new(dir.path());
        let mut wake = Wake::new(dir.path());
        assert!(wake.inotify.is_some(), "the task directory is watched");
        // The first wakeup comes at once, for what was written before the watch.
        wake.next().await;
        tail.poll(&sink);
        let waiting = tokio::time::Instant::now();
        out.write_all(b"hello\n").unwrap();
        wake.next().await;
        // Time is paused: had only the fallback woken the tailer, the clock would have jumped
        // to it.
        assert!(
            waiting.elapsed() < FALLBACK_POLL,
            "woken by the fallback after {:?}",
            waiting.elapsed()
        );
        tail.poll(&sink);
        assert_eq!(
            *sink.0.lock().unwrap(),
            [(LogStream::Stdout, "hello".to_owned())]
        );
    }

    #[test]
    fn tail_cuts_long_lines_with_a_marker_and_keeps_only_their_head() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STDOUT_LOG);
        let mut out = File::create(&path).unwrap();
        let sink = Lines::default();
        let mut tail = Tail::new(dir.path());
        // A 1 MB line written in pieces across polls, a short one, a line of exactly the limit,
        // a cut that falls inside a two-byte character, then 3 MB of binary without a newline.
        let mb = vec![b'x'; 1 << 20];
        out.write_all(&mb[..300_000]).unwrap();
        tail.poll(&sink);
        assert!(tail.logs[0].partial.len() <= MAX_LOG_LINE);
        out.write_all(&mb[300_000..]).unwrap();
        out.write_all(b"\nshort\n").unwrap();
        out.write_all(&vec![b'y'; MAX_LOG_LINE]).unwrap();
        out.write_all(b"\n").unwrap();
        let mut accents = vec![b'a'];
        accents.extend("é".repeat(MAX_LOG_LINE).as_bytes());
        out.write_all(&accents).unwrap();
        out.write_all(b"\n").unwrap();
        tail.poll(&sink);
        let binary: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8 | 0x80).collect();
        let binary: Vec<u8> = binary
            .iter()
            .map(|b| if *b == b'\n' { 0 } else { *b })
            .collect();
        out.write_all(&binary).unwrap();
        tail.poll(&sink);
        assert!(tail.logs[0].partial.capacity() <= 2 * MAX_LOG_LINE);
        tail.finish(&sink);
        let lines = sink.0.lock().unwrap();
        assert_eq!(
            lines.len(),
            5,
            "{:?}",
            lines.iter().map(|l| l.1.len()).collect::<Vec<_>>()
        );
        let full = format!("full output in {}]", path.display());
        let first = &lines[0].1;
        assert!(first.len() <= MAX_LOG_LINE, "{}", first.len());
        assert!(first.starts_with("xxxx"));
        assert!(
            first.ends_with(&format!(" … [line truncated: 1048576 bytes; {full}")),
            "{}",
            &first[first.len() - 120..]
        );
        assert_eq!(lines[1].1, "short");
        assert_eq!(lines[2].1, "y".repeat(MAX_LOG_LINE));
        let third = &lines[3].1;
        assert!(third.len() <= MAX_LOG_LINE);
        assert!(
            !third.contains('\u{FFFD}'),
            "a cut character is dropped whole"
        );
        let head = third.split(" … [").next().unwrap();
        assert!(head.starts_with("aéé") && head.ends_with('é'));
        assert!(third.ends_with(&format!("truncated: {} bytes; {full}", accents.len())));
        let last = &lines[4].1;
        assert!(last.len() <= MAX_LOG_LINE);
        assert!(last.contains('\u{FFFD}'));
        assert!(last.ends_with(&format!("truncated: 3000000 bytes; {full}")));
    }
}
