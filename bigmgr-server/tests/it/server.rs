//! The server process: signals, restarts, one port for HTTP/1.1, h2c and gRPC.

use bigmgr_core::grpc::pb::agent_service_client::AgentServiceClient;
use bigmgr_core::grpc::pb::{AgentMessage, Register, agent_message, register};
use bigmgr_test_support::{Api, ServerProc, assert_contains};
use nix::sys::signal::Signal;
use std::time::Duration;
use tonic::Code;

#[test]
fn sigint_and_sigterm_stop_it_cleanly() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let mut server = ServerProc::start();
        server.proc.signal(signal);
        let status = server.proc.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "{signal}: {status}");
        let stderr = server.proc.stderr.text();
        assert!(
            stderr.contains("shutting down") && stderr.contains("stopped"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn clusters_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = ServerProc::serve().data(&data).start();
    server.api().create_cluster("kept").await;
    assert!(server.stop().success());
    let server = ServerProc::serve().data(&data).start();
    let c = server.api().get("/clusters/kept").await;
    assert_eq!(c.expect(200)["name"], "kept");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (status, _, stderr) = ServerProc::serve().listen(addr).run_to_exit();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_contains(&stderr, format!("cannot listen on {addr}"));
}

#[tokio::test]
async fn rest_is_served_over_h2c_too() {
    let server = ServerProc::start();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let res = h2
        .get(format!("{}/api/v1/health", server.url))
        .send()
        .await
        .expect("an h2c request");
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    // And HTTP/1.1 on the same port.
    Api::new(&server.url, None).get("/health").await.expect(200);
}

/// A gRPC client reaches the agent service on the REST port and gets a gRPC answer: a bogus
/// join token is refused with a status (with the stub transport: UNIMPLEMENTED), never a
/// transport error.
#[tokio::test]
async fn grpc_is_served_on_the_rest_port() {
    let server = ServerProc::start();
    let mut client = AgentServiceClient::connect(server.url.clone())
        .await
        .expect("an h2c connection to the server's port");
    let register = AgentMessage {
        body: Some(agent_message::Body::Register(Register {
            name: "probe".into(),
            address: "127.0.0.9".into(),
            auth: Some(register::Auth::JoinToken("bmj_not_a_real_token".into())),
            ..Register::default()
        })),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        match client.session(tokio_stream::iter([register])).await {
            Err(status) => status,
            Ok(res) => match res.into_inner().message().await {
                Err(status) => status,
                Ok(msg) => panic!("a bogus join token was answered with {msg:?}"),
            },
        }
    })
    .await
    .expect("a gRPC answer within 10 s");
    assert!(
        !matches!(
            outcome.code(),
            Code::Ok | Code::Unavailable | Code::Unknown | Code::Internal
        ),
        "not a gRPC-level answer: {outcome:?}"
    );
}
