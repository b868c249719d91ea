//! The API's own description: `GET /openapi.json` (OpenAPI 3.1, generated from the handlers'
//! `#[utoipa::path]` and the views' `ToSchema`) and an interactive page, `GET /api/docs`
//! (Swagger UI, vendored under `assets/swagger-ui/`: nothing is fetched at build or run time).
//!
//! Handlers declare their own answers; [`complete`] adds what every route shares, so no
//! handler can forget it: the bearer-token requirement (all but the public routes), 401, the
//! 400/413/415/422 a malformed request gets, 500, and the problem+json body of every error.

use super::AppState;
use super::error::{PROBLEM_JSON, Problem};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

/// The path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// The path of the interactive API page.
pub const DOCS_PATH: &str = "/api/docs";

/// The name of the bearer security scheme.
pub const BEARER: &str = "bearer";

/// Routes anyone may call: no token is needed to check health or to read the API's description.
pub const PUBLIC: [&str; 6] = [
    "/api/v1/health",
    "/api/v1/login",
    OPENAPI_PATH,
    DOCS_PATH,
    "/api/docs/swagger-ui.css",
    "/api/docs/swagger-ui-bundle.js",
];

const SWAGGER_JS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

/// The document's fixed parts; the paths come from the router ([`super::routes`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "bigmgr",
        description = "The bigmgr REST API: clusters, hosts, services, jobs and their logs. \
            Every route but the public ones (health, this document, the API page) needs \
            `Authorization: Bearer <admin token>`. Errors are RFC 9457 application/problem+json. \
            Lists are paged: `?limit=N&after=CURSOR` → `{\"items\": [...], \"next\": CURSOR|null}`."
    ),
    components(schemas(Problem, bigmgr_core::view::NotificationView, bigmgr_core::view::JobEvent, bigmgr_core::view::TaskEvent, bigmgr_core::view::LogEvent, bigmgr_core::view::ClusterEvent, bigmgr_core::view::ClusterTopic)),
    tags(
        (name = "system", description = "Health and the API's description"),
        (name = "clusters", description = "Clusters and agents' join tokens"),
        (name = "hosts", description = "Hosts with their facts, metrics and units"),
        (name = "stacks", description = "What can be deployed"),
        (name = "services", description = "Service instances with their units"),
        (name = "jobs", description = "Jobs, their tasks, logs and live events"),
        (name = "advice", description = "The advisor: what is wrong and what to do"),
        (name = "mcp", description = "The assistant's tools for an operator's own AI client (Model Context Protocol)"),
        (name = "assistant", description = "The chat: model providers, threads, answers streamed, proposals to confirm"),
        (name = "alerts", description = "Alerts as they stand and their history"),
        (name = "specs", description = "Clusters as code: export, plan and apply a cluster spec"),
        (name = "pipelines", description = "Pipelines: DAGs of compute units and data channels over batches"),
    )
)]
pub struct ApiDoc;

/// The operations of a path item, with their methods.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
        ("head", item.head.as_mut()),
        ("options", item.options.as_mut()),
        ("trace", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

/// Every (method, path) the document describes, sorted.
pub fn operation_list(doc: &utoipa::openapi::OpenApi) -> Vec<(String, String)> {
    let mut doc = doc.clone();
    let mut out = Vec::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, _) in operations(item) {
            out.push((method.to_uppercase(), path.clone()));
        }
    }
    out.sort();
    out
}

/// Adds what every operation shares (see the module's doc) to a generated document.
pub fn complete(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        BEARER.to_string(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A user's API token (bmt_…): the admin's is BIGMGR_ADMIN_TOKEN or the file admin-token in the server's data directory; others come from POST /api/v1/users/{user}/tokens or POST /api/v1/login",
                ))
                .build(),
        )),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = PUBLIC.contains(&path.as_str());
        let has_path_params = path.contains('{');
        for (method, op) in operations(item) {
            // Unique by construction (utoipa takes the function's name: several are `list`).
            let slug: String = path
                .trim_start_matches("/api/v1")
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("_");
            op.operation_id = Some(format!("{method}_{slug}"));
            let has_query = op
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == utoipa::openapi::path::ParameterIn::Query));
            let has_body = op.request_body.is_some();
            let mut shared: Vec<(u16, &str)> = Vec::new();
            if !public {
                op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                shared.push((401, "No or a wrong bearer token"));
            }
            if has_path_params || has_query || has_body {
                shared.push((
                    400,
                    "A malformed path parameter, query (limit, cursor) or JSON body",
                ));
            }
            if has_body {
                shared.push((413, "The body is larger than 1 MiB"));
                shared.push((415, "The body is not Content-Type: application/json"));
                shared.push((
                    422,
                    "The body is JSON of the wrong shape (missing, unknown or mistyped fields)",
                ));
            }
            if !public {
                shared.push((500, "The store failed"));
            }
            for (status, description) in shared {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| {
                        RefOr::T(ResponseBuilder::new().description(description).build())
                    });
            }
            // Every error answer is problem+json.
            for (status, response) in op.responses.responses.iter_mut() {
                let is_error = status.parse::<u16>().is_ok_and(|s| s >= 400);
                if let (true, RefOr::T(response)) = (is_error, response)
                    && response.content.is_empty()
                {
                    response.content.insert(
                        PROBLEM_JSON.to_string(),
                        RefOr::T(
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("Problem")))
                                .build(),
                        ),
                    );
                }
            }
        }
    }
    doc
}

/// The document, built once per router.
pub fn document(doc: utoipa::openapi::OpenApi) -> Vec<u8> {
    serde_json::to_vec_pretty(&doc).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize the OpenAPI document");
        b"{}".to_vec()
    })
}

/// The interactive page: Swagger UI pointed at `/openapi.json`.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>bigmgr API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", persistAuthorization: true });
</script>
</body>
</html>
"##;

/// `GET /api/docs`: the interactive API page (Swagger UI). Needs no token; paste the admin
/// token into its "Authorize" dialog to call the API from it.
#[utoipa::path(get, path = "/api/docs", tag = "system",
    responses((status = 200, description = "The interactive API page", content_type = "text/html", body = String)))]
pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// `GET /api/docs/swagger-ui.css`.
#[utoipa::path(get, path = "/api/docs/swagger-ui.css", tag = "system",
    responses((status = 200, description = "Swagger UI's stylesheet", content_type = "text/css", body = String)))]
pub async fn css() -> Response {
    asset("text/css; charset=utf-8", SWAGGER_CSS)
}

/// `GET /api/docs/swagger-ui-bundle.js`.
#[utoipa::path(get, path = "/api/docs/swagger-ui-bundle.js", tag = "system",
    responses((status = 200, description = "Swagger UI's script", content_type = "text/javascript", body = String)))]
pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", SWAGGER_JS)
}

fn asset(content_type: &'static str, bytes: &'static [u8]) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document. Needs no token.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi_json(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], s.openapi).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the API serves, as the router registers it.
    const ROUTES: &[(&str, &str)] = &[
        ("GET", "/api/docs"),
        ("GET", "/api/docs/swagger-ui-bundle.js"),
        ("GET", "/api/docs/swagger-ui.css"),
        ("GET", "/api/v1/clusters"),
        ("POST", "/api/v1/clusters"),
        ("GET", "/api/v1/clusters/{cluster}"),
        ("DELETE", "/api/v1/clusters/{cluster}"),
        ("GET", "/api/v1/clusters/{cluster}/events"),
        ("GET", "/api/v1/clusters/{cluster}/hosts"),
        ("POST", "/api/v1/clusters/{cluster}/hosts"),
        ("GET", "/api/v1/clusters/{cluster}/hosts/{host}"),
        ("DELETE", "/api/v1/clusters/{cluster}/hosts/{host}"),
        ("PATCH", "/api/v1/clusters/{cluster}/hosts/{host}"),
        ("POST", "/api/v1/clusters/{cluster}/hosts/bootstrap"),
        ("GET", "/api/v1/clusters/{cluster}/pipelines"),
        ("POST", "/api/v1/clusters/{cluster}/pipelines"),
        ("GET", "/api/v1/clusters/{cluster}/pipelines/{pipeline}"),
        ("DELETE", "/api/v1/clusters/{cluster}/pipelines/{pipeline}"),
        (
            "POST",
            "/api/v1/clusters/{cluster}/pipelines/{pipeline}/start",
        ),
        (
            "POST",
            "/api/v1/clusters/{cluster}/pipelines/{pipeline}/pause",
        ),
        (
            "POST",
            "/api/v1/clusters/{cluster}/pipelines/{pipeline}/resume",
        ),
        (
            "POST",
            "/api/v1/clusters/{cluster}/pipelines/{pipeline}/stop",
        ),
        (
            "POST",
            "/api/v1/clusters/{cluster}/pipelines/{pipeline}/scale",
        ),
        (
            "GET",
            "/api/v1/clusters/{cluster}/pipelines/{pipeline}/status",
        ),
        (
            "GET",
            "/api/v1/clusters/{cluster}/pipelines/{pipeline}/logs",
        ),
        (
            "POST",
            "/api/v1/clusters/{cluster}/pipelines/{pipeline}/sources/{source}/batches",
        ),
        ("GET", "/api/v1/clusters/{cluster}/jobs"),
        ("POST", "/api/v1/clusters/{cluster}/jobs"),
        ("POST", "/api/v1/clusters/{cluster}/join-tokens"),
        ("GET", "/api/v1/clusters/{cluster}/services"),
        ("POST", "/api/v1/clusters/{cluster}/services"),
        ("GET", "/api/v1/clusters/{cluster}/services/{service}"),
        ("DELETE", "/api/v1/clusters/{cluster}/services/{service}"),
        (
            "GET",
            "/api/v1/clusters/{cluster}/services/{service}/configs",
        ),
        (
            "PATCH",
            "/api/v1/clusters/{cluster}/services/{service}/configs",
        ),
        (
            "GET",
            "/api/v1/clusters/{cluster}/services/{service}/configs/{version}",
        ),
        (
            "GET",
            "/api/v1/clusters/{cluster}/services/{service}/configs/diff",
        ),
        (
            "POST",
            "/api/v1/clusters/{cluster}/services/{service}/configs/rollback",
        ),
        (
            "POST",
            "/api/v1/clusters/{cluster}/services/{service}/units",
        ),
        ("GET", "/api/v1/clusters/{cluster}/units"),
        ("DELETE", "/api/v1/clusters/{cluster}/units/{unit}"),
        ("POST", "/api/v1/clusters/{cluster}/restart-stale"),
        ("GET", "/api/v1/clusters/{cluster}/spec"),
        ("POST", "/api/v1/clusters/{cluster}/plan"),
        ("POST", "/api/v1/clusters/{cluster}/apply"),
        ("GET", "/api/v1/clusters/{cluster}/snapshots"),
        ("POST", "/api/v1/clusters/{cluster}/snapshots"),
        ("GET", "/api/v1/clusters/{cluster}/snapshots/{name}"),
        (
            "POST",
            "/api/v1/clusters/{cluster}/snapshots/{name}/restore",
        ),
        ("GET", "/api/v1/clusters/{cluster}/relations"),
        ("POST", "/api/v1/clusters/{cluster}/relations"),
        ("DELETE", "/api/v1/clusters/{cluster}/relations/{id}"),
        ("GET", "/api/v1/clusters/{cluster}/relations/{id}/events"),
        ("GET", "/api/v1/clusters/{cluster}/alerts"),
        ("GET", "/api/v1/clusters/{cluster}/alerts/history"),
        ("GET", "/api/v1/clusters/{cluster}/alerts/deliveries"),
        ("GET", "/api/v1/clusters/{cluster}/alert-targets"),
        ("POST", "/api/v1/clusters/{cluster}/alert-targets"),
        ("DELETE", "/api/v1/clusters/{cluster}/alert-targets/{name}"),
        ("GET", "/api/v1/clusters/{cluster}/maintenance"),
        ("POST", "/api/v1/clusters/{cluster}/maintenance"),
        ("DELETE", "/api/v1/clusters/{cluster}/maintenance/{id}"),
        (
            "GET",
            "/api/v1/clusters/{cluster}/services/{service}/healing",
        ),
        (
            "PUT",
            "/api/v1/clusters/{cluster}/services/{service}/healing",
        ),
        ("GET", "/api/v1/clusters/{cluster}/alert-definitions"),
        ("GET", "/api/v1/clusters/{cluster}/advice"),
        ("GET", "/api/v1/assistant/providers"),
        ("PUT", "/api/v1/assistant/providers/{name}"),
        ("DELETE", "/api/v1/assistant/providers/{name}"),
        ("GET", "/api/v1/assistant/tools"),
        ("GET", "/api/v1/assistant/threads"),
        ("POST", "/api/v1/assistant/threads"),
        ("GET", "/api/v1/assistant/threads/{thread}"),
        ("POST", "/api/v1/assistant/threads/{thread}/messages"),
        ("POST", "/api/v1/assistant/proposals/{proposal}/confirm"),
        ("POST", "/api/v1/assistant/proposals/{proposal}/reject"),
        ("PUT", "/api/v1/clusters/{cluster}/alert-definitions/{name}"),
        ("GET", "/api/v1/clusters/{cluster}/metrics"),
        ("GET", "/api/v1/clusters/{cluster}/hosts/{host}/metrics"),
        ("GET", "/api/v1/clusters/{cluster}/hosts/{host}/tasks"),
        ("GET", "/api/v1/clusters/{cluster}/units/{unit}/files"),
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/jobs/{job}"),
        ("POST", "/api/v1/jobs/{job}/cancel"),
        ("GET", "/api/v1/jobs/{job}/events"),
        ("POST", "/api/v1/jobs/{job}/pause"),
        ("POST", "/api/v1/jobs/{job}/resume"),
        ("POST", "/api/v1/jobs/{job}/retry"),
        ("GET", "/api/v1/jobs/{job}/tasks/{task}/log"),
        ("GET", "/api/v1/stacks"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/me"),
        ("POST", "/api/v1/login"),
        ("DELETE", "/api/v1/tokens/{id}"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("DELETE", "/api/v1/users/{user}"),
        ("GET", "/api/v1/users/{user}/tokens"),
        ("POST", "/api/v1/users/{user}/tokens"),
        ("GET", "/openapi.json"),
        ("GET", "/metrics"),
        ("POST", "/mcp"),
    ];

    #[test]
    fn the_document_describes_every_route() {
        let doc = crate::api::openapi();
        let mut want: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        want.sort();
        assert_eq!(operation_list(&doc), want);
        // The router and the document are built from one list (`api::routes`): a route added
        // with axum's plain `.route(...)` would be served undocumented, so there is none.
        let source = include_str!("mod.rs");
        assert!(
            !source.contains(concat!(".route", "(")),
            "api/mod.rs registers a route outside routes!(...)"
        );
    }

    #[test]
    fn the_document_is_openapi_3_with_auth_and_problems() {
        let json: serde_json::Value =
            serde_json::from_slice(&document(crate::api::openapi())).unwrap();
        assert!(
            json["openapi"].as_str().unwrap().starts_with("3."),
            "{}",
            json["openapi"]
        );
        assert!(json["info"]["title"].is_string());
        assert_eq!(
            json["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let public = PUBLIC.contains(&path.as_str());
                assert_eq!(op.get("security").is_none(), public, "{method} {path}");
                for (status, r) in op["responses"].as_object().unwrap() {
                    // MCP's refusal of what is not one JSON-RPC request is a JSON-RPC error,
                    // as the protocol says.
                    if path == "/mcp" && status == "400" {
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/JsonRpcResponse"
                        );
                        continue;
                    }
                    if status.starts_with('4') || (status.starts_with('5') && status != "503") {
                        assert_eq!(
                            r["content"][PROBLEM_JSON]["schema"]["$ref"],
                            "#/components/schemas/Problem",
                            "{method} {path} {status}"
                        );
                    }
                }
                if !public {
                    assert!(op["responses"].get("401").is_some(), "{method} {path}");
                }
            }
        }
    }
}
