//! What bigmgr measures of itself for Prometheus (`GET /metrics`): counters and histograms
//! observed as things happen (REST requests, task durations, dispatch latency, store batches),
//! and gauges read from the store and the transport when scraped (jobs and tasks by state,
//! hosts, connected agents, the oldest heartbeat, each host's heartbeat averages).
//!
//! One [`Metrics`] per [`crate::Manager`]; frontends observe through it and the Manager
//! encodes it ([`crate::Manager::metrics_text`]) in the OpenMetrics text format, which
//! Prometheus reads.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Labels of a REST request: its method, route template (`/api/v1/jobs/{job}`, not the path)
/// and status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// GET, POST …
    pub method: String,
    /// The route's template, or `unmatched`.
    pub route: String,
    /// The answer's status code.
    pub status: u16,
}

/// Labels of a REST request's latency: method and route.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// GET, POST …
    pub method: String,
    /// The route's template, or `unmatched`.
    pub route: String,
}

/// A state label (jobs, tasks, hosts).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The state, as the API spells it.
    pub state: String,
}

/// A stage command label (`install`, `start` …).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    /// The command.
    pub command: String,
}

/// A host of a cluster.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    /// The cluster's name.
    pub cluster: String,
    /// The host's name.
    pub host: String,
}

/// Every metric, registered once.
#[derive(Debug)]
pub(crate) struct Families {
    pub(crate) http_requests: Family<HttpLabels, Counter>,
    pub(crate) http_duration: Family<RouteLabels, Histogram>,
    pub(crate) task_duration: Family<CommandLabels, Histogram>,
    pub(crate) dispatch_latency: Histogram,
    pub(crate) store_apply: Histogram,
    pub(crate) jobs: Family<StateLabels, Gauge>,
    pub(crate) tasks: Family<StateLabels, Gauge>,
    pub(crate) hosts: Family<StateLabels, Gauge>,
    pub(crate) alerts: Family<StateLabels, Gauge>,
    pub(crate) agents_connected: Gauge,
    pub(crate) oldest_heartbeat: Gauge<f64, AtomicU64>,
    pub(crate) leader: Gauge,
    pub(crate) leader_epoch: Gauge,
    pub(crate) host_cpu: Family<HostLabels, Gauge<f64, AtomicU64>>,
    pub(crate) host_memory_used: Family<HostLabels, Gauge>,
    pub(crate) host_memory_total: Family<HostLabels, Gauge>,
    pub(crate) host_disk_free: Family<HostLabels, Gauge>,
    pub(crate) host_disk_total: Family<HostLabels, Gauge>,
    pub(crate) host_load1: Family<HostLabels, Gauge<f64, AtomicU64>>,
}

/// bigmgr's metrics: cheap to clone (shared), safe to observe from any task.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    families: Families,
    /// Scrapes one at a time: each sets the gauges it then encodes.
    scrape: tokio::sync::Mutex<()>,
}

/// Latency buckets from 0.5 ms to about 33 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every bigmgr metric, registered with its help text, all zero.
    pub fn new() -> Metrics {
        let f = Families {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            task_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 16))
            }),
            dispatch_latency: latency_histogram(),
            store_apply: latency_histogram(),
            jobs: Family::default(),
            tasks: Family::default(),
            hosts: Family::default(),
            alerts: Family::default(),
            agents_connected: Gauge::default(),
            oldest_heartbeat: Gauge::default(),
            leader: Gauge::default(),
            leader_epoch: Gauge::default(),
            host_cpu: Family::default(),
            host_memory_used: Family::default(),
            host_memory_total: Family::default(),
            host_disk_free: Family::default(),
            host_disk_total: Family::default(),
            host_load1: Family::default(),
        };
        let mut r = Registry::with_prefix("bigmgr");
        r.register(
            "http_requests",
            "REST requests answered, by method, route and status",
            f.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer a REST request, by method and route",
            f.http_duration.clone(),
        );
        r.register(
            "task_duration_seconds",
            "How long finished tasks ran on their hosts, by stage command",
            f.task_duration.clone(),
        );
        r.register(
            "dispatch_latency_seconds",
            "From a task sent to its agent to the agent starting it",
            f.dispatch_latency.clone(),
        );
        r.register(
            "store_apply_duration_seconds",
            "Time to store one batch of the engine's state changes",
            f.store_apply.clone(),
        );
        r.register("jobs", "Jobs in the store, by state", f.jobs.clone());
        r.register("tasks", "Tasks in the store, by state", f.tasks.clone());
        r.register("hosts", "Hosts of every cluster, by state", f.hosts.clone());
        r.register(
            "alerts_firing",
            "Alerts not OK, by state (WARNING, CRITICAL, UNKNOWN), as the engine's server last found them",
            f.alerts.clone(),
        );
        r.register(
            "agents_connected",
            "Agents holding a stream to this server",
            f.agents_connected.clone(),
        );
        r.register(
            "oldest_heartbeat_age_seconds",
            "Seconds since the least recent heartbeat of an ONLINE host (0 with none)",
            f.oldest_heartbeat.clone(),
        );
        r.register(
            "leader",
            "1 if this server runs the job engine",
            f.leader.clone(),
        );
        r.register(
            "leader_epoch",
            "The epoch of the engine's lease this replica holds (0 when it does not lead, and on a single server)",
            f.leader_epoch.clone(),
        );
        r.register(
            "host_cpu_percent",
            "A host's CPU use over its last heartbeat interval, percent of all cores",
            f.host_cpu.clone(),
        );
        r.register(
            "host_memory_used_bytes",
            "A host's memory in use, averaged over its last heartbeat interval",
            f.host_memory_used.clone(),
        );
        r.register(
            "host_memory_total_bytes",
            "A host's physical memory",
            f.host_memory_total.clone(),
        );
        r.register(
            "host_disk_free_bytes",
            "Free space on the filesystem holding a host's agent root",
            f.host_disk_free.clone(),
        );
        r.register(
            "host_disk_total_bytes",
            "Size of the filesystem holding a host's agent root",
            f.host_disk_total.clone(),
        );
        r.register(
            "host_load1",
            "A host's load average over one minute",
            f.host_load1.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry: r,
                families: f,
                scrape: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub(crate) fn families(&self) -> &Families {
        &self.inner.families
    }

    /// A REST request answered: its method, route template, status and how long it took.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, took: Duration) {
        let f = &self.inner.families;
        f.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        f.http_duration
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// A task finished after running `took` on its host, for a stage `command`.
    pub(crate) fn observe_task(&self, command: &str, took: Duration) {
        self.inner
            .families
            .task_duration
            .get_or_create(&CommandLabels {
                command: command.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// A task started on its host `took` after it was sent.
    pub(crate) fn observe_dispatch(&self, took: Duration) {
        self.inner
            .families
            .dispatch_latency
            .observe(took.as_secs_f64());
    }

    /// The engine stored a batch in `took`.
    pub(crate) fn observe_store_apply(&self, took: Duration) {
        self.inner.families.store_apply.observe(took.as_secs_f64());
    }

    /// Holds the scrape lock: the caller sets the gauges, then [`Metrics::encode`]s them.
    pub(crate) async fn scrape(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.scrape.lock().await
    }

    /// Every metric in the OpenMetrics text format.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_are_encoded_with_their_labels() {
        let m = Metrics::new();
        m.observe_http("GET", "/api/v1/jobs/{job}", 200, Duration::from_millis(3));
        m.observe_http("GET", "/api/v1/jobs/{job}", 200, Duration::from_millis(5));
        m.observe_task("start", Duration::from_secs(2));
        let text = m.encode();
        assert!(
            text.contains(
                r#"bigmgr_http_requests_total{method="GET",route="/api/v1/jobs/{job}",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"bigmgr_http_request_duration_seconds_count{method="GET",route="/api/v1/jobs/{job}"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"bigmgr_task_duration_seconds_sum{command="start"} 2.0"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
