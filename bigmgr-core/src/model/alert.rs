//! Alerts: what one alert definition found about one subject (a cluster, or one of its hosts,
//! service instances or units), as it stands and every change of it.

use super::{
    AlertChangeId, AlertId, AlertState, AlertTargetId, ClusterId, HostId, MaintenanceId,
    NotificationId, ServiceId, UnitId,
};
use serde::{Deserialize, Serialize};

/// What an alert is about: a cluster, or one of its hosts, service instances or units (a
/// unit's alert names its host and service too).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct AlertSubject {
    /// The cluster.
    pub cluster: ClusterId,
    /// The host, if it is about one.
    pub host: Option<HostId>,
    /// The service instance, if it is about one.
    pub service: Option<ServiceId>,
    /// The unit, if it is about one.
    pub unit: Option<UnitId>,
}

impl AlertSubject {
    /// The subject as one text (`c1/h3/s-/u7`), unique per subject: with the definition's
    /// name, what identifies an alert.
    pub fn key(&self) -> String {
        let part = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        format!(
            "c{}/h{}/s{}/u{}",
            self.cluster,
            part(self.host.map(|h| h.0)),
            part(self.service.map(|s| s.0)),
            part(self.unit.map(|u| u.0))
        )
    }
}

/// One finding of a check, as it is reported to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertReport {
    /// The definition's name (`host_lost`, `zookeeper.port`, …).
    pub definition: String,
    /// What it is about.
    pub subject: AlertSubject,
    /// What the check found.
    pub state: AlertState,
    /// What it says about it (one line).
    pub text: String,
    /// When it was checked (ms since the epoch).
    pub at: i64,
}

/// An alert as it stands: the last finding of a definition about a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id.
    pub id: AlertId,
    /// The definition's name.
    pub definition: String,
    /// What it is about.
    pub subject: AlertSubject,
    /// Its state.
    pub state: AlertState,
    /// What the last check said.
    pub text: String,
    /// Since when it is in this state (ms).
    pub since: i64,
    /// When it was last checked (ms): a check that finds it as it was (same state, same
    /// text) moves this at most once a minute
    /// ([`ALERT_CHECK_REFRESH_MS`](crate::store::ALERT_CHECK_REFRESH_MS)).
    pub checked_at: i64,
}

/// A change of an alert's state, kept as history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertChange {
    /// Its id (ascending in the order changes happened).
    pub id: AlertChangeId,
    /// The alert.
    pub alert: AlertId,
    /// The definition's name.
    pub definition: String,
    /// What it is about.
    pub subject: AlertSubject,
    /// The state before.
    pub from: AlertState,
    /// The state after.
    pub to: AlertState,
    /// What the check said.
    pub text: String,
    /// When (ms).
    pub at: i64,
}

/// Which alerts to list: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Of this cluster.
    pub cluster: Option<ClusterId>,
    /// About this host (its own alerts and its units').
    pub host: Option<HostId>,
    /// About this service instance (its own alerts and its units').
    pub service: Option<ServiceId>,
    /// About this unit.
    pub unit: Option<UnitId>,
    /// Only those not OK.
    pub firing: bool,
}

/// What a notification target is, and so what it is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A webhook: gets the notification's JSON (`NotificationView`) POSTed.
    #[default]
    Webhook,
    /// Prometheus Alertmanager: its v2 API (`POST <url>/api/v2/alerts`) gets one alert per
    /// change, firing or resolved, labelled with cluster, host, service, unit and severity.
    Alertmanager,
}

impl TargetKind {
    /// The text form stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Alertmanager => "alertmanager",
        }
    }
}

impl std::str::FromStr for TargetKind {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "webhook" => Ok(TargetKind::Webhook),
            "alertmanager" => Ok(TargetKind::Alertmanager),
            _ => Err(crate::Error::invalid_field(
                "kind",
                format!("'{s}' is not a kind of alert target; expected webhook or alertmanager"),
            )),
        }
    }
}

/// Where a cluster's alert changes are sent: a webhook that gets a JSON POST, or an
/// Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTarget {
    /// Its id.
    pub id: AlertTargetId,
    /// The cluster whose alerts it gets.
    pub cluster: ClusterId,
    /// Its name, unique in the cluster.
    pub name: String,
    /// What it is.
    pub kind: TargetKind,
    /// The URL POSTed to (`http://` or `https://`; an Alertmanager's base URL).
    pub url: String,
    /// When it was added (ms).
    pub created_at: i64,
}

/// A notification waiting to be delivered, or delivered: one POST of a body to a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// The target.
    pub target: AlertTargetId,
    /// What the target is.
    pub kind: TargetKind,
    /// The target's URL.
    pub url: String,
    /// The JSON body.
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before (ms).
    pub next_at: i64,
    /// When it was delivered, if it was.
    pub delivered_at: Option<i64>,
}

/// One attempt to deliver a notification, as the delivery log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// The notification.
    pub notification: NotificationId,
    /// The target's name.
    pub target: String,
    /// When (ms).
    pub at: i64,
    /// The HTTP status, if the target answered.
    pub status: Option<u16>,
    /// The answer's first line, or why there was none.
    pub answer: String,
}

/// A maintenance window: a host's or a service's alerts are silenced until its end (they are
/// still evaluated and shown, marked silenced, but notify no one; self-healing leaves the
/// units alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    /// Its id.
    pub id: MaintenanceId,
    /// The cluster.
    pub cluster: ClusterId,
    /// The host in maintenance (its own alerts and its units'), or
    pub host: Option<HostId>,
    /// the service instance in maintenance (its own alerts and its units').
    pub service: Option<ServiceId>,
    /// When it ends (ms since the epoch).
    pub until: i64,
    /// Why (free text, may be empty).
    pub reason: String,
    /// Who started it.
    pub by: String,
    /// When it was started (ms).
    pub created_at: i64,
}

impl Maintenance {
    /// Whether it silences an alert about `subject` at `now`.
    pub fn covers(&self, subject: &AlertSubject, now: i64) -> bool {
        now < self.until
            && subject.cluster == self.cluster
            && ((self.host.is_some() && subject.host == self.host)
                || (self.service.is_some() && subject.service == self.service))
    }
}

/// A service's self-healing policy: restart its STARTED units that are down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealingPolicy {
    /// Restart units that are down (false: self-healing is off).
    pub restart: bool,
    /// How long a unit must be down before the first restart (ms); later attempts wait
    /// twice as long as the one before.
    pub grace_ms: i64,
    /// At most this many restarts of one unit in an hour; then it gives up and raises a
    /// CRITICAL alert (`self_heal_gave_up`).
    pub max_per_hour: u32,
}

impl Default for HealingPolicy {
    fn default() -> Self {
        HealingPolicy {
            restart: false,
            grace_ms: 30_000,
            max_per_hour: 3,
        }
    }
}

/// An operator's change of an alert definition for one cluster (`manager/overrides.rs`): what
/// is `None` keeps the definition's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertOverride {
    /// False disables it: its alerts go OK, saying so.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Another `for` time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<u64>,
    /// Another warning threshold (a response time in ms, or a metric's value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
    /// Another critical threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<f64>,
    /// Another interval (ms) of a check agents run: sent with the unit's next task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
}

fn yes() -> bool {
    true
}
