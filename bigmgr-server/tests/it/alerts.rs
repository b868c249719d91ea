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

/// A webhook that answers 503 until it is switched on, and keeps what it received.
struct Hook {
    url: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    got: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hook {
    async fn start() -> Hook {
        use axum::routing::post;
        use std::sync::atomic::Ordering;
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (u, g) = (up.clone(), got.clone());
        let app = axum::Router::new().route(
            "/hook",
            post(move |body: String| {
                let (u, g) = (u.clone(), g.clone());
                async move {
                    if !u.load(Ordering::SeqCst) {
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down for now");
                    }
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    g.lock().expect("lock").push(v);
                    (axum::http::StatusCode::OK, "thanks")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hook { url, up, got, task }
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_webhook_down_at_first_gets_every_notification_once_and_the_log_shows_retries() {
    let hook = Hook::start().await;
    let server = ServerProc::serve()
        .fast_heartbeat()
        .arg("--alert-interval")
        .arg("500ms")
        .start();
    let api = server.api();
    api.create_cluster("c").await;
    // A bad URL is refused naming the field; the good one is added.
    let bad = api
        .post(
            "/clusters/c/alert-targets",
            serde_json::json!({"name": "x", "url": "file:///etc/passwd"}),
        )
        .await
        .problem(422);
    assert!(bad.contains("not a webhook URL"), "{bad}");
    api.post(
        "/clusters/c/alert-targets",
        serde_json::json!({"name": "hook", "url": hook.url}),
    )
    .await
    .expect(201);
    let mut agent = api.join_agent("c", "h1", "127.0.0.2").await;
    wait_state(&api, "h1", "OK").await;

    agent.proc.signal(Signal::SIGKILL);
    agent.proc.wait_exit(EXIT_TIMEOUT);
    wait_state(&api, "h1", "CRITICAL").await;
    // The webhook is down: attempts fail and are logged.
    let failed = wait_until("two failed attempts", Duration::from_secs(20), || async {
        let log = api
            .get("/clusters/c/alerts/deliveries")
            .await
            .expect(200)
            .clone();
        let n = log
            .as_array()?
            .iter()
            .filter(|d| d["status"] == 503)
            .count();
        (n >= 2).then_some(log)
    })
    .await;
    assert!(
        failed[0]["answer"]
            .as_str()
            .unwrap_or_default()
            .contains("503"),
        "{failed}"
    );
    hook.up.store(true, std::sync::atomic::Ordering::SeqCst);

    // Back up: the notification arrives, then the resolution.
    let _back = AgentProc::cmd(&server.url, "h1", "127.0.0.2")
        .root(&agent.root)
        .start();
    wait_state(&api, "h1", "OK").await;
    let got = wait_until("both notifications", Duration::from_secs(30), || async {
        let got = hook.got.lock().expect("lock").clone();
        (got.len() >= 2).then_some(got)
    })
    .await;
    // Nothing doubled: the delivery worker runs every half second, give a late double time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got_now = hook.got.lock().expect("lock").clone();
    assert_eq!(got_now.len(), 2, "exactly two notifications: {got_now:?}");
    let moves: Vec<(Value, Value, Value)> = got
        .iter()
        .map(|n| {
            let c = &n["changes"][0];
            (c["definition"].clone(), c["from"].clone(), c["to"].clone())
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("host_lost".into(), "OK".into(), "CRITICAL".into()),
            ("host_lost".into(), "CRITICAL".into(), "OK".into())
        ],
        "{got:?}"
    );
    assert_eq!(got[0]["cluster"], "c");
    assert_eq!(got[0]["changes"][0]["host"], "h1");
    let log = api
        .get("/clusters/c/alerts/deliveries")
        .await
        .expect(200)
        .clone();
    let statuses: Vec<i64> = log
        .as_array()
        .expect("log")
        .iter()
        .rev()
        .filter_map(|d| d["status"].as_i64())
        .collect();
    assert!(
        statuses.starts_with(&[503, 503]) && statuses.ends_with(&[200, 200]),
        "oldest first: {statuses:?}"
    );
    let targets = api
        .get("/clusters/c/alert-targets")
        .await
        .expect(200)
        .clone();
    assert_eq!(targets[0]["name"], "hook");
    api.delete("/clusters/c/alert-targets/hook").await;
    assert_eq!(
        api.get("/clusters/c/alert-targets")
            .await
            .expect(200)
            .clone(),
        serde_json::json!([])
    );
}
