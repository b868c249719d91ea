//! Pipelines as stored: a checked definition (docs/pipelines.md) and its state.

use super::{BatchState, ClusterId, PipelineId, PipelineState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A pipeline of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Its id.
    pub id: PipelineId,
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its name, unique among the cluster's pipelines.
    pub name: String,
    /// Who created it.
    pub author: String,
    /// When (ms since epoch).
    pub created_at: i64,
    /// Its definition, as written (TOML).
    pub definition: String,
    /// Where it is in its life.
    pub state: PipelineState,
    /// What its run last said: why it failed, or how it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The replicas its units were scaled to, over what the definition says.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas: BTreeMap<String, u32>,
}

/// What a new pipeline holds (its definition checked first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPipeline {
    /// Its cluster.
    pub cluster: ClusterId,
    /// Its name.
    pub name: String,
    /// Who creates it.
    pub author: String,
    /// Its definition (TOML).
    pub definition: String,
}

/// A batch at one node of a pipeline, as the metastore records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineBatch {
    /// Its pipeline.
    pub pipeline: PipelineId,
    /// The node that holds it (a channel, or a sink).
    pub node: String,
    /// Its id, the same however often it is computed (`<source batch>/<derivation>`).
    pub batch: String,
    /// RECEIVED, PROCESSED or CLEAN.
    pub state: BatchState,
    /// Where its data is (`<host>:<path>`).
    pub location: String,
    /// The replica processing it, while its lease lasts.
    pub lease_holder: Option<String>,
    /// Until when (ms since epoch) that lease lasts.
    pub lease_until: Option<i64>,
    /// How often it was leased.
    pub attempts: u32,
    /// When its state or lease last changed (ms since epoch).
    pub updated_at: i64,
}

/// A batch arriving at a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    /// The node.
    pub node: String,
    /// Its id.
    pub batch: String,
    /// Where its data is.
    pub location: String,
}
