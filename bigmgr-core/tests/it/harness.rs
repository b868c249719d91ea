//! Shared test set-up: a stack written into a temp dir, a Manager on SQLite, in-process agents.

use bigmgr_core::agent::LocalTransport;
use bigmgr_core::agent::{AgentConfig, ProcessExecutor};
use bigmgr_core::manager::AddService;
use bigmgr_core::model::*;
use bigmgr_core::stack::DirStackProvider;
use bigmgr_core::store::SqlStore;
use bigmgr_core::{EngineConfig, Manager};
use bigmgr_test_support::write_executable;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One service of a test stack: one server component whose commands all run `script`.
pub struct Svc<'a> {
    pub name: &'a str,
    pub component: &'a str,
    /// The script body after `#!/bin/sh`; `$1` is the command.
    pub script: &'a str,
    /// Extra TOML inside the `[[component]]` table (e.g. command timeouts).
    pub component_toml: &'a str,
    /// Order rules: (blocked, [after]).
    pub order: &'a [(&'a str, &'a [&'a str])],
}

/// Writes `<root>/test/1.0.0/<svc>/service.toml` and `run.sh` for each service.
pub fn write_stack(root: &Path, services: &[Svc<'_>]) {
    for s in services {
        let dir = root.join("test").join("1.0.0").join(s.name);
        std::fs::create_dir_all(&dir).expect("service dir");
        let mut toml = format!(
            "[service]\nname = \"{}\"\nversion = \"1.0\"\ndescription = \"test service {}\"\n\n[[component]]\nname = \"{}\"\ncategory = \"server\"\ncardinality = \"1+\"\nscript = \"run.sh\"\n{}\n",
            s.name, s.name, s.component, s.component_toml
        );
        if !s.order.is_empty() {
            toml.push_str("\n[order]\n");
            for (blocked, after) in s.order {
                let after: Vec<String> = after.iter().map(|a| format!("\"{a}\"")).collect();
                toml.push_str(&format!("\"{blocked}\" = [{}]\n", after.join(", ")));
            }
        }
        std::fs::write(dir.join("service.toml"), toml).expect("manifest");
        write_executable(&dir.join("run.sh"), &format!("#!/bin/sh\n{}\n", s.script));
    }
}

/// Writes the test stack under `<dir>/stacks` with one service, `a`, whose component
/// `a_server` runs `script` for every command (`component_toml`: extra TOML in its table).
pub fn write_a(dir: &Path, script: &str, component_toml: &str) {
    let a = Svc {
        name: "a",
        component: "a_server",
        script,
        component_toml,
        order: &[],
    };
    write_stack(&dir.join("stacks"), &[a]);
}

/// A Manager with `hosts` in-process agents (h1, h2 … on 127.0.0.2, 127.0.0.3 …) in cluster c1.
pub struct Harness {
    pub mgr: Manager,
    /// The Manager's store, for checks of what it keeps.
    pub store: Arc<dyn bigmgr_core::store::Store>,
    pub transport: Arc<LocalTransport>,
    pub hosts: Vec<String>,
    /// Kills the daemons the agents' scripts started when the harness goes, also when a
    /// test fails before its stop job.
    pub daemons: bigmgr_test_support::DaemonGuard,
}

/// Where agent `h`'s root is under `dir`.
pub fn agent_root(dir: &Path, host: &str) -> PathBuf {
    dir.join("agents").join(host)
}

/// Builds a Manager on `db` (a SQLite file under `dir`) with agents attached; creates the
/// cluster and hosts only if `create` is set.
pub async fn start(dir: &Path, hosts: usize, create: bool, grace: Duration) -> Harness {
    let store: Arc<dyn bigmgr_core::store::Store> = Arc::new(
        SqlStore::open_path(&dir.join("bigmgr.db"))
            .await
            .expect("store"),
    );
    let transport = LocalTransport::new();
    let names: Vec<String> = (1..=hosts).map(|i| format!("h{i}")).collect();
    for (i, h) in names.iter().enumerate() {
        let mut cfg = AgentConfig::new(h, format!("127.0.0.{}", i + 2), agent_root(dir, h));
        cfg.grace = grace;
        transport
            .spawn_agent(cfg, Arc::new(ProcessExecutor))
            .await
            .expect("agent");
    }
    let mgr = Manager::builder()
        .store_arc(store.clone())
        .transport(transport.clone())
        .stacks(DirStackProvider::new([dir.join("stacks")]))
        .config(EngineConfig {
            tick: Duration::from_millis(100),
            ..EngineConfig::default()
        })
        .build()
        .await
        .expect("manager");
    if create {
        mgr.create_cluster("c1").await.expect("cluster");
        for (i, h) in names.iter().enumerate() {
            mgr.add_host("c1", h, &format!("127.0.0.{}", i + 2))
                .await
                .expect("host");
        }
    }
    Harness {
        mgr,
        store,
        transport,
        hosts: names,
        daemons: bigmgr_test_support::DaemonGuard(dir.join("agents")),
    }
}

impl Harness {
    /// Adds service `name` from stack `test` with its component on `hosts`.
    pub async fn add(&self, name: &str, component: &str, hosts: &[String]) {
        let mut placement = BTreeMap::new();
        placement.insert(component.to_string(), hosts.to_vec().into());
        self.mgr
            .add_service(
                "c1",
                AddService {
                    name: name.into(),
                    stack: "test".into(),
                    version: None,
                    service: name.into(),
                    placement,
                    configs: Default::default(),
                    host_overrides: Default::default(),
                },
            )
            .await
            .expect("add service");
    }

    /// Submits `command` on `target` with `options`.
    pub async fn submit(&self, command: &str, target: Target, options: JobOptions) -> Job {
        self.mgr
            .submit(JobRequest {
                cluster: "c1".into(),
                target,
                command: command.into(),
                options,
            })
            .await
            .expect("submit")
    }

    /// Submits `command` on `target` with the default options.
    pub async fn run(&self, command: &str, target: Target) -> Job {
        self.submit(command, target, JobOptions::default()).await
    }

    /// Waits (at most `secs`) for the job to end.
    pub async fn wait(&self, id: JobId, secs: u64) -> Job {
        tokio::time::timeout(Duration::from_secs(secs), self.mgr.wait(id))
            .await
            .unwrap_or_else(|_| panic!("job {id} did not end within {secs} s"))
            .expect("wait")
    }
}

/// Polls `f` every 20 ms until it is true or `secs` pass (then panics with `what`).
pub async fn until<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The tasks of a job's stage whose name starts with `prefix` (e.g. `START a/`).
pub fn stage_tasks<'a>(d: &'a JobDetail, prefix: &str) -> (&'a Stage, Vec<&'a Task>) {
    let st = d
        .stages
        .iter()
        .find(|s| s.name.starts_with(prefix))
        .unwrap_or_else(|| {
            panic!(
                "no stage {prefix} in {:?}",
                d.stages.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    (st, d.tasks.iter().filter(|t| t.stage == st.id).collect())
}

/// Lines of a file, or none if it does not exist.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Lines of a file, sorted; none if it does not exist.
pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines = lines(path);
    lines.sort();
    lines
}

/// The greatest number of intervals that overlap at one instant.
pub fn max_overlap(intervals: &[(i64, i64)]) -> usize {
    let mut points: Vec<(i64, i32)> = Vec::new();
    for &(a, b) in intervals {
        points.push((a, 1));
        points.push((b, -1));
    }
    // Ends sort before starts at the same instant: touching intervals do not overlap.
    points.sort();
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in points {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

/// True if a process with this pid runs (exists and is no zombie).
pub fn alive(pid: u32) -> bool {
    bigmgr_test_support::procs::running(pid as i32)
}
