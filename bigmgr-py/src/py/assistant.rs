//! The assistant's chat from Python: `Cluster.ask()` → an `Answer` once the answer ended,
//! `Cluster.ask_stream()` → its events as they stream (dicts), and `Proposal`s to `confirm()`
//! or `reject()`. Only a `Client` has it: an `Embedded` raises `bigmgr.Error` saying the chat
//! needs a server (`Embedded::no_chat`).

use super::records::Json;
use super::run;
use crate::backend::Backend;
use bigmgr_client::ChatStream;
use bigmgr_core::assistant::ChatEvent;
use bigmgr_core::model::Proposal;
use pyo3::prelude::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a wait for the next event checks for Python signals (Ctrl-C).
const SIGNALS: Duration = Duration::from_millis(200);

/// A change the assistant proposed: nothing runs until `confirm()`, which runs its request
/// on the server as the token's user (roles and audit as if sent by hand).
#[pyclass(frozen, module = "bigmgr", name = "Proposal")]
pub(crate) struct PyProposal {
    backend: Arc<dyn Backend>,
    /// Its id (`bigmgr assistant confirm ID`).
    #[pyo3(get)]
    id: i64,
    /// The thread it was made in.
    #[pyo3(get)]
    thread: i64,
    /// What it would do.
    #[pyo3(get)]
    title: String,
    /// The request it runs: `{"title", "method", "path", "body"}` (path under `/api/v1`).
    #[pyo3(get)]
    action: Json,
    /// `pending`, `confirmed`, `failed` or `rejected` (as of when this object was answered).
    #[pyo3(get)]
    state: String,
    /// What its request answered once confirmed: `{"status", "body"}`, else `None`.
    #[pyo3(get)]
    result: Json,
    /// When it was made (ms since the epoch).
    #[pyo3(get)]
    created_at: i64,
    /// When it was confirmed or rejected.
    #[pyo3(get)]
    decided_at: Option<i64>,
}

impl PyProposal {
    pub(crate) fn new(backend: Arc<dyn Backend>, p: &Proposal) -> PyProposal {
        PyProposal {
            backend,
            id: p.id.0,
            thread: p.thread.0,
            title: p.title.clone(),
            action: Json::of(&p.action),
            state: p.state.as_str().to_string(),
            result: Json::of(&p.result),
            created_at: p.created_at,
            decided_at: p.decided_at,
        }
    }
}

#[pymethods]
impl PyProposal {
    /// Runs its request on the server as you; returns the proposal as it is now
    /// (`confirmed`, or `failed` with the refusal in `result`). `Conflict` if it was decided
    /// already: a proposal runs once.
    fn confirm(&self, py: Python<'_>) -> PyResult<PyProposal> {
        let p = run(py, self.backend.confirm_proposal(self.id))?;
        Ok(PyProposal::new(self.backend.clone(), &p))
    }

    /// Rejects it: nothing runs. Returns the proposal as it is now.
    fn reject(&self, py: Python<'_>) -> PyResult<PyProposal> {
        let p = run(py, self.backend.reject_proposal(self.id))?;
        Ok(PyProposal::new(self.backend.clone(), &p))
    }

    fn __repr__(&self) -> String {
        format!("<Proposal {} {}: {}>", self.id, self.state, self.title)
    }
}

/// The assistant's whole answer to one question, once it ended.
#[pyclass(frozen, module = "bigmgr", name = "Answer")]
pub(crate) struct PyAnswer {
    /// The thread it is in (`ask(..., thread=answer.thread)` goes on in it).
    #[pyo3(get)]
    thread: i64,
    /// The answer's text, as streamed.
    #[pyo3(get)]
    text: String,
    /// The tools it called, in order: dicts with `id`, `name`, `arguments`, and once they
    /// answered `ok` and `content` (redacted, as the model got it).
    #[pyo3(get)]
    tool_calls: Vec<Json>,
    proposals: Vec<Py<PyProposal>>,
    /// Why the answer failed (the provider failed, timed out or answered garbage), else `None`.
    #[pyo3(get)]
    error: Option<String>,
    /// The stored assistant message's id, when it completed.
    #[pyo3(get)]
    message: Option<i64>,
}

#[pymethods]
impl PyAnswer {
    /// What it proposed (`Proposal`s, pending until you `confirm()` or `reject()` them).
    #[getter]
    fn proposals(&self, py: Python<'_>) -> Vec<Py<PyProposal>> {
        self.proposals.iter().map(|p| p.clone_ref(py)).collect()
    }

    fn __str__(&self) -> String {
        self.text.clone()
    }

    fn __repr__(&self) -> String {
        let what = match &self.error {
            Some(e) => format!("error: {e}"),
            None => format!("{} chars", self.text.chars().count()),
        };
        format!(
            "<Answer in thread {}: {what}, {} tool calls, {} proposals>",
            self.thread,
            self.tool_calls.len(),
            self.proposals.len()
        )
    }
}

/// The events of an answer as they stream (`Cluster.ask_stream()`): dicts
/// `{"event": "token"|"tool_call"|"tool_result"|"proposal"|"done"|"error", "data": {...}}`,
/// ending after `done` or `error`. Dropping it (or Ctrl-C) cancels the answer.
#[pyclass(module = "bigmgr", name = "AnswerStream")]
pub(crate) struct PyAnswerStream {
    /// The thread the answer is in.
    #[pyo3(get)]
    thread: i64,
    rx: Mutex<Option<ChatStream>>,
}

#[pymethods]
impl PyAnswerStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut slot = self.rx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(rx) = slot.as_mut() else {
            return Ok(None);
        };
        match recv(py, rx) {
            Ok(Some(e)) => {
                let v = json!({"event": e.name(), "data": e.data()});
                Ok(Some(super::to_py(py, &v)?))
            }
            Ok(None) => {
                *slot = None;
                Ok(None)
            }
            Err(e) => {
                *slot = None;
                Err(e)
            }
        }
    }

    fn __repr__(&self) -> String {
        format!("<AnswerStream in thread {}>", self.thread)
    }
}

/// The next event of `rx` with the GIL released, checking for signals; `None` once it ended.
fn recv(py: Python<'_>, rx: &mut ChatStream) -> PyResult<Option<ChatEvent>> {
    loop {
        let got = py.detach(|| {
            crate::runtime().block_on(async { tokio::time::timeout(SIGNALS, rx.recv()).await })
        });
        match got {
            Ok(Some(Ok(e))) => return Ok(Some(e)),
            Ok(Some(Err(e))) => return Err(crate::error::Error::from(e).into()),
            Ok(None) => return Ok(None),
            Err(_) => py.check_signals()?,
        }
    }
}

/// Starts an answer: in `thread`, or a new thread about `cluster`. The thread and the stream.
pub(crate) fn start(
    py: Python<'_>,
    backend: &Arc<dyn Backend>,
    cluster: &str,
    question: &str,
    thread: Option<i64>,
    provider: Option<&str>,
) -> PyResult<(i64, ChatStream)> {
    run(py, async {
        let thread = match thread {
            Some(t) => t,
            None => backend.create_thread(cluster).await?.id.0,
        };
        Ok((thread, backend.ask(thread, question, provider).await?))
    })
}

/// The stream of an answer, as `ask_stream` gives it.
pub(crate) fn stream(thread: i64, rx: ChatStream) -> PyAnswerStream {
    PyAnswerStream {
        thread,
        rx: Mutex::new(Some(rx)),
    }
}

/// Reads an answer to its end.
pub(crate) fn collect(
    py: Python<'_>,
    backend: &Arc<dyn Backend>,
    thread: i64,
    mut rx: ChatStream,
) -> PyResult<PyAnswer> {
    let mut answer = PyAnswer {
        thread,
        text: String::new(),
        tool_calls: Vec::new(),
        proposals: Vec::new(),
        error: None,
        message: None,
    };
    let mut calls: Vec<Value> = Vec::new();
    while let Some(event) = recv(py, &mut rx)? {
        match event {
            ChatEvent::Token { text } => answer.text.push_str(&text),
            ChatEvent::ToolCall(c) => calls.push(json!({
                "id": c.id, "name": c.name, "arguments": c.arguments,
            })),
            ChatEvent::ToolResult {
                id,
                name,
                ok,
                content,
            } => match calls.iter_mut().rev().find(|c| c["id"] == id.as_str()) {
                Some(c) => {
                    c["ok"] = Value::Bool(ok);
                    c["content"] = content;
                }
                None => calls.push(json!({
                    "id": id, "name": name, "arguments": null, "ok": ok, "content": content,
                })),
            },
            ChatEvent::Proposal(p) => answer
                .proposals
                .push(Py::new(py, PyProposal::new(backend.clone(), &p))?),
            ChatEvent::Done { message } => answer.message = Some(message.0),
            ChatEvent::Error { title, detail } => answer.error = Some(format!("{title}: {detail}")),
        }
    }
    answer.tool_calls = calls.iter().map(Json::of).collect();
    Ok(answer)
}
