//! Clusters and join tokens as frontends show them.

use crate::model::Cluster;
use serde::{Deserialize, Serialize};

/// A cluster, as the API shows it: the model's [`Cluster`] itself (its OpenAPI schema is
/// named `ClusterView`).
pub type ClusterView = Cluster;

/// A new join token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinToken {
    /// The token (`bmj_…`), shown only now: pass it to `bigmgr-agent --join-token`.
    pub token: String,
}
