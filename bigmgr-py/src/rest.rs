//! The client backend: the REST API of a running `bigmgr serve` (reqwest, plain HTTP).
//!
//! Every request goes under `/api/v1` with the bearer token; names in paths are
//! percent-encoded. Lists are paged by the server (`{"items": [...], "next": cursor|null}`);
//! [`Rest`] follows `next` until the last page, so every list method answers all items.
//! Errors are RFC 9457 problem+json; their status picks the [`Error`] kind and their
//! `detail` is the message.

use crate::backend::{Backend, JobAction};
use crate::data::*;
use crate::error::{Error, Result};
use async_trait::async_trait;
use bigmgr_core::manager::{AddService, ConfigChange, Relate};
use bigmgr_core::model::JobRequest;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;

/// The API's prefix on the server.
const PREFIX: &str = "/api/v1";
/// The most pages one list reads, against a server whose cursor never ends.
const MAX_PAGES: usize = 100_000;
/// The longest connect timeout (the request timeout bounds it too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of a `bigmgr serve`.
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    /// `http://host:port` (and a base path, if the server sits under one), no trailing `/`.
    base: String,
    token: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Rest {
    /// The URL and whether there is a token, never the token itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("url", &self.base)
            .field("token", &self.token.as_ref().map(|_| "********"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Rest {
    /// A client of the server at `url` (`http://host:port`), sending `token` as the bearer
    /// token; each request may take `timeout`. Only plain `http://` URLs are accepted.
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> Result<Rest> {
        let base = check_url(url)?;
        if timeout.is_zero() {
            return Err(Error::InvalidInput(
                "the timeout must be more than 0 seconds".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("bigmgr-py/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Other(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Rest {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
            timeout,
        })
    }

    /// The server's base URL, as normalised (no trailing `/`).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// A request to `path` under `/api/v1`.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self
            .http
            .request(method, format!("{}{PREFIX}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends `req`: the answer's JSON on success (`Null` for an empty body), an [`Error`]
    /// from the problem otherwise.
    async fn send(&self, what: &str, req: RequestBuilder) -> Result<Value> {
        let res = req
            .send()
            .await
            .map_err(|e| self.transport_error(what, e))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| self.transport_error(what, e))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| {
                Error::Other(format!(
                    "{what}: the server at {} answered {status} with a body that is not JSON \
                     ({e}); is it a bigmgr server?",
                    self.base
                ))
            });
        }
        Err(problem(status, &text, what, &self.base))
    }

    /// A transport failure as an [`Error::Other`] naming the server.
    fn transport_error(&self, what: &str, e: reqwest::Error) -> Error {
        let reason = innermost(&e);
        if e.is_connect() {
            Error::Other(format!(
                "cannot connect to the bigmgr server at {}: {reason}",
                self.base
            ))
        } else if e.is_timeout() {
            Error::Other(format!(
                "{what}: the bigmgr server at {} did not answer within {:?}",
                self.base, self.timeout
            ))
        } else {
            Error::Other(format!(
                "{what}: talking to the bigmgr server at {}: {reason}",
                self.base
            ))
        }
    }

    /// `METHOD path` with an optional JSON body, read as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        let what = format!("{method} {PREFIX}{path}");
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(b);
        }
        let v = self.send(&what, req).await?;
        decode(&what, v)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T> {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let what = format!("DELETE {PREFIX}{path}");
        self.send(&what, self.request(Method::DELETE, path))
            .await
            .map(drop)
    }

    /// Every item of a paged list at `path`, following `next` to the last page. A bare
    /// array is read as one last page.
    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let what = format!("GET {PREFIX}{path}");
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page_path = match &after {
                Some(a) => format!("{path}?after={}", seg(a)),
                None => path.to_string(),
            };
            let page = self
                .send(&what, self.request(Method::GET, &page_path))
                .await?;
            let (page_items, next) = split_page(page).ok_or_else(|| {
                Error::Other(format!(
                    "{what}: the server answered neither a JSON array nor a page {{\"items\": [...]}}"
                ))
            })?;
            for item in page_items {
                items.push(decode(&what, item)?);
            }
            match next {
                Some(n) if after.as_ref() != Some(&n) => after = Some(n),
                _ => return Ok(items),
            }
        }
        Err(Error::Other(format!(
            "{what}: more than {MAX_PAGES} pages; giving up"
        )))
    }
}

/// Checks a server URL: `http://host[:port][/base]`, nothing else; answers it without a
/// trailing `/`.
fn check_url(url: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::InvalidInput(format!(
            "bad server URL '{url}': {why}; give http://HOST:PORT, e.g. http://127.0.0.1:8080"
        ))
    };
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "http" => {}
        "https" => {
            return Err(bad(
                "https is not supported (the client speaks plain HTTP; put bigmgr behind a \
                 local proxy or use http://)",
            ));
        }
        other => return Err(bad(&format!("the scheme '{other}' is not http"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("it may not have a query or fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("credentials go in the token, not the URL"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// A JSON value as `T`, or an error saying the answer had an unexpected shape.
fn decode<T: DeserializeOwned>(what: &str, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        Error::Other(format!(
            "{what}: the server's answer has an unexpected shape ({e}); is the server the same \
             version as this client ({})?",
            env!("CARGO_PKG_VERSION")
        ))
    })
}

/// A list answer's items and its next cursor: a bare array is one last page.
fn split_page(page: Value) -> Option<(Vec<Value>, Option<String>)> {
    match page {
        Value::Array(items) => Some((items, None)),
        Value::Object(mut map) => {
            let Some(Value::Array(items)) = map.remove("items") else {
                return None;
            };
            let next = match map.remove("next") {
                Some(Value::String(s)) if !s.is_empty() => Some(s),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            Some((items, next))
        }
        _ => None,
    }
}

/// An error answer as an [`Error`]: the kind by status, the message the problem's `detail`
/// (else the status and the start of the body).
fn problem(status: StatusCode, body: &str, what: &str, base: &str) -> Error {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string))
        .filter(|d| !d.is_empty());
    let message = detail.unwrap_or_else(|| {
        let snippet: String = body.trim().chars().take(200).collect();
        format!(
            "{what}: the server at {base} answered {status}{}{snippet}",
            if snippet.is_empty() { "" } else { ": " }
        )
    });
    match status.as_u16() {
        404 => Error::NotFound(message),
        409 => Error::Conflict(message),
        401 | 403 => Error::PermissionDenied(message),
        400 | 413 | 415 | 422 => Error::InvalidInput(message),
        _ => Error::Other(message),
    }
}

/// The innermost cause's message (`Connection refused (os error 111)`), which says more than
/// reqwest's outer "error sending request".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Percent-encodes one path segment (a cluster, host or service name).
fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/clusters/{cluster}` with the name encoded.
fn cluster_path(cluster: &str) -> String {
    format!("/clusters/{}", seg(cluster))
}

/// `/clusters/{cluster}/services/{service}`.
fn service_path(cluster: &str, service: &str) -> String {
    format!("{}/services/{}", cluster_path(cluster), seg(service))
}

/// `GET /stacks`'s item: the services are objects there; the client keeps their names.
#[derive(Deserialize)]
struct StackView {
    name: String,
    version: String,
    #[serde(default)]
    services: Vec<NamedView>,
}

#[derive(Deserialize)]
struct NamedView {
    name: String,
}

/// `POST /clusters/{c}/join-tokens`'s answer.
#[derive(Deserialize)]
struct JoinToken {
    token: String,
}

/// `GET /jobs/{job}/tasks/{task}/log`'s answer.
#[derive(Deserialize)]
struct TaskLog {
    lines: Vec<LogLineInfo>,
}

/// A service view with its units' `service` filled in (the service view's units leave it
/// out: they are the service's own).
fn with_unit_services(mut s: ServiceInfo) -> ServiceInfo {
    for u in &mut s.units {
        if u.service.is_empty() {
            u.service = s.name.clone();
        }
    }
    s
}

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<Value> {
    serde_json::to_value(v)
        .map_err(|e| Error::InvalidInput(format!("{what} cannot be written as JSON: {e}")))
}

#[async_trait]
impl Backend for Rest {
    async fn clusters(&self) -> Result<Vec<ClusterInfo>> {
        self.list("/clusters").await
    }

    async fn create_cluster(&self, name: &str) -> Result<ClusterInfo> {
        self.post("/clusters", &json!({ "name": name })).await
    }

    async fn cluster(&self, name: &str) -> Result<ClusterInfo> {
        self.get(&cluster_path(name)).await
    }

    async fn delete_cluster(&self, name: &str) -> Result<()> {
        self.delete(&cluster_path(name)).await
    }

    async fn create_join_token(&self, cluster: &str) -> Result<String> {
        let path = format!("{}/join-tokens", cluster_path(cluster));
        let t: JoinToken = self.post(&path, &json!({})).await?;
        Ok(t.token)
    }

    async fn hosts(&self, cluster: &str) -> Result<Vec<HostInfo>> {
        self.list(&format!("{}/hosts", cluster_path(cluster))).await
    }

    async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Result<HostInfo> {
        let path = format!("{}/hosts", cluster_path(cluster));
        self.post(&path, &json!({ "name": name, "address": address }))
            .await
    }

    async fn remove_host(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete(&format!("{}/hosts/{}", cluster_path(cluster), seg(name)))
            .await
    }

    async fn stacks(&self) -> Result<Vec<StackInfo>> {
        let views: Vec<StackView> = self.list("/stacks").await?;
        Ok(views
            .into_iter()
            .map(|s| StackInfo {
                name: s.name,
                version: s.version,
                services: s.services.into_iter().map(|x| x.name).collect(),
            })
            .collect())
    }

    async fn services(&self, cluster: &str) -> Result<Vec<ServiceInfo>> {
        let services: Vec<ServiceInfo> = self
            .list(&format!("{}/services", cluster_path(cluster)))
            .await?;
        Ok(services.into_iter().map(with_unit_services).collect())
    }

    async fn service(&self, cluster: &str, name: &str) -> Result<ServiceInfo> {
        Ok(with_unit_services(
            self.get(&service_path(cluster, name)).await?,
        ))
    }

    async fn add_service(&self, cluster: &str, req: AddService) -> Result<ServiceInfo> {
        let body = to_json("the service", &req)?;
        let s: ServiceInfo = self
            .post(&format!("{}/services", cluster_path(cluster)), &body)
            .await?;
        Ok(with_unit_services(s))
    }

    async fn remove_service(&self, cluster: &str, name: &str) -> Result<()> {
        self.delete(&service_path(cluster, name)).await
    }

    async fn update_configs(
        &self,
        cluster: &str,
        service: &str,
        change: ConfigChange,
    ) -> Result<ConfigVersionInfo> {
        let body = to_json("the config change", &change)?;
        let path = format!("{}/configs", service_path(cluster, service));
        self.call(Method::PATCH, &path, Some(&body)).await
    }

    async fn config_versions(
        &self,
        cluster: &str,
        service: &str,
    ) -> Result<Vec<ConfigVersionInfo>> {
        self.list(&format!("{}/configs", service_path(cluster, service)))
            .await
    }

    async fn rollback_configs(
        &self,
        cluster: &str,
        service: &str,
        to: u32,
        message: Option<String>,
    ) -> Result<ConfigVersionInfo> {
        let path = format!("{}/configs/rollback", service_path(cluster, service));
        self.post(&path, &json!({ "to": to, "message": message }))
            .await
    }

    async fn config_version(
        &self,
        cluster: &str,
        service: &str,
        version: u32,
    ) -> Result<ConfigVersionInfo> {
        self.get(&format!(
            "{}/configs/{version}",
            service_path(cluster, service)
        ))
        .await
    }

    async fn diff_configs(
        &self,
        cluster: &str,
        service: &str,
        from: u32,
        to: u32,
    ) -> Result<Vec<ConfigDiffInfo>> {
        self.get(&format!(
            "{}/configs/diff?from={from}&to={to}",
            service_path(cluster, service)
        ))
        .await
    }

    async fn create_snapshot(
        &self,
        cluster: &str,
        name: &str,
        message: &str,
    ) -> Result<SnapshotInfo> {
        let path = format!("{}/snapshots", cluster_path(cluster));
        self.post(&path, &json!({ "name": name, "message": message }))
            .await
    }

    async fn snapshots(&self, cluster: &str) -> Result<Vec<SnapshotInfo>> {
        self.list(&format!("{}/snapshots", cluster_path(cluster)))
            .await
    }

    async fn restore_snapshot(&self, cluster: &str, name: &str) -> Result<Vec<ConfigVersionInfo>> {
        let path = format!("{}/snapshots/{}/restore", cluster_path(cluster), seg(name));
        self.call(Method::POST, &path, None).await
    }

    async fn units(&self, cluster: &str) -> Result<Vec<UnitInfo>> {
        self.list(&format!("{}/units", cluster_path(cluster))).await
    }

    async fn add_units(
        &self,
        cluster: &str,
        service: &str,
        component: &str,
        hosts: &[String],
    ) -> Result<Vec<UnitInfo>> {
        let path = format!("{}/units", service_path(cluster, service));
        self.post(&path, &json!({ "component": component, "hosts": hosts }))
            .await
    }

    async fn remove_unit(&self, cluster: &str, unit: i64) -> Result<()> {
        self.delete(&format!("{}/units/{unit}", cluster_path(cluster)))
            .await
    }

    async fn restart_stale(&self, cluster: &str, service: Option<&str>) -> Result<Vec<JobInfo>> {
        let path = format!("{}/restart-stale", cluster_path(cluster));
        let body = match service {
            Some(s) => json!({ "service": s }),
            None => json!({}),
        };
        self.post(&path, &body).await
    }

    async fn relate(&self, cluster: &str, req: Relate) -> Result<RelationInfo> {
        let body = to_json("the relation", &req)?;
        self.post(&format!("{}/relations", cluster_path(cluster)), &body)
            .await
    }

    async fn relations(&self, cluster: &str) -> Result<Vec<RelationInfo>> {
        self.list(&format!("{}/relations", cluster_path(cluster)))
            .await
    }

    async fn unrelate(&self, cluster: &str, id: i64) -> Result<()> {
        self.delete(&format!("{}/relations/{id}", cluster_path(cluster)))
            .await
    }

    async fn relation_events(&self, cluster: &str, id: i64) -> Result<Vec<RelationEventInfo>> {
        self.list(&format!("{}/relations/{id}/events", cluster_path(cluster)))
            .await
    }

    async fn submit(&self, req: JobRequest) -> Result<JobInfo> {
        let body = json!({
            "command": req.command,
            "target": to_json("the job's target", &req.target)?,
            "options": to_json("the job's options", &req.options)?,
        });
        self.post(&format!("{}/jobs", cluster_path(&req.cluster)), &body)
            .await
    }

    async fn job(&self, id: i64) -> Result<JobInfo> {
        self.get(&format!("/jobs/{id}")).await
    }

    async fn jobs(&self, cluster: &str) -> Result<Vec<JobInfo>> {
        // The server pages oldest first (ascending ids); the trait answers newest first.
        let mut jobs: Vec<JobInfo> = self
            .list(&format!("{}/jobs", cluster_path(cluster)))
            .await?;
        jobs.reverse();
        Ok(jobs)
    }

    async fn control(&self, id: i64, action: JobAction) -> Result<JobInfo> {
        let path = format!("/jobs/{id}/{}", action.as_str());
        let _: Value = self.call(Method::POST, &path, None).await?;
        // The action answers the job without its stages; the caller gets the whole job.
        self.job(id).await
    }

    async fn task_log(&self, job: i64, task: i64) -> Result<Vec<LogLineInfo>> {
        let log: TaskLog = self.get(&format!("/jobs/{job}/tasks/{task}/log")).await?;
        Ok(log.lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let t = Duration::from_secs(5);
        let r = Rest::new("http://127.0.0.1:8080/", None, t).unwrap();
        assert_eq!(r.url(), "http://127.0.0.1:8080");
        let r = Rest::new(" http://localhost:1/base/ ", None, t).unwrap();
        assert_eq!(r.url(), "http://localhost:1/base");
        for bad in [
            "",
            "127.0.0.1:8080",
            "https://127.0.0.1:8080",
            "ftp://h",
            "http://",
            "http://h:1/?x=1",
            "http://u:p@h:1",
            "not a url",
        ] {
            let e = Rest::new(bad, None, t).unwrap_err();
            assert!(matches!(e, Error::InvalidInput(_)), "{bad}: {e:?}");
            assert!(e.to_string().contains("http://HOST:PORT"), "{e}");
        }
        let r = Rest::new("http://h:1", Some("bmt_secret".into()), t).unwrap();
        assert!(!format!("{r:?}").contains("bmt_secret"));
        assert!(matches!(
            Rest::new("http://h:1", None, Duration::ZERO),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn problems_map_by_status() {
        let body = |d: &str| {
            format!(r#"{{"type":"urn:bigmgr:problem:x","title":"T","status":0,"detail":"{d}"}}"#)
        };
        let m = String::new;
        let cases = [
            (404, Error::NotFound(m())),
            (409, Error::Conflict(m())),
            (401, Error::PermissionDenied(m())),
            (403, Error::PermissionDenied(m())),
            (400, Error::InvalidInput(m())),
            (413, Error::InvalidInput(m())),
            (415, Error::InvalidInput(m())),
            (422, Error::InvalidInput(m())),
            (500, Error::Other(m())),
        ];
        for (status, kind) in cases {
            let e = problem(
                StatusCode::from_u16(status).unwrap(),
                &body("it went wrong"),
                "GET /x",
                "http://h",
            );
            assert_eq!(
                std::mem::discriminant(&e),
                std::mem::discriminant(&kind),
                "{status}: {e:?}"
            );
            assert_eq!(e.to_string(), "it went wrong");
        }
        let e = problem(
            StatusCode::BAD_GATEWAY,
            "<html>bad gateway</html>",
            "GET /api/v1/x",
            "http://h",
        );
        assert!(matches!(e, Error::Other(_)));
        assert!(e.to_string().contains("502"), "{e}");
        assert!(e.to_string().contains("bad gateway"), "{e}");
        assert!(e.to_string().contains("GET /api/v1/x"), "{e}");
    }

    #[test]
    fn pages_and_segments() {
        let (items, next) = split_page(json!({"items": [1], "next": "7"})).unwrap();
        assert_eq!((items, next.as_deref()), (vec![json!(1)], Some("7")));
        let (items, next) = split_page(json!([1, 2])).unwrap();
        assert_eq!((items.len(), next), (2, None));
        assert_eq!(
            split_page(json!({"items": [], "next": null})).unwrap().1,
            None
        );
        assert!(split_page(json!({"rows": []})).is_none());
        assert_eq!(seg("hello_server-1.x"), "hello_server-1.x");
        assert_eq!(seg("a b/c?"), "a%20b%2Fc%3F");
    }
}
