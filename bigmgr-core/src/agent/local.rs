//! `LocalTransport`: channels to in-process agents, for embedding, tests, benchmarks and Python.

use super::{Agent, AgentConfig, Executor};
use crate::transport::{AgentEvent, EventStream, FromAgent, ToAgent, Transport};
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Channels to agents running in this process: each attached [`Agent`] gets an inbox, and all
/// of them report into one event stream the engine takes.
#[derive(Debug, Default)]
pub struct LocalTransport {
    agents: Mutex<HashMap<String, mpsc::UnboundedSender<ToAgent>>>,
    /// Each attached agent's root, where its pipelines' data side works.
    roots: Mutex<HashMap<String, std::path::PathBuf>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    events: EventStream,
}

impl LocalTransport {
    /// A transport with no agents yet.
    pub fn new() -> Arc<LocalTransport> {
        Arc::new(LocalTransport::default())
    }

    /// Opens an agent on `config.root` (waiting while an earlier agent on that root drains) and
    /// attaches it under `config.name`.
    pub async fn spawn_agent(
        &self,
        config: AgentConfig,
        executor: Arc<dyn Executor>,
    ) -> Result<()> {
        let name = config.name.clone();
        let agent = Agent::open(config, executor).await?;
        self.attach(&name, agent)
    }

    /// Attaches an opened agent as the agent of host `name`; it says Hello at once.
    pub fn attach(&self, name: &str, agent: Agent) -> Result<()> {
        let (inbox_tx, inbox_rx) = mpsc::unbounded_channel();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<AgentEvent>();
        {
            let mut agents = self
                .agents
                .lock()
                .map_err(|_| Error::Transport("agent table poisoned".into()))?;
            if agents.get(name).is_some_and(|tx| !tx.is_closed()) {
                return Err(Error::AlreadyExists {
                    kind: "agent",
                    name: name.to_string(),
                });
            }
            agents.insert(name.to_string(), inbox_tx);
        }
        if let Ok(mut roots) = self.roots.lock() {
            roots.insert(name.to_string(), agent.config().root.clone());
        }
        let events = self.events.sender().clone();
        let host = name.to_string();
        let forward = tokio::spawn(async move {
            while let Some(event) = out_rx.recv().await {
                if events
                    .send(FromAgent {
                        host: host.clone(),
                        event,
                        seq: 0,
                    })
                    .is_err()
                {
                    break;
                }
            }
        });
        let run = tokio::spawn(agent.run(inbox_rx, out_tx));
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(run);
            tasks.push(forward);
        }
        Ok(())
    }

    /// Detaches host `name`'s agent: its inbox closes, it finishes what runs and stops.
    pub fn detach(&self, name: &str) {
        if let Ok(mut agents) = self.agents.lock() {
            agents.remove(name);
        }
    }

    /// Detaches every agent and waits until each has finished its running tasks and stopped.
    pub async fn shutdown(&self) {
        if let Ok(mut agents) = self.agents.lock() {
            agents.clear();
        }
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for t in tasks {
            let _ = t.await;
        }
    }

    /// The names of the attached agents.
    pub fn hosts(&self) -> Vec<String> {
        self.agents
            .lock()
            .map(|a| a.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Transport for LocalTransport {
    async fn send(&self, host: &str, msg: ToAgent) -> Result<()> {
        let agents = self
            .agents
            .lock()
            .map_err(|_| Error::Transport("agent table poisoned".into()))?;
        let tx = agents
            .get(host)
            .ok_or_else(|| Error::Transport(format!("no agent is attached for host {host}")))?;
        tx.send(msg)
            .map_err(|_| Error::Transport(format!("the agent of host {host} has stopped")))
    }

    fn take_events(&self) -> Result<mpsc::UnboundedReceiver<FromAgent>> {
        self.events.take()
    }

    fn forget(&self, host: &str) {
        self.detach(host);
    }

    fn connected(&self, host: &str) -> bool {
        self.agents
            .lock()
            .is_ok_and(|a| a.get(host).is_some_and(|tx| !tx.is_closed()))
    }

    /// The agent's data side, done here on its root (while it is attached).
    async fn data(
        &self,
        host: &str,
        request: crate::transport::data::DataRequest,
    ) -> Result<crate::transport::data::DataAnswer> {
        let root = if self.connected(host) {
            self.roots.lock().ok().and_then(|r| r.get(host).cloned())
        } else {
            None
        };
        let root =
            root.ok_or_else(|| Error::Transport(format!("no agent is attached for host {host}")))?;
        super::data::serve(&root, request)
            .await
            .map_err(Error::Invalid)
    }
}
