//! Issue 18, round trip 1, on real services: a cluster spec with the demo stack's hello and
//! greeter and the infra stack's node_exporter on every host and Prometheus related to them,
//! planned and applied on a real server with three real agents (127.0.0.2-4). Prometheus
//! must then scrape every node exporter; the same apply plans nothing and runs nothing; an
//! edited value and placement plan exactly those and reconfigure the stale units; and the
//! cluster exported with `bigmgr export` and applied to a fresh server exports the same.
//!
//! It takes its turn with the other real-service tests ([`Deployment`]). Prometheus and the
//! node exporters listen on ports of their own (set by the spec), so a concurrent run of the
//! stacks' tests on the default ports does not disturb it.

use crate::cli::Client;
use crate::stacks::{Deployment, address, prometheus_targets};
use bigmgr_test_support::{ServerProc, assert_contains, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

/// Prometheus's port in the spec.
const PROM_PORT: u16 = 9290;
/// The node exporters' port in the spec.
const NODE_PORT: u16 = 9291;

/// The spec: hello's greeting and greeter's hosts are what the test edits.
fn spec(greeting: &str, greeter_hosts: &str) -> String {
    format!(
        r#"cluster = "c"

[hosts]
h1 = "127.0.0.2"
h2 = "127.0.0.3"
h3 = "127.0.0.4"

[services.hello]
stack = "demo"
service = "hello"
placement = {{ hello_server = ["h1", "h2"] }}
configs = {{ "hello.conf" = {{ greeting = "{greeting}" }} }}

[services.hello.host_overrides.h2."hello.conf"]
interval = 2

[services.greeter]
stack = "demo"
service = "greeter"
placement = {{ greeter_server = {greeter_hosts} }}

[services.nodes]
stack = "infra"
service = "node_exporter"
placement = {{ node_exporter = ["h1", "h2", "h3"] }}
configs = {{ "node_exporter.env" = {{ metrics_port = {NODE_PORT} }} }}

[services.prom]
stack = "infra"
service = "prometheus"
placement = {{ prometheus_server = ["h1"] }}

[services.prom.configs."prometheus.yml"]
scrape_interval = "1s"
scrape_timeout = "1s"
evaluation_interval = "5s"

[services.prom.configs."prometheus-env"]
port = {PROM_PORT}

[[relations]]
requirer = "greeter"
provider = "hello"

[[relations]]
requirer = "prom:metrics"
provider = "nodes:metrics"
"#
    )
}

/// `(service, component, host)` of each unit in a plan's `units_to_add`, in its order.
fn units(plan: &Value) -> Vec<(String, String, String)> {
    plan["units_to_add"]
        .as_array()
        .expect("units_to_add")
        .iter()
        .map(|u| {
            let s = |k: &str| u[k].as_str().expect(k).to_string();
            (s("service"), s("component"), s("host"))
        })
        .collect()
}

/// `(command, service, hosts)` of each job in a plan, in its order.
fn jobs(plan: &Value) -> Vec<(String, String, Value)> {
    plan["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["command"].as_str().unwrap().to_string(),
                j["service"].as_str().unwrap().to_string(),
                j["hosts"].clone(),
            )
        })
        .collect()
}

/// Asserts that a plan changes nothing.
#[track_caller]
fn assert_empty(plan: &Value) {
    for field in [
        "hosts_to_add",
        "services_to_add",
        "services_to_remove",
        "units_to_add",
        "units_to_remove",
        "configs",
        "relations_to_add",
        "relations_to_remove",
        "jobs",
        "problems",
        "kept",
    ] {
        assert_eq!(plan[field], json!([]), "{field} of {plan:#}");
    }
    assert_eq!(plan["create_cluster"], false, "{plan:#}");
}

impl Deployment {
    /// `POST /clusters/c/plan` of `spec`: the plan.
    async fn plan_spec(&self, spec: &str) -> Value {
        let r = self
            .api
            .post("/clusters/c/plan", json!({ "spec": spec }))
            .await;
        r.expect(200).clone()
    }

    /// `POST /clusters/c/apply` of `spec` (202, also when it submits no job), then waits for
    /// every job it submitted to succeed: the apply's answer.
    async fn apply_spec(&self, spec: &str) -> Value {
        let r = self
            .api
            .post("/clusters/c/apply", json!({ "spec": spec }))
            .await;
        let applied = r.expect(202).clone();
        for job in applied["jobs"].as_array().expect("jobs") {
            self.expect_success(job["id"].as_i64().unwrap()).await;
        }
        applied
    }

    /// The cluster's jobs.
    async fn jobs(&self) -> Vec<Value> {
        let r = self.api.get("/clusters/c/jobs?limit=200").await;
        r.expect(200)["items"].as_array().unwrap().clone()
    }

    /// Waits until every job (the relations' automatic ones too) has ended, each SUCCEEDED,
    /// and every unit is STARTED and not stale.
    async fn settle(&self) {
        wait_until(
            "every job ended and every unit started and up to date",
            Duration::from_secs(240),
            || async {
                let jobs = self.jobs().await;
                let ended = |j: &Value| {
                    ["SUCCEEDED", "FAILED", "CANCELED"]
                        .contains(&j["state"].as_str().unwrap_or_default())
                };
                if !jobs.iter().all(ended) {
                    return None;
                }
                let units = self.api.get("/clusters/c/units").await;
                let units = units.body.as_array()?.clone();
                units
                    .iter()
                    .all(|u| u["state"] == "STARTED" && u["stale"] == false)
                    .then_some(())
            },
        )
        .await;
        let failed: Vec<Value> = self
            .jobs()
            .await
            .into_iter()
            .filter(|j| j["state"] != "SUCCEEDED")
            .collect();
        assert!(failed.is_empty(), "jobs that did not succeed: {failed:#?}");
    }

    /// Waits until hello's heartbeat on `h<i>` shows `greeting`.
    async fn greets(&self, i: usize, greeting: &str) {
        let heartbeat = self.unit_dir(i, "hello", "hello_server").join("heartbeat");
        wait_until(
            &format!("h{i}'s hello heartbeat saying {greeting:?}"),
            Duration::from_secs(60),
            || async {
                std::fs::read_to_string(&heartbeat)
                    .is_ok_and(|t| t.contains(greeting))
                    .then_some(())
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_spec_of_demo_and_monitoring_applies_applies_again_as_nothing_and_exports_the_same() {
    let d = Deployment::start(3).await;
    let first = spec("hello from the spec", r#"["h3"]"#);

    // On the empty cluster (its three hosts joined), the plan lists everything.
    let plan = d.plan_spec(&first).await;
    assert_eq!(plan["create_cluster"], false);
    assert_eq!(
        plan["hosts_to_add"],
        json!([]),
        "the agents' hosts are the spec's"
    );
    assert_eq!(
        plan["services_to_add"],
        json!(["greeter", "hello", "nodes", "prom"])
    );
    let unit = |s: &str, c: &str, h: &str| (s.to_string(), c.to_string(), h.to_string());
    assert_eq!(
        units(&plan),
        [
            unit("greeter", "greeter_server", "h3"),
            unit("hello", "hello_server", "h1"),
            unit("hello", "hello_server", "h2"),
            unit("nodes", "node_exporter", "h1"),
            unit("nodes", "node_exporter", "h2"),
            unit("nodes", "node_exporter", "h3"),
            unit("prom", "prometheus_server", "h1"),
        ]
    );
    assert_eq!(
        plan["relations_to_add"],
        json!([
            {"requirer": "greeter", "requirer_endpoint": "hello",
             "provider": "hello", "provider_endpoint": "hello"},
            {"requirer": "prom", "requirer_endpoint": "metrics",
             "provider": "nodes", "provider_endpoint": "metrics"},
        ])
    );
    let deploy = |s: &str, hosts: Value| ("deploy".to_string(), s.to_string(), hosts);
    assert_eq!(
        jobs(&plan),
        [
            deploy("greeter", json!([])),
            deploy("hello", json!([])),
            deploy("nodes", json!([])),
            deploy("prom", json!([])),
        ]
    );
    assert_eq!(d.jobs().await, Vec::<Value>::new(), "a plan runs nothing");

    // Applied: one deploy of every new unit, and the daemons run as the spec says.
    let applied = d.apply_spec(&first).await;
    assert_eq!(applied["plan"], plan, "the apply carried out the plan");
    assert_eq!(applied["jobs"].as_array().unwrap().len(), 1, "{applied:#}");
    d.settle().await;
    d.greets(1, "hello from the spec").await;
    d.greets(2, "hello from the spec").await;
    let prom = format!("{}:{PROM_PORT}", address(1));
    let mut want: Vec<(String, String)> = (1..=3)
        .map(|i| (format!("{}:{NODE_PORT}", address(i)), "up".to_string()))
        .chain([(prom.clone(), "up".to_string())])
        .collect();
    want.sort();
    wait_until(
        &format!("Prometheus's targets {want:?}"),
        Duration::from_secs(90),
        || async { (prometheus_targets(&prom).await == want).then_some(()) },
    )
    .await;

    // The same spec again: nothing planned, nothing changed, no job.
    let jobs_before = d.jobs().await.len();
    assert_empty(&d.plan_spec(&first).await);
    let again = d.apply_spec(&first).await;
    assert_empty(&again["plan"]);
    assert_eq!(again["jobs"], json!([]));
    assert_eq!(d.jobs().await.len(), jobs_before, "no job was submitted");

    // One value and one placement edited: the plan is exactly those; the apply deploys the
    // new unit and reconfigures hello's stale units.
    let edited = spec("hello again", r#"["h2", "h3"]"#);
    let plan = d.plan_spec(&edited).await;
    assert_eq!(units(&plan), [unit("greeter", "greeter_server", "h2")]);
    assert_eq!(
        plan["configs"],
        json!([{"service": "hello", "config_type": "hello.conf", "host": null,
                "property": "greeting", "from": "hello from the spec", "to": "hello again"}])
    );
    assert_eq!(
        jobs(&plan),
        [
            deploy("greeter", json!(["h2"])),
            ("reconfigure".to_string(), "hello".to_string(), json!([])),
        ]
    );
    for field in [
        "hosts_to_add",
        "services_to_add",
        "services_to_remove",
        "units_to_remove",
        "relations_to_add",
        "relations_to_remove",
        "problems",
        "kept",
    ] {
        assert_eq!(plan[field], json!([]), "{field} of {plan:#}");
    }
    let applied = d.apply_spec(&edited).await;
    let commands: Vec<&str> = applied["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["deploy", "reconfigure"], "{applied:#}");
    d.settle().await;
    d.greets(1, "hello again").await;
    d.greets(2, "hello again").await;
    let mut greeters: Vec<String> = d
        .units("greeter")
        .await
        .into_iter()
        .map(|(host, _, u)| format!("{host} {}", u["state"].as_str().unwrap_or_default()))
        .collect();
    greeters.sort();
    assert_eq!(greeters, ["h2 STARTED", "h3 STARTED"]);
    assert_empty(&d.plan_spec(&edited).await);

    // Exported, and applied to a fresh server (no agent needed there: its hosts wait for
    // theirs), the cluster exports the same.
    let cli = Client::of(&d.server);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exported.toml");
    let path = file.to_str().unwrap();
    cli.run(&["export", "c", "-o", path]).expect(0);
    let exported = std::fs::read_to_string(&file).unwrap();
    for line in [
        "h3 = \"127.0.0.4\"",
        "placement = { greeter_server = [\"h2\", \"h3\"] }",
        "greeting = \"hello again\"",
        "interval = 2",
        "requirer = \"prom:metrics\"",
    ] {
        assert_contains(&exported, line);
    }
    cli.run(&["plan", "-f", path, "--prune"])
        .says(0, "nothing to do");
    let fresh = ServerProc::serve().start();
    let other = Client::of(&fresh);
    let rebuilt = other.run(&["apply", "-f", path]);
    rebuilt.says(0, "+ cluster c");
    rebuilt.says(0, "+ relation prom:metrics -> nodes:metrics");
    assert_eq!(
        other.run(&["export", "c"]).expect(0).stdout,
        cli.run(&["export", "c"]).expect(0).stdout
    );
    other
        .run(&["plan", "-f", path, "--prune"])
        .says(0, "nothing to do");

    // Every daemon stopped by a stop job (dropping the agents kills what would be left).
    cli.run(&["job", "run", "c", "stop", "--wait"]).expect(0);
}
