//! `/assistant/…`: the assistant's chat — model providers, the tool registry, the caller's
//! threads, questions answered as a stream of [`ChatEvent`]s, and proposals confirmed or
//! rejected (docs/assistant.md, "The chat (REST contract)").

use crate::events::Parser;
use crate::http::seg;
use crate::{Client, Error, Result};
use bigmgr_core::assistant::ChatEvent;
use bigmgr_core::model::{MessageId, Proposal, ProposalId, Provider, Thread, ThreadId, ToolCall};
pub use bigmgr_core::request::SetProvider;
use bigmgr_core::request::{Ask, CreateThread};
pub use bigmgr_core::view::{ThreadView, ToolView};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

/// The events of one answer as they arrive: each [`ChatEvent`] in order, the channel closing
/// after `done` or `error`; a broken stream is an `Err` (and the last item).
pub type ChatStream = mpsc::Receiver<Result<ChatEvent>>;

impl Client {
    /// The model providers (never their keys).
    pub async fn providers(&self) -> Result<Vec<Provider>> {
        self.list("/assistant/providers").await
    }

    /// Creates or replaces provider `name` (admins) → the provider as stored.
    pub async fn set_provider(&self, name: &str, body: &SetProvider) -> Result<Provider> {
        self.put(&format!("/assistant/providers/{}", seg(name)), body)
            .await
    }

    /// Removes provider `name` (admins).
    pub async fn remove_provider(&self, name: &str) -> Result<()> {
        self.delete(&format!("/assistant/providers/{}", seg(name)))
            .await
    }

    /// The tools the caller's role may use.
    pub async fn tools(&self) -> Result<Vec<ToolView>> {
        self.list("/assistant/tools").await
    }

    /// The caller's threads, newest first.
    pub async fn threads(&self) -> Result<Vec<Thread>> {
        self.list("/assistant/threads").await
    }

    /// A new thread of the caller's about `cluster` (title default "about <cluster>").
    pub async fn create_thread(&self, cluster: &str, title: Option<&str>) -> Result<Thread> {
        let body = CreateThread {
            cluster: cluster.to_string(),
            title: title.map(str::to_string),
        };
        self.post("/assistant/threads", &body).await
    }

    /// One of the caller's threads with its messages and proposals.
    pub async fn thread(&self, id: ThreadId) -> Result<ThreadView> {
        self.get(&format!("/assistant/threads/{id}")).await
    }

    /// Asks `content` in thread `thread` (of `provider`, default the default one): the
    /// answer's events as they stream. A refusal before the stream starts (no such thread, no
    /// provider, an empty question) is an error at once. Dropping the receiver closes the
    /// connection, which cancels the answer on the server.
    pub async fn ask(
        &self,
        thread: ThreadId,
        content: &str,
        provider: Option<&str>,
    ) -> Result<ChatStream> {
        let what = format!("POST /assistant/threads/{thread}/messages");
        let body = Ask {
            content: content.to_string(),
            provider: provider.map(str::to_string),
        };
        let req = self
            .unbounded(
                Method::POST,
                &format!("/assistant/threads/{thread}/messages"),
            )
            .json(&body);
        let mut res = self.open_stream(req, &what).await?;
        let (tx, rx) = mpsc::channel(256);
        let client = self.clone();
        tokio::spawn(async move {
            let mut parser = Parser::default();
            loop {
                let chunk = tokio::select! {
                    c = res.chunk() => c,
                    () = tx.closed() => return,
                };
                let chunk = match chunk {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        let _ = tx
                            .send(Err(Error::Http(format!(
                                "{what}: the answer's stream ended before `done` or `error`"
                            ))))
                            .await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(client.transport_error(&what, e))).await;
                        return;
                    }
                };
                for (name, data) in parser.feed(&chunk) {
                    let event = match parse_event(&name, &data) {
                        None => continue,
                        Some(Ok(e)) => Ok(e),
                        Some(Err(e)) => Err(Error::Http(format!(
                            "{what}: a `{name}` event has an unexpected shape ({e})"
                        ))),
                    };
                    let last = !matches!(
                        event,
                        Ok(ref e) if !matches!(e, ChatEvent::Done { .. } | ChatEvent::Error { .. })
                    );
                    if tx.send(event).await.is_err() || last {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Confirms one of the caller's pending proposals: its request runs on the server under
    /// the caller's token → the proposal, `confirmed` or `failed`, with what the request
    /// answered.
    pub async fn confirm_proposal(&self, id: ProposalId) -> Result<Proposal> {
        self.post(
            &format!("/assistant/proposals/{id}/confirm"),
            &serde_json::json!({}),
        )
        .await
    }

    /// Rejects one of the caller's pending proposals: nothing runs.
    pub async fn reject_proposal(&self, id: ProposalId) -> Result<Proposal> {
        self.post(
            &format!("/assistant/proposals/{id}/reject"),
            &serde_json::json!({}),
        )
        .await
    }
}

/// An event of an answer's stream read from its SSE name and data; `None` for a name this
/// client does not know (a newer server's), which is skipped.
pub fn parse_event(name: &str, data: &str) -> Option<serde_json::Result<ChatEvent>> {
    #[derive(Deserialize)]
    struct Token {
        text: String,
    }
    #[derive(Deserialize)]
    struct ToolResult {
        id: String,
        name: String,
        ok: bool,
        #[serde(default)]
        content: Value,
    }
    #[derive(Deserialize)]
    struct Done {
        message: MessageId,
    }
    #[derive(Deserialize)]
    struct Failed {
        title: String,
        detail: String,
    }
    let read = || -> serde_json::Result<ChatEvent> {
        Ok(match name {
            "token" => ChatEvent::Token {
                text: serde_json::from_str::<Token>(data)?.text,
            },
            "tool_call" => ChatEvent::ToolCall(serde_json::from_str::<ToolCall>(data)?),
            "tool_result" => {
                let r: ToolResult = serde_json::from_str(data)?;
                ChatEvent::ToolResult {
                    id: r.id,
                    name: r.name,
                    ok: r.ok,
                    content: r.content,
                }
            }
            "proposal" => ChatEvent::Proposal(serde_json::from_str::<Proposal>(data)?),
            "done" => ChatEvent::Done {
                message: serde_json::from_str::<Done>(data)?.message,
            },
            _ => {
                let f: Failed = serde_json::from_str(data)?;
                ChatEvent::Error {
                    title: f.title,
                    detail: f.detail,
                }
            }
        })
    };
    match name {
        "token" | "tool_call" | "tool_result" | "proposal" | "done" | "error" => Some(read()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_event_the_server_sends_reads_back_as_itself() {
        let proposal = json!({"id": 7, "thread": 3, "title": "install v",
            "action": {"title": "install v", "method": "POST", "path": "/clusters/c/jobs",
                       "body": {"command": "install"}},
            "state": "pending", "result": null, "created_at": 1, "decided_at": null});
        let events = [
            ChatEvent::Token { text: "hi".into() },
            ChatEvent::ToolCall(ToolCall {
                id: "c1".into(),
                name: "task_log".into(),
                arguments: json!({"job": 1}),
            }),
            ChatEvent::ToolResult {
                id: "c1".into(),
                name: "task_log".into(),
                ok: true,
                content: json!({"lines": []}),
            },
            ChatEvent::Proposal(serde_json::from_value(proposal).unwrap()),
            ChatEvent::Done {
                message: MessageId(9),
            },
            ChatEvent::Error {
                title: "the model provider failed".into(),
                detail: "401".into(),
            },
        ];
        for e in events {
            let back = parse_event(e.name(), &e.data().to_string())
                .unwrap()
                .unwrap();
            assert_eq!(back, e);
        }
        // An incomplete event is an error, not a wrong event.
        assert!(parse_event("proposal", "{\"id\": 1}").unwrap().is_err());
        assert!(parse_event("token", "not json").unwrap().is_err());
    }

    #[test]
    fn unknown_events_are_skipped_and_keys_never_shown() {
        assert!(parse_event("ping", "{}").is_none());
        let body = SetProvider {
            base_url: "http://m/v1".into(),
            model: "m".into(),
            api_key: Some("sk-secret".into()),
            ..SetProvider::default()
        };
        assert!(!format!("{body:?}").contains("sk-secret"));
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["api_key"], "sk-secret");
        assert!(json.get("timeout_ms").is_none());
    }
}
