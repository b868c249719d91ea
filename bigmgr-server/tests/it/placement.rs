//! Placement by count chooses the least loaded hosts by their averaged heartbeats: four real
//! agents, each reporting the CPU of its own control group (`--metrics-cgroup`), and real CPU
//! burners in two of those groups. Through REST (a service's dry run and its addition), the
//! CLI (`service add --count`) and a cluster spec's plan, the busy hosts are passed over.

use crate::cli::Client;
use bigmgr_test_support::{AgentProc, ServerProc, Slices, assert_contains, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

/// `bigmgr service add --count COUNT --dry-run` of a demo hello named `cli`: its stdout.
fn cli_dry_run(server: &ServerProc, count: &str) -> String {
    let cli = Client::of(server);
    let args = [
        "service",
        "add",
        "c",
        "--name",
        "cli",
        "--stack",
        "demo",
        "--service",
        "hello",
        "--count",
        count,
        "--dry-run",
    ];
    cli.run(&args).expect(0).stdout.clone()
}

/// The hosts of the units in `units` (a list of `{component, host, …}`), sorted.
fn hosts_of(units: &Value) -> Vec<String> {
    let mut hosts: Vec<String> = units
        .as_array()
        .expect("units")
        .iter()
        .map(|u| u["host"].as_str().expect("a host").to_string())
        .collect();
    hosts.sort();
    hosts
}

#[tokio::test]
async fn a_count_is_placed_on_the_least_loaded_hosts_and_busy_ones_are_passed_over() {
    let names = ["h1", "h2", "h3", "h4"];
    let mut slices = Slices::create(&names);
    // Busy before the agents start, so every heartbeat they send shows it.
    slices.burn("h1");
    slices.burn("h3");
    let server = ServerProc::serve().fast_heartbeat().start();
    let api = server.api();
    api.create_cluster("c").await;
    let token = api.join_token("c").await;
    let _agents: Vec<AgentProc> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            AgentProc::cmd(&server.url, n, &format!("127.0.0.{}", i + 2))
                .join_token(&token)
                .arg("--metrics-cgroup")
                .arg(slices.path(n))
                .start()
        })
        .collect();
    for n in names {
        api.wait_online("c", n).await;
    }
    // Wait until the averages the server holds tell busy from idle (a few heartbeats).
    let averages = || async {
        let series = api.get("/clusters/c/metrics?window=60&points=1").await;
        let series = series.expect(200).clone();
        let cpu = |h: &str| {
            series
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["host"] == h)
                .and_then(|s| s["cpu_percent"].as_array()?.last()?.as_f64())
        };
        names.map(cpu)
    };
    wait_until(
        "busy and idle hosts told apart",
        Duration::from_secs(30),
        || async {
            let [h1, h2, h3, h4] = averages().await;
            matches!((h1, h2, h3, h4), (Some(a), Some(b), Some(c), Some(d))
            if a > 10.0 && c > 10.0 && b < 5.0 && d < 5.0)
            .then_some(())
        },
    )
    .await;

    // REST, a dry run: two units, on the idle hosts, saying why.
    let body = json!({"name": "hello", "stack": "demo", "service": "hello",
                      "placement": {"hello_server": 2}});
    let dry = api
        .post("/clusters/c/services?dry_run=true", body.clone())
        .await;
    let dry = dry.expect(200).clone();
    assert_eq!(hosts_of(&dry["units"]), ["h2", "h4"], "{dry}");
    let why = dry["units"][0]["why"].as_str().unwrap();
    assert_contains(why, "chosen by load");
    assert_contains(why, "passed over h");

    // The CLI, through `--count`: with a pattern only busy h3 matches, it is chosen anyway;
    // with `h*` the idle ones are.
    let only_h3 = cli_dry_run(&server, "hello_server=1:h3");
    assert_contains(&only_h3, "h3");
    assert_contains(&only_h3, "chosen by load: h3");
    let any = cli_dry_run(&server, "hello_server=2:h*");
    assert_contains(&any, "chosen by load: h2");
    assert_contains(&any, "chosen by load: h4");

    // A spec's plan: the same choice, and the reason in the plan.
    let spec = "cluster = \"c\"\n\n[services.web]\nstack = \"demo\"\nservice = \"hello\"\n\
                placement = { hello_server = { count = 2, match = \"h*\" } }\n";
    let plan = api.post("/clusters/c/plan", json!({"spec": spec})).await;
    let plan = plan.expect(200).clone();
    assert_eq!(hosts_of(&plan["units_to_add"]), ["h2", "h4"], "{plan}");

    // Added for real: the units are where the dry run said.
    let added = api.add_service("c", body).await;
    assert_eq!(hosts_of(&added["units"]), ["h2", "h4"], "{added}");
    drop(slices);
}
