//! `/users`, `/tokens`, `/login` and `/audit`: accounts, API tokens and the audit log. Each
//! handler calls one Manager method, which authorises the caller by role and audits the change
//! itself (admins manage everyone; any user manages their own tokens and password).

use super::error::{ApiResult, Json, Path, Query};
use super::{AppState, PREFIX, created};
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::auth::{Actor, Role};
use bigmgr_core::model::{ApiToken, ApiTokenId, AuditEvent, AuditFilter, User};
use serde::{Deserialize, Serialize};

/// The body of `POST /users`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The user name.
    pub name: String,
    /// A password (8 characters or more) for `POST /login`; without one the user signs in
    /// with API tokens only.
    #[serde(default)]
    pub password: Option<String>,
    /// `admin`, `operator` or `viewer`.
    pub role: Role,
}

/// The body of `POST /users/{user}/tokens` and `POST /login`'s answer's label.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label saying what the token is for.
    pub name: String,
}

/// The body of `POST /login`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user name.
    pub name: String,
    /// The password.
    pub password: String,
}

/// A new API token: its secret, shown only now, and its record.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    /// The secret (`bmt_…`) to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The token's record (no secret).
    #[serde(flatten)]
    pub info: ApiToken,
}

/// `GET /users` (admin) → every user.
pub async fn list(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(s.mgr.users(&actor).await?))
}

/// `POST /users` (admin) → 201 with the user.
pub async fn create(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Json(body): Json<CreateUser>,
) -> ApiResult<Response> {
    let user = s
        .mgr
        .create_user(&actor, &body.name, body.password.as_deref(), body.role)
        .await?;
    Ok(created(format!("{PREFIX}/users/{}", user.name), user))
}

/// `DELETE /users/{user}` (admin) → 204; the last admin stays.
pub async fn delete(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.mgr.delete_user(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/{user}/tokens` → the user's tokens (no secrets).
pub async fn tokens(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(s.mgr.tokens(&actor, &name).await?))
}

/// `POST /users/{user}/tokens` → 201 with the new token's secret, shown only now.
pub async fn create_token(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    Json(body): Json<CreateToken>,
) -> ApiResult<Response> {
    let (info, token) = s.mgr.create_token(&actor, &name, &body.name).await?;
    Ok(created(
        format!("{PREFIX}/tokens/{}", info.id),
        NewToken { token, info },
    ))
}

/// `DELETE /tokens/{id}` → 204.
pub async fn delete_token(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    s.mgr.delete_token(&actor, ApiTokenId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /login {"name", "password"}` (no token needed) → 201 with a new API token.
pub async fn login(State(s): State<AppState>, Json(body): Json<Login>) -> ApiResult<Response> {
    let (info, token) = s.mgr.login(&body.name, &body.password).await?;
    Ok(created(
        format!("{PREFIX}/tokens/{}", info.id),
        NewToken { token, info },
    ))
}

/// `GET /audit[?after=ID&limit=N&actor=NAME]` (admin) → audit events, ascending by id; pass
/// the last id as `after` for the next page.
pub async fn audit(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Query(filter): Query<AuditFilter>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    Ok(Json(s.mgr.audit(&actor, &filter).await?))
}
