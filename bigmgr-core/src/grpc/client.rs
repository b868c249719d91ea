//! The agent's side of the gRPC transport: one session at a time with the server, rebuilt with
//! jittered exponential backoff whenever it breaks.
//!
//! Three things run beside the sessions for the agent's whole life: the [`Agent`] itself, a
//! spooler that appends every event the agent produces to the on-disk [`Spool`] (so nothing is
//! lost while the server is away), and a health checker that runs the units' `status`
//! commands once per heartbeat interval. A session sends `Register` (what runs, what finished
//! and was not cleaned), then the spooled events not yet acknowledged, in order, then live
//! events and heartbeats; it hands `RunTask`/`CancelTask` to the agent and applies `Ack`s.
//!
//! On an `https://` server the agent holds a client certificate (`<root>/certificate.pem`,
//! with its key, mode 0600) and presents it on every session. It gets one by sending a CSR for
//! a new key in `Register`: when it joins, when a third of its certificate's lifetime is left
//! (a session that reaches that point ends, and the next one asks), and when it has none
//! valid (it expired while the agent was stopped): then it connects without one and proves
//! itself with its credential. A session without a certificate ends once the certificate
//! arrives, and the next one starts at once.
//!
//! Events go in batches bounded by count and by encoded bytes ([`BATCH`],
//! [`MAX_BATCH_BYTES`]), far below the message limit. An event that does not fit even alone, or
//! that the server refuses (`Ack.rejected`), is set aside by the spool ([`Spool::reject`]), so
//! no event can stop the ones after it.

use super::{convert, pb};
use crate::agent::{
    Agent, AgentConfig, AgentHandle, Executor, Sampler, Spool, check_records, unit_records,
};
use crate::model::UnitHealth;
use crate::transport::{AgentEvent, ToAgent};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tonic::Code;

/// The first reconnection delay; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// The longest reconnection delay.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest reconnection delay while replicas elect a leader (a follower answered).
const ELECTION_BACKOFF: Duration = Duration::from_secs(1);
/// A session that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);
/// At most this many events per `TaskEvents` message …
const BATCH: usize = 512;
/// … and at most this many bytes of them, encoded. An event is far smaller by construction
/// (see [`crate::transport::limits`]); one larger still is set aside, never sent.
const MAX_BATCH_BYTES: usize = 1 << 20;
/// At most this many bytes of finished runs in a `Register`; the rest wait for a later one
/// (their results travel as spooled events too).
const MAX_REGISTER_FINISHED_BYTES: usize = 4 << 20;
/// How often CPU and memory are sampled between heartbeats.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// The file under the root that holds the agent's credential.
const CREDENTIAL_FILE: &str = "credential.json";
/// The file under the root that holds the agent's certificate, then its key (mode 0600).
const CERTIFICATE_FILE: &str = "certificate.pem";

/// When the next session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// After the backoff: the session broke or the server closed it.
    Backoff,
    /// At once: the agent got a certificate on a session without one, or its certificate is
    /// due for renewal.
    Now,
}

/// The agent's certificate and key as kept in [`CERTIFICATE_FILE`], and when it is valid.
#[derive(Debug, Clone)]
struct Held {
    /// The certificate, then its key (PEM).
    pem: String,
    /// Its start and end, Unix seconds.
    not_before: i64,
    not_after: i64,
}

impl Held {
    /// When to renew it: with a third of its lifetime left (Unix seconds).
    fn renew_at(&self) -> i64 {
        self.not_after - (self.not_after - self.not_before) / 3
    }
}

/// The certificate kept under `root`, if there is a readable one.
fn load_certificate(root: &Path) -> Option<Held> {
    let path = root.join(CERTIFICATE_FILE);
    let pem = match std::fs::read_to_string(&path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the certificate; asking for a new one");
            return None;
        }
    };
    match crate::tls::certificate_validity(&pem) {
        Ok((not_before, not_after)) => Some(Held {
            pem,
            not_before,
            not_after,
        }),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "not a certificate; asking for a new one");
            None
        }
    }
}

/// Keeps a certificate the server issued with its key, mode 0600, atomically (so the two
/// always match) and durably.
fn save_certificate(root: &Path, cert: &str, key: &str) -> Result<Held> {
    let path = root.join(CERTIFICATE_FILE);
    let (not_before, not_after) = crate::tls::certificate_validity(cert)?;
    let pem = format!("{cert}{key}");
    crate::fsutil::write_atomic(&path, pem.as_bytes(), 0o600, true)
        .map_err(|e| Error::io(&path, e))?;
    Ok(Held {
        pem,
        not_before,
        not_after,
    })
}

/// Now, Unix seconds.
fn unix_now() -> i64 {
    crate::model::now_ms() / 1000
}

/// Waits until Unix second `at`; for ever without one.
async fn until(at: Option<i64>) {
    match at {
        Some(at) => {
            let secs = u64::try_from(at - unix_now()).unwrap_or(0);
            tokio::time::sleep(Duration::from_secs(secs)).await;
        }
        None => std::future::pending().await,
    }
}

/// What a follower replica answers an agent's session with, before the leader's URL: the
/// agent connects there next.
pub const LEADER_IS_AT: &str = "the leader is at ";

/// How an agent reaches its server.
#[derive(Debug, Clone)]
pub struct AgentClientConfig {
    /// The server's URL (`http://127.0.0.1:7070`), or the URLs of several replicas separated
    /// by commas: the agent holds its stream to the leader, going where a follower points it
    /// and trying each in turn when one cannot be reached.
    pub server: String,
    /// The cluster's join token, needed until the agent holds a credential (kept in
    /// `<root>/credential.json`, mode 0600).
    pub join_token: Option<String>,
    /// The agent itself: host name, address, root.
    pub agent: AgentConfig,
    /// The fingerprint of the server's CA (`sha256:…`) to pin on an `https://` server; kept
    /// with the credential after joining, so later starts need not give it again.
    pub ca_fingerprint: Option<String>,
    /// A control group whose CPU and memory the heartbeats report instead of the machine's
    /// (a host sharing its machine: a container, a slice), e.g. `/bigmgr/h2`.
    pub metrics_cgroup: Option<String>,
}

/// What the agent keeps of its admission, in `<root>/credential.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credential {
    server: String,
    host: String,
    cluster: String,
    credential: String,
    /// The CA pinned when it joined (an `https://` server).
    #[serde(default)]
    ca_fingerprint: Option<String>,
}

/// The leader's URL a follower named in its refusal, if it names one that looks like a URL.
fn leader_named(error: &str) -> Option<String> {
    let at = error.find(LEADER_IS_AT)?;
    let leader: String = error[at + LEADER_IS_AT.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ';' && *c != ',')
        .collect();
    (leader.starts_with("http://") || leader.starts_with("https://")).then_some(leader)
}

/// State shared by the sessions and the background tasks.
struct Shared {
    config: AgentClientConfig,
    handle: AgentHandle,
    spool: Mutex<Spool>,
    /// Woken when the spool has a new event.
    spooled: Notify,
    /// The latest unit health, sent with each heartbeat.
    health: Mutex<Vec<UnitHealth>>,
    /// The latest result of every alert check of the units, sent with each heartbeat.
    checks: Mutex<Vec<crate::model::CheckResult>>,
    /// The heartbeat interval the server asked for (ms); 0 until a session registered.
    interval_ms: std::sync::atomic::AtomicU64,
    /// The replicas it was given, and the one it tries now.
    servers: Vec<String>,
    current: Mutex<String>,
}

impl Shared {
    /// The server the next session goes to.
    fn server(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// After a session to the current server failed: go to the leader a follower named, or
    /// else to the next replica of the list.
    fn next_server(&self, error: &str) -> bool {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(leader) = leader_named(error)
            && *current != leader
        {
            tracing::info!(%leader, "a follower named the leader");
            *current = leader;
            return true;
        }
        if self.servers.len() > 1 {
            let i = self
                .servers
                .iter()
                .position(|s| *s == *current)
                .unwrap_or(0);
            *current = self.servers[(i + 1) % self.servers.len()].clone();
            return true;
        }
        false
    }

    fn spool(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs an agent against a server until `shutdown` completes: opens the agent on its root,
/// connects, registers (joining with the token the first time), then serves tasks, sends
/// heartbeats and replays spooled events, reconnecting with jittered backoff whenever the
/// stream breaks. Scripts still running at shutdown keep running; the next agent on the same
/// root adopts them.
///
/// Returns [`Error::Refused`] when the server refuses the agent (wrong token or credential,
/// host name taken, host in another cluster): retrying cannot help.
pub async fn run_agent(
    config: AgentClientConfig,
    executor: Arc<dyn Executor>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let agent = Agent::open(config.agent.clone(), executor).await?;
    let handle = agent.handle();
    let root = handle.config().root.clone();
    let spool = Spool::open(root.join("spool.jsonl"))?;
    let servers: Vec<String> = config
        .server
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let first = servers.first().cloned().unwrap_or_default();
    let shared = Arc::new(Shared {
        config,
        handle,
        spool: Mutex::new(spool),
        spooled: Notify::new(),
        health: Mutex::new(Vec::new()),
        checks: Mutex::new(Vec::new()),
        interval_ms: std::sync::atomic::AtomicU64::new(0),
        servers,
        current: Mutex::new(first),
    });

    let (inbox_tx, inbox_rx) = mpsc::unbounded_channel::<ToAgent>();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<AgentEvent>();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(agent.run(inbox_rx, out_tx));
    tasks.spawn(spooler(Arc::clone(&shared), out_rx));
    tasks.spawn(health_checker(Arc::clone(&shared)));

    let sessions = async {
        let mut backoff = MIN_BACKOFF;
        // A follower answered since the last session: the replicas are electing a leader.
        let mut electing = false;
        loop {
            let began = Instant::now();
            match session(&shared, &inbox_tx).await {
                Err(Error::Refused(msg)) => return Err(Error::Refused(msg)),
                Err(e) => {
                    let text = e.to_string();
                    tracing::warn!(server = %shared.server(), error = %text, "session ended");
                    // Another replica at once (the leader a follower named, or the next one);
                    // back off only once every replica was tried.
                    if shared.next_server(&text) && text.contains(LEADER_IS_AT) {
                        continue;
                    }
                    if text.contains("this replica is a follower") {
                        electing = true;
                    }
                }
                Ok(Next::Now) => {
                    backoff = MIN_BACKOFF;
                    electing = false;
                    continue;
                }
                Ok(Next::Backoff) => {
                    tracing::info!(server = %shared.server(), "server closed the session")
                }
            }
            if began.elapsed() > STABLE {
                backoff = MIN_BACKOFF;
                electing = false;
            }
            let delay = jitter(backoff);
            tracing::debug!(?delay, "reconnecting");
            tokio::time::sleep(delay).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if electing {
                // The replicas are up and electing: come back within a second, not after a
                // long backoff (jittered, so agents do not all come at once).
                backoff = backoff.min(ELECTION_BACKOFF);
            }
        }
    };
    let outcome = tokio::select! {
        r = sessions => r,
        () = shutdown => Ok(()),
    };
    // Scripts run detached from the agent: aborting leaves them running for the next agent.
    tasks.shutdown().await;
    outcome
}

/// Between half and all of `d`, at random, so agents that lost one server don't all come back
/// in the same instant.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = getrandom::fill(&mut b)
        .map(|()| u16::from_le_bytes(b))
        .unwrap_or(u16::MAX / 2);
    d / 2 + d.mul_f64(f64::from(r) / f64::from(u16::MAX) / 2.0)
}

/// Appends every event the agent reports to the spool (before anything is sent), except
/// `Hello`, which a session's `Register` carries instead.
async fn spooler(shared: Arc<Shared>, mut out_rx: mpsc::UnboundedReceiver<AgentEvent>) {
    while let Some(event) = out_rx.recv().await {
        if matches!(event, AgentEvent::Hello { .. } | AgentEvent::Presence(_)) {
            continue;
        }
        if let Err(e) = shared.spool().push(&event) {
            // The results are in the ledger too: the next Register reports them.
            tracing::error!(error = %e, "cannot spool an event; it is dropped");
            continue;
        }
        shared.spooled.notify_one();
    }
}

/// Runs the units' `status` commands once per heartbeat interval and keeps the latest health;
/// runs their alert checks when due and keeps the latest results.
async fn health_checker(shared: Arc<Shared>) {
    let root = shared.handle.config().root.clone();
    let mut checker = crate::agent::checks::Checker::new();
    loop {
        let ms = shared
            .interval_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let interval = if ms == 0 {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(ms)
        };
        let timeout = interval.clamp(Duration::from_secs(1), Duration::from_secs(30));
        if ms != 0 {
            let records = unit_records(&root).await;
            let with_status = records.iter().filter(|r| r.status).cloned().collect();
            let (health, checks) =
                tokio::join!(check_records(with_status, timeout), checker.run(&records));
            *shared.health.lock().unwrap_or_else(|p| p.into_inner()) = health;
            *shared.checks.lock().unwrap_or_else(|p| p.into_inner()) = checks;
        }
        tokio::time::sleep(interval).await;
    }
}

/// The credential file's path.
fn credential_path(root: &Path) -> PathBuf {
    root.join(CREDENTIAL_FILE)
}

fn load_credential(root: &Path) -> Result<Option<Credential>> {
    let path = credential_path(root);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Invalid(format!(
                "{} is not a credential file ({e}); delete it and join again with a join token",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Writes the credential file with mode 0600, atomically and durably.
fn save_credential(root: &Path, cred: &Credential) -> Result<()> {
    let path = credential_path(root);
    let bytes = serde_json::to_vec_pretty(cred)
        .map_err(|e| Error::Invalid(format!("cannot encode the credential: {e}")))?;
    crate::fsutil::write_atomic(&path, &bytes, 0o600, true).map_err(|e| Error::io(&path, e))
}

fn status_error(status: tonic::Status) -> Error {
    match status.code() {
        Code::PermissionDenied | Code::Unauthenticated | Code::InvalidArgument => {
            Error::Refused(status.message().to_owned())
        }
        _ => Error::Transport(format!("{}: {}", status.code(), status.message())),
    }
}

/// One session: connect, register, then serve until the stream breaks (or the certificate is
/// due for renewal).
async fn session(shared: &Arc<Shared>, inbox: &mpsc::UnboundedSender<ToAgent>) -> Result<Next> {
    let config = shared.handle.config().clone();
    let server = shared.server();
    let endpoint = tonic::transport::Endpoint::from_shared(server.clone())
        .map_err(|e| {
            Error::Refused(format!(
                "'{server}' is not a server URL ({e}); give one like http://127.0.0.1:7070"
            ))
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20));
    let saved = load_credential(&config.root)?;
    let saved_pin = saved.as_ref().and_then(|c| c.ca_fingerprint.clone());
    let https = server.starts_with("https://");
    // The certificate to present: one that is still valid, of the credential held.
    let now = unix_now();
    let held = match (https, &saved) {
        (true, Some(_)) => load_certificate(&config.root),
        _ => None,
    };
    let present = held.filter(|h| {
        let valid = now + 1 < h.not_after;
        if !valid {
            tracing::info!(
                expired_at = h.not_after,
                "the certificate has expired; renewing it with the credential"
            );
        }
        valid
    });
    // A new key and its CSR: to join, to get a certificate, or to renew one.
    let request = if https && present.as_ref().is_none_or(|h| now >= h.renew_at()) {
        Some(crate::tls::agent_csr(&config.name)?)
    } else {
        None
    };
    let connected = if https {
        let pin = shared
            .config
            .ca_fingerprint
            .clone()
            .or(saved_pin.clone())
            .ok_or_else(|| {
                Error::Refused(format!(
                    "{server} is a TLS server: give --ca-fingerprint sha256:… (as `bigmgr cluster join-token` prints it) so this agent knows it is the right one"
                ))
            })?;
        let tls = crate::tls::pinned_client_config_with_cert(
            &pin,
            &[b"h2"],
            present.as_ref().map(|h| h.pem.as_str()),
        )?;
        endpoint
            .connect_with_connector(crate::tls::connector(tls))
            .await
    } else {
        endpoint.connect().await
    };
    let channel = connected.map_err(|e| {
        let why = std::error::Error::source(&e)
            .map(|s| format!("{e}: {s}"))
            .unwrap_or_else(|| e.to_string());
        if why.contains("pinned CA") {
            Error::Refused(format!("{server}: {why}"))
        } else {
            Error::Transport(format!("cannot connect to {server}: {why}"))
        }
    })?;
    let mut client = pb::agent_service_client::AgentServiceClient::new(channel)
        .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(super::MAX_MESSAGE_BYTES);

    let mut sampler = Sampler::new(&config.root);
    if let Some(cg) = &shared.config.metrics_cgroup {
        sampler = match Sampler::new(&config.root).with_cgroup(cg) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "reporting the machine's CPU and memory instead");
                sampler
            }
        };
    }
    let auth = match (&saved, &shared.config.join_token) {
        (Some(c), _) => pb::register::Auth::Credential(c.credential.clone()),
        (None, Some(t)) => pb::register::Auth::JoinToken(t.clone()),
        (None, None) => {
            return Err(Error::Refused(format!(
                "this agent has no credential yet (no {} under {}); start it with --join-token",
                CREDENTIAL_FILE,
                config.root.display()
            )));
        }
    };
    let (running, finished) = shared.handle.report();
    let register = pb::Register {
        name: config.name.clone(),
        address: config.address.clone(),
        facts: Some(convert::facts_to_pb(&sampler.facts())),
        running: running.into_iter().map(convert::run_ref).collect(),
        finished: finished_within(&finished, MAX_REGISTER_FINISHED_BYTES),
        auth: Some(auth),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        csr_pem: request
            .as_ref()
            .map(|(_, csr)| csr.clone())
            .unwrap_or_default(),
    };
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(64);
    tx.send(pb::AgentMessage {
        body: Some(pb::agent_message::Body::Register(register)),
    })
    .await
    .map_err(|_| Error::Transport("the session closed before Register".into()))?;
    let mut inbound = client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(status_error)?
        .into_inner();
    let registered = match inbound.message().await.map_err(status_error)? {
        Some(pb::ServerMessage {
            body: Some(pb::server_message::Body::Registered(r)),
        }) => r,
        _ => {
            return Err(Error::Transport(
                "the server did not answer Register with Registered".into(),
            ));
        }
    };
    if !registered.credential.is_empty() {
        save_credential(
            &config.root,
            &Credential {
                server: server.clone(),
                host: config.name.clone(),
                cluster: registered.cluster.clone(),
                credential: registered.credential.clone(),
                ca_fingerprint: shared.config.ca_fingerprint.clone().or(saved_pin),
            },
        )?;
        tracing::info!(cluster = %registered.cluster, "joined; credential saved");
    }
    let mut renew_at = present.as_ref().map(Held::renew_at);
    match (&request, registered.certificate_pem.is_empty()) {
        (Some((key, _)), false) => {
            let held = save_certificate(&config.root, &registered.certificate_pem, key)?;
            if unix_now() >= held.renew_at() {
                // Asking again at once would get the same: wait as after any failure.
                return Err(Error::Transport(format!(
                    "the certificate the server issued is valid until {} (Unix time), already \
                     due for renewal by this host's clock: check the clocks of the host and \
                     the server",
                    held.not_after
                )));
            }
            tracing::info!(not_after = held.not_after, "certificate received and saved");
            renew_at = Some(held.renew_at());
            if present.is_none() {
                // The server ends a session without a client certificate here.
                tracing::info!("connecting again, presenting the certificate");
                return Ok(Next::Now);
            }
        }
        // A server without client certificates (or an older one): ask no more this session.
        (Some(_), true) => renew_at = None,
        (None, false) => tracing::warn!("ignoring a certificate that was not asked for"),
        (None, true) => {}
    }
    let interval = Duration::from_millis(u64::from(registered.heartbeat_interval_ms.max(1000)));
    shared.interval_ms.store(
        u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        std::sync::atomic::Ordering::Relaxed,
    );
    tracing::info!(server = %server, cluster = %registered.cluster, ?interval, "registered");

    let mut heartbeat = tokio::time::interval(interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut sample = tokio::time::interval(SAMPLE_EVERY);
    sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Events up to this sequence number went out on this session.
    let mut sent_upto = 0u64;
    // The pipelines' data requests of this session: dropped (their programs killed) with it.
    let mut data = tokio::task::JoinSet::new();
    loop {
        // Send what the spool holds beyond what this session sent (all of it at first).
        let pending = shared
            .spool()
            .pending_after(sent_upto, BATCH, MAX_BATCH_BYTES as u64);
        if !pending.is_empty() {
            let batch = batch(&pending, MAX_BATCH_BYTES);
            if !batch.too_large.is_empty() {
                shared.spool().reject(&batch.too_large)?;
            }
            sent_upto = sent_upto.max(batch.upto);
            if !batch.events.is_empty() {
                tx.send(pb::AgentMessage {
                    body: Some(pb::agent_message::Body::Events(pb::TaskEvents {
                        events: batch.events,
                    })),
                })
                .await
                .map_err(|_| Error::Transport("the session closed".into()))?;
            }
            // Each round takes at least one event: loop until the spool has no more.
            continue;
        }
        tokio::select! {
            () = shared.spooled.notified() => {}
            msg = inbound.message() => {
                let Some(msg) = msg.map_err(status_error)? else { return Ok(Next::Backoff) };
                if let Some(pb::server_message::Body::Data(request)) = msg.body {
                    data.spawn(serve_data(config.root.clone(), request, tx.clone()));
                } else {
                    handle_server_message(shared, inbox, msg)?;
                }
            }
            Some(_) = data.join_next(), if !data.is_empty() => {}
            () = until(renew_at) => {
                tracing::info!("the certificate is due for renewal: connecting again with a CSR");
                return Ok(Next::Now);
            }
            _ = heartbeat.tick() => {
                let metrics = sampler.heartbeat();
                let health = shared.health.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let checks = shared.checks.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let beat = convert::heartbeat_to_pb(&metrics, &health, &checks);
                tx.send(pb::AgentMessage {
                    body: Some(pb::agent_message::Body::Heartbeat(beat)),
                })
                .await
                .map_err(|_| Error::Transport("the session closed".into()))?;
            }
            _ = sample.tick() => sampler.sample(),
        }
    }
}

/// The spooled events one `TaskEvents` message carries.
#[derive(Debug, Default)]
struct Batch {
    /// The events, in order: at most `max_bytes` in all, encoded in the message.
    events: Vec<pb::TaskEvent>,
    /// The sequence number of the last spooled event taken (sent, or too large); 0 for none.
    upto: u64,
    /// Events too large to send even alone, with why: to be set aside.
    too_large: Vec<(u64, String)>,
}

/// Takes the `pending` events (in order) that fit in one message of at most `max_bytes`: at
/// least the first, unless it alone is larger (then it is too large, and the next is tried).
fn batch(pending: &[(u64, AgentEvent)], max_bytes: usize) -> Batch {
    let mut batch = Batch::default();
    let mut bytes = 0;
    for (seq, event) in pending {
        let Some(event) = convert::event_to_pb(*seq, event) else {
            batch.upto = *seq;
            continue;
        };
        let size = field_len(prost::Message::encoded_len(&event));
        if size > max_bytes {
            batch.too_large.push((
                *seq,
                format!("its encoded size, {size} bytes, is over the batch limit of {max_bytes}"),
            ));
        } else if bytes + size > max_bytes {
            break;
        } else {
            bytes += size;
            batch.events.push(event);
        }
        batch.upto = *seq;
    }
    batch
}

/// The bytes a message of `len` bytes takes as a field of another: its tag, its length, itself.
fn field_len(len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

/// The finished runs of a `Register`, oldest first, as many as fit in `max_bytes` encoded.
fn finished_within(
    finished: &[(crate::model::RunId, crate::transport::TaskResult)],
    max_bytes: usize,
) -> Vec<pb::FinishedRun> {
    let mut bytes = 0;
    let mut out = Vec::new();
    for (run, result) in finished {
        let f = convert::finished_to_pb(*run, result);
        bytes += field_len(prost::Message::encoded_len(&f));
        if bytes > max_bytes {
            tracing::warn!(
                reported = out.len(),
                left = finished.len() - out.len(),
                "too many finished runs for one registration; the rest are reported later"
            );
            break;
        }
        out.push(f);
    }
    out
}

/// Does one of the pipelines' data requests and sends its answer.
async fn serve_data(root: PathBuf, request: pb::DataRequest, tx: mpsc::Sender<pb::AgentMessage>) {
    let id = request.id;
    let answer = match convert::data_request_from_pb(request) {
        Ok((_, request)) => crate::agent::data::serve(&root, request).await,
        Err(e) => Err(e.to_string()),
    };
    let reply = convert::data_reply_to_pb(id, answer);
    let _ = tx
        .send(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Data(reply)),
        })
        .await;
}

/// Hands a server message to the agent or the spool.
fn handle_server_message(
    shared: &Shared,
    inbox: &mpsc::UnboundedSender<ToAgent>,
    msg: pb::ServerMessage,
) -> Result<()> {
    use pb::server_message::Body;
    let gone = || Error::Transport("the agent stopped".into());
    match msg.body {
        Some(Body::Run(task)) => match convert::spec_from_pb(task) {
            Ok(spec) => inbox
                .send(ToAgent::Run(Box::new(spec)))
                .map_err(|_| gone())?,
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed RunTask"),
        },
        Some(Body::Cancel(c)) => match convert::run_id(c.run.as_ref()) {
            Ok(run) => inbox.send(ToAgent::Cancel(run)).map_err(|_| gone())?,
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed CancelTask"),
        },
        Some(Body::Ack(ack)) => {
            if !ack.rejected.is_empty() {
                let rejected: Vec<(u64, String)> = ack
                    .rejected
                    .into_iter()
                    .map(|r| (r.seq, format!("the server refused it: {}", r.reason)))
                    .collect();
                shared.spool().reject(&rejected)?;
            }
            if ack.events_upto > 0 {
                shared.spool().ack(ack.events_upto)?;
            }
            if !ack.clean.is_empty() {
                let runs = ack
                    .clean
                    .iter()
                    .filter_map(|r| convert::run_id(Some(r)).ok())
                    .collect();
                inbox.send(ToAgent::Clean(runs)).map_err(|_| gone())?;
            }
        }
        Some(Body::Registered(_)) => tracing::warn!("ignoring a second Registered"),
        Some(Body::Data(_)) => tracing::warn!("a data request is served by the session"),
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LogStream, RunId, TaskId, TaskState};
    use crate::transport::TaskResult;
    use crate::transport::limits::MAX_RESULT_MESSAGE;

    #[test]
    fn a_follower_s_refusal_names_the_leader_to_go_to() {
        let refusal = format!(
            "transport: The service is currently unavailable: this replica is a follower; \
             {}https://10.0.0.2:7070",
            super::LEADER_IS_AT
        );
        assert_eq!(
            super::leader_named(&refusal).as_deref(),
            Some("https://10.0.0.2:7070")
        );
        assert_eq!(super::leader_named("cannot connect to https://x:1"), None);
        // Only a URL is followed: a refusal cannot send the agent to anything else.
        let odd = format!("{}file:///etc/passwd", super::LEADER_IS_AT);
        assert_eq!(super::leader_named(&odd), None);
    }

    fn run() -> RunId {
        RunId {
            task: TaskId(1),
            attempt: 1,
        }
    }

    fn log(n: u64, len: usize) -> (u64, AgentEvent) {
        let event = AgentEvent::Log {
            run: run(),
            stream: LogStream::Stdout,
            seq: n,
            at: 1_700_000_000_000,
            line: "x".repeat(len),
        };
        (n + 1, event)
    }

    /// The encoded size of the `TaskEvents` message a batch makes.
    fn message_len(b: &Batch) -> usize {
        prost::Message::encoded_len(&pb::TaskEvents {
            events: b.events.clone(),
        })
    }

    #[test]
    fn batches_are_bounded_by_bytes() {
        // 40 events of ~60 KiB: a 1 MiB batch takes 17 of them.
        let pending: Vec<_> = (0..40).map(|n| log(n, 60_000)).collect();
        let b = batch(&pending, MAX_BATCH_BYTES);
        assert_eq!(b.events.len(), 17);
        assert_eq!(b.upto, 17);
        assert!(b.too_large.is_empty());
        assert!(message_len(&b) <= MAX_BATCH_BYTES);
        let next = batch(&pending[17..], MAX_BATCH_BYTES);
        assert_eq!(next.events[0].seq, 18);
        // Short lines: the byte bound does not bind, every event offered goes.
        let short: Vec<_> = (0..BATCH as u64).map(|n| log(n, 80)).collect();
        let b = batch(&short, MAX_BATCH_BYTES);
        assert_eq!((b.events.len(), b.upto), (BATCH, BATCH as u64));
    }

    #[test]
    fn an_event_too_large_alone_is_set_aside_and_the_next_go() {
        let pending = vec![log(0, 100), log(1, 5_000), log(2, 100), log(3, 100)];
        let b = batch(&pending, 1_000);
        let seqs: Vec<u64> = b.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 3, 4]);
        assert_eq!(b.upto, 4);
        assert_eq!(b.too_large.len(), 1);
        assert_eq!(b.too_large[0].0, 2);
        assert!(b.too_large[0].1.contains("over the batch limit of 1000"));
        assert!(message_len(&b) <= 1_000);
        // Only a too large one: nothing to send, but it is taken.
        let b = batch(&pending[1..2], 1_000);
        assert!(b.events.is_empty());
        assert_eq!((b.upto, b.too_large.len()), (2, 1));
    }

    #[test]
    fn a_registration_carries_the_finished_runs_that_fit() {
        let finished: Vec<_> = (0..600)
            .map(|i| {
                (
                    RunId {
                        task: TaskId(i + 1),
                        attempt: 1,
                    },
                    TaskResult {
                        state: TaskState::Failed,
                        exit_code: Some(1),
                        pid: Some(7),
                        started_at: Some(1),
                        finished_at: 2,
                        message: Some("m".repeat(10_000)),
                        outcome_unknown: false,
                    },
                )
            })
            .collect();
        let reported = finished_within(&finished, MAX_REGISTER_FINISHED_BYTES);
        // Each message is cut to 8 KiB on the wire: about 500 of the 600 fit in 4 MiB.
        assert!((480..520).contains(&reported.len()), "{}", reported.len());
        let register = pb::Register {
            finished: reported,
            ..pb::Register::default()
        };
        assert!(prost::Message::encoded_len(&register) <= MAX_REGISTER_FINISHED_BYTES);
        let one = field_len(prost::Message::encoded_len(&convert::finished_to_pb(
            finished[0].0,
            &finished[0].1,
        )));
        assert!(one < MAX_RESULT_MESSAGE + 100, "{one}");
        assert_eq!(finished_within(&finished, 3 * one - 1).len(), 2);
        assert_eq!(finished_within(&finished, 3 * one).len(), 3);
    }
}
