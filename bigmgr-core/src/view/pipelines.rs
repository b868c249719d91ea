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
    /// CREATED, RUNNING, PAUSED, DRAINING, STOPPED, FAILED or FINISHED.
    pub state: PipelineState,
    /// What its run last said: why it failed, or how it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The replicas its units were scaled to, over what the definition says.
    #[serde(default)]
    pub replicas: std::collections::BTreeMap<String, u32>,
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
            message: p.message,
            replicas: p.replicas,
            definition: p.definition,
        }
    }
}

/// A pipeline's graph and how much each node has done, from the metastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineStatus {
    /// The pipeline.
    pub pipeline: PipelineView,
    /// Its nodes (sources, units, channels — the named ones and those inserted between two
    /// nodes, `<from>-><to>` — and sinks), by name.
    pub nodes: Vec<PipelineNode>,
    /// Its edges, `[from, to]`.
    pub edges: Vec<(String, String)>,
    /// This server runs it now.
    pub running_here: bool,
}

/// One node of a pipeline and its batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineNode {
    /// Its name.
    pub name: String,
    /// `source`, `unit`, `channel` or `sink`.
    pub kind: String,
    /// A unit's replicas (as scaled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// A channel's limit of batches waiting (backpressure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Batches waiting (for a unit: in its input channels); with `leased`, its backlog.
    pub waiting: u64,
    /// Batches being processed (leased).
    pub leased: u64,
    /// Batches processed.
    pub processed: u64,
    /// Batches processed in the last minute: its throughput.
    pub processed_last_minute: u64,
    /// A source's batches recorded.
    pub recorded: u64,
    /// A channel takes more: its waiting and leased batches (its backlog) are under its limit
    /// (false: not-ready, upstream waits). A channel feeding a blocking unit, and every other
    /// node, is always ready.
    pub ready: bool,
    /// A unit that takes its whole input at once (it cannot be scaled).
    #[serde(default)]
    pub blocking: bool,
}

/// A line of a pipeline run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineLogLine {
    /// When (ms since epoch).
    pub at: i64,
    /// What happened.
    pub line: String,
}

/// A batch pushed to a pipeline's HTTP source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushedBatch {
    /// Its id (the one given, or one made for it).
    pub batch: String,
    /// False when a batch of that id was pushed before: nothing was written again.
    pub new: bool,
}
