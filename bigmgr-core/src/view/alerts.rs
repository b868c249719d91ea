//! Alerts as operators see them: the subject by name (host, service instance, unit), the
//! state and what the check said.

use crate::model::{AlertChangeId, AlertId, AlertState, MaintenanceId, TargetKind};
use serde::{Deserialize, Serialize};

/// An alert as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: AlertId,
    /// The definition (`host_lost`, `unit_down`, `unit_stale`, `job_failed`, …).
    pub definition: String,
    /// OK, WARNING, CRITICAL or UNKNOWN.
    pub state: AlertState,
    /// What the last check said.
    pub text: String,
    /// The host it is about, if any.
    pub host: Option<String>,
    /// The service instance it is about, if any.
    pub service: Option<String>,
    /// The unit it is about (`component@host`), if any.
    pub unit: Option<String>,
    /// Since when it is in this state (ms since the epoch).
    pub since: i64,
    /// When it was last checked (ms): a check that finds it as it was (same state, same
    /// text) moves this at most once a minute.
    pub checked_at: i64,
    /// Why it notifies no one now (a maintenance window of its host or service), if so.
    pub silenced: Option<String>,
}

/// A change of an alert's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertChangeView {
    /// Its id (the history's cursor).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: AlertChangeId,
    /// The alert.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub alert: AlertId,
    /// The definition.
    pub definition: String,
    /// The state before.
    pub from: AlertState,
    /// The state after.
    pub to: AlertState,
    /// What the check said.
    pub text: String,
    /// The host it is about, if any.
    pub host: Option<String>,
    /// The service instance it is about, if any.
    pub service: Option<String>,
    /// The unit it is about (`component@host`), if any.
    pub unit: Option<String>,
    /// When (ms).
    pub at: i64,
}

/// What a webhook target gets: one POST per round of checks in which a cluster's alerts
/// changed, with every change of that round (a host lost with ten units is one notification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationView {
    /// The cluster.
    pub cluster: String,
    /// The changes, in order.
    pub changes: Vec<AlertChangeView>,
    /// How many of the cluster's alerts fire (are not OK) after them.
    pub firing: usize,
}

/// A notification target as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertTargetView {
    /// Its name, unique in the cluster.
    pub name: String,
    /// A webhook, or an Alertmanager.
    pub kind: TargetKind,
    /// The URL POSTed to (an Alertmanager's base URL).
    pub url: String,
    /// When it was added (ms).
    pub created_at: i64,
}

/// One attempt to deliver a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    /// The notification (its attempts share it).
    pub notification: i64,
    /// The target's name.
    pub target: String,
    /// When (ms).
    pub at: i64,
    /// The HTTP status, if the target answered.
    pub status: Option<u16>,
    /// The answer's first line, or why there was none.
    pub answer: String,
}

/// A maintenance window as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaintenanceView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: MaintenanceId,
    /// The host in maintenance, or
    pub host: Option<String>,
    /// the service instance in maintenance.
    pub service: Option<String>,
    /// When it ends (ms since the epoch).
    pub until: i64,
    /// Why.
    pub reason: String,
    /// Who started it.
    pub by: String,
    /// When it started (ms).
    pub created_at: i64,
}

/// A service's self-healing policy, and how it fares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealingView {
    /// Whether down units are restarted.
    pub restart: bool,
    /// How long a unit is down before the first restart (`30s`); each later attempt waits
    /// twice as long as the one before.
    pub grace: String,
    /// At most this many restarts of one unit in an hour.
    pub max_per_hour: u32,
    /// Restarts of the service's units in the last hour.
    pub attempts_last_hour: u32,
    /// Whether it gave up on one of its units (its `self_heal_gave_up` alert fires).
    pub gave_up: bool,
}
