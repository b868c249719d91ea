//! Maintenance windows (a host or a service whose alerts notify no one until an end time)
//! and services' self-healing policies, as operators set them.

use super::Manager;
use crate::duration::{format_duration, format_utc_ms, parse_duration};
use crate::model::*;
use crate::request::{SetHealing, StartMaintenance};
use crate::view::{HealingView, MaintenanceView};
use crate::{Error, Result};
use std::collections::HashMap;
use std::time::Duration;

/// The longest maintenance window.
pub const MAX_MAINTENANCE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Names of a cluster's hosts and services by id, and ids by name.
struct Named {
    hosts: HashMap<HostId, String>,
    services: HashMap<ServiceId, String>,
}

impl Manager {
    async fn named(&self, c: ClusterId) -> Result<Named> {
        let store = &self.inner.store;
        Ok(Named {
            hosts: store
                .list_hosts(c)
                .await?
                .into_iter()
                .map(|h| (h.id, h.name))
                .collect(),
            services: store
                .list_services(c)
                .await?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect(),
        })
    }

    /// A cluster's maintenance windows in progress.
    pub async fn maintenance(&self, cluster: &str) -> Result<Vec<MaintenanceView>> {
        let c = self.cluster(cluster).await?;
        let named = self.named(c.id).await?;
        let windows = self.inner.store.maintenance(Some(c.id), now_ms()).await?;
        Ok(windows
            .into_iter()
            .map(|w| maintenance_view(&named, w))
            .collect())
    }

    /// Starts a maintenance window on a host or a service of `cluster`, started by `by`.
    pub async fn start_maintenance(
        &self,
        cluster: &str,
        req: StartMaintenance,
        by: &str,
    ) -> Result<MaintenanceView> {
        let c = self.cluster(cluster).await?;
        let now = now_ms();
        let max = i64::try_from(MAX_MAINTENANCE.as_millis()).unwrap_or(i64::MAX);
        let until = match (&req.duration, req.until) {
            (Some(text), None) => {
                let d = parse_duration(text).map_err(|e| Error::invalid_field("for", e))?;
                let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                if ms <= 0 || ms > max {
                    return Err(Error::invalid_field(
                        "for",
                        format!(
                            "a maintenance window lasts more than 0 s and at most {}",
                            format_duration(MAX_MAINTENANCE)
                        ),
                    ));
                }
                now + ms
            }
            (None, Some(until)) => {
                if until <= now || until - now > max {
                    return Err(Error::invalid_field(
                        "until",
                        format!(
                            "the end of a maintenance window is in the future, at most {} \
                             from now (ms since the epoch)",
                            format_duration(MAX_MAINTENANCE)
                        ),
                    ));
                }
                until
            }
            _ => {
                return Err(Error::invalid_field(
                    "for",
                    "give how long (\"for\": \"2h\") or the end (\"until\": ms since the \
                     epoch), one of them",
                ));
            }
        };
        crate::name::check_note("reason", "a maintenance window's reason", &req.reason, 500)?;
        let (host, service) = match (&req.host, &req.service) {
            (Some(h), None) => {
                let found = self.inner.store.host_by_name(h).await?;
                let host = found.filter(|x| x.cluster == c.id).ok_or_else(|| {
                    Error::not_found("host", format!("{h} (in cluster {cluster})"))
                })?;
                (Some(host.id), None)
            }
            (None, Some(s)) => {
                let found = self.inner.store.service_by_name(c.id, s).await?;
                let service = found.ok_or_else(|| {
                    Error::not_found("service", format!("{s} (in cluster {cluster})"))
                })?;
                (None, Some(service.id))
            }
            _ => {
                return Err(Error::invalid_field(
                    "host",
                    "a maintenance window is about one host (\"host\") or one service \
                     (\"service\"), one of them",
                ));
            }
        };
        let w = self
            .inner
            .store
            .add_maintenance(&Maintenance {
                id: MaintenanceId(0),
                cluster: c.id,
                host,
                service,
                until,
                reason: req.reason,
                by: by.to_string(),
                created_at: now,
            })
            .await?;
        Ok(maintenance_view(&self.named(c.id).await?, w))
    }

    /// Ends a maintenance window of `cluster` now.
    pub async fn end_maintenance(
        &self,
        cluster: &str,
        id: MaintenanceId,
    ) -> Result<MaintenanceView> {
        let c = self.cluster(cluster).await?;
        let now = now_ms();
        let open = self.inner.store.maintenance(Some(c.id), now).await?;
        if !open.iter().any(|w| w.id == id) {
            return Err(Error::not_found(
                "maintenance window in progress",
                format!("{id} (in cluster {cluster})"),
            ));
        }
        let w = self.inner.store.end_maintenance(id, now).await?;
        Ok(maintenance_view(&self.named(c.id).await?, w))
    }

    /// Why each alert of cluster `c` is silenced now, by subject key.
    pub(super) async fn silenced(
        &self,
        c: ClusterId,
    ) -> Result<impl Fn(&AlertSubject) -> Option<String> + use<>> {
        let now = now_ms();
        let windows = self.inner.store.maintenance(Some(c), now).await?;
        let named = self.named(c).await?;
        Ok(move |s: &AlertSubject| {
            windows.iter().find(|w| w.covers(s, now)).map(|w| {
                let what = match (w.host, w.service) {
                    (Some(h), _) => {
                        format!("host {}", named.hosts.get(&h).cloned().unwrap_or_default())
                    }
                    (_, Some(v)) => {
                        format!(
                            "service {}",
                            named.services.get(&v).cloned().unwrap_or_default()
                        )
                    }
                    _ => "it".to_string(),
                };
                let why = if w.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", w.reason)
                };
                format!(
                    "{what} is in maintenance until {} (by {}{why})",
                    format_utc_ms(w.until),
                    w.by
                )
            })
        })
    }

    /// A service's self-healing policy, and how it fares.
    pub async fn healing(&self, cluster: &str, service: &str) -> Result<HealingView> {
        let (c, s) = self.service_of(cluster, service).await?;
        let policy = self.inner.store.healing_policy(s.id).await?;
        self.healing_view(c.id, s.id, policy).await
    }

    /// Sets a service's self-healing policy; what is left out keeps its value.
    pub async fn set_healing(
        &self,
        cluster: &str,
        service: &str,
        req: SetHealing,
    ) -> Result<HealingView> {
        let (c, s) = self.service_of(cluster, service).await?;
        let policy = self.inner.store.healing_policy(s.id).await?;
        let policy =
            crate::policy::healing(policy, req.restart, req.grace.as_deref(), req.max_per_hour)?;
        self.inner.store.set_healing_policy(s.id, &policy).await?;
        self.healing_view(c.id, s.id, policy).await
    }

    async fn service_of(&self, cluster: &str, service: &str) -> Result<(Cluster, ServiceInstance)> {
        let c = self.cluster(cluster).await?;
        let s = self
            .inner
            .store
            .service_by_name(c.id, service)
            .await?
            .ok_or_else(|| {
                Error::not_found("service", format!("{service} (in cluster {cluster})"))
            })?;
        Ok((c, s))
    }

    async fn healing_view(
        &self,
        c: ClusterId,
        s: ServiceId,
        policy: HealingPolicy,
    ) -> Result<HealingView> {
        let store = self.inner.store.as_ref();
        let units: Vec<UnitId> = store
            .list_units(c)
            .await?
            .into_iter()
            .filter(|u| u.service == s)
            .map(|u| u.id)
            .collect();
        let attempts = super::healing::recent_attempts(store, c, now_ms()).await?;
        let n: usize = units
            .iter()
            .map(|u| attempts.get(u).map_or(0, Vec::len))
            .sum();
        let gave_up = store
            .alerts(&AlertFilter {
                cluster: Some(c),
                service: Some(s),
                firing: true,
                ..AlertFilter::default()
            })
            .await?
            .iter()
            .any(|a| a.definition == super::healing::GAVE_UP);
        Ok(HealingView {
            restart: policy.restart,
            grace: format_duration(Duration::from_millis(
                u64::try_from(policy.grace_ms).unwrap_or(0),
            )),
            max_per_hour: policy.max_per_hour,
            attempts_last_hour: u32::try_from(n).unwrap_or(u32::MAX),
            gave_up,
        })
    }
}

fn maintenance_view(named: &Named, w: Maintenance) -> MaintenanceView {
    MaintenanceView {
        id: w.id,
        host: w.host.and_then(|h| named.hosts.get(&h).cloned()),
        service: w.service.and_then(|s| named.services.get(&s).cloned()),
        until: w.until,
        reason: w.reason,
        by: w.by,
        created_at: w.created_at,
    }
}
