//! `/users`, `/tokens`, `/login` and `/audit`: accounts, API tokens and the audit log. Each
//! handler calls one Manager method, which authorises the caller by role and audits the change
//! itself (admins manage everyone; any user manages their own tokens and password).

use super::auth::Caller;
use super::error::{ApiResult, Json, Path, Query};
use super::page::{Page, PageQuery};
use super::path::{TokenPath, UserPath};
use super::{AppState, PREFIX, created};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bigmgr_core::model::{ApiToken, ApiTokenId, AuditFilter, AuditId};
use bigmgr_core::request::{CreateToken, CreateUser, Login};
use bigmgr_core::view::{AuditEventView, Me, NewToken, TokenView, UserView};
use serde::Deserialize;
use utoipa::IntoParams;

/// The query of `GET /audit`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events after this id (the previous page's `next`).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only this user's events.
    pub actor: Option<String>,
}

/// `GET /me` → who the token belongs to and the role it acts with: what a console shows, and
/// what it hides controls by (the server still decides every call).
#[utoipa::path(get, path = "/me", tag = "users",
    responses(
        (status = 200, description = "The caller and what its role allows", body = Me),
    ))]
pub async fn me(c: Caller) -> Json<Me> {
    Json(Me::of(&c.actor))
}

/// `GET /users` (admin) → the users, a page at a time.
#[utoipa::path(get, path = "/users", tag = "users",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of users", body = Page<UserView>),
        (status = 403, description = "Only admins list users"),
    ))]
pub async fn list(c: Caller, Query(q): Query<PageQuery>) -> ApiResult<Json<Page<UserView>>> {
    let users = c.mgr.users(&c.actor).await?;
    Ok(Json(q.page_by_id(users, |u| u.id.0)?.map(UserView::from)))
}

/// `POST /users` (admin) → 201 with the user.
#[utoipa::path(post, path = "/users", tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 403, description = "Only admins create users"),
        (status = 409, description = "A user of that name exists"),
        (status = 422, description = "The name or password is not valid"),
    ))]
pub async fn create(c: Caller, Json(body): Json<CreateUser>) -> ApiResult<Response> {
    let password = body.password.as_deref();
    let user = c
        .mgr
        .create_user(&c.actor, &body.name, password, body.role)
        .await?;
    Ok(created(
        format!("{PREFIX}/users/{}", user.name),
        UserView::from(user),
    ))
}

/// `DELETE /users/{user}` (admin) → 204; the last admin stays.
#[utoipa::path(delete, path = "/users/{user}", tag = "users",
    params(UserPath),
    responses(
        (status = 204, description = "Deleted, with its tokens"),
        (status = 403, description = "Only admins delete users"),
        (status = 404, description = "No such user"),
        (status = 409, description = "The last admin stays"),
    ))]
pub async fn delete(c: Caller, Path(p): Path<UserPath>) -> ApiResult<StatusCode> {
    c.mgr.delete_user(&c.actor, &p.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users/{user}/tokens` → the user's tokens (no secrets).
#[utoipa::path(get, path = "/users/{user}/tokens", tag = "users",
    params(UserPath, PageQuery),
    responses(
        (status = 200, description = "A page of the user's tokens", body = Page<TokenView>),
        (status = 403, description = "Only admins see others' tokens"),
        (status = 404, description = "No such user"),
    ))]
pub async fn tokens(
    c: Caller,
    Path(p): Path<UserPath>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<TokenView>>> {
    let tokens = c.mgr.tokens(&c.actor, &p.user).await?;
    Ok(Json(q.page_by_id(tokens, |t| t.id.0)?.map(TokenView::from)))
}

/// `POST /users/{user}/tokens` → 201 with the new token's secret, shown only now.
#[utoipa::path(post, path = "/users/{user}/tokens", tag = "users",
    params(UserPath),
    request_body = CreateToken,
    responses(
        (status = 201, description = "The new token, with its secret", body = NewToken),
        (status = 403, description = "Only admins create tokens for others"),
        (status = 404, description = "No such user"),
        (status = 422, description = "The label is not valid"),
    ))]
pub async fn create_token(
    c: Caller,
    Path(p): Path<UserPath>,
    Json(body): Json<CreateToken>,
) -> ApiResult<Response> {
    let (info, token) = c.mgr.create_token(&c.actor, &p.user, &body.name).await?;
    Ok(new_token(info, token))
}

/// 201 with a new token and its secret, at the token's URL.
fn new_token(info: ApiToken, token: String) -> Response {
    created(
        format!("{PREFIX}/tokens/{}", info.id),
        NewToken::new(info, token),
    )
}

/// `DELETE /tokens/{id}` → 204.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "users",
    params(TokenPath),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token (of yours)"),
    ))]
pub async fn delete_token(c: Caller, Path(p): Path<TokenPath>) -> ApiResult<StatusCode> {
    c.mgr.delete_token(&c.actor, ApiTokenId(p.id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /login {"name", "password"}` (no token needed) → 201 with a new API token.
#[utoipa::path(post, path = "/login", tag = "users",
    request_body = Login,
    responses(
        (status = 201, description = "A new API token of the user", body = NewToken),
        (status = 401, description = "Wrong user name or password"),
    ))]
pub async fn login(State(s): State<AppState>, Json(body): Json<Login>) -> ApiResult<Response> {
    let (info, token) = s.mgr.login(&body.name, &body.password).await?;
    Ok(new_token(info, token))
}

/// `GET /audit[?after=ID&limit=N&actor=NAME]` (admin) → a page of audit events, ascending by
/// id.
#[utoipa::path(get, path = "/audit", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit events", body = Page<AuditEventView>),
        (status = 403, description = "Only admins read the audit log"),
    ))]
pub async fn audit(
    c: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditEventView>>> {
    // The same limits, and the same 400 beyond them, as every other list.
    let limit = PageQuery {
        limit: q.limit,
        after: None,
    }
    .limit()?;
    if let Some(after) = q.after.filter(|a| *a < 0) {
        return Err(super::error::ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-query",
            format!(
                "after={after} is not a cursor of the audit log: pass the 'next' of the previous page"
            ),
        ));
    }
    let filter = AuditFilter {
        after: q.after.map(AuditId),
        limit: u32::try_from(limit).ok(),
        actor: q.actor,
    };
    let events = c.mgr.audit(&c.actor, &filter).await?;
    let next = (events.len() == limit)
        .then(|| events.last().map(|e| e.id.0.to_string()))
        .flatten();
    Ok(Json(Page {
        items: events.into_iter().collect(),
        next,
    }))
}
