//! The assistant's read models: a thread with its messages and proposals, and the tools a
//! caller may use.

use crate::model::{ChatMessage, Proposal, Thread};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A thread with its messages and proposals (`GET /assistant/threads/{thread}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadView {
    /// The thread.
    pub thread: Thread,
    /// Its messages, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Its proposals, oldest first.
    pub proposals: Vec<Proposal>,
}

/// A tool of the registry, as `GET /assistant/tools` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolView {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// Its parameters (a JSON Schema).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: Value,
    /// Whether it would change something (and so only proposes).
    pub mutating: bool,
}

impl ToolView {
    /// The view of a registry entry.
    pub fn of(t: &crate::assistant::tools::ToolSpec) -> ToolView {
        ToolView {
            name: t.name.into(),
            description: t.description.into(),
            parameters: t.schema(),
            mutating: t.mutating,
        }
    }
}
