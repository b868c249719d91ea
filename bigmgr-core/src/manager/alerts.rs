//! Alerts the server evaluates itself, for every cluster: `host_lost` (a host without
//! heartbeats), `unit_down` (a unit STARTED whose `status` fails, for a while), `unit_stale`
//! (a unit running an older config version than its service's, for a while) and `job_failed`
//! (the cluster's latest finished job failed). One task runs them every
//! [`AlertSettings::interval`] on the server that runs the engine (the leader of replicas) and
//! records every finding ([`crate::store::AlertStore`]); a definition's `for` time is counted
//! here, from the first bad finding, so one bad sample raises nothing.
//!
//! Each round also silences what maintenance windows cover (their changes notify no one) and
//! asks self-healing ([`super::healing`]) what to restart. Definitions declared by stacks
//! (port, web, script, metric) build on this (issue 15).

use super::Manager;
use super::healing::{self, HealInput, HealRequest, Healer};
use crate::model::*;
use crate::stack::StackProvider;
use crate::store::Store;
use crate::view::{AlertChangeView, AlertTargetView, AlertView, DeliveryView};
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The built-in definitions' names.
pub const HOST_LOST: &str = "host_lost";
/// See [`HOST_LOST`].
pub const UNIT_DOWN: &str = "unit_down";
/// See [`HOST_LOST`].
pub const UNIT_STALE: &str = "unit_stale";
/// See [`HOST_LOST`].
pub const JOB_FAILED: &str = "job_failed";

/// How the built-in alerts are evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    /// How often every cluster is checked; default 5 s.
    pub interval: Duration,
    /// How long a STARTED unit's `status` must fail before `unit_down` is CRITICAL; default
    /// 30 s.
    pub unit_down_for: Duration,
    /// How long a unit may run an older config version before `unit_stale` is WARNING;
    /// default 10 minutes.
    pub unit_stale_for: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            interval: Duration::from_secs(5),
            unit_down_for: Duration::from_secs(30),
            unit_stale_for: Duration::from_secs(600),
        }
    }
}

/// What one cluster looks like to the built-in definitions.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClusterState {
    pub(crate) cluster: ClusterId,
    pub(crate) hosts: Vec<Host>,
    pub(crate) services: Vec<ServiceInstance>,
    pub(crate) units: Vec<Unit>,
    /// Its most recent finished job, if any.
    pub(crate) last_finished: Option<Job>,
    /// Units that applied an older config version than their service's in which nothing
    /// they use differs (another component's config changed): not stale.
    pub(crate) unchanged: std::collections::HashSet<crate::model::UnitId>,
}

impl ClusterState {
    /// The name of host `id` (its id if the cluster has no such host).
    pub(crate) fn host_name(&self, id: HostId) -> String {
        host_name(&self.hosts, id)
    }
}

/// When each (definition, subject) was first found bad, for the `for` times.
pub(crate) type Pending = HashMap<(String, AlertSubject), i64>;

/// A finding after its definition's `for` time: `bad` (a state and text) once it has lasted
/// `hold` since it was first found (counted in `pending`), OK with how long so far before
/// that, and OK with `ok` when nothing is bad (which forgets when it started).
pub(crate) fn held(
    pending: &mut Pending,
    key: (String, AlertSubject),
    bad: Option<(AlertState, String)>,
    hold: Duration,
    ok: String,
    now: i64,
) -> (AlertState, String) {
    match bad {
        None => {
            pending.remove(&key);
            (AlertState::Ok, ok)
        }
        Some((level, text)) => {
            let since = *pending.entry(key).or_insert(now);
            let held = u64::try_from(now - since).unwrap_or(0);
            if held >= u64::try_from(hold.as_millis()).unwrap_or(u64::MAX) {
                (level, text)
            } else {
                (
                    AlertState::Ok,
                    format!("{text} (for {} s so far)", held / 1000),
                )
            }
        }
    }
}

/// Evaluates the built-in definitions on one cluster at `now`: one finding per subject.
pub(crate) fn evaluate(
    state: &ClusterState,
    settings: &AlertSettings,
    overrides: &HashMap<String, super::checks::AlertOverride>,
    pending: &mut Pending,
    now: i64,
) -> Vec<AlertReport> {
    let mut out = Vec::new();
    let host_name = |id: HostId| state.host_name(id);
    let mut find = |definition: &'static str,
                    subject: AlertSubject,
                    bad: Option<(AlertState, String)>,
                    hold: Duration,
                    ok: String| {
        let key = (definition.to_string(), subject);
        let o = overrides.get(definition);
        let (state, text) = if o.is_some_and(|o| !o.enabled) {
            pending.remove(&key);
            (
                AlertState::Ok,
                "disabled for this cluster by an operator".to_string(),
            )
        } else {
            let hold = o
                .and_then(|o| o.hold_ms)
                .map_or(hold, Duration::from_millis);
            held(pending, key, bad, hold, ok, now)
        };
        out.push(AlertReport {
            definition: definition.to_string(),
            subject,
            state,
            text,
            at: now,
        });
    };
    for h in &state.hosts {
        if h.state == HostState::Waiting {
            continue;
        }
        let subject = AlertSubject {
            cluster: state.cluster,
            host: Some(h.id),
            ..AlertSubject::default()
        };
        let bad = (h.state == HostState::Lost).then(|| {
            let since = h
                .last_heartbeat
                .map_or_else(|| "ever".to_string(), |t| format!("{} s", (now - t) / 1000));
            (
                AlertState::Critical,
                format!("host {} is lost: no heartbeat for {since}", h.name),
            )
        });
        find(
            HOST_LOST,
            subject,
            bad,
            Duration::ZERO,
            format!("host {} is online", h.name),
        );
    }
    for u in &state.units {
        let Some(service) = state.services.iter().find(|s| s.id == u.service) else {
            continue;
        };
        let subject = AlertSubject {
            cluster: state.cluster,
            host: Some(u.host),
            service: Some(u.service),
            unit: Some(u.id),
        };
        let what = format!(
            "{} of {} on {}",
            u.component,
            service.name,
            host_name(u.host)
        );
        let down = match (&u.state, &u.health) {
            (UnitState::Started, Some(health)) if !health.healthy => Some((
                AlertState::Critical,
                format!("{what} is down: status says '{}'", health.message),
            )),
            _ => None,
        };
        find(
            UNIT_DOWN,
            subject,
            down,
            settings.unit_down_for,
            format!("{what} is up"),
        );
        let stale = match u.applied_version {
            Some(v) if v < service.config_version && !state.unchanged.contains(&u.id) => Some((
                AlertState::Warning,
                format!(
                    "{what} runs config version {v}, the service is at {}: apply it",
                    service.config_version
                ),
            )),
            _ => None,
        };
        find(
            UNIT_STALE,
            subject,
            stale,
            settings.unit_stale_for,
            format!("{what} runs the service's config"),
        );
    }
    if let Some(job) = &state.last_finished {
        let subject = AlertSubject {
            cluster: state.cluster,
            ..AlertSubject::default()
        };
        let bad = (job.state == JobState::Failed).then(|| {
            (
                AlertState::Warning,
                format!("job {} ({}) failed", job.id, job.command),
            )
        });
        find(
            JOB_FAILED,
            subject,
            bad,
            Duration::ZERO,
            format!(
                "the latest job, {} ({}), {}",
                job.id, job.command, job.state
            ),
        );
    }
    out
}

/// Reads what the built-in definitions look at, for every cluster.
async fn read_clusters(store: &dyn Store, stacks: &dyn StackProvider) -> Result<Vec<ClusterState>> {
    let mut out = Vec::new();
    for c in store.list_clusters().await? {
        let jobs = store
            .list_jobs(&JobFilter {
                cluster: Some(c.id),
                states: vec![JobState::Succeeded, JobState::Failed, JobState::Canceled],
                limit: Some(1),
                newest_first: true,
                ..JobFilter::default()
            })
            .await?;
        let units = store.list_units(c.id).await?;
        let services = store.list_services(c.id).await?;
        let behind = |u: &&crate::model::Unit| {
            services.iter().any(|s| {
                s.id == u.service && u.applied_version.is_some_and(|v| v < s.config_version)
            })
        };
        let mut unchanged = std::collections::HashSet::new();
        if units.iter().any(|u| behind(&u))
            && let Ok(topo) = crate::render::Topology::load(store, stacks, &c).await
        {
            unchanged = units
                .iter()
                .filter(behind)
                .filter(|u| !topo.staleness(u).is_stale())
                .map(|u| u.id)
                .collect();
        }
        out.push(ClusterState {
            cluster: c.id,
            hosts: store.list_hosts(c.id).await?,
            services,
            units,
            last_finished: jobs.into_iter().next(),
            unchanged,
        });
    }
    Ok(out)
}

/// The evaluation and delivery tasks, aborted when this is dropped (with the engine that
/// owns it).
pub(crate) struct Evaluating(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Evaluating {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Starts [`run`] and [`deliver`] in tasks of their own, stopped when the returned value is
/// dropped.
pub(crate) fn start(
    store: Arc<dyn Store>,
    stacks: Arc<dyn StackProvider>,
    settings: AlertSettings,
    metrics: crate::metrics::Metrics,
    healer: Option<Healer>,
) -> Evaluating {
    Evaluating(vec![
        tokio::spawn(run(Arc::clone(&store), stacks, settings, metrics, healer)),
        tokio::spawn(super::notify::deliver(store)),
    ])
}

/// Evaluates every cluster every `settings.interval` and records the findings through `store`
/// (a replica's is fenced), until aborted.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    stacks: Arc<dyn StackProvider>,
    settings: AlertSettings,
    metrics: crate::metrics::Metrics,
    healer: Option<Healer>,
) {
    let mut pending = Pending::new();
    loop {
        let restarts = round(
            store.as_ref(),
            stacks.as_ref(),
            &settings,
            &mut pending,
            &metrics,
        )
        .await;
        match (restarts, &healer) {
            (Ok(restarts), Some(healer)) => heal(healer, restarts).await,
            (Ok(_), None) => {}
            (Err(e), _) => match e {
                Error::Fenced(_) => tracing::debug!(error = %e, "alerts not recorded: fenced"),
                e => tracing::warn!(error = %e, "cannot evaluate alerts"),
            },
        }
        tokio::time::sleep(settings.interval).await;
    }
}

/// Submits the restarts a round decided on, one after the other.
async fn heal(healer: &Healer, restarts: Vec<JobRequest>) {
    for request in restarts {
        let reason = request.options.reason.clone().unwrap_or_default();
        let (reply, answer) = tokio::sync::oneshot::channel();
        if healer.send(HealRequest { request, reply }).is_err() {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(30), answer).await {
            Ok(Ok(Ok(job))) => tracing::warn!(job = %job.id, %reason, "self-healing: restarting"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, %reason, "self-healing: cannot restart"),
            _ => tracing::warn!(%reason, "self-healing: no answer to a restart"),
        }
    }
}

/// One round: evaluates and records every cluster's alerts, queues their notifications, and
/// returns the self-heal restarts to submit.
async fn round(
    store: &dyn Store,
    stacks: &dyn StackProvider,
    settings: &AlertSettings,
    pending: &mut Pending,
    metrics: &crate::metrics::Metrics,
) -> Result<Vec<JobRequest>> {
    let now = now_ms();
    let mut reports = Vec::new();
    let mut restarts = Vec::new();
    let windows = store.maintenance(None, now).await?;
    // What a notification names, read before the report so that the report can queue the
    // notifications in its own transaction.
    let mut known: HashMap<ClusterId, (String, Names)> = HashMap::new();
    let firing_before = store
        .alerts(&AlertFilter {
            firing: true,
            ..AlertFilter::default()
        })
        .await?;
    for cluster in read_clusters(store, stacks).await? {
        let overrides = super::overrides::in_force(store, cluster.cluster).await?;
        reports.extend(evaluate(&cluster, settings, &overrides, pending, now));
        reports.extend(stack_alerts(store, stacks, &cluster, &overrides, pending, now).await?);
        let name = crate::store::cluster_name(store, cluster.cluster).await?;
        let policies = store.healing_services(cluster.cluster).await?;
        if !policies.is_empty() {
            let down_since: HashMap<UnitId, i64> = pending
                .iter()
                .filter(|((d, _), _)| d == UNIT_DOWN)
                .filter_map(|((_, s), since)| s.unit.map(|u| (u, *since)))
                .collect();
            let input = HealInput {
                policies: &policies,
                maintenance: &windows,
                busy: &super::reconcile::busy_units(store, cluster.cluster).await?,
                attempts: &healing::recent_attempts(store, cluster.cluster, now).await?,
                down_since: &down_since,
            };
            let (due, gave_up) = healing::decide(&cluster, &input, now);
            reports.extend(gave_up);
            restarts.extend(due.into_iter().map(|r| JobRequest {
                cluster: name.clone(),
                target: Target::Units(vec![r.unit]),
                command: "restart".into(),
                options: JobOptions {
                    reason: Some(r.reason),
                    ..JobOptions::default()
                },
            }));
        }
        known.insert(cluster.cluster, (name, names_of(&cluster)));
    }
    let body = |cluster: ClusterId, changes: &[AlertChange]| -> Result<Option<String>> {
        let (name, names) = known
            .get(&cluster)
            .ok_or_else(|| Error::not_found("cluster", cluster))?;
        // What a maintenance window covers notifies no one.
        let loud: Vec<&AlertChange> = changes
            .iter()
            .filter(|ch| !windows.iter().any(|w| w.covers(&ch.subject, now)))
            .collect();
        if loud.is_empty() {
            return Ok(None);
        }
        let mut firing: std::collections::HashSet<AlertId> = firing_before
            .iter()
            .filter(|a| a.subject.cluster == cluster)
            .map(|a| a.id)
            .collect();
        for ch in changes {
            if ch.to.is_firing() {
                firing.insert(ch.alert);
            } else {
                firing.remove(&ch.alert);
            }
        }
        let view = crate::view::NotificationView {
            cluster: name.clone(),
            firing: firing.len(),
            changes: loud
                .into_iter()
                .cloned()
                .map(|c| change_view(names, c))
                .collect(),
        };
        serde_json::to_string(&view)
            .map(Some)
            .map_err(|e| Error::Invalid(format!("notification: {e}")))
    };
    let changes = store.report_alerts(&reports, Some(&body)).await?;
    for change in &changes {
        tracing::info!(
            definition = %change.definition,
            from = %change.from,
            to = %change.to,
            text = %change.text,
            "alert"
        );
    }
    let firing = store
        .alerts(&AlertFilter {
            firing: true,
            ..AlertFilter::default()
        })
        .await?;
    let families = metrics.families();
    for s in AlertState::ALL.iter().filter(|s| s.is_firing()) {
        let n = firing.iter().filter(|a| a.state == *s).count();
        families
            .alerts
            .get_or_create(&crate::metrics::StateLabels {
                state: s.as_str().to_string(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    Ok(restarts)
}

/// The findings of the definitions the cluster's services' stacks declare.
async fn stack_alerts(
    store: &dyn Store,
    stacks: &dyn StackProvider,
    cluster: &ClusterState,
    overrides: &HashMap<String, super::checks::AlertOverride>,
    pending: &mut Pending,
    now: i64,
) -> Result<Vec<AlertReport>> {
    let mut defs = HashMap::new();
    for s in &cluster.services {
        // A stack that no longer loads says so where the service is used; no alerts here.
        if let Ok(stack) = stacks.stack(&s.stack, Some(&s.stack_version)).await
            && let Ok(def) = stack.service(&s.service)
        {
            defs.insert(s.id, Arc::clone(def));
        }
    }
    let alerts: Vec<&crate::stack::AlertDef> = defs
        .values()
        .flat_map(|d: &Arc<crate::stack::ServiceDef>| d.alerts.iter())
        .collect();
    if alerts.is_empty() {
        return Ok(Vec::new());
    }
    let results = store
        .check_results(cluster.cluster)
        .await?
        .into_iter()
        .map(|(u, r)| ((u, r.name.clone()), r))
        .collect();
    let window = alerts
        .iter()
        .filter_map(|a| match &a.check {
            crate::stack::AlertCheck::Metric { window, .. } => Some(*window),
            _ => None,
        })
        .max();
    let samples = match window {
        Some(w) => {
            let since = now - i64::try_from(w.as_millis()).unwrap_or(i64::MAX / 2);
            store.host_metrics(cluster.cluster, None, since).await?
        }
        None => Vec::new(),
    };
    let input = super::checks::StackAlertInput {
        defs: &defs,
        results: &results,
        samples: &samples,
        overrides,
    };
    Ok(super::checks::evaluate_stack(cluster, &input, pending, now))
}

/// Names of a cluster's hosts, services and units, to show alerts by.
struct Names {
    hosts: HashMap<HostId, String>,
    services: HashMap<ServiceId, String>,
    units: HashMap<UnitId, String>,
}

impl Names {
    fn of(&self, s: &AlertSubject) -> (Option<String>, Option<String>, Option<String>) {
        (
            s.host.and_then(|h| self.hosts.get(&h).cloned()),
            s.service.and_then(|v| self.services.get(&v).cloned()),
            s.unit.and_then(|u| self.units.get(&u).cloned()),
        )
    }
}

/// The names of a cluster's hosts, services and units.
async fn names(store: &dyn Store, cluster: ClusterId) -> Result<Names> {
    Ok(names_of(&ClusterState {
        cluster,
        hosts: store.list_hosts(cluster).await?,
        services: store.list_services(cluster).await?,
        units: store.list_units(cluster).await?,
        last_finished: None,
        unchanged: Default::default(),
    }))
}

/// The id of the `what` named `name` among `of` (a cluster's), or NotFound.
fn find_named<K: Copy>(
    what: &'static str,
    cluster: &str,
    name: &str,
    of: &HashMap<K, String>,
) -> Result<K> {
    of.iter()
        .find(|(_, n)| n.as_str() == name)
        .map(|(id, _)| *id)
        .ok_or_else(|| Error::not_found(what, format!("{name} (in cluster {cluster})")))
}

/// A notification target as the API shows it.
fn target_view(t: AlertTarget) -> AlertTargetView {
    AlertTargetView {
        name: t.name,
        kind: t.kind,
        url: t.url,
        created_at: t.created_at,
    }
}

/// A webhook URL: `http://` or `https://`, a host, at most 2048 characters, no whitespace or
/// control characters.
fn check_webhook_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let ok = url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field(
            "url",
            format!(
                "'{}' is not a webhook URL: give http://host[:port]/path or https://…",
                url.chars().take(80).collect::<String>()
            ),
        ))
    }
}

/// A change as the API shows it.
fn change_view(names: &Names, ch: AlertChange) -> AlertChangeView {
    let (host, service, unit) = names.of(&ch.subject);
    AlertChangeView {
        id: ch.id,
        alert: ch.alert,
        definition: ch.definition,
        from: ch.from,
        to: ch.to,
        text: ch.text,
        host,
        service,
        unit,
        at: ch.at,
    }
}

/// The names of a cluster's hosts, services and units, from what the evaluation read.
fn names_of(c: &ClusterState) -> Names {
    let hosts: HashMap<HostId, String> = c.hosts.iter().map(|h| (h.id, h.name.clone())).collect();
    let units = c
        .units
        .iter()
        .map(|u| {
            let host = hosts
                .get(&u.host)
                .cloned()
                .unwrap_or_else(|| u.host.to_string());
            (u.id, format!("{}@{host}", u.component))
        })
        .collect();
    Names {
        services: c.services.iter().map(|s| (s.id, s.name.clone())).collect(),
        hosts,
        units,
    }
}

impl Manager {
    /// A cluster's alerts as they stand, by id; only those not OK if `firing`.
    pub async fn alerts(&self, cluster: &str, firing: bool) -> Result<Vec<AlertView>> {
        self.alerts_about(cluster, None, None, firing).await
    }

    /// A cluster's alerts about one host or one service instance (their own and their
    /// units'), or all; only those not OK if `firing`. A host or service the cluster does not
    /// have is NotFound.
    pub async fn alerts_about(
        &self,
        cluster: &str,
        host: Option<&str>,
        service: Option<&str>,
        firing: bool,
    ) -> Result<Vec<AlertView>> {
        let c = self.cluster(cluster).await?;
        let names = names(self.inner.store.as_ref(), c.id).await?;
        let host = host
            .map(|h| find_named("host", cluster, h, &names.hosts))
            .transpose()?;
        let service = service
            .map(|s| find_named("service", cluster, s, &names.services))
            .transpose()?;
        let silenced = self.silenced(c.id).await?;
        let alerts = self
            .inner
            .store
            .alerts(&AlertFilter {
                cluster: Some(c.id),
                host,
                service,
                firing,
                ..AlertFilter::default()
            })
            .await?;
        Ok(alerts
            .into_iter()
            .map(|a| {
                let (host, service, unit) = names.of(&a.subject);
                AlertView {
                    silenced: silenced(&a.subject),
                    id: a.id,
                    definition: a.definition,
                    state: a.state,
                    text: a.text,
                    host,
                    service,
                    unit,
                    since: a.since,
                    checked_at: a.checked_at,
                }
            })
            .collect())
    }

    /// A cluster's notification targets.
    pub async fn alert_targets(&self, cluster: &str) -> Result<Vec<AlertTargetView>> {
        let c = self.cluster(cluster).await?;
        let targets = self.inner.store.alert_targets(c.id).await?;
        Ok(targets.into_iter().map(target_view).collect())
    }

    /// Adds a target to a cluster: every later round of checks that changes one of its alerts
    /// POSTs a [`crate::view::NotificationView`] to a webhook's `url`, or the changes as
    /// alerts to an Alertmanager's v2 API at `url` (its base URL).
    pub async fn add_alert_target(
        &self,
        cluster: &str,
        name: &str,
        kind: TargetKind,
        url: &str,
    ) -> Result<AlertTargetView> {
        crate::name::check_name("alert target", name)?;
        check_webhook_url(url)?;
        let c = self.cluster(cluster).await?;
        let t = self
            .inner
            .store
            .add_alert_target(c.id, name, kind, url)
            .await?;
        Ok(target_view(t))
    }

    /// Removes a notification target (what waits to be sent to it goes too).
    pub async fn remove_alert_target(&self, cluster: &str, name: &str) -> Result<()> {
        let c = self.cluster(cluster).await?;
        let targets = self.inner.store.alert_targets(c.id).await?;
        let t = targets
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                Error::not_found("alert target", format!("{name} (in cluster {cluster})"))
            })?;
        self.inner.store.remove_alert_target(t.id).await
    }

    /// The delivery log of a cluster's notifications, newest first.
    pub async fn deliveries(&self, cluster: &str, limit: u32) -> Result<Vec<DeliveryView>> {
        let c = self.cluster(cluster).await?;
        let log = self.inner.store.delivery_log(c.id, limit).await?;
        Ok(log
            .into_iter()
            .map(|d| DeliveryView {
                notification: d.notification.0,
                target: d.target,
                at: d.at,
                status: d.status,
                answer: d.answer,
            })
            .collect())
    }

    /// Changes of a cluster's alerts, ascending: after a cursor, at most `limit`.
    pub async fn alert_history(
        &self,
        cluster: &str,
        after: Option<AlertChangeId>,
        limit: Option<u32>,
    ) -> Result<Vec<AlertChangeView>> {
        let c = self.cluster(cluster).await?;
        let names = names(self.inner.store.as_ref(), c.id).await?;
        let changes = self
            .inner
            .store
            .alert_history(c.id, None, after, limit)
            .await?;
        Ok(changes
            .into_iter()
            .map(|ch| change_view(&names, ch))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::host;

    fn state_of(reports: &[AlertReport], definition: &str) -> Vec<AlertState> {
        reports
            .iter()
            .filter(|r| r.definition == definition)
            .map(|r| r.state)
            .collect()
    }

    #[test]
    fn built_in_definitions_find_lost_hosts_down_units_and_failed_jobs_after_their_for_time() {
        let settings = AlertSettings {
            unit_down_for: Duration::from_secs(30),
            ..AlertSettings::default()
        };
        let service = ServiceInstance {
            id: ServiceId(1),
            cluster: ClusterId(1),
            name: "zk".into(),
            stack: "bigtop".into(),
            stack_version: "3.3.0".into(),
            service: "zookeeper".into(),
            created_at: 0,
            configs: Default::default(),
            host_overrides: Default::default(),
            config_version: 1,
        };
        let down = Unit {
            id: UnitId(7),
            service: ServiceId(1),
            component: "zookeeper_server".into(),
            host: HostId(2),
            state: UnitState::Started,
            health: Some(Health {
                healthy: false,
                message: "not running".into(),
                checked_at: 0,
            }),
            applied_version: Some(1),
            applied_hash: None,
        };
        let mut cluster = ClusterState {
            cluster: ClusterId(1),
            hosts: vec![
                host(1, HostState::Online),
                host(2, HostState::Lost),
                host(3, HostState::Waiting),
            ],
            services: vec![service],
            units: vec![down.clone()],
            last_finished: None,
            unchanged: Default::default(),
        };
        let mut pending = Pending::new();
        let first = evaluate(&cluster, &settings, &HashMap::new(), &mut pending, 10_000);
        assert_eq!(
            state_of(&first, HOST_LOST),
            [AlertState::Ok, AlertState::Critical],
            "a lost host at once; a WAITING one is not watched"
        );
        assert_eq!(
            state_of(&first, UNIT_DOWN),
            [AlertState::Ok],
            "not for 30 s yet"
        );
        let later = evaluate(&cluster, &settings, &HashMap::new(), &mut pending, 40_000);
        assert_eq!(state_of(&later, UNIT_DOWN), [AlertState::Critical]);
        assert!(
            later
                .iter()
                .any(|r| r.text.contains("zookeeper_server of zk on h2 is down"))
        );
        // Healthy again, then down again: the 30 s start over.
        cluster.units[0].health = Some(Health {
            healthy: true,
            message: String::new(),
            checked_at: 0,
        });
        assert_eq!(
            state_of(
                &evaluate(&cluster, &settings, &HashMap::new(), &mut pending, 41_000),
                UNIT_DOWN
            ),
            [AlertState::Ok]
        );
        cluster.units[0] = down;
        assert_eq!(
            state_of(
                &evaluate(&cluster, &settings, &HashMap::new(), &mut pending, 42_000),
                UNIT_DOWN
            ),
            [AlertState::Ok]
        );
        // A failed job is a WARNING about the cluster until a later one succeeds.
        let job = |id, state| Job {
            id: JobId(id),
            cluster: ClusterId(1),
            command: "deploy".into(),
            target: Target::Cluster,
            options: JobOptions::default(),
            state,
            created_at: 0,
            started_at: None,
            finished_at: None,
        };
        cluster.last_finished = Some(job(4, JobState::Failed));
        let failed = evaluate(&cluster, &settings, &HashMap::new(), &mut pending, 50_000);
        assert_eq!(state_of(&failed, JOB_FAILED), [AlertState::Warning]);
        cluster.last_finished = Some(job(5, JobState::Succeeded));
        let fine = evaluate(&cluster, &settings, &HashMap::new(), &mut pending, 60_000);
        assert_eq!(state_of(&fine, JOB_FAILED), [AlertState::Ok]);
    }
}
