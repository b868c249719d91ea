//! The gRPC transport in one process: a real tonic server on a loopback port, real agents
//! dialing it with `run_agent`, real scripts.

use crate::harness::{Svc, until, write_stack};
use bigmgr_core::agent::{AgentConfig, ProcessExecutor};
use bigmgr_core::grpc::{AgentClientConfig, GrpcSettings, GrpcTransport, pb, run_agent};
use bigmgr_core::manager::AddService;
use bigmgr_core::model::*;
use bigmgr_core::stack::DirStackProvider;
use bigmgr_core::store::{SqlStore, Store};
use bigmgr_core::{EngineConfig, Error, Manager};
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
        let store: Arc<dyn Store> = Arc::new(
            SqlStore::open_path(&dir.join("bigmgr.db"))
                .await
                .expect("store"),
        );
        let transport = GrpcTransport::new(
            Arc::clone(&store),
            GrpcSettings {
                heartbeat_interval: heartbeat,
                lost_after: 3,
            },
        );
        let mgr = Manager::builder()
            .store_arc(Arc::clone(&store))
            .transport(Arc::clone(&transport))
            .stacks(DirStackProvider::new([dir.join("stacks")]))
            .config(EngineConfig {
                tick: Duration::from_millis(100),
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

fn agent_root(dir: &Path, name: &str) -> PathBuf {
    dir.join("agents").join(name)
}

fn client(url: &str, token: Option<&str>, dir: &Path, name: &str, i: usize) -> AgentClientConfig {
    AgentClientConfig {
        server: url.to_owned(),
        join_token: token.map(str::to_owned),
        agent: AgentConfig::new(name, format!("127.0.0.{}", i + 2), agent_root(dir, name)),
    }
}

fn spawn_agent(cfg: AgentClientConfig) -> AgentTask {
    AgentTask(tokio::spawn(run_agent(
        cfg,
        Arc::new(ProcessExecutor),
        std::future::pending(),
    )))
}

/// A service whose `start` counts its runs in the unit dir and prints a line.
fn counting_stack(dir: &Path) {
    write_stack(
        &dir.join("stacks"),
        &[Svc {
            name: "svc",
            component: "server",
            script: r#"echo "$1 on $BIGMGR_HOST"; echo "$1" >> "$BIGMGR_UNIT_DIR/runs"; sleep "${SLEEP:-0}""#,
            component_toml: "",
            order: &[],
        }],
    );
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
    let dir = tempfile::tempdir().expect("tempdir");
    counting_stack(dir.path());
    let server = Server::start(dir.path(), Duration::from_secs(1)).await;
    server.mgr.create_cluster("c1").await.expect("cluster");
    let token = server.mgr.create_join_token("c1").await.expect("token");
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
    let job = server
        .mgr
        .submit(JobRequest {
            cluster: "c1".into(),
            target: Target::Service("svc".into()),
            command: "start".into(),
            options: JobOptions::default(),
        })
        .await
        .expect("submit");
    let done = tokio::time::timeout(Duration::from_secs(30), server.mgr.wait(job.id))
        .await
        .expect("job ends")
        .expect("wait");
    assert_eq!(done.state, JobState::Succeeded);
    let detail = server.mgr.job(job.id).await.expect("detail");
    assert_eq!(detail.tasks.len(), 3);
    for t in &detail.tasks {
        assert_eq!(t.state, TaskState::Succeeded);
        let log = server.mgr.task_log(t.id, None).await.expect("log");
        let host = server
            .mgr
            .hosts("c1")
            .await
            .expect("hosts")
            .into_iter()
            .find(|h| h.id == t.host)
            .expect("host");
        assert!(
            log.iter()
                .any(|l| l.line == format!("start on {}", host.name)),
            "{log:?}"
        );
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
    let dir = tempfile::tempdir().expect("tempdir");
    counting_stack(dir.path());
    let server = Server::start(dir.path(), Duration::from_secs(1)).await;
    server.mgr.create_cluster("c1").await.expect("cluster");
    server.mgr.create_cluster("c2").await.expect("cluster");
    let token1 = server.mgr.create_join_token("c1").await.expect("token");
    let token2 = server.mgr.create_join_token("c2").await.expect("token");

    let run = |cfg: AgentClientConfig| async move {
        tokio::time::timeout(
            Duration::from_secs(20),
            run_agent(cfg, Arc::new(ProcessExecutor), std::future::pending()),
        )
        .await
        .expect("a refused agent returns at once")
    };
    // A wrong token.
    let err = run(client(&server.url, Some("bmj_wrong"), dir.path(), "h1", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused(m) if m.contains("join token is not valid")),
        "{err}"
    );
    assert!(server.mgr.hosts("c1").await.expect("hosts").is_empty());

    // h1 joins c1; a second agent claiming h1 is refused.
    let _h1 = spawn_agent(client(&server.url, Some(&token1), dir.path(), "h1", 0));
    until(20, "h1 joined", || async {
        host_state(&server.mgr, "h1").await == Some(HostState::Online)
    })
    .await;
    let other = tempfile::tempdir().expect("tempdir");
    let err = run(client(&server.url, Some(&token1), other.path(), "h1", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused(m) if m.contains("already taken by another agent")),
        "{err}"
    );
    // h1 can't join c2 either.
    let err = run(client(&server.url, Some(&token2), other.path(), "h1", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused(m) if m.contains("already belongs to cluster 'c1'")),
        "{err}"
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
    assert_eq!(stored, bigmgr_core::join::hash(plain));
    // A copy of h1's credential does not let an agent claim another name.
    let copy = tempfile::tempdir().expect("tempdir");
    let copy_root = copy.path().join("agents").join("h9");
    std::fs::create_dir_all(&copy_root).expect("root");
    std::fs::copy(
        agent_root(dir.path(), "h1").join("credential.json"),
        copy_root.join("credential.json"),
    )
    .expect("copy");
    let err = run(client(&server.url, None, copy.path(), "h9", 7))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Refused(m) if m.contains("'h9' is not known")),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_host_turns_lost_and_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    counting_stack(dir.path());
    let server = Server::start(dir.path(), Duration::from_secs(1)).await;
    server.mgr.create_cluster("c1").await.expect("cluster");
    let token = server.mgr.create_join_token("c1").await.expect("token");
    let agent = spawn_agent(client(&server.url, Some(&token), dir.path(), "h1", 0));
    // Online and holding its credential: the restarted agent comes back without a token.
    until(20, "h1 online with its credential saved", || async {
        host_state(&server.mgr, "h1").await == Some(HostState::Online)
            && agent_root(dir.path(), "h1")
                .join("credential.json")
                .exists()
    })
    .await;
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
async fn a_host_no_agent_ever_claimed_turns_lost_and_an_agent_can_claim_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    counting_stack(dir.path());
    let server = Server::start(dir.path(), Duration::from_secs(1)).await;
    server.mgr.create_cluster("c1").await.expect("cluster");
    // Added by an operator while the server runs; no agent speaks for it.
    server
        .mgr
        .add_host("c1", "h1", "127.0.0.2")
        .await
        .expect("host");
    until(10, "h1 LOST without an agent", || async {
        host_state(&server.mgr, "h1").await == Some(HostState::Lost)
    })
    .await;
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
    let dir = tempfile::tempdir().expect("tempdir");
    counting_stack(dir.path());
    let server = Server::start(dir.path(), Duration::from_secs(1)).await;
    server.mgr.create_cluster("c1").await.expect("cluster");
    let token = server.mgr.create_join_token("c1").await.expect("token");
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

/// A hand-made agent session: registers `name` with `token`, then sends what the test gives it.
struct RawSession {
    tx: tokio::sync::mpsc::Sender<pb::AgentMessage>,
    inbound: tonic::Streaming<pb::ServerMessage>,
}

impl RawSession {
    async fn open(url: &str, token: &str, name: &str) -> RawSession {
        let mut client = pb::agent_service_client::AgentServiceClient::connect(url.to_owned())
            .await
            .expect("connect");
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tx.send(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Register(pb::Register {
                name: name.into(),
                address: "127.0.0.9".into(),
                auth: Some(pb::register::Auth::JoinToken(token.into())),
                ..pb::Register::default()
            })),
        })
        .await
        .expect("register");
        let mut inbound = client
            .session(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("session")
            .into_inner();
        let first = inbound.message().await.expect("answer").expect("a message");
        assert!(
            matches!(first.body, Some(pb::server_message::Body::Registered(_))),
            "{first:?}"
        );
        RawSession { tx, inbound }
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
    let dir = tempfile::tempdir().expect("tempdir");
    counting_stack(dir.path());
    let server = Server::start(dir.path(), Duration::from_secs(1)).await;
    server.mgr.create_cluster("c1").await.expect("cluster");
    let token = server.mgr.create_join_token("c1").await.expect("token");
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
    let dir = tempfile::tempdir().expect("tempdir");
    counting_stack(dir.path());
    let server = Server::start(dir.path(), Duration::from_secs(1)).await;
    server.mgr.create_cluster("c1").await.expect("cluster");
    let token = server.mgr.create_join_token("c1").await.expect("token");
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
    let job = server
        .mgr
        .submit(JobRequest {
            cluster: "c1".into(),
            target: Target::Service("svc".into()),
            command: "start".into(),
            options: JobOptions::default(),
        })
        .await
        .expect("submit");
    let done = tokio::time::timeout(Duration::from_secs(30), server.mgr.wait(job.id))
        .await
        .expect("the job ends while the stale lines keep coming")
        .expect("wait");
    noise.abort();
    assert_eq!(done.state, JobState::Succeeded);
    let detail = server.mgr.job(job.id).await.expect("detail");
    let log = server
        .mgr
        .task_log(detail.tasks[0].id, None)
        .await
        .expect("log");
    assert!(log.iter().any(|l| l.line == "start on h1"), "{log:?}");
}
