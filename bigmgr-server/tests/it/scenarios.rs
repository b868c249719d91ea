//! End-to-end scenarios: the real `bigmgr serve` and real `bigmgr-agent`s on 127.0.0.2–4, each
//! with its own root, running a test stack whose scripts record what they did (a counter line
//! per run, a pid file, output lines), through the failures the protocol promises to survive:
//! `kill -9` of an agent or of the server in the middle of a job, a host that stops sending
//! heartbeats, and agents the server must refuse.
//!
//! Every test owns a [`Rig`]: one temporary directory with the stack, the server's data and the
//! agents' roots. Dropping it kills the agents and the server, then every script the agents
//! started that still runs (scripts are detached from their agent, so they outlive a killed
//! one), also when the test fails.

use bigmgr_test_support::{
    AgentProc, Api, EXIT_TIMEOUT, PgSchema, ServerProc, assert_contains, free_addr, procs,
    wait_until, write_executable,
};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The agents: host name and address.
const HOSTS: [(&str, &str); 3] = [
    ("h1", "127.0.0.2"),
    ("h2", "127.0.0.3"),
    ("h3", "127.0.0.4"),
];

/// The cluster every scenario uses.
const CLUSTER: &str = "c";

/// How long a host may take to come online (agent start, registration, a heartbeat).
const ONLINE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a job may take to end.
const JOB_TIMEOUT: Duration = Duration::from_secs(45);

/// A service of the test stack `test` 1.0.0: one server component `<name>_server` whose every
/// command but `status` appends its pid to `runs.<command>` in the unit directory, writes it to
/// `pid.<command>`, prints `<name> <command> started on <host> at <address>`, runs `output`,
/// sleeps `sleep` seconds and prints `<name> <command> done on <host>`.
struct Svc {
    name: &'static str,
    sleep: u32,
    /// Shell commands run after the first line (more output).
    output: &'static str,
    /// Extra TOML inside the `[[component]]` table.
    component_toml: &'static str,
    /// The `[order]` table's body.
    order: &'static str,
}

/// The whole test stack; each scenario adds the services it needs to its cluster.
const STACK: &[Svc] = &[
    // Scenario 1: a quick start on three hosts.
    Svc {
        name: "echo",
        sleep: 0,
        output: "",
        component_toml: "",
        order: "",
    },
    // Scenario 2: a start long enough to kill its agent in the middle.
    Svc {
        name: "sleepy",
        sleep: 5,
        output: "",
        component_toml: "",
        order: "",
    },
    // Scenario 3: two stages, b's start after a's.
    Svc {
        name: "a",
        sleep: 4,
        output: "",
        component_toml: "",
        order: "",
    },
    Svc {
        name: "b",
        sleep: 2,
        output: "",
        component_toml: "",
        order: "\"B_SERVER-START\" = [\"A_SERVER-START\"]\n",
    },
    // Scenario 4: a start that hangs far beyond its timeout.
    Svc {
        name: "hang",
        sleep: 60,
        output: "",
        component_toml: "[component.commands.start]\ntimeout = \"6s\"\n",
        order: "",
    },
    // Huge output: lines of 1 MB, 20 MB and 100 MB, four of 5 MB (one batch's worth), 20 MB on
    // stderr, and 5 MB of binary (NULs, invalid UTF-8) without a newline.
    Svc {
        name: "loud",
        sleep: 0,
        output: "line() { head -c \"$1\" /dev/zero | tr '\\0' \"$2\"; echo; }\n\
                 line 1048576 a; line 20971520 b; line 104857600 c\n\
                 for i in 1 2 3 4; do line 5242880 d; done\n\
                 line 20971520 e >&2\n\
                 head -c 5242880 /dev/urandom | tr -d '\\n'; echo",
        component_toml: "",
        order: "",
    },
    // An ordinary job: 300 numbered lines.
    Svc {
        name: "chatty",
        sleep: 0,
        output: "i=1; while [ $i -le 300 ]; do echo \"line $i\"; i=$((i + 1)); done",
        component_toml: "",
        order: "",
    },
];

/// Writes [`STACK`] under `root` (a stack root for `--stacks`).
fn write_stack(root: &Path) {
    for s in STACK {
        let dir = root.join("test").join("1.0.0").join(s.name);
        std::fs::create_dir_all(&dir).expect("service dir");
        let mut toml = format!(
            "[service]\nname = \"{n}\"\nversion = \"1.0\"\ndescription = \"test service {n}\"\n\n\
             [[component]]\nname = \"{n}_server\"\ncategory = \"server\"\ncardinality = \"1+\"\n\
             script = \"run.sh\"\n{}\n",
            s.component_toml,
            n = s.name,
        );
        if !s.order.is_empty() {
            toml.push_str("\n[order]\n");
            toml.push_str(s.order);
        }
        std::fs::write(dir.join("service.toml"), toml).expect("manifest");
        let script = format!(
            r#"#!/bin/sh
# {name}: records every run of every command but status in its unit directory.
[ "$1" = status ] && exit 0
echo "$$" >> "$BIGMGR_UNIT_DIR/runs.$1"
echo "$$" > "$BIGMGR_UNIT_DIR/pid.$1.tmp" && mv -f "$BIGMGR_UNIT_DIR/pid.$1.tmp" "$BIGMGR_UNIT_DIR/pid.$1"
echo "{name} $1 started on $BIGMGR_HOST at $BIGMGR_ADDRESS"
{output}
sleep {sleep}
echo "{name} $1 done on $BIGMGR_HOST"
"#,
            name = s.name,
            sleep = s.sleep,
            output = s.output,
        );
        write_executable(&dir.join("run.sh"), &script);
    }
}

/// The address of host `name`.
fn address_of(name: &str) -> &'static str {
    HOSTS
        .iter()
        .find(|(h, _)| *h == name)
        .map(|(_, a)| *a)
        .unwrap_or_else(|| panic!("no host {name}"))
}

/// One scenario's processes and files: the server (on an address chosen once, so a restart
/// gets the same one), the agents by host name, and the directory holding the stack, the
/// server's data and the agents' roots.
struct Rig {
    server: Option<ServerProc>,
    agents: BTreeMap<String, AgentProc>,
    listen: SocketAddr,
    dir: TempDir,
    /// The store when the tests run on PostgreSQL, kept across server restarts (and dropped
    /// after the server, which is declared before it).
    schema: Option<PgSchema>,
}

impl Rig {
    /// Writes the stack and starts the server (heartbeat interval 1 s).
    fn start() -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        write_stack(&dir.path().join("stacks"));
        let mut rig = Rig {
            server: None,
            agents: BTreeMap::new(),
            listen: free_addr(),
            dir,
            schema: PgSchema::when_testing_postgres("rig"),
        };
        rig.start_server();
        rig
    }

    /// Starts the server on the rig's address and data directory.
    fn start_server(&mut self) {
        assert!(self.server.is_none(), "the server runs already");
        let mut server = ServerProc::serve();
        if let Some(schema) = &self.schema {
            server = server.store(schema.url());
        }
        let server = server
            .data(&self.dir.path().join("data"))
            .listen(self.listen)
            .stacks(&self.dir.path().join("stacks"))
            .fast_heartbeat()
            .start();
        assert_eq!(server.addr, self.listen);
        self.server = Some(server);
    }

    /// A started rig whose agents `hosts` joined, with service `service` of the test stack on
    /// `on`; and a client of its server.
    async fn with_service(hosts: &[&str], service: &str, on: &[&str]) -> (Rig, Api) {
        let mut rig = Rig::start();
        let api = rig.api();
        rig.join(hosts).await;
        add_service(&api, service, on).await;
        (rig, api)
    }

    /// The server.
    fn server(&self) -> &ServerProc {
        self.server.as_ref().expect("the server runs")
    }

    /// `kill -9` the server and reap it.
    fn kill_server(&mut self) {
        let mut server = self.server.take().expect("the server runs");
        server.proc.signal(Signal::SIGKILL);
        let status = server.proc.wait_exit(EXIT_TIMEOUT);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    /// A fresh REST client of the server (a new connection pool, so one to a killed server is
    /// never reused).
    fn api(&self) -> Api {
        self.server().api()
    }

    /// Where agent `host` keeps its root.
    fn root(&self, host: &str) -> PathBuf {
        self.dir.path().join("agents").join(host)
    }

    /// A unit directory of `service`'s only component on `host`.
    fn unit_dir(&self, host: &str, service: &str) -> PathBuf {
        self.root(host)
            .join("units")
            .join(CLUSTER)
            .join(service)
            .join(format!("{service}_server"))
    }

    /// How often `command` ran for `service` on `host` (lines of its counter file).
    fn runs(&self, host: &str, service: &str, command: &str) -> usize {
        let path = self.unit_dir(host, service).join(format!("runs.{command}"));
        std::fs::read_to_string(&path)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// The pid the script of `command` for `service` on `host` wrote, once it has.
    fn script_pid(&self, host: &str, service: &str, command: &str) -> Option<Pid> {
        read_pid(&self.unit_dir(host, service).join(format!("pid.{command}")))
    }

    /// Waits until job `id`'s start task of `service` on h1 runs, and answers the pid its
    /// script wrote.
    async fn running_script(&self, api: &Api, id: i64, service: &str) -> Pid {
        wait_until("h1's task to run", Duration::from_secs(30), || async {
            let job = job(api, id).await;
            let running = task_on(&job, service, "h1")["state"] == "RUNNING";
            running
                .then(|| self.script_pid("h1", service, "start"))
                .flatten()
        })
        .await
    }

    /// Starts agent `host` on its address and root, with a join token or (`None`) with the
    /// credential its root holds.
    fn start_agent(&mut self, host: &str, token: Option<&str>) {
        let mut cmd =
            AgentProc::cmd(&self.server().url, host, address_of(host)).root(&self.root(host));
        if let Some(token) = token {
            cmd = cmd.join_token(token);
        }
        let old = self.agents.insert(host.to_string(), cmd.start());
        assert!(old.is_none(), "agent {host} was running already");
    }

    /// `kill -9` agent `host` and reap it.
    fn kill_agent(&mut self, host: &str) {
        let mut agent = self.agents.remove(host).expect("the agent runs");
        agent.proc.signal(Signal::SIGKILL);
        agent.proc.wait_exit(EXIT_TIMEOUT);
    }

    /// Creates the cluster, joins agents `hosts` with a join token and waits until every one is
    /// ONLINE; returns the token.
    async fn join(&mut self, hosts: &[&str]) -> String {
        let api = self.api();
        api.create_cluster(CLUSTER).await;
        let token = api.join_token(CLUSTER).await;
        for h in hosts {
            self.start_agent(h, Some(&token));
        }
        for h in hosts {
            wait_host(&api, CLUSTER, h, "ONLINE", ONLINE_TIMEOUT).await;
        }
        token
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Agents first, so none starts a script after the sweep; then the server.
        self.agents.clear();
        self.server = None;
        kill_scripts(&self.dir.path().join("agents"), self.dir.path());
    }
}

/// Reads a pid file (`None` if it is missing or not a pid yet).
fn read_pid(path: &Path) -> Option<Pid> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    (pid > 1).then(|| Pid::from_raw(pid))
}

/// Whether `pid` is a live process (a zombie is not).
fn alive(pid: Pid) -> bool {
    procs::running(pid.as_raw())
}

/// Kills the process group of every script under `agents` (any `pid.*` file below it) that
/// still runs from `dir` (so a reused pid is not taken for a script): the script, the wrapper
/// that leads its group, and what it started.
fn kill_scripts(agents: &Path, dir: &Path) {
    let mut todo = vec![agents.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with("pid.") || name.ends_with(".tmp") {
                continue;
            }
            let Some(pid) = read_pid(&path) else { continue };
            if alive(pid) && procs::mentions(pid.as_raw(), "cmdline", &dir.to_string_lossy()) {
                procs::kill_with_group(pid.as_raw());
            }
        }
    }
}

/// The state of host `host` of `cluster` (`""` if there is none).
async fn host_state(api: &Api, cluster: &str, host: &str) -> String {
    let h = api.get(&format!("/clusters/{cluster}/hosts/{host}")).await;
    h.body["state"].as_str().unwrap_or_default().to_string()
}

/// Waits until host `host` of `cluster` is in `state`.
async fn wait_host(api: &Api, cluster: &str, host: &str, state: &str, timeout: Duration) {
    wait_until(&format!("{host} to be {state}"), timeout, || async {
        (host_state(api, cluster, host).await == state).then_some(())
    })
    .await;
}

/// Adds service `name` of stack `test` with its component on `hosts`.
async fn add_service(api: &Api, name: &str, hosts: &[&str]) {
    let placement = json!({ format!("{name}_server"): hosts });
    let body = json!({"name": name, "stack": "test", "service": name, "placement": placement});
    api.add_service(CLUSTER, body).await;
}

/// Submits `command` on the whole cluster; returns the job's id.
async fn submit(api: &Api, command: &str) -> i64 {
    api.submit(CLUSTER, command, json!("cluster")).await
}

/// The job's detail.
async fn job(api: &Api, id: i64) -> Value {
    api.get(&format!("/jobs/{id}")).await.expect(200).clone()
}

/// The tasks of the job's stages of `service`'s component (every stage if `None`).
fn tasks(job: &Value, service: Option<&str>) -> Vec<Value> {
    let component = service.map(|s| format!("{s}_server"));
    job["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter(|s| component.as_deref().is_none_or(|c| s["component"] == c))
        .flat_map(|s| s["tasks"].as_array().expect("tasks").clone())
        .collect()
}

/// The task of `service` on `host`.
fn task_on(job: &Value, service: &str, host: &str) -> Value {
    tasks(job, Some(service))
        .into_iter()
        .find(|t| t["host"] == host)
        .unwrap_or_else(|| panic!("no {service} task on {host} in {job}"))
}

/// The lines of a task's log the server stored.
async fn log_lines(api: &Api, job: i64, task: i64) -> Vec<String> {
    let log = api.get(&format!("/jobs/{job}/tasks/{task}/log")).await;
    log.expect(200)["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["line"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until the server's log of a task has a line containing `want`; returns all lines.
async fn wait_log_line(api: &Api, job: i64, task: i64, want: &str) -> Vec<String> {
    let what = format!("the server's log of task {task} to show {want:?}");
    wait_until(&what, Duration::from_secs(15), || async {
        let lines = log_lines(api, job, task).await;
        lines.iter().any(|l| l.contains(want)).then_some(lines)
    })
    .await
}

/// The output file of a task's run on the agent with root `root`.
fn stdout_log(root: &Path, task: &Value) -> PathBuf {
    root.join("tasks")
        .join(format!("{}.{}", task["id"], task["attempt"]))
        .join("stdout.log")
}

/// Polls `pred` (a check of local state) every 100 ms for up to `timeout`.
async fn wait_local(what: &str, timeout: Duration, pred: impl Fn() -> bool) {
    wait_until(what, timeout, || async { pred().then_some(()) }).await;
}

/// "Server + 3 agents on 127.0.0.2–4: a start job on a 3-host service completes; each task's
/// log is on the agent's disk and on the server."
#[tokio::test]
async fn three_agents_run_a_start_job_and_its_logs_are_on_agents_and_server() {
    let (rig, api) = Rig::with_service(&["h1", "h2", "h3"], "echo", &["h1", "h2", "h3"]).await;
    let id = submit(&api, "start").await;
    let done = api.wait_job(id, JOB_TIMEOUT).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");

    let all = tasks(&done, Some("echo"));
    let mut hosts: Vec<&str> = all.iter().map(|t| t["host"].as_str().unwrap()).collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["h1", "h2", "h3"], "{done}");
    for task in &all {
        let host = task["host"].as_str().unwrap();
        assert_eq!(task["state"], "SUCCEEDED", "{task}");
        assert_eq!(task["exit_code"], 0, "{task}");
        let started = format!("echo start started on {host} at {}", address_of(host));
        let finished = format!("echo start done on {host}");

        // On the disk of the agent that ran it, and of no other.
        let path = stdout_log(&rig.root(host), task);
        let out =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(out.contains(&started), "{}:\n{out}", path.display());
        assert!(out.contains(&finished), "{}:\n{out}", path.display());
        for (other, _) in HOSTS.iter().filter(|(h, _)| *h != host) {
            let elsewhere = stdout_log(&rig.root(other), task);
            assert!(!elsewhere.exists(), "{} exists", elsewhere.display());
        }

        // On the server.
        let lines = wait_log_line(&api, id, task["id"].as_i64().unwrap(), &finished).await;
        assert!(lines.contains(&started), "{lines:?}");

        assert_eq!(rig.runs(host, "echo", "start"), 1, "start runs on {host}");
    }
}

/// "`kill -9` an agent while its task sleeps 5 s, restart it: the task's result reaches the
/// server, and the script ran exactly once (side-effect counter)."
#[tokio::test]
async fn an_agent_killed_during_a_task_and_restarted_reports_it_and_ran_it_once() {
    let (mut rig, api) = Rig::with_service(&["h1", "h2"], "sleepy", &["h1", "h2"]).await;
    let id = submit(&api, "start").await;

    // The script runs on h1 (its 5 s sleep has just begun).
    let pid = rig.running_script(&api, id, "sleepy").await;
    assert!(alive(pid), "the script {pid} runs");

    rig.kill_agent("h1");
    assert!(alive(pid), "the script {pid} survives its agent's kill -9");
    rig.start_agent("h1", None);

    let done = api.wait_job(id, JOB_TIMEOUT).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    for host in ["h1", "h2"] {
        let task = task_on(&done, "sleepy", host);
        assert_eq!(task["state"], "SUCCEEDED", "{task}");
        assert_eq!(task["exit_code"], 0, "{task}");
        assert_eq!(task["attempt"], 1, "{task}");
        let tid = task["id"].as_i64().unwrap();
        let lines = wait_log_line(&api, id, tid, &format!("sleepy start done on {host}")).await;
        let started = format!("sleepy start started on {host} at {}", address_of(host));
        assert!(lines.contains(&started), "{lines:?}");
        assert_eq!(
            lines.iter().filter(|l| **l == started).count(),
            1,
            "each line once: {lines:?}"
        );
        assert_eq!(rig.runs(host, "sleepy", "start"), 1, "start runs on {host}");
    }
    assert!(!alive(pid), "the script {pid} has ended");
    // The restarted agent is connected again.
    assert_eq!(host_state(&api, CLUSTER, "h1").await, "ONLINE");
}

/// "`kill -9` the server in the middle of a two-stage job, restart it: the job finishes
/// SUCCEEDED with every task run exactly once."
#[tokio::test]
async fn a_server_killed_during_a_two_stage_job_and_restarted_finishes_it_once() {
    let mut rig = Rig::start();
    let api = rig.api();
    let hosts = ["h1", "h2", "h3"];
    rig.join(&hosts).await;
    add_service(&api, "a", &hosts).await;
    add_service(&api, "b", &hosts).await;
    let id = submit(&api, "start").await;

    // Every `a` script runs (their 4 s sleep has begun), no `b` has been sent yet.
    wait_until("a's tasks to run", Duration::from_secs(30), || async {
        let job = job(&api, id).await;
        let a = tasks(&job, Some("a"));
        let b = tasks(&job, Some("b"));
        assert_eq!((a.len(), b.len()), (3, 3), "{job}");
        assert!(
            b.iter().all(|t| t["state"] == "PENDING"),
            "b waits for a: {job}"
        );
        let running = a.iter().all(|t| t["state"] == "RUNNING")
            && hosts
                .iter()
                .all(|h| rig.script_pid(h, "a", "start").is_some());
        running.then_some(())
    })
    .await;

    let a_tasks = tasks(&job(&api, id).await, Some("a"));
    rig.kill_server();
    // While the server is away the `a` scripts end: their last lines and results can only
    // reach it from the agents' spools, replayed after the restart.
    for task in &a_tasks {
        let host = task["host"].as_str().expect("host").to_string();
        let path = stdout_log(&rig.root(&host), task);
        wait_local(
            &format!("a's start on {host} to end while the server is down"),
            Duration::from_secs(20),
            || std::fs::read_to_string(&path).is_ok_and(|t| t.contains("a start done")),
        )
        .await;
    }
    rig.start_server();
    let api = rig.api();

    let done = api.wait_job(id, JOB_TIMEOUT).await;
    for task in &a_tasks {
        let host = task["host"].as_str().expect("host");
        let lines = log_lines(&api, id, task["id"].as_i64().expect("id")).await;
        assert_eq!(
            lines,
            vec![
                format!("a start started on {host} at {}", address_of(host)),
                format!("a start done on {host}"),
            ],
            "every line of {host}'s a task reached the server once, in order"
        );
    }
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    let all = tasks(&done, None);
    assert_eq!(all.len(), 6, "{done}");
    for task in &all {
        assert_eq!(task["state"], "SUCCEEDED", "{task}");
        assert_eq!(task["attempt"], 1, "{task}");
    }
    for host in hosts {
        for service in ["a", "b"] {
            assert_eq!(
                rig.runs(host, service, "start"),
                1,
                "{service} start runs on {host}"
            );
        }
    }
    for host in hosts {
        assert_eq!(host_state(&api, CLUSTER, host).await, "ONLINE", "{host}");
    }
}

/// "Stop an agent for longer than 3 heartbeat intervals (heartbeat set to 1 s in the test): the
/// host shows LOST, its in-flight task fails when its timeout passes, the job ends; restart the
/// agent: ONLINE again."
#[tokio::test]
async fn a_lost_host_fails_its_task_after_the_timeout_and_comes_back_online() {
    let (mut rig, api) = Rig::with_service(&["h1", "h2"], "hang", &["h1"]).await;
    let id = submit(&api, "start").await;

    let pid = rig.running_script(&api, id, "hang").await;

    rig.kill_agent("h1");
    let killed = Instant::now();
    wait_host(&api, CLUSTER, "h1", "LOST", Duration::from_secs(8)).await;
    let lost_after = killed.elapsed();
    assert!(
        lost_after >= Duration::from_millis(1500),
        "LOST only after 3 intervals without a message, not {lost_after:?}"
    );
    assert_eq!(host_state(&api, CLUSTER, "h2").await, "ONLINE");

    let done = api.wait_job(id, Duration::from_secs(30)).await;
    assert_eq!(done["state"], "FAILED", "{done}");
    let task = task_on(&done, "hang", "h1");
    assert_eq!(task["state"], "FAILED", "{task}");
    let message = task["message"].as_str().unwrap_or_default();
    assert!(message.contains("LOST"), "{task}");
    let ran = task["finished_at"].as_i64().unwrap() - task["started_at"].as_i64().unwrap();
    assert!(
        ran >= 6000,
        "failed {ran} ms after it started, before its 6 s timeout: {task}"
    );
    assert_eq!(rig.runs("h1", "hang", "start"), 1);
    assert!(alive(pid), "the orphaned script {pid} still sleeps");

    // Back again: ONLINE, and the agent adopts the run and ends it (its timeout has passed).
    rig.start_agent("h1", None);
    wait_host(&api, CLUSTER, "h1", "ONLINE", ONLINE_TIMEOUT).await;
    wait_local(
        "the restarted agent to kill the overdue script",
        Duration::from_secs(20),
        || !alive(pid),
    )
    .await;
    assert_eq!(rig.runs("h1", "hang", "start"), 1, "not run again");
    let after = job(&api, id).await;
    assert_eq!(after["state"], "FAILED", "{after}");
}

/// "Wrong join token, second agent with a taken host name, host already in another cluster:
/// each refused with a clear message, nothing changed."
#[tokio::test]
async fn refused_agents_exit_2_saying_why_and_change_nothing() {
    let mut rig = Rig::start();
    let api = rig.api();
    let token = rig.join(&["h1"]).await;
    api.create_cluster("other").await;
    let other = api.join_token("other").await;
    rig.start_agent("h2", Some(&other));
    wait_host(&api, "other", "h2", "ONLINE", ONLINE_TIMEOUT).await;

    let hosts_of = |cluster: &'static str| {
        let api = api.clone();
        async move {
            let hosts = api.get(&format!("/clusters/{cluster}/hosts")).await;
            let mut hosts: Vec<(String, String, String)> = hosts.expect(200)["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let s = |k: &str| h[k].as_str().unwrap_or_default().to_string();
                    (s("name"), s("cluster"), s("address"))
                })
                .collect();
            hosts.sort();
            hosts
        }
    };
    let before = (hosts_of(CLUSTER).await, hosts_of("other").await);
    assert_eq!(
        before,
        (
            vec![("h1".into(), CLUSTER.into(), "127.0.0.2".into())],
            vec![("h2".into(), "other".into(), "127.0.0.3".into())],
        )
    );

    let bad = "bmj_0000000000000000000000000000000000000000000000000000000000000000";
    let cases = [
        ("h3", bad, "join token"),
        ("h1", token.as_str(), "host name 'h1' is already taken"),
        (
            "h1",
            other.as_str(),
            "host 'h1' already belongs to cluster 'c'",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (i, (name, token, why)) in cases.into_iter().enumerate() {
        let root = tmp.path().join(format!("refused{i}"));
        let mut agent = AgentProc::cmd(&rig.server().url, name, address_of("h3"))
            .root(&root)
            .join_token(token)
            .start();
        let status = agent.proc.wait_exit(Duration::from_secs(30));
        let stderr = agent.proc.stderr.text();
        assert_eq!(status.code(), Some(2), "{name} ({why}): {stderr}");
        let refusal = stderr
            .lines()
            .find(|l| l.starts_with("bigmgr-agent: refused: "))
            .unwrap_or_else(|| panic!("no refusal for {name} ({why}):\n{stderr}"));
        assert_contains(refusal, why);
        assert!(
            !root.join("credential.json").exists(),
            "a refused agent holds no credential"
        );
    }
    let refusals: Vec<String> = rig
        .server()
        .proc
        .stderr
        .all()
        .into_iter()
        .filter(|l| l.contains("agent refused"))
        .collect();
    assert_eq!(
        refusals.len(),
        3,
        "the server logs each refusal: {refusals:#?}"
    );

    // Nothing changed: the same hosts with the same addresses, and the agents that hold them
    // still connected and heartbeating.
    let after = (hosts_of(CLUSTER).await, hosts_of("other").await);
    assert_eq!(after, before);
    for (cluster, host) in [(CLUSTER, "h1"), ("other", "h2")] {
        let beat = |h: Value| h["last_heartbeat"].as_i64().unwrap_or(0);
        let path = format!("/clusters/{cluster}/hosts/{host}");
        let then = beat(api.get(&path).await.expect(200).clone());
        wait_until(
            &format!("{host} to heartbeat again"),
            Duration::from_secs(15),
            || async {
                let h = api.get(&path).await.expect(200).clone();
                (h["state"] == "ONLINE" && beat(h) > then).then_some(())
            },
        )
        .await;
    }
    for host in ["h1", "h2"] {
        let agent = &rig.agents[host].proc;
        assert!(
            alive(Pid::from_raw(agent.pid() as i32)),
            "agent {host} runs"
        );
    }
    // proto/README.md: "The server logs every refusal with the peer's address."
    for line in &refusals {
        assert!(
            line.contains("peer=127.0.0.1:"),
            "a refusal logged without the agent's address: {line}"
        );
    }
}

/// Submits `command` on service `service`; returns the job's id.
async fn submit_to(api: &Api, command: &str, service: &str) -> i64 {
    let target = json!({ "service": service });
    api.submit(CLUSTER, command, target).await
}

/// Runs `command` on service `service` to its end, which must be SUCCEEDED; returns the job.
async fn run_on(api: &Api, command: &str, service: &str) -> Value {
    let id = submit_to(api, command, service).await;
    api.expect_success(id, JOB_TIMEOUT).await
}

/// The server's log of a task: (stream, line) pairs in order.
async fn log_of(api: &Api, job: &Value, task: &Value) -> Vec<(String, String)> {
    let log = api
        .get(&format!("/jobs/{}/tasks/{}/log", job["id"], task["id"]))
        .await;
    log.expect(200)["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            (s("stream"), s("line"))
        })
        .collect()
}

/// How many events the agent with root `root` holds unacknowledged in its spool.
fn spool_pending(root: &Path) -> usize {
    let text = std::fs::read(root.join("spool.jsonl")).unwrap_or_default();
    let lines: Vec<Value> = text
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    let acked = lines.iter().filter_map(|l| l["ack"].as_u64()).max();
    lines
        .iter()
        .filter_map(|l| l["seq"].as_u64())
        .filter(|seq| acked.is_none_or(|a| *seq > a))
        .count()
}

/// The lines of an agent's rejected file (`<root>/spool.rejected`), as JSON.
fn rejected(root: &Path) -> Vec<Value> {
    std::fs::read_to_string(root.join("spool.rejected"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The peak resident memory of process `pid`, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Asserts that no process of the rig logged a broken session or a LOST host.
fn assert_sessions_held(rig: &Rig, host: &str) {
    let agent = rig.agents[host].proc.stderr.text();
    assert!(
        !agent.contains("session ended"),
        "the agent's session broke:\n{agent}"
    );
    let server = rig.server().proc.stderr.text();
    for sign in ["agent stream broke", "host LOST"] {
        assert!(
            !server.contains(sign),
            "the server logged {sign:?}:\n{server}"
        );
    }
}

/// "A task prints lines of 1 MB, 20 MB and 100 MB, four of 5 MB (too much for one message
/// together), 20 MB on stderr and 5 MB of binary without a newline: each arrives cut to 64 KiB
/// with a marker naming its length and the file that holds it whole; the agent's session never
/// breaks, the host never goes LOST, the spool drains, the agent never holds a long line in
/// memory, and the next job's log arrives whole."
#[tokio::test]
async fn huge_output_lines_arrive_cut_and_the_next_job_s_log_arrives_whole() {
    let (rig, api) = Rig::with_service(&["h1"], "loud", &["h1"]).await;
    add_service(&api, "chatty", &["h1"]).await;
    let root = rig.root("h1");

    let done = run_on(&api, "start", "loud").await;
    let task = task_on(&done, "loud", "h1");
    let stdout = stdout_log(&root, &task);
    let stderr = stdout.with_file_name("stderr.log");
    let want_last = "loud start done on h1";
    let log = wait_until("the loud task's whole log", JOB_TIMEOUT, || async {
        let log = log_of(&api, &done, &task).await;
        log.iter().any(|(_, l)| l == want_last).then_some(log)
    })
    .await;
    let shown: Vec<String> = log
        .iter()
        .map(|(s, l)| {
            let head: String = l.chars().take(20).collect();
            format!("{s}: {head} … ({} bytes)", l.len())
        })
        .collect();
    assert_eq!(log.len(), 11, "{shown:#?}");
    assert_eq!(log[0].1, "loud start started on h1 at 127.0.0.2");
    let cut = |(stream, line): &(String, String), fill: char, bytes: usize| {
        let file = if stream == "stderr" { &stderr } else { &stdout };
        let marker = format!(
            " … [line truncated: {bytes} bytes; full output in {}]",
            file.display()
        );
        assert!(line.len() <= 64 * 1024, "{} bytes", line.len());
        assert!(line.ends_with(&marker), "{line:?}");
        let head = &line[..line.len() - marker.len()];
        assert!(head.len() > 60_000 && head.chars().all(|c| c == fill));
    };
    cut(&log[1], 'a', 1 << 20);
    cut(&log[2], 'b', 20 << 20);
    cut(&log[3], 'c', 100 << 20);
    for line in &log[4..8] {
        cut(line, 'd', 5 << 20);
    }
    let errs: Vec<_> = log.iter().filter(|(s, _)| s == "stderr").collect();
    assert_eq!(errs.len(), 1, "{shown:#?}");
    cut(errs[0], 'e', 20 << 20);
    let stdout_lines: Vec<_> = log.iter().filter(|(s, _)| s == "stdout").collect();
    let binary = &stdout_lines[8].1;
    assert!(binary.len() <= 64 * 1024);
    assert!(
        binary.contains('\u{FFFD}'),
        "invalid UTF-8 arrives replaced"
    );
    assert!(
        binary.ends_with(&format!("bytes; full output in {}]", stdout.display())),
        "{binary:?}"
    );
    assert_eq!(stdout_lines[9].1, want_last);
    // The whole output stays on the host.
    let size = std::fs::metadata(&stdout).expect("stdout.log").len();
    assert!(size > 145 << 20, "{size}");

    // The next job's log arrives whole.
    let next = run_on(&api, "start", "chatty").await;
    let task = task_on(&next, "chatty", "h1");
    let want: Vec<String> = std::iter::once("chatty start started on h1 at 127.0.0.2".into())
        .chain((1..=300).map(|i| format!("line {i}")))
        .chain(std::iter::once("chatty start done on h1".into()))
        .collect();
    let got = wait_until("the chatty task's whole log", JOB_TIMEOUT, || async {
        let log: Vec<String> = log_of(&api, &next, &task)
            .await
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        (log.len() >= want.len()).then_some(log)
    })
    .await;
    assert_eq!(got, want);

    wait_local("the agent's spool to drain", JOB_TIMEOUT, || {
        spool_pending(&root) == 0
    })
    .await;
    assert!(rejected(&root).is_empty(), "nothing was set aside");
    assert_eq!(host_state(&api, CLUSTER, "h1").await, "ONLINE");
    assert_sessions_held(&rig, "h1");
    // A 100 MB line held whole (let alone converted and encoded) would show here.
    let peak = peak_rss_kib(rig.agents["h1"].proc.pid());
    assert!(peak < 64 * 1024, "the agent's peak memory was {peak} KiB");
    eprintln!("the agent's peak memory: {peak} KiB");
}

/// "An agent restarted on a spool holding an event spooled before the limits (a 20 MB line), a
/// line that is not JSON, and an event the server refuses (a result in a state that is not
/// final): it sends the first cut, sets the other two aside with their reasons, never replays
/// them, drains its spool, and the next job's log arrives whole."
#[tokio::test]
async fn a_poisoned_spool_does_not_wedge_a_restarted_agent() {
    let (mut rig, api) = Rig::with_service(&["h1"], "chatty", &["h1"]).await;
    let root = rig.root("h1");
    let first = run_on(&api, "start", "chatty").await;
    let task = task_on(&first, "chatty", "h1");
    wait_local("the agent's spool to drain", JOB_TIMEOUT, || {
        spool_pending(&root) == 0
    })
    .await;
    rig.kill_agent("h1");

    // What the spool holds: the sequence goes on after its highest number.
    let spool = root.join("spool.jsonl");
    let text = std::fs::read_to_string(&spool).expect("spool");
    let last = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| l["seq"].as_u64().or(l["ack"].as_u64()))
        .max()
        .expect("a spooled event");
    let run = json!({"task": task["id"], "attempt": task["attempt"]});
    let huge = json!({"seq": last + 1, "event": {"Log": {
        "run": run, "stream": "stdout", "seq": 1000, "at": 1, "line": "p".repeat(20 << 20),
    }}});
    let refused = json!({"seq": last + 2, "event": {"Finished": {"run": run, "result": {
        "state": "RUNNING", "exit_code": null, "pid": null, "started_at": null,
        "finished_at": 1, "message": "bogus",
    }}}});
    let mut poison = Vec::new();
    poison.extend(huge.to_string().as_bytes());
    poison.extend(b"\n\0\xffnot a spool line\n");
    poison.extend(refused.to_string().as_bytes());
    poison.push(b'\n');
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&spool)
        .expect("spool")
        .write_all(&poison)
        .expect("poison the spool");

    rig.start_agent("h1", None);
    wait_host(&api, CLUSTER, "h1", "ONLINE", ONLINE_TIMEOUT).await;
    // The 20 MB line arrives, cut.
    let line = wait_until("the spooled 20 MB line, cut", JOB_TIMEOUT, || async {
        log_of(&api, &first, &task)
            .await
            .into_iter()
            .map(|(_, l)| l)
            .find(|l| l.starts_with("ppp"))
    })
    .await;
    assert!(line.len() <= 64 * 1024, "{}", line.len());
    assert!(line.ends_with(" … [line truncated: 20971520 bytes]"));
    // The other two are set aside with their reasons, and the spool drains.
    wait_local("the agent's spool to drain", JOB_TIMEOUT, || {
        spool_pending(&root) == 0 && rejected(&root).len() == 2
    })
    .await;
    let set_aside = rejected(&root);
    let reasons: Vec<&str> = set_aside
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or_default())
        .collect();
    assert!(reasons[0].contains("not a spool line"), "{reasons:?}");
    assert!(
        set_aside[0]["line"]
            .as_str()
            .unwrap()
            .contains("not a spool line")
    );
    assert!(
        reasons[1].starts_with("the server refused it: ")
            && reasons[1].contains("'RUNNING' is not a final task state"),
        "{reasons:?}"
    );
    assert_eq!(set_aside[1]["seq"], last + 2);
    let first_again = job(&api, first["id"].as_i64().unwrap()).await;
    assert_eq!(
        first_again["state"], "SUCCEEDED",
        "the refused result changed nothing"
    );

    // Later events flow: the next job's log arrives whole.
    let next = run_on(&api, "start", "chatty").await;
    let task = task_on(&next, "chatty", "h1");
    let got = wait_until("the next job's whole log", JOB_TIMEOUT, || async {
        let log = log_of(&api, &next, &task).await;
        (log.len() >= 302).then_some(log)
    })
    .await;
    assert_eq!(got.len(), 302);
    assert_eq!(got[150].1, "line 150");
    wait_local("the agent's spool to drain", JOB_TIMEOUT, || {
        spool_pending(&root) == 0
    })
    .await;
    assert_eq!(rejected(&root).len(), 2, "nothing more set aside");
    let agent = rig.agents["h1"].proc.stderr.text();
    assert!(!agent.contains("session ended"), "{agent}");
}
