//! The gRPC transport in one process: a real tonic server on a loopback port, real agents
//! dialing it with `run_agent`, real scripts.

use crate::harness::{Svc, until, write_stack};
use bigmgr_core::address::HOSTILE_EXAMPLES;
use bigmgr_core::agent::{AgentConfig, ProcessExecutor};
use bigmgr_core::grpc::{AgentClientConfig, GrpcSettings, GrpcTransport, pb, run_agent};
use bigmgr_core::manager::AddService;
use bigmgr_core::model::*;
use bigmgr_core::stack::DirStackProvider;
use bigmgr_core::store::{SqlStore, Store};
use bigmgr_core::{EngineConfig, Error, Manager};
use bigmgr_test_support::assert_contains;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server: Manager over a GrpcTransport served on a loopback port.
struct Server {
    mgr: Manager,
    store: Arc<dyn Store>,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(dir: &Path, heartbeat: Duration) -> Server {
        Server::start_with(dir, heartbeat, EngineConfig::default().lost_grace).await
    }

    /// A server whose engine waits `lost_grace` for a LOST host's tasks.
    async fn start_with(dir: &Path, heartbeat: Duration, lost_grace: Duration) -> Server {
        let store: Arc<dyn Store> = Arc::new(
            SqlStore::open_path(&dir.join("bigmgr.db"))
                .await
                .expect("store"),
        );
        let transport = GrpcTransport::new(
            store.clone(),
            GrpcSettings {
                heartbeat_interval: heartbeat,
                lost_after: 3,
                ..GrpcSettings::default()
            },
            None,
        );
        let mgr = Manager::builder()
            .store_arc(Arc::clone(&store))
            .transport(Arc::clone(&transport))
            .stacks(DirStackProvider::new([dir.join("stacks")]))
            .config(EngineConfig {
                tick: Duration::from_millis(100),
                lost_grace,
                ..EngineConfig::default()
            })
            .build()
            .await
            .expect("manager");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let routes = transport.routes();
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        Server {
            mgr,
            store,
            url: format!("http://{addr}"),
            stop: Some(stop),
            task,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// An agent task; aborted when dropped (its scripts keep running, as after a crash).
struct AgentTask(JoinHandle<bigmgr_core::Result<()>>);

impl Drop for AgentTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A fresh directory with `stack` written in, a server (heartbeat 1 s) on it with cluster
/// `c1`, and a join token of `c1`.
async fn c1(stack: fn(&Path)) -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    stack(dir.path());
    let server = Server::start(dir.path(), Duration::from_secs(1)).await;
    server.mgr.create_cluster("c1").await.expect("cluster");
    let token = server.mgr.create_join_token("c1").await.expect("token");
    (dir, server, token)
}

fn agent_root(dir: &Path, name: &str) -> PathBuf {
    dir.join("agents").join(name)
}

fn client(url: &str, token: Option<&str>, dir: &Path, name: &str, i: usize) -> AgentClientConfig {
    AgentClientConfig {
        server: url.to_owned(),
        join_token: token.map(str::to_owned),
        agent: AgentConfig::new(name, format!("127.0.0.{}", i + 2), agent_root(dir, name)),
        ca_fingerprint: None,
        metrics_cgroup: None,
    }
}

fn spawn_agent(cfg: AgentClientConfig) -> AgentTask {
    AgentTask(tokio::spawn(run_agent(
        cfg,
        Arc::new(ProcessExecutor),
        std::future::pending(),
    )))
}

/// Spawns agent `name` (the `i`th) with the join token and waits until its host is ONLINE and
/// it saved its credential, so that a restarted agent comes back without the token.
async fn joined_agent(server: &Server, token: &str, dir: &Path, name: &str, i: usize) -> AgentTask {
    let agent = spawn_agent(client(&server.url, Some(token), dir, name, i));
    until(20, "the agent online with its credential saved", || async {
        host_state(&server.mgr, name).await == Some(HostState::Online)
            && agent_root(dir, name).join("credential.json").exists()
    })
    .await;
    agent
}

/// A service whose `start` counts its runs in the unit dir and prints a line.
fn counting_stack(dir: &Path) {
    svc_stack(
        dir,
        r#"echo "$1 on $BIGMGR_HOST"; echo "$1" >> "$BIGMGR_UNIT_DIR/runs"; sleep "${SLEEP:-0}""#,
        "",
    );
}

/// The test stack under `<dir>/stacks` with one service, `svc`, whose component `server` runs
/// `script` (`component_toml`: extra TOML in its table).
fn svc_stack(dir: &Path, script: &str, component_toml: &str) {
    let svc = Svc {
        name: "svc",
        component: "server",
        script,
        component_toml,
        order: &[],
    };
    write_stack(&dir.join("stacks"), &[svc]);
}

async fn add_svc(mgr: &Manager, hosts: &[&str]) {
    let mut placement = BTreeMap::new();
    placement.insert(
        "server".to_string(),
        hosts.iter().map(|h| h.to_string()).collect(),
    );
    mgr.add_service(
        "c1",
        AddService {
            name: "svc".into(),
            stack: "test".into(),
            version: None,
            service: "svc".into(),
            placement,
            configs: Default::default(),
            host_overrides: Default::default(),
        },
    )
    .await
    .expect("add service");
}

async fn host_state(mgr: &Manager, name: &str) -> Option<HostState> {
    mgr.host("c1", name).await.ok().map(|h| h.state)
}

#[tokio::test]
async fn agents_join_and_run_a_job_over_grpc() {
    let (dir, server, token) = c1(counting_stack).await;
    let names = ["h1", "h2", "h3"];
    let _agents: Vec<AgentTask> = names
        .iter()
        .enumerate()
        .map(|(i, n)| spawn_agent(client(&server.url, Some(&token), dir.path(), n, i)))
        .collect();
    until(
        20,
        "three hosts joined and saved their credentials",
        || async {
            server.mgr.hosts("c1").await.map(|h| h.len()).unwrap_or(0) == 3
                && names
                    .iter()
                    .all(|n| agent_root(dir.path(), n).join("credential.json").exists())
        },
    )
    .await;
    for (i, n) in names.iter().enumerate() {
        let h = server.mgr.host("c1", n).await.expect("host");
        assert_eq!(h.address, format!("127.0.0.{}", i + 2));
        let facts = h.facts.expect("facts reported at registration");
        assert!(facts.cores > 0 && facts.memory_bytes > 0, "{facts:?}");
        let cred = agent_root(dir.path(), n).join("credential.json");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&cred)
                .expect("credential file")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
    add_svc(&server.mgr, &names).await;
    let (job, done) = start_svc(&server.mgr, "job ends").await;
    assert_eq!(done.state, JobState::Succeeded);
    let detail = server.mgr.job(job).await.expect("detail");
    assert_eq!(detail.tasks.len(), 3);
    let hosts = server.mgr.hosts("c1").await.expect("hosts");
    let host_of = |t: &Task| hosts.iter().find(|h| h.id == t.host).expect("host");
    for t in &detail.tasks {
        assert_eq!(t.state, TaskState::Succeeded);
        let log = server.mgr.task_log(t.id, None).await.expect("log");
        let host = host_of(t);
        assert!(
            log.iter()
                .any(|l| l.line == format!("start on {}", host.name)),
            "{log:?}"
        );
    }
    // Once the results are stored, each agent is told to forget its run (in the same Ack that
    // acknowledges its events): its ledger records the clean.
    for t in &detail.tasks {
        let ledger = agent_root(dir.path(), &host_of(t).name).join("ledger.jsonl");
        let run = serde_json::json!({"task": t.id.0, "attempt": t.attempt});
        until(10, "the agent's ledger records the clean", || async {
            std::fs::read_to_string(&ledger).is_ok_and(|text| {
                text.lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .any(|v| {
                        v["clean"]
                            .as_array()
                            .is_some_and(|runs| runs.contains(&run))
                    })
            })
        })
        .await;
    }
    // Heartbeats carry metrics, and each unit's health from the stack's `status` command.
    until(10, "a heartbeat with metrics", || async {
        server
            .mgr
            .host("c1", "h1")
            .await
            .is_ok_and(|h| h.metrics.is_some_and(|m| m.memory_total_bytes > 0))
    })
    .await;
    until(10, "every unit's health from `status`", || async {
        server.mgr.units("c1").await.is_ok_and(|units| {
            units.len() == 3
                && units.iter().all(|u| {
                    u.health
                        .as_ref()
                        .is_some_and(|h| h.healthy && h.message.starts_with("status on h"))
                })
        })
    })
    .await;
}

#[tokio::test]
async fn refusals_say_why_and_change_nothing() {
    let (dir, server, token1) = c1(counting_stack).await;
    server.mgr.create_cluster("c2").await.expect("cluster");
    let token2 = server.mgr.create_join_token("c2").await.expect("token");

    // A refused agent returns at once, refused: the reason.
    let refused = |cfg: AgentClientConfig| async move {
        let run = run_agent(cfg, Arc::new(ProcessExecutor), std::future::pending());
        match tokio::time::timeout(Duration::from_secs(20), run).await {
            Ok(Err(Error::Refused(reason))) => reason,
            other => panic!("not refused at once: {other:?}"),
        }
    };
    // A wrong token.
    assert_contains(
        refused(client(&server.url, Some("bmj_wrong"), dir.path(), "h1", 0)).await,
        "join token is not valid",
    );
    assert!(server.mgr.hosts("c1").await.expect("hosts").is_empty());

    // h1 joins c1; a second agent claiming h1 is refused.
    let _h1 = spawn_agent(client(&server.url, Some(&token1), dir.path(), "h1", 0));
    until(20, "h1 joined", || async {
        host_state(&server.mgr, "h1").await == Some(HostState::Online)
    })
    .await;
    let other = tempfile::tempdir().expect("tempdir");
    assert_contains(
        refused(client(&server.url, Some(&token1), other.path(), "h1", 0)).await,
        "already taken by another agent",
    );
    // h1 can't join c2 either.
    assert_contains(
        refused(client(&server.url, Some(&token2), other.path(), "h1", 0)).await,
        "already belongs to cluster 'c1'",
    );
    assert!(server.mgr.hosts("c2").await.expect("hosts").is_empty());
    assert_eq!(server.mgr.hosts("c1").await.expect("hosts").len(), 1);
    // The server keeps only a hash of h1's credential.
    let saved: serde_json::Value = serde_json::from_slice(
        &std::fs::read(agent_root(dir.path(), "h1").join("credential.json")).expect("credential"),
    )
    .expect("credential JSON");
    let plain = saved["credential"].as_str().expect("credential field");
    assert!(plain.starts_with("bma_"), "{plain}");
    let h1 = server.mgr.host("c1", "h1").await.expect("h1");
    let stored = server
        .store
        .host_credential(h1.id)
        .await
        .expect("credential")
        .expect("set");
    assert_eq!(stored, bigmgr_core::secret::hash(plain));
    // A copy of h1's credential does not let an agent claim another name.
    let copy = tempfile::tempdir().expect("tempdir");
    let copy_root = copy.path().join("agents").join("h9");
    std::fs::create_dir_all(&copy_root).expect("root");
    std::fs::copy(
        agent_root(dir.path(), "h1").join("credential.json"),
        copy_root.join("credential.json"),
    )
    .expect("copy");
    assert_contains(
        refused(client(&server.url, None, copy.path(), "h9", 7)).await,
        "'h9' is not known",
    );
}

#[tokio::test]
async fn a_silent_host_turns_lost_and_comes_back() {
    let (dir, server, token) = c1(counting_stack).await;
    // Online and holding its credential: the restarted agent comes back without a token.
    let agent = joined_agent(&server, &token, dir.path(), "h1", 0).await;
    drop(agent);
    until(10, "h1 LOST after 3 silent intervals", || async {
        host_state(&server.mgr, "h1").await == Some(HostState::Lost)
    })
    .await;
    // Back with its credential (no token needed any more).
    let _agent = spawn_agent(client(&server.url, None, dir.path(), "h1", 0));
    until(20, "h1 ONLINE again", || async {
        host_state(&server.mgr, "h1").await == Some(HostState::Online)
    })
    .await;
}

#[tokio::test]
async fn a_host_no_agent_ever_claimed_stays_waiting_and_an_agent_can_claim_it() {
    let (dir, server, _) = c1(counting_stack).await;
    // Added by an operator while the server runs; no agent speaks for it.
    let added = server
        .mgr
        .add_host("c1", "h1", "127.0.0.2")
        .await
        .expect("host");
    assert_eq!(added.state, HostState::Waiting);
    // Well past the 3 intervals that make a silent host LOST: it is still waiting, as it says.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let h = server.mgr.host("c1", "h1").await.expect("host");
    assert_eq!(
        (h.state, h.last_heartbeat),
        (HostState::Waiting, None),
        "a host no agent registered for is WAITING, not LOST nor ONLINE"
    );
    // Its agent joins with the cluster's token and claims it.
    let token = server.mgr.create_join_token("c1").await.expect("token");
    let _agent = spawn_agent(client(&server.url, Some(&token), dir.path(), "h1", 0));
    until(20, "h1 ONLINE once claimed", || async {
        host_state(&server.mgr, "h1").await == Some(HostState::Online)
    })
    .await;
    assert_eq!(server.mgr.hosts("c1").await.expect("hosts").len(), 1);
}

#[tokio::test]
async fn removing_a_host_ends_its_agents_session_and_refuses_it() {
    let (dir, server, token) = c1(counting_stack).await;
    let agent = tokio::spawn(run_agent(
        client(&server.url, Some(&token), dir.path(), "h1", 0),
        Arc::new(ProcessExecutor),
        std::future::pending(),
    ));
    until(20, "h1 online", || async {
        host_state(&server.mgr, "h1").await == Some(HostState::Online)
            && agent_root(dir.path(), "h1")
                .join("credential.json")
                .exists()
    })
    .await;
    server.mgr.remove_host("c1", "h1").await.expect("remove");
    let ended = tokio::time::timeout(Duration::from_secs(20), agent)
        .await
        .expect("the agent stops once refused")
        .expect("join");
    let err = ended.unwrap_err();
    assert!(
        matches!(&err, Error::Refused(m) if m.contains("'h1' is not known")),
        "{err}"
    );
    assert!(server.mgr.hosts("c1").await.expect("hosts").is_empty());
}

/// Registers once over a raw gRPC session: the first answer, a `Registered` or the status the
/// server refused with. The session ends when this returns.
async fn register_raw(
    url: &str,
    name: &str,
    address: &str,
    auth: pb::register::Auth,
) -> std::result::Result<pb::Registered, tonic::Status> {
    RawSession::connect(url, name, address, auth)
        .await
        .map(|(_, registered)| registered)
}

/// An address is checked wherever it arrives: a join or a later registration with a hostile
/// one is refused naming the setting, and nothing is written; an agent reporting a new (valid)
/// address is admitted but its host keeps the address until an admin accepts it, and the
/// audit log says so.
#[tokio::test]
async fn addresses_are_checked_at_registration_and_a_new_one_waits_for_an_admin() {
    use pb::register::Auth;
    let (dir, server, token) = c1(counting_stack).await;

    for bad in HOSTILE_EXAMPLES {
        let e = register_raw(&server.url, "h1", bad, Auth::JoinToken(token.clone()))
            .await
            .expect_err(bad);
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{bad:?}: {e:?}");
        assert!(
            e.message().contains("--address") && e.message().contains("address"),
            "{bad:?}: {}",
            e.message()
        );
        let e = server
            .mgr
            .add_host("c1", "h2", bad)
            .await
            .expect_err("add_host");
        assert!(matches!(e, Error::Invalid(_)), "{bad:?}: {e}");
    }
    assert!(
        server.mgr.hosts("c1").await.expect("hosts").is_empty(),
        "nothing was written"
    );

    // A real agent joins; then its credential registers again with other addresses.
    let agent = joined_agent(&server, &token, dir.path(), "h1", 0).await;
    drop(agent);
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(agent_root(dir.path(), "h1").join("credential.json")).unwrap(),
    )
    .unwrap();
    let credential = saved["credential"].as_str().expect("credential").to_owned();
    for bad in HOSTILE_EXAMPLES {
        let e = register_raw(&server.url, "h1", bad, Auth::Credential(credential.clone()))
            .await
            .expect_err(bad);
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{bad:?}: {e:?}");
    }
    let h = server.mgr.host("c1", "h1").await.expect("host");
    assert_eq!(
        (h.address.as_str(), h.reported_address.as_deref()),
        ("127.0.0.2", None)
    );

    register_raw(
        &server.url,
        "h1",
        "127.0.0.9",
        Auth::Credential(credential.clone()),
    )
    .await
    .expect("a valid new address is admitted");
    let h = server.mgr.host("c1", "h1").await.expect("host");
    assert_eq!(
        (h.address.as_str(), h.reported_address.as_deref()),
        ("127.0.0.2", Some("127.0.0.9")),
        "the host keeps its address; the agent's is kept aside"
    );
    let admin = bigmgr_core::auth::Actor::system();
    let audit = server
        .mgr
        .audit(&admin, &AuditFilter::default())
        .await
        .expect("audit");
    let rows: Vec<(&str, &str, Outcome)> = audit
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.outcome))
        .collect();
    assert!(
        rows.contains(&("agent:h1", "agent-register", Outcome::Ok)),
        "the join is audited: {rows:?}"
    );
    assert!(
        audit.iter().any(|e| e.actor == "agent:h1"
            && e.outcome == Outcome::Refused
            && e.detail.contains("127.0.0.9")),
        "the reported address is audited: {audit:?}"
    );
    assert!(
        audit
            .iter()
            .filter(|e| e.actor == "agent:h1" && e.outcome == Outcome::Refused)
            .any(|e| e.detail.contains("--address")),
        "a credentialed agent's hostile address is audited: {audit:?}"
    );

    // An admin accepts it.
    let h = server
        .mgr
        .set_host_address("c1", "h1", "127.0.0.9")
        .await
        .expect("accept");
    assert_eq!(
        (h.address.as_str(), h.reported_address.as_deref()),
        ("127.0.0.9", None)
    );
    for bad in HOSTILE_EXAMPLES {
        assert!(matches!(
            server.mgr.set_host_address("c1", "h1", bad).await,
            Err(Error::Invalid(_))
        ));
    }
}

/// Many agents registering for one host with the join token at once: exactly one is admitted
/// (and its credential is the one stored), every other is refused at once naming the host —
/// for a host an operator added, and for a new one.
#[tokio::test]
async fn concurrent_joins_for_one_host_admit_exactly_one() {
    use pb::register::Auth;
    let (_dir, server, _) = c1(counting_stack).await;
    server
        .mgr
        .add_host("c1", "pre", "127.0.0.2")
        .await
        .expect("host");
    let token = server.mgr.create_join_token("c1").await.expect("token");
    for name in ["pre", "fresh"] {
        let joins = (0..24).map(|i| {
            let (url, token) = (server.url.clone(), token.clone());
            tokio::spawn(async move {
                register_raw(
                    &url,
                    name,
                    &format!("127.0.0.{}", 10 + i),
                    Auth::JoinToken(token),
                )
                .await
            })
        });
        let mut admitted = Vec::new();
        let mut refused = 0;
        for j in joins.collect::<Vec<_>>() {
            match j.await.expect("join task") {
                Ok(r) => admitted.push(r.credential),
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
                    assert!(
                        status.message().contains(&format!("'{name}'"))
                            && status.message().contains("already taken"),
                        "{}",
                        status.message()
                    );
                    refused += 1;
                }
            }
        }
        assert_eq!(
            (admitted.len(), refused),
            (1, 23),
            "{name}: exactly one of 24 concurrent joins is admitted"
        );
        let h = server.mgr.host("c1", name).await.expect("host");
        let stored = server
            .store
            .host_credential(h.id)
            .await
            .expect("credential");
        assert_eq!(
            stored,
            Some(bigmgr_core::secret::hash(&admitted[0])),
            "{name}: the admitted agent's credential is the stored one"
        );
    }
    assert_eq!(server.mgr.hosts("c1").await.expect("hosts").len(), 2);
}

/// A service whose `start` and custom `rebalance` (and `reshard`, which declares itself safe to
/// re-run) run long the first time (writing a marker) and succeed at once the second time.
fn once_slow_stack(dir: &Path) {
    svc_stack(
        dir,
        r#"mark="$BIGMGR_UNIT_DIR/$1.ran"
if [ -e "$mark" ]; then echo "$1 again: done"; exit 0; fi
touch "$mark"; echo "$1 first run: working"; sleep 600"#,
        "  [component.commands.start]\n  timeout = \"10m\"\n  \
         [component.commands.rebalance]\n  timeout = \"10m\"\n  \
         [component.commands.reshard]\n  timeout = \"10m\"\n  rerun_if_lost = true\n",
    );
}

async fn submit(mgr: &Manager, command: &str) -> JobId {
    mgr.submit(JobRequest {
        cluster: "c1".into(),
        target: Target::Service("svc".into()),
        command: command.into(),
        options: JobOptions::default(),
    })
    .await
    .expect("submit")
    .id
}

/// Starts `svc` and waits (at most 30 s) for the job to end; panics saying `ends` if it does
/// not. Answers the job's id and its end.
async fn start_svc(mgr: &Manager, ends: &str) -> (JobId, Job) {
    let job = submit(mgr, "start").await;
    let done = tokio::time::timeout(Duration::from_secs(30), mgr.wait(job))
        .await
        .expect(ends)
        .expect("wait");
    (job, done)
}

/// Waits until the job's only task runs and returns its pid (its process group).
async fn running_pid(mgr: &Manager, job: JobId) -> u32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let d = mgr.job(job).await.expect("detail");
        if let Some(pid) = d
            .tasks
            .first()
            .filter(|t| t.state == TaskState::Running)
            .and_then(|t| t.pid)
        {
            return pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the task never ran: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Simulates a host that restarts mid-run: its agent dies (aborted), then the task's whole
/// process group is killed, so neither the process nor an exit status survives.
fn crash_host(agent: AgentTask, pgid: u32) {
    drop(agent);
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pgid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the task's process group");
}

/// A run lost with its host — the agent comes back, but neither the script's process nor its
/// exit status survived — is run again as a new attempt when its command is safe to re-run
/// (the standard commands, and custom ones that say so), and fails with its outcome unknown
/// otherwise. Nothing runs twice at once: the rerun is a new attempt, after the old one ended.
#[tokio::test]
async fn a_run_lost_with_its_host_is_rerun_if_its_command_allows() {
    let (dir, server, token) = c1(once_slow_stack).await;
    let mut agent = joined_agent(&server, &token, dir.path(), "h1", 0).await;
    add_svc(&server.mgr, &["h1"]).await;

    for (command, rerun) in [("start", true), ("rebalance", false), ("reshard", true)] {
        let job = submit(&server.mgr, command).await;
        let pid = running_pid(&server.mgr, job).await;
        let task = server.mgr.job(job).await.expect("detail").tasks[0].id;
        until(20, "the first run's line is stored", || async {
            server
                .mgr
                .task_log(task, None)
                .await
                .is_ok_and(|l| l.iter().any(|l| l.line.ends_with("first run: working")))
        })
        .await;
        crash_host(agent, pid);
        agent = spawn_agent(client(&server.url, None, dir.path(), "h1", 0));
        let done = tokio::time::timeout(Duration::from_secs(30), server.mgr.wait(job))
            .await
            .expect("the job ends")
            .expect("wait");
        let task = server.mgr.job(job).await.expect("detail").tasks[0].clone();
        let log: Vec<String> = server
            .mgr
            .task_log(task.id, None)
            .await
            .expect("log")
            .into_iter()
            .map(|l| format!("{}: {}", l.attempt, l.line))
            .collect();
        if rerun {
            assert_eq!(
                done.state,
                JobState::Succeeded,
                "{command}: {task:?} {log:?}"
            );
            assert_eq!(task.attempt, 2, "{command}: one rerun");
            assert!(
                log.contains(&format!("1: {command} first run: working"))
                    && log.contains(&format!("2: {command} again: done")),
                "{command}: {log:?}"
            );
        } else {
            assert_eq!(done.state, JobState::Failed, "{command}: {task:?}");
            assert_eq!(task.attempt, 1, "{command}: not run again");
            let message = task.message.unwrap_or_default();
            assert!(
                message.contains("outcome is unknown"),
                "{command}: {message}"
            );
        }
    }
    drop(agent);
}

/// A host that turns LOST and stays away does not hold its task for the task's whole timeout
/// (10 minutes here): the task fails once the host has been LOST for the grace period, saying
/// why, and the job ends.
#[tokio::test]
async fn a_task_on_a_host_that_stays_lost_fails_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    once_slow_stack(dir.path());
    let server =
        Server::start_with(dir.path(), Duration::from_secs(1), Duration::from_secs(2)).await;
    server.mgr.create_cluster("c1").await.expect("cluster");
    let token = server.mgr.create_join_token("c1").await.expect("token");
    let agent = joined_agent(&server, &token, dir.path(), "h1", 0).await;
    add_svc(&server.mgr, &["h1"]).await;
    let job = submit(&server.mgr, "start").await;
    let pid = running_pid(&server.mgr, job).await;
    let lost_at = std::time::Instant::now();
    crash_host(agent, pid);
    let done = tokio::time::timeout(Duration::from_secs(30), server.mgr.wait(job))
        .await
        .expect("the job ends long before the task's 10-minute timeout")
        .expect("wait");
    assert_eq!(done.state, JobState::Failed);
    assert!(
        lost_at.elapsed() >= Duration::from_secs(3 + 2),
        "not before LOST (3 intervals) and the grace (2 s): {:?}",
        lost_at.elapsed()
    );
    let task = server.mgr.job(job).await.expect("detail").tasks[0].clone();
    let message = task.message.unwrap_or_default();
    assert!(
        message.contains("LOST") && message.contains("outcome is unknown"),
        "{message}"
    );
    assert_eq!(host_state(&server.mgr, "h1").await, Some(HostState::Lost));
}

/// A hand-made agent session: registers `name` with `token`, then sends what the test gives it.
struct RawSession {
    tx: tokio::sync::mpsc::Sender<pb::AgentMessage>,
    inbound: tonic::Streaming<pb::ServerMessage>,
}

impl RawSession {
    async fn open(url: &str, token: &str, name: &str) -> RawSession {
        let auth = pb::register::Auth::JoinToken(token.into());
        RawSession::connect(url, name, "127.0.0.9", auth)
            .await
            .expect("registered")
            .0
    }

    /// Registers `name` with `address` and `auth`: the session and the server's `Registered`,
    /// or the status it refused with.
    async fn connect(
        url: &str,
        name: &str,
        address: &str,
        auth: pb::register::Auth,
    ) -> std::result::Result<(RawSession, pb::Registered), tonic::Status> {
        let mut client = pb::agent_service_client::AgentServiceClient::connect(url.to_owned())
            .await
            .expect("connect");
        // The stream stays open while the session lives, as an agent's would.
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tx.send(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Register(pb::Register {
                name: name.into(),
                address: address.into(),
                auth: Some(auth),
                ..pb::Register::default()
            })),
        })
        .await
        .expect("register");
        let mut inbound = client
            .session(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await?
            .into_inner();
        let first = inbound.message().await?;
        match first.and_then(|m| m.body) {
            Some(pb::server_message::Body::Registered(r)) => Ok((RawSession { tx, inbound }, r)),
            other => panic!("the first answer to Register was {other:?}"),
        }
    }

    async fn send(&self, events: Vec<pb::TaskEvent>) {
        self.tx
            .send(pb::AgentMessage {
                body: Some(pb::agent_message::Body::Events(pb::TaskEvents { events })),
            })
            .await
            .expect("send");
    }

    /// The next `Ack` (skipping other messages), within `secs`.
    async fn ack(&mut self, secs: u64) -> pb::Ack {
        tokio::time::timeout(Duration::from_secs(secs), async {
            loop {
                let msg = self.inbound.message().await.expect("stream").expect("open");
                if let Some(pb::server_message::Body::Ack(ack)) = msg.body {
                    return ack;
                }
            }
        })
        .await
        .expect("an Ack in time")
    }
}

/// A log line event of task `task`.
fn log_event(seq: u64, task: i64, line: &str) -> pb::TaskEvent {
    pb::TaskEvent {
        seq,
        run: Some(pb::RunRef { task, attempt: 1 }),
        kind: Some(pb::task_event::Kind::Log(pb::LogLine {
            stream: pb::Stream::Stdout as i32,
            seq: 0,
            at_ms: 1,
            line: line.into(),
        })),
    }
}

#[tokio::test]
async fn a_malformed_event_is_refused_at_once_and_acknowledges_nothing_else() {
    let (_dir, server, token) = c1(counting_stack).await;
    let mut raw = RawSession::open(&server.url, &token, "h9").await;
    let malformed = pb::TaskEvent {
        seq: 1,
        run: Some(pb::RunRef {
            task: 1,
            attempt: 1,
        }),
        kind: None,
    };
    raw.send(vec![malformed]).await;
    let ack = raw.ack(10).await;
    assert_eq!(ack.events_upto, 0, "nothing stored is acknowledged");
    assert_eq!(ack.rejected.len(), 1, "{ack:?}");
    assert_eq!(ack.rejected[0].seq, 1);
    assert!(
        ack.rejected[0].reason.contains("a task event has no kind"),
        "{ack:?}"
    );
}

#[tokio::test]
async fn log_lines_of_tasks_the_server_does_not_hold_do_not_stall_the_engine() {
    let (dir, server, token) = c1(counting_stack).await;
    let _h1 = spawn_agent(client(&server.url, Some(&token), dir.path(), "h1", 0));
    until(20, "h1 online", || async {
        host_state(&server.mgr, "h1").await == Some(HostState::Online)
    })
    .await;
    add_svc(&server.mgr, &["h1"]).await;
    // Another agent keeps reporting output of a task the server never had (a spool from
    // before the server's data was reset, say).
    let mut stale = RawSession::open(&server.url, &token, "h9").await;
    stale.send(vec![log_event(1, 999_999, "stale")]).await;
    let ack = stale.ack(10).await;
    assert_eq!(
        ack.events_upto, 1,
        "taken (and dropped), not left to come back"
    );
    let noise = tokio::spawn(async move {
        for seq in 2.. {
            stale.send(vec![log_event(seq, 999_999, "stale")]).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let (job, done) = start_svc(
        &server.mgr,
        "the job ends while the stale lines keep coming",
    )
    .await;
    noise.abort();
    assert_eq!(done.state, JobState::Succeeded);
    let detail = server.mgr.job(job).await.expect("detail");
    let log = server
        .mgr
        .task_log(detail.tasks[0].id, None)
        .await
        .expect("log");
    assert!(log.iter().any(|l| l.line == "start on h1"), "{log:?}");
}
