//! The process executor: runs a task's script as a child process.
//!
//! The script runs in its own process group, so a timeout or a cancel signals everything it
//! started (a `sleep`, a package manager …), not just the shell. Its output is read line by line
//! from both streams at once and handed to the [`ExecSink`].

use super::{ExecEnv, ExecOutcome, ExecSink, Executor};
use crate::model::{LogStream, TaskState};
use crate::transport::TaskSpec;
use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// How long to keep reading output after the script exited, for pipes that its own children
/// (daemons it started) still hold open.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);

/// How often to retry a spawn that fails with `ETXTBSY` (another thread's fork briefly held
/// the freshly written script open for writing).
const SPAWN_RETRIES: u32 = 5;

/// Runs scripts as child processes: `<script> <command>` in the unit directory, with the
/// prepared environment, stdin closed and stdout/stderr captured line by line.
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

#[async_trait]
impl Executor for ProcessExecutor {
    async fn run(
        &self,
        spec: &TaskSpec,
        env: &ExecEnv,
        sink: &dyn ExecSink,
        cancel: watch::Receiver<bool>,
    ) -> ExecOutcome {
        let mut child = match spawn(spec, env).await {
            Ok(child) => child,
            Err(e) => {
                return ExecOutcome {
                    state: TaskState::Failed,
                    exit_code: None,
                    pid: None,
                    message: Some(format!("cannot run script {}: {e}", env.script.display())),
                };
            }
        };
        let pid = child.id();
        if let Some(pid) = pid {
            sink.started(pid);
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let pump = async {
            tokio::join!(
                pump(stdout, LogStream::Stdout, sink),
                pump(stderr, LogStream::Stderr, sink)
            )
        };
        tokio::pin!(pump);
        let supervise = supervise(&mut child, pid, spec.timeout, env.grace, cancel);
        tokio::pin!(supervise);

        let mut drained = false;
        let (status, ending) = loop {
            tokio::select! {
                biased;
                done = &mut supervise => break done,
                _ = &mut pump, if !drained => drained = true,
            }
        };
        if !drained {
            // Grandchildren may keep the pipes open forever: read what is there, then stop.
            let _ = tokio::time::timeout(DRAIN_LIMIT, &mut pump).await;
        }
        outcome(status, ending, pid, spec.timeout, env.grace)
    }
}

/// Starts the script, retrying briefly on `ETXTBSY`.
async fn spawn(spec: &TaskSpec, env: &ExecEnv) -> std::io::Result<Child> {
    let mut attempt = 0;
    loop {
        let mut cmd = Command::new(&env.script);
        cmd.arg(&spec.command)
            .current_dir(&env.unit_dir)
            .envs(env.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && attempt < SPAWN_RETRIES => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

/// Reads `stream` line by line into the sink until it closes (or fails).
async fn pump<R: AsyncRead + Unpin>(reader: Option<R>, stream: LogStream, sink: &dyn ExecSink) {
    let Some(reader) = reader else { return };
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                sink.line(stream, String::from_utf8_lossy(&buf).into_owned());
            }
        }
    }
}

/// Waits for the child, enforcing the timeout and the cancel: SIGTERM to its group, then
/// SIGKILL after the grace period. Always reaps the child.
async fn supervise(
    child: &mut Child,
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

/// Turns how the child ended into an [`ExecOutcome`].
fn outcome(
    status: std::io::Result<ExitStatus>,
    ending: Ending,
    pid: Option<u32>,
    timeout: Duration,
    grace: Duration,
) -> ExecOutcome {
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            return ExecOutcome {
                state: TaskState::Failed,
                exit_code: None,
                pid,
                message: Some(format!("cannot wait for the script: {e}")),
            };
        }
    };
    let exit_code = status.code();
    let died_of = status.signal().map(signal_name);
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
        Ending::Natural => match (exit_code, died_of) {
            (Some(0), _) => (TaskState::Succeeded, None),
            (Some(code), _) => (
                TaskState::Failed,
                Some(format!("the script exited with code {code}")),
            ),
            (None, Some(sig)) => (
                TaskState::Failed,
                Some(format!("the script was killed by signal {sig}")),
            ),
            (None, None) => (
                TaskState::Failed,
                Some(format!("the script ended abnormally ({status})")),
            ),
        },
    };
    ExecOutcome {
        state,
        exit_code,
        pid,
        message,
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

    #[test]
    fn outcomes_name_what_happened() {
        let exited = |code: i32| Ok(ExitStatus::from_raw(code << 8));
        let signaled = |sig: i32| Ok(ExitStatus::from_raw(sig));
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
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }
}
