//! Who is calling and may they: every route but the health check and login needs
//! `Authorization: Bearer <token>` (an API token of a user, see [`Manager::authenticate`]).
//! The caller's [`Actor`] goes into the request's extensions; the route's [`Action`] is
//! authorised by core's role rules ([`Manager::authorize`], which audits refusals), and every
//! state-changing call is audited with its outcome.
//!
//! Routes whose handlers call Manager methods that authorise and audit themselves (users,
//! tokens, audit) are only authenticated here.

use super::error::ApiError;
use axum::extract::{MatchedPath, OriginalUri, Request};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bigmgr_core::Manager;
use bigmgr_core::auth::{Action, Actor};
use bigmgr_core::model::Outcome;

/// The action a route performs, by method and route pattern (relative to the API prefix);
/// `None` for routes whose Manager methods authorise themselves.
pub fn action(method: &Method, route: &str) -> Option<Action> {
    let route = route.strip_prefix(super::PREFIX).unwrap_or(route);
    if route.starts_with("/users") || route.starts_with("/tokens") || route == "/audit" {
        return None;
    }
    if method == Method::GET || method == Method::HEAD {
        return Some(Action::ReadAnything);
    }
    Some(match (method.as_str(), route) {
        ("POST", "/clusters") => Action::CreateCluster,
        ("DELETE", "/clusters/{cluster}") => Action::DeleteCluster,
        ("POST", "/clusters/{cluster}/join-tokens") => Action::CreateJoinToken,
        ("POST", "/clusters/{cluster}/hosts") => Action::AddHost,
        ("DELETE", "/clusters/{cluster}/hosts/{host}") => Action::RemoveHost,
        ("PATCH", "/clusters/{cluster}/hosts/{host}") => Action::ChangeHost,
        ("POST", "/clusters/{cluster}/services") => Action::AddService,
        ("DELETE", "/clusters/{cluster}/services/{service}") => Action::RemoveService,
        ("POST", "/clusters/{cluster}/jobs") => Action::SubmitJob,
        ("PATCH", "/clusters/{cluster}/services/{service}/configs")
        | ("POST", "/clusters/{cluster}/services/{service}/configs/rollback")
        | ("POST", "/clusters/{cluster}/snapshots")
        | ("POST", "/clusters/{cluster}/snapshots/{name}/restore")
        | ("POST", "/clusters/{cluster}/restart-stale")
        | ("POST", "/clusters/{cluster}/relations")
        | ("DELETE", "/clusters/{cluster}/relations/{id}") => Action::ChangeConfig,
        ("POST", "/clusters/{cluster}/services/{service}/units") => Action::AddService,
        ("DELETE", "/clusters/{cluster}/units/{unit}") => Action::RemoveService,
        ("POST", r) if r.starts_with("/jobs/") => Action::ControlJob,
        // A state-changing route nobody mapped: only admins, until someone decides.
        _ => Action::ManageUsers,
    })
}

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

/// Middleware: authenticates, authorises the route's action, and audits state changes. The
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
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    // The full path (this router is nested under the API prefix, which `uri()` has lost).
    let target = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.path().to_owned());
    let action = action(&method, &route);
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
    let actor = match authenticated {
        Ok(actor) => actor,
        Err(e) => {
            // A change refused for want of a valid token is audited too, as `anonymous`.
            if changes {
                let who = Actor::anonymous();
                let what = action.unwrap_or(Action::ManageUsers);
                let detail = format!("{method} {target} → 401: {e}");
                mgr.record(&who, what, &target, Outcome::Refused, &detail)
                    .await;
            }
            return ApiError::from(e).into_response();
        }
    };
    if let Some(action) = action
        && let Err(e) = mgr.authorize(&actor, action, &target).await
    {
        return ApiError::from(e).into_response();
    }
    req.extensions_mut().insert(actor.clone());
    let res = next.run(req).await;
    if let Some(action) = action.filter(|_| changes) {
        let status = res.status();
        let outcome = if status.is_success() {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let detail = format!("{method} {target} → {}", status.as_u16());
        mgr.record(&actor, action, &target, outcome, &detail).await;
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_actions() {
        let a = |m: Method, r: &str| action(&m, &format!("/api/v1{r}"));
        assert_eq!(a(Method::GET, "/clusters"), Some(Action::ReadAnything));
        assert_eq!(a(Method::POST, "/clusters"), Some(Action::CreateCluster));
        assert_eq!(
            a(Method::POST, "/clusters/{cluster}/jobs"),
            Some(Action::SubmitJob)
        );
        assert_eq!(
            a(Method::POST, "/jobs/{job}/cancel"),
            Some(Action::ControlJob)
        );
        assert_eq!(a(Method::POST, "/users"), None);
        assert_eq!(a(Method::GET, "/audit"), None);
    }
}
