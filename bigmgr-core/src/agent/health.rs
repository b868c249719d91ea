//! Unit health: runs the stack's `status` command for every unit the agent knows (see
//! [`UnitRecord`](super::UnitRecord)) and reports each one's health in the next heartbeat.
//!
//! The records are the `<root>/units/<cluster>/<service>/<component>.unit.json` files. A unit is
//! checked if its component defines a `status` command and its unit directory still exists;
//! a record that does not parse is skipped with a warning. Up to [`PARALLEL`] checks run at a
//! time.
//!
//! `<script> status` runs like a task's script: in the unit directory, with the record's
//! environment on top of the agent's, stdin closed, in its own process group. A check that
//! outlives its timeout gets its whole group killed with SIGKILL (a status check changes
//! nothing, so there is nothing to let it finish); so does whatever a check leaves behind in
//! its group when it exits, or when the checking is dropped half-way.

use super::UnitRecord;
use crate::model::{UnitHealth, now_ms};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

/// How many `status` commands run at once.
const PARALLEL: usize = 8;

/// How long to keep reading output after `status` exited, for pipes that something it started
/// still holds open.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);

/// The longest message kept from a line of output, in bytes.
const MAX_LINE: usize = 1024;

/// How often to retry a spawn that fails with `ETXTBSY` (another thread's fork briefly held
/// a freshly written script open for writing).
const SPAWN_RETRIES: u32 = 5;

/// The suffix of unit record files.
const RECORD_SUFFIX: &str = ".unit.json";

/// Runs `<script> status` for every unit recorded under `root` whose component defines a
/// `status` command, concurrently, each bounded by `timeout`.
///
/// Returns one [`UnitHealth`] per unit checked, sorted by cluster, service and component.
/// Healthy means `status` exited 0; the message is its last non-empty line of output (stdout,
/// else stderr), or why it could not run or did not finish.
pub async fn check_units(root: &Path, timeout: Duration) -> Vec<UnitHealth> {
    let records = unit_records(root).await;
    check_records(records.into_iter().filter(|r| r.status).collect(), timeout).await
}

/// Every unit record under `root` whose unit directory exists.
pub async fn unit_records(root: &Path) -> Vec<UnitRecord> {
    let units = root.join("units");
    match tokio::task::spawn_blocking(move || read_records(&units)).await {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the unit records");
            Vec::new()
        }
    }
}

/// Runs `status` of each of `records` (see [`check_units`]).
pub async fn check_records(records: Vec<UnitRecord>, timeout: Duration) -> Vec<UnitHealth> {
    let mut todo = records.into_iter();
    let mut running = JoinSet::new();
    let mut health = Vec::new();
    loop {
        for record in todo.by_ref().take(PARALLEL - running.len()) {
            running.spawn(check(record, timeout));
        }
        match running.join_next().await {
            Some(Ok(h)) => health.push(h),
            Some(Err(e)) => tracing::warn!(error = %e, "a unit's status check failed"),
            None => break,
        }
    }
    health.sort_by(|a, b| {
        (&a.cluster, &a.service, &a.component).cmp(&(&b.cluster, &b.service, &b.component))
    });
    health
}

/// The records under `units` whose unit directory exists.
fn read_records(units: &Path) -> Vec<UnitRecord> {
    let mut records = Vec::new();
    for cluster in dir_entries(units).into_iter().filter(|p| p.is_dir()) {
        for service in dir_entries(&cluster).into_iter().filter(|p| p.is_dir()) {
            for file in dir_entries(&service) {
                let is_record = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(RECORD_SUFFIX));
                if !is_record || !file.is_file() {
                    continue;
                }
                if let Some(record) = read_record(&file) {
                    if record.unit_dir.is_dir() {
                        records.push(record);
                    } else {
                        tracing::debug!(
                            record = %file.display(), unit_dir = %record.unit_dir.display(),
                            "not checking a unit whose directory is gone"
                        );
                    }
                }
            }
        }
    }
    records
}

/// One unit record, or `None` (with a warning) if it cannot be read or parsed.
fn read_record(file: &Path) -> Option<UnitRecord> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        // Deleted since the listing: its unit was just removed.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(record = %file.display(), error = %e, "cannot read a unit record");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::warn!(record = %file.display(), error = %e, "skipping a malformed unit record");
            None
        }
    }
}

/// The paths in `dir`; none (with a warning, unless it is missing) if it cannot be listed.
fn dir_entries(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot list unit records");
            Vec::new()
        }
    }
}

/// Checks one unit.
async fn check(record: UnitRecord, timeout: Duration) -> UnitHealth {
    let (exit_code, message) = run_command(&record, "status", timeout, Line::Last).await;
    UnitHealth {
        cluster: record.cluster,
        service: record.service,
        component: record.component,
        healthy: exit_code == Some(0),
        exit_code,
        message,
        checked_at: now_ms(),
    }
}

/// Which line of its output a command's message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// The first non-blank line (a script alert's text).
    First,
    /// The last non-blank line (`status`).
    Last,
}

/// Runs `<script> <command>` for the unit; returns its exit code (if it exited) and the
/// message: the `line` of its output (stdout, else stderr), or why it did not finish.
pub(super) async fn run_command(
    record: &UnitRecord,
    command: &str,
    timeout: Duration,
    line: Line,
) -> (Option<i32>, String) {
    let script = &record.script;
    match tokio::fs::metadata(script).await {
        Ok(m) if m.is_file() => {}
        Ok(_) => return (None, format!("script {} is not a file", script.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (None, format!("script {} is missing", script.display()));
        }
        Err(e) => {
            return (
                None,
                format!("cannot read script {}: {e}", script.display()),
            );
        }
    }
    let mut child = match spawn(record, command).await {
        Ok(child) => child,
        Err(e) => {
            return (
                None,
                format!("cannot run {} {command}: {e}", script.display()),
            );
        }
    };
    // Declared after the child, so dropped before it: the group is killed on every way out.
    let group = Group(
        child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw),
    );

    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let (mut out_line, mut err_line) = (String::new(), String::new());
    let status = {
        let output = async {
            tokio::join!(
                read_line(stdout, line, &mut out_line),
                read_line(stderr, line, &mut err_line)
            )
        };
        tokio::pin!(output);
        let expired = tokio::time::sleep(timeout);
        tokio::pin!(expired);
        let mut drained = false;
        let status = loop {
            tokio::select! {
                status = child.wait() => break Some(status),
                _ = &mut output, if !drained => drained = true,
                () = &mut expired => break None,
            }
        };
        if status.is_some() && !drained {
            // Something `status` started may hold its pipes open: read what is there, then stop.
            let _ = tokio::time::timeout(DRAIN_LIMIT, &mut output).await;
        }
        status
    };

    let Some(status) = status else {
        group.kill();
        // Reap it; the kill cannot be ignored, so this returns at once.
        let _ = child.wait().await;
        return (
            None,
            format!("`{command}` timed out after {timeout:?}; its processes were killed"),
        );
    };
    let status = match status {
        Ok(status) => status,
        Err(e) => return (None, format!("cannot wait for `{command}`: {e}")),
    };
    let code = status.code();
    let line = if out_line.is_empty() {
        err_line
    } else {
        out_line
    };
    let message = if !line.is_empty() {
        line
    } else if let Some(code) = code {
        format!("`{command}` exited with code {code}")
    } else if let Some(sig) = status.signal() {
        let name = Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.to_string());
        format!("`{command}` was killed by signal {name}")
    } else {
        format!("`{command}` ended abnormally ({status})")
    };
    (code, message)
}

/// Starts `<script> <command>` in the unit directory, retrying briefly on `ETXTBSY`.
async fn spawn(record: &UnitRecord, command: &str) -> std::io::Result<Child> {
    let mut attempt = 0;
    loop {
        let mut cmd = Command::new(&record.script);
        cmd.arg(command)
            .current_dir(&record.unit_dir)
            .envs(record.env.iter().map(|(k, v)| (k, v)))
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

/// Reads `reader` to its end, keeping its first or last non-blank line (trimmed, at most
/// [`MAX_LINE`] bytes) in `kept` as it goes (so what was read counts even if the reading is
/// given up half-way).
async fn read_line<R: AsyncRead + Unpin>(reader: Option<R>, which: Line, kept: &mut String) {
    let Some(mut reader) = reader else { return };
    let mut buf = vec![0; 4096];
    let mut line = Vec::new();
    let keep = |line: &mut Vec<u8>, kept: &mut String| {
        if which == Line::Last || kept.is_empty() {
            keep_if_not_blank(line, kept);
        }
        line.clear();
    };
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for piece in buf[..n].split_inclusive(|b| *b == b'\n') {
            let (text, ends) = match piece.strip_suffix(b"\n") {
                Some(text) => (text, true),
                None => (piece, false),
            };
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&text[..text.len().min(room)]);
            if ends {
                keep(&mut line, kept);
            }
        }
    }
    keep(&mut line, kept);
}

/// Makes `line` the last line if it is not blank, and empties it.
fn keep_if_not_blank(line: &mut Vec<u8>, last: &mut String) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if !text.is_empty() {
        *last = text.to_owned();
    }
    line.clear();
}

/// The process group of a running `status`, killed when this is dropped.
struct Group(Option<Pid>);

impl Group {
    /// Sends SIGKILL to the group; a group that is already gone is fine.
    fn kill(&self) {
        let Some(pid) = self.0 else { return };
        match killpg(pid, Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                tracing::warn!(pid = pid.as_raw(), error = %e, "cannot kill a status check's process group")
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    /// Records a unit `cluster/service/component` under `root` whose script is `body` (after a
    /// `#!/bin/sh` line); returns its unit directory.
    fn unit(root: &Path, name: &str, body: &str, status: bool) -> PathBuf {
        let [cluster, service, component]: [&str; 3] =
            name.split('/').collect::<Vec<_>>().try_into().unwrap();
        let scripts = root.join("scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        let script = scripts.join(format!("{cluster}-{service}-{component}.sh"));
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let service_dir = root.join("units").join(cluster).join(service);
        let unit_dir = service_dir.join(component);
        std::fs::create_dir_all(&unit_dir).unwrap();
        let record = UnitRecord {
            cluster: cluster.to_owned(),
            service: service.to_owned(),
            service_def: service.to_owned(),
            component: component.to_owned(),
            script,
            unit_dir: unit_dir.clone(),
            env: vec![("BIGMGR_COMPONENT".to_owned(), component.to_owned())],
            status,
            checks: Vec::new(),
        };
        std::fs::write(
            service_dir.join(format!("{component}{RECORD_SUFFIX}")),
            serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
        unit_dir
    }

    /// A fresh root holding the one unit `c1/zk/server`, whose script is `body`: the root (keep
    /// it while the test runs) and the unit directory.
    fn server_unit(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let unit_dir = unit(dir.path(), "c1/zk/server", body, true);
        (dir, unit_dir)
    }

    /// Checks the units under `root` with `timeout`, asserting that this took less than `limit`.
    async fn check_units_within(
        root: &Path,
        timeout: Duration,
        limit: Duration,
    ) -> Vec<UnitHealth> {
        let started = Instant::now();
        let health = check_units(root, timeout).await;
        let took = started.elapsed();
        assert!(took < limit, "took {took:?}, more than {limit:?}");
        health
    }

    /// Waits until every process of `pids` is gone: SIGKILL is asynchronous, so this allows a
    /// moment (two seconds) before it fails.
    fn wait_gone(pids: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !pids.iter().all(|p| gone(p)) {
            assert!(Instant::now() < deadline, "still running: {pids:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is gone (or a zombie nobody reaped yet).
    fn gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    #[tokio::test]
    async fn running_unit_is_healthy_with_its_last_line() {
        let (dir, unit_dir) = server_unit(
            "touch checked\necho 'starting check' >&2\necho \"$1 of $BIGMGR_COMPONENT\"\necho 'running (pid 42)'\necho",
        );
        let health = check_units(dir.path(), Duration::from_secs(10)).await;
        assert_eq!(health.len(), 1, "{health:?}");
        let h = &health[0];
        assert_eq!(
            (h.cluster.as_str(), h.service.as_str(), h.component.as_str()),
            ("c1", "zk", "server")
        );
        assert!(h.healthy, "{h:?}");
        assert_eq!(h.exit_code, Some(0));
        assert_eq!(h.message, "running (pid 42)");
        assert!(h.checked_at > 0);
        // It ran in the unit directory.
        assert!(unit_dir.join("checked").exists());
    }

    #[tokio::test]
    async fn argument_and_environment_reach_the_script() {
        let (dir, _) = server_unit("echo \"$1 of $BIGMGR_COMPONENT\"");
        let health = check_units(dir.path(), Duration::from_secs(10)).await;
        assert_eq!(health[0].message, "status of server");
    }

    #[tokio::test]
    async fn stopped_unit_is_unhealthy_with_its_exit_code() {
        let (dir, _) = server_unit("echo 'zookeeper is not running' >&2\nexit 3");
        unit(dir.path(), "c1/zk/client", "exit 4", true);
        let health = check_units(dir.path(), Duration::from_secs(10)).await;
        let messages: Vec<_> = health
            .iter()
            .map(|h| {
                (
                    h.component.as_str(),
                    h.healthy,
                    h.exit_code,
                    h.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            messages,
            vec![
                ("client", false, Some(4), "`status` exited with code 4"),
                ("server", false, Some(3), "zookeeper is not running"),
            ]
        );
    }

    #[tokio::test]
    async fn hung_status_is_killed_after_the_timeout() {
        let (dir, unit_dir) = server_unit("echo $$ > pids\nsleep 30 &\necho $! >> pids\nwait");
        let health =
            check_units_within(dir.path(), Duration::from_secs(1), Duration::from_secs(5)).await;
        let h = &health[0];
        assert!(!h.healthy);
        assert_eq!(h.exit_code, None);
        assert!(h.message.contains("timed out after 1s"), "{h:?}");
        let pids = std::fs::read_to_string(unit_dir.join("pids")).unwrap();
        let pids: Vec<&str> = pids.lines().collect();
        assert_eq!(pids.len(), 2, "{pids:?}");
        // The shell and the sleep it started are both gone.
        wait_gone(&pids);
    }

    #[tokio::test]
    async fn what_status_leaves_behind_is_killed() {
        let (dir, unit_dir) = server_unit("sleep 30 &\necho $! > pids\necho up");
        // The sleep holds the output pipes open: not waited for beyond the drain limit.
        let health =
            check_units_within(dir.path(), Duration::from_secs(10), Duration::from_secs(3)).await;
        assert_eq!(
            (health[0].healthy, health[0].message.as_str()),
            (true, "up")
        );
        let pid = std::fs::read_to_string(unit_dir.join("pids")).unwrap();
        wait_gone(&[pid.trim()]);
    }

    #[tokio::test]
    async fn units_not_to_check_are_skipped() {
        let (dir, _) = server_unit("echo ok");
        // No status command: never run.
        let client = unit(dir.path(), "c1/zk/client", "touch ran", false);
        // Its directory was removed.
        let gone_dir = unit(dir.path(), "c1/kafka/broker", "echo up", true);
        std::fs::remove_dir_all(&gone_dir).unwrap();
        // Malformed records.
        let service_dir = dir.path().join("units/c1/zk");
        std::fs::write(service_dir.join("bad.unit.json"), "{\"cluster\":").unwrap();
        std::fs::write(service_dir.join("other.unit.json"), "[]").unwrap();
        // Not a record at all.
        std::fs::write(service_dir.join("notes.txt"), "hello").unwrap();

        let health = check_units(dir.path(), Duration::from_secs(10)).await;
        let units: Vec<_> = health
            .iter()
            .map(|h| format!("{}/{}/{}", h.cluster, h.service, h.component))
            .collect();
        assert_eq!(units, vec!["c1/zk/server"]);
        assert!(!client.join("ran").exists());
    }

    #[tokio::test]
    async fn missing_script_is_reported() {
        let (dir, _) = server_unit("echo ok");
        let script = dir.path().join("scripts/c1-zk-server.sh");
        std::fs::remove_file(&script).unwrap();
        let health = check_units(dir.path(), Duration::from_secs(10)).await;
        let h = &health[0];
        assert!(!h.healthy);
        assert_eq!(h.exit_code, None);
        assert_eq!(h.message, format!("script {} is missing", script.display()));
    }

    #[tokio::test]
    async fn no_units_no_health() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            check_units(dir.path(), Duration::from_secs(1))
                .await
                .is_empty()
        );
    }

    #[tokio::test]
    async fn checks_run_concurrently_but_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..(2 * PARALLEL) {
            unit(
                dir.path(),
                &format!("c1/s{i:02}/comp"),
                "sleep 0.5\necho up",
                true,
            );
        }
        let started = Instant::now();
        let health = check_units(dir.path(), Duration::from_secs(10)).await;
        let took = started.elapsed();
        assert_eq!(health.len(), 2 * PARALLEL);
        assert!(health.iter().all(|h| h.healthy && h.message == "up"));
        // Sorted by unit.
        assert!(health.windows(2).all(|w| w[0].service < w[1].service));
        // Two rounds of PARALLEL: at least two sleeps long, far less than one after another.
        assert!(took >= Duration::from_millis(1000), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[tokio::test]
    async fn read_line_keeps_the_first_or_last_non_blank_line_bounded() {
        let mut last = String::new();
        let input: &[u8] = b"\n first \n  second  \r\n\n   \n";
        read_line(Some(input), Line::Last, &mut last).await;
        assert_eq!(last, "second");
        let mut first = String::new();
        read_line(Some(input), Line::First, &mut first).await;
        assert_eq!(first, "first");
        let long = vec![b'x'; 3 * MAX_LINE];
        let mut last = String::new();
        read_line(Some(&long[..]), Line::Last, &mut last).await;
        assert_eq!(last.len(), MAX_LINE);
        let mut last = String::new();
        read_line(Some(&b"no newline at the end"[..]), Line::First, &mut last).await;
        assert_eq!(last, "no newline at the end");
    }
}
