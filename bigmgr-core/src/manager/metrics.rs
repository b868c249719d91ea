//! The Manager's side of `GET /metrics`: the gauges read when scraped (jobs and tasks by
//! state from the store, hosts and their heartbeat averages, connected agents, the oldest
//! heartbeat), then every metric encoded.

use super::Manager;
use crate::Result;
use crate::metrics::{HostLabels, Metrics, StateLabels};
use crate::model::{HostState, now_ms};

impl Manager {
    /// What this Manager measures: frontends observe their requests through it.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Every metric in the OpenMetrics text format (what Prometheus scrapes), with the gauges
    /// read from the store and the transport now.
    pub async fn metrics_text(&self) -> Result<String> {
        let m = &self.inner.metrics;
        let _one_at_a_time = m.scrape().await;
        let f = m.families();
        let counts = self.inner.store.state_counts().await?;
        f.jobs.clear();
        for (state, n) in counts.jobs {
            f.jobs.get_or_create(&state_label(state)).set(gauge(n));
        }
        f.tasks.clear();
        for (state, n) in counts.tasks {
            f.tasks.get_or_create(&state_label(state)).set(gauge(n));
        }
        let bytes = [
            &f.host_memory_used,
            &f.host_memory_total,
            &f.host_disk_free,
            &f.host_disk_total,
        ];
        f.hosts.clear();
        f.host_cpu.clear();
        f.host_load1.clear();
        bytes.iter().for_each(|family| family.clear());
        let now = now_ms();
        let (mut connected, mut oldest) = (0, 0_i64);
        for c in self.inner.store.list_clusters().await? {
            for h in self.inner.store.list_hosts(c.id).await? {
                f.hosts.get_or_create(&state_label(h.state)).inc();
                if self.inner.transport.connected(&h.name) {
                    connected += 1;
                }
                if h.state == HostState::Online
                    && let Some(beat) = h.last_heartbeat
                {
                    oldest = oldest.max(now - beat);
                }
                let Some(x) = h.metrics else { continue };
                let l = HostLabels {
                    cluster: c.name.clone(),
                    host: h.name.clone(),
                };
                f.host_cpu.get_or_create(&l).set(x.cpu_percent);
                f.host_load1.get_or_create(&l).set(x.load[0]);
                let values = [
                    x.memory_used_bytes,
                    x.memory_total_bytes,
                    x.disk_free_bytes,
                    x.disk_total_bytes,
                ];
                for (family, v) in bytes.iter().zip(values) {
                    family.get_or_create(&l).set(gauge(v));
                }
            }
        }
        f.agents_connected.set(connected);
        f.oldest_heartbeat.set(oldest.max(0) as f64 / 1000.0);
        Ok(m.encode())
    }
}

/// A state as its label (`RUNNING`).
fn state_label(state: impl std::fmt::Display) -> StateLabels {
    StateLabels {
        state: state.to_string(),
    }
}

/// A count as a gauge value (saturating).
fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
