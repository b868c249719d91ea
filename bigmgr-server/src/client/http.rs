//! The HTTP side of the client: requests under `/api/v1` with the bearer token, JSON answers,
//! problem+json errors turned into [`Error::Problem`], and lists read whole.
//!
//! A list endpoint answers either a bare JSON array or a page `{"items": [...], "next":
//! cursor|null}`; [`Client::list`] accepts both and follows `next` (`?after=<next>`) until the
//! last page.

use super::settings::Settings;
use super::{Error, Result};
use crate::api::PREFIX;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use std::time::Duration;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The most pages [`Client::list`] reads, against a server whose cursor never ends.
const MAX_PAGES: usize = 10_000;

/// A client of one server's REST API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl Client {
    /// A client for `settings`; a missing token is a configuration error.
    pub fn new(settings: &Settings) -> Result<Client> {
        let token = settings.token.clone().ok_or_else(|| {
            Error::Config(
                "no API token: pass --token, set BIGMGR_TOKEN, or put token = \"…\" in the client \
                 config file (~/.config/bigmgr/client.toml); the admin token is the file \
                 admin-token in the server's data directory"
                    .into(),
            )
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("bigmgr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Http(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client {
            http,
            server: settings.server.clone(),
            token,
        })
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A request to `path` under `/api/v1`.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{PREFIX}{path}", self.server))
            .bearer_auth(&self.token)
    }

    /// Sends `req` and reads the answer: JSON on success (`Null` for an empty body), an
    /// [`Error`] otherwise.
    async fn send(&self, req: RequestBuilder) -> Result<Value> {
        let res = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = res.status();
        let url = res.url().path().to_string();
        let text = res
            .text()
            .await
            .map_err(|e| Error::Http(format!("reading the answer to {url}: {e}")))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| {
                Error::Http(format!(
                    "the server answered {url} with {status} and a body that is not JSON ({e}); \
                     is {} a bigmgr server?",
                    self.server
                ))
            });
        }
        Err(problem(status.as_u16(), &text).unwrap_or_else(|| {
            let snippet: String = text.trim().chars().take(200).collect();
            Error::Http(format!(
                "the server answered {url} with {status}{}{snippet}; is {} a bigmgr server?",
                if snippet.is_empty() { "" } else { ": " },
                self.server
            ))
        }))
    }

    /// A transport failure as an [`Error`]: connecting ones name the server.
    fn transport_error(&self, e: reqwest::Error) -> Error {
        let reason = innermost(&e);
        if e.is_connect() {
            Error::Connect {
                url: self.server.clone(),
                reason,
            }
        } else if e.is_timeout() {
            Error::Http(format!(
                "the server at {} did not answer in time ({reason})",
                self.server
            ))
        } else {
            Error::Http(format!("talking to {}: {reason}", self.server))
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::GET, path)).await
    }

    /// `GET path?query`.
    pub async fn get_query(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        let mut path = path.to_string();
        for (i, (k, v)) in query.iter().enumerate() {
            let sep = if i == 0 && !path.contains('?') {
                '?'
            } else {
                '&'
            };
            path.push_str(&format!("{sep}{}={}", seg(k), seg(v)));
        }
        self.send(self.request(Method::GET, &path)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// `PATCH path` with a JSON body (a merge patch).
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.request(Method::PATCH, path).json(body))
            .await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::DELETE, path)).await
    }

    /// `GET path` of a list endpoint: every item of every page.
    pub async fn list(&self, path: &str) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let query: Vec<(&str, String)> = after.iter().map(|a| ("after", a.clone())).collect();
            let page = self.get_query(path, &query).await?;
            let (mut page_items, next) = split_page(page).ok_or_else(|| {
                Error::Http(format!(
                    "the server answered {path} with neither a JSON array nor {{\"items\": [...]}}"
                ))
            })?;
            items.append(&mut page_items);
            match next {
                Some(next) if after.as_ref() != Some(&next) => after = Some(next),
                _ => return Ok(items),
            }
        }
        Err(Error::Http(format!(
            "{path} has more than {MAX_PAGES} pages; giving up"
        )))
    }
}

/// A list answer's items and its next cursor: a bare array is one last page.
pub fn split_page(page: Value) -> Option<(Vec<Value>, Option<String>)> {
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
pub fn problem(status: u16, body: &str) -> Option<Error> {
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
        assert!(problem(502, "<html>bad gateway</html>").is_none());
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
        let client = Client::new(&Settings {
            server,
            token: Some("t".into()),
        })
        .unwrap();
        let items = client.list("/things").await.unwrap();
        assert_eq!(
            items,
            vec![json!(1), json!(2), json!(3), json!(4), json!(5)]
        );
        assert_eq!(
            client.list("/bare").await.unwrap(),
            vec![json!(7), json!(8)]
        );
        let e = client.list("/nothing").await.unwrap_err();
        assert!(e.to_string().contains("404"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_server() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = Client::new(&Settings {
            server: format!("http://{addr}"),
            token: Some("t".into()),
        })
        .unwrap();
        let e = client.get("/clusters").await.unwrap_err();
        assert!(matches!(e, Error::Connect { .. }), "{e}");
        assert!(e.to_string().contains(&format!("http://{addr}")), "{e}");
        assert!(
            Client::new(&Settings {
                server: "http://h".into(),
                token: None
            })
            .is_err()
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(seg("hello_server-1.x"), "hello_server-1.x");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }
}
