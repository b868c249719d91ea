//! OpenAI-compatible chat completions: what a provider's settings may be, the request bigmgr
//! sends (`POST {base_url}/chat/completions`, `stream: true`, tools), and reading the streamed
//! answer — server-sent events whose `data:` is a `chat.completion.chunk` — into text tokens
//! and tool calls. The one provider type covers OpenAI, DeepSeek, Qwen's compatible mode,
//! vLLM, Ollama and llama.cpp's server.

use crate::model::{ProviderSettings, ToolCall};
use crate::{Error, Result};
use serde_json::{Value, json};
use std::time::Duration;

/// The longest base URL, model name or API key accepted.
const MAX_SETTING: usize = 2048;
/// The shortest and longest answer time a provider may be given (ms).
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1_000..=600_000;
/// The default answer time (ms).
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// The largest server-sent event accepted from a provider (bytes).
const MAX_EVENT: usize = 1 << 20;

/// Checks a provider's settings where they enter core: a name, an `http(s)://` base URL
/// without credentials, a model name and key without control characters, a timeout in
/// [`TIMEOUT_RANGE`].
pub fn check_settings(s: &ProviderSettings) -> Result<()> {
    crate::name::check_name("provider", &s.name)?;
    let url = s.base_url.as_str();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            Error::invalid_field(
                "base_url",
                format!("'{url}' is not an http:// or https:// URL"),
            )
        })?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || url.len() > MAX_SETTING {
        return Err(Error::invalid_field(
            "base_url",
            "give the API's base URL with a host and no user or password, such as \
             https://api.openai.com/v1 or http://127.0.0.1:11434/v1 (the key goes in api_key)",
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid_field(
            "base_url",
            "the URL contains spaces or control characters",
        ));
    }
    if s.model.is_empty() || s.model.len() > MAX_SETTING || s.model.chars().any(char::is_control) {
        return Err(Error::invalid_field(
            "model",
            "give the model's name (such as gpt-4o-mini or qwen2.5:7b), without control \
             characters",
        ));
    }
    if let Some(k) = &s.api_key
        && (k.is_empty() || k.len() > MAX_SETTING || k.chars().any(|c| c.is_control()))
    {
        return Err(Error::invalid_field(
            "api_key",
            "the key is empty, too long or contains control characters",
        ));
    }
    if !TIMEOUT_RANGE.contains(&s.timeout_ms) {
        return Err(Error::invalid_field(
            "timeout_ms",
            format!(
                "give between {} and {} ms",
                TIMEOUT_RANGE.start(),
                TIMEOUT_RANGE.end()
            ),
        ));
    }
    Ok(())
}

/// One message as the chat-completions API takes it.
#[derive(Debug, Clone, PartialEq)]
pub enum WireMessage {
    /// The system prompt.
    System(String),
    /// What the user said.
    User(String),
    /// What the model said, with the tools it called.
    Assistant {
        /// Its text.
        content: String,
        /// Its tool calls.
        tool_calls: Vec<ToolCall>,
    },
    /// A tool's answer to a call.
    Tool {
        /// The call it answers.
        call: String,
        /// The answer.
        content: String,
    },
}

impl WireMessage {
    /// The text it carries, for redaction.
    pub fn text_mut(&mut self) -> Vec<&mut String> {
        match self {
            WireMessage::System(t) | WireMessage::User(t) => vec![t],
            WireMessage::Assistant { content, .. } => vec![content],
            WireMessage::Tool { content, .. } => vec![content],
        }
    }

    fn to_json(&self) -> Value {
        match self {
            WireMessage::System(t) => json!({"role": "system", "content": t}),
            WireMessage::User(t) => json!({"role": "user", "content": t}),
            WireMessage::Assistant {
                content,
                tool_calls,
            } if !tool_calls.is_empty() => json!({
                "role": "assistant",
                "content": content,
                "tool_calls": tool_calls.iter().map(|c| json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()},
                })).collect::<Vec<_>>(),
            }),
            WireMessage::Assistant { content, .. } => {
                json!({"role": "assistant", "content": content})
            }
            WireMessage::Tool { call, content } => {
                json!({"role": "tool", "tool_call_id": call, "content": content})
            }
        }
    }
}

/// The body of a streamed chat-completions request.
pub fn request_body(model: &str, messages: &[WireMessage], tools: &[Value]) -> Value {
    let mut body = json!({
        "model": model,
        "stream": true,
        "messages": messages.iter().map(WireMessage::to_json).collect::<Vec<_>>(),
    });
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools.to_vec());
        body["tool_choice"] = json!("auto");
    }
    body
}

/// Splits a byte stream of server-sent events into their `data` (multi-line data joined by
/// newlines); comments and other fields are skipped.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds bytes; returns the data of every event they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line)
                .map_err(|_| Error::Provider("the stream is not UTF-8 text".into()))?;
            if line.is_empty() {
                if let Some(d) = self.data.take() {
                    out.push(d);
                }
            } else if let Some(d) = line.strip_prefix("data:") {
                let d = d.strip_prefix(' ').unwrap_or(d);
                match &mut self.data {
                    Some(acc) => {
                        acc.push('\n');
                        acc.push_str(d);
                    }
                    None => self.data = Some(d.to_string()),
                }
            }
            if self.data.as_ref().is_some_and(|d| d.len() > MAX_EVENT) {
                return Err(Error::Provider(format!(
                    "an event of the stream is larger than {MAX_EVENT} bytes"
                )));
            }
        }
        if self.buf.len() > MAX_EVENT {
            return Err(Error::Provider(format!(
                "a line of the stream is longer than {MAX_EVENT} bytes"
            )));
        }
        Ok(out)
    }

    /// The data of an event the stream ended without a blank line after.
    pub fn finish(&mut self) -> Option<String> {
        self.data.take()
    }
}

/// The answer being assembled from a stream's chunks: its text and its tool calls (whose
/// names and arguments arrive in pieces, by index).
#[derive(Debug, Default)]
pub struct Answer {
    /// The text so far.
    pub content: String,
    calls: Vec<(String, String, String)>,
    /// Whether the stream said it was done (`[DONE]`, or a `finish_reason`).
    pub done: bool,
}

impl Answer {
    /// Applies one event's data; returns the text it adds, if any. Anything that is not a
    /// chat-completion chunk is [`Error::Provider`] quoting (the start of) what came.
    pub fn apply(&mut self, data: &str) -> Result<Option<String>> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let chunk: Value = serde_json::from_str(data).map_err(|_| garbage(data))?;
        if let Some(e) = chunk.get("error") {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_string);
            return Err(Error::Provider(format!(
                "the provider answered an error: {msg}"
            )));
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .map(|c| c.first())
        else {
            return Err(garbage(data));
        };
        let Some(choice) = choice else {
            return Ok(None);
        };
        if choice.get("finish_reason").is_some_and(|r| !r.is_null()) {
            self.done = true;
        }
        // A streamed chunk has `delta`; a server that ignored `stream` answers `message`.
        let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) else {
            return Ok(None);
        };
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (n, call) in calls.iter().enumerate() {
                let index = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(n, |i| i as usize);
                if index > 64 {
                    return Err(Error::Provider(
                        "more than 64 tool calls in one answer".into(),
                    ));
                }
                while self.calls.len() <= index {
                    self.calls.push(Default::default());
                }
                let slot = &mut self.calls[index];
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    slot.0 = id.to_string();
                }
                let f = call.get("function");
                if let Some(name) = f.and_then(|f| f.get("name")).and_then(Value::as_str) {
                    slot.1.push_str(name);
                }
                if let Some(args) = f.and_then(|f| f.get("arguments")) {
                    match args {
                        Value::String(s) => slot.2.push_str(s),
                        Value::Null => {}
                        other => slot.2.push_str(&other.to_string()),
                    }
                }
            }
        }
        match delta.get("content") {
            Some(Value::String(t)) if !t.is_empty() => {
                self.content.push_str(t);
                Ok(Some(t.clone()))
            }
            _ => Ok(None),
        }
    }

    /// The tool calls, complete: arguments parsed as a JSON object (empty text is `{}`); a
    /// call without an id gets one.
    pub fn tool_calls(&self) -> Result<Vec<ToolCall>> {
        self.calls
            .iter()
            .enumerate()
            .filter(|(_, (_, name, _))| !name.is_empty())
            .map(|(n, (id, name, args))| {
                let arguments = if args.trim().is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(args).map_err(|_| {
                        Error::Provider(format!(
                            "the model called {name} with arguments that are not JSON: {}",
                            clip(args, 200)
                        ))
                    })?
                };
                Ok(ToolCall {
                    id: if id.is_empty() {
                        format!("call_{n}")
                    } else {
                        id.clone()
                    },
                    name: name.clone(),
                    arguments,
                })
            })
            .collect()
    }
}

fn garbage(data: &str) -> Error {
    Error::Provider(format!(
        "the provider answered something that is not an OpenAI-compatible chat completion \
         chunk: {}",
        clip(data, 200)
    ))
}

/// At most `max` bytes of `s` (on a character boundary), marked when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Sends a chat-completions request and reads the streamed answer, calling `on_token` with
/// each piece of text as it arrives. The whole answer must come within `timeout`. A non-2xx
/// status is [`Error::Provider`] with the status and (the start of) the body.
pub async fn complete(
    client: &reqwest::Client,
    base_url: &str,
    api_key: Option<&str>,
    body: &Value,
    timeout: Duration,
    mut on_token: impl FnMut(String) -> bool,
) -> Result<Answer> {
    let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
    let run =
        async {
            let mut req = client.post(&url).json(body);
            if let Some(k) = api_key {
                req = req.bearer_auth(k);
            }
            let mut res = req
                .send()
                .await
                .map_err(|e| Error::Provider(format!("cannot reach {url}: {}", short(&e))))?;
            let status = res.status();
            if !status.is_success() {
                let text = res.text().await.unwrap_or_default();
                return Err(Error::Provider(format!(
                    "{url} answered {status}: {}",
                    clip(&text, 300)
                )));
            }
            let mut sse = SseDecoder::default();
            let mut answer = Answer::default();
            while let Some(bytes) = res.chunk().await.map_err(|e| {
                Error::Provider(format!("the stream from {url} broke: {}", short(&e)))
            })? {
                for data in sse.feed(&bytes)? {
                    if let Some(t) = answer.apply(&data)?
                        && !on_token(t)
                    {
                        return Ok(answer);
                    }
                }
            }
            if let Some(data) = sse.finish()
                && let Some(t) = answer.apply(&data)?
            {
                on_token(t);
            }
            if !answer.done && answer.content.is_empty() && answer.calls.is_empty() {
                return Err(Error::Provider(format!(
                    "{url} ended its answer without saying anything"
                )));
            }
            Ok(answer)
        };
    tokio::time::timeout(timeout, run).await.map_err(|_| {
        Error::Provider(format!(
            "{url} did not answer within {} s (the provider's timeout_ms)",
            timeout.as_secs()
        ))
    })?
}

/// A reqwest error without the URL it repeats.
fn short(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ProviderSettings {
        ProviderSettings {
            name: "local".into(),
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: "qwen2.5:7b".into(),
            api_key: Some("sk-test".into()),
            default: true,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    #[test]
    fn settings_are_checked() {
        check_settings(&settings()).unwrap();
        for (bad, field) in [
            (
                ProviderSettings {
                    base_url: "ftp://x".into(),
                    ..settings()
                },
                "base_url",
            ),
            (
                ProviderSettings {
                    base_url: "https://user:pw@x/v1".into(),
                    ..settings()
                },
                "base_url",
            ),
            (
                ProviderSettings {
                    model: "".into(),
                    ..settings()
                },
                "model",
            ),
            (
                ProviderSettings {
                    api_key: Some("a\nb".into()),
                    ..settings()
                },
                "api_key",
            ),
            (
                ProviderSettings {
                    timeout_ms: 5,
                    ..settings()
                },
                "timeout_ms",
            ),
        ] {
            let e = check_settings(&bad).unwrap_err();
            assert_eq!(e.field().as_deref(), Some(field), "{e}");
        }
    }

    #[test]
    fn events_split_across_chunks_are_joined() {
        let mut d = SseDecoder::default();
        assert!(d.feed(b"data: {\"a\":").unwrap().is_empty());
        assert_eq!(
            d.feed(b"1}\r\n\r\ndata: x\ndata: y\n\n: c\n\n").unwrap(),
            ["{\"a\":1}", "x\ny"]
        );
        assert!(d.feed(&vec![b'a'; MAX_EVENT + 1]).is_err());
    }

    #[test]
    fn tokens_and_tool_calls_are_assembled() {
        let mut a = Answer::default();
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"list_hosts","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"cluster\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"c\"}"}}]},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ];
        let tokens: Vec<_> = chunks.iter().filter_map(|c| a.apply(c).unwrap()).collect();
        assert_eq!(tokens, ["Hel", "lo"]);
        assert!(a.done);
        assert_eq!(a.content, "Hello");
        let calls = a.tool_calls().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].id, "c1");
        assert_eq!(calls[0].name, "list_hosts");
        assert_eq!(calls[0].arguments, json!({"cluster": "c"}));
    }

    #[test]
    fn garbage_and_errors_are_provider_errors() {
        let mut a = Answer::default();
        let e = a.apply("<html>bad gateway</html>").unwrap_err();
        assert!(e.to_string().contains("not an OpenAI-compatible"), "{e}");
        let e = a
            .apply(r#"{"error":{"message":"invalid api key"}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("invalid api key"), "{e}");
        let e = a.apply(r#"{"hello":1}"#).unwrap_err();
        assert!(matches!(e, Error::Provider(_)));
        let mut a = Answer::default();
        a.apply(r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"f","arguments":"{not json"}}]}}]}"#)
            .unwrap();
        assert!(a.tool_calls().is_err());
    }

    #[test]
    fn requests_carry_tools_and_tool_results() {
        let body = request_body(
            "m",
            &[
                WireMessage::System("s".into()),
                WireMessage::User("u".into()),
                WireMessage::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "list_hosts".into(),
                        arguments: json!({"cluster": "c"}),
                    }],
                },
                WireMessage::Tool {
                    call: "c1".into(),
                    content: "[]".into(),
                },
            ],
            &[json!({"type": "function"})],
        );
        assert_eq!(body["stream"], true);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"cluster\":\"c\"}"
        );
        assert_eq!(body["messages"][3]["tool_call_id"], "c1");
        assert_eq!(body["tools"].as_array().unwrap().len(), 1);
    }
}
