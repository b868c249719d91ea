//! The server's side of the gRPC transport: admits agents (join token or credential, see
//! [`crate::join`]), keeps one outbound queue per connected host, forwards agent events to the
//! engine and acknowledges them (refusing malformed ones at once, so the agent sets them aside),
//! records heartbeats, and turns hosts LOST after `lost_after` heartbeat intervals of silence
//! (and ONLINE again when they speak).
//!
//! With an [`AgentCa`] (a TLS server), agents authenticate with client certificates too: a
//! session presenting one is the session of the host whose current certificate it is (and
//! must also carry that host's credential); a session without one only enrols — it joins with
//! a token, or renews an expired certificate with the credential — gets a certificate for the
//! CSR it sends, and ends. A certificate nearing its end is renewed by a CSR on an mTLS
//! session. Each issued certificate's fingerprint is stored as the host's
//! ([`AgentStore::set_host_certificate`](crate::store::AgentStore::set_host_certificate)):
//! the one before it, and a removed host's, are refused.

use super::convert;
use super::pb::{
    self, agent_service_server::AgentService, agent_service_server::AgentServiceServer,
};
use crate::join::{self, Proof};
use crate::model::{HostId, HostReport, HostState, RunId, now_ms};
use crate::store::{AdmissionStore, ClusterStore};
use crate::tls::{AgentCa, CsrKey};
use crate::transport::{AgentEvent, EventStream, FromAgent, ToAgent, Transport};
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// The address of the peer of a request, for a server that runs the service inside another
/// HTTP server (axum) and so must put it in the request's extensions itself; tonic's own
/// server provides it without help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// The certificate the peer of a request presented and the TLS layer verified against the
/// agent CA, put in the request's extensions by the server that terminates TLS (as
/// [`PeerAddr`]). Absent when the peer presented none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub rustls::pki_types::CertificateDer<'static>);

/// How long an agent has to send its `Register` after opening the stream.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(15);

/// Settings of the server's side of the agent protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcSettings {
    /// How often agents send heartbeats (told to them in `Registered`); default 30 s.
    pub heartbeat_interval: Duration,
    /// A host with no heartbeat for this many intervals is LOST; default 3.
    pub lost_after: u32,
    /// How long the certificates issued to agents are valid (with an agent CA); default
    /// [`crate::tls::AGENT_CERT_VALIDITY`], 30 days. Agents renew theirs with a third left.
    pub agent_cert_validity: Duration,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        GrpcSettings {
            heartbeat_interval: Duration::from_secs(30),
            lost_after: 3,
            agent_cert_validity: crate::tls::AGENT_CERT_VALIDITY,
        }
    }
}

/// What a registration opened: an agent's session, or an enrolment that ends once the agent
/// has its certificate.
enum Opened {
    /// The session of host `name` (`host`), connection `conn`, and its outbound queue.
    Session {
        name: String,
        host: HostId,
        conn: u64,
        rx: mpsc::UnboundedReceiver<Box<pb::ServerMessage>>,
    },
    /// The answer to an enrolment: `Registered` with the certificate, then the end.
    Enrolled(Box<pb::ServerMessage>),
}

/// A session's outbound queue. Its messages are boxed: the queue allocates its slots 32 at a
/// time, so a slot the size of a message (hundreds of bytes) cost every connected agent about
/// 11 KiB of the server's memory; a box costs 8 bytes a slot (docs/performance.md).
type Outbound = mpsc::UnboundedSender<Box<pb::ServerMessage>>;

/// One connected agent's stream.
struct Conn {
    /// Tells this connection from the one that replaced it.
    id: u64,
    tx: Outbound,
}

/// When a host last spoke, and what the transport said of it.
struct Presence {
    host: HostId,
    last_seen: Instant,
    lost: bool,
}

/// The mutable part, behind one lock (held only for map operations, never across awaits).
#[derive(Default)]
struct Tables {
    conns: HashMap<String, Conn>,
    presence: HashMap<String, Presence>,
    /// Data requests waiting for their answer, by id: the host and connection asked, and
    /// where the answer goes.
    data: HashMap<u64, DataWait>,
}

/// Forgets a data request when its call ends, however it ends.
struct ForgetData<'a> {
    transport: &'a GrpcTransport,
    id: u64,
}

impl Drop for ForgetData<'_> {
    fn drop(&mut self) {
        self.transport.tables().data.remove(&self.id);
    }
}

/// A data request waiting for its answer.
struct DataWait {
    host: String,
    conn: u64,
    answer: tokio::sync::oneshot::Sender<Result<crate::transport::data::DataAnswer>>,
}

/// The gRPC transport: serves `AgentService.Session` and sends to connected agents.
pub struct GrpcTransport {
    /// Admits agents, records their reports, marks silent hosts LOST.
    store: Arc<dyn AdmissionStore>,
    settings: GrpcSettings,
    /// Signs agents' certificates and makes sessions mutual TLS; `None` on plain HTTP.
    agent_ca: Option<Arc<AgentCa>>,
    tables: Mutex<Tables>,
    next_conn: AtomicU64,
    /// The id of the next data request.
    next_data: AtomicU64,
    events: EventStream,
    /// `Some` while this replica is a follower: the leader's URL, if known.
    follower: Mutex<Option<Option<String>>>,
    /// Heartbeats to store, taken by [`write_reports`].
    reports: mpsc::UnboundedSender<(HostId, HostReport)>,
}

impl std::fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
    /// A transport that admits agents by the join tokens and credentials in `store` (an
    /// `Arc<dyn Store>` coerces to it) and, with `agent_ca` (a server speaking TLS whose
    /// listener verifies client certificates against that CA), by their certificates. Call
    /// from within a tokio runtime: it starts the heartbeat watchdog, which stops when the
    /// transport is dropped.
    pub fn new(
        store: Arc<dyn AdmissionStore>,
        settings: GrpcSettings,
        agent_ca: Option<Arc<AgentCa>>,
    ) -> Arc<GrpcTransport> {
        let (reports, pending) = mpsc::unbounded_channel();
        tokio::spawn(write_reports(Arc::clone(&store), pending));
        let transport = Arc::new(GrpcTransport {
            store,
            reports,
            settings,
            agent_ca,
            tables: Mutex::default(),
            next_conn: AtomicU64::new(1),
            next_data: AtomicU64::new(1),
            events: EventStream::default(),
            follower: Mutex::new(None),
        });
        tokio::spawn(watch_presence(Arc::downgrade(&transport)));
        transport
    }

    /// The tonic routes to serve (on their own, or merged into an axum router with
    /// `.into_axum_router()`).
    pub fn routes(self: &Arc<Self>) -> tonic::service::Routes {
        tonic::service::Routes::new(self.service())
    }

    /// The tonic service alone.
    pub fn service(self: &Arc<Self>) -> AgentServiceServer<Service> {
        AgentServiceServer::new(Service(Arc::clone(self)))
            .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
    }

    /// Ends every agent's session (their streams close; agents reconnect with backoff). For a
    /// server shutting down: open sessions would otherwise keep its connections open.
    pub fn close_sessions(&self) {
        let closed = std::mem::take(&mut self.tables().conns);
        tracing::info!(sessions = closed.len(), "closing agent sessions");
    }

    /// `Some` (with the leader's URL, if known) while this replica is a follower.
    fn follower(&self) -> Option<Option<String>> {
        self.follower
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The names of the hosts whose agents are connected now.
    pub fn connected(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.tables().conns.keys().cloned().collect();
        hosts.sort();
        hosts
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // Every critical section leaves the maps consistent, so a poisoned lock is usable.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, host: &str, event: AgentEvent) {
        self.emit_seq(host, event, 0);
    }

    /// Hands an event to the engine; it acknowledges `seq` to the agent once it is stored.
    fn emit_seq(&self, host: &str, event: AgentEvent, seq: u64) {
        let _ = self.events.sender().send(FromAgent {
            host: host.to_owned(),
            event,
            seq,
        });
    }

    /// The host spoke: it is alive. Reports it ONLINE if it was LOST.
    fn seen(&self, name: &str, host: HostId) {
        let back = {
            let mut t = self.tables();
            let p = t.presence.entry(name.to_owned()).or_insert(Presence {
                host,
                last_seen: Instant::now(),
                lost: false,
            });
            p.host = host;
            p.last_seen = Instant::now();
            std::mem::replace(&mut p.lost, false)
        };
        if back {
            tracing::info!(host = name, "host is back: ONLINE");
            self.emit(name, AgentEvent::Presence(HostState::Online));
        }
    }

    /// Admits a registering agent and opens its outbound queue, or answers its enrolment.
    async fn open_session(
        self: &Arc<Self>,
        mut reg: pb::Register,
        peer: String,
        cert: Option<PeerCertificate>,
    ) -> std::result::Result<Opened, Status> {
        let refuse = |msg: String| {
            tracing::warn!(host = %reg.name, %peer, reason = %msg, "agent refused");
            Status::permission_denied(msg)
        };
        let csr = std::mem::take(&mut reg.csr_pem);
        let joining = matches!(reg.auth, Some(pb::register::Auth::JoinToken(_)));
        // With an agent CA, a session without a client certificate (or joining) only enrols.
        let enrolling = self.agent_ca.is_some() && (cert.is_none() || joining);
        let csr_key: Option<CsrKey> = match &self.agent_ca {
            Some(_) if !csr.is_empty() => Some(AgentCa::read_csr(&csr).map_err(|e| {
                tracing::warn!(host = %reg.name, %peer, error = %e, "agent refused: bad CSR");
                Status::invalid_argument(e.to_string())
            })?),
            _ => None,
        };
        if enrolling && csr_key.is_none() {
            return Err(refuse(format!(
                "this server authenticates agents by client certificate (mutual TLS); {} \
                 carries no certificate signing request (Register.csr_pem) to get one: upgrade \
                 the agent",
                if joining {
                    "the join"
                } else {
                    "a session without a client certificate"
                }
            )));
        }
        if let (Some(_), Some(cert), false) = (&self.agent_ca, &cert, joining) {
            let fp = crate::tls::fingerprint(&cert.0);
            let holder = self.store.host_by_certificate(&fp).await.map_err(|e| {
                tracing::error!(host = %reg.name, error = %e, "cannot look up an agent certificate");
                Status::unavailable(format!("the server cannot admit agents now: {e}"))
            })?;
            match holder {
                None => {
                    return Err(refuse(format!(
                        "the client certificate {fp} presented for host '{}' is no host's \
                         current certificate: it was revoked (the host was removed) or replaced \
                         by a renewal; if the host was removed, delete credential.json and \
                         certificate.pem under the agent's root and join again with a join token",
                        reg.name
                    )));
                }
                Some(h) if h.name != reg.name => {
                    return Err(refuse(format!(
                        "the client certificate presented for host '{}' is host '{}''s; an \
                         agent must present its own host's certificate",
                        reg.name, h.name
                    )));
                }
                Some(_) => {}
            }
        }
        let proof = match reg.auth {
            Some(pb::register::Auth::JoinToken(t)) => Proof::JoinToken(t),
            Some(pb::register::Auth::Credential(c)) => Proof::Credential(c),
            None => {
                tracing::warn!(host = %reg.name, %peer, "agent refused: no join token nor credential");
                return Err(Status::unauthenticated(
                    "Register carries neither a join token nor a credential; start the agent with \
                     --join-token",
                ));
            }
        };
        let report = HostReport {
            at: now_ms(),
            address: Some(reg.address.clone()).filter(|a| !a.is_empty()),
            facts: reg.facts.map(convert::facts_from_pb),
            ..HostReport::default()
        };
        let admitted = join::admit(
            self.store.as_ref(),
            &reg.name,
            &reg.address,
            &proof,
            &report,
        )
        .await
        .map_err(|e| match e {
            Error::Refused(msg) => refuse(msg),
            other => {
                tracing::error!(host = %reg.name, error = %other, "cannot admit an agent");
                Status::unavailable(format!("the server cannot admit agents now: {other}"))
            }
        })?;
        let finished = reg
            .finished
            .iter()
            .map(convert::finished_from_pb)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let running = reg
            .running
            .iter()
            .map(|r| convert::run_id(Some(r)))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;

        let name = admitted.host.name.clone();
        let certificate = match (&self.agent_ca, &csr_key) {
            (Some(ca), Some(key)) => self.issue(ca, key, &admitted, &peer).await?,
            _ => String::new(),
        };
        let registered = pb::ServerMessage {
            body: Some(pb::server_message::Body::Registered(pb::Registered {
                cluster: admitted.cluster.clone(),
                credential: admitted.credential.clone().unwrap_or_default(),
                heartbeat_interval_ms: u32::try_from(self.settings.heartbeat_interval.as_millis())
                    .unwrap_or(u32::MAX),
                server_version: env!("CARGO_PKG_VERSION").to_owned(),
                certificate_pem: certificate,
            })),
        };
        if enrolling {
            tracing::info!(host = %name, cluster = %admitted.cluster, %peer, joined = joining,
                "agent enrolled: the session ends, the agent connects again with its certificate");
            return Ok(Opened::Enrolled(Box::new(registered)));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(Box::new(registered));
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let replaced = self
            .tables()
            .conns
            .insert(name.clone(), Conn { id, tx })
            .is_some();
        tracing::info!(
            host = %name, cluster = %admitted.cluster, %peer, joined = admitted.credential.is_some(),
            replaced, running = running.len(), finished = finished.len(), "agent registered"
        );
        self.seen(&name, admitted.host.id);
        self.emit(&name, AgentEvent::Hello { running, finished });
        Ok(Opened::Session {
            name,
            host: admitted.host.id,
            conn: id,
            rx,
        })
    }

    /// Signs a certificate for an admitted agent's key and records it as its host's (the one
    /// before it is no longer accepted). Answers it, PEM.
    async fn issue(
        &self,
        ca: &AgentCa,
        key: &CsrKey,
        admitted: &join::Admitted,
        peer: &str,
    ) -> std::result::Result<String, Status> {
        let host = &admitted.host;
        let unavailable = |e: Error| {
            tracing::error!(host = %host.name, error = %e, "cannot issue an agent certificate");
            Status::unavailable(format!("the server cannot issue certificates now: {e}"))
        };
        let cert = ca
            .issue(
                key,
                &admitted.cluster,
                &host.name,
                self.settings.agent_cert_validity,
            )
            .map_err(unavailable)?;
        self.store
            .set_host_certificate(host.id, &cert.fingerprint)
            .await
            .map_err(unavailable)?;
        tracing::info!(host = %host.name, %peer, fingerprint = %cert.fingerprint,
            not_after = cert.not_after, "agent certificate issued");
        Ok(cert.pem)
    }

    /// Reads one agent's messages until its stream ends.
    async fn serve(
        self: Arc<Self>,
        name: String,
        host: HostId,
        conn: u64,
        mut inbound: Streaming<pb::AgentMessage>,
    ) {
        loop {
            let msg = match inbound.message().await {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(status) => {
                    tracing::info!(host = %name, error = %status.message(), "agent stream broke");
                    break;
                }
            };
            self.seen(&name, host);
            match msg.body {
                Some(pb::agent_message::Body::Heartbeat(hb)) => {
                    let (metrics, units, checks) = convert::heartbeat_from_pb(hb);
                    let report = HostReport {
                        at: now_ms(),
                        metrics: Some(metrics),
                        units,
                        checks,
                        ..HostReport::default()
                    };
                    // Stored by the writer, with the heartbeats that arrive meanwhile.
                    let _ = self.reports.send((host, report));
                }
                Some(pb::agent_message::Body::Events(batch)) => {
                    // Acknowledged by the engine once stored (Transport::stored), not here: an
                    // event acknowledged before it is stored would be lost with a crash.
                    let mut rejected = Vec::new();
                    for e in batch.events {
                        let seq = e.seq;
                        match convert::event_from_pb(e) {
                            Ok(event) => self.emit_seq(&name, event, seq),
                            Err(err) => {
                                tracing::warn!(host = %name, seq, error = %err, "refusing a malformed event");
                                rejected.push(pb::RejectedEvent {
                                    seq,
                                    reason: err.to_string(),
                                });
                            }
                        }
                    }
                    // Refused at once, so the agent sets them aside instead of sending them on
                    // every session: that acknowledges nothing else.
                    if !rejected.is_empty() {
                        self.send_to(
                            &name,
                            pb::server_message::Body::Ack(pb::Ack {
                                events_upto: 0,
                                clean: Vec::new(),
                                rejected,
                            }),
                        );
                    }
                }
                Some(pb::agent_message::Body::Data(reply)) => {
                    // Only the connection that was asked may answer: an agent cannot answer
                    // (or fail) another host's request.
                    let mut t = self.tables();
                    let ours = t
                        .data
                        .get(&reply.id)
                        .is_some_and(|w| w.host == name && w.conn == conn);
                    if ours {
                        if let Some(w) = t.data.remove(&reply.id) {
                            let _ = w.answer.send(convert::data_reply_from_pb(reply));
                        }
                    } else {
                        tracing::warn!(host = %name, id = reply.id, "ignoring an answer to no request of this session");
                    }
                }
                Some(pb::agent_message::Body::Register(_)) => {
                    tracing::warn!(host = %name, "a second Register on one stream is ignored");
                }
                None => {}
            }
        }
        let mut t = self.tables();
        if t.conns.get(&name).is_some_and(|c| c.id == conn) {
            t.conns.remove(&name);
            tracing::info!(host = %name, "agent disconnected");
        }
        // Requests this session was asked fail now (their senders drop).
        t.data.retain(|_, w| w.conn != conn);
    }

    /// Queues a message for a host's agent, or says that it is not connected.
    fn deliver(&self, host: &str, body: pb::server_message::Body) -> Result<()> {
        if self.send_to(host, body) {
            Ok(())
        } else {
            Err(Error::Transport(format!(
                "the agent of host {host} is not connected"
            )))
        }
    }

    /// Queues a message for a host's agent; false if it is not connected.
    fn send_to(&self, host: &str, body: pb::server_message::Body) -> bool {
        let t = self.tables();
        let Some(conn) = t.conns.get(host) else {
            return false;
        };
        conn.tx
            .send(Box::new(pb::ServerMessage { body: Some(body) }))
            .is_ok()
    }
}

/// Every few hundred milliseconds: hosts silent for `lost_after` intervals turn LOST. Watches
/// every host the store knows that an agent has registered for — loaded at start and again
/// every `lost_after` intervals — so a host whose agent never comes back after a server restart
/// turns LOST too. A host an operator added and no agent ever claimed stays WAITING. Ends when
/// the transport is dropped.
async fn watch_presence(transport: std::sync::Weak<GrpcTransport>) {
    let Some(t) = transport.upgrade() else { return };
    let limit = t.settings.heartbeat_interval * t.settings.lost_after.max(1);
    let tick = (t.settings.heartbeat_interval / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(5));
    drop(t);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut loaded: Option<Instant> = None;
    loop {
        interval.tick().await;
        let Some(t) = transport.upgrade() else { return };
        if loaded.is_none_or(|at| at.elapsed() > limit) {
            loaded = Some(Instant::now());
            t.watch_known_hosts().await;
        }
        let lost: Vec<(String, HostId)> = {
            let mut tables = t.tables();
            tables
                .presence
                .iter_mut()
                .filter(|(_, p)| !p.lost && p.last_seen.elapsed() > limit)
                .map(|(name, p)| {
                    p.lost = true;
                    (name.clone(), p.host)
                })
                .collect()
        };
        for (name, id) in lost {
            tracing::warn!(host = %name, silent_for = ?limit, "no heartbeat: host LOST");
            if let Err(e) = t.store.set_host_state(id, HostState::Lost, None).await {
                tracing::warn!(host = %name, error = %e, "cannot record a host as LOST");
            }
            t.emit(&name, AgentEvent::Presence(HostState::Lost));
        }
    }
}

impl GrpcTransport {
    /// Starts watching the hosts of the store it does not watch yet, from now.
    async fn watch_known_hosts(&self) {
        match known_hosts(self.store.as_ref()).await {
            Ok(hosts) => {
                let now = Instant::now();
                let mut tables = self.tables();
                for (name, id, state) in hosts {
                    // A host no agent has registered for yet stays WAITING, not LOST.
                    if state == HostState::Waiting {
                        continue;
                    }
                    tables.presence.entry(name).or_insert(Presence {
                        host: id,
                        last_seen: now,
                        lost: state == HostState::Lost,
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot load hosts to watch their heartbeats"),
        }
    }
}

/// The most heartbeats one store write takes.
const MAX_REPORTS_PER_WRITE: usize = 1000;

/// Stores agents' heartbeats as they come, each write taking every heartbeat that arrived
/// while the one before it ran (at most [`MAX_REPORTS_PER_WRITE`]): one transaction for many
/// agents instead of one each, so the store keeps up with tens of thousands of agents
/// (docs/performance.md). Alone, a heartbeat is written at once. Ends with the transport.
async fn write_reports(
    store: Arc<dyn AdmissionStore>,
    mut pending: mpsc::UnboundedReceiver<(HostId, HostReport)>,
) {
    let mut batch = Vec::new();
    while let Some(first) = pending.recv().await {
        batch.push(first);
        while batch.len() < MAX_REPORTS_PER_WRITE {
            match pending.try_recv() {
                Ok(report) => batch.push(report),
                Err(_) => break,
            }
        }
        if let Err(e) = store.record_host_reports(&batch).await {
            tracing::warn!(heartbeats = batch.len(), error = %e, "cannot record heartbeats");
        }
        batch.clear();
    }
}

/// Every host in the store: name, id, state.
async fn known_hosts(store: &dyn ClusterStore) -> Result<Vec<(String, HostId, HostState)>> {
    let mut out = Vec::new();
    for c in store.list_clusters().await? {
        for h in store.list_hosts(c.id).await? {
            out.push((h.name, h.id, h.state));
        }
    }
    Ok(out)
}

#[async_trait]
impl Transport for GrpcTransport {
    fn set_role(&self, role: &crate::transport::Role) {
        let follower = match role {
            crate::transport::Role::Leader => None,
            crate::transport::Role::Follower { leader } => Some(leader.clone()),
        };
        let stepping_down = follower.is_some();
        *self.follower.lock().unwrap_or_else(|p| p.into_inner()) = follower;
        if stepping_down {
            // Agents go to the leader; nothing is watched here until this replica leads.
            let mut tables = self.tables();
            let closed = std::mem::take(&mut tables.conns);
            tables.presence.clear();
            if !closed.is_empty() {
                tracing::info!(
                    sessions = closed.len(),
                    "a follower now: agent sessions closed"
                );
            }
        }
    }

    async fn send(&self, host: &str, msg: ToAgent) -> Result<()> {
        use pb::server_message::Body;
        let body = match msg {
            ToAgent::Run(spec) => Body::Run(convert::spec_to_pb(&spec)),
            ToAgent::Cancel(run) => Body::Cancel(pb::CancelTask {
                run: Some(convert::run_ref(run)),
            }),
            ToAgent::Clean(runs) => ack(0, runs),
        };
        self.deliver(host, body)
    }

    fn take_events(&self) -> Result<mpsc::UnboundedReceiver<FromAgent>> {
        self.events.take()
    }

    fn forget(&self, host: &str) {
        let mut t = self.tables();
        t.presence.remove(host);
        if t.conns.remove(host).is_some() {
            tracing::info!(host, "host removed: its agent's session ends");
        }
    }

    fn connected(&self, host: &str) -> bool {
        self.tables().conns.contains_key(host)
    }

    async fn data(
        &self,
        host: &str,
        request: crate::transport::data::DataRequest,
    ) -> Result<crate::transport::data::DataAnswer> {
        let id = self.next_data.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut t = self.tables();
            let Some(c) = t.conns.get(host) else {
                return Err(Error::Transport(format!(
                    "the agent of host {host} is not connected"
                )));
            };
            let msg = pb::ServerMessage {
                body: Some(pb::server_message::Body::Data(convert::data_request_to_pb(
                    id, &request,
                ))),
            };
            let conn = c.id;
            if c.tx.send(Box::new(msg)).is_err() {
                return Err(Error::Transport(format!(
                    "the agent of host {host} is not connected"
                )));
            }
            t.data.insert(
                id,
                DataWait {
                    host: host.to_string(),
                    conn,
                    answer: tx,
                },
            );
        }
        // Whatever becomes of this call (answered, the session ended, the caller gave up),
        // the request is forgotten.
        let _forget = ForgetData {
            transport: self,
            id,
        };
        rx.await.map_err(|_| {
            Error::Transport(format!(
                "the agent of host {host} went away before it answered"
            ))
        })?
    }

    fn stored(&self, host: &str, seq: u64) {
        self.send_to(host, ack(seq, Vec::new()));
    }

    /// One `Ack` carries both: a burst of results costs a message per host, not two.
    async fn stored_and_clean(&self, host: &str, seq: u64, clean: Vec<RunId>) -> Result<()> {
        self.deliver(host, ack(seq, clean))
    }
}

/// An `Ack`: the agent's events up to `events_upto` are stored (0 says nothing of them), and
/// so are the results of the runs in `clean`, for it to forget.
fn ack(events_upto: u64, clean: Vec<RunId>) -> pb::server_message::Body {
    pb::server_message::Body::Ack(pb::Ack {
        events_upto,
        clean: clean.into_iter().map(convert::run_ref).collect(),
        rejected: Vec::new(),
    })
}

/// The tonic service over a [`GrpcTransport`].
#[derive(Debug, Clone)]
pub struct Service(Arc<GrpcTransport>);

type SessionStream =
    Pin<Box<dyn Stream<Item = std::result::Result<pb::ServerMessage, Status>> + Send>>;

#[async_trait]
impl AgentService for Service {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::AgentMessage>>,
    ) -> std::result::Result<Response<Self::SessionStream>, Status> {
        let peer = request
            .remote_addr()
            .or_else(|| request.extensions().get::<PeerAddr>().map(|p| p.0))
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        let cert = request.extensions().get::<PeerCertificate>().cloned();
        if let Some(leader) = self.0.follower() {
            return Err(Status::unavailable(match leader {
                Some(url) => format!(
                    "this replica is a follower; {}{url}",
                    crate::grpc::client::LEADER_IS_AT
                ),
                None => "this replica is a follower and no replica leads yet; try again".into(),
            }));
        }
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(REGISTER_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Register within 15 s"))??;
        let Some(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Register(reg)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "the first message on a session must be Register",
            ));
        };
        match self.0.open_session(reg, peer, cert).await? {
            Opened::Session {
                name,
                host,
                conn,
                rx,
            } => {
                tokio::spawn(Arc::clone(&self.0).serve(name, host, conn, inbound));
                Ok(Response::new(Box::pin(
                    tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(|m| Ok(*m)),
                )))
            }
            Opened::Enrolled(registered) => {
                Ok(Response::new(Box::pin(tokio_stream::once(Ok(*registered)))))
            }
        }
    }
}
