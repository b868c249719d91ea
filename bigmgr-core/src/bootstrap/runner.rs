//! The server runs the built-in `bootstrap` command itself: [`ServerSide`] wraps the transport
//! and keeps every `Run` of that command from the agents, running it here instead — log in
//! over SSH, install and start the agent, wait for it to join — and reports it to the engine
//! as an agent would (received, started, one log line per step, finished), with no sequence
//! number to acknowledge. Everything else passes through to the wrapped transport.
//!
//! The SSH credential of a host is an [`Order`] handed over by the Manager just before it
//! submits the job; it is held in memory only, taken by the run that uses it and dropped with
//! it. A run with no order (the server restarted, or another replica took the job over) fails,
//! saying to run the bootstrap again.

use super::{Installed, SshSession, SshTarget, install_agent};
use crate::Result;
use crate::model::{HostId, HostState, LogStream, RunId, TaskState, now_ms};
use crate::store::Store;
use crate::transport::limits::{MAX_LOG_LINE, MAX_RESULT_MESSAGE, bounded};
use crate::transport::{
    AgentEvent, EventStream, FromAgent, Role, TaskResult, TaskSpec, ToAgent, Transport,
};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a bootstrapped agent has to join once it was started.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// What one host's bootstrap needs: where to log in, and what to install.
#[derive(Debug, Clone)]
pub struct Order {
    /// The host (in the store) it is for.
    pub host: HostId,
    /// How to reach it.
    pub target: SshTarget,
    /// What to install there.
    pub install: super::AgentInstall,
}

/// The runs in progress here, each with its host.
type Running = Arc<Mutex<HashMap<RunId, (String, JoinHandle<()>)>>>;

/// The transport wrapper that runs `bootstrap` tasks in the server; see the module docs.
pub struct ServerSide {
    inner: Arc<dyn Transport>,
    events: EventStream,
    store: Arc<dyn Store>,
    orders: Mutex<HashMap<String, Order>>,
    running: Running,
    /// Runs this wrapper finished, until the engine cleans them.
    done: Arc<Mutex<HashSet<RunId>>>,
}

impl ServerSide {
    /// Wraps `inner`; `store` records host keys and shows when a host joined.
    pub fn new(inner: Arc<dyn Transport>, store: Arc<dyn Store>) -> Self {
        ServerSide {
            inner,
            events: EventStream::default(),
            store,
            orders: Mutex::new(HashMap::new()),
            running: Arc::new(Mutex::new(HashMap::new())),
            done: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Hands over the orders of a bootstrap about to be submitted, by host name. Refused
    /// ([`crate::Error::Conflict`]) — and none is kept — if one of those hosts has a
    /// bootstrap waiting or running already.
    pub fn place(&self, orders: Vec<(String, Order)>) -> Result<()> {
        // Locks are taken in one order everywhere: `running`, then `orders`.
        let running = self.running.lock().expect("not poisoned");
        let mut held = self.orders.lock().expect("not poisoned");
        let busy: HashSet<&str> = running
            .values()
            .map(|(h, _)| h.as_str())
            .chain(held.keys().map(String::as_str))
            .collect();
        if let Some((name, _)) = orders.iter().find(|(n, _)| busy.contains(n.as_str())) {
            return Err(crate::Error::Conflict(format!(
                "host {name} is being bootstrapped already: wait for that job to end"
            )));
        }
        drop(running);
        held.extend(orders);
        Ok(())
    }

    /// The first of `hosts` with a bootstrap waiting or running, if any.
    pub fn busy<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let running = self.running.lock().expect("not poisoned");
        let held = self.orders.lock().expect("not poisoned");
        hosts
            .into_iter()
            .find(|h| held.contains_key(*h) || running.values().any(|(name, _)| name == h))
    }

    /// Drops the orders of hosts whose job could not be submitted.
    pub fn withdraw(&self, hosts: &[String]) {
        let mut held = self.orders.lock().expect("not poisoned");
        for h in hosts {
            held.remove(h);
        }
    }

    fn emit(tx: &mpsc::UnboundedSender<FromAgent>, host: &str, event: AgentEvent) {
        let _ = tx.send(FromAgent {
            host: host.to_string(),
            event,
            seq: 0,
        });
    }

    fn start(&self, host: &str, spec: &TaskSpec) {
        let run = spec.run;
        let tx = self.events.sender().clone();
        let mut running = self.running.lock().expect("not poisoned");
        if running.contains_key(&run) {
            // Sent again (its host's new agent said Hello without it): it runs here.
            Self::emit(&tx, host, AgentEvent::Received(run));
            return;
        }
        let order = self.orders.lock().expect("not poisoned").remove(host);
        let store = self.store.clone();
        let name = host.to_string();
        let (host, done, all) = (host.to_string(), self.done.clone(), self.running.clone());
        let task = tokio::spawn(async move {
            Self::emit(&tx, &host, AgentEvent::Received(run));
            let started = now_ms();
            let pid = std::process::id();
            Self::emit(
                &tx,
                &host,
                AgentEvent::Started {
                    run,
                    pid,
                    at: started,
                },
            );
            let mut seq = 0u64;
            let mut log = |line: String| {
                Self::emit(
                    &tx,
                    &host,
                    AgentEvent::Log {
                        run,
                        stream: LogStream::Stdout,
                        seq,
                        at: now_ms(),
                        line: bounded(&line, MAX_LOG_LINE, "line"),
                    },
                );
                seq += 1;
            };
            let outcome = match order {
                Some(order) => bootstrap(store.as_ref(), &order, &mut log).await,
                None => Err(crate::Error::Conflict(
                    "this server holds no SSH credential for the host: credentials are kept in \
                     the memory of the server that was asked, for that job only (it restarted, \
                     or another replica took the job over); run the bootstrap again"
                        .into(),
                )),
            };
            let (state, exit_code, message) = match outcome {
                Ok(()) => (TaskState::Succeeded, Some(0), None),
                Err(e) => {
                    let why = e.to_string();
                    log(format!("failed: {why}"));
                    (
                        TaskState::Failed,
                        Some(1),
                        Some(bounded(&why, MAX_RESULT_MESSAGE, "message")),
                    )
                }
            };
            done.lock().expect("not poisoned").insert(run);
            all.lock().expect("not poisoned").remove(&run);
            Self::emit(
                &tx,
                &host,
                AgentEvent::Finished {
                    run,
                    result: TaskResult {
                        state,
                        exit_code,
                        pid: Some(pid),
                        started_at: Some(started),
                        finished_at: now_ms(),
                        message,
                        outcome_unknown: false,
                    },
                },
            );
        });
        running.insert(run, (name, task));
    }

    /// Ends a run of ours at once; false if it is not ours.
    fn cancel(&self, host: &str, run: RunId) -> bool {
        let Some((_, task)) = self.running.lock().expect("not poisoned").remove(&run) else {
            return false;
        };
        task.abort();
        self.done.lock().expect("not poisoned").insert(run);
        Self::emit(
            self.events.sender(),
            host,
            AgentEvent::Finished {
                run,
                result: TaskResult {
                    state: TaskState::Canceled,
                    exit_code: None,
                    pid: Some(std::process::id()),
                    started_at: None,
                    finished_at: now_ms(),
                    message: Some("cancelled while bootstrapping over SSH".into()),
                    outcome_unknown: false,
                },
            },
        );
        true
    }

    /// Of runs whose results are stored, those an agent ran: the ones run here (bootstraps)
    /// are forgotten here instead.
    fn agents_runs(&self, runs: Vec<RunId>) -> Vec<RunId> {
        let mut done = self.done.lock().expect("not poisoned");
        runs.into_iter().filter(|r| !done.remove(r)).collect()
    }
}

/// Whether a task is the built-in bootstrap (by its service, command and script, so no other
/// stack's command is ever kept from its agent).
fn is_bootstrap(spec: &TaskSpec) -> bool {
    spec.service_def == super::builtin::SERVICE
        && spec.command == super::builtin::COMMAND
        && *spec.script.content == *super::builtin::SCRIPT
}

#[async_trait]
impl Transport for ServerSide {
    async fn send(&self, host: &str, msg: ToAgent) -> Result<()> {
        match msg {
            ToAgent::Run(spec) if is_bootstrap(&spec) => {
                self.start(host, &spec);
                Ok(())
            }
            ToAgent::Cancel(run) if self.cancel(host, run) => Ok(()),
            ToAgent::Clean(runs) => {
                let rest = self.agents_runs(runs);
                if rest.is_empty() {
                    return Ok(());
                }
                self.inner.send(host, ToAgent::Clean(rest)).await
            }
            other => self.inner.send(host, other).await,
        }
    }

    fn take_events(&self) -> Result<mpsc::UnboundedReceiver<FromAgent>> {
        let mut agents = self.inner.take_events()?;
        let ours = self.events.take()?;
        let tx = self.events.sender().clone();
        tokio::spawn(async move {
            while let Some(ev) = agents.recv().await {
                if tx.send(ev).is_err() {
                    break;
                }
            }
        });
        Ok(ours)
    }

    fn stored(&self, host: &str, seq: u64) {
        self.inner.stored(host, seq);
    }

    async fn stored_and_clean(&self, host: &str, seq: u64, clean: Vec<RunId>) -> Result<()> {
        let rest = self.agents_runs(clean);
        self.inner.stored_and_clean(host, seq, rest).await
    }

    fn forget(&self, host: &str) {
        self.inner.forget(host);
    }

    fn connected(&self, host: &str) -> bool {
        self.inner.connected(host)
    }

    fn set_role(&self, role: &Role) {
        self.inner.set_role(role);
    }

    async fn data(
        &self,
        host: &str,
        request: crate::transport::data::DataRequest,
    ) -> Result<crate::transport::data::DataAnswer> {
        self.inner.data(host, request).await
    }
}

/// One host's bootstrap: log in, record the host key, install and start the agent, and wait
/// for it to join (or find it running already: nothing to do).
async fn bootstrap(
    store: &dyn Store,
    order: &Order,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<()> {
    let t = &order.target;
    log(format!(
        "connecting to {}@{} port {} over SSH",
        t.user, t.address, t.port
    ));
    let ssh = SshSession::connect(t).await?;
    match &t.host_key {
        super::HostKey::Known(_) => log(format!("host key {}: the known one", ssh.host_key)),
        super::HostKey::TrustOnFirstUse => log(format!(
            "host key {}: first login, trusted and recorded (later bootstraps accept only it)",
            ssh.host_key
        )),
    }
    store.set_host_ssh_key(order.host, &ssh.host_key).await?;
    let installed = install_agent(&ssh, &order.install, log).await;
    ssh.close().await;
    if installed? == Installed::AlreadyRunning {
        return Ok(());
    }
    let since = store
        .host_by_name(&order.install.name)
        .await?
        .and_then(|h| h.last_heartbeat);
    log(format!(
        "waiting up to {}s for the agent to join as host {}",
        JOIN_TIMEOUT.as_secs(),
        order.install.name
    ));
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    loop {
        if let Some(h) = store.host_by_name(&order.install.name).await?
            && h.state == HostState::Online
            && h.last_heartbeat.is_some()
            && h.last_heartbeat != since
        {
            log(format!("host {} joined: its agent is ONLINE", h.name));
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(crate::Error::Transport(format!(
                "the agent was started but did not join within {}s: see {}/agent.log on the \
                 host (can it reach {}?)",
                JOIN_TIMEOUT.as_secs(),
                order.install.prefix,
                order.install.server
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
