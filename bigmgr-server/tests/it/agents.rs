//! Real `bigmgr-agent` processes against a real server.

use crate::harness::{AgentProc, ServerProc, wait_until};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn an_agent_with_a_bad_join_token_exits_2_saying_why() {
    let server = ServerProc::start();
    let mut agent = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .join_token("bmj_0000000000000000000000000000000000000000000000000000000000000000")
        .start();
    let status = agent.proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2));
    let stderr = agent.proc.stderr.text();
    assert!(stderr.contains("bigmgr-agent: refused: "), "{stderr}");
    assert!(stderr.contains("join token"), "{stderr}");
}

#[tokio::test]
async fn an_agent_joins_and_runs_a_deploy() {
    let server = ServerProc::serve()
        .arg("--heartbeat-interval")
        .arg("1s")
        .start();
    let api = server.api();
    api.create_cluster("c").await;
    let token = api.post("/clusters/c/join-tokens", json!({})).await;
    let token = token.expect(201)["token"].as_str().unwrap().to_string();
    let mut agent = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .join_token(&token)
        .start();
    wait_until("h1 to come online", Duration::from_secs(30), || async {
        let h = api.get("/clusters/c/hosts/h1").await;
        (h.status == 200 && h.body["state"] == "ONLINE").then_some(())
    })
    .await;
    assert!(agent.root.join("credential.json").exists());
    api.post(
        "/clusters/c/services",
        json!({"name": "hello", "stack": "demo", "service": "hello", "placement": {"hello_server": ["h1"]}}),
    )
    .await
    .expect(201);
    for command in ["deploy", "stop"] {
        let job = api
            .post(
                "/clusters/c/jobs",
                json!({"command": command, "target": "cluster"}),
            )
            .await;
        let id = job.expect(202)["id"].as_i64().unwrap();
        let done = api.wait_job(id, Duration::from_secs(120)).await;
        assert_eq!(done["state"], "SUCCEEDED", "{done}");
        let task = done["stages"][0]["tasks"][0]["id"].as_i64().unwrap();
        let log = api.get(&format!("/jobs/{id}/tasks/{task}/log")).await;
        assert!(!log.expect(200)["lines"].as_array().unwrap().is_empty());
    }
    assert!(agent.proc.terminate().success());
}
