//! The REST backend with a real `bigmgr-agent`: a deploy of the demo `hello` service runs
//! its script, and the task logs read through the backend hold its lines.

use crate::{rest, server, wait_job};
use bigmgr_core::manager::AddService;
use bigmgr_core::model::{JobOptions, JobRequest, Target};
use bigmgr_test_support::{AgentProc, wait_until};
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn an_agent_deploys_hello_and_its_task_logs_are_read() {
    let server = server();
    let rest = rest(&server);
    rest.create_cluster("c").await.unwrap();
    let token = rest.create_join_token("c").await.unwrap();
    let agent = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .join_token(&token)
        .start();
    wait_until("h1 to come online", Duration::from_secs(30), || async {
        let hosts = rest.hosts("c").await.unwrap();
        hosts
            .iter()
            .any(|h| h.name == "h1" && h.state.as_str() == "ONLINE")
            .then_some(())
    })
    .await;
    let h1 = rest.hosts("c").await.unwrap().remove(0);
    assert_eq!(h1.address, "127.0.0.2");
    assert!(h1.last_heartbeat.is_some());

    let mut placement = BTreeMap::new();
    placement.insert("hello_server".to_string(), vec!["h1".to_string()].into());
    rest.add_service(
        "c",
        AddService {
            name: "hello".into(),
            stack: "demo".into(),
            version: None,
            service: "hello".into(),
            placement,
            configs: Default::default(),
            host_overrides: Default::default(),
        },
    )
    .await
    .unwrap();

    let run = |command: &str| JobRequest {
        cluster: "c".into(),
        target: Target::Cluster,
        command: command.into(),
        options: JobOptions::default(),
    };
    let deploy = rest.submit(run("deploy")).await.unwrap();
    let done = wait_job(rest.as_ref(), deploy.id.0, Duration::from_secs(120)).await;
    assert_eq!(done.job.state.as_str(), "SUCCEEDED", "{done:#?}");
    let mut lines = Vec::new();
    for stage in &done.stages {
        for task in &stage.tasks {
            assert_eq!(task.state.as_str(), "SUCCEEDED", "{task:?}");
            assert_eq!(task.exit_code, Some(0));
            for l in rest.task_log(done.job.id.0, task.id.0).await.unwrap() {
                assert_eq!(l.attempt, 1);
                lines.push(l.line);
            }
        }
    }
    let text = lines.join("\n");
    for want in [
        "hello installed in",
        "hello configured:",
        "hello started (pid",
    ] {
        assert!(text.contains(want), "no '{want}' in the logs:\n{text}");
    }
    let svc = rest.service("c", "hello").await.unwrap();
    assert_eq!(svc.units[0].state.as_str(), "STARTED", "{svc:?}");
    assert_eq!(svc.units[0].applied_version, Some(1));

    let stop = rest.submit(run("stop")).await.unwrap();
    let stopped = wait_job(rest.as_ref(), stop.id.0, Duration::from_secs(60)).await;
    assert_eq!(stopped.job.state.as_str(), "SUCCEEDED", "{stopped:#?}");
    drop(agent);
}
