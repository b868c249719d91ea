//! The bearer-token check in front of every route but the health check.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The token the API accepts, kept as its SHA-256 so the comparison takes the same time
/// wherever a wrong token differs.
#[derive(Debug)]
pub struct Auth {
    hash: String,
}

impl Auth {
    /// Accepts `token`.
    pub fn new(token: &str) -> Auth {
        Auth {
            hash: bigmgr_core::join::hash(token),
        }
    }

    /// True if `presented` is the token.
    pub fn accepts(&self, presented: &str) -> bool {
        let other = bigmgr_core::join::hash(presented);
        self.hash.len() == other.len()
            && self
                .hash
                .bytes()
                .zip(other.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// Middleware: passes requests with `Authorization: Bearer <token>`, answers others 401.
pub async fn require_token(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        Some(token) if auth.accepts(token) => next.run(req).await,
        Some(_) => ApiError::unauthorized(
            "the bearer token is not valid; use the admin token from the server's data directory (file admin-token)",
        )
        .into_response(),
        None => ApiError::unauthorized(
            "this route needs an 'Authorization: Bearer <token>' header; the admin token is in the server's data directory (file admin-token)",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_token() {
        let a = Auth::new("bmt_secret");
        assert!(a.accepts("bmt_secret"));
        assert!(!a.accepts("bmt_secreT"));
        assert!(!a.accepts(""));
    }
}
