//! The assistant's chat (`/assistant/…`, docs/assistant.md): model providers (admins set them;
//! keys are write-only), the caller's threads, questions answered as Server-Sent Events, the
//! tool registry, and proposals — which run only when their user confirms them, as an
//! ordinary request of this API under the user's own token (so roles and the audit log apply
//! exactly as if the user had sent it).

use super::auth::Caller;
use super::error::{ApiError, ApiResult, Json, Path};
use super::{AppState, created};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bigmgr_core::assistant::ChatEvent;
use bigmgr_core::assistant::provider::DEFAULT_TIMEOUT_MS;
use bigmgr_core::model::{
    Proposal, ProposalId, ProposalResult, Provider, ProviderSettings, Thread, ThreadId,
};
use bigmgr_core::request::{Ask, CreateThread, SetProvider};
use bigmgr_core::view::{ThreadView, ToolView};
use serde::Deserialize;
use serde_json::Value;
use std::convert::Infallible;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tower::ServiceExt;
use utoipa::IntoParams;

/// `/assistant/providers/{name}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProviderPath {
    /// The provider's name
    pub name: String,
}

/// `/assistant/threads/{thread}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ThreadPath {
    /// The thread's id
    pub thread: i64,
}

/// `/assistant/proposals/{proposal}`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProposalPath {
    /// The proposal's id
    pub proposal: i64,
}

/// `GET /assistant/providers` → the providers, never their keys.
#[utoipa::path(get, path = "/assistant/providers", tag = "assistant",
    responses((status = 200, description = "The providers, by name", body = Vec<Provider>)))]
pub async fn providers(State(s): State<AppState>) -> ApiResult<Json<Vec<Provider>>> {
    Ok(Json(s.mgr.providers().await?))
}

/// `PUT /assistant/providers/{name}` → the provider, created or replaced (admins).
#[utoipa::path(put, path = "/assistant/providers/{name}", tag = "assistant",
    params(ProviderPath),
    request_body = SetProvider,
    responses(
        (status = 200, description = "The provider as set (without its key)", body = Provider),
        (status = 403, description = "Only admins set providers"),
        (status = 422, description = "A setting is not valid; `field` names it"),
    ))]
pub async fn set_provider(
    c: Caller,
    Path(p): Path<ProviderPath>,
    Json(body): Json<SetProvider>,
) -> ApiResult<Json<Provider>> {
    let set = c
        .acting()
        .set_provider(ProviderSettings {
            name: p.name,
            base_url: body.base_url,
            model: body.model,
            api_key: body.api_key,
            default: body.default,
            timeout_ms: body.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        })
        .await?;
    Ok(Json(set))
}

remove_routes! {
    /// `DELETE /assistant/providers/{name}` → 204 (admins).
    remove_provider("/assistant/providers/{name}", "assistant", ProviderPath):
        204: "Removed", 404: "No such provider",
        |a, p| a.remove_provider(&p.name);
}

/// `GET /assistant/tools` → the tools the caller's role may use.
#[utoipa::path(get, path = "/assistant/tools", tag = "assistant",
    responses((status = 200, description = "The tools, with their parameters", body = Vec<ToolView>)))]
pub async fn tools(c: Caller) -> Json<Vec<ToolView>> {
    Json(c.acting().tools().into_iter().map(ToolView::of).collect())
}

/// `GET /assistant/threads` → the caller's threads, newest first.
#[utoipa::path(get, path = "/assistant/threads", tag = "assistant",
    responses((status = 200, description = "The caller's threads", body = Vec<Thread>)))]
pub async fn threads(c: Caller) -> ApiResult<Json<Vec<Thread>>> {
    Ok(Json(c.acting().threads().await?))
}

/// `POST /assistant/threads` → 201 a new thread of the caller's about a cluster.
#[utoipa::path(post, path = "/assistant/threads", tag = "assistant",
    request_body = CreateThread,
    responses(
        (status = 201, description = "The new thread", body = Thread),
        (status = 404, description = "No such cluster"),
    ))]
pub async fn create_thread(c: Caller, Json(body): Json<CreateThread>) -> ApiResult<Response> {
    let t = c
        .acting()
        .create_thread(&body.cluster, body.title.as_deref())
        .await?;
    Ok(created(
        format!("{}/assistant/threads/{}", super::PREFIX, t.id),
        t,
    ))
}

/// `GET /assistant/threads/{thread}` → one of the caller's threads with its messages and
/// proposals (another user's is 404).
#[utoipa::path(get, path = "/assistant/threads/{thread}", tag = "assistant",
    params(ThreadPath),
    responses(
        (status = 200, description = "The thread", body = ThreadView),
        (status = 404, description = "No such thread of the caller's"),
    ))]
pub async fn thread(c: Caller, Path(p): Path<ThreadPath>) -> ApiResult<Json<ThreadView>> {
    let acting = c.acting();
    let thread = acting.thread(ThreadId(p.thread)).await?;
    let (messages, proposals) = acting.thread_contents(thread.id).await?;
    Ok(Json(ThreadView {
        thread,
        messages,
        proposals,
    }))
}

/// `POST /assistant/threads/{thread}/messages` → the answer as `text/event-stream`. Closing
/// the connection cancels it.
#[utoipa::path(post, path = "/assistant/threads/{thread}/messages", tag = "assistant",
    params(ThreadPath),
    request_body = Ask,
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "Server-Sent Events: `token` ({text}), `tool_call` ({id, name, arguments}), \
                `tool_result` ({id, name, ok, content}), `proposal` (Proposal), then `done` ({message}) or \
                `error` ({title, detail})"),
        (status = 404, description = "No such thread of the caller's, or no such provider"),
        (status = 409, description = "No model provider is set"),
        (status = 422, description = "The question is empty or too long"),
    ))]
pub async fn ask(
    c: Caller,
    Path(p): Path<ThreadPath>,
    Json(body): Json<Ask>,
) -> ApiResult<Response> {
    let conversation = c
        .acting()
        .prepare_ask(ThreadId(p.thread), &body.content, body.provider.as_deref())
        .await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(conversation.run(tx));
    let events = UnboundedReceiverStream::new(rx).map(|e: ChatEvent| {
        let event = Event::default().event(e.name()).json_data(e.data());
        Ok::<_, Infallible>(
            event.unwrap_or_else(|e| Event::default().event("error").data(e.to_string())),
        )
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `POST /assistant/proposals/{proposal}/confirm` → the proposal after its request ran as
/// the caller (with the caller's own token): `confirmed`, or `failed` with what the API
/// answered (a refusal by role is 403 there, and audited like any other).
#[utoipa::path(post, path = "/assistant/proposals/{proposal}/confirm", tag = "assistant",
    params(ProposalPath),
    responses(
        (status = 200, description = "The proposal with its request's answer", body = Proposal),
        (status = 404, description = "No such proposal of the caller's"),
        (status = 409, description = "It is not pending: a proposal runs once"),
    ))]
pub async fn confirm(
    State(s): State<AppState>,
    c: Caller,
    headers: HeaderMap,
    Path(p): Path<ProposalPath>,
) -> ApiResult<Json<Proposal>> {
    let acting = c.acting();
    let id = ProposalId(p.proposal);
    let proposal = acting.claim_proposal(id).await?;
    let result = replay(&s, &headers, &proposal).await;
    Ok(Json(acting.finish_proposal(id, result).await?))
}

/// `POST /assistant/proposals/{proposal}/reject` → the proposal, rejected: nothing ran.
#[utoipa::path(post, path = "/assistant/proposals/{proposal}/reject", tag = "assistant",
    params(ProposalPath),
    responses(
        (status = 200, description = "The proposal, rejected", body = Proposal),
        (status = 404, description = "No such proposal of the caller's"),
        (status = 409, description = "It is not pending"),
    ))]
pub async fn reject(c: Caller, Path(p): Path<ProposalPath>) -> ApiResult<Json<Proposal>> {
    Ok(Json(
        c.acting().reject_proposal(ProposalId(p.proposal)).await?,
    ))
}

/// The largest answer of a replayed request kept with its proposal.
const MAX_RESULT: usize = 64 * 1024;

/// Runs a proposal's request through this API's own router with the caller's token, as if
/// the caller had sent it: the same validation, authorisation and audit.
async fn replay(s: &AppState, headers: &HeaderMap, p: &Proposal) -> ProposalResult {
    let fail = |status: StatusCode, detail: String| ProposalResult {
        status: status.as_u16(),
        body: serde_json::to_value(ApiError::new(status, "proposal", detail).problem())
            .unwrap_or_default(),
    };
    let a = &p.action;
    let method = match a.method.as_str() {
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        other => {
            return fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("a proposal cannot run a {other} request"),
            );
        }
    };
    if !a.path.starts_with('/') || a.path.contains("..") || a.path.contains("//") {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "a proposal's path must be a path of the API, not {}",
                a.path
            ),
        );
    }
    let Some(router) = s.replay.get().cloned() else {
        return fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server cannot run requests for proposals".into(),
        );
    };
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{}{}", super::PREFIX, a.path))
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        req = req.header(header::AUTHORIZATION, auth.clone());
    }
    let body = a
        .body
        .as_ref()
        .map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let req = match req.body(body) {
        Ok(r) => r,
        Err(e) => return fail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    let res = match router.oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), MAX_RESULT)
        .await
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    ProposalResult { status, body }
}
