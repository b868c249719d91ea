//! The server's side of talking to agents: the [`Transport`] trait, the messages both ways and
//! the [`limits`] of what one event carries. Its implementations live beside what they talk to:
//! [`crate::grpc::GrpcTransport`] for remote agents, [`crate::agent::LocalTransport`] for agents
//! in this process.

pub mod data;
pub mod limits;

use crate::Result;
use crate::model::{HostState, JobId, LogStream, RunId, TaskState};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A script's name and content, shared between the tasks that run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// The file name it is written under (`zookeeper_server.sh`).
    pub name: String,
    /// Its bytes (usually a shell script with a `#!` line).
    pub content: Arc<[u8]>,
}

/// A file to write under the unit directory before the script runs (a rendered config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// The path relative to the unit directory; never absolute, never `..`.
    pub path: String,
    /// The content.
    pub content: String,
}

/// Everything an agent needs to run one attempt of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The task and attempt.
    pub run: RunId,
    /// The job it belongs to.
    pub job: JobId,
    /// The cluster name.
    pub cluster: String,
    /// The service instance name (`zk`).
    pub service: String,
    /// The service definition name (`zookeeper`).
    pub service_def: String,
    /// The component name.
    pub component: String,
    /// The command, passed to the script as `argv[1]`.
    pub command: String,
    /// The host name.
    pub host: String,
    /// The address the unit's services bind to.
    pub address: String,
    /// The script to run.
    pub script: Script,
    /// How long it may run before SIGTERM (then SIGKILL after the agent's grace period).
    pub timeout: Duration,
    /// Extra environment variables: names match `[A-Za-z_][A-Za-z0-9_]*`
    /// ([`crate::name::is_env_name`]) and do not start with `BIGMGR_` (the agent's own), values
    /// hold no NUL; the agent refuses a task that breaks this.
    pub env: BTreeMap<String, String>,
    /// Files to write under the unit directory first.
    pub files: Vec<FileSpec>,
    /// Extra context for the script's JSON file (configs, peers, relation data).
    pub context: serde_json::Value,
    /// The component defines a `status` command: the agent runs `<script> status` for the
    /// unit every heartbeat and reports its health.
    #[serde(default)]
    pub status: bool,
}

#[cfg(any(test, feature = "conformance"))]
impl TaskSpec {
    /// A task spec for tests: `start` of zookeeper_server (service `zk`) on host h1
    /// (127.0.0.2) in job 3 of cluster c1, running `script` (a shell script body) with a
    /// one-minute timeout and nothing else set.
    pub fn example(run: RunId, script: &str) -> TaskSpec {
        TaskSpec {
            run,
            job: JobId(3),
            cluster: "c1".into(),
            service: "zk".into(),
            service_def: "zookeeper".into(),
            component: "zookeeper_server".into(),
            command: "start".into(),
            host: "h1".into(),
            address: "127.0.0.2".into(),
            script: Script {
                name: "zookeeper_server.sh".into(),
                content: Arc::from(format!("#!/bin/sh\n{script}\n").into_bytes()),
            },
            timeout: Duration::from_secs(60),
            env: BTreeMap::new(),
            files: Vec::new(),
            context: serde_json::json!({}),
            status: false,
        }
    }
}

/// How one attempt ended, as the agent records it in its ledger and reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    /// SUCCEEDED, FAILED, TIMED_OUT or CANCELED.
    pub state: TaskState,
    /// The exit code, if the script exited on its own.
    pub exit_code: Option<i32>,
    /// The script's pid, if it was started.
    pub pid: Option<u32>,
    /// When the script started (ms since epoch), if it did.
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: i64,
    /// What happened, where the state alone does not say (the signal, the spawn error …); at
    /// most [`limits::MAX_RESULT_MESSAGE`] bytes.
    pub message: Option<String>,
    /// FAILED because the run was lost with its agent: it was received, but neither its
    /// process nor its exit status survived, so whether it did its work is unknown. The engine
    /// runs such a task again if its command allows (`rerun_if_lost`, docs/engine.md).
    #[serde(default)]
    pub outcome_unknown: bool,
}

/// A message from the server to one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToAgent {
    /// Run this task (or, if the ledger holds its run id, report the recorded result).
    Run(Box<TaskSpec>),
    /// Stop this run: SIGTERM, then SIGKILL after the grace period; it ends CANCELED.
    Cancel(RunId),
    /// The server has stored these results; the agent may forget them.
    Clean(Vec<RunId>),
}

/// What an agent reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentEvent {
    /// Sent first on every (re)connection: what runs now and what finished but was not cleaned.
    Hello {
        /// Runs whose scripts are running.
        running: Vec<RunId>,
        /// Runs that finished, with their results, not yet cleaned.
        finished: Vec<(RunId, TaskResult)>,
    },
    /// The run was received and recorded in the ledger.
    Received(RunId),
    /// The script started.
    Started {
        /// The run.
        run: RunId,
        /// The script's pid.
        pid: u32,
        /// When (ms since epoch).
        at: i64,
    },
    /// One line of output, at most [`limits::MAX_LOG_LINE`] bytes.
    Log {
        /// The run.
        run: RunId,
        /// Which stream.
        stream: LogStream,
        /// The line's number within the run's output, from 0.
        seq: u64,
        /// When it was read.
        at: i64,
        /// The text, without its newline.
        line: String,
    },
    /// The run ended.
    Finished {
        /// The run.
        run: RunId,
        /// How.
        result: TaskResult,
    },
    /// Not sent by agents: the transport's verdict on the host — LOST after three heartbeat
    /// intervals without one, ONLINE when heartbeats are back.
    Presence(HostState),
}

/// An event and the host whose agent sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FromAgent {
    /// The host name.
    pub host: String,
    /// The event.
    pub event: AgentEvent,
    /// The agent's sequence number of this event, for transports whose agents keep events until
    /// they are acknowledged; 0 for none. The engine hands it back through
    /// [`Transport::stored`] once the event's effects are in the store.
    #[serde(default)]
    pub seq: u64,
}

/// The one stream of agent events a transport hands to its engine: the transport sends into
/// [`EventStream::sender`]; [`Transport::take_events`] takes the receiving end, once.
#[derive(Debug)]
pub struct EventStream {
    tx: mpsc::UnboundedSender<FromAgent>,
    rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<FromAgent>>>,
}

impl Default for EventStream {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        EventStream {
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
        }
    }
}

impl EventStream {
    /// Where the transport sends the events it receives.
    pub fn sender(&self) -> &mpsc::UnboundedSender<FromAgent> {
        &self.tx
    }

    /// The receiving end, for [`Transport::take_events`]; an error the second time.
    pub fn take(&self) -> Result<mpsc::UnboundedReceiver<FromAgent>> {
        self.rx
            .lock()
            .map_err(|_| crate::Error::Transport("event stream poisoned".into()))?
            .take()
            .ok_or_else(|| {
                crate::Error::Transport("the event stream was already taken by an engine".into())
            })
    }
}

/// The server's side of talking to agents. Object-safe.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends a message to the agent of a host; an error if that agent is not connected.
    async fn send(&self, host: &str, msg: ToAgent) -> Result<()>;
    /// Takes the stream of events from all agents. The engine calls it once; a second call
    /// is an error.
    fn take_events(&self) -> Result<mpsc::UnboundedReceiver<FromAgent>>;
    /// Everything the engine received from `host` up to the event with sequence number `seq`
    /// (see [`FromAgent::seq`]) is stored: the agent may drop those events. The default does
    /// nothing, for transports whose agents keep nothing to replay.
    fn stored(&self, host: &str, seq: u64) {
        let _ = (host, seq);
    }
    /// [`Transport::stored`] up to `seq`, and that the results of `clean` are stored, so the
    /// agent may forget those runs ([`ToAgent::Clean`]): what an engine step tells a host
    /// after a result of it was stored, in one message where the transport can carry both.
    /// The default calls `stored` and then sends the clean.
    async fn stored_and_clean(&self, host: &str, seq: u64, clean: Vec<RunId>) -> Result<()> {
        self.stored(host, seq);
        if clean.is_empty() {
            return Ok(());
        }
        self.send(host, ToAgent::Clean(clean)).await
    }
    /// The host was removed: end its agent's session and stop watching it. The default does
    /// nothing.
    fn forget(&self, host: &str) {
        let _ = host;
    }
    /// True if an agent for `host` is connected now (a host added after its in-process agent
    /// attached is ONLINE at once, not WAITING). The default says no.
    fn connected(&self, host: &str) -> bool {
        let _ = host;
        false
    }
    /// Whether this server (a replica) runs the engine now. A follower's transport ends the
    /// sessions it has and refuses new ones, naming the leader if it knows it, so that agents
    /// hold their streams to the leader. The default ignores it (a single server leads).
    fn set_role(&self, role: &Role) {
        let _ = role;
    }
    /// Asks the data side of `host`'s agent for a pipeline (docs/pipelines.md) and waits for
    /// its answer. [`crate::Error::Transport`] when the agent is not connected or its session
    /// ends first (the request is then abandoned), [`crate::Error::Invalid`] when it answers
    /// that it failed. The default carries no data.
    async fn data(&self, host: &str, request: data::DataRequest) -> Result<data::DataAnswer> {
        let _ = request;
        Err(crate::Error::Transport(format!(
            "this transport carries no pipeline data (host {host})"
        )))
    }
}

/// A replica's part in serving agents (see [`Transport::set_role`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// It runs the engine and serves agents.
    Leader,
    /// Another replica runs the engine; its URL, if known.
    Follower {
        /// The leader's URL as agents reach it.
        leader: Option<String>,
    },
}
