//! Conformance of [`AgentStore`]: join tokens, claiming hosts, credentials and host reports,
//! on hosts of a [`ClusterStore`] with units of a [`ServiceStore`].

use super::fixture::{fixture, ok};
use crate::Error;
use crate::model::*;
use crate::store::{AgentStore, ClusterStore, ServiceStore};

/// Runs the checks of agents.
pub async fn run<S>(store: &S)
where
    S: ClusterStore + AgentStore + ServiceStore + ?Sized,
{
    agents(store).await;
    concurrent_claims(store).await;
}

/// Join tokens, credentials and host reports (registration, heartbeats, unit health).
pub async fn agents<S>(store: &S)
where
    S: ClusterStore + AgentStore + ServiceStore + ?Sized,
{
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
    assert!(
        matches!(
            store.add_join_token(other.id, "hash-a").await,
            Err(Error::AlreadyExists { .. })
        ),
        "[{check}] a token hash is unique"
    );
    assert!(
        matches!(
            store.add_join_token(ClusterId(987_654), "hash-c").await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] a token for an unknown cluster is NotFound"
    );
    let got = ok(
        store.join_token_cluster("hash-a").await,
        check,
        "token lookup",
    );
    assert_eq!(
        got,
        Some(fx.cluster.id),
        "[{check}] token a is the fixture's"
    );
    let got = ok(
        store.join_token_cluster("nope").await,
        check,
        "token lookup",
    );
    assert_eq!(got, None, "[{check}] unknown token");

    let h = &fx.hosts[0];
    let none = ok(store.host_credential(h.id).await, check, "credential");
    assert_eq!(none, None, "[{check}] no credential before an agent joined");
    assert!(
        ok(store.claim_host(h.id, "cred").await, check, "claim"),
        "[{check}] the first claim of a host wins"
    );
    assert!(
        !ok(store.claim_host(h.id, "other").await, check, "claim again"),
        "[{check}] a claimed host cannot be claimed again"
    );
    let got = ok(store.host_credential(h.id).await, check, "credential");
    assert_eq!(
        got.as_deref(),
        Some("cred"),
        "[{check}] the first claim's credential kept"
    );
    assert!(
        matches!(
            store.claim_host(HostId(987_654), "x").await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] claiming an unknown host is NotFound"
    );
    assert!(
        matches!(
            store.host_credential(HostId(987_654)).await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] credential of an unknown host is NotFound"
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
    };
    ok(
        store.record_host_report(h.id, &beat).await,
        check,
        "heartbeat",
    );
    let got = ok(store.host_by_name(&h.name).await, check, "host").expect("host exists");
    assert_eq!(
        got.state,
        HostState::Online,
        "[{check}] a report means ONLINE"
    );
    assert_eq!(got.last_heartbeat, Some(2_000), "[{check}] last heartbeat");
    assert_eq!(
        (got.address.as_str(), got.reported_address.as_deref()),
        (h.address.as_str(), Some("10.9.9.9")),
        "[{check}] a reported address is kept beside the host's, which does not change"
    );
    assert_eq!(
        got.facts,
        Some(facts),
        "[{check}] facts kept across heartbeats"
    );
    assert_eq!(got.metrics, Some(metrics), "[{check}] metrics stored");
    let units = ok(store.list_units(fx.cluster.id).await, check, "units");
    let on_h: Vec<_> = units.iter().filter(|u| u.host == h.id).collect();
    assert_eq!(on_h.len(), 1, "[{check}] one unit on the host");
    assert_eq!(
        on_h[0].health,
        Some(Health {
            healthy: false,
            message: "not running".into(),
            checked_at: 1_500,
        }),
        "[{check}] unit health stored"
    );
    assert!(
        units
            .iter()
            .filter(|u| u.host != h.id)
            .all(|u| u.health.is_none()),
        "[{check}] other hosts' units untouched"
    );
    assert!(
        matches!(
            store.record_host_report(HostId(987_654), &beat).await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] a report for an unknown host is NotFound"
    );

    // An admin accepts the reported address; a report of the address itself clears it.
    ok(
        store.set_host_address(h.id, "10.9.9.9").await,
        check,
        "set address",
    );
    let got = ok(store.host_by_name(&h.name).await, check, "host").expect("host exists");
    assert_eq!(
        (got.address.as_str(), got.reported_address),
        ("10.9.9.9", None),
        "[{check}] set_host_address sets the address and clears the reported one"
    );
    let elsewhere = HostReport {
        at: 3_000,
        address: Some("10.8.8.8".into()),
        ..HostReport::default()
    };
    ok(
        store.record_host_report(h.id, &elsewhere).await,
        check,
        "report another address",
    );
    let same = HostReport {
        at: 3_500,
        address: Some("10.9.9.9".into()),
        ..HostReport::default()
    };
    ok(
        store.record_host_report(h.id, &same).await,
        check,
        "report the host's address",
    );
    let got = ok(store.host_by_name(&h.name).await, check, "host").expect("host exists");
    assert_eq!(
        (got.address.as_str(), got.reported_address),
        ("10.9.9.9", None),
        "[{check}] reporting the host's own address clears the reported one"
    );
    assert!(
        matches!(
            store.set_host_address(HostId(987_654), "10.0.0.1").await,
            Err(Error::NotFound { .. })
        ),
        "[{check}] setting the address of an unknown host is NotFound"
    );
}

/// Claiming a host is one compare-and-set: of many claims of one host at once, exactly one
/// wins, and the credential stored is the winner's.
pub async fn concurrent_claims<S>(store: &S)
where
    S: ClusterStore + AgentStore + ServiceStore + ?Sized,
{
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

/// Polls every future to completion concurrently (this crate does not depend on `futures`).
async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future ended"))
        .collect()
}
