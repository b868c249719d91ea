//! Who is calling: every route but the health check and login needs `Authorization: Bearer
//! <token>` (an API token of a user, see [`Manager::authenticate`]). The caller's [`Actor`]
//! goes into the request's extensions; the handlers act through [`Manager::acting`], so core
//! authorises every change by the actor's role and audits it — the same rules as every other
//! frontend. Every role may read. A change refused for want of a valid token is audited here,
//! as `anonymous`, since no handler runs for it.

use super::AppState;
use super::error::ApiError;
use axum::extract::{FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bigmgr_core::Manager;
use bigmgr_core::auth::{Action, Actor};
use bigmgr_core::manager::Acting;
use bigmgr_core::model::Outcome;

/// The bearer token of a request, if it has one.
fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Middleware: authenticates the caller and hands its [`Actor`] to the handler. The
/// [`Manager`] comes from the request's extensions (the router adds it).
pub async fn require_token(mut req: Request, next: Next) -> Response {
    let Some(mgr) = req.extensions().get::<Manager>().cloned() else {
        tracing::error!("the token check found no Manager in the request");
        return ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server is misconfigured: no Manager for the token check",
        )
        .into_response();
    };
    let method = req.method().clone();
    // The full path (this router is nested under the API prefix, which `uri()` has lost).
    let target = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.path().to_owned());
    let changes = method != Method::GET && method != Method::HEAD;
    let authenticated = match bearer(&req) {
        Some(token) => mgr.authenticate(token).await,
        None => Err(bigmgr_core::Error::Unauthenticated(
            "this route needs an 'Authorization: Bearer <token>' header; the admin token is in \
             the server's data directory (file admin-token), other users get theirs from an admin \
             or POST /api/v1/login"
                .into(),
        )),
    };
    match authenticated {
        Ok(actor) => {
            req.extensions_mut().insert(actor);
            next.run(req).await
        }
        Err(e) => {
            // A change refused for want of a valid token is audited too, as `anonymous`.
            if changes {
                let detail = format!("{method} {target} → 401: {e}");
                mgr.record(
                    &Actor::anonymous(),
                    Action::Login,
                    &target,
                    Outcome::Refused,
                    &detail,
                )
                .await;
            }
            ApiError::from(e).into_response()
        }
    }
}

/// The caller of a route behind [`require_token`]: the facade and the [`Actor`] the token check
/// found. Changes go through [`Caller::acting`], so core authorises and audits them; reads that
/// shape the answer use `mgr`.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The one API every frontend calls.
    pub mgr: Manager,
    /// Who calls.
    pub actor: Actor,
}

impl Caller {
    /// The facade acting as the caller.
    pub fn acting(&self) -> Acting {
        self.mgr.acting(self.actor.clone())
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let actor = parts.extensions.get::<Actor>().cloned().ok_or_else(|| {
            tracing::error!("a route that needs a caller is not behind the token check");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server is misconfigured: no caller for this route",
            )
        })?;
        Ok(Caller {
            mgr: state.mgr.clone(),
            actor,
        })
    }
}
