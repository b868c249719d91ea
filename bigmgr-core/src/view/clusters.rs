//! Clusters and join tokens as frontends show them.

use crate::model::Cluster;
use serde::{Deserialize, Serialize};

/// A cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterView {
    /// Its id.
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
}

impl From<Cluster> for ClusterView {
    fn from(c: Cluster) -> Self {
        ClusterView {
            id: c.id.0,
            name: c.name,
            created_at: c.created_at,
        }
    }
}

/// A new join token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinToken {
    /// The token (`bmj_…`), shown only now: pass it to `bigmgr-agent --join-token`.
    pub token: String,
}
