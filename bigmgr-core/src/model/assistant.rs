//! The assistant's rows: model providers (OpenAI-compatible endpoints), chat threads and their
//! messages, and proposals — changes the assistant suggested that wait for their user.

use super::{ClusterId, MessageId, ProposalId, ThreadId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request an operator may run after confirming it: an advisor's suggested action, or what
/// a mutating assistant tool proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuggestedAction {
    /// What it does, for the operator.
    pub title: String,
    /// The HTTP method.
    pub method: String,
    /// The path under `/api/v1`.
    pub path: String,
    /// The JSON body, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub body: Option<Value>,
}

/// How a provider is reached, as an admin sets it (the key is written, never read back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Its name (`openai`, `local-ollama`).
    pub name: String,
    /// The base URL of its OpenAI-compatible API (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1`); `/chat/completions` is appended.
    pub base_url: String,
    /// The model to ask for.
    pub model: String,
    /// The API key; `None` keeps the stored one (or none).
    pub api_key: Option<String>,
    /// Whether it is the default provider (setting one clears the others').
    pub default: bool,
    /// How long an answer may take, in milliseconds.
    pub timeout_ms: u64,
}

/// A provider as stored and shown: never its key, only whether it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Provider {
    /// Its name.
    pub name: String,
    /// The base URL of its OpenAI-compatible API.
    pub base_url: String,
    /// The model asked for.
    pub model: String,
    /// Whether it is the default provider.
    pub default: bool,
    /// Whether an API key is stored for it.
    pub has_key: bool,
    /// How long an answer may take, in milliseconds.
    pub timeout_ms: u64,
    /// When it was last set.
    pub updated_at: i64,
}

/// A new chat thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewThread {
    /// Whose it is.
    pub user: UserId,
    /// The cluster it is about.
    pub cluster: ClusterId,
    /// Its title.
    pub title: String,
}

/// A chat thread: one user's conversation about one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thread {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: ThreadId,
    /// Whose it is (the user's id).
    #[serde(skip)]
    pub user_id: UserId,
    /// Whose it is (the user's name).
    pub user: String,
    /// The cluster it is about (by name).
    pub cluster: String,
    /// The cluster's id.
    #[serde(skip)]
    pub cluster_id: ClusterId,
    /// Its title.
    pub title: String,
    /// When it was created.
    pub created_at: i64,
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's answer to the model's call.
    Tool,
}

impl ChatRole {
    /// Its stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
            ChatRole::Tool => "tool",
        }
    }
}

impl std::str::FromStr for ChatRole {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<ChatRole> {
        match s {
            "user" => Ok(ChatRole::User),
            "assistant" => Ok(ChatRole::Assistant),
            "tool" => Ok(ChatRole::Tool),
            _ => Err(crate::Error::Invalid(format!(
                "'{s}' is not a chat role; expected user, assistant or tool"
            ))),
        }
    }
}

/// A tool the model called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolCall {
    /// The call's id, as the model named it.
    pub id: String,
    /// The tool.
    pub name: String,
    /// Its arguments.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub arguments: Value,
}

/// A message to add to a thread.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChatMessage {
    /// The thread.
    pub thread: ThreadId,
    /// Who said it.
    pub role: ChatRole,
    /// What it says (for a tool, its answer as sent to the model: redacted).
    pub content: String,
    /// The tools an assistant message called.
    pub tool_calls: Vec<ToolCall>,
    /// The call a tool message answers.
    pub tool_call_id: Option<String>,
}

/// A message of a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: MessageId,
    /// Who said it.
    pub role: ChatRole,
    /// What it says.
    pub content: String,
    /// The tools an assistant message called.
    pub tool_calls: Vec<ToolCall>,
    /// The call a tool message answers.
    pub tool_call_id: Option<String>,
    /// When.
    pub created_at: i64,
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProposalState {
    /// Waiting for its user.
    Pending,
    /// Confirmed, and its request ran.
    Confirmed,
    /// Confirmed, and its request was refused or failed.
    Failed,
    /// Rejected by its user: nothing ran.
    Rejected,
}

impl ProposalState {
    /// Its stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::Pending => "pending",
            ProposalState::Confirmed => "confirmed",
            ProposalState::Failed => "failed",
            ProposalState::Rejected => "rejected",
        }
    }
}

impl std::str::FromStr for ProposalState {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<ProposalState> {
        match s {
            "pending" => Ok(ProposalState::Pending),
            "confirmed" => Ok(ProposalState::Confirmed),
            "failed" => Ok(ProposalState::Failed),
            "rejected" => Ok(ProposalState::Rejected),
            _ => Err(crate::Error::Invalid(format!(
                "'{s}' is not a proposal state; expected pending, confirmed, failed or rejected"
            ))),
        }
    }
}

/// What a confirmed proposal's request answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalResult {
    /// The HTTP status.
    pub status: u16,
    /// The answer's body (JSON, or text when it was not JSON).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub body: Value,
}

/// A new proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProposal {
    /// The thread it was made in.
    pub thread: ThreadId,
    /// What it would do.
    pub title: String,
    /// The request it would run.
    pub action: SuggestedAction,
}

/// A change the assistant proposed: nothing runs until its user confirms it, and then it runs
/// as an ordinary request under that user's token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proposal {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: ProposalId,
    /// The thread it was made in.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub thread: ThreadId,
    /// What it would do.
    pub title: String,
    /// The request it runs when confirmed.
    pub action: SuggestedAction,
    /// Where it stands.
    pub state: ProposalState,
    /// What the request answered, once confirmed.
    pub result: Option<ProposalResult>,
    /// When it was made.
    pub created_at: i64,
    /// When its user confirmed or rejected it.
    pub decided_at: Option<i64>,
}
