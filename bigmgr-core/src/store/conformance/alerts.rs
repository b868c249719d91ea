//! Conformance of [`AlertStore`]: alerts as they stand, their changes, and filters.

use super::ClusterServices;
use super::fixture::{fixture, not_found, ok};
use crate::model::*;
use crate::store::{ALERT_CHECK_REFRESH_MS, AlertStore};
use std::collections::HashMap;

/// Runs the checks of alerts.
pub async fn run<S: ClusterServices + AlertStore + crate::store::AgentStore + ?Sized>(store: &S) {
    alerts(store).await;
    notifications(store).await;
    maintenance_and_healing(store).await;
    checks_and_overrides(store).await;
}

/// Check results: a heartbeat's results land on the host's own live units of the cluster and
/// service they name (others are ignored), the latest per unit and name; alert overrides: a
/// new version per change, the highest in force.
pub async fn checks_and_overrides<
    S: ClusterServices + AlertStore + crate::store::AgentStore + ?Sized,
>(
    store: &S,
) {
    const C: &str = "checks";
    let fx = fixture(store, C, "conf-checks", 2).await;
    let c = fx.cluster.id;
    let result = |name: &str, ok: bool, at: i64| CheckResult {
        cluster: fx.cluster.name.clone(),
        service: fx.service.name.clone(),
        component: "zookeeper_server".into(),
        name: name.into(),
        ok,
        latency_ms: 3,
        exit_code: None,
        http_status: None,
        text: "answers".into(),
        checked_at: at,
    };
    let beat = |checks: Vec<CheckResult>| HostReport {
        at: 1_000,
        checks,
        ..HostReport::default()
    };
    let h0 = fx.hosts[0].id;
    let elsewhere = CheckResult {
        service: "no-such-service".into(),
        ..result("x.port", true, 1)
    };
    ok(
        store
            .record_host_report(h0, &beat(vec![result("x.port", true, 10), elsewhere]))
            .await,
        C,
        "report",
    );
    ok(
        store
            .record_host_report(h0, &beat(vec![result("x.port", false, 20)]))
            .await,
        C,
        "report again",
    );
    let got = ok(store.check_results(c).await, C, "results");
    let unit0 = fx
        .units
        .iter()
        .find(|u| u.host == h0)
        .map(|u| u.id)
        .expect("a unit on h0");
    assert_eq!(
        got,
        vec![(unit0, result("x.port", false, 20))],
        "store conformance [{C}]: the latest result of the host's own unit only"
    );

    assert!(ok(store.alert_overrides(c).await, C, "none").is_empty());
    let v1 = ok(
        store
            .add_alert_override(c, "x.port", "{\"enabled\":false}", "olga")
            .await,
        C,
        "override",
    );
    let v2 = ok(
        store
            .add_alert_override(c, "x.port", "{\"hold_ms\":0}", "vic")
            .await,
        C,
        "override again",
    );
    assert_eq!((v1, v2), (1, 2), "store conformance [{C}]: versions");
    let now = ok(store.alert_overrides(c).await, C, "in force");
    assert_eq!(now.len(), 1);
    assert_eq!(
        (
            now[0].0.as_str(),
            now[0].1,
            now[0].2.as_str(),
            now[0].3.as_str()
        ),
        ("x.port", 2, "{\"hold_ms\":0}", "vic"),
        "store conformance [{C}]: the highest version is in force"
    );
    not_found(
        store
            .add_alert_override(ClusterId(i64::MAX), "x", "{}", "a")
            .await,
        C,
        "an override of no cluster",
    );
}

/// Maintenance windows: one host or service of the cluster (another cluster's is NotFound),
/// listed while not ended, ended once (kept, no longer listed); healing policies: the default
/// until set, set only for a live service, and listed per cluster when they restart.
pub async fn maintenance_and_healing<S: ClusterServices + AlertStore + ?Sized>(store: &S) {
    const C: &str = "maintenance";
    let fx = fixture(store, C, "conf-maint", 2).await;
    let other = fixture(store, C, "conf-maint-other", 1).await;
    let c = fx.cluster.id;
    let window = |host: Option<HostId>, service: Option<ServiceId>, until| Maintenance {
        id: MaintenanceId(0),
        cluster: c,
        host,
        service,
        until,
        reason: "disk\u{0}swap".into(),
        by: "admin".into(),
        created_at: 0,
    };
    let h = ok(
        store
            .add_maintenance(&window(Some(fx.hosts[0].id), None, 10_000))
            .await,
        C,
        "a host's window",
    );
    assert_eq!(
        (h.host, h.service, h.until, h.by.as_str()),
        (Some(fx.hosts[0].id), None, 10_000, "admin"),
        "store conformance [{C}]: as given"
    );
    assert!(
        !h.reason.contains('\0'),
        "store conformance [{C}]: no NUL kept"
    );
    let s = ok(
        store
            .add_maintenance(&window(None, Some(fx.service.id), 20_000))
            .await,
        C,
        "a service's window",
    );
    not_found(
        store
            .add_maintenance(&window(Some(other.hosts[0].id), None, 10_000))
            .await,
        C,
        "a window on another cluster's host",
    );
    assert!(
        store
            .add_maintenance(&window(None, None, 10_000))
            .await
            .is_err(),
        "store conformance [{C}]: a window about nothing is refused"
    );
    let open = ok(store.maintenance(Some(c), 5_000).await, C, "open");
    assert_eq!(
        open,
        vec![h.clone(), s.clone()],
        "store conformance [{C}]: by id"
    );
    let later = ok(store.maintenance(Some(c), 15_000).await, C, "later");
    assert_eq!(
        later,
        vec![s.clone()],
        "store conformance [{C}]: an ended one goes"
    );
    let subject = AlertSubject {
        cluster: c,
        host: Some(fx.hosts[0].id),
        service: Some(fx.service.id),
        unit: None,
    };
    assert!(h.covers(&subject, 5_000) && !h.covers(&subject, 10_000));
    let ended = ok(store.end_maintenance(s.id, 6_000).await, C, "end");
    assert_eq!(ended.until, 6_000, "store conformance [{C}]: ends then");
    not_found(
        store.end_maintenance(s.id, 7_000).await,
        C,
        "an ended window",
    );
    let open = ok(store.maintenance(None, 7_000).await, C, "open everywhere");
    assert!(
        open.iter().any(|w| w.id == h.id) && !open.iter().any(|w| w.id == s.id),
        "store conformance [{C}]: {open:?}"
    );

    let svc = fx.service.id;
    assert_eq!(
        ok(store.healing_policy(svc).await, C, "default"),
        HealingPolicy::default(),
        "store conformance [{C}]: the default until set"
    );
    let on = HealingPolicy {
        restart: true,
        grace_ms: 7_000,
        max_per_hour: 4,
    };
    ok(store.set_healing_policy(svc, &on).await, C, "set");
    assert_eq!(ok(store.healing_policy(svc).await, C, "read"), on);
    assert_eq!(
        ok(store.healing_services(c).await, C, "healing"),
        vec![(svc, on)],
        "store conformance [{C}]: the services that restart"
    );
    assert!(
        ok(store.healing_services(other.cluster.id).await, C, "other").is_empty(),
        "store conformance [{C}]: per cluster"
    );
    let off = HealingPolicy {
        restart: false,
        ..on
    };
    ok(store.set_healing_policy(svc, &off).await, C, "set again");
    assert!(
        ok(store.healing_services(c).await, C, "off").is_empty(),
        "store conformance [{C}]: off is not listed"
    );
    not_found(
        store.set_healing_policy(ServiceId(i64::MAX), &on).await,
        C,
        "a policy of no service",
    );
}

/// Notifications: targets are unique per cluster; a queued notification goes to every target
/// of its cluster, is due until delivered, is due again at its retry time after a failed
/// attempt, and every attempt is in the log, newest first; removing a target removes its
/// notifications.
pub async fn notifications<S: ClusterServices + AlertStore + ?Sized>(store: &S) {
    const C: &str = "notifications";
    let fx = fixture(store, C, "conf-notify", 1).await;
    let c = fx.cluster.id;
    let a = ok(
        store
            .add_alert_target(c, "pager", TargetKind::Webhook, "http://127.0.0.1:9/a")
            .await,
        C,
        "add",
    );
    let b = ok(
        store
            .add_alert_target(c, "chat", TargetKind::Alertmanager, "http://127.0.0.1:9/b")
            .await,
        C,
        "add",
    );
    super::fixture::already_exists(
        store
            .add_alert_target(c, "pager", TargetKind::Webhook, "http://x/")
            .await,
        C,
        "a second target named pager",
    );
    not_found(
        store
            .add_alert_target(ClusterId(i64::MAX), "x", TargetKind::Webhook, "http://x/")
            .await,
        C,
        "a target of no cluster",
    );
    let targets = ok(store.alert_targets(c).await, C, "targets");
    assert_eq!(
        targets,
        vec![a.clone(), b.clone()],
        "store conformance [{C}]: by id"
    );
    assert_eq!(
        (targets[0].kind, targets[1].kind),
        (TargetKind::Webhook, TargetKind::Alertmanager),
        "store conformance [{C}]: with their kinds"
    );

    // Reported with a notification: queued with the change, for every target, or nothing
    // at all when making the body fails.
    let finding = AlertReport {
        definition: "conf_notify".into(),
        subject: AlertSubject {
            cluster: c,
            host: Some(fx.hosts[0].id),
            ..AlertSubject::default()
        },
        state: AlertState::Critical,
        text: "down".into(),
        at: 500,
    };
    let refuse: &crate::store::NotifyBody<'_> =
        &|_, _| Err(crate::Error::Invalid("no body".into()));
    assert!(
        store
            .report_alerts(std::slice::from_ref(&finding), Some(refuse))
            .await
            .is_err(),
        "store conformance [{C}]: a body that cannot be made fails the report"
    );
    let mine = AlertFilter {
        cluster: Some(c),
        firing: true,
        ..AlertFilter::default()
    };
    assert!(
        ok(store.alerts(&mine).await, C, "after a failed report").is_empty(),
        "store conformance [{C}]: a failed report records no change"
    );
    // A body of nothing (every change silenced) queues nothing, and the change is kept.
    let due_before = ok(store.due_notifications(i64::MAX / 2, 1000).await, C, "due").len();
    let quiet: &crate::store::NotifyBody<'_> = &|_, _| Ok(None);
    let silent = AlertReport {
        definition: "conf_quiet".into(),
        ..finding.clone()
    };
    let changed = ok(
        store
            .report_alerts(std::slice::from_ref(&silent), Some(quiet))
            .await,
        C,
        "report silenced",
    );
    assert_eq!(
        changed.len(),
        1,
        "store conformance [{C}]: the change is kept"
    );
    assert_eq!(
        ok(store.due_notifications(i64::MAX / 2, 1000).await, C, "due").len(),
        due_before,
        "store conformance [{C}]: a body of nothing queues nothing"
    );
    let body: &crate::store::NotifyBody<'_> =
        &|cluster, changes| Ok(Some(format!("{cluster}: {} change(s)", changes.len())));
    ok(
        store
            .report_alerts(std::slice::from_ref(&finding), Some(body))
            .await,
        C,
        "report and notify",
    );
    let due = ok(store.due_notifications(500, 10).await, C, "due");
    let with_change: Vec<AlertTargetId> = due
        .iter()
        .filter(|n| n.body == format!("{c}: 1 change(s)"))
        .map(|n| n.target)
        .collect();
    assert_eq!(
        with_change,
        vec![a.id, b.id],
        "store conformance [{C}]: the change's notification is queued for every target"
    );
    for n in due.iter().filter(|n| n.body.ends_with("change(s)")) {
        ok(
            store
                .record_delivery(n.id, 600, Some(200), "ok", None)
                .await,
            C,
            "deliver",
        );
    }
    let queued = ok(
        store.queue_notifications(c, "{\"n\":1}", 1_000).await,
        C,
        "queue",
    );
    assert_eq!(queued, 2, "store conformance [{C}]: one per target");
    let due = ok(store.due_notifications(1_000, 10).await, C, "due");
    let mine: Vec<&Notification> = due.iter().filter(|n| n.body == "{\"n\":1}").collect();
    assert_eq!(mine.len(), 2, "store conformance [{C}]: both due: {due:?}");
    assert!(
        mine.iter()
            .all(|n| n.attempts == 0 && n.delivered_at.is_none())
    );
    let (first, second) = (mine[0].clone(), mine[1].clone());
    assert_eq!(
        (first.url.as_str(), first.kind, second.kind),
        (
            a.url.as_str(),
            TargetKind::Webhook,
            TargetKind::Alertmanager
        ),
        "store conformance [{C}]: with the target's URL and kind"
    );

    ok(
        store
            .record_delivery(first.id, 1_100, Some(503), "busy", Some(5_000))
            .await,
        C,
        "a failed attempt",
    );
    ok(
        store
            .record_delivery(second.id, 1_100, Some(200), "ok", None)
            .await,
        C,
        "a delivery",
    );
    let still: Vec<NotificationId> = ok(store.due_notifications(4_999, 10).await, C, "due")
        .iter()
        .map(|n| n.id)
        .collect();
    assert!(
        !still.contains(&first.id) && !still.contains(&second.id),
        "store conformance [{C}]: not due before its retry, nor once delivered: {still:?}"
    );
    let again = ok(store.due_notifications(5_000, 10).await, C, "due again");
    let retried = again
        .iter()
        .find(|n| n.id == first.id)
        .expect("due at its retry time");
    assert_eq!(
        retried.attempts, 1,
        "store conformance [{C}]: its attempts counted"
    );
    not_found(
        store
            .record_delivery(second.id, 1_200, Some(200), "again", None)
            .await,
        C,
        "a second delivery of a delivered notification",
    );
    // Per target in order: a newer notification waits while an older one is undelivered.
    ok(
        store.queue_notifications(c, "{\"n\":2}", 1_000).await,
        C,
        "queue a second",
    );
    let waiting: Vec<String> = ok(store.due_notifications(5_000, 10).await, C, "due")
        .into_iter()
        .filter(|n| n.target == a.id)
        .map(|n| n.body)
        .collect();
    assert_eq!(
        waiting,
        vec!["{\"n\":1}".to_string()],
        "store conformance [{C}]: only the oldest undelivered notification of a target is due"
    );
    let log = ok(store.delivery_log(c, 10).await, C, "log");
    let seen: Vec<(NotificationId, Option<u16>, &str)> = log
        .iter()
        .take(2)
        .map(|d| (d.notification, d.status, d.answer.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![(second.id, Some(200), "ok"), (first.id, Some(503), "busy")],
        "store conformance [{C}]: the log, newest first"
    );
    ok(store.remove_alert_target(a.id).await, C, "remove");
    not_found(store.remove_alert_target(a.id).await, C, "a removed target");
    let left = ok(
        store.due_notifications(i64::MAX / 2, 10).await,
        C,
        "due after removal",
    );
    assert!(
        left.iter().all(|n| n.target != a.id),
        "store conformance [{C}]: a removed target's notifications go with it"
    );
}

/// Alerts: the first finding creates an alert (a change only if it is not OK), a finding in
/// another state is a change kept in history, one in the same state is not; filters by
/// subject and firing; history is ascending, per cluster or alert, paged; unknown subjects are
/// NotFound with nothing recorded.
pub async fn alerts<S: ClusterServices + AlertStore + ?Sized>(store: &S) {
    const C: &str = "alerts";
    let fx = fixture(store, C, "conf-alerts", 2).await;
    let cluster = fx.cluster.id;
    let of_cluster = AlertFilter {
        cluster: Some(cluster),
        ..AlertFilter::default()
    };
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
    let changes = ok(store.report_alerts(&first, None).await, C, "report");
    // Each change as what it is about, from and to.
    let moves = |changes: &[AlertChange]| -> Vec<(AlertSubject, AlertState, AlertState)> {
        changes.iter().map(|c| (c.subject, c.from, c.to)).collect()
    };
    assert_eq!(
        moves(&changes),
        vec![
            (host(h1), AlertState::Ok, AlertState::Critical),
            (on_unit, AlertState::Ok, AlertState::Warning),
        ],
        "store conformance [{C}]: only findings that are not OK are changes at first"
    );
    let all = ok(store.alerts(&of_cluster).await, C, "list");
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
    let changes = ok(store.report_alerts(&again, None).await, C, "report again");
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
        store.report_alerts(&bad, None).await,
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

    // Findings in the same state only refresh the text and the check time (the last finding
    // of an alert in a report wins), and only when the text is new or the check time is a
    // minute old; `since` stays. A refresh followed by a change of the same alert in one
    // report ends as the change.
    let refresh = |text: &str, subject, state, at| AlertReport {
        text: text.into(),
        ..report("unit_down", subject, state, at)
    };
    let quiet = vec![
        refresh("still down", on_unit, AlertState::Critical, 6_000),
        report("host_lost", host(h0), AlertState::Ok, 6_000),
        report("host_lost", host(h1), AlertState::Ok, 6_000),
        report("host_lost", host(h1), AlertState::Critical, 7_000),
        refresh("down for a while", on_unit, AlertState::Critical, 7_000),
    ];
    let refreshed = ok(store.report_alerts(&quiet, None).await, C, "refresh");
    assert_eq!(
        moves(&refreshed),
        vec![(host(h1), AlertState::Ok, AlertState::Critical)],
        "store conformance [{C}]: findings in the same state are no changes"
    );
    let all = ok(store.alerts(&of_cluster).await, C, "list after refresh");
    let critical = format!("host_lost is {}", AlertState::Critical);
    let seen: Vec<(&str, &str, i64, i64)> = all
        .iter()
        .filter(|a| [on_unit, host(h0), host(h1)].contains(&a.subject))
        .map(|a| (&a.definition[..], &a.text[..], a.since, a.checked_at))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("host_lost", "host_lost is OK", 1_000, 1_000),
            ("host_lost", &critical[..], 7_000, 7_000),
            ("unit_down", "down for a while", 2_000, 7_000),
        ],
        "store conformance [{C}]: a refresh sets a new text and its check time, not since; \
         the same text checked again within a minute writes nothing"
    );
    let h0_lost = |all: &[Alert]| {
        all.iter()
            .find(|a| a.definition == "host_lost" && a.subject == host(h0))
            .map(|a| (a.text.clone(), a.since, a.checked_at))
    };
    for (at, checked) in [
        (1_000 + ALERT_CHECK_REFRESH_MS - 1, 1_000),
        (
            1_000 + ALERT_CHECK_REFRESH_MS,
            1_000 + ALERT_CHECK_REFRESH_MS,
        ),
    ] {
        let same = vec![report("host_lost", host(h0), AlertState::Ok, at)];
        let none = ok(store.report_alerts(&same, None).await, C, "same again");
        let all = ok(store.alerts(&of_cluster).await, C, "list after same");
        assert_eq!(
            (none.len(), h0_lost(&all)),
            (0, Some(("host_lost is OK".to_string(), 1_000, checked))),
            "store conformance [{C}]: the same finding at {at} moves the check time to {checked}"
        );
    }

    // More findings than one multi-row statement holds, new and then changed: every alert is
    // created, and every change comes back with the alert it is about and the id the history
    // gives it.
    let bulk = |n: usize, state_of: &dyn Fn(usize) -> AlertState, at| -> Vec<AlertReport> {
        (0..n)
            .map(|i| report(&format!("bulk_{i}"), host(h0), state_of(i), at))
            .collect()
    };
    let third = |i: usize| {
        if i.is_multiple_of(3) {
            AlertState::Critical
        } else {
            AlertState::Ok
        }
    };
    let mut reported = Vec::new();
    for (findings, what) in [
        (bulk(1_200, &third, 8_000), "many new findings"),
        (bulk(1_200, &|_| AlertState::Warning, 9_000), "many changes"),
    ] {
        let changes = ok(store.report_alerts(&findings, None).await, C, what);
        let want: Vec<(String, AlertState, AlertState)> = findings
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let before = if f.at == 8_000 {
                    AlertState::Ok
                } else {
                    third(i)
                };
                (f.definition.clone(), before, f.state)
            })
            .filter(|(_, from, to)| from != to)
            .collect();
        assert_eq!(
            changes
                .iter()
                .map(|c| (c.definition.clone(), c.from, c.to))
                .collect::<Vec<_>>(),
            want,
            "store conformance [{C}]: {what}: the changes, in report order"
        );
        reported.extend(changes);
    }
    let alerts = ok(store.alerts(&of_cluster).await, C, "list after bulk");
    let by_id: HashMap<AlertId, &Alert> = alerts.iter().map(|a| (a.id, a)).collect();
    let bulk_alerts: Vec<&&Alert> = by_id
        .values()
        .filter(|a| a.definition.starts_with("bulk_"))
        .collect();
    assert!(
        bulk_alerts.len() == 1_200
            && bulk_alerts.iter().all(|a| a.state == AlertState::Warning
                && a.since == 9_000
                && a.text == format!("{} is {}", a.definition, AlertState::Warning)),
        "store conformance [{C}]: every bulk alert created, then changed"
    );
    let history = ok(
        store.alert_history(cluster, None, None, None).await,
        C,
        "history after bulk",
    );
    for c in &reported {
        assert!(
            by_id
                .get(&c.alert)
                .is_some_and(|a| a.definition == c.definition)
                && history.contains(c),
            "store conformance [{C}]: {c:?} is about its alert and in the history as returned"
        );
    }
}
