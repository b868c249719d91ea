//! Agents' client certificates with real processes and handshakes: an agent joins over TLS,
//! gets a certificate the server signed and presents it on every later session (mutual TLS);
//! another host's certificate, none, or a removed host's is refused; certificates are renewed
//! by the agent alone, before they expire and after.

use bigmgr_core::grpc::pb;
use bigmgr_core::store::{AgentStore, SqlStore};
use bigmgr_test_support::{AgentProc, ServerProc, assert_contains, wait_until};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// The agent's certificate file under its root (the certificate, then its key).
fn certificate(root: &Path) -> Option<String> {
    std::fs::read_to_string(root.join("certificate.pem")).ok()
}

/// The fingerprint of the certificate an agent holds.
fn fingerprint_of(root: &Path) -> String {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let pem = certificate(root).expect("the agent holds a certificate");
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("a certificate");
    bigmgr_core::tls::fingerprint(&der)
}

/// The server's store, opened beside it (SQLite in WAL mode takes a second reader).
async fn store(server: &ServerProc) -> SqlStore {
    SqlStore::open_path(&server.data_dir().join("bigmgr.db"))
        .await
        .expect("the server's store")
}

/// The name of the host whose current certificate has fingerprint `fp`, if any.
async fn holder(store: &SqlStore, fp: &str) -> Option<String> {
    store
        .host_by_certificate(fp)
        .await
        .expect("lookup")
        .map(|h| h.name)
}

/// The agent credential kept under `root`.
fn credential(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join("credential.json")).expect("credential.json");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["credential"].as_str().expect("a credential").to_string()
}

/// Opens a session as an agent would, presenting `cert` (PEM with its key) or none, and
/// registering as host `name` with `credential`: the server's answer or its refusal.
async fn register(
    server: &ServerProc,
    cert: Option<&str>,
    name: &str,
    credential: &str,
) -> Result<pb::Registered, tonic::Status> {
    register_with_csr(server, cert, name, credential, "").await
}

/// [`register`] sending `csr` as `Register.csr_pem`.
async fn register_with_csr(
    server: &ServerProc,
    cert: Option<&str>,
    name: &str,
    credential: &str,
    csr: &str,
) -> Result<pb::Registered, tonic::Status> {
    let pin = bigmgr_core::tls::fingerprint(
        &<tokio_rustls::rustls::pki_types::CertificateDer as tokio_rustls::rustls::pki_types::pem::PemObject>::from_pem_file(
            server.ca().unwrap(),
        )
        .unwrap(),
    );
    let tls = bigmgr_core::tls::pinned_client_config_with_cert(&pin, &[b"h2"], cert).unwrap();
    let channel = tonic::transport::Endpoint::from_shared(server.url.clone())
        .unwrap()
        .connect_with_connector(bigmgr_core::tls::connector(tls))
        .await
        .expect("the handshake succeeds: the certificate is the agent CA's, or none");
    let mut client = pb::agent_service_client::AgentServiceClient::new(channel);
    let register = pb::AgentMessage {
        body: Some(pb::agent_message::Body::Register(pb::Register {
            name: name.into(),
            address: "127.0.0.2".into(),
            auth: Some(pb::register::Auth::Credential(credential.into())),
            csr_pem: csr.into(),
            ..pb::Register::default()
        })),
    };
    let mut inbound = client
        .session(tokio_stream::iter(vec![register]))
        .await?
        .into_inner();
    match inbound.message().await?.and_then(|m| m.body) {
        Some(pb::server_message::Body::Registered(r)) => Ok(r),
        other => panic!("not Registered: {other:?}"),
    }
}

#[tokio::test]
async fn agents_join_over_tls_and_then_present_their_own_certificate() {
    let server = ServerProc::serve().tls().start();
    let api = server.api();
    api.create_cluster("c").await;
    let mut h1 = api.join_agent("c", "h1", "127.0.0.2").await;
    let h2 = api.join_agent("c", "h2", "127.0.0.3").await;

    // The joining session only enrolled; the agent came back presenting its certificate.
    h1.proc.expect_stderr(
        Duration::from_secs(10),
        "connecting again, presenting the certificate",
    );
    let file = h1.root.join("certificate.pem");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the key is private");
    let pem = certificate(&h1.root).unwrap();
    assert_contains(&pem, "BEGIN CERTIFICATE");
    assert_contains(&pem, "PRIVATE KEY");
    // The server keeps each host's certificate by its fingerprint.
    let store = store(&server).await;
    let (fp1, fp2) = (fingerprint_of(&h1.root), fingerprint_of(&h2.root));
    assert_ne!(fp1, fp2);
    assert_eq!(holder(&store, &fp1).await.as_deref(), Some("h1"));
    assert_eq!(holder(&store, &fp2).await.as_deref(), Some("h2"));

    // h1's credential with h2's certificate: refused, naming whose it is.
    let cred1 = credential(&h1.root);
    let err = register(&server, certificate(&h2.root).as_deref(), "h1", &cred1)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert_contains(err.message(), "is host 'h2''s");
    // The credential without a certificate (and no CSR to get one): refused.
    let err = register(&server, None, "h1", &cred1).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert_contains(err.message(), "client certificate");
    // A request that is not a CSR, or whose signature does not verify: refused saying so.
    let (_, good) = bigmgr_core::tls::agent_csr("h1").unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    let last = lines.len() - 2; // the signature's end
    let flipped = if lines[last].starts_with('A') {
        "B"
    } else {
        "A"
    };
    lines[last].replace_range(0..1, flipped);
    let forged = lines.join("\n");
    assert_ne!(forged, good.trim_end());
    for (csr, why) in [
        ("hello", "is not PEM"),
        (forged.as_str(), "signature that does not verify"),
    ] {
        let err = register_with_csr(&server, None, "h1", &cred1, csr)
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert_contains(err.message(), "certificate signing request");
        assert_contains(err.message(), why);
    }
    assert_eq!(
        holder(&store, &fp1).await.as_deref(),
        Some("h1"),
        "nothing changed"
    );
    // Its own certificate with its credential: admitted.
    let ok = register(&server, Some(&pem), "h1", &cred1).await.unwrap();
    assert_eq!(ok.cluster, "c");
    assert!(ok.certificate_pem.is_empty(), "none was asked for");

    // The real agent, given h2's certificate, is refused and exits.
    assert!(h1.proc.terminate().success());
    std::fs::write(&file, certificate(&h2.root).unwrap()).unwrap();
    let mut impostor = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .root(&h1.root)
        .start();
    let status = impostor.proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{}", impostor.proc.stderr.text());
    assert_contains(impostor.proc.stderr.text(), "is host 'h2''s");
    drop(h2);
}

#[tokio::test]
async fn a_removed_hosts_certificate_is_refused() {
    let server = ServerProc::serve().tls().start();
    let api = server.api();
    api.create_cluster("c").await;
    let mut agent = api.join_agent("c", "h1", "127.0.0.2").await;
    let fp = fingerprint_of(&agent.root);
    let pem = certificate(&agent.root).unwrap();
    let cred = credential(&agent.root);
    let store = store(&server).await;
    wait_until(
        "h1's certificate to be recorded",
        Duration::from_secs(10),
        || async { holder(&store, &fp).await.map(|_| ()) },
    )
    .await;

    // Removed while its agent is connected: the session ends, and the agent, coming back with
    // its certificate, is refused and exits.
    assert_eq!(api.delete("/clusters/c/hosts/h1").await.status, 204);
    let status = agent.proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{}", agent.proc.stderr.text());
    let stderr = agent.proc.stderr.text();
    assert_contains(&stderr, &fp);
    assert_contains(&stderr, "revoked (the host was removed)");
    assert_eq!(holder(&store, &fp).await, None);

    // A new host of the same name does not make the old certificate good again.
    let fresh = api.join_agent("c", "h1", "127.0.0.2").await;
    assert_ne!(fingerprint_of(&fresh.root), fp);
    let err = register(&server, Some(&pem), "h1", &credential(&fresh.root))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert_contains(err.message(), "no host's current certificate");
    // Nor the old credential with the new certificate.
    let err = register(&server, certificate(&fresh.root).as_deref(), "h1", &cred)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
}

#[tokio::test]
async fn agents_renew_their_certificates_before_and_after_they_expire() {
    const VALIDITY: u64 = 9;
    let server = ServerProc::serve()
        .tls()
        .fast_heartbeat()
        .arg("--agent-cert-validity")
        .arg(format!("{VALIDITY}s"))
        .start();
    let api = server.api();
    api.create_cluster("c").await;
    let mut agent = api.join_agent("c", "h1", "127.0.0.2").await;
    let store = store(&server).await;
    let first = fingerprint_of(&agent.root);

    // With a third of its lifetime left (6 s in), the agent asks for a new one on its own.
    let second = wait_until(
        "the certificate to be renewed",
        Duration::from_secs(VALIDITY + 10),
        || async {
            let fp = fingerprint_of(&agent.root);
            (fp != first).then_some(fp)
        },
    )
    .await;
    agent
        .proc
        .expect_stderr(Duration::from_secs(5), "the certificate is due for renewal");
    wait_until(
        "the server to hold the new certificate",
        Duration::from_secs(10),
        || async { (holder(&store, &second).await.as_deref() == Some("h1")).then_some(()) },
    )
    .await;
    assert_eq!(
        holder(&store, &first).await,
        None,
        "the old one is replaced"
    );
    api.wait_online("c", "h1").await;

    // Stopped past the end of its certificate, the agent renews it with its credential when
    // it starts again, then presents the new one.
    assert!(agent.proc.terminate().success());
    let stopped = fingerprint_of(&agent.root);
    tokio::time::sleep(Duration::from_secs(VALIDITY + 2)).await;
    let since = api.get("/clusters/c/hosts/h1").await.body["last_heartbeat"].clone();
    let mut again = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .root(&agent.root)
        .start();
    again.proc.expect_stderr(
        Duration::from_secs(15),
        "the certificate has expired; renewing it with the credential",
    );
    let third = wait_until(
        "a new certificate after expiry",
        Duration::from_secs(15),
        || async {
            let fp = fingerprint_of(&agent.root);
            (fp != stopped).then_some(fp)
        },
    )
    .await;
    wait_until("h1 to report again", Duration::from_secs(15), || async {
        let h = api.get("/clusters/c/hosts/h1").await;
        (h.body["last_heartbeat"] != since && h.body["state"] == "ONLINE").then_some(())
    })
    .await;
    again.proc.expect_stderr(
        Duration::from_secs(5),
        "connecting again, presenting the certificate",
    );
    // Heartbeats come on the mutual TLS session that followed.
    let enrolled = api.get("/clusters/c/hosts/h1").await.body["last_heartbeat"].clone();
    wait_until(
        "a heartbeat on the new session",
        Duration::from_secs(15),
        || async {
            let h = api.get("/clusters/c/hosts/h1").await;
            (h.body["last_heartbeat"] != enrolled && h.body["state"] == "ONLINE").then_some(())
        },
    )
    .await;
    assert_eq!(holder(&store, &third).await.as_deref(), Some("h1"));
    assert!(
        again.proc.try_exit().is_none(),
        "{}",
        again.proc.stderr.text()
    );
    assert!(again.proc.terminate().success());
}
