//! `POST /mcp`, the assistant's tools as a Model Context Protocol server, against a real server
//! process. A real MCP client drives it: the official MCP Python SDK from PyPI (pinned in
//! scripts/test.sh, which installs it into the venv `target/mcp-venv`), run by
//! `tests/mcp_client.py`. It connects with a token, lists the tools its role may use, calls
//! them, gets proposals (not changes) from the mutating ones, and is refused without a token.
//! The JSON-RPC edge cases the SDK never sends are checked with plain HTTP.

use bigmgr_test_support::{ServerProc, assert_contains};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The venv's python with the MCP SDK: `BIGMGR_MCP_PYTHON`, else `target/mcp-venv` of the
/// repository (scripts/test.sh makes it). Panics saying how to make it when it is missing.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BIGMGR_MCP_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = repo.join("target/mcp-venv/bin/python");
    let has_sdk = python.exists()
        && Command::new(&python)
            .args(["-c", "import mcp.client.streamable_http"])
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        has_sdk,
        "{} with the MCP Python SDK is missing: run scripts/test.sh, which makes it, or \
         `python3 -m venv target/mcp-venv && target/mcp-venv/bin/pip install mcp==<the version \
         scripts/test.sh pins>` in the repository (or set BIGMGR_MCP_PYTHON)",
        python.display()
    );
    python
}

/// Runs `tests/mcp_client.py` against the server's `/mcp` with `token` (or none), calling
/// `calls` (`[{"tool", "arguments"}]`), and returns what it printed.
async fn client(server: &ServerProc, token: Option<&str>, calls: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py");
    let mut cmd = Command::new(python());
    cmd.arg(script)
        .arg(format!("{}/mcp", server.url))
        .arg(calls.to_string())
        .env("MCP_TOKEN", token.unwrap_or(""))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("start the MCP client");
        let start = Instant::now();
        while child.try_wait().expect("wait for the MCP client").is_none() {
            if start.elapsed() > Duration::from_secs(180) {
                let _ = child.kill();
                panic!("the MCP client did not finish in 180 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("the MCP client's output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the MCP client failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("the MCP client printed no JSON ({e}):\n{stdout}\n{stderr}"))
    })
    .await
    .expect("the MCP client's thread")
}

fn tool_names(out: &Value) -> Vec<String> {
    out["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {out}"))
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect()
}

/// The answer to the call of `tool`.
fn called<'a>(out: &'a Value, tool: &str) -> &'a Value {
    out["calls"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["tool"] == tool))
        .unwrap_or_else(|| panic!("no call of {tool}: {out}"))
}

#[tokio::test]
async fn the_mcp_sdk_connects_with_a_token_and_uses_the_tools_its_role_may() {
    let server = ServerProc::start();
    let admin = server.api();
    admin.create_cluster("c").await;
    // A host without an agent and a service on it: jobs would just wait.
    admin.add_host("c", "h1", "127.0.0.2").await;
    admin
        .add_service(
            "c",
            json!({"name": "hello", "stack": "demo", "service": "hello",
                   "placement": {"hello_server": ["h1"]}}),
        )
        .await;
    // A secret config value (Redis's requirepass), and a job whose reason someone wrote it
    // into: it reaches no MCP client.
    const SECRET: &str = "s3cret-Pw-42";
    admin
        .add_service(
            "c",
            json!({"name": "cache", "stack": "extra", "service": "redis",
                   "placement": {"redis_primary": ["h1"]},
                   "configs": {"redis.conf": {"requirepass": SECRET, "port": 6391}}}),
        )
        .await;
    let job = admin
        .post(
            "/clusters/c/jobs",
            json!({"command": "install", "target": {"service": "hello"},
                   "options": {"reason": format!("the password is {SECRET}")}}),
        )
        .await;
    let job = job.expect(202)["id"].as_i64().expect("job id");
    let viewer = admin.user_token("vic", "viewer").await;
    let operator = admin.user_token("olga", "operator").await;

    // A viewer: connects, sees only the read-only tools a viewer may use, reads the real
    // cluster, and is refused the admins' tool and the proposing ones (results with isError,
    // no data).
    let out = client(
        &server,
        Some(&viewer),
        json!([
            {"tool": "list_clusters"},
            {"tool": "cluster_overview", "arguments": {"cluster": "c"}},
            {"tool": "audit_log"},
            {"tool": "propose_job",
             "arguments": {"cluster": "c", "command": "start", "target": "cluster"}},
            {"tool": "list_jobs", "arguments": {"cluster": "c"}},
            {"tool": "get_job", "arguments": {"job": job}},
        ]),
    )
    .await;
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["server"]["name"], "bigmgr", "{out}");
    // The SDK offers a newer version than bigmgr serves; they agree on bigmgr's newest.
    assert_eq!(out["protocol_version"], "2025-06-18", "{out}");
    assert_eq!(out["tools_capability"], true, "{out}");
    let names = tool_names(&out);
    for read in [
        "list_clusters",
        "cluster_overview",
        "list_hosts",
        "task_log",
    ] {
        assert!(names.iter().any(|n| n == read), "{read} in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "audit_log"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("propose_")),
        "{names:?}"
    );
    let overview = out["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "cluster_overview"))
        .expect("cluster_overview");
    assert_eq!(overview["input_schema"]["required"], json!(["cluster"]));
    assert_eq!(overview["read_only"], true);

    let clusters = called(&out, "list_clusters");
    assert_eq!(clusters["is_error"], false, "{clusters}");
    let listed: Value = serde_json::from_str(clusters["text"].as_str().expect("text")).unwrap();
    assert_eq!(listed, json!(["c"]));
    let o = called(&out, "cluster_overview");
    assert_eq!(o["is_error"], false, "{o}");
    assert_eq!(o["structured"]["hosts"][0]["name"], "h1", "{o}");
    let services = o["structured"]["services"].to_string();
    assert_contains(&services, "\"hello\"");
    assert_contains(&services, "\"cache\"");
    assert_contains(o["text"].as_str().expect("text"), "\"h1\"");

    let audit = called(&out, "audit_log");
    assert_eq!(
        audit["is_error"], true,
        "a viewer reads no audit log: {audit}"
    );
    assert_contains(audit["text"].as_str().expect("text"), "needs role admin");
    assert!(audit["structured"].is_null(), "{audit}");
    let refused = called(&out, "propose_job");
    assert_eq!(refused["is_error"], true, "{refused}");
    assert_contains(
        refused["text"].as_str().expect("text"),
        "needs role operator",
    );
    // The secret is redacted whether the call names the cluster or only the job.
    for tool in ["list_jobs", "get_job"] {
        let c = called(&out, tool);
        assert_eq!(c["is_error"], false, "{c}");
        assert_contains(
            c["text"].as_str().expect("text"),
            "the password is [redacted]",
        );
    }
    assert!(!out.to_string().contains(SECRET), "{out}");

    // An operator proposes a job: a proposal, and nothing runs.
    let reason = format!("restart after token bmt_{} leaked", "ab12".repeat(16));
    let out = client(
        &server,
        Some(&operator),
        json!([{"tool": "propose_job", "arguments": {
            "cluster": "c", "command": "start", "target": {"service": "hello"},
            "reason": reason}}]),
    )
    .await;
    assert_eq!(out["ok"], true, "{out}");
    let names = tool_names(&out);
    assert!(names.iter().any(|n| n == "propose_job"), "{names:?}");
    assert!(!names.iter().any(|n| n == "audit_log"), "{names:?}");
    let p = called(&out, "propose_job");
    assert_eq!(p["is_error"], false, "{p}");
    let id = p["structured"]["proposal"].as_i64().expect("proposal id");
    assert_eq!(p["structured"]["state"], "pending", "{p}");
    assert_eq!(p["structured"]["request"]["method"], "POST", "{p}");
    assert_eq!(
        p["structured"]["request"]["path"],
        "/api/v1/clusters/c/jobs"
    );
    let text = p["text"].as_str().expect("text");
    assert_contains(text, format!("Proposal {id}"));
    assert_contains(text, "Nothing has changed");
    assert_contains(text, format!("bigmgr assistant confirm {id}"));
    assert_contains(text, format!("/api/v1/assistant/proposals/{id}/confirm"));
    // Token-shaped text never leaves through MCP, even the caller's own.
    assert!(!out.to_string().contains("bmt_ab12"), "{out}");
    assert_contains(text, "[redacted]");
    let jobs = admin.list("/clusters/c/jobs").await;
    let ids: Vec<&Value> = jobs.iter().map(|j| &j["id"]).collect();
    assert_eq!(ids, [&json!(job)], "a proposal ran nothing: {jobs:?}");

    // An admin sees every tool, the audit log among them.
    let out = client(
        &server,
        Some(&server.token()),
        json!([{"tool": "audit_log"}]),
    )
    .await;
    assert_eq!(out["ok"], true, "{out}");
    let names = tool_names(&out);
    assert_eq!(names.len(), 18, "{names:?}");
    assert!(names.iter().any(|n| n == "audit_log"), "{names:?}");
    assert!(names.iter().any(|n| n == "propose_rollback"), "{names:?}");
    let audit = called(&out, "audit_log");
    assert_eq!(audit["is_error"], false, "{audit}");
    assert_contains(audit["text"].as_str().expect("text"), "create-cluster");

    // Without a token, or with a wrong one, the SDK cannot even initialize: 401.
    for token in [None, Some("bmt_not_a_token_at_all")] {
        let out = client(&server, token, json!([{"tool": "list_clusters"}])).await;
        assert_eq!(out["ok"], false, "{out}");
        assert_eq!(out["statuses"], json!([["POST", 401]]), "{out}");
        assert!(out.get("tools").is_none(), "{out}");
    }
}

/// A POST of `body` (raw) to `/mcp` with `token`, and extra headers.
async fn post(
    server: &ServerProc,
    token: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/mcp", server.url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("POST /mcp");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.expect("body"))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn json_rpc_edge_cases_get_the_protocol_s_answers() {
    let server = ServerProc::start();
    let token = server.token();
    let t = Some(token.as_str());

    // initialize: the client's version when it is served, else the newest; a session id.
    let (status, headers, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "application/json");
    let session = headers["mcp-session-id"].to_str().expect("ascii");
    assert!(session.len() >= 32, "{session}");
    let v = json_of(&text);
    assert_eq!(v["id"], "a");
    assert_eq!(v["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(v["result"]["capabilities"]["tools"]["listChanged"], false);
    assert_eq!(v["result"]["serverInfo"]["name"], "bigmgr");
    let (_, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"1999-01-01"}}"#,
        &[],
    )
    .await;
    assert_eq!(json_of(&text)["result"]["protocolVersion"], "2025-06-18");

    // A notification: 202 and no body.
    let (status, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &[],
    )
    .await;
    assert_eq!((status, text.as_str()), (202, ""));

    // ping.
    let (status, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&text),
        json!({"jsonrpc": "2.0", "id": 7, "result": {}})
    );

    // Malformed JSON: 400, -32700, id null.
    let (status, headers, text) = post(&server, t, r#"{"jsonrpc": "2.0", "id": 1, "#, &[]).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(headers["content-type"], "application/json");
    let v = json_of(&text);
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert_eq!(v["id"], Value::Null);

    // An unknown method: 200 with -32601.
    let (status, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":2,"method":"resources/list"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v = json_of(&text);
    assert_eq!(
        (v["id"].clone(), v["error"]["code"].clone()),
        (json!(2), json!(-32601)),
        "{v}"
    );

    // Not one request: a batch, no method, a bad id, an old jsonrpc: 400 with -32600.
    for body in [
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#,
        r#""ping""#,
    ] {
        let (status, _, text) = post(&server, t, body, &[]).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert_eq!(json_of(&text)["error"]["code"], -32600, "{body}: {text}");
    }

    // tools/call: an unknown tool or no name is -32602; a tool's own failure is isError.
    let (_, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"rm_rf","arguments":{}}}"#,
        &[],
    )
    .await;
    assert_eq!(json_of(&text)["error"]["code"], -32602, "{text}");
    let (_, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{}}"#,
        &[],
    )
    .await;
    assert_eq!(json_of(&text)["error"]["code"], -32602, "{text}");
    let (_, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"list_hosts","arguments":{"cluster":"nope"}}}"#,
        &[],
    )
    .await;
    let v = json_of(&text);
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert_contains(
        v["result"]["content"][0]["text"].as_str().expect("text"),
        "nope",
    );
    let (_, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"list_jobs","arguments":{"cluster":"c","limit":"ten"}}}"#,
        &[],
    )
    .await;
    let v = json_of(&text);
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert_contains(
        v["result"]["content"][0]["text"].as_str().expect("text"),
        "limit",
    );

    // A protocol version bigmgr does not serve, named after initialize: 400.
    let (status, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#,
        &[("mcp-protocol-version", "2099-01-01")],
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(json_of(&text)["error"]["code"], -32600, "{text}");
    let (status, _, text) = post(
        &server,
        t,
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#,
        &[("mcp-protocol-version", "2025-03-26")],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        json_of(&text)["result"]["tools"].as_array().map(Vec::len),
        Some(18)
    );

    // Not JSON at all: 415 (problem+json, like the rest of the API).
    let res = reqwest::Client::new()
        .post(format!("{}/mcp", server.url))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("ping")
        .send()
        .await
        .expect("POST");
    assert_eq!(res.status().as_u16(), 415);

    // No token: 401 from the token check; no server-initiated stream, no sessions to end.
    let (status, headers, _) = post(
        &server,
        None,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        &[],
    )
    .await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let res = reqwest::Client::new()
            .request(method.clone(), format!("{}/mcp", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), 405, "{method}");
    }
}
