//! Integration tests: agent. Real shell scripts run as real child processes under an [`Agent`]
//! driven through channels, the way a transport drives it. An agent "dies" by having its `run`
//! future aborted: nothing drains, as when the process is killed.

use bigmgr_core::agent::{
    Agent, AgentConfig, ExecEnv, ExecOutcome, ExecSink, Executor, Ledger, NoopExecutor,
    ProcessExecutor, UnitRecord,
};
use bigmgr_core::model::{LogStream, RunId, TaskId, TaskState};
use bigmgr_core::transport::limits::{MAX_LOG_LINE, MAX_RESULT_MESSAGE};
use bigmgr_core::transport::{AgentEvent, FileSpec, TaskResult, TaskSpec, ToAgent};
use bigmgr_test_support::{assert_contains, procs};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Long enough for any single step on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// A test's directory; on drop it SIGKILLs every process still carrying this directory in its
/// environment (scripts and whatever they started), so no test leaves processes behind, even
/// when it fails.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh sandbox and a greeted agent on its root (grace 1 s).
    async fn with_agent() -> (Sandbox, Running) {
        let sandbox = Sandbox::new();
        let agent = Running::greeted(&sandbox.root(), Duration::from_secs(1)).await;
        (sandbox, agent)
    }

    /// A spec of `run` running `script` (30 s at most) with `COUNTER` set to the sandbox's
    /// counter file, where the script counts its runs (see [`Sandbox::runs`]).
    fn counting(&self, run: RunId, script: &str) -> Box<TaskSpec> {
        let mut s = spec(run, script, Duration::from_secs(30));
        let counter = self.path().join("count");
        s.env
            .insert("COUNTER".into(), counter.display().to_string());
        s
    }

    /// How often scripts of [`Sandbox::counting`] specs ran.
    fn runs(&self) -> usize {
        count_lines(&self.path().join("count"))
    }

    /// The agent's root.
    fn root(&self) -> PathBuf {
        self.path().join("agent")
    }

    /// Processes whose environment names this sandbox (every script gets `BIGMGR_ROOT`).
    fn processes(&self) -> Vec<i32> {
        let needle = format!("BIGMGR_ROOT={}\0", self.root().display());
        procs::pids_mentioning("environ", &needle)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for pid in self.processes() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Whether `pid` no longer runs: no such process, or a zombie (this container's init does not
/// reap orphans, so an orphaned, killed `sleep` stays a zombie here; it runs no more).
fn is_gone(pid: i32) -> bool {
    !procs::running(pid)
}

/// The processes of group `pgid` that still run (zombies left out, see [`is_gone`]).
fn group_members(pgid: i32) -> Vec<i32> {
    procs::pids()
        .into_iter()
        .filter(|&pid| procs::running(pid) && procs::process_group(pid) == Some(pgid))
        .collect()
}

/// Waits up to `limit` for `done`.
async fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

/// Waits until `pid` is gone, up to a second (an orphan is reaped asynchronously).
async fn wait_gone(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if is_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    is_gone(pid)
}

/// A script that ignores SIGTERM (and so does its sleep, which inherits that), so only a
/// SIGKILL ends it; its sleep's pid is in `sleep.pid` of its task directory.
const STUBBORN: &str = r#"trap '' TERM
sleep 30 &
echo $! > "$BIGMGR_TASK_DIR/sleep.pid"
echo started
wait
echo survived"#;

fn run_id(task: i64, attempt: u32) -> RunId {
    RunId {
        task: TaskId(task),
        attempt,
    }
}

/// A task spec running `script` (a shell script body) with `command`.
fn spec(run: RunId, script: &str, timeout: Duration) -> Box<TaskSpec> {
    Box::new(TaskSpec {
        timeout,
        ..TaskSpec::example(run, script)
    })
}

/// A running agent and its two channels.
struct Running {
    tx: mpsc::UnboundedSender<ToAgent>,
    rx: mpsc::UnboundedReceiver<AgentEvent>,
    handle: JoinHandle<()>,
}

impl Running {
    async fn start(root: &Path, grace: Duration) -> Running {
        Running::serve(open(root, grace).await)
    }

    fn serve(agent: Agent) -> Running {
        let (tx, inbox) = mpsc::unbounded_channel();
        let (outbox, rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(agent.run(inbox, outbox));
        Running { tx, rx, handle }
    }

    fn send(&self, msg: ToAgent) {
        self.tx.send(msg).expect("agent inbox open");
    }

    async fn next(&mut self) -> AgentEvent {
        tokio::time::timeout(PATIENCE, self.rx.recv())
            .await
            .expect("an event in time")
            .expect("agent outbox open")
    }

    async fn hello(&mut self) -> Vec<(RunId, TaskResult)> {
        match self.next().await {
            AgentEvent::Hello { running, finished } => {
                assert!(running.is_empty(), "{running:?}");
                finished
            }
            other => panic!("expected Hello first, got {other:?}"),
        }
    }

    /// Starts an agent on `root` and reads its Hello.
    async fn greeted(root: &Path, grace: Duration) -> Running {
        let mut agent = Running::start(root, grace).await;
        agent.hello().await;
        agent
    }

    /// Opens an agent with `executor` on `root`, serves it and reads its Hello.
    async fn open_with(root: &Path, executor: Arc<dyn Executor>) -> Running {
        let config = AgentConfig::new("h1", "127.0.0.2", root);
        let agent = Agent::open(config, executor).await.expect("open");
        let mut agent = Running::serve(agent);
        agent.hello().await;
        agent
    }

    /// Delivers `s` (again) and expects its recorded `result` at once, nothing run.
    async fn expect_recorded(&mut self, s: Box<TaskSpec>, result: &TaskResult) {
        let run = s.run;
        self.send(ToAgent::Run(s));
        let recorded = AgentEvent::Finished {
            run,
            result: result.clone(),
        };
        assert_eq!(self.next().await, recorded);
    }

    /// Cancels `run`, whose script traps SIGTERM with `exit 143`: it must end CANCELED with
    /// that exit, well before a SIGKILL would come.
    async fn cancel_trapped(&mut self, run: RunId) -> TaskResult {
        let t0 = Instant::now();
        self.send(ToAgent::Cancel(run));
        let (_, result) = self.until_finished(run).await;
        assert_eq!(result.state, TaskState::Canceled, "{result:?}");
        assert_eq!(result.exit_code, Some(143), "the trap's exit");
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "it took the SIGKILL, not the SIGTERM, to stop: {:?}",
            t0.elapsed()
        );
        result
    }

    /// Collects events until `run` finishes; returns them (the Finished one last) and the result.
    async fn until_finished(&mut self, run: RunId) -> (Vec<AgentEvent>, TaskResult) {
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            events.push(event.clone());
            if let AgentEvent::Finished { run: r, result } = event
                && r == run
            {
                return (events, result);
            }
        }
    }

    /// Waits for a Log line of `run` equal to `line`; returns the events seen until then.
    async fn until_line(&mut self, run: RunId, line: &str) -> Vec<AgentEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            events.push(event.clone());
            match event {
                AgentEvent::Log {
                    run: r, line: l, ..
                } if r == run && l == line => return events,
                AgentEvent::Finished { run: r, result } if r == run => {
                    panic!("{run} finished before printing {line:?}: {result:?} {events:?}")
                }
                _ => {}
            }
        }
    }

    /// The agent dies: its `run` future is dropped mid-flight, nothing drains (its scripts
    /// keep running) and its root's lock is released.
    async fn kill(self) {
        self.handle.abort();
        let err = tokio::time::timeout(PATIENCE, self.handle)
            .await
            .expect("agent task ends in time")
            .expect_err("the agent was still serving");
        assert!(err.is_cancelled(), "{err}");
    }

    /// The Hello of an agent that adopted runs: the runs it follows and the finished ones.
    async fn hello_adopting(&mut self) -> (Vec<RunId>, Vec<(RunId, TaskResult)>) {
        match self.next().await {
            AgentEvent::Hello { running, finished } => (running, finished),
            other => panic!("expected Hello first, got {other:?}"),
        }
    }

    /// Closes the inbox and waits for the agent to drain and stop.
    async fn stop(self) -> mpsc::UnboundedReceiver<AgentEvent> {
        drop(self.tx);
        tokio::time::timeout(PATIENCE, self.handle)
            .await
            .expect("agent stops in time")
            .expect("agent task did not panic");
        self.rx
    }
}

/// Runs `s` on an agent on `root` (with `grace`) until it prints `line`, then kills the agent
/// (its script keeps running); answers the script's pid.
async fn orphan(root: &Path, grace: Duration, s: Box<TaskSpec>, line: &str) -> i32 {
    let run = s.run;
    let mut first = Running::greeted(root, grace).await;
    first.send(ToAgent::Run(s));
    let pid = started_pid(&first.until_line(run, line).await);
    first.kill().await;
    pid
}

/// Opens a process-executing agent on `root` (waiting, within [`PATIENCE`], for its lock).
async fn open(root: &Path, grace: Duration) -> Agent {
    let mut config = AgentConfig::new("h1", "127.0.0.2", root);
    config.grace = grace;
    tokio::time::timeout(PATIENCE, Agent::open(config, Arc::new(ProcessExecutor)))
        .await
        .expect("the root's lock is free in time")
        .expect("open agent")
}

/// The task directory of `run` under the agent root `root`.
fn task_dir(root: &Path, run: RunId) -> PathBuf {
    root.join(format!("tasks/{}.{}", run.task, run.attempt))
}

/// The Log events of `run`: stream, seq and line.
fn logs(events: &[AgentEvent], run: RunId) -> Vec<(LogStream, u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Log {
                run: r,
                stream,
                seq,
                line,
                ..
            } if *r == run => Some((*stream, *seq, line.clone())),
            _ => None,
        })
        .collect()
}

/// The lines of one stream, in order.
fn lines_of(logs: &[(LogStream, u64, String)], stream: LogStream) -> Vec<&str> {
    logs.iter()
        .filter(|(s, _, _)| *s == stream)
        .map(|(_, _, l)| l.as_str())
        .collect()
}

fn started_pid(events: &[AgentEvent]) -> i32 {
    events
        .iter()
        .find_map(|e| match e {
            AgentEvent::Started { pid, .. } => Some(*pid as i32),
            _ => None,
        })
        .expect("a Started event")
}

fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_script_and_everything_it_started() {
    let (sandbox, mut agent) = Sandbox::with_agent().await;
    let run = run_id(1, 1);
    // Ignores SIGTERM (and so does its sleep, which inherits that), so only SIGKILL ends it.
    let script = STUBBORN;
    let t0 = Instant::now();
    agent.send(ToAgent::Run(spec(run, script, Duration::from_secs(1))));
    let (events, result) = agent.until_finished(run).await;
    let elapsed = t0.elapsed();

    assert_eq!(result.state, TaskState::TimedOut, "{result:?}");
    assert!(
        elapsed >= Duration::from_millis(1900),
        "SIGKILL came before timeout + grace: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(3500),
        "took {elapsed:?}, more than timeout + grace + slack"
    );
    assert!(
        result
            .message
            .as_deref()
            .unwrap_or("")
            .contains("timed out")
    );
    let pid = started_pid(&events);
    assert_eq!(result.pid, Some(pid as u32));
    assert!(result.started_at.is_some());
    assert_eq!(
        kill(Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH),
        "the script's process was reaped"
    );
    let sleep_pid: i32 = std::fs::read_to_string(sandbox.root().join("tasks/1.1/sleep.pid"))
        .expect("sleep.pid")
        .trim()
        .parse()
        .expect("a pid");
    assert!(
        wait_gone(sleep_pid).await,
        "the script's sleep {sleep_pid} still runs"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, AgentEvent::Log { line, .. } if line == "survived"))
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_id_delivered_twice_runs_once() {
    let sandbox = Sandbox::new();
    let mut agent = Running::start(&sandbox.root(), Duration::from_secs(1)).await;
    assert!(agent.hello().await.is_empty());
    let run = run_id(2, 1);
    let s = sandbox.counting(
        run,
        r#"echo ran >> "$COUNTER"; echo running; sleep 1; echo done"#,
    );

    agent.send(ToAgent::Run(s.clone()));
    let events = agent.until_line(run, "running").await;
    assert!(
        matches!(events[0], AgentEvent::Received(r) if r == run),
        "{events:?}"
    );
    // Redelivered while it runs: acknowledged again, not run again.
    agent.send(ToAgent::Run(s.clone()));
    let (events, result) = agent.until_finished(run).await;
    assert_eq!(result.state, TaskState::Succeeded, "{result:?}");
    assert_eq!(result.exit_code, Some(0));
    let again: Vec<_> = events
        .iter()
        .filter(|e| !matches!(e, AgentEvent::Log { .. }))
        .collect();
    assert_eq!(
        again,
        vec![
            &AgentEvent::Received(run),
            &AgentEvent::Finished {
                run,
                result: result.clone()
            }
        ]
    );

    // Redelivered after it finished: the recorded result, nothing run.
    agent.expect_recorded(s.clone(), &result).await;
    assert_eq!(sandbox.runs(), 1);

    // And across a restart of the agent on the same root.
    agent.stop().await;
    let mut agent = Running::start(&sandbox.root(), Duration::from_secs(1)).await;
    assert_eq!(agent.hello().await, vec![(run, result.clone())]);
    agent.expect_recorded(s.clone(), &result).await;
    // Once cleaned, the ledger forgets it (a new attempt is the way to run again).
    agent.send(ToAgent::Clean(vec![run]));
    agent.stop().await;
    let mut agent = Running::start(&sandbox.root(), Duration::from_secs(1)).await;
    assert!(agent.hello().await.is_empty());
    agent.stop().await;
    assert_eq!(sandbox.runs(), 1, "the script ran more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_sends_sigterm_and_ends_canceled() {
    let sandbox = Sandbox::new();
    let marker = sandbox.path().join("got-term");
    let mut agent = Running::greeted(&sandbox.root(), Duration::from_secs(5)).await;
    let run = run_id(3, 1);
    let mut s = spec(
        run,
        r#"trap 'echo term > "$MARKER"; exit 143' TERM
echo ready
sleep 30 &
wait"#,
        Duration::from_secs(60),
    );
    s.env.insert("MARKER".into(), marker.display().to_string());
    agent.send(ToAgent::Run(s));
    let pid = started_pid(&agent.until_line(run, "ready").await);
    // An unknown run is ignored.
    agent.send(ToAgent::Cancel(run_id(99, 1)));
    agent.cancel_trapped(run).await;
    assert_eq!(
        std::fs::read_to_string(&marker)
            .expect("the trap ran")
            .trim(),
        "term"
    );
    assert!(wait_gone(pid).await);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_script_reports_its_exit_code_and_stderr() {
    let (_sandbox, mut agent) = Sandbox::with_agent().await;
    let run = run_id(4, 1);
    agent.send(ToAgent::Run(spec(
        run,
        "echo to-stdout\necho 'no such thing' >&2\nexit 1",
        Duration::from_secs(30),
    )));
    let (events, result) = agent.until_finished(run).await;
    assert_eq!(result.state, TaskState::Failed, "{result:?}");
    assert_eq!(result.exit_code, Some(1));
    let logs = logs(&events, run);
    assert!(
        logs.iter()
            .any(|(s, _, l)| *s == LogStream::Stderr && l == "no such thing"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|(s, _, l)| *s == LogStream::Stdout && l == "to-stdout"),
        "{logs:?}"
    );
    let mut seqs: Vec<u64> = logs.iter().map(|(_, s, _)| *s).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![0, 1], "both streams share one count from 0");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_cannot_start_fails_naming_it() {
    let (_sandbox, mut agent) = Sandbox::with_agent().await;
    let run = run_id(5, 1);
    let mut s = spec(run, "", Duration::from_secs(30));
    s.script.content = Arc::from(&b"#!/no/such/interpreter\n"[..]);
    agent.send(ToAgent::Run(s));
    let (events, result) = agent.until_finished(run).await;
    assert_eq!(result.state, TaskState::Failed, "{result:?}");
    assert_eq!(result.pid, None);
    let message = result.message.unwrap_or_default();
    assert_contains(&message, "zookeeper_server.sh");
    assert_contains(&message, "No such file");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, AgentEvent::Started { .. }))
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_context_and_files_reach_the_script() {
    let sandbox = Sandbox::new();
    let out = sandbox.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let mut agent = Running::greeted(&sandbox.root(), Duration::from_secs(1)).await;
    let run = run_id(12, 1);
    let mut s = spec(
        run,
        r#"set -e
echo "$1" > "$OUT/argv1"
pwd > "$OUT/pwd"
env | grep '^BIGMGR_' | sort > "$OUT/env"
cp "$BIGMGR_CONTEXT" "$OUT/context.json"
cat conf/zoo.cfg > "$OUT/file""#,
        Duration::from_secs(30),
    );
    s.env.insert("OUT".into(), out.display().to_string());
    s.files.push(FileSpec {
        path: "conf/zoo.cfg".into(),
        content: "clientPort=2181\n".into(),
    });
    s.context = serde_json::json!({"peers": ["h2", "h3"]});
    agent.send(ToAgent::Run(s));
    let (_, result) = agent.until_finished(run).await;
    assert_eq!(result.state, TaskState::Succeeded, "{result:?}");

    let root = std::path::absolute(sandbox.root()).expect("absolute");
    let unit_dir = root.join("units/c1/zk/zookeeper_server");
    let task_dir = root.join("tasks/12.1");
    let read = |name: &str| std::fs::read_to_string(out.join(name)).expect(name);
    assert_eq!(read("argv1").trim(), "start");
    assert_eq!(Path::new(read("pwd").trim()), unit_dir);
    assert_eq!(read("file"), "clientPort=2181\n");
    assert_eq!(
        std::fs::read_to_string(unit_dir.join("conf/zoo.cfg")).expect("written"),
        "clientPort=2181\n"
    );
    let env: BTreeMap<String, String> = read("env")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let d = |p: &Path| p.display().to_string();
    for (k, v) in [
        ("BIGMGR_COMMAND", "start".to_owned()),
        ("BIGMGR_RUN", "12.1".to_owned()),
        ("BIGMGR_TASK", "12".to_owned()),
        ("BIGMGR_ATTEMPT", "1".to_owned()),
        ("BIGMGR_JOB", "3".to_owned()),
        ("BIGMGR_CLUSTER", "c1".to_owned()),
        ("BIGMGR_SERVICE", "zk".to_owned()),
        ("BIGMGR_SERVICE_DEF", "zookeeper".to_owned()),
        ("BIGMGR_COMPONENT", "zookeeper_server".to_owned()),
        ("BIGMGR_HOST", "h1".to_owned()),
        ("BIGMGR_ADDRESS", "127.0.0.2".to_owned()),
        ("BIGMGR_ROOT", d(&root)),
        ("BIGMGR_UNIT_DIR", d(&unit_dir)),
        ("BIGMGR_TASK_DIR", d(&task_dir)),
        ("BIGMGR_CONTEXT", d(&task_dir.join("context.json"))),
        ("BIGMGR_LIB", d(&bigmgr_core::agent::stacklib_path(&root))),
    ] {
        assert_eq!(env.get(k), Some(&v), "{k} in {env:?}");
    }
    // The stack library is written beside the scripts, once, readable and not executable.
    let lib = bigmgr_core::agent::stacklib_path(&root);
    assert_eq!(lib.parent(), Some(root.join("scripts").as_path()));
    assert_eq!(
        std::fs::read_to_string(&lib).expect("library written"),
        bigmgr_core::agent::STACKLIB
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&lib).expect("lib").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
    let ctx: serde_json::Value = serde_json::from_str(&read("context.json")).expect("json");
    assert_eq!(ctx["run"], "12.1");
    assert_eq!(ctx["task"], 12);
    assert_eq!(ctx["attempt"], 1);
    assert_eq!(ctx["job"], 3);
    assert_eq!(ctx["component"], "zookeeper_server");
    assert_eq!(ctx["address"], "127.0.0.2");
    assert_eq!(ctx["unit_dir"], d(&unit_dir));
    assert_eq!(ctx["files"][0]["path"], "conf/zoo.cfg");
    assert_eq!(ctx["env"]["OUT"], d(&out));
    assert_eq!(ctx["context"]["peers"][1], "h3");
    // The script was written once, executable, under scripts/<service_def>/.
    let scripts: Vec<_> = std::fs::read_dir(root.join("scripts/zookeeper"))
        .expect("scripts dir")
        .flatten()
        .collect();
    assert_eq!(scripts.len(), 1);
    assert!(
        scripts[0]
            .file_name()
            .to_string_lossy()
            .ends_with("-zookeeper_server.sh")
    );
    agent.stop().await;
}

/// What the script sees of its supervisor and of itself. Its parent (`$PPID`) is the supervisor
/// the agent forked: it holds only the script's stdin, stdout and stderr (none of the agent's
/// descriptors: the test process has its runtime's, the agent's lock and ledger open), is named
/// `bigmgr-task`, leads the script's process group and ignores exactly SIGHUP, SIGINT and SIGTERM
/// (bits 1, 2 and 15: `4003`), while the script ignores and blocks nothing, though the test
/// process ignores SIGPIPE (Rust's runtime) and, here, signal 32.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_keeps_nothing_of_the_agent_and_records_a_signal_death() {
    let sandbox = Sandbox::new();
    let out = sandbox.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let mut agent = Running::greeted(&sandbox.root(), Duration::from_secs(1)).await;
    let run = run_id(13, 1);
    let mut s = spec(
        run,
        r#"ls /proc/$PPID/fd | sort -n | paste -sd' ' > "$OUT/fds"
cat /proc/$PPID/comm > "$OUT/comm"
echo "$(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f3) $PPID" > "$OUT/group"
grep '^SigIgn' /proc/$PPID/status > "$OUT/supervisor"
grep -E '^Sig(Ign|Blk)' /proc/$$/status > "$OUT/script"
echo "$PATH" > "$OUT/path"
kill -KILL $$"#,
        Duration::from_secs(30),
    );
    s.env.insert("OUT".into(), out.display().to_string());
    agent.send(ToAgent::Run(s));
    let (events, result) = agent.until_finished(run).await;
    let read = |name: &str| std::fs::read_to_string(out.join(name)).expect(name);
    assert_eq!(read("fds").trim(), "0 1 2");
    assert_eq!(read("comm").trim(), "bigmgr-task");
    let supervisor = started_pid(&events);
    assert_eq!(read("group").trim(), format!("{supervisor} {supervisor}"));
    assert_eq!(read("supervisor").trim(), "SigIgn:\t0000000000004003");
    assert_eq!(
        read("script"),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
    assert_eq!(
        read("path").trim(),
        std::env::var("PATH").expect("PATH"),
        "the agent's own environment"
    );
    // SIGKILL ended the script: recorded as a shell reports it, 128 + 9.
    assert_eq!(result.state, TaskState::Failed, "{result:?}");
    assert_eq!(result.exit_code, Some(137), "{result:?}");
    let exit = task_dir(&sandbox.root(), run).join("exit");
    assert_eq!(std::fs::read_to_string(exit).expect("exit"), "137\n");
    assert!(wait_gone(supervisor).await, "the supervisor was reaped");

    // A script without a `#!` line runs under /bin/sh, as a shell would run it.
    let run = run_id(14, 1);
    let mut s = spec(run, "", Duration::from_secs(30));
    s.script.content = Arc::from(&b"echo \"plain $1\" > \"$OUT/plain\"\n"[..]);
    s.env.insert("OUT".into(), out.display().to_string());
    agent.send(ToAgent::Run(s));
    let (_, result) = agent.until_finished(run).await;
    assert_eq!(result.state, TaskState::Succeeded, "{result:?}");
    assert_eq!(read("plain"), "plain start\n");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_outside_the_unit_dir_and_bad_variables_are_refused() {
    let (sandbox, mut agent) = Sandbox::with_agent().await;
    for (i, path) in ["../escape.cfg", "/tmp/abs.cfg"].into_iter().enumerate() {
        let run = run_id(20 + i as i64, 1);
        let mut s = sandbox.counting(run, r#"echo ran >> "$COUNTER""#);
        s.files.push(FileSpec {
            path: path.into(),
            content: "x".into(),
        });
        agent.send(ToAgent::Run(s));
        let (_, result) = agent.until_finished(run).await;
        assert_eq!(result.state, TaskState::Failed, "{result:?}");
        let message = result.message.unwrap_or_default();
        assert!(
            message.contains("refusing") && message.contains(path),
            "{message}"
        );
    }
    // Variables the script could not be given, or that would move where the agent's own
    // variables point, refuse the task before anything is written.
    for (i, (name, value, says)) in [
        ("", "x", "not an environment variable name"),
        ("A=B", "x", "not an environment variable name"),
        ("1ST", "x", "not an environment variable name"),
        ("NUL\0", "x", "not an environment variable name"),
        ("BIGMGR_UNIT_DIR", "/etc", "reserved"),
        ("OK", "a\0b", "NUL"),
    ]
    .into_iter()
    .enumerate()
    {
        let run = run_id(30 + i as i64, 1);
        let mut s = sandbox.counting(run, r#"echo ran >> "$COUNTER""#);
        s.env.insert(name.into(), value.into());
        agent.send(ToAgent::Run(s));
        let (_, result) = agent.until_finished(run).await;
        assert_eq!(result.state, TaskState::Failed, "{name:?}: {result:?}");
        let message = result.message.unwrap_or_default();
        assert!(
            message.contains("refusing") && message.contains(says),
            "{name:?}: {message}"
        );
        assert!(
            !task_dir(&sandbox.root(), run).exists(),
            "{name:?}: nothing is written for a refused task"
        );
    }
    assert_eq!(sandbox.runs(), 0, "the script must not run");
    assert!(!sandbox.root().join("units/c1/zk/escape.cfg").exists());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_flight_when_the_agent_died_is_reported_failed_not_rerun() {
    let sandbox = Sandbox::new();
    let run = run_id(7, 2);
    // An agent that recorded the run and died before it finished.
    std::fs::create_dir_all(sandbox.root()).expect("root");
    let mut ledger = Ledger::open(sandbox.root().join("ledger.jsonl")).expect("ledger");
    ledger.record_received(run).expect("record");
    drop(ledger);

    let mut agent = Running::start(&sandbox.root(), Duration::from_secs(1)).await;
    let finished = agent.hello().await;
    assert_eq!(finished.len(), 1, "{finished:?}");
    let (r, result) = &finished[0];
    assert_eq!(*r, run);
    assert_eq!(result.state, TaskState::Failed);
    assert!(
        result
            .message
            .as_deref()
            .unwrap_or("")
            .contains("outcome is unknown"),
        "{result:?}"
    );
    let s = sandbox.counting(run, r#"echo ran >> "$COUNTER""#);
    agent.expect_recorded(s, result).await;
    agent.stop().await;
    assert_eq!(sandbox.runs(), 0, "the script must not run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_waits_for_the_first_to_drain() {
    let (sandbox, mut first) = Sandbox::with_agent().await;
    let run = run_id(8, 1);
    let script = r#"echo going; sleep 1.5; echo yes > "$DONE""#;
    let mut s = spec(run, script, Duration::from_secs(30));
    let done = sandbox.path().join("done");
    s.env.insert("DONE".into(), done.display().to_string());
    first.send(ToAgent::Run(s));
    first.until_line(run, "going").await;

    // The second agent blocks on the root's lock while the first still serves.
    let root = sandbox.root();
    let second = tokio::spawn(async move {
        Agent::open(
            AgentConfig::new("h1", "127.0.0.2", root),
            Arc::new(ProcessExecutor),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "opened while the first agent held the root"
    );

    // The first agent's inbox closes; it finishes its run, then lets go.
    let Running { tx, mut rx, handle } = first;
    drop(tx);
    let second = tokio::time::timeout(PATIENCE, second)
        .await
        .expect("second agent opens in time")
        .expect("no panic")
        .expect("second agent opens");
    assert!(
        done.exists(),
        "opened before the first agent's run finished"
    );
    handle.await.expect("first agent stopped");
    let first_result = loop {
        match rx.recv().await.expect("first agent reported the result") {
            AgentEvent::Finished { run: r, result } if r == run => break result,
            _ => {}
        }
    };
    assert_eq!(first_result.state, TaskState::Succeeded);

    let mut second = Running::serve(second);
    assert_eq!(second.hello().await, vec![(run, first_result)]);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_noop_executor_writes_only_the_ledger() {
    let sandbox = Sandbox::new();
    let mut agent = Running::open_with(&sandbox.root(), Arc::new(NoopExecutor)).await;
    let n = 200;
    for t in 0..n {
        agent.send(ToAgent::Run(spec(run_id(t, 1), "", Duration::from_secs(1))));
    }
    let mut finished = 0;
    while finished < n {
        if let AgentEvent::Finished { result, .. } = agent.next().await {
            assert_eq!(result.state, TaskState::Succeeded);
            finished += 1;
        }
    }
    agent.stop().await;
    let mut names: Vec<String> = std::fs::read_dir(sandbox.root())
        .expect("root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["agent.lock", "ledger.jsonl"]);
    let ledger = Ledger::open(sandbox.root().join("ledger.jsonl")).expect("ledger");
    assert_eq!(ledger.finished().len(), n as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_kept_in_the_task_dir_and_streamed_live() {
    let (sandbox, mut agent) = Sandbox::with_agent().await;
    let run = run_id(30, 1);
    let dir = task_dir(&sandbox.root(), run);
    // The background sleep keeps the log files open after the script ends, like a daemon.
    agent.send(ToAgent::Run(spec(
        run,
        "echo first\necho warn >&2\nsleep 1.5\necho second\nsleep 30 &\nprintf 'no newline'",
        Duration::from_secs(30),
    )));
    let mut events = agent.until_line(run, "first").await;
    assert!(
        !dir.join("exit").exists(),
        "the first line came only once the script had ended"
    );
    let t0 = Instant::now();
    let (rest, result) = agent.until_finished(run).await;
    events.extend(rest);
    assert_eq!(result.state, TaskState::Succeeded, "{result:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "waited for the daemon: {:?}",
        t0.elapsed()
    );
    let logs = logs(&events, run);
    assert_eq!(
        lines_of(&logs, LogStream::Stdout),
        ["first", "second", "no newline"]
    );
    assert_eq!(lines_of(&logs, LogStream::Stderr), ["warn"]);
    let mut seqs: Vec<u64> = logs.iter().map(|(_, s, _)| *s).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [0, 1, 2, 3], "{logs:?}");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect(name);
    assert_eq!(read("stdout.log"), "first\nsecond\nno newline");
    assert_eq!(read("stderr.log"), "warn\n");
    assert_eq!(read("exit"), "0\n");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_outlives_its_agent_and_the_next_agent_adopts_it() {
    let sandbox = Sandbox::new();
    let run = run_id(31, 1);
    let s = sandbox.counting(
        run,
        r#"echo ran >> "$COUNTER"; echo started; sleep 2; echo done; exit 0"#,
    );
    let mut first = Running::greeted(&sandbox.root(), Duration::from_secs(1)).await;
    first.send(ToAgent::Run(s.clone()));
    let events = first.until_line(run, "started").await;
    let pid = started_pid(&events);
    let started_at = events.iter().find_map(|e| match e {
        AgentEvent::Started { at, .. } => Some(*at),
        _ => None,
    });
    first.kill().await;
    assert!(!is_gone(pid), "the script died with its agent");

    let second = open(&sandbox.root(), Duration::from_secs(1)).await;
    let (running, finished) = second.handle().report();
    assert_eq!(running, vec![run], "the adopted run is reported running");
    assert!(finished.is_empty(), "{finished:?}");
    let mut second = Running::serve(second);
    let (running, finished) = second.hello_adopting().await;
    assert_eq!(running, vec![run]);
    assert!(finished.is_empty(), "{finished:?}");
    // Redelivered while it runs: acknowledged, not run again.
    second.send(ToAgent::Run(s.clone()));
    let (events, result) = second.until_finished(run).await;
    assert_eq!(result.state, TaskState::Succeeded, "{result:?}");
    assert_eq!(result.exit_code, Some(0));
    assert_eq!(result.pid, Some(pid as u32));
    assert_eq!(result.started_at, started_at);
    assert!(events.contains(&AgentEvent::Received(run)), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, AgentEvent::Started { .. })),
        "{events:?}"
    );
    // Its output again from the first line, then what came while nobody watched.
    let logs = logs(&events, run);
    assert_eq!(
        logs,
        vec![
            (LogStream::Stdout, 0, "started".to_owned()),
            (LogStream::Stdout, 1, "done".to_owned())
        ]
    );
    assert!(wait_gone(pid).await);
    // Redelivered after it finished: the recorded result.
    second.expect_recorded(s, &result).await;
    second.stop().await;
    assert_eq!(sandbox.runs(), 1, "the script ran more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ended_while_no_agent_ran_is_reported_from_its_exit_file() {
    let sandbox = Sandbox::new();
    let run = run_id(32, 1);
    let exit = task_dir(&sandbox.root(), run).join("exit");
    let script = spec(
        run,
        "echo out\necho err >&2\nsleep 1\necho bye\nexit 3",
        Duration::from_secs(30),
    );
    let pid = orphan(&sandbox.root(), Duration::from_secs(1), script, "out").await;
    assert!(
        eventually(PATIENCE, || exit.exists()).await,
        "the script's wrapper recorded no exit status"
    );
    assert!(wait_gone(pid).await);

    let mut second = Running::serve(open(&sandbox.root(), Duration::from_secs(1)).await);
    let (_, finished) = second.hello_adopting().await;
    assert!(
        finished.is_empty(),
        "reported before its output: {finished:?}"
    );
    let (events, result) = second.until_finished(run).await;
    assert_eq!(result.state, TaskState::Failed, "{result:?}");
    assert_eq!(result.exit_code, Some(3));
    assert_eq!(result.pid, Some(pid as u32));
    assert_eq!(
        result.message.as_deref(),
        Some("the script exited with code 3")
    );
    let logs = logs(&events, run);
    assert_eq!(lines_of(&logs, LogStream::Stdout), ["out", "bye"]);
    assert_eq!(lines_of(&logs, LogStream::Stderr), ["err"]);
    second.stop().await;
    // The result is in the ledger for the next Hello.
    let ledger = Ledger::open(sandbox.root().join("ledger.jsonl")).expect("ledger");
    assert_eq!(ledger.finished(), vec![(run, result)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_run_times_out_counting_from_its_original_start() {
    let sandbox = Sandbox::new();
    let run = run_id(33, 1);
    let dir = task_dir(&sandbox.root(), run);
    // Ignores SIGTERM (and so does its sleep), so only the SIGKILL after the grace ends it.
    let script = STUBBORN;
    let mut first = Running::greeted(&sandbox.root(), Duration::from_secs(1)).await;
    first.send(ToAgent::Run(spec(run, script, Duration::from_millis(2500))));
    let events = first.until_line(run, "started").await;
    let pid = started_pid(&events);
    first.kill().await;
    // No agent for 2 s: counted from the adoption, the timeout would end it 2 s later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!is_gone(pid), "the script died with its agent");

    let mut second = Running::serve(open(&sandbox.root(), Duration::from_secs(1)).await);
    let (running, _) = second.hello_adopting().await;
    assert_eq!(running, vec![run]);
    let (events, result) = second.until_finished(run).await;
    assert_eq!(result.state, TaskState::TimedOut, "{result:?}");
    assert!(
        result
            .message
            .as_deref()
            .unwrap_or("")
            .contains("timed out after 2.5s"),
        "{result:?}"
    );
    let ran = result.finished_at - result.started_at.expect("started_at");
    assert!(
        (3400..5000).contains(&ran),
        "ended {ran} ms after its start, not at timeout (2.5 s) + grace (1 s)"
    );
    assert!(
        eventually(Duration::from_secs(2), || group_members(pid).is_empty()).await,
        "the script's process group still runs: {:?}",
        group_members(pid)
    );
    let sleep_pid: i32 = std::fs::read_to_string(dir.join("sleep.pid"))
        .expect("sleep.pid")
        .trim()
        .parse()
        .expect("a pid");
    assert!(wait_gone(sleep_pid).await, "the script's sleep still runs");
    assert!(!logs(&events, run).iter().any(|(_, _, l)| l == "survived"));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_run_can_be_canceled() {
    let sandbox = Sandbox::new();
    let run = run_id(34, 1);
    let script = spec(
        run,
        "trap 'exit 143' TERM\necho ready\nsleep 30 &\nwait",
        Duration::from_secs(60),
    );
    let pid = orphan(&sandbox.root(), Duration::from_secs(5), script, "ready").await;

    let mut second = Running::serve(open(&sandbox.root(), Duration::from_secs(5)).await);
    second.hello_adopting().await;
    second.cancel_trapped(run).await;
    assert!(
        eventually(Duration::from_secs(2), || group_members(pid).is_empty()).await,
        "the script's process group still runs: {:?}",
        group_members(pid)
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_record_is_written_for_each_run_and_deleted_when_remove_succeeds() {
    let (sandbox, mut agent) = Sandbox::with_agent().await;
    let root = std::path::absolute(sandbox.root()).expect("absolute");
    let record_path = root.join("units/c1/zk/zookeeper_server.unit.json");
    let read_record = || -> UnitRecord {
        serde_json::from_slice(&std::fs::read(&record_path).expect("the unit record"))
            .expect("a UnitRecord")
    };
    let script =
        r#"case "$1" in remove) [ -n "$FAIL" ] && exit 1; rm -rf "$BIGMGR_UNIT_DIR" ;; esac"#;
    let mut runs = 40..;
    let mut run_command = async |command: &str, env: &[(&str, &str)]| {
        let run = run_id(runs.next().expect("a run id"), 1);
        let mut s = spec(run, script, Duration::from_secs(30));
        s.command = command.into();
        s.status = true;
        for (k, v) in env {
            s.env.insert((*k).into(), (*v).into());
        }
        agent.send(ToAgent::Run(s));
        agent.until_finished(run).await.1
    };

    let result = run_command("install", &[("FOO", "bar")]).await;
    assert_eq!(result.state, TaskState::Succeeded, "{result:?}");
    let record = read_record();
    assert_eq!(
        (
            record.cluster.as_str(),
            record.service.as_str(),
            record.service_def.as_str(),
            record.component.as_str(),
            record.status
        ),
        ("c1", "zk", "zookeeper", "zookeeper_server", true)
    );
    assert_eq!(record.unit_dir, root.join("units/c1/zk/zookeeper_server"));
    assert!(
        record.script.starts_with(root.join("scripts/zookeeper")) && record.script.is_file(),
        "{record:?}"
    );
    let var = |record: &UnitRecord, key: &str| {
        record
            .env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(var(&record, "BIGMGR_COMMAND").as_deref(), Some("install"));
    assert_eq!(
        var(&record, "BIGMGR_UNIT_DIR"),
        Some(record.unit_dir.display().to_string())
    );
    assert_eq!(var(&record, "FOO").as_deref(), Some("bar"));

    // A failed remove keeps the unit (and its record, as of that run).
    let result = run_command("remove", &[("FAIL", "1")]).await;
    assert_eq!(result.state, TaskState::Failed, "{result:?}");
    assert_eq!(
        var(&read_record(), "BIGMGR_COMMAND").as_deref(),
        Some("remove")
    );

    let result = run_command("remove", &[]).await;
    assert_eq!(result.state, TaskState::Succeeded, "{result:?}");
    assert!(!record.unit_dir.exists(), "the script removed the unit");
    assert!(
        !record_path.exists(),
        "the record outlived a successful remove"
    );
    agent.stop().await;
}

/// Succeeds at once with a 20 MB message, as an executor with a chatty error might.
struct Verbose;

#[async_trait::async_trait]
impl Executor for Verbose {
    async fn run(
        &self,
        _spec: &TaskSpec,
        _env: &ExecEnv,
        _sink: &dyn ExecSink,
        _cancel: tokio::sync::watch::Receiver<bool>,
    ) -> ExecOutcome {
        ExecOutcome {
            state: TaskState::Failed,
            exit_code: Some(1),
            pid: None,
            message: Some("m".repeat(20 << 20)),
            outcome_unknown: false,
        }
    }

    fn needs_files(&self) -> bool {
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_result_message_is_cut_in_the_event_and_the_ledger() {
    let sandbox = Sandbox::new();
    let mut agent = Running::open_with(&sandbox.root(), Arc::new(Verbose)).await;
    let run = run_id(1, 1);
    agent.send(ToAgent::Run(spec(run, "", Duration::from_secs(1))));
    let (_, result) = agent.until_finished(run).await;
    agent.stop().await;
    let cut = |message: &str| {
        assert!(message.len() <= MAX_RESULT_MESSAGE, "{}", message.len());
        assert!(message.ends_with(" … [message truncated: 20971520 bytes]"));
    };
    cut(result.message.as_deref().expect("a message"));
    // The ledger keeps it cut too: every registration reports it until it is cleaned.
    let ledger = Ledger::open(sandbox.root().join("ledger.jsonl")).expect("ledger");
    let finished = ledger.finished();
    cut(finished[0].1.message.as_deref().expect("a message"));
    let size = std::fs::metadata(sandbox.root().join("ledger.jsonl"))
        .expect("ledger")
        .len();
    assert!(size < 64 * 1024, "{size}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_output_line_arrives_cut_naming_the_file_that_holds_it_whole() {
    let (sandbox, mut agent) = Sandbox::with_agent().await;
    let run = run_id(1, 1);
    let script = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo after; \
                  head -c 100000 /dev/zero | tr '\\0' y >&2";
    agent.send(ToAgent::Run(spec(run, script, Duration::from_secs(20))));
    let (events, result) = agent.until_finished(run).await;
    agent.stop().await;
    assert_eq!(result.state, TaskState::Succeeded, "{result:?}");
    let logs = logs(&events, run);
    let out = lines_of(&logs, LogStream::Stdout);
    let err = lines_of(&logs, LogStream::Stderr);
    assert_eq!((out.len(), err.len()), (2, 1), "{logs:?}");
    let dir = task_dir(&sandbox.root(), run);
    for (line, bytes, file) in [
        (out[0], 3_000_000, "stdout.log"),
        (err[0], 100_000, "stderr.log"),
    ] {
        assert!(line.len() <= MAX_LOG_LINE, "{}", line.len());
        let marker = format!(
            " … [line truncated: {bytes} bytes; full output in {}]",
            dir.join(file).display()
        );
        assert!(line.ends_with(&marker), "{}", &line[MAX_LOG_LINE - 300..]);
    }
    assert_eq!(out[1], "after");
    assert_eq!(
        std::fs::metadata(dir.join("stdout.log"))
            .expect("stdout.log")
            .len(),
        3_000_000 + 7
    );
}
