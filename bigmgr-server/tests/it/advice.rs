//! The advisor against real failures made for real (issue 16): a stack script calling a
//! command that is not installed, and a ZooKeeper server whose client port another process
//! holds. Each yields the right finding with its evidence, and the suggested action, run once
//! the cause is gone, fixes it.

use bigmgr_test_support::{ServerProc, bigmgr_bin, write_executable};
use serde_json::{Value, json};
use std::time::Duration;

/// A stack `test` with service `needy`, whose `start` calls a command that is not installed.
fn write_needy_stack(root: &std::path::Path) {
    let dir = root.join("test").join("1.0.0").join("needy");
    std::fs::create_dir_all(&dir).expect("service dir");
    std::fs::write(
        dir.join("service.toml"),
        "[service]\nname = \"needy\"\nversion = \"1.0\"\ndescription = \"needs a tool\"\n\n\
         [[component]]\nname = \"needy_server\"\ncategory = \"server\"\ncardinality = \"1+\"\n\
         script = \"run.sh\"\n",
    )
    .expect("manifest");
    write_executable(
        &dir.join("run.sh"),
        "#!/bin/sh\nset -e\ncase \"$1\" in\n  start) echo starting; no-such-tool-for-bigmgr --serve ;;\n  *) exit 0 ;;\nesac\n",
    );
}

/// The findings of `rule`.
fn of_rule<'a>(findings: &'a [Value], rule: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["rule"] == rule).collect()
}

#[tokio::test]
async fn a_missing_command_is_diagnosed_from_the_task_log_with_a_retry_to_run() {
    let stacks = tempfile::tempdir().expect("tempdir");
    write_needy_stack(stacks.path());
    let server = ServerProc::serve()
        .fast_heartbeat()
        .stacks(stacks.path())
        .start();
    let api = server.api();
    api.create_cluster("c").await;
    let _agent = api.join_agent("c", "h1", "127.0.0.2").await;
    api.add_service(
        "c",
        json!({"name": "n", "stack": "test", "service": "needy",
               "placement": {"needy_server": ["h1"]}}),
    )
    .await;
    let id = api.submit("c", "start", json!({"service": "n"})).await;
    let job = api.wait_job(id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "FAILED");

    let findings = api.list("/clusters/c/advice").await;
    let missing = of_rule(&findings, "task.missing_command");
    assert_eq!(missing.len(), 1, "{findings:#?}");
    let f = missing[0];
    assert_eq!(
        (&f["severity"], &f["host"], &f["service"], &f["job"]),
        (
            &Value::from("CRITICAL"),
            &Value::from("h1"),
            &Value::from("n"),
            &Value::from(id)
        )
    );
    let evidence = f["evidence"].to_string();
    assert!(evidence.contains("no-such-tool-for-bigmgr"), "{f:#}");
    assert!(
        f["title"]
            .as_str()
            .unwrap_or_default()
            .contains("a command or package it needs is missing"),
        "{f:#}"
    );
    assert_eq!(f["actions"][0]["path"], format!("/jobs/{id}/retry"));
    // Scoped: to the job, to its host; another host has nothing; an unknown job is not found.
    assert_eq!(
        api.list(&format!("/clusters/c/advice?job={id}"))
            .await
            .len(),
        findings.iter().filter(|f| f["job"] == id).count()
    );
    assert!(!api.list("/clusters/c/advice?host=h1").await.is_empty());
    assert!(api.list("/clusters/c/advice?host=h9").await.is_empty());
    api.get("/clusters/c/advice?job=987654").await.problem(404);

    // The CLI says it plainly, with the request to run, and runs nothing.
    let out = std::process::Command::new(bigmgr_bin())
        .args(["advise", "c"])
        .env("BIGMGR_SERVER", &server.url)
        .env("BIGMGR_TOKEN", server.token())
        .output()
        .expect("bigmgr advise");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("CRITICAL start of n on h1")
            && text.contains("what to do: Install what the log line names")
            && text.contains(&format!("POST /api/v1/jobs/{id}/retry")),
        "{text}"
    );
    let again = api.get(&format!("/jobs/{id}")).await.expect(200).clone();
    assert_eq!(again["state"], "FAILED", "advising ran nothing");
}

/// A real ZooKeeper whose client port another process holds: `deploy` fails, the advisor says
/// the port is taken (the log line names it), and the suggested retry, run once the port is
/// free, deploys it.
#[tokio::test]
async fn a_taken_zookeeper_port_is_diagnosed_and_the_suggested_retry_fixes_it() {
    use crate::stacks::{Deployment, address};
    let d = Deployment::start(1).await;
    let squatter = std::net::TcpListener::bind(format!("{}:2181", address(1))).expect("bind 2181");
    d.add_service(json!({
        "name": "zk", "stack": "bigtop", "service": "zookeeper",
        "placement": {"zookeeper_server": ["h1"]},
    }))
    .await;
    let id = d.api.submit("c", "deploy", json!({"service": "zk"})).await;
    let job = d.api.wait_job(id, Duration::from_secs(240)).await;
    assert_eq!(job["state"], "FAILED");
    let findings = d.api.list(&format!("/clusters/c/advice?job={id}")).await;
    let taken = of_rule(&findings, "task.port_in_use");
    assert_eq!(taken.len(), 1, "{findings:#?}");
    assert!(
        taken[0]["evidence"]
            .to_string()
            .contains("2181 is already in use"),
        "{:#}",
        taken[0]
    );
    let action = &taken[0]["actions"][0];
    assert_eq!(action["method"], "POST");

    // The port is freed; the operator runs the suggested request.
    drop(squatter);
    let path = action["path"].as_str().expect("a path");
    d.api.post(path, json!({})).await.expect(200);
    d.expect_success(id).await;
    // ZooKeeper itself answers on the port now.
    let answer = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(format!("{}:2181", address(1))).expect("connect");
        s.write_all(b"ruok").expect("ruok");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert_eq!(answer, "imok");
    let after = d.api.list(&format!("/clusters/c/advice?job={id}")).await;
    assert!(after.is_empty(), "fixed: {after:#?}");
    d.stop_and_remove("zk", 2181, 1).await;
}
