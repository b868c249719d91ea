//! The assistant's chat as a user acts through it: providers (set by admins, keys never read
//! back), the caller's own threads, tools run as the caller ([`Acting::run_tool`]), answers
//! streamed from an OpenAI-compatible provider with the cluster's snapshot and the advisor's
//! findings ([`Acting::prepare_ask`], [`Conversation::run`]), and proposals that run only when
//! their user confirms them. Everything sent to a provider is redacted first.

use super::{Acting, AdviceScope, Manager};
use crate::assistant::provider::{self, Answer, WireMessage, clip};
use crate::assistant::redact::Redactor;
use crate::assistant::tools::{self, Args, ToolSpec};
use crate::assistant::{
    ChatEvent, MAX_HISTORY, MAX_QUESTION, MAX_ROUNDS, MAX_TOOL_ANSWER, system_prompt,
};
use crate::auth::Action;
use crate::model::*;
use crate::{Error, Result};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// The title of the thread that holds a user's proposals made over MCP, per cluster.
pub const MCP_THREAD: &str = "MCP proposals";

/// The providers' HTTP client (no overall timeout: each provider has its own).
fn client() -> Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    crate::tls::install_default_provider();
    let c = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("bigmgr/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Provider(format!("cannot make an HTTP client: {e}")))?;
    Ok(CLIENT.get_or_init(|| c))
}

/// What a tool call came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutput {
    /// A read-only tool's answer.
    Data(Value),
    /// A mutating tool's call, recorded as a pending proposal.
    Proposal(Proposal),
}

impl Manager {
    /// Every provider (never their keys).
    pub async fn providers(&self) -> Result<Vec<Provider>> {
        self.inner.store.providers().await
    }

    /// A compact picture of a cluster for the model: hosts with their latest figures, units
    /// with state and staleness, firing alerts, and the latest jobs.
    pub async fn overview(&self, cluster: &str) -> Result<Value> {
        let hosts: Vec<Value> = self
            .host_views(cluster)
            .await?
            .into_iter()
            .map(|h| {
                json!({
                    "name": h.name, "state": h.state, "address": h.address,
                    "last_heartbeat": h.last_heartbeat,
                    "cpu_percent": h.metrics.as_ref().map(|m| m.cpu_percent.round()),
                    "memory_used_percent": h.metrics.as_ref().map(|m| percent(m.memory_used_bytes, m.memory_total_bytes)),
                    "disk_used_percent": h.metrics.as_ref().map(|m| percent(m.disk_total_bytes.saturating_sub(m.disk_free_bytes), m.disk_total_bytes)),
                })
            })
            .collect();
        let services: Vec<Value> = self
            .service_views(cluster)
            .await?
            .into_iter()
            .map(|s| {
                json!({"name": s.name, "stack": s.stack, "service": s.service,
                       "config_version": s.config_version})
            })
            .collect();
        let units: Vec<Value> = self
            .unit_views(cluster)
            .await?
            .into_iter()
            .map(|u| {
                json!({"id": u.id, "service": u.service, "component": u.component,
                       "host": u.host, "state": u.state, "stale": u.stale})
            })
            .collect();
        let alerts: Vec<Value> = self
            .alerts(cluster, true)
            .await?
            .into_iter()
            .map(|a| {
                json!({"definition": a.definition, "state": a.state, "text": a.text,
                       "host": a.host, "service": a.service, "silenced": a.silenced.is_some()})
            })
            .collect();
        let jobs: Vec<Value> = self
            .job_views(
                cluster,
                JobFilter {
                    limit: Some(5),
                    newest_first: true,
                    ..JobFilter::default()
                },
            )
            .await?
            .into_iter()
            .map(|j| json!({"id": j.id, "command": j.command, "state": j.state}))
            .collect();
        Ok(json!({"hosts": hosts, "services": services, "units": units,
                  "firing_alerts": alerts, "latest_jobs": jobs}))
    }

    /// What must never reach a model about `cluster`: every value its services' secret
    /// properties have had (every config version, service layer and host overrides), and
    /// every provider's key.
    pub async fn redactor(&self, cluster: &str) -> Result<Redactor> {
        let store = self.inner.store.as_ref();
        let c = self.cluster(cluster).await?;
        let mut r = Redactor::default();
        for s in store.list_services(c.id).await? {
            let Ok((_, def)) = self.service_def(&c, &s.name).await else {
                continue;
            };
            r.add_configs(&def, &s.configs);
            for layer in s.host_overrides.values() {
                r.add_configs(&def, layer);
            }
            for v in store.list_config_versions(s.id).await? {
                r.add_configs(&def, &v.configs);
                for layer in v.host_overrides.values() {
                    r.add_configs(&def, layer);
                }
            }
        }
        for p in store.providers().await? {
            r.extend(store.provider_key(&p.name).await?);
        }
        Ok(r)
    }
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 100.0 / whole as f64).round())
}

impl Acting {
    /// Creates or replaces a provider (admins). Audited without its key.
    pub async fn set_provider(&self, settings: ProviderSettings) -> Result<Provider> {
        provider::check_settings(&settings)?;
        let store = self.manager().inner.store.clone();
        let name = settings.name.clone();
        let fut = async move { store.set_provider(&settings, now_ms()).await };
        self.act(
            Action::ManageAssistant,
            format!("provider {name}"),
            fut,
            |p| {
                format!(
                    "{} model {} at {}{}{}",
                    p.name,
                    p.model,
                    p.base_url,
                    if p.has_key { ", with a key" } else { "" },
                    if p.default { ", the default" } else { "" }
                )
            },
        )
        .await
    }

    /// Removes a provider (admins).
    pub async fn remove_provider(&self, name: &str) -> Result<()> {
        let store = self.manager().inner.store.clone();
        let owned = name.to_string();
        let fut = async move { store.remove_provider(&owned).await };
        self.act(
            Action::ManageAssistant,
            format!("provider {name}"),
            fut,
            |_| "removed".into(),
        )
        .await
    }

    /// The caller as a stored user (threads are per user).
    async fn user(&self) -> Result<User> {
        let name = &self.actor().name;
        self.manager()
            .inner
            .store
            .user_by_name(name)
            .await?
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the assistant keeps threads per user, and '{name}' is not a user; act \
                     with a user's token"
                ))
            })
    }

    /// Starts a thread about a cluster.
    pub async fn create_thread(&self, cluster: &str, title: Option<&str>) -> Result<Thread> {
        let c = self.manager().cluster(cluster).await?;
        let title = title.unwrap_or("").trim();
        crate::name::check_note("title", "the thread's title", title, 200)?;
        let user = self.user().await?;
        self.manager()
            .inner
            .store
            .create_thread(&NewThread {
                user: user.id,
                cluster: c.id,
                title: if title.is_empty() {
                    format!("about {cluster}")
                } else {
                    title.to_string()
                },
            })
            .await
    }

    /// The caller's threads, newest first.
    pub async fn threads(&self) -> Result<Vec<Thread>> {
        let user = self.user().await?;
        self.manager().inner.store.threads(user.id).await
    }

    /// One of the caller's threads; another user's is NotFound, as if it did not exist.
    pub async fn thread(&self, id: ThreadId) -> Result<Thread> {
        let user = self.user().await?;
        match self.manager().inner.store.thread(id).await? {
            Some(t) if t.user_id == user.id => Ok(t),
            _ => Err(Error::not_found("thread", id)),
        }
    }

    /// A thread's messages and proposals.
    pub async fn thread_contents(&self, id: ThreadId) -> Result<(Vec<ChatMessage>, Vec<Proposal>)> {
        let t = self.thread(id).await?;
        let store = &self.manager().inner.store;
        Ok((store.messages(t.id).await?, store.proposals(t.id).await?))
    }

    /// The tools this caller may use.
    pub fn tools(&self) -> Vec<&'static ToolSpec> {
        tools::offered(self.actor().role)
    }

    /// Runs one tool call as the caller: refused beyond its role, arguments checked, the
    /// answer a view as the REST API gives it. A mutating tool records a proposal in
    /// `thread` (or the caller's [`MCP_THREAD`] of the cluster) and changes nothing.
    /// `cluster` is the argument's default, where the call leaves it out.
    pub async fn run_tool(
        &self,
        cluster: Option<&str>,
        thread: Option<ThreadId>,
        call: &ToolCall,
    ) -> Result<ToolOutput> {
        let spec = tools::tool(&call.name)?;
        let actor = self.actor();
        if !actor.role.includes(spec.role) {
            return Err(Error::PermissionDenied(format!(
                "user '{}' (role {}) may not use the tool {}: it needs role {}",
                actor.name, actor.role, spec.name, spec.role
            )));
        }
        let mut value = call.arguments.clone();
        if let (Some(c), Some(obj)) = (cluster, value.as_object_mut())
            && spec.params.iter().any(|p| p.name == "cluster")
            && !obj.contains_key("cluster")
        {
            obj.insert("cluster".into(), json!(c));
        }
        let args = Args::check(spec, &value)?;
        if spec.mutating {
            let action = tools::proposal(&args)?;
            let thread = match thread {
                Some(t) => self.thread(t).await?.id,
                None => self.mcp_thread(&args).await?,
            };
            let p = self
                .manager()
                .inner
                .store
                .add_proposal(&NewProposal {
                    thread,
                    title: action.title.clone(),
                    action,
                })
                .await?;
            return Ok(ToolOutput::Proposal(p));
        }
        self.read_tool(&args, spec.name).await.map(ToolOutput::Data)
    }

    /// The caller's thread for proposals made over MCP about the cluster a call names.
    async fn mcp_thread(&self, args: &Args<'_>) -> Result<ThreadId> {
        let cluster = match args.opt_str("cluster") {
            Some(c) => c.to_string(),
            None => {
                let job = JobId(args.int("job", 1..=i64::MAX)?);
                let detail = self.manager().job(job).await?;
                crate::store::cluster_name(self.manager().inner.store.as_ref(), detail.job.cluster)
                    .await?
            }
        };
        let c = self.manager().cluster(&cluster).await?;
        if let Some(t) = self
            .threads()
            .await?
            .into_iter()
            .find(|t| t.cluster_id == c.id && t.title == MCP_THREAD)
        {
            return Ok(t.id);
        }
        Ok(self.create_thread(&cluster, Some(MCP_THREAD)).await?.id)
    }

    async fn read_tool(&self, args: &Args<'_>, name: &str) -> Result<Value> {
        let mgr = self.manager();
        Ok(match name {
            "list_clusters" => {
                let names: Vec<String> =
                    mgr.clusters().await?.into_iter().map(|c| c.name).collect();
                json!(names)
            }
            "cluster_overview" => mgr.overview(args.name("cluster")?).await?,
            "list_hosts" => to(&mgr.host_views(args.name("cluster")?).await?)?,
            "list_services" => {
                let cluster = args.name("cluster")?;
                json!({
                    "services": to(&mgr.service_views(cluster).await?)?,
                    "units": to(&mgr.unit_views(cluster).await?)?,
                })
            }
            "list_jobs" => {
                let limit = args.opt_int("limit", 1..=50)?.unwrap_or(10) as u32;
                to(&mgr
                    .job_views(
                        args.name("cluster")?,
                        JobFilter {
                            limit: Some(limit),
                            newest_first: true,
                            ..JobFilter::default()
                        },
                    )
                    .await?)?
            }
            "get_job" => to(&mgr.job_view(JobId(args.int("job", 1..=i64::MAX)?)).await?)?,
            "task_log" => {
                let job = JobId(args.int("job", 1..=i64::MAX)?);
                let task = TaskId(args.int("task", 1..=i64::MAX)?);
                let n = args.opt_int("lines", 1..=200)?.unwrap_or(40) as usize;
                let lines = mgr.job_task_log(job, task, None).await?;
                let skip = lines.len().saturating_sub(n);
                let tail: Vec<String> = lines
                    .into_iter()
                    .skip(skip)
                    .map(|l| format!("[attempt {} {}] {}", l.attempt, l.stream.as_str(), l.line))
                    .collect();
                json!(tail)
            }
            "config_versions" => {
                let cluster = args.name("cluster")?;
                let v = mgr.config_versions(cluster, args.name("service")?).await?;
                to(&mgr.config_version_views(cluster, v).await?)?
            }
            "config_diff" => {
                let range = 1..=i64::from(u32::MAX);
                to(&mgr
                    .diff_configs(
                        args.name("cluster")?,
                        args.name("service")?,
                        args.int("from", range.clone())? as u32,
                        args.int("to", range)? as u32,
                    )
                    .await?)?
            }
            "list_relations" => to(&mgr.relation_views(args.name("cluster")?).await?)?,
            "get_advice" => to(&mgr
                .advice(
                    args.name("cluster")?,
                    &AdviceScope {
                        host: args.opt_name("host")?.map(str::to_string),
                        service: args.opt_name("service")?.map(str::to_string),
                        job: args.opt_int("job", 1..=i64::MAX)?.map(JobId),
                    },
                )
                .await?)?,
            "list_alerts" => to(&mgr.alerts(args.name("cluster")?, !args.flag("all")).await?)?,
            "audit_log" => {
                let limit = args.opt_int("limit", 1..=100)?.unwrap_or(20) as u32;
                let mut events = mgr.audit(self.actor(), &AuditFilter::default()).await?;
                let skip = events.len().saturating_sub(limit as usize);
                to(&events.split_off(skip))?
            }
            other => return Err(Error::Invalid(format!("{other} is not a read-only tool"))),
        })
    }

    /// Checks a question and gathers what answering it takes: the caller's thread, the
    /// provider (named, else the default, else the only one), the redactor, the system
    /// prompt and the thread's history. The question is stored. Errors here come before any
    /// streaming (a REST frontend answers them as problems).
    pub async fn prepare_ask(
        &self,
        thread: ThreadId,
        question: &str,
        provider: Option<&str>,
    ) -> Result<Conversation> {
        let question = question.trim();
        if question.is_empty() || question.len() > MAX_QUESTION {
            return Err(Error::invalid_field(
                "content",
                format!("ask something, in at most {MAX_QUESTION} bytes"),
            ));
        }
        let thread = self.thread(thread).await?;
        let mgr = self.manager();
        let store = &mgr.inner.store;
        let providers = store.providers().await?;
        let chosen = match provider {
            Some(name) => providers
                .into_iter()
                .find(|p| p.name == name)
                .ok_or_else(|| Error::not_found("provider", name))?,
            None => {
                let only = providers.len() == 1;
                providers
                    .into_iter()
                    .find(|p| p.default || only)
                    .ok_or_else(|| {
                        Error::Conflict(
                            "no model provider is set (or none is the default): an admin sets \
                             one with PUT /api/v1/assistant/providers/{name}; the advisor \
                             (GET /api/v1/clusters/{cluster}/advice) needs none"
                                .into(),
                        )
                    })?
            }
        };
        let key = store.provider_key(&chosen.name).await?;
        let redactor = mgr.redactor(&thread.cluster).await?;
        let snapshot = mgr.overview(&thread.cluster).await?;
        let findings = mgr
            .advice(&thread.cluster, &AdviceScope::default())
            .await
            .map(|f| json!(f))
            .unwrap_or_else(|e| json!({"error": e.to_string()}));
        let mut wire = vec![WireMessage::System(system_prompt(
            &thread.cluster,
            &snapshot,
            &findings,
        ))];
        let history = store.messages(thread.id).await?;
        let start = history.len().saturating_sub(MAX_HISTORY);
        // Start the history at a question, never in the middle of a round of tool calls.
        let start = history[start..]
            .iter()
            .position(|m| m.role == ChatRole::User)
            .map_or(history.len(), |p| start + p);
        for m in &history[start..] {
            wire.push(match m.role {
                ChatRole::User => WireMessage::User(m.content.clone()),
                ChatRole::Assistant => WireMessage::Assistant {
                    content: m.content.clone(),
                    tool_calls: m.tool_calls.clone(),
                },
                ChatRole::Tool => WireMessage::Tool {
                    call: m.tool_call_id.clone().unwrap_or_default(),
                    content: m.content.clone(),
                },
            });
        }
        store
            .add_message(&NewChatMessage {
                thread: thread.id,
                role: ChatRole::User,
                content: question.to_string(),
                tool_calls: vec![],
                tool_call_id: None,
            })
            .await?;
        wire.push(WireMessage::User(question.to_string()));
        Ok(Conversation {
            acting: self.clone(),
            thread,
            provider: chosen,
            key,
            redactor,
            wire,
        })
    }

    /// Claims a pending proposal of the caller's for running: it moves to `confirmed` once,
    /// so two confirmations never run it twice. The frontend then runs its request as the
    /// caller and reports what came back with [`Acting::finish_proposal`].
    pub async fn claim_proposal(&self, id: ProposalId) -> Result<Proposal> {
        let p = self.own_proposal(id).await?;
        let store = &self.manager().inner.store;
        if !store
            .decide_proposal(
                id,
                ProposalState::Pending,
                ProposalState::Confirmed,
                None,
                now_ms(),
            )
            .await?
        {
            return Err(Error::Conflict(format!(
                "proposal {id} is {}, not pending: it runs once",
                self.own_proposal(id).await?.state.as_str()
            )));
        }
        Ok(p)
    }

    /// Records what a claimed proposal's request answered: `failed` for a status of 400 or
    /// more.
    pub async fn finish_proposal(
        &self,
        id: ProposalId,
        result: ProposalResult,
    ) -> Result<Proposal> {
        self.own_proposal(id).await?;
        let to = if result.status >= 400 {
            ProposalState::Failed
        } else {
            ProposalState::Confirmed
        };
        self.manager()
            .inner
            .store
            .decide_proposal(id, ProposalState::Confirmed, to, Some(&result), now_ms())
            .await?;
        self.own_proposal(id).await
    }

    /// Rejects a pending proposal: nothing runs.
    pub async fn reject_proposal(&self, id: ProposalId) -> Result<Proposal> {
        self.own_proposal(id).await?;
        if !self
            .manager()
            .inner
            .store
            .decide_proposal(
                id,
                ProposalState::Pending,
                ProposalState::Rejected,
                None,
                now_ms(),
            )
            .await?
        {
            return Err(Error::Conflict(format!(
                "proposal {id} is no longer pending"
            )));
        }
        self.own_proposal(id).await
    }

    /// One of the caller's proposals; another user's is NotFound.
    pub async fn own_proposal(&self, id: ProposalId) -> Result<Proposal> {
        let p = self
            .manager()
            .inner
            .store
            .proposal(id)
            .await?
            .ok_or_else(|| Error::not_found("proposal", id))?;
        self.thread(p.thread)
            .await
            .map_err(|_| Error::not_found("proposal", id))?;
        Ok(p)
    }
}

/// A question being answered: see [`Acting::prepare_ask`].
#[derive(Debug)]
pub struct Conversation {
    acting: Acting,
    thread: Thread,
    provider: Provider,
    key: Option<String>,
    redactor: Redactor,
    wire: Vec<WireMessage>,
}

impl Conversation {
    /// The thread it answers in.
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Answers: asks the provider (everything redacted), streams its text, runs the tools it
    /// calls as the asking user, and records proposals, for up to [`MAX_ROUNDS`] rounds; ends
    /// with `done` or `error`. Stops early, keeping what came marked `(cancelled)`, when
    /// `events` is closed (the client went away).
    pub async fn run(mut self, events: UnboundedSender<ChatEvent>) {
        if let Err(e) = self.rounds(&events).await {
            let _ = events.send(ChatEvent::Error {
                title: match e {
                    Error::Provider(_) => "the model provider failed".into(),
                    _ => "the assistant failed".into(),
                },
                detail: e.to_string(),
            });
        }
    }

    async fn rounds(&mut self, events: &UnboundedSender<ChatEvent>) -> Result<()> {
        let client = client()?;
        let offered: Vec<Value> = self.acting.tools().iter().map(|t| t.openai()).collect();
        let timeout = Duration::from_millis(self.provider.timeout_ms);
        let store = self.acting.manager().inner.store.clone();
        for _ in 0..MAX_ROUNDS {
            for m in &mut self.wire {
                for t in m.text_mut() {
                    *t = self.redactor.redact(t);
                }
            }
            let body = provider::request_body(&self.provider.model, &self.wire, &offered);
            // What has streamed, kept if the client goes away mid-answer.
            let streamed = std::sync::Mutex::new(String::new());
            let ask = provider::complete(
                client,
                &self.provider.base_url,
                self.key.as_deref(),
                &body,
                timeout,
                |text| {
                    if let Ok(mut s) = streamed.lock() {
                        s.push_str(&text);
                    }
                    events.send(ChatEvent::Token { text }).is_ok()
                },
            );
            let answer: Answer = tokio::select! {
                a = ask => a?,
                _ = events.closed() => {
                    let partial = streamed.lock().map(|s| s.clone()).unwrap_or_default();
                    self.store_reply(&format!("{partial} (cancelled)"), vec![]).await?;
                    return Ok(());
                }
            };
            if events.is_closed() {
                let partial = format!("{} (cancelled)", answer.content);
                self.store_reply(&partial, vec![]).await?;
                return Ok(());
            }
            let calls = answer.tool_calls()?;
            let stored = self.store_reply(&answer.content, calls.clone()).await?;
            self.wire.push(WireMessage::Assistant {
                content: answer.content.clone(),
                tool_calls: calls.clone(),
            });
            if calls.is_empty() {
                let _ = events.send(ChatEvent::Done { message: stored.id });
                return Ok(());
            }
            for call in calls {
                let _ = events.send(ChatEvent::ToolCall(call.clone()));
                let cluster = self.thread.cluster.clone();
                let (ok, content) = match self
                    .acting
                    .run_tool(Some(&cluster), Some(self.thread.id), &call)
                    .await
                {
                    Ok(ToolOutput::Data(v)) => (true, self.redactor.redact_json(&v)),
                    Ok(ToolOutput::Proposal(p)) => {
                        let said = json!({
                            "proposal": p.id, "title": p.title,
                            "state": "pending: the operator must confirm it; nothing has changed",
                        });
                        let _ = events.send(ChatEvent::Proposal(p));
                        (true, said)
                    }
                    Err(e) => (
                        false,
                        json!({"error": self.redactor.redact(&e.to_string())}),
                    ),
                };
                let text = content.to_string();
                let text = if text.len() > MAX_TOOL_ANSWER {
                    format!(
                        "{} [cut at {MAX_TOOL_ANSWER} bytes; ask for less]",
                        clip(&text, MAX_TOOL_ANSWER)
                    )
                } else {
                    text
                };
                let _ = events.send(ChatEvent::ToolResult {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    ok,
                    content: serde_json::from_str(&text).unwrap_or(Value::String(text.clone())),
                });
                store
                    .add_message(&NewChatMessage {
                        thread: self.thread.id,
                        role: ChatRole::Tool,
                        content: text.clone(),
                        tool_calls: vec![],
                        tool_call_id: Some(call.id.clone()),
                    })
                    .await?;
                self.wire.push(WireMessage::Tool {
                    call: call.id,
                    content: text,
                });
            }
        }
        Err(Error::Provider(format!(
            "the model called tools for {MAX_ROUNDS} rounds without answering; ask something \
             narrower"
        )))
    }

    async fn store_reply(&self, content: &str, calls: Vec<ToolCall>) -> Result<ChatMessage> {
        self.acting
            .manager()
            .inner
            .store
            .add_message(&NewChatMessage {
                thread: self.thread.id,
                role: ChatRole::Assistant,
                content: content.to_string(),
                tool_calls: calls,
                tool_call_id: None,
            })
            .await
    }
}

/// A view as JSON.
fn to<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Invalid(format!("cannot encode an answer: {e}")))
}
