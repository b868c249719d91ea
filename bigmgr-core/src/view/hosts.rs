//! Hosts with their units, as frontends show them.

use crate::model::{Health, Host, HostFacts, HostId, HostMetrics, HostState, UnitId, UnitState};
use serde::{Deserialize, Serialize};

/// A host with its state, facts, metrics and units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: HostId,
    /// Its name.
    pub name: String,
    /// Its cluster's name.
    pub cluster: String,
    /// The address its services bind to and other hosts reach it at.
    pub address: String,
    /// An address its agent reported that differs from `address`: it takes effect only once
    /// an admin accepts it (`PATCH` the host with it).
    #[serde(default)]
    pub reported_address: Option<String>,
    /// WAITING (no agent has registered for it yet), ONLINE or LOST.
    pub state: HostState,
    /// The last heartbeat (ms since the epoch), if any.
    pub last_heartbeat: Option<i64>,
    /// What its agent reported when it registered.
    pub facts: Option<HostFacts>,
    /// From its latest heartbeat.
    pub metrics: Option<HostMetrics>,
    /// The units placed on it.
    pub units: Vec<HostUnitView>,
}

impl HostView {
    /// The view of `h`, of cluster `cluster`, with `units`.
    pub fn of(h: Host, cluster: &str, units: Vec<HostUnitView>) -> HostView {
        HostView {
            id: h.id,
            name: h.name,
            cluster: cluster.to_string(),
            address: h.address,
            reported_address: h.reported_address,
            state: h.state,
            last_heartbeat: h.last_heartbeat,
            facts: h.facts,
            metrics: h.metrics,
            units,
        }
    }
}

/// A unit as seen from its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostUnitView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: UnitId,
    /// Its service instance's name.
    pub service: String,
    /// Its component.
    pub component: String,
    /// Its state.
    pub state: UnitState,
    /// Its health from the latest status check, if any.
    pub health: Option<Health>,
}

/// The longest window of a [`HostSeriesView`], in seconds: as far back as the store keeps
/// samples ([`crate::store::METRICS_KEPT_MS`]).
pub const MAX_SERIES_WINDOW_S: u32 = (crate::store::METRICS_KEPT_MS / 1000) as u32;

/// A host's recent CPU and memory use, one point per sample (or per equal slice of the window,
/// averaged, when there are more samples than points).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostSeriesView {
    /// The host's name.
    pub host: String,
    /// When each point was taken (ms since the epoch, the server's clock), oldest first.
    pub at: Vec<i64>,
    /// CPU use over each point's heartbeat interval, percent of all cores.
    pub cpu_percent: Vec<f64>,
    /// Memory in use, percent of the host's memory.
    pub memory_percent: Vec<f64>,
}

impl HostSeriesView {
    /// The series of `host` from its samples (oldest first), with at most `points` points over
    /// `[since, now]`: samples are averaged per slice of that window, empty slices left out.
    pub fn of(host: &str, samples: &[HostMetrics], since: i64, now: i64, points: usize) -> Self {
        let mut view = HostSeriesView {
            host: host.to_string(),
            at: Vec::new(),
            cpu_percent: Vec::new(),
            memory_percent: Vec::new(),
        };
        let points = points.max(1);
        let width = ((now - since).max(1) as f64 / points as f64).max(1.0);
        let slice = |m: &HostMetrics| {
            if samples.len() <= points {
                return m.at; // one point per sample
            }
            ((m.at - since).max(0) as f64 / width) as i64
        };
        let mut i = 0;
        while i < samples.len() {
            let key = slice(&samples[i]);
            let group: Vec<&HostMetrics> = samples[i..]
                .iter()
                .take_while(|m| slice(m) == key)
                .collect();
            i += group.len();
            let n = group.len() as f64;
            let round = |v: f64| (v * 10.0).round() / 10.0;
            view.at.push(group[group.len() - 1].at);
            view.cpu_percent
                .push(round(group.iter().map(|m| m.cpu_percent).sum::<f64>() / n));
            view.memory_percent.push(round(
                group.iter().map(|m| memory_percent(m)).sum::<f64>() / n,
            ));
        }
        view
    }
}

/// Memory in use as a percent of the total (0 when the total is unknown).
fn memory_percent(m: &HostMetrics) -> f64 {
    if m.memory_total_bytes == 0 {
        return 0.0;
    }
    m.memory_used_bytes as f64 * 100.0 / m.memory_total_bytes as f64
}

/// A task that ran, runs or will run on a host, with what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostTaskView {
    /// The task's id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: crate::model::TaskId,
    /// Its job's id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub job: crate::model::JobId,
    /// The job's command.
    pub command: String,
    /// What the task ran: its stage's command (`install`, `start` …).
    pub stage_command: String,
    /// The service instance it acts on (`#id` once removed).
    pub service: String,
    /// The component.
    pub component: String,
    /// Its state.
    pub state: crate::model::TaskState,
    /// The current attempt, from 1.
    pub attempt: u32,
    /// The script's exit code, once finished.
    pub exit_code: Option<i32>,
    /// When the current attempt started.
    pub started_at: Option<i64>,
    /// When the current attempt finished.
    pub finished_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, cpu: f64) -> HostMetrics {
        HostMetrics {
            at,
            cpu_percent: cpu,
            memory_used_bytes: 1 << 29,
            memory_total_bytes: 1 << 30,
            ..HostMetrics::default()
        }
    }

    #[test]
    fn few_samples_are_one_point_each() {
        let s = [sample(1_000, 10.0), sample(2_000, 20.0)];
        let v = HostSeriesView::of("h", &s, 0, 10_000, 30);
        assert_eq!(v.at, vec![1_000, 2_000]);
        assert_eq!(v.cpu_percent, vec![10.0, 20.0]);
        assert_eq!(v.memory_percent, vec![50.0, 50.0]);
    }

    #[test]
    fn many_samples_are_averaged_per_slice() {
        // 100 samples over 100 s into 10 points: each point the mean of 10 samples.
        let s: Vec<_> = (0..100).map(|i| sample(i * 1_000, i as f64)).collect();
        let v = HostSeriesView::of("h", &s, 0, 100_000, 10);
        assert_eq!(v.at.len(), 10);
        assert_eq!(v.cpu_percent[0], 4.5);
        assert_eq!(v.cpu_percent[9], 94.5);
        assert_eq!(v.at[9], 99_000, "a point is at its last sample");
        let empty = HostSeriesView::of("h", &[], 0, 100_000, 10);
        assert!(empty.at.is_empty() && empty.cpu_percent.is_empty());
    }
}
