//! The server under real gRPC load: starts a real `bigmgr serve` process, opens N simulated
//! agents as real gRPC streams against it (each joins with the cluster's join token and answers
//! every RunTask at once with Received, Started and Finished), runs a no-op job of T tasks over
//! them, and prints tasks/s, dispatch latency percentiles, the server's CPU time and peak RSS,
//! and the idle RSS of one real `bigmgr-agent`.
//!
//! `cargo bench -p bigmgr-server --bench agents` (options after `--`: `--agents N` (1000),
//! `--components N` (10: tasks = agents × components), `--runs N` (3)).
//!
//! Dispatch latency is measured at the agents: for a host's first task, from the job's submit
//! to the RunTask's arrival; for every later task, from the moment the host sent its previous
//! task's Finished to the arrival of its next RunTask (the server's whole turnaround: receive,
//! persist the result, schedule, persist QUEUED, send). In the full-load runs every host
//! finishes at once, so this includes queueing behind the other hosts' results; a last job
//! runs one task at a time (parallelism 1) to measure a dispatch alone.

use bigmgr_core::grpc::pb;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A field of /proc/<pid>/status in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// User + system CPU seconds a process used so far.
fn cpu_secs(pid: u32) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields 14 and 15 of stat are utime and stime; `rest` starts at field 3.
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0)
}

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A REST client with the admin token.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("REST call");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status}: {v}");
        v
    }
    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }
    /// GET that tells success from failure instead of panicking.
    async fn found(&self, path: &str) -> bool {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

/// What the simulated agents measured.
#[derive(Default)]
struct Measure {
    /// Dispatch latencies, ms.
    latencies: Vec<f64>,
    /// When each host sent its last Finished (by host index); None before its first task.
    last_finished: Vec<Option<Instant>>,
    /// When the current job was submitted.
    submitted: Option<Instant>,
    finished: usize,
    last_finish_at: Option<Instant>,
    /// Latencies from the previous Finished sent by any host to this RunTask's arrival.
    sequential: Vec<f64>,
}

/// Opens one simulated agent's stream and serves it until the process ends.
async fn sim_agent(
    url: String,
    token: String,
    i: usize,
    measure: Arc<Mutex<Measure>>,
    connecting: tokio::sync::OwnedSemaphorePermit,
) {
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("connect");
    let mut client = pb::agent_service_client::AgentServiceClient::new(channel);
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(64);
    let register = pb::Register {
        name: format!("sim{i}"),
        address: "127.0.0.1".into(),
        facts: Some(pb::HostFacts {
            os: "sim".into(),
            cores: 1,
            ..Default::default()
        }),
        running: vec![],
        finished: vec![],
        auth: Some(pb::register::Auth::JoinToken(token)),
        agent_version: "sim".into(),
    };
    tx.send(pb::AgentMessage {
        body: Some(pb::agent_message::Body::Register(register)),
    })
    .await
    .expect("queue register");
    let mut inbound = client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("session")
        .into_inner();
    drop(connecting);
    let mut seq = 0u64;
    while let Ok(Some(msg)) = inbound.message().await {
        let Some(pb::server_message::Body::Run(task)) = msg.body else {
            continue;
        };
        let now = Instant::now();
        {
            let mut m = measure.lock().expect("measure");
            let from = m.last_finished[i].or(m.submitted);
            if let Some(from) = from {
                m.latencies
                    .push(now.duration_since(from).as_secs_f64() * 1000.0);
            }
            if let Some(prev) = m.last_finish_at {
                m.sequential
                    .push(now.duration_since(prev).as_secs_f64() * 1000.0);
            }
        }
        let run = task.run;
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut ev = |kind| {
            seq += 1;
            pb::TaskEvent {
                seq,
                run,
                kind: Some(kind),
            }
        };
        use pb::task_event::Kind;
        let events = vec![
            ev(Kind::Received(pb::Received {})),
            ev(Kind::Started(pb::Started { pid: 1, at_ms: at })),
            ev(Kind::Finished(pb::FinishedRun {
                run,
                result: Some(pb::TaskResult {
                    state: "SUCCEEDED".into(),
                    exit_code: Some(0),
                    pid: Some(1),
                    started_at_ms: Some(at),
                    finished_at_ms: at,
                    message: None,
                    outcome_unknown: false,
                }),
            })),
        ];
        {
            let mut m = measure.lock().expect("measure");
            let now = Instant::now();
            m.last_finished[i] = Some(now);
            m.finished += 1;
            m.last_finish_at = Some(now);
        }
        if tx
            .send(pb::AgentMessage {
                body: Some(pb::agent_message::Body::Events(pb::TaskEvents { events })),
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

fn write_stack(dir: &Path, components: usize) {
    let svc = dir.join("bench/1.0.0/noop");
    std::fs::create_dir_all(&svc).expect("stack dir");
    let mut toml = String::from(
        "[service]\nname = \"noop\"\nversion = \"1\"\ndescription = \"does nothing\"\n",
    );
    for c in 0..components {
        toml.push_str(&format!(
            "\n[[component]]\nname = \"c{c}\"\ncategory = \"server\"\ncardinality = \"0+\"\nscript = \"noop.sh\"\n"
        ));
    }
    std::fs::write(svc.join("service.toml"), toml).expect("manifest");
    std::fs::write(svc.join("noop.sh"), "#!/bin/sh\nexit 0\n").expect("script");
    std::fs::set_permissions(svc.join("noop.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn main() {
    let agents = arg("--agents", 1000);
    let components = arg("--components", 10);
    let runs = arg("--runs", 3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let tmp = tempfile::tempdir().expect("tmp");
        write_stack(&tmp.path().join("stacks"), components);
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let token = "bmt_bench_admin_token";
        let bin = Path::new(env!("CARGO_BIN_EXE_bigmgr"));
        let server = Proc(
            Command::new(bin)
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .arg("--data")
                .arg(tmp.path().join("data"))
                .arg("--stacks")
                .arg(tmp.path().join("stacks"))
                .env("BIGMGR_ADMIN_TOKEN", token)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start bigmgr serve"),
        );
        let pid = server.0.id();
        let api = Api {
            http: reqwest::Client::new(),
            base: format!("{url}/api/v1"),
            token: token.into(),
        };
        let t0 = Instant::now();
        loop {
            if let Ok(r) = api.http.get(format!("{url}/api/v1/health")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        api.post("/clusters", json!({"name": "bench"})).await;
        let join = api.post("/clusters/bench/join-tokens", json!({})).await;
        let join = join["token"].as_str().expect("token").to_owned();

        let measure = Arc::new(Mutex::new(Measure {
            last_finished: vec![None; agents],
            ..Measure::default()
        }));
        let t = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        for i in 0..agents {
            let permit = Arc::clone(&sem).acquire_owned().await.expect("permit");
            let (url, join, measure) = (url.clone(), join.clone(), Arc::clone(&measure));
            // At most 64 agents connect at once; each lets go of its permit once registered.
            tokio::spawn(sim_agent(url, join, i, measure, permit));
        }
        loop {
            // The list is paged (at most 1000 a page): count every page.
            let mut n = 0;
            let mut after = String::new();
            loop {
                let page = api
                    .get(&format!("/clusters/bench/hosts?limit=1000{after}"))
                    .await;
                n += page["items"].as_array().map_or(0, |a| a.len());
                match page["next"].as_str() {
                    Some(next) => after = format!("&after={next}"),
                    None => break,
                }
            }
            if n == agents {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(300), "only {n} of {agents} agents joined");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let joined = t.elapsed();
        let names: Vec<String> = (0..agents).map(|i| format!("sim{i}")).collect();
        let placement: serde_json::Map<String, Value> = (0..components)
            .map(|c| (format!("c{c}"), json!(names)))
            .collect();
        api.post(
            "/clusters/bench/services",
            json!({"name": "noop", "stack": "bench", "service": "noop", "placement": placement}),
        )
        .await;
        let idle_rss = status_kib(pid, "VmRSS:");
        println!(
            "grpc bench: {agents} simulated agents joined over gRPC in {:.2} s; server idle RSS {} MiB",
            joined.as_secs_f64(),
            idle_rss / 1024
        );

        for run in 1..=runs {
            {
                let mut m = measure.lock().expect("measure");
                m.latencies.clear();
                m.last_finished.iter_mut().for_each(|f| *f = None);
                m.finished = 0;
                m.submitted = Some(Instant::now());
            }
            let cpu0 = cpu_secs(pid);
            let t = Instant::now();
            let job = api
                .post("/clusters/bench/jobs", json!({"command": "start", "target": "cluster"}))
                .await;
            let id = job["id"].as_i64().expect("job id");
            let state = loop {
                let j = api.get(&format!("/jobs/{id}")).await;
                let s = j["state"].as_str().unwrap_or("").to_owned();
                if ["SUCCEEDED", "FAILED", "CANCELED"].contains(&s.as_str()) {
                    break s;
                }
                assert!(t.elapsed() < Duration::from_secs(600), "job {id} did not end");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let total = t.elapsed();
            let cpu = cpu_secs(pid) - cpu0;
            assert_eq!(state, "SUCCEEDED", "the no-op job ended {state}");
            let (mut lat, n, last) = {
                let m = measure.lock().expect("measure");
                (m.latencies.clone(), m.finished, m.last_finish_at)
            };
            lat.sort_by(f64::total_cmp);
            let at_agents = last.map(|l| l.duration_since(t)).unwrap_or(total);
            println!(
                "run {run}: {n} tasks in {:.3} s (all results sent by {:.3} s) = {:.0} tasks/s; \
                 dispatch latency p50 {:.2} ms p99 {:.2} ms; server CPU {:.2} s ({:.0}% of one core)",
                total.as_secs_f64(),
                at_agents.as_secs_f64(),
                n as f64 / total.as_secs_f64(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                cpu,
                cpu / total.as_secs_f64() * 100.0,
            );
        }
        // One task at a time (parallelism 1) over every host: each dispatch measured alone,
        // without a thousand others queued beside it.
        {
            let mut m = measure.lock().expect("measure");
            m.latencies.clear();
            m.last_finished.iter_mut().for_each(|f| *f = None);
            m.finished = 0;
            m.sequential.clear();
            m.last_finish_at = None;
            m.submitted = Some(Instant::now());
        }
        let t = Instant::now();
        let job = api
            .post(
                "/clusters/bench/jobs",
                json!({"command": "start",
                       "target": {"component": {"service": "noop", "component": "c0"}},
                       "options": {"parallelism": 1}}),
            )
            .await;
        let id = job["id"].as_i64().expect("job id");
        loop {
            let j = api.get(&format!("/jobs/{id}")).await;
            if j["state"] == "SUCCEEDED" {
                break;
            }
            assert!(j["state"] != "FAILED", "the sequential job failed");
            assert!(t.elapsed() < Duration::from_secs(600), "job {id} did not end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (mut lat, n) = {
            let m = measure.lock().expect("measure");
            // The next task goes to another host: measure from the previous Finished sent by
            // any host.
            (m.sequential.clone(), m.finished)
        };
        lat.sort_by(f64::total_cmp);
        println!(
            "one at a time: {n} tasks in {:.2} s; dispatch latency (previous result sent -> next task received) p50 {:.2} ms p99 {:.2} ms",
            t.elapsed().as_secs_f64(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
        );
        println!("server peak RSS {} MiB", status_kib(pid, "VmHWM:") / 1024);

        // One real agent, idle.
        let agent_bin = bin.with_file_name("bigmgr-agent");
        if agent_bin.exists() {
            let agent = Proc(
                Command::new(&agent_bin)
                    .args(["--server", &url, "--join-token", &join, "--name", "real1"])
                    .args(["--address", "127.0.0.2", "--root"])
                    .arg(tmp.path().join("real1"))
                    .env("RUST_LOG", "warn")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start bigmgr-agent"),
            );
            let t = Instant::now();
            loop {
                if api.found("/clusters/bench/hosts/real1").await
                    || t.elapsed() > Duration::from_secs(30)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            println!(
                "one real bigmgr-agent, registered and idle: RSS {} KiB (peak {} KiB)",
                status_kib(agent.0.id(), "VmRSS:"),
                status_kib(agent.0.id(), "VmHWM:")
            );
        } else {
            println!("(bigmgr-agent not built next to bigmgr: `cargo build -p bigmgr-agent` to measure its RSS)");
        }
        drop(server);
    });
}
