//! Alerts of the definitions stacks declare: the agents' results of port, web and script
//! checks turned into states with the definitions' thresholds, and metric thresholds on the
//! hosts' averaged heartbeat metrics — each held for its `for` time like the built-in ones.

use super::alerts::{ClusterState, Pending, held};
use crate::model::*;
use crate::stack::{AlertCheck, AlertDef, ServiceDef};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What the stack definitions of one cluster are evaluated on besides its state.
pub(crate) struct StackAlertInput<'a> {
    /// Each service instance's definition.
    pub(crate) defs: &'a HashMap<ServiceId, Arc<ServiceDef>>,
    /// The latest check results, by unit and definition.
    pub(crate) results: &'a HashMap<(UnitId, String), CheckResult>,
    /// The hosts' metric samples of the longest window, oldest first.
    pub(crate) samples: &'a [(HostId, HostMetrics)],
    /// Definitions an operator changed or disabled for this cluster.
    pub(crate) overrides: &'a HashMap<String, AlertOverride>,
}

pub use crate::model::AlertOverride;

/// A result older than this many intervals (and at least [`STALE_MIN`]) is no result.
const STALE_INTERVALS: u32 = 3;
/// See [`STALE_INTERVALS`].
const STALE_MIN: Duration = Duration::from_secs(30);

/// Evaluates every definition the cluster's services declare: one finding per unit (port,
/// web, script) or per host of the service (metric).
pub(crate) fn evaluate_stack(
    state: &ClusterState,
    input: &StackAlertInput<'_>,
    pending: &mut Pending,
    now: i64,
) -> Vec<AlertReport> {
    let mut out = Vec::new();
    let host_name = |id: HostId| state.host_name(id);
    for svc in &state.services {
        let Some(def) = input.defs.get(&svc.id) else {
            continue;
        };
        for a in &def.alerts {
            let name = a.qualified(&def.name);
            let o = input
                .overrides
                .get(&name)
                .cloned()
                .unwrap_or(AlertOverride {
                    enabled: true,
                    ..AlertOverride::default()
                });
            let hold = o.hold_ms.map_or(a.hold, Duration::from_millis);
            let mut report =
                |subject: AlertSubject, bad: Option<(AlertState, String)>, ok: String| {
                    let (state, text) = if o.enabled {
                        held(pending, (name.clone(), subject), bad, hold, ok, now)
                    } else {
                        pending.remove(&(name.clone(), subject));
                        (
                            AlertState::Ok,
                            "disabled for this cluster by an operator".to_string(),
                        )
                    };
                    out.push(AlertReport {
                        definition: name.clone(),
                        subject,
                        state,
                        text,
                        at: now,
                    });
                };
            if let AlertCheck::Metric {
                metric,
                window,
                warning,
                critical,
            } = &a.check
            {
                let mut hosts: Vec<HostId> = state
                    .units
                    .iter()
                    .filter(|u| u.service == svc.id)
                    .filter(|u| a.component.as_ref().is_none_or(|c| *c == u.component))
                    .map(|u| u.host)
                    .collect();
                hosts.sort();
                hosts.dedup();
                let since = now - i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
                for h in hosts {
                    let values: Vec<f64> = input
                        .samples
                        .iter()
                        .filter(|(host, m)| *host == h && m.at >= since)
                        .map(|(_, m)| metric.of(m))
                        .collect();
                    if values.is_empty() {
                        continue;
                    }
                    #[allow(clippy::cast_precision_loss)]
                    let avg = values.iter().sum::<f64>() / values.len() as f64;
                    let (w, c) = (o.warning.or(*warning), o.critical.or(*critical));
                    let what = format!(
                        "{} of {} averaged {avg:.1} over {}",
                        metric.as_str(),
                        host_name(h),
                        crate::duration::format_duration(*window)
                    );
                    let bad = match (c, w) {
                        (Some(c), _) if avg > c => {
                            Some((AlertState::Critical, format!("{what}: above {c}")))
                        }
                        (_, Some(w)) if avg > w => {
                            Some((AlertState::Warning, format!("{what}: above {w}")))
                        }
                        _ => None,
                    };
                    let subject = AlertSubject {
                        cluster: state.cluster,
                        host: Some(h),
                        service: Some(svc.id),
                        unit: None,
                    };
                    report(subject, bad, what);
                }
                continue;
            }
            for u in state
                .units
                .iter()
                .filter(|u| u.service == svc.id && a.component.as_ref() == Some(&u.component))
            {
                let subject = AlertSubject {
                    cluster: state.cluster,
                    host: Some(u.host),
                    service: Some(svc.id),
                    unit: Some(u.id),
                };
                let what = format!("{} of {} on {}", u.component, svc.name, host_name(u.host));
                if u.state != UnitState::Started {
                    report(subject, None, format!("{what} is not started: not checked"));
                    continue;
                }
                let Some(r) = input.results.get(&(u.id, name.clone())) else {
                    continue;
                };
                let interval = o.interval_ms.map_or(a.interval, Duration::from_millis);
                let stale = (interval * STALE_INTERVALS).max(STALE_MIN);
                let bad = if now - r.checked_at > i64::try_from(stale.as_millis()).unwrap_or(0) {
                    Some((
                        AlertState::Unknown,
                        format!(
                            "no result of {name} for {what} since {}",
                            crate::duration::format_utc_ms(r.checked_at)
                        ),
                    ))
                } else {
                    judge(a, &o, r)
                };
                report(subject, bad, format!("{what}: {}", r.text));
            }
        }
    }
    out
}

/// The state one result stands for, with the definition's (or the override's) thresholds;
/// `None` is OK.
fn judge(a: &AlertDef, o: &AlertOverride, r: &CheckResult) -> Option<(AlertState, String)> {
    if r.text.starts_with(crate::model::CANNOT_CHECK) {
        return Some((AlertState::Unknown, r.text.clone()));
    }
    let latency = |warning: &Option<Duration>, critical: &Option<Duration>| {
        if !r.ok {
            return Some((AlertState::Critical, r.text.clone()));
        }
        let ms = |d: &Option<Duration>, o: Option<f64>| {
            #[allow(clippy::cast_precision_loss)]
            o.or(d.map(|d| d.as_millis() as f64))
        };
        #[allow(clippy::cast_precision_loss)]
        let took = r.latency_ms as f64;
        match (ms(critical, o.critical), ms(warning, o.warning)) {
            (Some(c), _) if took > c => Some((
                AlertState::Critical,
                format!("{}, in {took} ms: slower than {c} ms", r.text),
            )),
            (_, Some(w)) if took > w => Some((
                AlertState::Warning,
                format!("{}, in {took} ms: slower than {w} ms", r.text),
            )),
            _ => None,
        }
    };
    match &a.check {
        AlertCheck::Port {
            warning, critical, ..
        }
        | AlertCheck::Web {
            warning, critical, ..
        } => latency(warning, critical),
        AlertCheck::Script { .. } => match r.exit_code {
            Some(0) => None,
            Some(1) => Some((AlertState::Warning, r.text.clone())),
            Some(2) => Some((AlertState::Critical, r.text.clone())),
            _ => Some((AlertState::Unknown, r.text.clone())),
        },
        AlertCheck::Metric { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(alerts: Vec<AlertDef>) -> Arc<ServiceDef> {
        crate::testing::service_def("redis", vec![], alerts)
    }

    fn alert(name: &str, hold: u64, check: AlertCheck) -> AlertDef {
        AlertDef {
            name: name.into(),
            description: String::new(),
            component: Some("redis_server".into()),
            interval: Duration::from_secs(10),
            hold: Duration::from_secs(hold),
            timeout: Duration::from_secs(5),
            check,
            advise: None,
        }
    }

    fn state(unit_state: UnitState) -> ClusterState {
        ClusterState {
            cluster: ClusterId(1),
            hosts: vec![crate::testing::host(1, HostState::Online)],
            services: vec![ServiceInstance {
                stack: "extra".into(),
                stack_version: "1.0.0".into(),
                ..crate::testing::instance(1, "cache", "redis")
            }],
            units: vec![Unit {
                id: UnitId(5),
                service: ServiceId(1),
                component: "redis_server".into(),
                host: HostId(1),
                state: unit_state,
                health: None,
                applied_version: Some(1),
                applied_hash: None,
            }],
            last_finished: None,
            unchanged: Default::default(),
        }
    }

    fn result(name: &str, ok: bool, latency_ms: u64, exit: Option<i32>, at: i64) -> CheckResult {
        CheckResult {
            cluster: "c".into(),
            service: "cache".into(),
            component: "redis_server".into(),
            name: name.into(),
            ok,
            latency_ms,
            exit_code: exit,
            http_status: None,
            text: "said".into(),
            checked_at: at,
        }
    }

    fn states(reports: &[AlertReport]) -> Vec<(String, AlertState)> {
        reports
            .iter()
            .map(|r| (r.definition.clone(), r.state))
            .collect()
    }

    #[test]
    fn results_become_states_by_threshold_exit_code_and_age_after_their_for_time() {
        let port = alert(
            "port",
            0,
            AlertCheck::Port {
                port: "6379".into(),
                warning: Some(Duration::from_millis(100)),
                critical: Some(Duration::from_millis(1000)),
            },
        );
        let script = alert(
            "role",
            20,
            AlertCheck::Script {
                command: "role".into(),
            },
        );
        let defs = HashMap::from([(ServiceId(1), def(vec![port, script]))]);
        let eval = |results: Vec<CheckResult>,
                    overrides: HashMap<String, AlertOverride>,
                    unit: UnitState,
                    pending: &mut Pending,
                    now: i64| {
            let results = results
                .into_iter()
                .map(|r| ((UnitId(5), r.name.clone()), r))
                .collect();
            let input = StackAlertInput {
                defs: &defs,
                results: &results,
                samples: &[],
                overrides: &overrides,
            };
            states(&evaluate_stack(&state(unit), &input, pending, now))
        };
        let mut pending = Pending::new();
        let none = HashMap::new();
        let got = eval(
            vec![
                result("redis.port", true, 500, None, 1_000),
                result("redis.role", false, 1, Some(2), 1_000),
            ],
            none.clone(),
            UnitState::Started,
            &mut pending,
            1_000,
        );
        assert_eq!(
            got,
            [
                ("redis.port".to_string(), AlertState::Warning),
                ("redis.role".to_string(), AlertState::Ok),
            ],
            "slow is WARNING at once (no for time); exit 2 waits its 20 s"
        );
        let got = eval(
            vec![
                result("redis.port", false, 1, None, 25_000),
                result("redis.role", false, 1, Some(2), 25_000),
            ],
            none.clone(),
            UnitState::Started,
            &mut pending,
            25_000,
        );
        assert_eq!(
            got,
            [
                ("redis.port".to_string(), AlertState::Critical),
                ("redis.role".to_string(), AlertState::Critical),
            ]
        );
        // Exit codes 1 and other are WARNING and UNKNOWN; an old result is UNKNOWN.
        let got = eval(
            vec![
                result("redis.port", true, 1, None, 30_000),
                result("redis.role", false, 1, Some(5), 30_000),
            ],
            none.clone(),
            UnitState::Started,
            &mut pending,
            30_000,
        );
        assert_eq!(got[0].1, AlertState::Ok);
        assert_eq!(got[1].1, AlertState::Unknown);
        let got = eval(
            vec![result("redis.port", true, 1, None, 30_000)],
            none.clone(),
            UnitState::Started,
            &mut pending,
            100_000,
        );
        assert_eq!(got, [("redis.port".to_string(), AlertState::Unknown)]);
        // An operator's thresholds and switch win; a stopped unit is not checked.
        let stricter = HashMap::from([(
            "redis.port".to_string(),
            AlertOverride {
                enabled: true,
                critical: Some(0.5),
                ..AlertOverride::default()
            },
        )]);
        let got = eval(
            vec![result("redis.port", true, 1, None, 100_000)],
            stricter,
            UnitState::Started,
            &mut pending,
            100_000,
        );
        assert_eq!(got, [("redis.port".to_string(), AlertState::Critical)]);
        let off = HashMap::from([(
            "redis.port".to_string(),
            AlertOverride {
                enabled: false,
                ..AlertOverride::default()
            },
        )]);
        let got = eval(
            vec![result("redis.port", false, 1, None, 100_000)],
            off,
            UnitState::Started,
            &mut pending,
            100_000,
        );
        assert_eq!(got, [("redis.port".to_string(), AlertState::Ok)]);
        let got = eval(
            vec![result("redis.port", false, 1, None, 100_000)],
            none,
            UnitState::Stopped,
            &mut pending,
            100_000,
        );
        assert_eq!(
            got,
            [
                ("redis.port".to_string(), AlertState::Ok),
                ("redis.role".to_string(), AlertState::Ok),
            ]
        );
    }

    #[test]
    fn a_metric_fires_on_a_sustained_average_and_not_on_a_short_spike() {
        let cpu = AlertDef {
            component: None,
            ..alert(
                "cpu",
                0,
                AlertCheck::Metric {
                    metric: crate::stack::Metric::CpuPercent,
                    window: Duration::from_secs(60),
                    warning: Some(50.0),
                    critical: Some(80.0),
                },
            )
        };
        let defs = HashMap::from([(ServiceId(1), def(vec![cpu]))]);
        let sample = |at_s: i64, cpu: f64| {
            (
                HostId(1),
                HostMetrics {
                    at: at_s * 1000,
                    cpu_percent: cpu,
                    ..HostMetrics::default()
                },
            )
        };
        let eval = |samples: Vec<(HostId, HostMetrics)>, now_s: i64| {
            let input = StackAlertInput {
                defs: &defs,
                results: &HashMap::new(),
                samples: &samples,
                overrides: &HashMap::new(),
            };
            let r = evaluate_stack(
                &state(UnitState::Started),
                &input,
                &mut Pending::new(),
                now_s * 1000,
            );
            r.first().map_or((AlertState::Unknown, String::new()), |r| {
                (r.state, r.text.clone())
            })
        };
        // One busy second in a quiet minute: no alert.
        let spike: Vec<_> = (0..60)
            .map(|s| sample(s, if s == 30 { 100.0 } else { 5.0 }))
            .collect();
        assert_eq!(eval(spike, 60).0, AlertState::Ok);
        // Busy the whole minute: CRITICAL, saying the average.
        let busy: Vec<_> = (0..60).map(|s| sample(s, 97.0)).collect();
        let (state, text) = eval(busy.clone(), 60);
        assert_eq!(state, AlertState::Critical);
        assert!(
            text.contains("cpu_percent of h1 averaged 97.0 over 1m"),
            "{text}"
        );
        // Samples older than the window do not count.
        let (_, text) = eval(busy, 200);
        assert_eq!(text, "", "no sample in the window: nothing is said");
    }
}
