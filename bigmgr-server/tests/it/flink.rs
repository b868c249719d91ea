//! Apache Flink from the bigtop stack on real JVMs: a JobManager on h1 and TaskManagers on h2
//! and h3 (127.0.0.2–4), a client on h1, deployed by real agents from the two PyPI wheels. The
//! cluster is checked from outside (the JobManager's REST API: both TaskManagers, Flink 2.3.0,
//! the check's word count job FINISHED on both), the service check's word count result is read
//! from its task's log, and stop and remove leave nothing listening.
//!
//! The agents share one download cache ([`bigmgr_test_support::software_cache`]), so the wheels
//! (about 330 MB) are fetched from PyPI once per machine, by the first run.

use crate::stacks::{Deployment, address};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A deploy on a fresh cache fetches and unpacks the wheels; later ones take a minute or two.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(900);

/// The JobManager's and TaskManagers' ports (the service's defaults).
const JOBMANAGER_PORTS: [u16; 3] = [6123, 8081, 6124];
const TASKMANAGER_PORTS: [u16; 2] = [6122, 6121];

/// GET `url` as JSON; `None` if nothing answers or the answer is no JSON.
async fn get_json(url: &str) -> Option<Value> {
    let res = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json().await.ok()
}

/// True if something accepts connections on `addr`.
async fn listening(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// The log of the one task of `component`'s `command` stage in job `job`, one line each.
async fn task_log(d: &Deployment, job: &Value, component: &str, command: &str) -> String {
    let id = job["id"].as_i64().unwrap();
    let stage = job["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["component"] == component && s["command"] == command)
        .unwrap_or_else(|| panic!("no {component} {command} stage in {job}"));
    let tasks = stage["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{stage}");
    let log = d
        .api
        .get(&format!("/jobs/{id}/tasks/{}/log", tasks[0]["id"]))
        .await;
    log.expect(200)["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints the log of every task of `job`, stage by stage (seen with `--nocapture`, or when the
/// test fails).
async fn print_logs(d: &Deployment, job: &Value) {
    let id = job["id"].as_i64().unwrap();
    for stage in job["stages"].as_array().unwrap() {
        for t in stage["tasks"].as_array().unwrap() {
            let log = d
                .api
                .get(&format!("/jobs/{id}/tasks/{}/log", t["id"]))
                .await;
            println!(
                "--- job {id}: {} on {} ({}) ---",
                stage["name"], t["host"], t["state"]
            );
            for l in log.expect(200)["lines"].as_array().unwrap() {
                println!("{}", l["line"].as_str().unwrap_or_default());
            }
        }
    }
}

/// The TaskManagers (resource ids) that ran tasks of Flink job `job`, from the REST API at
/// `rest`.
async fn job_taskmanagers(rest: &str, job: &str) -> Vec<String> {
    let detail = get_json(&format!("{rest}/jobs/{job}"))
        .await
        .unwrap_or_else(|| panic!("{rest}/jobs/{job} does not answer"));
    assert_eq!(detail["state"], "FINISHED", "{detail}");
    let mut out = Vec::new();
    for v in detail["vertices"].as_array().unwrap() {
        let url = format!(
            "{rest}/jobs/{job}/vertices/{}/taskmanagers",
            v["id"].as_str().unwrap()
        );
        let tms = get_json(&url).await.unwrap_or_else(|| panic!("{url}"));
        for t in tms["taskmanagers"].as_array().unwrap() {
            out.push(t["taskmanager-id"].as_str().unwrap().to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether process `pid` runs: it exists and is no zombie (a daemon's exited JVM stays a
/// zombie until whoever adopted it reaps it).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        !matches!(state, Some(Some('Z' | 'X')))
    })
}

/// The local addresses of the TCP sockets listening on `port` (`ss`), as `address:port`
/// (an IPv4-mapped `[::ffff:a.b.c.d]` as `a.b.c.d`; a wildcard as `*`, `0.0.0.0` or `[::]`).
fn listeners(port: u16) -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|a| match a.strip_prefix("[::ffff:") {
            Some(v4) => v4.replacen(']', "", 1),
            None => a.to_string(),
        })
        .collect()
}

/// A Flink session cluster from nothing: deploy installs Java and the wheels, starts the
/// JobManager and both TaskManagers bound to their hosts' addresses and runs the service check;
/// the REST API shows both TaskManagers; a check job's word count is right, and ran on both
/// TaskManagers; stop and remove leave no port open and no FLINK_HOME behind.
#[tokio::test]
async fn flink_session_cluster_deploys_counts_words_on_every_taskmanager_and_cleans_up() {
    let began = Instant::now();
    let d = Deployment::start(3).await;
    d.add_service(json!({
        "name": "flink", "stack": "bigtop", "service": "flink",
        "placement": {
            "flink_jobmanager": ["h1"],
            "flink_taskmanager": ["h2", "h3"],
            "flink_client": ["h1"],
        },
    }))
    .await;
    let deploy_began = Instant::now();
    let deployed = d
        .api
        .run_job("c", "deploy", json!({"service": "flink"}), DEPLOY_TIMEOUT)
        .await;
    let deploy_secs = deploy_began.elapsed().as_secs_f64();
    print_logs(&d, &deployed).await;

    // From outside: the JobManager's REST API on h1's address lists both TaskManagers.
    let rest = format!("http://{}:8081", address(1));
    let overview = get_json(&format!("{rest}/overview"))
        .await
        .expect("the JobManager's REST API answers");
    assert_eq!(overview["taskmanagers"], 2, "{overview}");
    assert_eq!(overview["slots-total"], 2, "{overview}");
    assert_eq!(overview["flink-version"], "2.3.0", "{overview}");
    let tms = get_json(&format!("{rest}/taskmanagers")).await.unwrap();
    let mut seen: Vec<(String, String)> = tms["taskmanagers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 2, "{tms}");
    for ((id, path), i) in seen.iter().zip([2, 3]) {
        assert_eq!(id, &format!("h{i}"), "{tms}");
        // The TaskManager's RPC endpoint is its own host's address and port.
        assert!(path.contains(&format!("@{}:6122/", address(i))), "{path}");
    }
    // Every port is bound to its unit's address, none to a wildcard address.
    for (port, i) in JOBMANAGER_PORTS
        .iter()
        .map(|p| (*p, 1))
        .chain(TASKMANAGER_PORTS.iter().flat_map(|p| [(*p, 2), (*p, 3)]))
    {
        let found = listeners(port);
        let mine = format!("{}:{port}", address(i));
        assert!(found.contains(&mine), "{mine} is not listening: {found:?}");
        // (Other addresses are other tests' business: they may run beside this one.)
        let wildcards = [
            format!("*:{port}"),
            format!("0.0.0.0:{port}"),
            format!("[::]:{port}"),
        ];
        assert!(
            !found.iter().any(|l| wildcards.contains(l)),
            "port {port} is bound to a wildcard address: {found:?}"
        );
    }
    // The deploy's own check ran the word count.
    let deploy_check = task_log(&d, &deployed, "flink_jobmanager", "check").await;
    assert!(
        deploy_check.contains("word count verified"),
        "{deploy_check}"
    );

    // The service check: every TaskManager checks in, then the JobManager's word count.
    let check_began = Instant::now();
    let checked = d.run("check", json!({"service": "flink"})).await;
    let check_secs = check_began.elapsed().as_secs_f64();
    print_logs(&d, &checked).await;
    let log = task_log(&d, &checked, "flink_jobmanager", "check").await;
    let verified = log
        .lines()
        .find(|l| l.contains("word count verified: job "))
        .unwrap_or_else(|| panic!("no verified word count in the check's log:\n{log}"));
    assert!(verified.contains("66 words, 43 distinct"), "{verified}");
    for count in ["  to 8", "  the 5", "  and 4"] {
        assert!(log.lines().any(|l| l == count), "no '{count}' in:\n{log}");
    }
    // The job it names FINISHED, and ran on both TaskManagers.
    let job = verified
        .split("job ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(job.len(), 32, "{verified}");
    assert_eq!(job_taskmanagers(&rest, &job).await, ["h2", "h3"]);
    let tm_checks = checked["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["component"] == "flink_taskmanager" && s["command"] == "check")
        .expect("a taskmanager check stage");
    for i in [2, 3] {
        assert!(
            tm_checks["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["host"] == format!("h{i}") && t["state"] == "SUCCEEDED"),
            "h{i}'s taskmanager check: {tm_checks}"
        );
    }
    let client = task_log(&d, &checked, "flink_client", "check").await;
    assert!(client.contains("check passed"), "{client}");

    // A second start changes nothing.
    let pid = |i: usize, c: &str| {
        std::fs::read_to_string(d.unit_dir(i, "flink", c).join(format!("{c}.pid")))
            .unwrap_or_else(|e| panic!("h{i} {c}: {e}"))
            .trim()
            .to_string()
    };
    let before = pid(1, "flink_jobmanager");
    let again = d.run("start", json!({"service": "flink"})).await;
    let start_log = task_log(&d, &again, "flink_jobmanager", "start").await;
    assert!(start_log.contains("already running"), "{start_log}");
    assert_eq!(pid(1, "flink_jobmanager"), before);

    // Stop: no port of any unit answers; remove: no FLINK_HOME left.
    let jvm_pids: Vec<(usize, &str, String)> = [
        (1, "flink_jobmanager"),
        (2, "flink_taskmanager"),
        (3, "flink_taskmanager"),
    ]
    .into_iter()
    .map(|(i, c)| (i, c, pid(i, c)))
    .collect();
    d.run("stop", json!({"service": "flink"})).await;
    for (i, c, pid) in &jvm_pids {
        assert!(
            !alive(pid),
            "h{i} {c}: the JVM (pid {pid}) still runs after stop"
        );
    }
    for (port, i) in JOBMANAGER_PORTS
        .iter()
        .map(|p| (*p, 1))
        .chain(TASKMANAGER_PORTS.iter().flat_map(|p| [(*p, 2), (*p, 3)]))
    {
        let addr = format!("{}:{port}", address(i));
        assert!(!listening(&addr).await, "{addr} still listens after stop");
    }
    d.run("remove", json!({"service": "flink"})).await;
    for (i, c, _) in &jvm_pids {
        let dir = d.unit_dir(*i, "flink", c);
        for gone in ["lib", "bin", "log", "conf", &format!("{c}.pid")] {
            assert!(!dir.join(gone).exists(), "h{i} {c}: {gone} is left");
        }
    }
    println!(
        "flink test: deploy {deploy_secs:.1} s, check {check_secs:.1} s, whole test {:.1} s",
        began.elapsed().as_secs_f64()
    );
}
