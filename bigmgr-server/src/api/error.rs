//! RFC 9457 problem details: every error the API returns is `application/problem+json`
//! `{type, title, status, detail}`. Core errors, axum's extractor rejections and the API's own
//! refusals (401, 404 for unknown routes) all become an [`ApiError`].
//!
//! The extractors here ([`Json`], [`Path`], [`Query`]) are axum's with their rejections turned
//! into problem+json, so a malformed body gets the same kind of answer as a failed rule.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bigmgr_core::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error answer: a status, a problem kind (the last part of its `type` URI) and a detail
/// that tells the client what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The problem kind, e.g. `not-found`; the `type` is `urn:bigmgr:problem:<kind>`.
    pub kind: &'static str,
    /// What went wrong, for a person.
    pub detail: String,
    /// The value of the request it is about (a dotted path into the body), if one.
    pub field: Option<String>,
    /// A refused cluster spec's problems, each with its line.
    pub problems: Option<Vec<bigmgr_core::spec::Problem>>,
}

/// The body of an error answer (RFC 9457).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong and what to do about it.
    pub detail: String,
    /// The value of the request it is about, as a dotted path into the body (`name`,
    /// `placement.<component>`, `configs.<type>.<property>`), where the error names one: a
    /// form shows the detail on that field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A refused cluster spec's or pipeline definition's problems (`invalid-spec`,
    /// `invalid-pipeline`), each with its line and the
    /// dotted path of its value: an editor marks those lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<bigmgr_core::spec::Problem>>,
}

impl ApiError {
    /// An error with this status, kind and detail.
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            detail: detail.into(),
            field: None,
            problems: None,
        }
    }

    /// 401: no or a wrong bearer token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 404 for something other than a core lookup (an unknown route, a task of another job).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:bigmgr:problem:{}", self.kind),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            field: self.field.clone(),
            problems: self.problems.clone(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, kind) = match &e {
            Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not-found"),
            Error::AlreadyExists { .. } => (StatusCode::CONFLICT, "already-exists"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::Invalid(_) | Error::InvalidField { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            Error::Cardinality { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "cardinality"),
            Error::Cycle { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "cycle"),
            Error::Spec(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-spec"),
            Error::Pipeline(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-pipeline"),
            Error::Template { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "template"),
            Error::Manifest { .. } | Error::Stack { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-stack")
            }
            Error::Refused(_) => (StatusCode::FORBIDDEN, "refused"),
            Error::PermissionDenied(_) => (StatusCode::FORBIDDEN, "permission-denied"),
            Error::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Error::Fenced(_) => (StatusCode::SERVICE_UNAVAILABLE, "fenced"),
            Error::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Error::Provider(_) => (StatusCode::BAD_GATEWAY, "provider"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let problems = match &e {
            Error::Spec(problems) | Error::Pipeline(problems) => Some(problems.clone()),
            _ => None,
        };
        ApiError {
            field: e.field(),
            problems,
            ..ApiError::new(status, kind, e.to_string())
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let kind = match &r {
            JsonRejection::JsonSyntaxError(_) => "malformed-json",
            JsonRejection::JsonDataError(_) => "invalid-body",
            JsonRejection::MissingJsonContentType(_) => "unsupported-media-type",
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => "too-large",
            _ => "bad-body",
        };
        let mut detail = r.body_text();
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            detail = format!(
                "{detail}; request bodies are limited to {} bytes",
                super::BODY_LIMIT
            );
        }
        ApiError::new(r.status(), kind, detail)
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(r.status(), "bad-path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(r.status(), "bad-query", r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), detail = %self.detail, "request failed");
        }
        let mut res = (self.status, axum::Json(self.problem())).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"bigmgr\""),
            );
        }
        res
    }
}

/// A JSON body (or response); a body that is malformed, not an object, of the wrong shape,
/// has unknown fields or is too large is answered with problem+json. (Every body of this API
/// is an object: serde would otherwise read a struct from an array, `[null, null]`.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(raw) =
            axum::Json::<Box<serde_json::value::RawValue>>::from_request(req, state).await?;
        if !raw.get().starts_with('{') {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "the request body must be a JSON object ({…})",
            ));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(raw.get().as_bytes())?;
        Ok(Json(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// axum's extractors of the request's parts, each wrapped so that its rejection is answered
/// with problem+json (through the `From` of its rejection above).
macro_rules! problem_extractors {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name<T>(pub T);

        impl<T, S> FromRequestParts<S> for $name<T>
        where
            T: DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                let axum::extract::$name(value) =
                    axum::extract::$name::<T>::from_request_parts(parts, state).await?;
                Ok($name(value))
            }
        }
    )*};
}

problem_extractors! {
    /// Path parameters; a parameter of the wrong type (`/jobs/abc`) is answered with
    /// problem+json.
    Path;
    /// Query parameters; unknown or malformed ones are answered with problem+json.
    Query;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_statuses() {
        let cases = [
            (Error::not_found("cluster", "x"), 404),
            (
                Error::AlreadyExists {
                    kind: "cluster",
                    name: "x".into(),
                },
                409,
            ),
            (Error::Conflict("finished".into()), 409),
            (Error::Invalid("bad name".into()), 422),
            (Error::Cycle { cycle: vec![] }, 422),
            (Error::Refused("no".into()), 403),
            (Error::Store("disk full".into()), 500),
            (Error::Transport("gone".into()), 500),
            (Error::Provider("timed out".into()), 502),
        ];
        for (e, status) in cases {
            let text = e.to_string();
            let a = ApiError::from(e);
            assert_eq!(a.status.as_u16(), status, "{text}");
            assert_eq!(a.detail, text);
            let p = a.problem();
            assert_eq!(p.status, status);
            assert!(p.kind.starts_with("urn:bigmgr:problem:"));
            assert!(!p.title.is_empty());
        }
    }
}
