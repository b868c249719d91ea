//! Conformance of [`AlertStore`]: alerts as they stand, their changes, and filters.

use super::ClusterServices;
use super::fixture::{fixture, not_found, ok};
use crate::model::*;
use crate::store::AlertStore;

/// Runs the checks of alerts.
pub async fn run<S: ClusterServices + AlertStore + ?Sized>(store: &S) {
    alerts(store).await;
}

/// Alerts: the first finding creates an alert (a change only if it is not OK), a finding in
/// another state is a change kept in history, one in the same state is not; filters by
/// subject and firing; history is ascending, per cluster or alert, paged; unknown subjects are
/// NotFound with nothing recorded.
pub async fn alerts<S: ClusterServices + AlertStore + ?Sized>(store: &S) {
    const C: &str = "alerts";
    let fx = fixture(store, C, "conf-alerts", 2).await;
    let cluster = fx.cluster.id;
    let (h0, h1) = (fx.hosts[0].id, fx.hosts[1].id);
    let unit = &fx.units[0];
    let report = |definition: &str, subject: AlertSubject, state, at| AlertReport {
        definition: definition.into(),
        subject,
        state,
        text: format!("{definition} is {state}"),
        at,
    };
    let host = |h| AlertSubject {
        cluster,
        host: Some(h),
        ..AlertSubject::default()
    };
    let on_unit = AlertSubject {
        cluster,
        host: Some(unit.host),
        service: Some(fx.service.id),
        unit: Some(unit.id),
    };

    // First findings: OK creates a quiet alert, CRITICAL a change from OK.
    let first = vec![
        report("host_lost", host(h0), AlertState::Ok, 1_000),
        report("host_lost", host(h1), AlertState::Critical, 1_000),
        report("unit_down", on_unit, AlertState::Warning, 1_000),
    ];
    let changes = ok(store.report_alerts(&first).await, C, "report");
    let moved: Vec<(AlertSubject, AlertState, AlertState)> =
        changes.iter().map(|c| (c.subject, c.from, c.to)).collect();
    assert_eq!(
        moved,
        vec![
            (host(h1), AlertState::Ok, AlertState::Critical),
            (on_unit, AlertState::Ok, AlertState::Warning),
        ],
        "store conformance [{C}]: only findings that are not OK are changes at first"
    );
    let all = ok(
        store
            .alerts(&AlertFilter {
                cluster: Some(cluster),
                ..AlertFilter::default()
            })
            .await,
        C,
        "list",
    );
    assert_eq!(
        all.len(),
        3,
        "store conformance [{C}]: one alert per definition and subject"
    );
    assert!(
        all.iter()
            .all(|a| a.since == 1_000 && a.checked_at == 1_000),
        "store conformance [{C}]: times as reported: {all:?}"
    );

    // The same states again: no change, newer checked_at, since kept; then h1 recovers.
    let again = vec![
        report("host_lost", host(h1), AlertState::Critical, 2_000),
        report("unit_down", on_unit, AlertState::Critical, 2_000),
        report("host_lost", host(h1), AlertState::Ok, 3_000),
    ];
    let changes = ok(store.report_alerts(&again).await, C, "report again");
    let moved: Vec<(AlertState, AlertState, i64)> =
        changes.iter().map(|c| (c.from, c.to, c.at)).collect();
    assert_eq!(
        moved,
        vec![
            (AlertState::Warning, AlertState::Critical, 2_000),
            (AlertState::Critical, AlertState::Ok, 3_000),
        ],
        "store conformance [{C}]: a finding in the same state is no change"
    );
    let firing = ok(
        store
            .alerts(&AlertFilter {
                cluster: Some(cluster),
                firing: true,
                ..AlertFilter::default()
            })
            .await,
        C,
        "firing",
    );
    assert_eq!(
        firing
            .iter()
            .map(|a| (&a.definition[..], a.state, a.since))
            .collect::<Vec<_>>(),
        vec![("unit_down", AlertState::Critical, 2_000)],
        "store conformance [{C}]: firing lists alerts not OK, since their last change"
    );
    for (filter, want) in [
        (
            AlertFilter {
                host: Some(unit.host),
                ..AlertFilter::default()
            },
            2,
        ),
        (
            AlertFilter {
                unit: Some(unit.id),
                ..AlertFilter::default()
            },
            1,
        ),
        (
            AlertFilter {
                service: Some(fx.service.id),
                ..AlertFilter::default()
            },
            1,
        ),
    ] {
        let got = ok(store.alerts(&filter).await, C, "filter");
        assert_eq!(
            got.len(),
            want,
            "store conformance [{C}]: {filter:?} gives {got:?}"
        );
    }

    let history = ok(
        store.alert_history(cluster, None, None, None).await,
        C,
        "history",
    );
    assert_eq!(
        history.len(),
        4,
        "store conformance [{C}]: every change: {history:?}"
    );
    assert!(
        history.windows(2).all(|w| w[0].id < w[1].id),
        "store conformance [{C}]: history ascends"
    );
    let page = ok(
        store
            .alert_history(cluster, None, Some(history[1].id), Some(1))
            .await,
        C,
        "page",
    );
    assert_eq!(
        page,
        history[2..3].to_vec(),
        "store conformance [{C}]: paged by cursor"
    );
    let of_unit = ok(
        store
            .alert_history(cluster, Some(changes[0].alert), None, None)
            .await,
        C,
        "one alert's history",
    );
    assert!(
        of_unit.iter().all(|c| c.alert == changes[0].alert) && of_unit.len() == 2,
        "store conformance [{C}]: one alert's history: {of_unit:?}"
    );

    // A finding about a host that does not exist: NotFound, and the batch records nothing.
    let bad = vec![
        report("host_lost", host(h0), AlertState::Critical, 4_000),
        report(
            "host_lost",
            host(HostId(i64::MAX)),
            AlertState::Critical,
            4_000,
        ),
    ];
    not_found(
        store.report_alerts(&bad).await,
        C,
        "a finding about no host",
    );
    let h0_alert = ok(
        store
            .alerts(&AlertFilter {
                host: Some(h0),
                firing: true,
                ..AlertFilter::default()
            })
            .await,
        C,
        "after a refused batch",
    );
    assert!(
        h0_alert.iter().all(|a| a.definition != "host_lost"),
        "store conformance [{C}]: a refused batch records nothing: {h0_alert:?}"
    );
}
