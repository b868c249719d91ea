//! What `POST /clusters/{c}/apply` answers: the plan it carried out and the jobs it submitted.

use super::JobView;
use crate::spec::Plan;
use serde::{Deserialize, Serialize};

/// An applied cluster spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpecAppliedView {
    /// What the apply changed (the plan made before it changed anything).
    pub plan: Plan,
    /// The jobs it submitted, in order (none if the cluster already was as the spec says).
    pub jobs: Vec<JobView>,
}

impl SpecAppliedView {
    /// The view of an apply on cluster `cluster`: its plan and the jobs it submitted.
    pub fn of(plan: Plan, jobs: Vec<crate::model::Job>, cluster: &str) -> SpecAppliedView {
        SpecAppliedView {
            plan,
            jobs: jobs.into_iter().map(|j| JobView::of(j, cluster)).collect(),
        }
    }
}
