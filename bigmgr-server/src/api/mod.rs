//! The REST API under `/api/v1`: JSON in and out, errors as problem+json ([`error`]), every
//! route but `GET /api/v1/health` and `POST /api/v1/login` behind a user's bearer token,
//! authorised by role and audited ([`auth`]). `GET /openapi.json` describes all of it (OpenAPI
//! 3.1, generated from these handlers, [`docs`]) and `GET /api/docs` is an interactive page
//! over that document; both need no token. `GET /metrics` (outside `/api/v1`, as Prometheus
//! expects; any role's token) is bigmgr's own metrics ([`metrics`]).
//!
//! Handlers are thin: they extract, call one [`Manager`] method (or a few reads) and shape the
//! answer into a view. One module per resource: [`clusters`] (with join tokens), [`hosts`],
//! [`services`] (with stacks), [`jobs`] (with task logs) and [`events`] (a job's live events).
//!
//! | route | answer |
//! |---|---|
//! | `GET /health` (no token) | 200 `{"version", "store": "ok"}`, or 503 with `"store": "unavailable"` |
//! | `GET /clusters`, `POST /clusters {"name"}` | a page of clusters; 201 the new cluster |
//! | `GET`, `DELETE /clusters/{cluster}` | the cluster; 204 (409 while it has hosts, services or jobs) |
//! | `POST /clusters/{cluster}/join-tokens` | 201 `{"token": "bmj_…"}` for `bigmgr-agent --join-token` |
//! | `GET /clusters/{cluster}/hosts`, `POST … {"name", "address"}` | a page of hosts with state, last heartbeat, facts, metrics and units; 201 the new host |
//! | `GET`, `DELETE /clusters/{cluster}/hosts/{host}` | one host; 204 (409 while units of services are on it) |
//! | `PATCH /clusters/{cluster}/hosts/{host} {"address"}` (admin) | the host with its new address (accepts an agent's `reported_address`) |
//! | `GET /clusters/{cluster}/metrics`, `…/hosts/{host}/metrics` | hosts' recent CPU and memory series (an hour kept) |
//! | `GET /clusters/{cluster}/hosts/{host}/tasks` | the host's latest tasks, newest first |
//! | `GET /clusters/{cluster}/pipelines`, `POST … {"definition"}` (admin) | a page of pipelines; 201 the new pipeline (422 `invalid-pipeline` lists every problem of the definition with its line) |
//! | `GET`, `DELETE /clusters/{cluster}/pipelines/{pipeline}` (admin) | one pipeline; 204 (409 while it runs) |
//! | `POST /clusters/{cluster}/hosts/bootstrap {"hosts", "ssh_user", "ssh_key" \| "ssh_password", …}` (admin) | 202 the `bootstrap` job: the server logs in over SSH and installs and starts each host's agent, one task per host |
//! | `GET /clusters/{cluster}/units/{unit}/files` | a unit's config files rendered now, secrets masked |
//! | `GET /stacks` | a page of stack versions with their services and components |
//! | `GET /clusters/{cluster}/services`, `POST …` (core's `AddService`) | a page of service instances with their units (state, health); 201 the new one; with `?dry_run=true`, 200 what it would create, nothing written |
//! | `GET`, `DELETE /clusters/{cluster}/services/{service}` | one service instance; 204 (409 while a unit is STARTED or a job touching it is unfinished) |
//! | `GET /clusters/{cluster}/jobs`, `POST … {"command", "target", "options"?}` | a page of the cluster's jobs; 202 the queued job (Location `/api/v1/jobs/{id}`) |
//! | `GET /jobs/{job}` | the job with its stages and their tasks |
//! | `POST /jobs/{job}/cancel`, `/pause`, `/resume`, `/retry` | the job after the action; 409 when its state does not allow it |
//! | `GET /jobs/{job}/tasks/{task}/log[?attempt=N]` | the whole log: `{"lines": [{"attempt", "seq", "stream", "at", "line"}]}` |
//! | `GET /jobs/{job}/events` | `text/event-stream`: `job`, `task`, `log` events live, then `end` |
//! | `POST /login {"name", "password"}` (no token) | 201 a new API token `{"token", "id", …}` |
//! | `GET /users`, `POST /users {"name", "password"?, "role"}`, `DELETE /users/{user}` (admin) | users; 201 the new user; 204 |
//! | `GET`, `POST /users/{user}/tokens {"name"}`, `DELETE /tokens/{id}` | the user's tokens; 201 with the secret, shown once; 204 |
//! | `GET /audit[?after=ID&limit=N&actor=NAME]` (admin) | a page of audit events ascending by id |
//! | `GET /clusters/{cluster}/advice[?host=&service=&job=]` | the advisor's findings |
//! | `GET /assistant/providers`, `PUT`/`DELETE /assistant/providers/{name}` (admin) | model providers, never their keys |
//! | `GET`, `POST /assistant/threads`, `GET /assistant/threads/{thread}` | the caller's chat threads |
//! | `POST /assistant/threads/{thread}/messages {"content"}` | the answer as `text/event-stream` ([`assistant`]) |
//! | `GET /assistant/tools` | the tools the caller's role may use |
//! | `POST /assistant/proposals/{id}/confirm`, `/reject` | runs (as the caller) or drops a proposal |
//! | `POST /mcp` (at the root, any role's token) | the assistant's tools as an MCP server (streamable HTTP, JSON answers): one JSON-RPC message per POST, tools limited by the token's role, `propose_*` tools only record proposals ([`mcp`]) |
//!
//! Lists are paged ([`page`]): `?limit=N&after=CURSOR` (limit 1-1000, default 100) answers
//! `{"items": [...], "next": CURSOR|null}`; pass `next` as `after` for the following page.
//!
//! Times are milliseconds since the Unix epoch. A job's `target` is core's `Target` in JSON:
//! `"cluster"`, `{"service": "zk"}`, `{"component": {"service": "zk", "component":
//! "zookeeper_server"}}`, `{"hosts": ["h1"]}` or `{"units": [3, 4]}`.

/// The routes that read one resource (or one list) by their path, and a query where they
/// have one, as one table: `GET path` → 200 with the view, 404 when the path names nothing. A
/// row:
///
/// ```text
/// /// The doc of the route.
/// name("/path/{param}", "tag", ParamsType[, QueryType])
///     -> [View]: "the 200's description",
///     404: "the 404's",
///     |state, params[, query]| the view;
/// ```
macro_rules! read_routes {
    ($(
        $(#[$doc:meta])*
        $name:ident($path:tt, $tag:tt, $params:ident $(, $query:ident)?)
            -> [$($view:tt)+]: $ok:tt, 404: $missing:tt,
            |$s:ident, $p:ident $(, $q:ident)?| $read:expr;
    )*) => {$(
        $(#[$doc])*
        #[utoipa::path(get, path = $path, tag = $tag,
            params($params $(, $query)?),
            responses(
                (status = 200, description = $ok, body = $($view)+),
                (status = 404, description = $missing),
            ))]
        pub async fn $name(
            State($s): State<AppState>,
            Path($p): Path<$params>,
            $(Query($q): Query<$query>,)?
        ) -> ApiResult<Json<$($view)+>> {
            Ok(Json($read))
        }
    )*};
}

/// The routes that remove one resource by its path, as one table: `DELETE path` → 204, 404 when
/// the path names nothing and, where a rule can keep the resource, 409 when one does. The
/// removal acts as the caller (core authorises and audits it). A row:
///
/// ```text
/// /// The doc of the route.
/// name("/path/{param}", "tag", ParamsType):
///     204: "…", 404: "…", 409: "…" (optional),
///     |acting, params| the removal;
/// ```
macro_rules! remove_routes {
    ($(
        $(#[$doc:meta])*
        $name:ident($path:tt, $tag:tt, $params:ident):
            204: $done:tt, 404: $missing:tt, $(409: $refused:tt,)?
            |$a:ident, $p:ident| $remove:expr;
    )*) => {$(
        $(#[$doc])*
        #[utoipa::path(delete, path = $path, tag = $tag,
            params($params),
            responses(
                (status = 204, description = $done),
                (status = 404, description = $missing),
                $((status = 409, description = $refused),)?
            ))]
        pub async fn $name(caller: Caller, Path($p): Path<$params>) -> ApiResult<StatusCode> {
            let $a = caller.acting();
            $remove.await?;
            Ok(StatusCode::NO_CONTENT)
        }
    )*};
}

pub mod advice;
pub mod alerts;
pub mod assistant;
pub mod auth;
pub mod clusters;
pub mod configs;
pub mod docs;
pub mod error;
pub mod events;
pub mod hosts;
pub mod pipelines;

/// The server's `host:port` as a request reached it: HTTP/1.1 names it in Host, HTTP/2 in the
/// URI's authority.
pub(crate) fn authority(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
}
pub mod jobs;
pub mod mcp;
pub mod metrics;
pub mod page;
pub mod path;
pub mod services;
pub mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use bigmgr_core::Manager;
use error::{ApiError, Json};
use serde::Serialize;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The largest request body accepted, in bytes; larger ones get 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The API's prefix.
pub const PREFIX: &str = "/api/v1";

/// What every handler gets: the facade, and the OpenAPI document as served.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The one API every frontend calls.
    pub mgr: Manager,
    /// `GET /openapi.json`'s body.
    pub openapi: Bytes,
    /// The API's own router, for running a confirmed proposal's request as its user
    /// ([`assistant::confirm`]); set once the router is built.
    pub replay: Arc<OnceLock<Router>>,
}

/// Every route with its OpenAPI operation: the router and the document are built from this one
/// list, so no route can be served undocumented. [`auth::require_token`] guards all but the
/// public ones ([`docs::PUBLIC`]).
fn routes() -> OpenApiRouter<AppState> {
    let protected = OpenApiRouter::new()
        .routes(routes!(clusters::list, clusters::create))
        .routes(routes!(clusters::get, clusters::delete))
        .routes(routes!(clusters::create_join_token))
        .routes(routes!(hosts::list, hosts::add))
        .routes(routes!(hosts::get, hosts::remove, hosts::update))
        .routes(routes!(hosts::metrics))
        .routes(routes!(hosts::host_metrics))
        .routes(routes!(hosts::host_tasks))
        .routes(routes!(hosts::bootstrap))
        .routes(routes!(pipelines::list, pipelines::create))
        .routes(routes!(pipelines::get, pipelines::remove))
        .routes(routes!(pipelines::start))
        .routes(routes!(pipelines::pause))
        .routes(routes!(pipelines::resume))
        .routes(routes!(pipelines::stop))
        .routes(routes!(pipelines::scale))
        .routes(routes!(pipelines::status))
        .routes(routes!(pipelines::logs))
        .routes(routes!(pipelines::push))
        .routes(routes!(services::list, services::add))
        .routes(routes!(services::get, services::remove))
        .routes(routes!(jobs::list, jobs::submit))
        .routes(routes!(services::stacks))
        .routes(routes!(configs::versions, configs::update))
        .routes(routes!(configs::version))
        .routes(routes!(configs::diff))
        .routes(routes!(configs::rollback))
        .routes(routes!(configs::units))
        .routes(routes!(configs::restart_stale))
        .routes(routes!(configs::export_spec))
        .routes(routes!(configs::plan_spec))
        .routes(routes!(configs::apply_spec))
        .routes(routes!(configs::add_units))
        .routes(routes!(configs::remove_unit))
        .routes(routes!(configs::unit_files))
        .routes(routes!(configs::snapshots, configs::create_snapshot))
        .routes(routes!(configs::snapshot))
        .routes(routes!(configs::restore_snapshot))
        .routes(routes!(configs::relations, configs::relate))
        .routes(routes!(configs::unrelate))
        .routes(routes!(configs::relation_events))
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::history))
        .routes(routes!(alerts::deliveries))
        .routes(routes!(alerts::targets, alerts::add_target))
        .routes(routes!(alerts::remove_target))
        .routes(routes!(alerts::maintenance, alerts::start_maintenance))
        .routes(routes!(alerts::end_maintenance))
        .routes(routes!(alerts::healing, alerts::set_healing))
        .routes(routes!(advice::advice))
        .routes(routes!(assistant::providers))
        .routes(routes!(assistant::set_provider, assistant::remove_provider))
        .routes(routes!(assistant::tools))
        .routes(routes!(assistant::threads, assistant::create_thread))
        .routes(routes!(assistant::thread))
        .routes(routes!(assistant::ask))
        .routes(routes!(assistant::confirm))
        .routes(routes!(assistant::reject))
        .routes(routes!(alerts::definitions))
        .routes(routes!(alerts::change_definition))
        .routes(routes!(jobs::get))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::pause))
        .routes(routes!(jobs::resume))
        .routes(routes!(jobs::retry))
        .routes(routes!(jobs::task_log))
        .routes(routes!(events::job_events))
        .routes(routes!(events::cluster_events))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::delete))
        .routes(routes!(users::tokens, users::create_token))
        .routes(routes!(users::delete_token))
        .routes(routes!(users::audit))
        .routes(routes!(users::me))
        .route_layer(middleware::from_fn(auth::require_token));
    let api = OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(users::login))
        .merge(protected);
    let scrape = OpenApiRouter::new()
        .routes(routes!(metrics::scrape))
        .routes(routes!(mcp::post))
        .route_layer(middleware::from_fn(auth::require_token));
    OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .nest(PREFIX, api)
        .merge(scrape)
        .routes(routes!(docs::openapi_json))
        .routes(routes!(docs::page))
        .routes(routes!(docs::css))
        .routes(routes!(docs::js))
}

/// The API's OpenAPI document, as `GET /openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    docs::complete(routes().into_openapi())
}

/// The REST API's router: every route under [`PREFIX`], plus `GET /openapi.json` and the API
/// page under `/api/docs`. It has no fallback, so it merges with the gRPC routes; give the
/// merged router [`fallback`] for unknown paths.
pub fn router(mgr: Manager) -> Router {
    let (router, doc) = routes().split_for_parts();
    let openapi = Bytes::from(docs::document(docs::complete(doc)));
    let replay = Arc::new(OnceLock::new());
    let router = router
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_request))
        // For the token check, which runs before the handlers' state is at hand.
        .layer(axum::Extension(mgr.clone()))
        .with_state(AppState {
            mgr,
            openapi,
            replay: Arc::clone(&replay),
        });
    // The router holds itself through its state: it lives as long as the server.
    let _ = replay.set(router.clone());
    router
}

/// The answer of `GET /health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// The server's version.
    pub version: &'static str,
    /// `ok`, or `unavailable` when the store does not answer (then the status is 503).
    pub store: &'static str,
    /// `leader` if this server runs the job engine (a single server always does; of several
    /// replicas, the holder of the engine's lease), else `follower`.
    pub engine: &'static str,
}

/// `GET /health`: the version, and whether the store answers. Needs no token.
#[utoipa::path(get, path = "/health", tag = "system",
    responses(
        (status = 200, description = "The server and its store answer", body = Health),
        (status = 503, description = "The store does not answer", body = Health),
    ))]
async fn health(State(s): State<AppState>) -> Response {
    let version = bigmgr_core::VERSION;
    let engine = if s.mgr.leads() { "leader" } else { "follower" };
    match s.mgr.health().await {
        Ok(_) => Json(Health {
            version,
            store: "ok",
            engine,
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: the store does not answer");
            let body = Health {
                version,
                store: "unavailable",
                engine,
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// The fallback for paths no route serves: gRPC requests get gRPC's `UNIMPLEMENTED` (as tonic
/// answers them), a GET outside the API the web console ([`crate::ui`]), everything else a
/// 404 problem.
pub async fn fallback(req: Request) -> Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/grpc"),
                (header::HeaderName::from_static("grpc-status"), "12"),
            ],
        )
            .into_response();
    }
    if crate::ui::serves(req.method(), req.uri().path()) {
        let accepts = req.headers().get(header::ACCEPT_ENCODING);
        return crate::ui::serve(req.uri().path(), accepts);
    }
    ApiError::not_found(format!(
        "no such route: {} {}; the API is under {PREFIX} (GET {PREFIX}/health needs no token)",
        req.method(),
        req.uri().path()
    ))
    .into_response()
}

/// 405 with the same problem+json as every other error.
async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!(
            "{method} is not allowed on {}; the Allow header lists what is",
            uri.path()
        ),
    )
    .into_response()
}

/// Logs every request at debug level with its status and duration (server errors are logged
/// where they are made).
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_string(), |u| u.path().to_string());
    // The route's template, not the path: one series per route whatever the ids.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let mgr = req.extensions().get::<Manager>().cloned();
    let res = next.run(req).await;
    let took = start.elapsed();
    let status = res.status().as_u16();
    if let Some(mgr) = mgr {
        mgr.metrics()
            .observe_http(method.as_str(), &route, status, took);
    }
    tracing::debug!(%method, %path, status, ms = took.as_millis() as u64, "request");
    res
}

/// A 201 answer with the new resource's location and representation.
pub fn created<T: Serialize>(location: String, body: T) -> Response {
    located(StatusCode::CREATED, location, body)
}

/// An answer with this status, a `Location` header and a JSON body.
pub fn located<T: Serialize>(status: StatusCode, location: String, body: T) -> Response {
    (status, [(header::LOCATION, location)], Json(body)).into_response()
}
