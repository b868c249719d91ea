//! A run's supervisor: a forked copy of the agent that starts the task's script, waits for it
//! and records its exit status, outliving the agent (a SIGKILL of it included).
//!
//! The supervisor is the only process a task costs besides the script itself, and it execs
//! nothing: the agent forks it, it forks the script's process, which execs the script, and it
//! waits. Everything the two children need (paths, arguments, the environment, open files) is
//! prepared before the first fork, because the child of a process that may have other threads
//! may only make async-signal-safe calls: no allocation, no locks. The supervisor:
//! - leads a process group of its own, which the script and everything it starts inherit, so a
//!   timeout or a cancel signals them all;
//! - has stdin from `/dev/null` and stdout and stderr on the run's log files, for the script;
//! - closes every other descriptor the agent had open (its connection to the server and its
//!   lock among them), so a supervisor never keeps a dead agent's socket or lock alive;
//! - resets every signal to its default and ignores SIGTERM, SIGINT and SIGHUP, which the
//!   script gets as usual, so that it outlives the script and records its status;
//! - is named `bigmgr-task` (in `ps` and `/proc/<pid>/comm`).
//!
//! The status is written to the task directory's `exit` file as a decimal number and a newline
//! (`128 + n` when signal n killed the script, as a shell reports it), and the supervisor exits
//! with the same number. A status counts only once its line is complete, so a file read
//! mid-write, or left empty by a supervisor killed mid-write, is no status at all.
//!
//! The supervisor's memory is a copy of the agent's, its key among it. That gives nobody
//! anything new: only root and the agent's own user may read another process's memory, and
//! both can read the key's file anyway; the supervisor runs no code but this module's, and the
//! script runs in a process of its own, exec'd, with none of it.
//!
//! The agent waits for the supervisor, its child, through SIGCHLD and `waitpid` on its pid
//! alone (tokio's own children are reaped by tokio, and nothing reaps any pid it did not start).

use nix::libc;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// How long [`Supervisor::wait`] waits for a SIGCHLD before looking anyway.
const WAIT_FALLBACK: Duration = Duration::from_secs(1);

/// The shell a script without a `#!` line runs under, as a shell would run it.
const SHELL: &str = "/bin/sh";

/// The name the supervisor takes (at most 15 bytes, NUL-terminated).
const NAME: &[u8] = b"bigmgr-task\0";

/// What one run starts: `<script> <command>` in `cwd` with `env` on top of the agent's own
/// environment, stdin from `/dev/null`, stdout and stderr on the given files, and its status
/// recorded in `exit_file`.
pub(super) struct Launch<'a> {
    /// The script (executable; a file without `#!` runs under `/bin/sh`).
    pub script: &'a Path,
    /// Its one argument: the stack command.
    pub command: &'a str,
    /// The working directory.
    pub cwd: &'a Path,
    /// Variables set on top of the agent's environment.
    pub env: &'a [(String, String)],
    /// Standard output.
    pub stdout: File,
    /// Standard error.
    pub stderr: File,
    /// Where the supervisor writes the status.
    pub exit_file: &'a Path,
}

/// A NUL-terminated array of C strings, as `execve` takes it, its strings in one buffer: one
/// allocation instead of one per string, and the fewest heap pages written (and so copied, while
/// a supervisor shares them) when it is freed after the fork.
#[derive(Debug)]
struct CArray {
    _bytes: Vec<u8>,
    ptrs: Vec<*const libc::c_char>,
}

impl CArray {
    fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

/// Builds a [`CArray`] string by string.
#[derive(Default)]
struct CArrayBuilder {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl CArrayBuilder {
    /// Appends one string made of `parts`; the error names `what` if one holds a NUL byte.
    fn push(&mut self, what: &str, parts: &[&[u8]]) -> std::io::Result<()> {
        if parts.iter().any(|p| p.contains(&0)) {
            return Err(nul_error(what));
        }
        self.starts.push(self.bytes.len());
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        self.bytes.push(0);
        Ok(())
    }

    fn build(self) -> CArray {
        // Pointers into `bytes`, which the array keeps and never changes (moving the vector
        // does not move its buffer).
        let mut ptrs: Vec<*const libc::c_char> = self
            .starts
            .iter()
            .map(|&i| self.bytes[i..].as_ptr().cast())
            .collect();
        ptrs.push(std::ptr::null());
        CArray {
            _bytes: self.bytes,
            ptrs,
        }
    }
}

/// The error of a value that cannot be a C string: `what` holds a NUL byte.
fn nul_error(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{what} holds a NUL byte"),
    )
}

/// A C string of `s`, or an error naming what held a NUL byte.
fn c_string(what: &str, s: &OsStr) -> std::io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| nul_error(what))
}

/// The environment the script gets: the agent's own, with `extra` set on top (a later value of
/// the same name wins), as `NAME=value` strings.
fn environment(extra: &[(String, String)]) -> std::io::Result<CArray> {
    let mut env = CArrayBuilder::default();
    for (k, v) in std::env::vars_os() {
        if !extra
            .iter()
            .any(|(name, _)| k.as_bytes() == name.as_bytes())
        {
            env.push(
                "an environment variable",
                &[k.as_bytes(), b"=", v.as_bytes()],
            )?;
        }
    }
    for (i, (k, v)) in extra.iter().enumerate() {
        if k.is_empty() || k.contains('=') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("environment variable name {k:?} is empty or holds '='"),
            ));
        }
        if extra[i + 1..].iter().all(|(later, _)| later != k) {
            env.push(
                "an environment variable",
                &[k.as_bytes(), b"=", v.as_bytes()],
            )?;
        }
    }
    Ok(env.build())
}

/// `strings` as a [`CArray`]; the error names `what` if one holds a NUL byte.
fn c_array(what: &str, strings: &[&[u8]]) -> std::io::Result<CArray> {
    let mut array = CArrayBuilder::default();
    for s in strings {
        array.push(what, &[s])?;
    }
    Ok(array.build())
}

/// Everything prepared for the children (see the module documentation).
struct Prepared {
    script: CString,
    argv: CArray,
    sh: CString,
    sh_argv: CArray,
    envp: CArray,
    cwd: CString,
    exit_file: CString,
    stdin: File,
    stdout: File,
    stderr: File,
}

impl Prepared {
    fn new(launch: Launch<'_>) -> std::io::Result<Prepared> {
        let script = c_string("the script's path", launch.script.as_os_str())?;
        let command = launch.command.as_bytes();
        let sh = CString::new(SHELL).expect("no NUL");
        Ok(Prepared {
            argv: c_array("the command", &[script.as_bytes(), command])?,
            sh_argv: c_array("the command", &[sh.as_bytes(), script.as_bytes(), command])?,
            script,
            sh,
            envp: environment(launch.env)?,
            cwd: c_string("the unit directory", launch.cwd.as_os_str())?,
            exit_file: c_string("the exit file's path", launch.exit_file.as_os_str())?,
            stdin: File::open("/dev/null")?,
            stdout: launch.stdout,
            stderr: launch.stderr,
        })
    }
}

/// The supervisor of one run, as its parent (the agent) sees it.
#[derive(Debug)]
pub(super) struct Supervisor {
    pid: libc::pid_t,
    /// Wakes [`Supervisor::wait`] when a child of the agent ends; registered before the fork, so
    /// the supervisor's end cannot be missed. `None` once reaped.
    sigchld: Option<Signal>,
    status: Option<ExitStatus>,
}

impl Supervisor {
    /// Forks the supervisor for `launch` (see the module documentation).
    pub(super) fn spawn(launch: Launch<'_>) -> std::io::Result<Supervisor> {
        let prepared = Prepared::new(launch)?;
        let sigchld = signal(SignalKind::child())?;
        // Every signal stays blocked across the fork, so none reaches the child while it still
        // has the agent's handlers; the children unblock them once their own are set.
        let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises `all`; pthread_sigmask reads it and fills `old`.
        let pid = unsafe {
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
            let pid = libc::fork();
            if pid == 0 {
                supervise(&prepared);
            }
            let fork_error = std::io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut());
            if pid < 0 {
                return Err(fork_error);
            }
            pid
        };
        Ok(Supervisor {
            pid,
            sigchld: Some(sigchld),
            status: None,
        })
    }

    /// The supervisor's pid, which is also its process group's id.
    pub(super) fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Its status once it has ended, without waiting; reaps it.
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = reap(self.pid)?;
            if self.status.is_some() {
                self.sigchld = None;
            }
        }
        Ok(self.status)
    }

    /// Waits for the supervisor to end and reaps it. Cancel-safe: a status read is kept.
    pub(super) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if let Some(sigchld) = self.sigchld.as_mut() {
                // A closed signal stream (the runtime is going) leaves the fallback.
                let _ = tokio::time::timeout(WAIT_FALLBACK, sigchld.recv()).await;
            }
        }
    }
}

impl Drop for Supervisor {
    /// A supervisor dropped before it ended (the agent stopping mid-run) is reaped when it ends,
    /// so it does not stay a zombie while the agent lives; it is not signalled.
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(None))
            && let (Ok(runtime), Some(mut sigchld)) =
                (tokio::runtime::Handle::try_current(), self.sigchld.take())
        {
            let pid = self.pid;
            runtime.spawn(async move {
                while matches!(reap(pid), Ok(None)) {
                    let _ = tokio::time::timeout(WAIT_FALLBACK, sigchld.recv()).await;
                }
            });
        }
    }
}

/// The status of child `pid` if it has ended (and reaps it), without waiting.
fn reap(pid: libc::pid_t) -> std::io::Result<Option<ExitStatus>> {
    let mut raw = 0;
    // SAFETY: waitpid on our own child's pid, writing into a local.
    match unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) } {
        0 => Ok(None),
        -1 => {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                Ok(None)
            } else {
                Err(e)
            }
        }
        _ => Ok(Some(ExitStatus::from_raw(raw))),
    }
}

/// Writes `message` to standard error (the run's `stderr.log`). Async-signal-safe.
fn say(message: &[u8]) {
    // SAFETY: write(2) from a live buffer.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
    }
}

/// The supervisor, in the forked child. Only async-signal-safe calls (see the module
/// documentation); never returns.
///
/// # Safety
/// Only called in the child of `fork`, with every signal blocked.
unsafe fn supervise(p: &Prepared) -> ! {
    unsafe {
        libc::prctl(libc::PR_SET_NAME, NAME.as_ptr());
        libc::setpgid(0, 0);
        for sig in 1..=libc::SIGRTMAX() {
            disposition(sig, libc::SIG_DFL);
        }
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            disposition(sig, libc::SIG_IGN);
        }
        if libc::dup2(p.stdin.as_raw_fd(), 0) < 0
            || libc::dup2(p.stdout.as_raw_fd(), 1) < 0
            || libc::dup2(p.stderr.as_raw_fd(), 2) < 0
        {
            libc::_exit(126);
        }
        close_from(3);
        if libc::chdir(p.cwd.as_ptr()) != 0 {
            say(b"bigmgr: cannot enter the unit directory\n");
            libc::_exit(126);
        }
        let script = libc::fork();
        if script == 0 {
            run_script(p);
        }
        unblock_all();
        if script < 0 {
            say(b"bigmgr: cannot start the script: fork failed\n");
            libc::_exit(126);
        }
        let mut raw = 0;
        while libc::waitpid(script, &mut raw, 0) < 0 {
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(126);
            }
        }
        let code = if libc::WIFEXITED(raw) {
            libc::WEXITSTATUS(raw)
        } else if libc::WIFSIGNALED(raw) {
            128 + libc::WTERMSIG(raw)
        } else {
            126
        };
        record(&p.exit_file, code);
        libc::_exit(code);
    }
}

/// The kernel's `struct sigaction` on x86_64 and aarch64: handler, flags, restorer, mask.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Sets signal `sig` to `SIG_DFL` or `SIG_IGN` with the system call itself: glibc's `sigaction`
/// refuses its own two signals (32 and 33), which an agent's parent may have left ignored and
/// which the script would otherwise inherit so. Async-signal-safe; errors (SIGKILL, SIGSTOP) are
/// of no matter.
///
/// # Safety
/// Only in the supervisor and the script's process, before the exec.
unsafe fn disposition(sig: libc::c_int, handler: libc::sighandler_t) {
    let action = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &raw const action,
            std::ptr::null::<KernelSigaction>(),
            std::mem::size_of::<u64>(),
        );
    }
}

/// Unblocks every signal (the agent blocked them all across the fork). Async-signal-safe.
///
/// # Safety
/// Only in the supervisor and the script's process.
unsafe fn unblock_all() {
    unsafe {
        let mut none = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), std::ptr::null_mut());
    }
}

/// Closes every descriptor from `first` on. Async-signal-safe.
///
/// # Safety
/// Only in the supervisor, which needs no descriptor above 2.
unsafe fn close_from(first: libc::c_int) {
    unsafe {
        if libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) == 0 {
            return;
        }
        // Kernels before 5.9: close them one by one, up to the limit on open files.
        let mut limit = std::mem::MaybeUninit::<libc::rlimit>::uninit();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, limit.as_mut_ptr()) == 0 {
            limit.assume_init().rlim_cur.min(1 << 20)
        } else {
            1024
        };
        let max = libc::c_int::try_from(max).unwrap_or(1024);
        for fd in first..max {
            libc::close(fd);
        }
    }
}

/// The script's own process: default signals, nothing blocked, then the script (or `/bin/sh`
/// with it when it has no `#!` line). Never returns.
///
/// # Safety
/// Only in the child the supervisor forks.
unsafe fn run_script(p: &Prepared) -> ! {
    unsafe {
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            disposition(sig, libc::SIG_DFL);
        }
        unblock_all();
        libc::execve(p.script.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        let mut errno = *libc::__errno_location();
        if errno == libc::ENOEXEC {
            libc::execve(p.sh.as_ptr(), p.sh_argv.as_ptr(), p.envp.as_ptr());
            errno = *libc::__errno_location();
        }
        say(b"bigmgr: cannot execute the script\n");
        libc::_exit(if errno == libc::ENOENT { 127 } else { 126 });
    }
}

/// Writes `code` and a newline to `path`. Async-signal-safe: the digits are formatted on the
/// stack.
///
/// # Safety
/// Only in the supervisor.
unsafe fn record(path: &CString, code: libc::c_int) {
    let mut buf = [0u8; 12];
    let mut at = buf.len() - 1;
    buf[at] = b'\n';
    let mut n = code.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        if fd >= 0 {
            libc::write(fd, buf[at..].as_ptr().cast(), buf.len() - at);
            libc::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings a [`CArray`] points at, read back through its pointers.
    fn strings(array: &CArray) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = array.as_ptr();
        // SAFETY: the array ends with a null pointer, and every pointer before it is a C string
        // inside the array's own buffer.
        unsafe {
            while !(*at).is_null() {
                out.push(std::ffi::CStr::from_ptr(*at).to_string_lossy().into_owned());
                at = at.add(1);
            }
        }
        out
    }

    #[test]
    fn the_environment_is_the_agents_with_the_runs_on_top() {
        let path = std::env::var("PATH").expect("the test's PATH");
        let extra = [
            ("PATH".to_owned(), "/run/path".to_owned()),
            ("BIGMGR_X".to_owned(), "first".to_owned()),
            ("BIGMGR_X".to_owned(), "later".to_owned()),
        ];
        let env = strings(&environment(&extra).expect("an environment"));
        assert!(env.contains(&"PATH=/run/path".to_owned()), "{env:?}");
        assert!(!env.contains(&format!("PATH={path}")), "{env:?}");
        assert_eq!(
            env.iter()
                .filter(|e| e.starts_with("BIGMGR_X="))
                .collect::<Vec<_>>(),
            ["BIGMGR_X=later"]
        );
        let unchanged = std::env::vars_os().filter(|(k, _)| k != "PATH").count();
        assert_eq!(env.len(), unchanged + 2, "{env:?}");

        for bad in ["", "A=B"] {
            let err = environment(&[(bad.to_owned(), "x".to_owned())]).unwrap_err();
            assert!(err.to_string().contains("is empty or holds '='"), "{err}");
        }
        let err = environment(&[("A".to_owned(), "a\0b".to_owned())]).unwrap_err();
        assert!(err.to_string().contains("holds a NUL byte"), "{err}");
    }

    #[test]
    fn arguments_keep_their_order() {
        let argv = c_array("the command", &[b"/bin/sh", b"script", b"start"]).expect("argv");
        assert_eq!(strings(&argv), ["/bin/sh", "script", "start"]);
        let err = c_array("the command", &[b"st\0art"]).unwrap_err();
        assert!(
            err.to_string().contains("the command holds a NUL byte"),
            "{err}"
        );
    }
}
