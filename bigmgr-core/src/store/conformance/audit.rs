//! Conformance of [`AuditStore`]: the audit log.

use super::fixture::{ok, read_paged};
use crate::model::*;
use crate::store::AuditStore;

/// Runs the checks of the audit log.
pub async fn run<S: AuditStore + ?Sized>(store: &S) {
    audit(store).await;
}

/// Audit: events come back as appended, ascending by id, filtered by actor and paged by an id
/// cursor without gaps or repeats.
pub async fn audit<S: AuditStore + ?Sized>(store: &S) {
    const C: &str = "audit";
    let actor = "conf-auditor";
    let mut appended = Vec::new();
    for i in 0..7 {
        let e = NewAuditEvent {
            at: 1_000 + i,
            actor: if i == 3 {
                "conf-other".into()
            } else {
                actor.into()
            },
            action: "submit-job".into(),
            target: format!("job {i}"),
            outcome: [Outcome::Ok, Outcome::Refused, Outcome::Failed][i as usize % 3],
            detail: format!("detail {i}"),
        };
        let got = ok(store.append_audit(&e).await, C, "append");
        assert_eq!(
            (got.at, &got.actor, &got.target, got.outcome, &got.detail),
            (e.at, &e.actor, &e.target, e.outcome, &e.detail),
            "store conformance [{C}]: appended fields"
        );
        if let Some(prev) = appended.last().map(|p: &AuditEvent| p.id) {
            assert!(got.id > prev, "store conformance [{C}]: ids ascend");
        }
        appended.push(got);
    }
    let mine: Vec<_> = appended
        .iter()
        .filter(|e| e.actor == actor)
        .cloned()
        .collect();
    let filter = AuditFilter {
        actor: Some(actor.into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        ok(store.list_audit(&filter).await, C, "list by actor"),
        mine,
        "store conformance [{C}]: one actor's events, ascending"
    );
    let page = |after, limit| async move {
        let filter = AuditFilter {
            after,
            limit: Some(limit),
            actor: Some(actor.into()),
        };
        store.list_audit(&filter).await
    };
    let paged = read_paged(C, 4, page, |e: &AuditEvent| e.id).await;
    assert_eq!(
        paged, mine,
        "store conformance [{C}]: paging by cursor: no gaps, no repeats"
    );
    let tail = ok(
        store
            .list_audit(&AuditFilter {
                after: Some(appended[4].id),
                ..AuditFilter::default()
            })
            .await,
        C,
        "after cursor",
    );
    assert_eq!(
        tail,
        appended[5..].to_vec(),
        "store conformance [{C}]: everything after a cursor, every actor"
    );

    // What was refused is audited as it came, even a NUL (kept as U+FFFD by every engine).
    let hostile = NewAuditEvent {
        at: 2_000,
        actor: "conf-nul".into(),
        action: "add-host".into(),
        target: "host a\0b".into(),
        outcome: Outcome::Refused,
        detail: "bad name 'a\0b'".into(),
    };
    let got = ok(store.append_audit(&hostile).await, C, "append with a NUL");
    assert_eq!(
        (got.target.as_str(), got.detail.as_str()),
        ("host a\u{FFFD}b", "bad name 'a\u{FFFD}b'"),
        "store conformance [{C}]: a NUL is stored as U+FFFD"
    );
}
