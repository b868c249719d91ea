//! Self-healing: a service whose policy says so gets its STARTED units that are down restarted
//! by jobs of the system's, after a grace time, with exponential backoff within one outage
//! and at most N attempts per unit an hour; then it gives up and raises the CRITICAL `self_heal_gave_up`
//! alert that says so. A unit stopped on purpose (desired STOPPED), one another job works on,
//! one on a lost host and one in maintenance are left alone.
//!
//! [`decide`] is pure; the alert evaluation calls it every round (on the server that runs the
//! engine) and hands what it decides to [`serve`], which submits the jobs through the
//! Manager so they are planned, audited and shown like any other.

use super::Manager;
use super::alerts::ClusterState;
use crate::auth::Actor;
use crate::model::*;
use std::collections::{HashMap, HashSet};
use tokio::sync::{mpsc, oneshot};

/// The alert raised when self-healing gives up on a unit.
pub const GAVE_UP: &str = "self_heal_gave_up";

/// What a self-heal job's reason starts with.
pub const REASON_PREFIX: &str = "self-heal:";

/// A restart the evaluation asks for, answered with the job (or why there is none).
pub(crate) struct HealRequest {
    pub(crate) request: JobRequest,
    pub(crate) reply: oneshot::Sender<crate::Result<Job>>,
}

/// Where the evaluation sends restarts.
pub(crate) type Healer = mpsc::UnboundedSender<HealRequest>;

/// What [`decide`] needs besides the cluster: its policies, maintenance windows, the units
/// unfinished jobs work on, and every self-heal restart of the last hour (unit, when).
#[derive(Debug)]
pub(crate) struct HealInput<'a> {
    pub(crate) policies: &'a [(ServiceId, HealingPolicy)],
    pub(crate) maintenance: &'a [Maintenance],
    pub(crate) busy: &'a HashSet<UnitId>,
    pub(crate) attempts: &'a HashMap<UnitId, Vec<i64>>,
    /// Since when each unit's `status` has failed (from the `unit_down` evaluation).
    pub(crate) down_since: &'a HashMap<UnitId, i64>,
}

/// One restart to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Restart {
    pub(crate) unit: UnitId,
    pub(crate) reason: String,
}

/// Decides which units to restart now, and reports the `self_heal_gave_up` alert of every
/// unit of a healing service.
pub(crate) fn decide(
    state: &ClusterState,
    input: &HealInput<'_>,
    now: i64,
) -> (Vec<Restart>, Vec<AlertReport>) {
    let mut restarts = Vec::new();
    let mut reports = Vec::new();
    let policy_of: HashMap<ServiceId, HealingPolicy> = input.policies.iter().copied().collect();
    for u in &state.units {
        let Some(policy) = policy_of.get(&u.service).filter(|p| p.restart) else {
            continue;
        };
        let Some(service) = state.services.iter().find(|s| s.id == u.service) else {
            continue;
        };
        let host = state.hosts.iter().find(|h| h.id == u.host);
        let host_name = state.host_name(u.host);
        let what = format!("{} of {} on {host_name}", u.component, service.name);
        let subject = AlertSubject {
            cluster: state.cluster,
            host: Some(u.host),
            service: Some(u.service),
            unit: Some(u.id),
        };
        let recent: Vec<i64> = input
            .attempts
            .get(&u.id)
            .map(|a| a.iter().copied().filter(|t| now - t < 3_600_000).collect())
            .unwrap_or_default();
        let down_for = input.down_since.get(&u.id).map(|since| now - since);
        let mut gave_up = None;
        if let Some(down_for) = down_for
            && u.state == UnitState::Started
            && host.is_some_and(|h| h.state == HostState::Online)
            && !input.busy.contains(&u.id)
            && !input.maintenance.iter().any(|m| m.covers(&subject, now))
        {
            let n = u32::try_from(recent.len()).unwrap_or(u32::MAX);
            if n >= policy.max_per_hour {
                gave_up = Some(format!(
                    "self-healing gave up on {what}: {n} restarts in the last hour did not \
                     bring it up (at most {} an hour); look at it",
                    policy.max_per_hour
                ));
            } else {
                // The first restart of an outage after the grace time; each later one of the
                // same outage waits twice as long after the one before (a unit that came up
                // in between starts a new outage, while the hourly limit counts them all).
                let down_since = now - down_for;
                let this_outage: Vec<i64> = recent
                    .iter()
                    .copied()
                    .filter(|t| *t >= down_since)
                    .collect();
                let k = u32::try_from(this_outage.len()).unwrap_or(u32::MAX);
                let wait = policy.grace_ms.saturating_mul(1_i64 << k.min(20));
                let last = this_outage.iter().copied().max();
                let due = down_for >= policy.grace_ms && last.is_none_or(|t| now - t >= wait);
                if due {
                    restarts.push(Restart {
                        unit: u.id,
                        reason: format!(
                            "{REASON_PREFIX} {} on {host_name} down for {} s (attempt {} of at \
                             most {} an hour)",
                            u.component,
                            down_for / 1000,
                            n + 1,
                            policy.max_per_hour
                        ),
                    });
                }
            }
        }
        reports.push(AlertReport {
            definition: GAVE_UP.to_string(),
            subject,
            state: if gave_up.is_some() {
                AlertState::Critical
            } else {
                AlertState::Ok
            },
            text: gave_up.unwrap_or_else(|| format!("self-healing watches {what}")),
            at: now,
        });
    }
    (restarts, reports)
}

/// Every self-heal restart of cluster `c` in the hour before `now`, by unit: read from the
/// jobs' reasons, so it holds across restarts and failovers.
pub(crate) async fn recent_attempts(
    store: &dyn crate::store::Store,
    c: ClusterId,
    now: i64,
) -> crate::Result<HashMap<UnitId, Vec<i64>>> {
    let jobs = store
        .list_jobs(&JobFilter {
            cluster: Some(c),
            limit: Some(1000),
            newest_first: true,
            ..JobFilter::default()
        })
        .await?;
    let mut out: HashMap<UnitId, Vec<i64>> = HashMap::new();
    for j in jobs.iter().take_while(|j| now - j.created_at < 3_600_000) {
        let healing = j
            .options
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with(REASON_PREFIX));
        if let (true, Target::Units(units)) = (healing, &j.target) {
            for u in units {
                out.entry(*u).or_default().push(j.created_at);
            }
        }
    }
    Ok(out)
}

/// Submits the restarts the evaluation asks for, as the system (audited), until the Manager
/// is dropped or the sender goes.
pub(crate) async fn serve(
    inner: std::sync::Weak<super::Inner>,
    mut rx: mpsc::UnboundedReceiver<HealRequest>,
) {
    while let Some(req) = rx.recv().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mgr = Manager { inner };
        let job = mgr.acting(Actor::system()).submit(req.request).await;
        let _ = req.reply.send(job);
    }
}
