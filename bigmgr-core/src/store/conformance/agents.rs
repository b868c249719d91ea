//! Conformance of [`AgentStore`]: join tokens, claiming hosts, credentials, agent certificates
//! and host reports, on
//! hosts of a [`ClusterStore`] with units of a [`ServiceStore`].
//!
//! [`ServiceStore`]: crate::store::ServiceStore

use super::ClusterServices;
use super::fixture::{already_exists, fixture, futures_join_all, not_found, ok};
use crate::model::*;
use crate::store::{AgentStore, ClusterStore, METRICS_KEPT_MS};

/// Runs the checks of agents.
pub async fn run<S: ClusterServices + AgentStore + ?Sized>(store: &S) {
    checks!(store: agents, concurrent_claims, certificates, ssh_host_keys, metric_history);
}

/// Join tokens, credentials and host reports (registration, heartbeats, unit health).
pub async fn agents<S: ClusterServices + AgentStore + ?Sized>(store: &S) {
    let check = "agents";
    let fx = fixture(store, check, "agents", 2).await;
    let other = ok(
        store.create_cluster("agents-other").await,
        check,
        "create cluster",
    );

    ok(
        store.add_join_token(fx.cluster.id, "hash-a").await,
        check,
        "add token",
    );
    ok(
        store.add_join_token(other.id, "hash-b").await,
        check,
        "add token",
    );
    already_exists(
        store.add_join_token(other.id, "hash-a").await,
        check,
        "a join token whose hash is taken",
    );
    not_found(
        store.add_join_token(ClusterId(987_654), "hash-c").await,
        check,
        "a token for an unknown cluster",
    );
    let got = ok(
        store.join_token_cluster("hash-a").await,
        check,
        "token lookup",
    );
    assert_eq!(
        got,
        Some(fx.cluster.id),
        "store conformance [{check}]: token a is the fixture's"
    );
    let got = ok(
        store.join_token_cluster("nope").await,
        check,
        "token lookup",
    );
    assert_eq!(got, None, "store conformance [{check}]: unknown token");

    let h = &fx.hosts[0];
    let none = ok(store.host_credential(h.id).await, check, "credential");
    assert_eq!(
        none, None,
        "store conformance [{check}]: no credential before an agent joined"
    );
    assert!(
        ok(store.claim_host(h.id, "cred").await, check, "claim"),
        "store conformance [{check}]: the first claim of a host wins"
    );
    assert!(
        !ok(store.claim_host(h.id, "other").await, check, "claim again"),
        "store conformance [{check}]: a claimed host cannot be claimed again"
    );
    let got = ok(store.host_credential(h.id).await, check, "credential");
    assert_eq!(
        got.as_deref(),
        Some("cred"),
        "store conformance [{check}]: the first claim's credential kept"
    );
    not_found(
        store.claim_host(HostId(987_654), "x").await,
        check,
        "claiming an unknown host",
    );
    not_found(
        store.host_credential(HostId(987_654)).await,
        check,
        "the credential of an unknown host",
    );

    ok(
        store.set_host_state(h.id, HostState::Lost, None).await,
        check,
        "set lost",
    );
    let facts = HostFacts {
        os: "Debian".into(),
        cores: 2,
        memory_bytes: 1 << 30,
        ..HostFacts::default()
    };
    let metrics = HostMetrics {
        at: 5,
        cpu_percent: 12.5,
        memory_used_bytes: 1 << 20,
        memory_total_bytes: 1 << 30,
        load: [0.5, 0.25, 0.125],
        ..HostMetrics::default()
    };
    let report = HostReport {
        at: 1_000,
        address: Some("10.9.9.9".into()),
        facts: Some(facts.clone()),
        metrics: None,
        units: Vec::new(),
        checks: Vec::new(),
    };
    ok(
        store.record_host_report(h.id, &report).await,
        check,
        "register",
    );
    let health = UnitHealth {
        cluster: fx.cluster.name.clone(),
        service: fx.service.name.clone(),
        component: "zookeeper_server".into(),
        healthy: false,
        exit_code: Some(3),
        message: "not running".into(),
        checked_at: 1_500,
    };
    let unknown = UnitHealth {
        service: "no-such-service".into(),
        ..health.clone()
    };
    let beat = HostReport {
        at: 2_000,
        address: None,
        facts: None,
        metrics: Some(metrics.clone()),
        units: vec![health, unknown],
        checks: Vec::new(),
    };
    ok(
        store.record_host_report(h.id, &beat).await,
        check,
        "heartbeat",
    );
    let got = host(store, check, &h.name).await;
    assert_eq!(
        got.state,
        HostState::Online,
        "store conformance [{check}]: a report means ONLINE"
    );
    assert_eq!(
        got.last_heartbeat,
        Some(2_000),
        "store conformance [{check}]: last heartbeat"
    );
    assert_eq!(
        (got.address.as_str(), got.reported_address.as_deref()),
        (h.address.as_str(), Some("10.9.9.9")),
        "store conformance [{check}]: a reported address is kept beside the host's, which does not change"
    );
    assert_eq!(
        got.facts,
        Some(facts),
        "store conformance [{check}]: facts kept across heartbeats"
    );
    assert_eq!(
        got.metrics,
        Some(metrics),
        "store conformance [{check}]: metrics stored"
    );
    let units = ok(store.list_units(fx.cluster.id).await, check, "units");
    let on_h: Vec<_> = units.iter().filter(|u| u.host == h.id).collect();
    assert_eq!(
        on_h.len(),
        1,
        "store conformance [{check}]: one unit on the host"
    );
    assert_eq!(
        on_h[0].health,
        Some(Health {
            healthy: false,
            message: "not running".into(),
            checked_at: 1_500,
        }),
        "store conformance [{check}]: unit health stored"
    );
    assert!(
        units
            .iter()
            .filter(|u| u.host != h.id)
            .all(|u| u.health.is_none()),
        "store conformance [{check}]: other hosts' units untouched"
    );
    not_found(
        store.record_host_report(HostId(987_654), &beat).await,
        check,
        "a report for an unknown host",
    );

    // An admin accepts the reported address; a report of the address itself clears it.
    ok(
        store.set_host_address(h.id, "10.9.9.9").await,
        check,
        "set address",
    );
    let got = host(store, check, &h.name).await;
    assert_eq!(
        (got.address.as_str(), got.reported_address),
        ("10.9.9.9", None),
        "store conformance [{check}]: set_host_address sets the address and clears the reported one"
    );
    for (at, address, step) in [
        (3_000, "10.8.8.8", "report another address"),
        (3_500, "10.9.9.9", "report the host's address"),
    ] {
        let report = HostReport {
            at,
            address: Some(address.into()),
            ..HostReport::default()
        };
        ok(store.record_host_report(h.id, &report).await, check, step);
    }
    let got = host(store, check, &h.name).await;
    assert_eq!(
        (got.address.as_str(), got.reported_address),
        ("10.9.9.9", None),
        "store conformance [{check}]: reporting the host's own address clears the reported one"
    );
    not_found(
        store.set_host_address(HostId(987_654), "10.0.0.1").await,
        check,
        "setting the address of an unknown host",
    );
}

/// Claiming a host is one compare-and-set: of many claims of one host at once, exactly one
/// wins, and the credential stored is the winner's.
pub async fn concurrent_claims<S: ClusterServices + AgentStore + ?Sized>(store: &S) {
    let check = "concurrent_claims";
    let fx = fixture(store, check, "claims", 1).await;
    let h = &fx.hosts[0];
    let claims = (0..32).map(|i| {
        let hash = format!("claim-{i}");
        async move { (store.claim_host(h.id, &hash).await, hash) }
    });
    let results = futures_join_all(claims).await;
    let winners: Vec<&String> = results
        .iter()
        .filter_map(|(r, hash)| match r {
            Ok(true) => Some(hash),
            Ok(false) => None,
            Err(e) => panic!("store conformance [{check}]: claim failed: {e}"),
        })
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "store conformance [{check}]: exactly one of 32 concurrent claims wins, not {winners:?}"
    );
    let stored = ok(store.host_credential(h.id).await, check, "credential");
    assert_eq!(
        stored.as_deref(),
        Some(winners[0].as_str()),
        "store conformance [{check}]: the winner's credential is stored"
    );
}

/// A host's SSH host key: none until recorded, then the one recorded last; a removed or
/// unknown host is not found.
pub async fn ssh_host_keys<S: ClusterServices + AgentStore + ?Sized>(store: &S) {
    let check = "ssh host keys";
    let cluster = ok(
        store.create_cluster("sshkeys").await,
        check,
        "create cluster",
    );
    let h = ok(
        store
            .add_host(NewHost {
                cluster: cluster.id,
                name: "sshkeys-a".into(),
                address: "10.0.0.9".into(),
            })
            .await,
        check,
        "add host",
    );
    let none = ok(store.host_ssh_key(h.id).await, check, "read");
    assert_eq!(
        none, None,
        "store conformance [{check}]: no key before one is recorded"
    );
    for fp in ["SHA256:first", "SHA256:second"] {
        ok(store.set_host_ssh_key(h.id, fp).await, check, "record");
        let got = ok(store.host_ssh_key(h.id).await, check, "read");
        assert_eq!(
            got.as_deref(),
            Some(fp),
            "store conformance [{check}]: the key recorded last is the host's"
        );
    }
    assert!(
        matches!(
            store.set_host_ssh_key(HostId(987_655), "SHA256:x").await,
            Err(crate::Error::NotFound { .. })
        ),
        "store conformance [{check}]: recording a key of an unknown host is NotFound"
    );
    ok(store.remove_host(h.id).await, check, "remove host");
    assert!(
        matches!(
            store.set_host_ssh_key(h.id, "SHA256:third").await,
            Err(crate::Error::NotFound { .. })
        ),
        "store conformance [{check}]: recording a key of a removed host is NotFound"
    );
}

/// Each host has one current agent certificate, found by its fingerprint: a new one replaces
/// it, and removing the host revokes it.
pub async fn certificates<S: ClusterServices + AgentStore + ?Sized>(store: &S) {
    let check = "certificates";
    // Hosts without units, so one can be removed.
    let cluster = ok(store.create_cluster("certs").await, check, "create cluster");
    let add = |name: &str| NewHost {
        cluster: cluster.id,
        name: name.into(),
        address: "10.0.0.1".into(),
    };
    let a = ok(store.add_host(add("certs-a")).await, check, "add host");
    let b = ok(store.add_host(add("certs-b")).await, check, "add host");
    let found = |h: Option<Host>| h.map(|h| h.id);
    let none = ok(
        store.host_by_certificate("sha256:aa").await,
        check,
        "lookup",
    );
    assert_eq!(
        found(none),
        None,
        "store conformance [{check}]: no host holds a certificate before one is recorded"
    );
    ok(
        store.set_host_certificate(a.id, "sha256:aa").await,
        check,
        "set a",
    );
    ok(
        store.set_host_certificate(b.id, "sha256:bb").await,
        check,
        "set b",
    );
    let got = ok(
        store.host_by_certificate("sha256:aa").await,
        check,
        "lookup",
    );
    assert_eq!(
        found(got),
        Some(a.id),
        "store conformance [{check}]: a certificate is found as its host's"
    );
    ok(
        store.set_host_certificate(a.id, "sha256:a2").await,
        check,
        "renew a",
    );
    let old = ok(
        store.host_by_certificate("sha256:aa").await,
        check,
        "lookup",
    );
    assert_eq!(
        found(old),
        None,
        "store conformance [{check}]: a replaced certificate is no host's"
    );
    let new = ok(
        store.host_by_certificate("sha256:a2").await,
        check,
        "lookup",
    );
    assert_eq!(
        found(new),
        Some(a.id),
        "store conformance [{check}]: the new certificate is the host's"
    );
    ok(store.remove_host(b.id).await, check, "remove b");
    let removed = ok(
        store.host_by_certificate("sha256:bb").await,
        check,
        "lookup",
    );
    assert_eq!(
        found(removed),
        None,
        "store conformance [{check}]: a removed host's certificate is revoked"
    );
    not_found(
        store.set_host_certificate(b.id, "sha256:b2").await,
        check,
        "a certificate for a removed host",
    );
    not_found(
        store
            .set_host_certificate(HostId(987_654), "sha256:cc")
            .await,
        check,
        "a certificate for an unknown host",
    );
}

/// The host named `name`, which must exist.
async fn host<S: ClusterStore + ?Sized>(store: &S, check: &str, name: &str) -> Host {
    match ok(store.host_by_name(name).await, check, "host_by_name") {
        Some(h) => h,
        None => panic!("store conformance [{check}]: host {name} vanished"),
    }
}

/// Reports with metrics build each host's history: samples at the server's time, by host then
/// time, filtered by host and start, and dropped once older than [`METRICS_KEPT_MS`]; reports
/// recorded together skip a host the store does not have.
pub async fn metric_history<S: ClusterServices + AgentStore + ?Sized>(store: &S) {
    let check = "metric_history";
    let fx = fixture(store, check, "metrics", 2).await;
    let other = fixture(store, check, "metrics-other", 1).await;
    let (a, b) = (fx.hosts[0].id, fx.hosts[1].id);
    let sample = |cpu: f64| HostMetrics {
        at: 42, // the agent's clock: replaced by the report's time
        cpu_percent: cpu,
        memory_used_bytes: 1 << 20,
        memory_total_bytes: 1 << 30,
        ..HostMetrics::default()
    };
    let report = |at: i64, metrics: Option<HostMetrics>| HostReport {
        at,
        metrics,
        ..HostReport::default()
    };
    // Heartbeats that arrive together are recorded in one go; one of a host the store does
    // not have (removed since it reported) is skipped, the others are recorded.
    let batch: Vec<(HostId, HostReport)> = [
        (b, 1_000, 5.0),
        (a, 1_000, 10.0),
        (HostId(987_654), 1_000, 1.0),
        (a, 2_000, 20.0),
        (a, 3_000, 30.0),
    ]
    .into_iter()
    .map(|(host, at, cpu)| (host, report(at, Some(sample(cpu)))))
    .collect();
    ok(
        store.record_host_reports(&batch).await,
        check,
        "heartbeats together",
    );
    // A report without metrics (a registration) adds no sample.
    ok(
        store.record_host_report(b, &report(2_500, None)).await,
        check,
        "register",
    );
    ok(
        store
            .record_host_report(other.hosts[0].id, &report(1_500, Some(sample(99.0))))
            .await,
        check,
        "other cluster",
    );
    let got = ok(
        store.host_metrics(fx.cluster.id, None, 0).await,
        check,
        "all",
    );
    let seen: Vec<(HostId, i64, f64)> =
        got.iter().map(|(h, m)| (*h, m.at, m.cpu_percent)).collect();
    let mut want = vec![
        (a, 1_000, 10.0),
        (a, 2_000, 20.0),
        (a, 3_000, 30.0),
        (b, 1_000, 5.0),
    ];
    want.sort_by_key(|(h, at, _)| (*h, *at));
    assert_eq!(
        seen, want,
        "store conformance [{check}]: a cluster's samples by host then time, at the report's time, no other cluster's"
    );
    let since = ok(
        store.host_metrics(fx.cluster.id, Some(a), 2_000).await,
        check,
        "one host since",
    );
    assert_eq!(
        since.iter().map(|(_, m)| m.at).collect::<Vec<_>>(),
        vec![2_000, 3_000],
        "store conformance [{check}]: one host's samples from `since`"
    );
    // A late sample drops what is older than the time kept before it.
    let late = 2_000 + METRICS_KEPT_MS;
    ok(
        store
            .record_host_report(a, &report(late, Some(sample(40.0))))
            .await,
        check,
        "late heartbeat",
    );
    let kept = ok(
        store.host_metrics(fx.cluster.id, Some(a), 0).await,
        check,
        "after pruning",
    );
    assert_eq!(
        kept.iter().map(|(_, m)| m.at).collect::<Vec<_>>(),
        vec![2_000, 3_000, late],
        "store conformance [{check}]: samples older than METRICS_KEPT_MS before the newest are dropped"
    );
    let b_left = ok(
        store.host_metrics(fx.cluster.id, Some(b), 0).await,
        check,
        "other host",
    );
    assert_eq!(
        b_left.len(),
        1,
        "store conformance [{check}]: pruning one host leaves the others"
    );
}
