//! Built-in alerts on a real server with a real agent: a host whose agent dies goes
//! `host_lost` CRITICAL, listed among the firing alerts and counted in `/metrics`; when the
//! agent comes back the alert resolves, and the history keeps both changes.

use bigmgr_test_support::{AgentProc, Api, EXIT_TIMEOUT, ServerProc, bigmgr_bin, wait_until};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::time::Duration;

/// The state of `definition`'s alert about host `host`, if there is one.
async fn alert_of(api: &Api, definition: &str, host: &str) -> Option<Value> {
    let all = api.get("/clusters/c/alerts").await.expect(200).clone();
    all.as_array()?
        .iter()
        .find(|a| a["definition"] == definition && a["host"] == host)
        .cloned()
}

async fn wait_state(api: &Api, host: &str, state: &str) -> Value {
    wait_until(
        &format!("host_lost of {host} to be {state}"),
        Duration::from_secs(30),
        || async {
            alert_of(api, "host_lost", host)
                .await
                .filter(|a| a["state"] == state)
        },
    )
    .await
}

#[tokio::test]
async fn a_lost_host_raises_host_lost_and_its_return_resolves_it() {
    let server = ServerProc::serve()
        .fast_heartbeat()
        .arg("--alert-interval")
        .arg("500ms")
        .start();
    let api = server.api();
    api.create_cluster("c").await;
    let mut agent = api.join_agent("c", "h1", "127.0.0.2").await;
    let ok = wait_state(&api, "h1", "OK").await;
    assert_eq!(ok["text"], "host h1 is online");

    agent.proc.signal(Signal::SIGKILL);
    agent.proc.wait_exit(EXIT_TIMEOUT);
    let lost = wait_state(&api, "h1", "CRITICAL").await;
    assert!(
        lost["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("host h1 is lost"),
        "{lost}"
    );
    let firing = api
        .get("/clusters/c/alerts?firing=true")
        .await
        .expect(200)
        .clone();
    assert_eq!(
        firing.as_array().map(Vec::len),
        Some(1),
        "only the lost host fires: {firing}"
    );
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(server.token())
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("bigmgr_alerts_firing{state=\"CRITICAL\"} 1"),
        "{metrics}"
    );

    // The CLI lists the firing alert.
    let out = std::process::Command::new(bigmgr_bin())
        .args(["alert", "list", "c", "--firing"])
        .env("BIGMGR_SERVER", &server.url)
        .env("BIGMGR_TOKEN", server.token())
        .output()
        .expect("bigmgr alert list");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    let row = table
        .lines()
        .find(|l| l.contains("host_lost"))
        .unwrap_or_default();
    assert!(
        row.starts_with("CRITICAL") && row.contains(" h1 ") && row.contains("host h1 is lost"),
        "{table}"
    );

    // The agent comes back on its root (its credential): the alert resolves.
    let back = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .root(&agent.root)
        .start();
    wait_state(&api, "h1", "OK").await;
    let history = api
        .get("/clusters/c/alerts/history")
        .await
        .expect(200)
        .clone();
    let moves: Vec<(String, String)> = history
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["definition"] == "host_lost")
        .map(|c| (c["from"].to_string(), c["to"].to_string()))
        .collect();
    assert_eq!(
        moves,
        [
            ("\"OK\"".to_string(), "\"CRITICAL\"".to_string()),
            ("\"CRITICAL\"".to_string(), "\"OK\"".to_string())
        ],
        "{history}"
    );
    // Paged by cursor, and bad limits are refused saying what fits.
    let first = history[0]["id"].as_i64().expect("id");
    let rest = api
        .get(&format!("/clusters/c/alerts/history?after={first}&limit=1"))
        .await
        .expect(200)
        .clone();
    assert_eq!(rest.as_array().map(Vec::len), Some(1), "{rest}");
    let bad = api
        .get("/clusters/c/alerts/history?limit=0")
        .await
        .problem(400);
    assert!(bad.contains("limit=0"), "{bad}");
    api.get("/clusters/nope/alerts").await.problem(404);
    drop(back);
}
