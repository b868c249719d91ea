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
    /// The fingerprint of the server's CA (`sha256:…`) for `bigmgr-agent --ca-fingerprint`:
    /// the agent refuses a server whose certificate chain lacks it, before it sends the token.
    /// `None` when the server serves plain HTTP.
    #[serde(default)]
    pub ca_fingerprint: Option<String>,
    /// The whole agent command for a host, with the server's URL as this request reached it;
    /// fill in the host's name, address and root.
    #[serde(default)]
    pub command: Option<String>,
}
