//! Relations: relating two services by matching endpoints, unrelating them, and the events
//! each side is told when the other's units come, go or change.

use super::Manager;
use crate::model::*;
use crate::stack::{Endpoint, ServiceDef};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// A request to relate two service instances: `service` or `service:endpoint` on each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Relate {
    /// The requiring side (`prom` or `prom:metrics`).
    pub requirer: String,
    /// The providing side (`nodes` or `nodes:metrics`).
    pub provider: String,
    /// Reconfigure the requirer's stale units automatically when the provider's units change
    /// (and the other way round); default on.
    #[serde(default = "yes")]
    pub auto_reconfigure: bool,
}

fn yes() -> bool {
    true
}

/// The one pair (requires endpoint of `r`, provides endpoint of `p`) that shares an interface,
/// each side given as (service name, definition, endpoint name if named).
fn match_endpoints(
    (rname, rdef, rep): (&str, &ServiceDef, Option<&str>),
    (pname, pdef, pep): (&str, &ServiceDef, Option<&str>),
) -> Result<(Endpoint, Endpoint)> {
    let pick = |eps: &[Endpoint], name: Option<&str>, side: &str, svc: &str| match name {
        Some(n) => eps
            .iter()
            .find(|e| e.name == n)
            .map(|e| vec![e.clone()])
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "service '{svc}' has no {side} endpoint '{n}'; its {side} endpoints are: {}",
                    list_endpoints(eps)
                ))
            }),
        None => Ok(eps.to_vec()),
    };
    let reqs = pick(&rdef.requires, rep, "requires", rname)?;
    let provs = pick(&pdef.provides, pep, "provides", pname)?;
    let pairs: Vec<(&Endpoint, &Endpoint)> = reqs
        .iter()
        .flat_map(|r| provs.iter().map(move |p| (r, p)))
        .filter(|(r, p)| r.interface == p.interface)
        .collect();
    match pairs.as_slice() {
        [(r, p)] => Ok(((*r).clone(), (*p).clone())),
        [] => Err(Error::Invalid(format!(
            "interfaces don't match: '{rname}' requires {} but '{pname}' provides {}; a \
             relation needs a requires and a provides endpoint with the same interface",
            list_endpoints(&reqs),
            list_endpoints(&provs)
        ))),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|(r, p)| format!("{rname}:{} {pname}:{}", r.name, p.name))
                .collect();
            Err(Error::Invalid(format!(
                "more than one pair of endpoints fits; name them: {}",
                names.join(" | ")
            )))
        }
    }
}

fn list_endpoints(eps: &[Endpoint]) -> String {
    if eps.is_empty() {
        return "no such endpoint".into();
    }
    eps.iter()
        .map(|e| format!("{} ({})", e.name, e.interface))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Manager {
    /// Relates a requirer endpoint to a provider endpoint with the same interface. With no
    /// endpoint named, the one pair of endpoints sharing an interface is taken. The sides may
    /// be given either way round (as `juju relate` takes them): if the second service is the
    /// one that requires, they are swapped. Mismatched interfaces are refused, naming both.
    pub async fn relate(&self, cluster: &str, req: Relate) -> Result<Relation> {
        let c = self.cluster(cluster).await?;
        let split = |s: &str| match s.split_once(':') {
            Some((a, b)) => (a.to_string(), Some(b.to_string())),
            None => (s.to_string(), None),
        };
        let (aname, aep) = split(&req.requirer);
        let (bname, bep) = split(&req.provider);
        if aname == bname {
            return Err(Error::Invalid(format!(
                "'{aname}' can't be related to itself; units of one service see each other \
                 through its [[peers]] endpoints"
            )));
        }
        let (ainst, adef) = self.service_def(&c, &aname).await?;
        let (binst, bdef) = self.service_def(&c, &bname).await?;
        let a = (aname.as_str(), adef.as_ref(), aep.as_deref());
        let b = (bname.as_str(), bdef.as_ref(), bep.as_deref());
        let (rinst, pinst, r, p) = match match_endpoints(a, b) {
            Ok((r, p)) => (ainst, binst, r, p),
            Err(forward) => match match_endpoints(b, a) {
                Ok((r, p)) => (binst, ainst, r, p),
                Err(_) => return Err(forward),
            },
        };
        let (rname, pname) = (rinst.name.clone(), pinst.name.clone());
        let rel = self
            .inner
            .store
            .add_relation(&NewRelation {
                cluster: c.id,
                requirer: rinst.id,
                requirer_endpoint: r.name.clone(),
                provider: pinst.id,
                provider_endpoint: p.name.clone(),
                interface: r.interface.clone(),
                auto_reconfigure: req.auto_reconfigure,
            })
            .await?;
        let events = vec![
            NewRelationEvent {
                relation: rel.id,
                kind: RelationEventKind::Joined,
                service: rinst.id,
                detail: format!("related to {pname}:{}", p.name),
                job: None,
            },
            NewRelationEvent {
                relation: rel.id,
                kind: RelationEventKind::Joined,
                service: pinst.id,
                detail: format!("related to {rname}:{}", r.name),
                job: None,
            },
        ];
        self.reconcile(&c, events, true).await?;
        Ok(rel)
    }

    /// A cluster's relations.
    pub async fn relations(&self, cluster: &str) -> Result<Vec<Relation>> {
        let c = self.cluster(cluster).await?;
        self.inner.store.list_relations(c.id).await
    }

    pub(super) async fn relation(&self, c: &Cluster, id: RelationId) -> Result<Relation> {
        self.inner
            .store
            .list_relations(c.id)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::not_found("relation", format!("{id} (in cluster {})", c.name)))
    }

    /// Removes a relation: both sides get `broken` and re-render without each other.
    pub async fn unrelate(&self, cluster: &str, id: RelationId) -> Result<()> {
        let c = self.cluster(cluster).await?;
        let rel = self.relation(&c, id).await?;
        self.inner.store.remove_relation(id).await?;
        let events = [rel.requirer, rel.provider]
            .into_iter()
            .map(|s| NewRelationEvent {
                relation: id,
                kind: RelationEventKind::Broken,
                service: s,
                detail: "relation removed".into(),
                job: None,
            })
            .collect();
        // The relation is gone from the store, so reconcile sees the new world.
        self.reconcile(&c, events, true).await?;
        Ok(())
    }

    /// A relation's events, oldest first; a removed relation keeps its events. (Relation ids
    /// are unique across clusters, and reading is not restricted per cluster, so the id
    /// selects; a relation with neither events nor a live entry is not found.)
    pub async fn relation_events(
        &self,
        cluster: &str,
        id: RelationId,
    ) -> Result<Vec<RelationEvent>> {
        let c = self.cluster(cluster).await?;
        let events = self.inner.store.list_relation_events(id).await?;
        if events.is_empty() && self.relation(&c, id).await.is_err() {
            return Err(Error::not_found(
                "relation",
                format!("{id} (in cluster {cluster})"),
            ));
        }
        Ok(events)
    }

    /// The events the other sides of `service`'s relations get when its units change, and
    /// the service itself through its peers.
    pub(super) async fn relation_events_for(
        &self,
        c: &Cluster,
        service: ServiceId,
        kind: RelationEventKind,
        detail: &str,
    ) -> Result<Vec<NewRelationEvent>> {
        Ok(self
            .inner
            .store
            .list_relations(c.id)
            .await?
            .into_iter()
            .filter_map(|r| {
                let other = if r.provider == service {
                    r.requirer
                } else if r.requirer == service {
                    r.provider
                } else {
                    return None;
                };
                Some(NewRelationEvent {
                    relation: r.id,
                    kind,
                    service: other,
                    detail: detail.to_string(),
                    job: None,
                })
            })
            .collect())
    }
}
