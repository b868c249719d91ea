//! What agents report about their hosts: facts at registration, metrics and unit health in
//! heartbeats.

use serde::{Deserialize, Serialize};

/// A host's facts, reported when its agent registers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostFacts {
    /// The operating system (`Debian GNU/Linux`).
    pub os: String,
    /// Its version (`12`).
    pub os_version: String,
    /// The kernel version.
    pub kernel: String,
    /// The CPU architecture (`x86_64`).
    pub arch: String,
    /// Logical CPUs.
    pub cores: u32,
    /// Physical memory, bytes.
    pub memory_bytes: u64,
    /// Size of the filesystem holding the agent's root, bytes.
    pub disk_total_bytes: u64,
    /// Free space on it, bytes.
    pub disk_free_bytes: u64,
    /// The agent's root directory, absolute (units live under `<agent_root>/units/`); empty
    /// if the agent did not say.
    #[serde(default)]
    pub agent_root: String,
}

/// A host's metrics from one heartbeat: CPU and memory averaged over the heartbeat interval,
/// disk and load as they were when it was sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostMetrics {
    /// When the agent took them (ms since the epoch).
    pub at: i64,
    /// CPU use over the interval, percent of all cores (0–100).
    pub cpu_percent: f64,
    /// Memory in use, averaged over the interval, bytes.
    pub memory_used_bytes: u64,
    /// Physical memory, bytes.
    pub memory_total_bytes: u64,
    /// Size of the filesystem holding the agent's root, bytes.
    pub disk_total_bytes: u64,
    /// Free space on it, bytes.
    pub disk_free_bytes: u64,
    /// Load averages over 1, 5 and 15 minutes.
    #[cfg_attr(feature = "openapi", schema(min_items = 3, max_items = 3))]
    pub load: [f64; 3],
}

/// A unit's health, from the last run of its stack's `status` command on its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitHealth {
    /// The cluster name.
    pub cluster: String,
    /// The service instance name.
    pub service: String,
    /// The component name.
    pub component: String,
    /// `status` exited 0.
    pub healthy: bool,
    /// `status`'s exit code (3 is "not running" by LSB); `None` if it could not run.
    pub exit_code: Option<i32>,
    /// The last line `status` wrote, or why it could not run.
    pub message: String,
    /// When it ran (ms since the epoch).
    pub checked_at: i64,
}

/// What a heartbeat or a registration changes of a host in the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostReport {
    /// When (ms since the epoch); becomes the host's last heartbeat.
    pub at: i64,
    /// The address the agent reported, on registration. It never changes the host's address:
    /// one that differs is kept as the host's `reported_address` (cleared when they agree).
    pub address: Option<String>,
    /// Facts, on registration.
    pub facts: Option<HostFacts>,
    /// Metrics, on a heartbeat.
    pub metrics: Option<HostMetrics>,
    /// Unit health, on a heartbeat.
    pub units: Vec<UnitHealth>,
    /// The latest result of every check of the host's units, on a heartbeat.
    pub checks: Vec<super::CheckResult>,
}

/// A unit's health as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `status` exited 0.
    pub healthy: bool,
    /// The last line `status` wrote, or why it could not run.
    pub message: String,
    /// When it ran.
    pub checked_at: i64,
}
