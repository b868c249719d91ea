//! Real `bigmgr-agent` processes against a real server.

use bigmgr_test_support::{AgentProc, Api, ServerProc, assert_contains, read_events, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

/// A server (heartbeat 1 s) with cluster `c`, agent `h1` on 127.0.0.2 joined (ONLINE) and,
/// with `hello`, the demo `hello` service placed on it.
async fn h1(hello: bool) -> (ServerProc, Api, AgentProc) {
    let server = ServerProc::serve().fast_heartbeat().start();
    let api = server.api();
    api.create_cluster("c").await;
    let agent = api.join_agent("c", "h1", "127.0.0.2").await;
    if hello {
        api.add_service("c", hello_on(&["h1"], json!({}))).await;
    }
    (server, api, agent)
}

/// The demo `hello` service on `hosts` with these configs, as `POST …/services` takes it.
fn hello_on(hosts: &[&str], configs: Value) -> Value {
    json!({"name": "hello", "stack": "demo", "service": "hello",
           "placement": {"hello_server": hosts}, "configs": configs})
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
    assert_contains(&stderr, "bigmgr-agent: refused: ");
    assert_contains(&stderr, "join token");
}

#[tokio::test]
async fn an_agent_joins_and_runs_a_deploy() {
    let (_server, api, mut agent) = h1(false).await;
    // The agent saves its credential once it has read the server's answer, just after the
    // server counts it ONLINE.
    wait_until("the saved credential", Duration::from_secs(10), || async {
        agent.root.join("credential.json").exists().then_some(())
    })
    .await;
    api.add_service("c", hello_on(&["h1"], json!({}))).await;
    for command in ["deploy", "stop"] {
        let done = api
            .run_job("c", command, json!("cluster"), Duration::from_secs(120))
            .await;
        let id = done["id"].as_i64().unwrap();
        let task = done["stages"][0]["tasks"][0]["id"].as_i64().unwrap();
        let log = api.get(&format!("/jobs/{id}/tasks/{task}/log")).await;
        assert!(!log.expect(200)["lines"].as_array().unwrap().is_empty());
    }
    assert!(agent.proc.terminate().success());
}

/// Opens the Server-Sent Events stream of job `id`.
async fn events_of(server: &ServerProc, id: i64) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/api/v1/jobs/{id}/events", server.url))
        .bearer_auth(server.token())
        .send()
        .await
        .expect("the events stream")
}

#[tokio::test]
async fn a_job_s_events_stream_live_until_it_ends() {
    let (server, api, mut agent) = h1(true).await;
    let id = api.submit("c", "deploy", json!("cluster")).await;
    // Open the stream right away: it follows the job live and ends on its own.
    let res = events_of(&server, id).await;
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
    let again = events_of(&server, id).await;
    let replay = read_events(again).await;
    assert_eq!(replay.last().unwrap().0, "end");
    api.get("/jobs/999/events").await.problem(404);
    assert!(agent.proc.terminate().success());
}

#[tokio::test]
async fn a_started_service_is_removed_after_a_stop_and_a_removed_host_s_agent_is_refused() {
    let (server, api, mut agent) = h1(true).await;
    let run = |command: &'static str| {
        let api = api.clone();
        async move {
            let hello = json!({"service": "hello"});
            let done = api
                .run_job("c", command, hello, Duration::from_secs(120))
                .await;
            done["id"].as_i64().unwrap()
        }
    };
    let deploy = run("deploy").await;
    let detail = api.delete("/clusters/c/services/hello").await.problem(409);
    assert_contains(
        &detail,
        "stop it first: bigmgr job run c stop --service hello",
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
    assert_contains(&stderr, "refused");
}

#[tokio::test]
async fn service_configs_are_checked_and_rendered_on_the_host() {
    let (_server, api, agent) = h1(false).await;
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
        let misfit = hello_on(&["h1"], configs);
        let detail = api.post("/clusters/c/services", misfit).await.problem(422);
        assert_contains(detail, says);
    }
    let listed = api.get("/clusters/c/services").await;
    assert_eq!(listed.expect(200)["items"], json!([]));

    let configs = json!({"hello.conf": {"greeting": "howdy", "interval": 2}});
    api.add_service("c", hello_on(&["h1"], configs)).await;
    for command in ["install", "configure"] {
        api.run_job("c", command, json!("cluster"), Duration::from_secs(60))
            .await;
    }
    let rendered = std::fs::read_to_string(
        agent
            .root
            .join("units/c/hello/hello_server/conf/hello.conf"),
    )
    .expect("the rendered config on the host");
    assert_contains(&rendered, "greeting=howdy\n");
    assert_contains(&rendered, "interval=2\n");
}

#[tokio::test]
async fn a_hosts_recent_metrics_and_tasks_are_listed() {
    let (_server, api, mut agent) = h1(true).await;
    let done = api
        .run_job("c", "deploy", json!("cluster"), Duration::from_secs(120))
        .await;
    let job = done["id"].as_i64().unwrap();
    // Heartbeats (every second) build the host's history.
    let series = wait_until("three samples of h1", Duration::from_secs(20), || async {
        let all = api.get("/clusters/c/metrics?window=60").await;
        let all = all.expect(200).as_array().unwrap().clone();
        (all.len() == 1 && all[0]["at"].as_array().unwrap().len() >= 3).then_some(all)
    })
    .await;
    let s = &series[0];
    assert_eq!(s["host"], "h1");
    let cpu = s["cpu_percent"].as_array().unwrap();
    let mem = s["memory_percent"].as_array().unwrap();
    assert_eq!(
        (cpu.len(), mem.len()),
        (s["at"].as_array().unwrap().len(), cpu.len())
    );
    assert!(
        mem.iter()
            .all(|m| (0.0..=100.0).contains(&m.as_f64().unwrap()))
            && mem.iter().any(|m| m.as_f64().unwrap() > 0.0),
        "{s}"
    );
    let one = api
        .get("/clusters/c/hosts/h1/metrics?window=3600&points=2")
        .await;
    assert!(
        one.expect(200)["at"].as_array().unwrap().len() <= 2,
        "{}",
        one.text
    );
    api.get("/clusters/c/hosts/h9/metrics").await.problem(404);
    // Out of range is refused, naming the parameter.
    for q in ["window=59", "window=3601", "points=0", "points=501"] {
        let res = api.get(&format!("/clusters/c/metrics?{q}")).await;
        assert_contains(res.problem(400), q.split('=').next().unwrap());
    }
    api.get("/clusters/c/hosts/h1/tasks?limit=201")
        .await
        .problem(400);

    // The deploy's tasks on h1, newest first, naming what they did.
    let tasks = api.get("/clusters/c/hosts/h1/tasks?limit=50").await;
    let tasks = tasks.expect(200).as_array().unwrap().clone();
    let ids: Vec<i64> = tasks.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = done["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| {
            st["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_i64().unwrap())
        })
        .rev()
        .collect();
    let mut sorted = expected.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "{tasks:?}");
    assert!(
        tasks.iter().all(|t| t["job"] == job
            && t["command"] == "deploy"
            && t["service"] == "hello"
            && t["component"] == "hello_server"
            && t["state"] == "SUCCEEDED"),
        "{tasks:?}"
    );
    // Each names what it ran: its stage's command.
    for t in &tasks {
        let stage = done["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| {
                st["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["id"] == t["id"])
            })
            .unwrap();
        assert_eq!(t["stage_command"], stage["command"], "{t}");
    }
    let one = api.get("/clusters/c/hosts/h1/tasks?limit=1").await;
    assert_eq!(one.expect(200).as_array().unwrap().len(), 1);
    assert!(agent.proc.terminate().success());
}

/// The value of the sample `series` (name and labels exactly as exposed) in a metrics text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_what_happened_for_prometheus() {
    let (server, api, mut agent) = h1(true).await;
    let done = api
        .run_job("c", "deploy", json!("cluster"), Duration::from_secs(120))
        .await;
    let tasks: Vec<&Value> = done["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["tasks"].as_array().unwrap())
        .collect();
    let starts = done["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["command"] == "start")
        .map(|st| st["tasks"].as_array().unwrap().len())
        .sum::<usize>();

    // The host's averages come with its heartbeats (every second).
    wait_until(
        "a heartbeat with metrics",
        Duration::from_secs(20),
        || async {
            let h = api.get("/clusters/c/hosts/h1").await;
            (!h.expect(200)["metrics"].is_null()).then_some(())
        },
    )
    .await;
    // A viewer's token is enough; no token is a 401.
    api.post(
        "/users",
        json!({"name": "prom", "role": "viewer", "password": "scrape-pass-1"}),
    )
    .await
    .expect(201);
    let login = api
        .with_token(None)
        .post(
            "/login",
            json!({"name": "prom", "password": "scrape-pass-1"}),
        )
        .await;
    let token = login.expect(201)["token"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", server.url);
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let res = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    let text = res.text().await.unwrap();
    let n = tasks.len() as f64;
    for (series, want) in [
        (r#"bigmgr_jobs{state="SUCCEEDED"}"#, 1.0),
        (r#"bigmgr_tasks{state="SUCCEEDED"}"#, n),
        ("bigmgr_dispatch_latency_seconds_count", n),
        (
            r#"bigmgr_task_duration_seconds_count{command="start"}"#,
            starts as f64,
        ),
        (r#"bigmgr_hosts{state="ONLINE"}"#, 1.0),
        ("bigmgr_agents_connected", 1.0),
        ("bigmgr_leader", 1.0),
        (
            r#"bigmgr_http_requests_total{method="POST",route="/api/v1/clusters/{cluster}/jobs",status="202"}"#,
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(want), "{series} in\n{text}");
    }
    for series in [
        r#"bigmgr_host_cpu_percent{cluster="c",host="h1"}"#,
        r#"bigmgr_host_memory_total_bytes{cluster="c",host="h1"}"#,
        r#"bigmgr_host_disk_total_bytes{cluster="c",host="h1"}"#,
        "bigmgr_store_apply_duration_seconds_count",
        "bigmgr_oldest_heartbeat_age_seconds",
    ] {
        assert!(sample(&text, series).is_some(), "no {series} in\n{text}");
    }
    assert!(
        sample(
            &text,
            r#"bigmgr_host_memory_total_bytes{cluster="c",host="h1"}"#
        )
        .unwrap()
            > 0.0
    );
    assert!(text.ends_with("# EOF\n"));
    assert!(agent.proc.terminate().success());
}
