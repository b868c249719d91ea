//! A REST client of a server under test, under `/api/v1`, that sends a bearer token.

use crate::agent::AgentProc;
use crate::sse::EventReader;
use crate::wait::wait_until;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
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
    url: String,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client of `url` sending `token` as bearer token, if given.
    pub fn new(url: &str, token: Option<String>) -> Api {
        install_crypto();
        Api {
            http: reqwest::Client::new(),
            url: url.to_string(),
            base: format!("{url}/api/v1"),
            token,
        }
    }

    /// The same client trusting only the CA certificate in the PEM file `ca` (for an
    /// `https://` server).
    pub fn with_ca(&self, ca: &std::path::Path) -> Api {
        Api {
            http: http_client_trusting(ca),
            ..self.clone()
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

    /// Opens the Server-Sent Events stream at `path` (200 expected), to read as it arrives.
    pub async fn events(&self, path: &str) -> EventReader {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(res.status().as_u16(), 200, "GET {path}");
        EventReader::new(res)
    }

    /// Sends `body` as JSON.
    async fn send_json(&self, method: reqwest::Method, path: &str, body: Value) -> Resp {
        let bytes = serde_json::to_vec(&body).expect("json");
        self.send(method, path, Some(("application/json", bytes)))
            .await
    }

    /// PATCH with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send_json(reqwest::Method::PATCH, path, body).await
    }

    /// PUT a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send_json(reqwest::Method::PUT, path, body).await
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send_json(reqwest::Method::POST, path, body).await
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

    /// GETs a list (200 expected): the answer's array, or its `items` if it is a page.
    pub async fn list(&self, path: &str) -> Vec<Value> {
        let res = self.get(path).await;
        let body = res.expect(200);
        let list = body.get("items").unwrap_or(body);
        list.as_array()
            .unwrap_or_else(|| panic!("GET {path}: not a list: {body}"))
            .clone()
    }

    /// Creates a cluster and returns it.
    pub async fn create_cluster(&self, name: &str) -> Value {
        self.post("/clusters", json!({ "name": name }))
            .await
            .expect(201)
            .clone()
    }

    /// A fresh join token of `cluster`.
    pub async fn join_token(&self, cluster: &str) -> String {
        self.join_token_answer(cluster).await["token"]
            .as_str()
            .expect("a token")
            .to_string()
    }

    /// A new join token of `cluster`: the whole answer (`token`, `ca_fingerprint`, `command`).
    pub async fn join_token_answer(&self, cluster: &str) -> Value {
        let t = self
            .post(&format!("/clusters/{cluster}/join-tokens"), json!({}))
            .await;
        t.expect(201).clone()
    }

    /// Adds host `name` on `address` to `cluster` (no agent) and returns it.
    pub async fn add_host(&self, cluster: &str, name: &str, address: &str) -> Value {
        let body = json!({"name": name, "address": address});
        let host = self.post(&format!("/clusters/{cluster}/hosts"), body).await;
        host.expect(201).clone()
    }

    /// Adds a service (`body` as `POST /clusters/{cluster}/services` takes it) and returns it.
    pub async fn add_service(&self, cluster: &str, body: Value) -> Value {
        let svc = self
            .post(&format!("/clusters/{cluster}/services"), body)
            .await;
        svc.expect(201).clone()
    }

    /// Relates `requirer` to `provider` in `cluster` (each `SERVICE` or `SERVICE:ENDPOINT`),
    /// and answers as the server did.
    pub async fn relate(&self, cluster: &str, requirer: &str, provider: &str) -> Resp {
        let body = json!({"requirer": requirer, "provider": provider});
        self.post(&format!("/clusters/{cluster}/relations"), body)
            .await
    }

    /// Asks for `command` on `target` (`"cluster"`, `{"service": …}`, …) in `cluster`, and
    /// answers as the server did.
    pub async fn post_job(&self, cluster: &str, command: &str, target: Value) -> Resp {
        let body = json!({"command": command, "target": target});
        self.post(&format!("/clusters/{cluster}/jobs"), body).await
    }

    /// Submits `command` on `target` in `cluster` (202 expected) and returns the job's id.
    pub async fn submit(&self, cluster: &str, command: &str, target: Value) -> i64 {
        let job = self.post_job(cluster, command, target).await;
        job.expect(202)["id"].as_i64().expect("a job id")
    }

    /// Submits a job and waits (at most `timeout`) until it SUCCEEDED; see
    /// [`Api::expect_success`].
    pub async fn run_job(
        &self,
        cluster: &str,
        command: &str,
        target: Value,
        timeout: Duration,
    ) -> Value {
        let id = self.submit(cluster, command, target).await;
        self.expect_success(id, timeout).await
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

    /// Waits for job `id` to end and returns its detail; panics with every failed task's log
    /// unless it SUCCEEDED.
    pub async fn expect_success(&self, id: i64, timeout: Duration) -> Value {
        let done = self.wait_job(id, timeout).await;
        if done["state"] != "SUCCEEDED" {
            let mut report = format!("job {id} ended {}:\n", done["state"]);
            for st in done["stages"].as_array().into_iter().flatten() {
                for t in st["tasks"].as_array().into_iter().flatten() {
                    if t["state"] != "SUCCEEDED" {
                        let log = self.get(&format!("/jobs/{id}/tasks/{}/log", t["id"])).await;
                        report += &format!(
                            "--- {} on {}: {} {}\n{}\n",
                            st["name"], t["host"], t["state"], t["message"], log.body
                        );
                    }
                }
            }
            panic!("{report}");
        }
        done
    }

    /// Waits (at most 30 s) until host `host` of `cluster` is ONLINE.
    pub async fn wait_online(&self, cluster: &str, host: &str) {
        let path = format!("/clusters/{cluster}/hosts/{host}");
        wait_until(
            &format!("{host} to come online"),
            Duration::from_secs(30),
            || async {
                let h = self.get(&path).await;
                (h.status == 200 && h.body["state"] == "ONLINE").then_some(())
            },
        )
        .await
    }

    /// Creates user `name` with `role` (password "correct horse") as this client's user (an
    /// admin) and returns a new API token of theirs.
    pub async fn user_token(&self, name: &str, role: &str) -> String {
        self.post(
            "/users",
            serde_json::json!({"name": name, "password": "correct horse", "role": role}),
        )
        .await
        .expect(201);
        let t = self
            .post(
                &format!("/users/{name}/tokens"),
                serde_json::json!({"name": "test"}),
            )
            .await;
        t.expect(201)["token"]
            .as_str()
            .expect("a token")
            .to_string()
    }

    /// Starts agent `name` on `address` with a fresh join token of `cluster` and a fresh root,
    /// and returns once it is ONLINE.
    pub async fn join_agent(&self, cluster: &str, name: &str, address: &str) -> AgentProc {
        let answer = self.join_token_answer(cluster).await;
        let mut cmd = AgentProc::cmd(&self.url, name, address)
            .join_token(answer["token"].as_str().expect("a token"));
        if let Some(fp) = answer["ca_fingerprint"].as_str() {
            cmd = cmd.arg("--ca-fingerprint").arg(fp);
        }
        let agent = cmd.start();
        self.wait_online(cluster, name).await;
        agent
    }
}

/// An HTTP client that trusts only the CA certificates in the PEM file `ca`. (Core's
/// `tls::ca_client_config` builds the same for the CLI; this crate does not depend on core,
/// which depends on it for its tests.)
pub fn http_client_trusting(ca: &std::path::Path) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(ca).unwrap_or_else(|e| panic!("{}: {e}", ca.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("a PEM certificate")).expect("a CA");
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("an HTTP client")
}

/// Makes ring the process's TLS crypto provider (reqwest, built with `rustls-no-provider`,
/// needs one for any client, plain HTTP too). Idempotent; every `Api` calls it.
pub fn install_crypto() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
