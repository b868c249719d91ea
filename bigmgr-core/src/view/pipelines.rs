//! Pipelines as the API shows them.

use crate::model::{Pipeline, PipelineState};
use serde::{Deserialize, Serialize};

/// A pipeline of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineView {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: crate::model::PipelineId,
    /// Its name, unique among the cluster's pipelines.
    pub name: String,
    /// Who created it.
    pub author: String,
    /// When (ms since epoch).
    pub created_at: i64,
    /// CREATED, RUNNING, PAUSED or STOPPED.
    pub state: PipelineState,
    /// Its definition as written (TOML, docs/pipelines.md).
    pub definition: String,
}

impl From<Pipeline> for PipelineView {
    fn from(p: Pipeline) -> PipelineView {
        PipelineView {
            id: p.id,
            name: p.name,
            author: p.author,
            created_at: p.created_at,
            state: p.state,
            definition: p.definition,
        }
    }
}
