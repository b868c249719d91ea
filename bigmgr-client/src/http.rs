//! The connection: requests under `/api/v1` with the bearer token, JSON answers decoded into
//! the requested type, problem+json errors turned into [`Error::Problem`], and lists read
//! whole across pages.
//!
//! A list route answers a page `{"items": [...], "next": cursor|null}` (or a bare array, one
//! last page); [`Client::list`] follows `next` (`?after=<next>`) until the last page.

use crate::{Error, Result};
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// The API's prefix on the server.
pub const PREFIX: &str = "/api/v1";
/// The most pages [`Client::list`] reads, against a server whose cursor never ends.
const MAX_PAGES: usize = 100_000;
/// The longest connect timeout (the request timeout bounds it too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The methods of the verbs that send a JSON body: `name => METHOD` → `name(path, body)`, a
/// [`Client::send_json`] with that method.
macro_rules! json_verbs {
    ($($(#[doc = $doc:literal])* $name:ident => $method:ident,)*) => {$(
        $(#[doc = $doc])*
        pub async fn $name<T: DeserializeOwned, B: Serialize + ?Sized>(
            &self,
            path: &str,
            body: &B,
        ) -> Result<T> {
            self.send_json(Method::$method, path, body).await
        }
    )*};
}

/// A client of one bigmgr server's REST API.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `http://host:port` (and a base path, if the server sits under one), no trailing `/`.
    base: String,
    token: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    /// The URL and whether there is a token, never the token itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.base)
            .field("token", &self.token.as_ref().map(|_| "********"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A client of the server at `url` (`https://host:port`, or `http://` for a server run
    /// with `--insecure-http`), sending `token` as the bearer token; each request may take
    /// `timeout` (following a job's events is not bounded by it). An `https://` server is
    /// trusted only if its certificate chains to the CA in the PEM file `ca` (the server's
    /// `<data>/tls/ca.pem`).
    pub fn new(
        url: &str,
        token: Option<&str>,
        timeout: Duration,
        ca: Option<&std::path::Path>,
    ) -> Result<Client> {
        let base = check_url(url)?;
        if timeout.is_zero() {
            return Err(Error::Invalid(
                "the timeout must be more than 0 seconds".into(),
            ));
        }
        bigmgr_core::tls::install_default_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .user_agent(concat!("bigmgr-client/", env!("CARGO_PKG_VERSION")));
        if base.starts_with("https://") {
            let ca = ca.ok_or_else(|| {
                Error::Invalid(format!(
                    "{base} speaks TLS: give the server's CA certificate with --ca FILE \
                     (BIGMGR_CA, or ca in client.toml); the server keeps it in <data>/tls/ca.pem"
                ))
            })?;
            let tls = bigmgr_core::tls::ca_client_config(ca, &[b"h2", b"http/1.1"])
                .map_err(|e| Error::Invalid(e.to_string()))?;
            builder = builder.tls_backend_preconfigured(std::sync::Arc::unwrap_or_clone(tls));
        }
        let http = builder
            .build()
            .map_err(|e| Error::Http(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            token: token.filter(|t| !t.is_empty()).map(str::to_owned),
            timeout,
        })
    }

    /// The server's base URL, as normalised (no trailing `/`).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// A request to `path` under `/api/v1`, with the token, bounded by the timeout.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.unbounded(method, path).timeout(self.timeout)
    }

    /// A request to `path` under `/api/v1` with the token and no overall timeout (a stream).
    pub(crate) fn unbounded(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self
            .http
            .request(method, format!("{}{PREFIX}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends `req` and reads the answer: JSON on success (`Null` for an empty body), an
    /// [`Error`] otherwise.
    pub(crate) async fn send(&self, what: &str, req: RequestBuilder) -> Result<Value> {
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
                Error::Http(format!(
                    "{what}: the server at {} answered {status} with a body that is not JSON \
                     ({e}); is it a bigmgr server?",
                    self.base
                ))
            });
        }
        Err(self.refusal(what, status.as_u16(), &text))
    }

    /// A non-success answer as an [`Error`]: its problem, or what it was.
    pub(crate) fn refusal(&self, what: &str, status: u16, body: &str) -> Error {
        problem(status, body).unwrap_or_else(|| {
            let snippet: String = body.trim().chars().take(200).collect();
            Error::Http(format!(
                "{what}: the server at {} answered {status}{}{snippet}; is it a bigmgr server?",
                self.base,
                if snippet.is_empty() { "" } else { ": " },
            ))
        })
    }

    /// A transport failure as an [`Error`]: connecting ones name the server.
    pub(crate) fn transport_error(&self, what: &str, e: reqwest::Error) -> Error {
        let reason = innermost(&e);
        if e.is_connect() {
            Error::Connect {
                url: self.base.clone(),
                reason,
            }
        } else if e.is_timeout() {
            Error::Http(format!(
                "{what}: the bigmgr server at {} did not answer within {:?}",
                self.base, self.timeout
            ))
        } else {
            Error::Http(format!(
                "{what}: talking to the bigmgr server at {}: {reason}",
                self.base
            ))
        }
    }

    /// Sends `req` (described as `what` in errors) and reads the answer as `T`.
    async fn exchange<T: DeserializeOwned>(&self, what: String, req: RequestBuilder) -> Result<T> {
        let v = self.send(&what, req).await?;
        decode(&what, v)
    }

    /// `GET path`, read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let what = format!("GET {PREFIX}{path}");
        self.exchange(what, self.request(Method::GET, path)).await
    }

    /// `method path` with `body` as JSON, read as `T`.
    pub async fn send_json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let what = format!("{method} {PREFIX}{path}");
        self.exchange(what, self.request(method, path).json(body))
            .await
    }

    json_verbs! {
        /// `POST path` with `body`, read as `T`.
        post => POST,
        /// `PATCH path` with `body`, read as `T`.
        patch => PATCH,
        /// `PUT path` with `body`, read as `T`.
        put => PUT,
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<()> {
        let what = format!("DELETE {PREFIX}{path}");
        self.send(&what, self.request(Method::DELETE, path))
            .await
            .map(drop)
    }

    /// Every item of the paged list at `path` (which may carry a query), following `next` to
    /// the last page.
    pub async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let what = format!("GET {PREFIX}{path}");
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page_path = match &after {
                Some(a) => {
                    let sep = if path.contains('?') { '&' } else { '?' };
                    format!("{path}{sep}after={}", seg(a))
                }
                None => path.to_string(),
            };
            let page = self
                .send(&what, self.request(Method::GET, &page_path))
                .await?;
            let (page_items, next) = split_page(page).ok_or_else(|| {
                Error::Http(format!(
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
        Err(Error::Http(format!(
            "{what}: more than {MAX_PAGES} pages; giving up"
        )))
    }
}

/// Checks a server URL: `http://host[:port][/base]`, nothing else; answers it without a
/// trailing `/`.
fn check_url(url: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "bad server URL '{url}': {why}; give https://HOST:PORT, e.g. https://127.0.0.1:7070"
        ))
    };
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(bad(&format!("the scheme '{other}' is not https or http"))),
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
pub(crate) fn decode<T: DeserializeOwned>(what: &str, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        Error::Http(format!(
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

/// A problem+json body as [`Error::Problem`]; `None` if the body is not one.
pub(crate) fn problem(status: u16, body: &str) -> Option<Error> {
    let v: Value = serde_json::from_str(body).ok()?;
    let detail = v.get("detail")?.as_str()?.to_string();
    let title = v
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("Error")
        .to_string();
    Some(Error::Problem {
        status,
        title,
        detail,
    })
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

/// The path of route `rest` under cluster `cluster` (`/clusters/{cluster}/{rest}`).
pub(crate) fn in_cluster(cluster: &str, rest: &str) -> String {
    format!("/clusters/{}/{rest}", seg(cluster))
}

/// Percent-encodes one path segment (a cluster, host or service name) or query value.
pub fn seg(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_list_shapes_are_read() {
        let (items, next) = split_page(json!([1, 2])).unwrap();
        assert_eq!(items, vec![json!(1), json!(2)]);
        assert_eq!(next, None);
        let (items, next) = split_page(json!({"items": [3], "next": "c2"})).unwrap();
        assert_eq!(items, vec![json!(3)]);
        assert_eq!(next.as_deref(), Some("c2"));
        let (_, next) = split_page(json!({"items": [], "next": 17})).unwrap();
        assert_eq!(next.as_deref(), Some("17"));
        let (_, next) = split_page(json!({"items": [], "next": null})).unwrap();
        assert_eq!(next, None);
        assert!(split_page(json!({"rows": []})).is_none());
        assert!(split_page(json!("x")).is_none());
    }

    #[test]
    fn problems_keep_title_and_detail() {
        let body = r#"{"type":"urn:bigmgr:problem:not-found","title":"Not Found","status":404,"detail":"cluster 'x' not found"}"#;
        let e = problem(404, body).unwrap();
        assert_eq!(e.to_string(), "cluster 'x' not found (404 Not Found)");
        assert_eq!(e.status(), Some(404));
        assert!(problem(502, "<html>bad gateway</html>").is_none());
    }

    #[test]
    fn urls_are_checked() {
        let ok = |u: &str| check_url(u).unwrap();
        assert_eq!(ok("http://127.0.0.1:7070/"), "http://127.0.0.1:7070");
        assert_eq!(ok(" http://h:1/base/ "), "http://h:1/base");
        assert_eq!(ok("https://h:1"), "https://h:1");
        for bad in ["", "ftp://h", "http://h:1/?q=1", "http://u:p@h:1", "nope"] {
            assert!(matches!(check_url(bad), Err(Error::Invalid(_))), "{bad}");
        }
        // An https server needs the CA to trust.
        let e = Client::new("https://h:1", None, Duration::from_secs(1), None).unwrap_err();
        assert!(e.to_string().contains("--ca"), "{e}");
    }

    /// A server whose `/api/v1/things` has three pages (`after` = the last item of the page
    /// before), whose `/api/v1/bare` is a bare array, and which checks the token.
    async fn pager() -> String {
        use axum::extract::Query;
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::get;
        use std::collections::HashMap;
        async fn things(
            headers: HeaderMap,
            Query(q): Query<HashMap<String, String>>,
        ) -> Result<axum::Json<Value>, StatusCode> {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer t") {
                return Err(StatusCode::UNAUTHORIZED);
            }
            let page = match q.get("after").map(String::as_str) {
                None => json!({"items": [1, 2], "next": "2"}),
                Some("2") => json!({"items": [3, 4], "next": "4"}),
                Some("4") => json!({"items": [5], "next": null}),
                Some(_) => return Err(StatusCode::BAD_REQUEST),
            };
            Ok(axum::Json(page))
        }
        let app = axum::Router::new()
            .route("/api/v1/things", get(things))
            .route("/api/v1/bare", get(|| async { axum::Json(json!([7, 8])) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn lists_follow_next_across_pages() {
        let server = pager().await;
        let client = Client::new(&server, Some("t"), Duration::from_secs(5), None).unwrap();
        let items: Vec<i64> = client.list("/things").await.unwrap();
        assert_eq!(items, vec![1, 2, 3, 4, 5]);
        let bare: Vec<i64> = client.list("/bare").await.unwrap();
        assert_eq!(bare, vec![7, 8]);
        let e = client.list::<i64>("/nothing").await.unwrap_err();
        assert!(e.to_string().contains("404"), "{e}");
        let wrong = Client::new(&server, Some("x"), Duration::from_secs(5), None).unwrap();
        assert!(
            wrong
                .list::<i64>("/things")
                .await
                .unwrap_err()
                .to_string()
                .contains("401")
        );
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_server() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = Client::new(
            &format!("http://{addr}"),
            Some("t"),
            Duration::from_secs(5),
            None,
        )
        .unwrap();
        let e = client.get::<Value>("/clusters").await.unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e}");
        assert!(e.to_string().contains(&format!("http://{addr}")), "{e}");
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(seg("hello_server-1.x"), "hello_server-1.x");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }
}
