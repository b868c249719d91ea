//! The advisor against real failures made for real (issue 16): a stack script calling a
//! command that is not installed, a ZooKeeper server whose client port another process holds,
//! a host whose agent is stopped (LOST) with a ZooKeeper quorum member on it, and a Redis
//! replica whose primary was stopped. Each yields the right finding with its evidence, and the
//! suggested action, run once the cause is gone, fixes it.

use bigmgr_test_support::{
    AgentProc, EXIT_TIMEOUT, ServerProc, bigmgr_bin, kill_daemons, wait_until, write_executable,
};
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

/// The cluster's findings once `ready` holds for them (a minute at most).
async fn advice_when(
    api: &bigmgr_test_support::Api,
    what: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_until(what, Duration::from_secs(90), || async {
        let findings = api.list("/clusters/c/advice").await;
        ready(&findings).then_some(findings)
    })
    .await
}

/// Runs a finding's suggested request (a job) and waits for it to succeed.
async fn run_action(d: &crate::stacks::Deployment, action: &Value) {
    assert_eq!(action["method"], "POST", "{action:#}");
    let path = action["path"].as_str().expect("a path");
    let job = d.api.post(path, action["body"].clone()).await;
    let id = job.expect(202)["id"].as_i64().expect("a job id");
    d.expect_success(id).await;
}

/// A 3-server ZooKeeper on h1–h3; h3's agent is stopped and its ZooKeeper killed: the host is
/// LOST (`host.lost` naming it and its unit) and the ensemble one failure from losing its
/// quorum (`zookeeper.quorum` WARNING naming h3). The agent comes back on its root: `host.lost`
/// goes; the dead server is then seen as such, and the quorum finding's suggested start brings
/// it back, after which the advisor finds nothing.
#[tokio::test]
async fn a_lost_host_with_a_zookeeper_server_puts_the_quorum_at_risk_until_it_is_back() {
    use crate::stacks::{Deployment, address};
    let mut d = Deployment::start(3).await;
    d.add_service(json!({
        "name": "zk", "stack": "bigtop", "service": "zookeeper",
        "placement": {"zookeeper_server": ["h1", "h2", "h3"]},
        "configs": {"zoo.cfg": {"clientPort": 2191, "peerPort": 2898, "electionPort": 3898}},
    }))
    .await;
    d.run("deploy", json!({"service": "zk"})).await;
    advice_when(&d.api, "no findings once deployed", <[Value]>::is_empty).await;

    // h3's agent stops, and its ZooKeeper with it.
    let root = d.root(3);
    d.agents[2].proc.signal(nix::sys::signal::Signal::SIGKILL);
    d.agents[2].proc.wait_exit(EXIT_TIMEOUT);
    kill_daemons(&root.join("units"));
    let findings = advice_when(&d.api, "host.lost and zookeeper.quorum", |f| {
        !of_rule(f, "host.lost").is_empty() && !of_rule(f, "zookeeper.quorum").is_empty()
    })
    .await;
    let lost = of_rule(&findings, "host.lost");
    assert_eq!(lost.len(), 1, "{findings:#?}");
    assert_eq!(
        (&lost[0]["severity"], &lost[0]["host"]),
        (&Value::from("CRITICAL"), &Value::from("h3"))
    );
    assert!(
        lost[0]["evidence"]
            .to_string()
            .contains("units on it: zookeeper_server of zk"),
        "{:#}",
        lost[0]
    );
    assert!(
        lost[0]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains(&address(3)),
        "{:#}",
        lost[0]
    );
    let quorum = of_rule(&findings, "zookeeper.quorum");
    assert_eq!(quorum.len(), 1, "{findings:#?}");
    assert_eq!(quorum[0]["severity"], "WARNING", "{:#}", quorum[0]);
    assert!(
        quorum[0]["title"]
            .as_str()
            .unwrap_or_default()
            .contains("one failure from losing its quorum: 2 of 3 servers up"),
        "{:#}",
        quorum[0]
    );
    assert_eq!(
        quorum[0]["evidence"],
        json!(["zookeeper_server on h3: its host is lost"]),
        "{:#}",
        quorum[0]
    );
    // Scoped to the host: its own finding only.
    let of_h3 = d.api.list("/clusters/c/advice?host=h3").await;
    assert!(
        !of_h3.is_empty() && of_h3.iter().all(|f| f["host"] == "h3"),
        "{of_h3:#?}"
    );

    // The agent comes back on its root: the host is no longer lost.
    let back = AgentProc::cmd(&d.server.url, "h3", &address(3))
        .root(&root)
        .start();
    d.agents.push(back);
    let findings = advice_when(&d.api, "host.lost gone, h3's dead server seen", |f| {
        of_rule(f, "host.lost").is_empty()
            && of_rule(f, "unit.unhealthy")
                .iter()
                .any(|u| u["host"] == "h3")
    })
    .await;
    // Its ZooKeeper is still dead: the quorum is still one failure away, now for that reason.
    let quorum = of_rule(&findings, "zookeeper.quorum");
    assert_eq!(quorum.len(), 1, "{findings:#?}");
    assert!(
        quorum[0]["evidence"][0]
            .as_str()
            .unwrap_or_default()
            .starts_with("zookeeper_server on h3: status: "),
        "{:#}",
        quorum[0]
    );
    run_action(&d, &quorum[0]["actions"][0]).await;
    advice_when(
        &d.api,
        "no findings once the server is started",
        <[Value]>::is_empty,
    )
    .await;
    // h3's ZooKeeper itself serves in the ensemble again.
    wait_until("h3's server to serve", Duration::from_secs(60), || async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(format!("{}:2191", address(3)))
            .await
            .ok()?;
        s.write_all(b"srvr").await.ok()?;
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        (out.contains("Mode: leader") || out.contains("Mode: follower")).then_some(())
    })
    .await;
    d.stop_and_remove("zk", 2191, 3).await;
}

/// A Redis primary on h1 and a replica on h2; the primary is stopped with a bigmgr job. The
/// replica's own `INFO replication` says its link is down (the stack's `replication` alert),
/// and the advisor names the replica, its host and the stopped primary it points at, with a
/// job that starts the primary; run, it ends the finding.
#[tokio::test]
async fn a_redis_replica_of_a_stopped_primary_is_found_and_starting_the_primary_fixes_it() {
    use crate::stacks::{Deployment, address};
    let d = Deployment::start(2).await;
    d.add_service(json!({
        "name": "cache", "stack": "extra", "service": "redis",
        "placement": {"redis_primary": ["h1"], "redis_replica": ["h2"]},
        "configs": {"redis.conf": {"port": 6383}},
    }))
    .await;
    // An operator's tuning, so the test need not wait the stack's 10 s interval and 30 s `for`.
    d.api
        .put(
            "/clusters/c/alert-definitions/redis.replication",
            json!({"for": "0s", "interval": "2s"}),
        )
        .await
        .expect(200);
    d.run("deploy", json!({"service": "cache"})).await;
    let replicating = wait_until(
        "the replication alert OK",
        Duration::from_secs(60),
        || async {
            d.api
                .list("/clusters/c/alerts?service=cache")
                .await
                .into_iter()
                .find(|a| a["definition"] == "redis.replication" && a["state"] == "OK")
        },
    )
    .await;
    assert_eq!(
        replicating["text"],
        format!(
            "redis_replica of cache on h2: replicating from primary {}:6383: \
             master_link_status:up",
            address(1)
        ),
        "{replicating:#}"
    );
    assert!(
        of_rule(
            &d.api.list("/clusters/c/advice").await,
            "replica.not_replicating"
        )
        .is_empty()
    );

    let units = d.units("cache").await;
    let primary = units
        .iter()
        .find(|(h, _, _)| h == "h1")
        .map(|(_, id, _)| *id)
        .expect("the primary");
    let replica = units
        .iter()
        .find(|(h, _, _)| h == "h2")
        .map(|(_, id, _)| *id)
        .expect("the replica");
    d.run("stop", json!({"units": [primary]})).await;
    let findings = advice_when(&d.api, "replica.not_replicating", |f| {
        !of_rule(f, "replica.not_replicating").is_empty()
    })
    .await;
    let found = of_rule(&findings, "replica.not_replicating");
    assert_eq!(found.len(), 1, "{findings:#?}");
    let f = found[0];
    assert_eq!(
        (&f["severity"], &f["host"], &f["service"]),
        (
            &Value::from("CRITICAL"),
            &Value::from("h2"),
            &Value::from("cache")
        ),
        "{f:#}"
    );
    let evidence: Vec<&str> = f["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        evidence[0],
        format!("replica: redis_replica on h2 (unit {replica})"),
        "{f:#}"
    );
    assert!(
        evidence[1].starts_with("redis.replication CRITICAL since ")
            && evidence[1].contains(&format!(
                "not replicating: master_link_status:down from primary {}:6383",
                address(1)
            )),
        "the replica's own words: {f:#}"
    );
    assert_eq!(
        evidence[2],
        format!("primary it points at: redis_primary on h1 (unit {primary}), it is STOPPED"),
        "{f:#}"
    );
    let action = &f["actions"][0];
    assert_eq!(
        (&action["path"], &action["body"]),
        (
            &Value::from("/clusters/c/jobs"),
            &json!({"command": "start", "target": {"units": [primary]}})
        ),
        "{f:#}"
    );

    // The operator runs it: the primary starts, the replica reconnects, the finding is gone.
    run_action(&d, action).await;
    advice_when(&d.api, "replica.not_replicating gone", |f| {
        of_rule(f, "replica.not_replicating").is_empty()
    })
    .await;
    d.stop_and_remove("cache", 6383, 2).await;
}
