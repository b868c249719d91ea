//! A REST client of a server under test, under `/api/v1`, that sends a bearer token.

use crate::wait::wait_until;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use std::time::Duration;

/// A REST answer.
#[derive(Debug)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The Content-Type.
    pub content_type: String,
    /// The Location header, if any.
    pub location: Option<String>,
    /// The body as JSON (`Null` if empty or not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl Resp {
    /// Asserts the status, showing the body if it differs.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        &self.body
    }

    /// Asserts an RFC 9457 problem with this status, and returns its detail.
    #[track_caller]
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], status, "{}", self.text);
        let kind = self.body["type"].as_str().expect("a type");
        assert!(kind.starts_with("urn:bigmgr:problem:"), "{kind}");
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()));
        let detail = self.body["detail"].as_str().expect("a detail");
        assert!(!detail.is_empty());
        detail.to_string()
    }
}

/// A REST client of one server, under `/api/v1`.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client of `url` sending `token` as bearer token, if given.
    pub fn new(url: &str, token: Option<String>) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("{url}/api/v1"),
            token,
        }
    }

    /// The same client with another token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api {
            token: token.map(str::to_string),
            ..self.clone()
        }
    }

    /// Sends a request to `path` (under `/api/v1`).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = res.status().as_u16();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type").unwrap_or_default();
        let location = header("location");
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            content_type,
            location,
            body,
            text,
        }
    }

    /// PATCH with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        let bytes = serde_json::to_vec(&body).expect("json");
        self.send(
            reqwest::Method::PATCH,
            path,
            Some(("application/json", bytes)),
        )
        .await
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        let bytes = serde_json::to_vec(&body).expect("json");
        self.send(
            reqwest::Method::POST,
            path,
            Some(("application/json", bytes)),
        )
        .await
    }

    /// POST raw bytes as JSON (for malformed bodies).
    pub async fn post_raw(&self, path: &str, bytes: impl Into<Vec<u8>>) -> Resp {
        self.send(
            reqwest::Method::POST,
            path,
            Some(("application/json", bytes.into())),
        )
        .await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Creates a cluster and returns it.
    pub async fn create_cluster(&self, name: &str) -> Value {
        self.post("/clusters", serde_json::json!({ "name": name }))
            .await
            .expect(201)
            .clone()
    }

    /// Waits until a job reaches a final state and returns its detail.
    pub async fn wait_job(&self, id: i64, timeout: Duration) -> Value {
        wait_until(&format!("job {id} to finish"), timeout, || async move {
            let job = self.get(&format!("/jobs/{id}")).await;
            let state = job.body["state"].as_str().unwrap_or_default().to_string();
            ["SUCCEEDED", "FAILED", "CANCELED"]
                .contains(&state.as_str())
                .then_some(job.body)
        })
        .await
    }
}
