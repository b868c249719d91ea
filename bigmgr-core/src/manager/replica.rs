//! Several servers (replicas) on one PostgreSQL store, one of them leading: the holder of the
//! engine's lease runs the job engine, every other replica serves REST only and hands what
//! the engine must hear (a job queued, a job's control) to the leader at once through
//! `LISTEN`/`NOTIFY`; the leader tells the others every job and task change the same way, so
//! their event streams follow jobs as the leader's do.
//!
//! One task per replica ([`run`]) keeps the lease: a follower tries to take it every third of
//! the lease time; the leader renews it as often and steps down — engine stopped, agents'
//! sessions closed, fence lowered — when the renewal finds another holder, or has failed for
//! a whole lease time. Every write of the leader's engine and transport is fenced by the epoch
//! of its lease in the write's own transaction (`store::Fence`), so a replica that lost its
//! lease while paused changes nothing when it wakes. A new leader starts its engine as a
//! restarted server does: unfinished jobs are recovered from the store and running tasks are
//! adopted from the agents' `Register`.

use crate::engine::{Command, Control, Engine, EngineParts, Update};
use crate::model::{JobId, JobState, TaskId, TaskState};
use crate::store::{Fence, JobStore, SqlStore};
use crate::transport::{FromAgent, Role};
use crate::{Error, Result};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Notifications to the leader's engine: a job queued, a job's control.
const ENGINE_CHANNEL: &str = "bigmgr_engine";
/// The leader's answers to controls forwarded by followers.
const REPLIES_CHANNEL: &str = "bigmgr_replies";
/// Job and task changes, from the leader to the followers.
const UPDATES_CHANNEL: &str = "bigmgr_updates";
/// How long a follower waits for the leader to answer a forwarded control.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server takes part as a replica ([`crate::ManagerBuilder::replica`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSettings {
    /// The URL agents reach this replica by (followers tell agents the leader's).
    pub url: String,
    /// How long the engine's lease lasts without renewal: a dead leader is replaced within
    /// it. Renewed every third of it.
    pub lease_time: Duration,
}

/// What [`run`] works with.
pub(super) struct Replica {
    pub(super) sql: SqlStore,
    pub(super) holder: String,
    pub(super) fence: Fence,
    pub(super) settings: ReplicaSettings,
    pub(super) parts: EngineParts,
    pub(super) alerts: super::AlertSettings,
    /// Where the alert evaluation sends self-heal restarts (while leading).
    pub(super) healer: super::healing::Healer,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) events: mpsc::UnboundedReceiver<FromAgent>,
}

/// The engine this replica runs while it leads.
struct Leading {
    epoch: i64,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedSender<FromAgent>,
    task: JoinHandle<()>,
    /// The built-in alerts' evaluation, through the fenced store (stopped when dropped).
    alerts: super::alerts::Evaluating,
    renewed: Instant,
}

/// A holder id: the replica's URL and something of this process alone, so that a restarted
/// replica is a new holder.
pub(super) fn holder_id(url: &str) -> String {
    let mut b = [0u8; 6];
    let _ = getrandom::fill(&mut b);
    format!("{url} {}-{}", std::process::id(), hex::encode(b))
}

/// The URL in a holder id.
fn holder_url(holder: &str) -> &str {
    holder.split_whitespace().next().unwrap_or(holder)
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Result<crate::model::Job>>>>>;

/// Keeps this replica's part until the Manager is dropped (the task is aborted then).
pub(super) async fn run(mut r: Replica) {
    let mut listener = loop {
        match r
            .sql
            .listen(&[ENGINE_CHANNEL, REPLIES_CHANNEL, UPDATES_CHANNEL])
            .await
        {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other replicas; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let pending: Pending = Arc::default();
    let mut updates = r.parts.updates.subscribe();
    let mut leading: Option<Leading> = None;
    let mut leader_seen: Option<String> = None;
    let mut next_request = 0u64;
    let mut next_round = tokio::time::Instant::now();
    r.parts.transport.set_role(&Role::Follower { leader: None });
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_round) => {
                let wait;
                (leading, wait) = keep_lease(&r, leading, &mut leader_seen).await;
                next_round = tokio::time::Instant::now() + wait;
            }
            Some(cmd) = r.commands.recv() => match &leading {
                Some(l) => { let _ = l.commands.send(cmd); }
                None => {
                    next_request += 1;
                    forward(&r, cmd, &pending, next_request).await;
                }
            },
            Some(ev) = r.events.recv() => {
                if let Some(l) = &leading { let _ = l.events.send(ev); }
            }
            n = listener.recv() => match n {
                Ok(n) => on_notification(&r, &leading, &pending, n.channel(), n.payload()).await,
                Err(e) => {
                    tracing::warn!(error = %e, "lost the notifications connection; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            u = updates.recv() => {
                if let (Ok(u), Some(_)) = (u, &leading) { publish(&r, &u).await; }
            }
        }
    }
}

/// One round of the lease: a follower tries to take it, the leader renews it (or steps down).
/// Returns who leads here, and when the next round is due: a third of the lease time, or for a
/// follower, just after the holder's lease would expire if that comes sooner.
async fn keep_lease(
    r: &Replica,
    leading: Option<Leading>,
    leader_seen: &mut Option<String>,
) -> (Option<Leading>, Duration) {
    let every = r.settings.lease_time / 3;
    let now = keep_lease_round(r, leading, leader_seen).await;
    if now.is_some() {
        return (now, every);
    }
    let until_expiry = match r.sql.lease().await {
        Ok(Some(l)) if l.expires_in_ms >= 0 => {
            Duration::from_millis(u64::try_from(l.expires_in_ms).unwrap_or(0) + 20)
        }
        _ => every,
    };
    (None, every.min(until_expiry))
}

async fn keep_lease_round(
    r: &Replica,
    leading: Option<Leading>,
    leader_seen: &mut Option<String>,
) -> Option<Leading> {
    let ttl = r.settings.lease_time;
    match leading {
        Some(mut l) => {
            if l.task.is_finished() {
                tracing::error!("the engine stopped; stepping down");
                return step_down(r, l, "the engine stopped").await;
            }
            match r.sql.renew_lease(&r.holder, l.epoch, ttl).await {
                Ok(true) => {
                    l.renewed = Instant::now();
                    Some(l)
                }
                Ok(false) => step_down(r, l, "another replica took the lease").await,
                Err(e) if l.renewed.elapsed() >= ttl => {
                    step_down(r, l, &format!("cannot renew the lease: {e}")).await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the lease; trying again");
                    Some(l)
                }
            }
        }
        None => match r.sql.acquire_lease(&r.holder, ttl).await {
            Ok(Some(epoch)) => lead(r, epoch).await,
            Ok(None) => {
                let leader = r
                    .sql
                    .lease()
                    .await
                    .ok()
                    .flatten()
                    .filter(|l| l.expires_in_ms > 0)
                    .map(|l| holder_url(&l.holder).to_string());
                if *leader_seen != leader {
                    tracing::info!(leader = ?leader, "following");
                    r.parts.transport.set_role(&Role::Follower {
                        leader: leader.clone(),
                    });
                    *leader_seen = leader;
                }
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the lease");
                None
            }
        },
    }
}

/// Took the lease at `epoch`: raise the fence, recover the engine, serve agents.
async fn lead(r: &Replica, epoch: i64) -> Option<Leading> {
    tracing::info!(epoch, "leading: this replica runs the engine");
    r.fence.set_epoch(epoch);
    let families = r.parts.metrics.families();
    families.leader.set(1);
    families.leader_epoch.set(epoch);
    let mut engine = Engine::new(r.parts.clone());
    if let Err(e) = engine.recover().await {
        tracing::error!(error = %e, "cannot recover the engine; giving the lease up");
        r.fence.set_epoch(0);
        families.leader.set(0);
        families.leader_epoch.set(0);
        let _ = r.sql.release_lease(&r.holder, epoch).await;
        return None;
    }
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(engine.run(commands_rx, events_rx));
    let alerts = super::alerts::start(
        Arc::new(r.sql.fenced(r.fence.clone())),
        Arc::clone(&r.parts.stacks),
        r.alerts.clone(),
        r.parts.metrics.clone(),
        Some(r.healer.clone()),
    );
    r.parts.transport.set_role(&Role::Leader);
    Some(Leading {
        epoch,
        commands,
        events,
        task,
        alerts,
        renewed: Instant::now(),
    })
}

/// Lost the lease: stop the engine where it is (its writes are fenced anyway), lower the
/// fence, send the agents away.
async fn step_down(r: &Replica, l: Leading, why: &str) -> Option<Leading> {
    tracing::warn!(epoch = l.epoch, why, "stepping down: a follower now");
    r.fence.set_epoch(0);
    l.task.abort();
    drop(l.alerts);
    let _ = l.task.await;
    let families = r.parts.metrics.families();
    families.leader.set(0);
    families.leader_epoch.set(0);
    r.parts.transport.set_role(&Role::Follower { leader: None });
    None
}

/// A follower hands a command to the leader.
async fn forward(r: &Replica, cmd: Command, pending: &Pending, n: u64) {
    let payload = match cmd {
        Command::Queued(job) => json!({"from": r.holder, "queued": job.id.0}),
        Command::Created(detail) => json!({"from": r.holder, "queued": detail.job.id.0}),
        Command::Control { id, action, reply } => {
            let request = format!("{}#{n}", r.holder);
            lock(pending).insert(request.clone(), reply);
            let pending = Arc::clone(pending);
            let waiting = request.clone();
            tokio::spawn(async move {
                tokio::time::sleep(CONTROL_TIMEOUT).await;
                if let Some(reply) = lock(&pending).remove(&waiting) {
                    let _ = reply.send(Err(Error::Transport(format!(
                        "no leader answered within {CONTROL_TIMEOUT:?} (is a replica leading?); \
                         try again"
                    ))));
                }
            });
            json!({"from": r.holder, "request": request, "id": id.0, "action": action_name(action)})
        }
    };
    if let Err(e) = r.sql.notify(ENGINE_CHANNEL, &payload.to_string()).await {
        tracing::warn!(error = %e, "cannot reach the leader; the engine finds queued jobs when it starts");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn action_name(a: Control) -> &'static str {
    match a {
        Control::Cancel => "cancel",
        Control::Pause => "pause",
        Control::Resume => "resume",
        Control::Retry => "retry",
    }
}

fn action_of(name: &str) -> Option<Control> {
    Some(match name {
        "cancel" => Control::Cancel,
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "retry" => Control::Retry,
        _ => return None,
    })
}

/// What another replica sent.
async fn on_notification(
    r: &Replica,
    leading: &Option<Leading>,
    pending: &Pending,
    channel: &str,
    payload: &str,
) {
    let Ok(msg) = serde_json::from_str::<Value>(payload) else {
        tracing::warn!(channel, "an unreadable notification; ignored");
        return;
    };
    if msg["from"].as_str() == Some(r.holder.as_str()) {
        return;
    }
    match channel {
        ENGINE_CHANNEL => {
            let Some(l) = leading else { return };
            if let Some(id) = msg["queued"].as_i64() {
                match r.parts.jobs.get_job(JobId(id)).await {
                    Ok(Some(job)) => {
                        let _ = l.commands.send(Command::Queued(job));
                    }
                    Ok(None) => tracing::warn!(id, "a follower queued a job that is not stored"),
                    Err(e) => tracing::warn!(error = %e, "cannot load a queued job"),
                }
            } else if let (Some(id), Some(action), Some(request), Some(to)) = (
                msg["id"].as_i64(),
                msg["action"].as_str().and_then(action_of),
                msg["request"].as_str(),
                msg["from"].as_str(),
            ) {
                let (reply, answer) = oneshot::channel();
                let _ = l.commands.send(Command::Control {
                    id: JobId(id),
                    action,
                    reply,
                });
                let (sql, holder) = (r.sql.clone(), r.holder.clone());
                let (request, to) = (request.to_string(), to.to_string());
                tokio::spawn(async move {
                    let outcome = match answer.await {
                        Ok(Ok(job)) => json!({"ok": job}),
                        Ok(Err(e)) => error_json(&e, id),
                        Err(_) => {
                            json!({"error": {"kind": "other", "message": "the engine stopped"}})
                        }
                    };
                    let mut body = json!({"from": holder, "to": to, "request": request});
                    if let (Some(b), Some(o)) = (body.as_object_mut(), outcome.as_object()) {
                        b.extend(o.clone());
                    }
                    if let Err(e) = sql.notify(REPLIES_CHANNEL, &body.to_string()).await {
                        tracing::warn!(error = %e, "cannot answer a follower's control");
                    }
                });
            }
        }
        REPLIES_CHANNEL => {
            if msg["to"].as_str() != Some(r.holder.as_str()) {
                return;
            }
            let Some(reply) = msg["request"]
                .as_str()
                .and_then(|req| lock(pending).remove(req))
            else {
                return;
            };
            let outcome = match serde_json::from_value::<crate::model::Job>(msg["ok"].clone()) {
                Ok(job) => Ok(job),
                Err(_) => Err(error_of(&msg["error"])),
            };
            let _ = reply.send(outcome);
        }
        UPDATES_CHANNEL if leading.is_none() => {
            if let Some(u) = update_of(&msg) {
                let _ = r.parts.updates.send(u);
            }
        }
        _ => {}
    }
}

/// The leader tells the followers a job's or task's change.
async fn publish(r: &Replica, u: &Update) {
    let payload = match u {
        Update::Job { id, state } => {
            json!({"from": r.holder, "job": id.0, "state": state.as_str()})
        }
        Update::Task { job, task, state } => {
            json!({"from": r.holder, "job": job.0, "task": task.0, "state": state.as_str()})
        }
        Update::Host { .. } => return,
    };
    if let Err(e) = r.sql.notify(UPDATES_CHANNEL, &payload.to_string()).await {
        tracing::debug!(error = %e, "cannot tell the followers a change");
    }
}

fn update_of(msg: &Value) -> Option<Update> {
    let job = JobId(msg["job"].as_i64()?);
    let state = msg["state"].as_str()?;
    Some(match msg["task"].as_i64() {
        Some(task) => Update::Task {
            job,
            task: TaskId(task),
            state: state.parse::<TaskState>().ok()?,
        },
        None => Update::Job {
            id: job,
            state: state.parse::<JobState>().ok()?,
        },
    })
}

fn error_json(e: &Error, id: i64) -> Value {
    let (kind, message) = match e {
        Error::NotFound { .. } => ("not_found", id.to_string()),
        Error::Conflict(m) => ("conflict", m.clone()),
        Error::Invalid(m) => ("invalid", m.clone()),
        other => ("other", other.to_string()),
    };
    json!({"error": {"kind": kind, "message": message}})
}

fn error_of(v: &Value) -> Error {
    let message = v["message"]
        .as_str()
        .unwrap_or("the leader refused")
        .to_string();
    match v["kind"].as_str() {
        Some("not_found") => Error::not_found("job", message),
        Some("conflict") => Error::Conflict(message),
        Some("invalid") => Error::Invalid(message),
        _ => Error::Transport(message),
    }
}

/// The store a replica's engine and transport write through: fenced by the lease.
pub(super) fn fenced_jobs(sql: &SqlStore, fence: &Fence) -> Arc<dyn JobStore> {
    Arc::new(sql.fenced(fence.clone()))
}
