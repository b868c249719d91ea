//! Real `bigmgr-agent` processes against a real server.

use bigmgr_test_support::{AgentProc, Api, ServerProc, wait_until};
use serde_json::json;
use std::time::Duration;

/// Cluster `c` (created already) gets an agent `h1` on 127.0.0.2, joined with a fresh join
/// token; returns once h1 is ONLINE.
async fn join_h1(server: &ServerProc, api: &Api) -> AgentProc {
    let token = api.post("/clusters/c/join-tokens", json!({})).await;
    let token = token.expect(201)["token"].as_str().unwrap().to_string();
    let agent = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .join_token(&token)
        .start();
    wait_until("h1 to come online", Duration::from_secs(30), || async {
        let h = api.get("/clusters/c/hosts/h1").await;
        (h.status == 200 && h.body["state"] == "ONLINE").then_some(())
    })
    .await;
    agent
}

/// A server (heartbeat 1 s) with cluster `c`, agent `h1` joined and the demo `hello` service
/// placed on it.
async fn hello_on_h1() -> (ServerProc, Api, AgentProc) {
    let server = ServerProc::serve().fast_heartbeat().start();
    let api = server.api();
    api.create_cluster("c").await;
    let agent = join_h1(&server, &api).await;
    api.post(
        "/clusters/c/services",
        json!({"name": "hello", "stack": "demo", "service": "hello", "placement": {"hello_server": ["h1"]}}),
    )
    .await
    .expect(201);
    (server, api, agent)
}

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
    let server = ServerProc::serve().fast_heartbeat().start();
    let api = server.api();
    api.create_cluster("c").await;
    let mut agent = join_h1(&server, &api).await;
    // The agent saves its credential once it has read the server's answer, just after the
    // server counts it ONLINE.
    wait_until("the saved credential", Duration::from_secs(10), || async {
        agent.root.join("credential.json").exists().then_some(())
    })
    .await;
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

/// Reads a Server-Sent Events stream to its end: (event, data) pairs.
async fn read_events(mut res: reqwest::Response) -> Vec<(String, serde_json::Value)> {
    let mut buf = String::new();
    while let Some(chunk) = res.chunk().await.expect("a chunk of the stream") {
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    buf.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = Some(e.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            let data = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
            event.map(|e| (e, data))
        })
        .collect()
}

#[tokio::test]
async fn a_job_s_events_stream_live_until_it_ends() {
    let (server, api, mut agent) = hello_on_h1().await;
    let job = api
        .post(
            "/clusters/c/jobs",
            json!({"command": "deploy", "target": "cluster"}),
        )
        .await;
    let id = job.expect(202)["id"].as_i64().unwrap();
    // Open the stream right away: it follows the job live and ends on its own.
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/jobs/{id}/events", server.url))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let events = tokio::time::timeout(Duration::from_secs(120), read_events(res))
        .await
        .expect("the stream ends once the job is final");
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    assert_eq!(events.last().unwrap().1["state"], "SUCCEEDED", "{events:?}");
    assert_eq!(events.last().unwrap().1["id"], id);
    assert!(names.contains(&"job"), "{names:?}");
    // Tasks are seen changing state, ending SUCCEEDED.
    let task_states: Vec<&str> = events
        .iter()
        .filter(|(e, _)| e == "task")
        .map(|(_, d)| d["state"].as_str().unwrap())
        .collect();
    assert!(task_states.contains(&"SUCCEEDED"), "{task_states:?}");
    assert!(task_states.len() > 4, "{task_states:?}");
    // Every stored log line arrives once, in order, each before its task's final state.
    let done = api.wait_job(id, Duration::from_secs(10)).await;
    for stage in done["stages"].as_array().unwrap() {
        let task = stage["tasks"][0]["id"].as_i64().unwrap();
        let log = api.get(&format!("/jobs/{id}/tasks/{task}/log")).await;
        let stored: Vec<String> = log.expect(200)["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["line"].as_str().unwrap().to_string())
            .collect();
        let streamed: Vec<String> = events
            .iter()
            .filter(|(e, d)| e == "log" && d["task"] == task)
            .map(|(_, d)| d["line"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(streamed, stored, "task {task}");
        let last_line = events
            .iter()
            .rposition(|(e, d)| e == "log" && d["task"] == task);
        let final_state = events
            .iter()
            .position(|(e, d)| e == "task" && d["id"] == task && d["state"] == "SUCCEEDED")
            .expect("the task's final state");
        assert!(last_line.is_none_or(|l| l < final_state), "task {task}");
    }
    assert!(events.iter().any(|(e, _)| e == "log"), "{names:?}");
    // A finished job's stream replays its end at once; an unknown job is a 404 problem.
    let again = reqwest::Client::new()
        .get(format!("{}/api/v1/jobs/{id}/events", server.url))
        .bearer_auth(server.token())
        .send()
        .await
        .unwrap();
    let replay = read_events(again).await;
    assert_eq!(replay.last().unwrap().0, "end");
    api.get("/jobs/999/events").await.problem(404);
    assert!(agent.proc.terminate().success());
}

#[tokio::test]
async fn a_started_service_is_removed_after_a_stop_and_a_removed_host_s_agent_is_refused() {
    let (server, api, mut agent) = hello_on_h1().await;
    let run = |command: &'static str| {
        let api = api.clone();
        async move {
            let job = api
                .post(
                    "/clusters/c/jobs",
                    json!({"command": command, "target": {"service": "hello"}}),
                )
                .await;
            let id = job.expect(202)["id"].as_i64().unwrap();
            let done = api.wait_job(id, Duration::from_secs(120)).await;
            assert_eq!(done["state"], "SUCCEEDED", "{done}");
            id
        }
    };
    let deploy = run("deploy").await;
    let detail = api.delete("/clusters/c/services/hello").await.problem(409);
    assert!(
        detail.contains("stop it first: bigmgr job run c stop --service hello"),
        "{detail}"
    );
    api.delete("/clusters/c/hosts/h1").await.problem(409);
    run("stop").await;
    assert_eq!(api.delete("/clusters/c/services/hello").await.status, 204);
    assert!(agent.proc.terminate().success());
    assert_eq!(api.delete("/clusters/c/hosts/h1").await.status, 204);

    // The history stays: the deploy's tasks still read, by the host's id.
    let job = api.get(&format!("/jobs/{deploy}")).await;
    assert_eq!(job.expect(200)["state"], "SUCCEEDED");

    // The removed host's agent, started again with its credential, is refused.
    let mut again = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .root(&agent.root)
        .start();
    let status = again.proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2));
    let stderr = again.proc.stderr.text();
    assert!(stderr.contains("refused"), "{stderr}");
}

#[tokio::test]
async fn service_configs_are_checked_and_rendered_on_the_host() {
    let server = ServerProc::serve().fast_heartbeat().start();
    let api = server.api();
    api.create_cluster("c").await;
    let agent = join_h1(&server, &api).await;
    let service = |configs: serde_json::Value| {
        json!({"name": "hello", "stack": "demo", "service": "hello",
               "placement": {"hello_server": ["h1"]}, "configs": configs})
    };
    // Misfits are refused before anything is written, saying what would fit.
    for (configs, says) in [
        (
            json!({"nope.conf": {}}),
            "has no config type 'nope.conf'; it has: hello.conf",
        ),
        (
            json!({"hello.conf": {"colour": "red"}}),
            "has no property 'colour'",
        ),
        (
            json!({"hello.conf": {"interval": "soon"}}),
            "property interval: got a string, but it needs a whole number",
        ),
    ] {
        let detail = api
            .post("/clusters/c/services", service(configs))
            .await
            .problem(422);
        assert!(detail.contains(says), "{detail}");
    }
    let listed = api.get("/clusters/c/services").await;
    assert_eq!(listed.expect(200)["items"], json!([]));

    api.post(
        "/clusters/c/services",
        service(json!({"hello.conf": {"greeting": "howdy", "interval": 2}})),
    )
    .await
    .expect(201);
    let job = api
        .post(
            "/clusters/c/jobs",
            json!({"command": "install", "target": "cluster"}),
        )
        .await;
    let id = job.expect(202)["id"].as_i64().unwrap();
    assert_eq!(
        api.wait_job(id, Duration::from_secs(60)).await["state"],
        "SUCCEEDED"
    );
    let job = api
        .post(
            "/clusters/c/jobs",
            json!({"command": "configure", "target": "cluster"}),
        )
        .await;
    let id = job.expect(202)["id"].as_i64().unwrap();
    assert_eq!(
        api.wait_job(id, Duration::from_secs(60)).await["state"],
        "SUCCEEDED"
    );
    let rendered = std::fs::read_to_string(
        agent
            .root
            .join("units/c/hello/hello_server/conf/hello.conf"),
    )
    .expect("the rendered config on the host");
    assert!(rendered.contains("greeting=howdy\n"), "{rendered}");
    assert!(rendered.contains("interval=2\n"), "{rendered}");
}
