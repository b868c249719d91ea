//! The REST API under `/api/v1`: JSON in and out, errors as problem+json ([`error`]), every
//! route but `GET /api/v1/health` and `POST /api/v1/login` behind a user's bearer token,
//! authorised by role and audited ([`auth`]).
//!
//! Handlers are thin: they extract, call one [`Manager`] method (or a few reads) and shape the
//! answer into a view. One module per resource: [`clusters`] (with join tokens), [`hosts`],
//! [`services`] (with stacks) and [`jobs`] (with task logs).
//!
//! | route | answer |
//! |---|---|
//! | `GET /health` (no token) | 200 `{"version", "store": "ok"}`, or 503 with `"store": "unavailable"` |
//! | `GET /clusters`, `POST /clusters {"name"}` | the clusters; 201 the new cluster |
//! | `GET`, `DELETE /clusters/{cluster}` | the cluster; 204 (409 while it has hosts, services or jobs) |
//! | `POST /clusters/{cluster}/join-tokens` | 201 `{"token": "bmj_…"}` for `bigmgr-agent --join-token` |
//! | `GET /clusters/{cluster}/hosts`, `POST … {"name", "address"}` | hosts with state, last heartbeat, facts, metrics and units; 201 the new host |
//! | `GET /clusters/{cluster}/hosts/{host}` | one host |
//! | `GET /stacks` | stack versions with their services and components |
//! | `GET /clusters/{cluster}/services`, `POST …` (core's `AddService`) | service instances with their units (state, health); 201 the new one |
//! | `GET /clusters/{cluster}/services/{service}` | one service instance |
//! | `GET /clusters/{cluster}/jobs`, `POST … {"command", "target", "options"?}` | the cluster's jobs; 202 the queued job (Location `/api/v1/jobs/{id}`) |
//! | `GET /jobs/{job}` | the job with its stages and their tasks |
//! | `POST /jobs/{job}/cancel`, `/pause`, `/resume`, `/retry` | the job after the action; 409 when its state does not allow it |
//! | `GET /jobs/{job}/tasks/{task}/log[?attempt=N]` | `{"lines": [{"attempt", "seq", "stream", "at", "line"}]}` |
//! | `POST /login {"name", "password"}` (no token) | 201 a new API token `{"token", "id", …}` |
//! | `GET /users`, `POST /users {"name", "password"?, "role"}`, `DELETE /users/{user}` (admin) | users; 201 the new user; 204 |
//! | `GET`, `POST /users/{user}/tokens {"name"}`, `DELETE /tokens/{id}` | the user's tokens; 201 with the secret, shown once; 204 |
//! | `GET /audit[?after=ID&limit=N&actor=NAME]` (admin) | audit events ascending by id |
//!
//! Times are milliseconds since the Unix epoch. A job's `target` is core's `Target` in JSON:
//! `"cluster"`, `{"service": "zk"}`, `{"component": {"service": "zk", "component":
//! "zookeeper_server"}}`, `{"hosts": ["h1"]}` or `{"units": [3, 4]}`.

pub mod auth;
pub mod clusters;
pub mod error;
pub mod hosts;
pub mod jobs;
pub mod services;
pub mod users;

use axum::Router;
use axum::extract::{DefaultBodyLimit, OriginalUri, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bigmgr_core::Manager;
use error::{ApiError, Json};
use serde::Serialize;
use std::time::Instant;

/// The largest request body accepted, in bytes; larger ones get 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The API's prefix.
pub const PREFIX: &str = "/api/v1";

/// What every handler gets: the facade.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The one API every frontend calls.
    pub mgr: Manager,
}

/// The REST API's router, every route under [`PREFIX`]. It has no fallback, so it merges with
/// the gRPC routes; give the merged router [`fallback`] for unknown paths.
pub fn router(mgr: Manager) -> Router {
    let state = AppState { mgr };
    let protected = Router::new()
        .route("/clusters", get(clusters::list).post(clusters::create))
        .route(
            "/clusters/{cluster}",
            get(clusters::get).delete(clusters::delete),
        )
        .route(
            "/clusters/{cluster}/join-tokens",
            post(clusters::create_join_token),
        )
        .route(
            "/clusters/{cluster}/hosts",
            get(hosts::list).post(hosts::add),
        )
        .route("/clusters/{cluster}/hosts/{host}", get(hosts::get))
        .route(
            "/clusters/{cluster}/services",
            get(services::list).post(services::add),
        )
        .route("/clusters/{cluster}/services/{service}", get(services::get))
        .route(
            "/clusters/{cluster}/jobs",
            get(jobs::list).post(jobs::submit),
        )
        .route("/stacks", get(services::stacks))
        .route("/jobs/{job}", get(jobs::get))
        .route("/jobs/{job}/cancel", post(jobs::cancel))
        .route("/jobs/{job}/pause", post(jobs::pause))
        .route("/jobs/{job}/resume", post(jobs::resume))
        .route("/jobs/{job}/retry", post(jobs::retry))
        .route("/jobs/{job}/tasks/{task}/log", get(jobs::task_log))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{user}", axum::routing::delete(users::delete))
        .route(
            "/users/{user}/tokens",
            get(users::tokens).post(users::create_token),
        )
        .route("/tokens/{id}", axum::routing::delete(users::delete_token))
        .route("/audit", get(users::audit))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let api = Router::new()
        .route("/health", get(health))
        .route("/login", post(users::login))
        .merge(protected)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_request))
        .with_state(state);
    Router::new().nest(PREFIX, api)
}

/// The answer of `GET /health`.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// The server's version.
    pub version: &'static str,
    /// `ok`, or `unavailable` when the store does not answer (then the status is 503).
    pub store: &'static str,
}

/// `GET /health`: the version, and whether the store answers. Needs no token.
async fn health(State(s): State<AppState>) -> Response {
    let version = bigmgr_core::VERSION;
    match s.mgr.store().list_clusters().await {
        Ok(_) => Json(Health {
            version,
            store: "ok",
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: the store does not answer");
            let body = Health {
                version,
                store: "unavailable",
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// The fallback for paths no route serves: gRPC requests get gRPC's `UNIMPLEMENTED` (as tonic
/// answers them), everything else a 404 problem.
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
    let res = next.run(req).await;
    tracing::debug!(%method, %path, status = res.status().as_u16(), ms = start.elapsed().as_millis() as u64, "request");
    res
}

/// A 201 answer with the new resource's location and representation.
pub fn created<T: Serialize>(location: String, body: T) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}
