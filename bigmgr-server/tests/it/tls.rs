//! Transport security with real handshakes: `bigmgr serve` speaks TLS by default with its own
//! CA, agents pin that CA by its fingerprint and refuse any other server before sending their
//! join token, clients need the CA, and plain HTTP to the TLS port gets no answer.

use bigmgr_test_support::{AgentProc, ServerProc, assert_contains, bigmgr_bin, wait_until};
use serde_json::json;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

/// A fingerprint no server has.
const STRANGER: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

#[tokio::test]
async fn agents_pin_the_servers_ca_and_a_wrong_one_never_gets_the_token() {
    let server = ServerProc::serve().tls().start();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let api = server.api();
    api.create_cluster("c").await;
    let answer = api.join_token_answer("c").await;
    let fingerprint = answer["ca_fingerprint"]
        .as_str()
        .expect("a fingerprint")
        .to_string();
    assert!(
        fingerprint.starts_with("sha256:") && fingerprint.len() == 71,
        "{answer}"
    );
    let command = answer["command"].as_str().expect("a command");
    assert_contains(command, format!("--ca-fingerprint '{fingerprint}'"));
    assert_contains(command, format!("--server '{}'", server.url));
    let token = answer["token"].as_str().unwrap();

    // A wrong fingerprint: the agent refuses the server during the handshake and exits 2;
    // the server never saw a registration (no host joined, nothing audited for it).
    let mut wrong = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .join_token(token)
        .arg("--ca-fingerprint")
        .arg(STRANGER)
        .start();
    let status = wrong.proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{}", wrong.proc.stderr.text());
    assert_contains(wrong.proc.stderr.text(), "pinned CA");
    assert!(api.list("/clusters/c/hosts").await.is_empty());
    let audit = api.list("/audit").await;
    assert!(
        !audit
            .iter()
            .any(|e| e["action"] == "agent-join" || e["actor"] == "agent:h1"),
        "{audit:?}"
    );
    // No fingerprint for an https server: refused with what to give.
    let mut none = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .join_token(token)
        .start();
    assert_eq!(none.proc.wait_exit(Duration::from_secs(30)).code(), Some(2));
    assert_contains(none.proc.stderr.text(), "--ca-fingerprint");

    // The right one joins; the pin is kept with the credential, so a restart needs none.
    let root = tempfile::tempdir().unwrap();
    let mut agent = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .join_token(token)
        .arg("--ca-fingerprint")
        .arg(&fingerprint)
        .root(root.path())
        .start();
    api.wait_online("c", "h1").await;
    api.add_service(
        "c",
        json!({"name": "hello", "stack": "demo", "service": "hello",
               "placement": {"hello_server": ["h1"]}}),
    )
    .await;
    let done = api
        .run_job("c", "deploy", json!("cluster"), Duration::from_secs(60))
        .await;
    assert_eq!(done["state"], "SUCCEEDED");
    assert!(agent.proc.terminate().success());
    let saved = std::fs::read_to_string(root.path().join("credential.json")).unwrap();
    assert_contains(&saved, &fingerprint);
    let since = api.get("/clusters/c/hosts/h1").await.body["last_heartbeat"].clone();
    let mut again = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .root(root.path())
        .start();
    wait_until("h1 to report again", Duration::from_secs(30), || async {
        let h = api.get("/clusters/c/hosts/h1").await;
        (h.body["last_heartbeat"] != since && h.body["state"] == "ONLINE").then_some(())
    })
    .await;
    assert!(again.proc.terminate().success());
}

#[tokio::test]
async fn clients_need_the_ca_and_plain_http_gets_no_answer() {
    let mut server = ServerProc::serve().tls().start();
    let ca = server.ca().expect("a CA");
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert_contains(&pem, "BEGIN CERTIFICATE");
    let health = format!("{}/api/v1/health", server.url);

    // Trusting the CA works; trusting nothing special fails the handshake.
    let trusting = bigmgr_test_support::http_client_trusting(&ca);
    assert_eq!(trusting.get(&health).send().await.unwrap().status(), 200);
    let other = tempfile::tempdir().unwrap();
    let stranger = ServerProc::serve().tls().data(other.path()).start();
    let wrong = bigmgr_test_support::http_client_trusting(&stranger.ca().unwrap());
    let err = wrong.get(&health).send().await.unwrap_err();
    assert!(
        err.is_connect() || err.to_string().contains("certificate"),
        "{err:?}"
    );

    // Plain HTTP to the TLS port: the connection closes without an HTTP answer.
    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    tcp.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1 200"),
        "{got:?}"
    );

    // The CLI: refused without the CA, with a message saying what to give; fine with it.
    let cli = |extra: &[&str]| {
        let out = Command::new(bigmgr_bin())
            .args([
                "cluster",
                "list",
                "--server",
                &server.url,
                "--token",
                &server.token(),
            ])
            .args(extra)
            .env("HOME", other.path())
            .env_remove("BIGMGR_CA")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = cli(&[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_contains(&stderr, "--ca");
    let ca_arg = ca.display().to_string();
    let (code, stderr) = cli(&["--ca", &ca_arg]);
    assert_eq!(code, Some(0), "{stderr}");

    // A restart keeps the CA: the fingerprint agents pinned stays valid.
    let data = server.data_dir().to_path_buf();
    let first = std::fs::read(&ca).unwrap();
    assert!(server.stop().success());
    let again = ServerProc::serve().tls().data(&data).start();
    assert_eq!(std::fs::read(again.ca().unwrap()).unwrap(), first);
}
