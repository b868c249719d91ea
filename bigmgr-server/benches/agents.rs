//! The server under real gRPC load: starts a real `bigmgr serve` process, opens N simulated
//! agents as real gRPC streams against it (each joins with the cluster's join token and answers
//! every RunTask at once with Received, Started and Finished), runs a no-op job of T tasks over
//! them, and prints tasks/s, dispatch latency percentiles, the server's CPU time and peak RSS,
//! and the idle RSS of one real `bigmgr-agent`.
//!
//! `cargo bench -p bigmgr-server --bench agents` (options after `--`: `--agents N` (1000),
//! `--components N` (10: tasks = agents × components), `--runs N` (3)). It runs twice in the
//! same process: over plain h2c (`--insecure-http`), then over TLS with the agents pinning the
//! server's CA and presenting the client certificates it issued them (mutual TLS), and prints
//! the TLS/plain ratios of throughput and latency.
//!
//! Dispatch latency is measured at the agents, from the moment a host sent its previous task's
//! Finished to the arrival of its next RunTask (the server's whole turnaround: receive, persist
//! the result, schedule, persist QUEUED, send): the next-task latency issue 20 sets a target
//! for. A host's first task of a job, measured from the job's submit (which creates and loads
//! its 10 000 tasks first), is printed apart. In the full-load runs every host finishes at
//! once, so this includes queueing behind the other hosts' results; a last job
//! runs one task at a time (parallelism 1) to measure a dispatch alone.

use bigmgr_core::grpc::pb;
use bigmgr_test_support::bench::{arg, arg_str, cpu_secs, percentile, run_noop};
use bigmgr_test_support::{AgentProc, ServerProc, status_kib};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the simulated agents measured.
#[derive(Default)]
struct Measure {
    /// Next-task latencies, ms: from a host's Finished to its next RunTask.
    latencies: Vec<f64>,
    /// First-task latencies, ms: from the job's submit to a host's first RunTask.
    first: Vec<f64>,
    /// When each host sent its last Finished (by host index); None before its first task.
    last_finished: Vec<Option<Instant>>,
    /// When the current job was submitted.
    submitted: Option<Instant>,
    finished: usize,
    last_finish_at: Option<Instant>,
    /// How many agents have been answered Registered on their (last) session.
    registered: usize,
    /// Latencies from the previous Finished sent by any host to this RunTask's arrival.
    sequential: Vec<f64>,
}

/// A channel to the server: plain, or TLS pinning `pin` and presenting `cert` (PEM with key).
async fn channel(url: &str, pin: Option<&str>, cert: Option<&str>) -> tonic::transport::Channel {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("url")
        .tcp_nodelay(true);
    match pin {
        Some(fp) => {
            let tls =
                bigmgr_core::tls::pinned_client_config_with_cert(fp, &[b"h2"], cert).expect("pin");
            endpoint
                .connect_with_connector(bigmgr_core::tls::connector(tls))
                .await
        }
        None => endpoint.connect().await,
    }
    .expect("connect")
}

/// Opens one simulated agent's stream and serves it until the process ends. Over TLS it
/// joins as a real agent does: a session without a certificate that gets one (and its
/// credential) for a CSR, then the session presenting it.
async fn sim_agent(
    url: String,
    token: String,
    pin: Option<String>,
    i: usize,
    measure: Arc<Mutex<Measure>>,
    connecting: tokio::sync::OwnedSemaphorePermit,
) {
    let name = format!("sim{i}");
    let register = |auth, csr_pem| pb::Register {
        name: name.clone(),
        address: "127.0.0.1".into(),
        facts: Some(pb::HostFacts {
            os: "sim".into(),
            cores: 1,
            ..Default::default()
        }),
        running: vec![],
        finished: vec![],
        auth: Some(auth),
        agent_version: "sim".into(),
        csr_pem,
    };
    let (auth, cert) = match &pin {
        Some(fp) => {
            let (key, csr) = bigmgr_core::tls::agent_csr(&name).expect("csr");
            let mut client = pb::agent_service_client::AgentServiceClient::new(
                channel(&url, Some(fp), None).await,
            );
            let join = pb::AgentMessage {
                body: Some(pb::agent_message::Body::Register(register(
                    pb::register::Auth::JoinToken(token),
                    csr,
                ))),
            };
            let mut answer = client
                .session(tokio_stream::iter(vec![join]))
                .await
                .expect("join")
                .into_inner();
            let Some(pb::ServerMessage {
                body: Some(pb::server_message::Body::Registered(r)),
            }) = answer.message().await.expect("joined")
            else {
                panic!("the join was not answered with Registered");
            };
            (
                pb::register::Auth::Credential(r.credential),
                Some(format!("{}{key}", r.certificate_pem)),
            )
        }
        None => (pb::register::Auth::JoinToken(token), None),
    };
    let channel = channel(&url, pin.as_deref(), cert.as_deref()).await;
    let mut client = pb::agent_service_client::AgentServiceClient::new(channel);
    let (tx, rx) = mpsc::channel::<pb::AgentMessage>(64);
    tx.send(pb::AgentMessage {
        body: Some(pb::agent_message::Body::Register(register(
            auth,
            String::new(),
        ))),
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
        let task = match msg.body {
            Some(pb::server_message::Body::Run(task)) => task,
            Some(pb::server_message::Body::Registered(r)) => {
                measure.lock().expect("measure").registered += 1;
                tokio::spawn(heartbeats(tx.clone(), r.heartbeat_interval_ms));
                continue;
            }
            _ => continue,
        };
        let now = Instant::now();
        {
            let mut m = measure.lock().expect("measure");
            if let Some(from) = m.last_finished[i] {
                m.latencies
                    .push(now.duration_since(from).as_secs_f64() * 1000.0);
            } else if let Some(from) = m.submitted {
                m.first
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

/// How many hosts of cluster `bench` the server shows ONLINE (the list is paged, at most 1000 a
/// page: every page is counted).
async fn hosts_online(api: &bigmgr_test_support::Api) -> usize {
    let mut n = 0;
    let mut after = String::new();
    loop {
        let page = api
            .get(&format!("/clusters/bench/hosts?limit=1000{after}"))
            .await;
        let page = page.expect(200);
        n += page["items"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|h| h["state"] == "ONLINE").count());
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return n,
        }
    }
}

/// The state of job `id` of cluster `bench`, from the cluster's job list: a job's own page
/// holds all its tasks, and reading 10 000 of them every few milliseconds would load the
/// server more than the job does.
async fn job_state(api: &bigmgr_test_support::Api, id: i64) -> String {
    let jobs = api.get("/clusters/bench/jobs").await;
    let jobs = jobs.expect(200);
    let list = jobs.as_array().or_else(|| jobs["items"].as_array());
    list.into_iter()
        .flatten()
        .find(|j| j["id"] == id)
        .and_then(|j| j["state"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Sends a Heartbeat every `interval_ms` (as a real agent does, without figures) until the
/// session's sender is gone.
async fn heartbeats(tx: mpsc::Sender<pb::AgentMessage>, interval_ms: u32) {
    let mut every = tokio::time::interval(Duration::from_millis(u64::from(interval_ms.max(1000))));
    every.tick().await;
    loop {
        every.tick().await;
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let beat = pb::AgentMessage {
            body: Some(pb::agent_message::Body::Heartbeat(pb::Heartbeat {
                at_ms,
                ..Default::default()
            })),
        };
        if tx.send(beat).await.is_err() {
            return;
        }
    }
}

fn main() {
    let hold = arg("--hold", 0);
    if hold > 0 {
        return hold_agents(hold);
    }
    let scale = arg("--scale", 0);
    if scale > 0 {
        return run_noop(|_| held_by_processes(scale, arg("--per-process", 6000)));
    }
    let agents = arg("--agents", 1000);
    run_noop(|bench| async move {
        let mut medians = Vec::new();
        for tls in [false, true] {
            println!(
                "== {}",
                if tls {
                    "TLS (agents pin the server's CA)"
                } else {
                    "plain h2c (--insecure-http)"
                }
            );
            medians.push(one_server(&bench, agents, tls).await);
        }
        let (plain, tls) = (medians[0], medians[1]);
        println!(
            "TLS / plain (medians of the runs): throughput {:.2}x, dispatch p50 {:.2}x, p99 {:.2}x, one-at-a-time p50 {:.2}x",
            tls.0 / plain.0,
            tls.1 / plain.1,
            tls.2 / plain.2,
            tls.3 / plain.3,
        );
    });
}

/// One server (plain or TLS) under the load; the medians over the runs of tasks/s, dispatch
/// p50 and p99 (ms), and the one-at-a-time p50 (ms).
async fn one_server(
    bench: &bigmgr_test_support::bench::NoopBench,
    agents: usize,
    tls: bool,
) -> (f64, f64, f64, f64) {
    let mut per_run: Vec<(f64, f64, f64)> = Vec::new();
    {
        // Warnings only: the server's own logging would weigh on what is measured.
        let mut cmd = ServerProc::serve()
            .stacks(&bench.stacks())
            .env("BIGMGR_LOG", "warn");
        if tls {
            cmd = cmd.tls();
        }
        let server = cmd.start();
        let (url, pid, api) = (server.url.clone(), server.proc.pid(), server.api());
        api.create_cluster("bench").await;
        let answer = api.post("/clusters/bench/join-tokens", json!({})).await;
        let answer = answer.expect(201).clone();
        let join = answer["token"].as_str().expect("token").to_owned();
        let pin = answer["ca_fingerprint"].as_str().map(str::to_owned);

        let measure = Arc::new(Mutex::new(Measure {
            last_finished: vec![None; agents],
            ..Measure::default()
        }));
        let t = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        for i in 0..agents {
            let permit = Arc::clone(&sem).acquire_owned().await.expect("permit");
            let (url, join, pin, measure) =
                (url.clone(), join.clone(), pin.clone(), Arc::clone(&measure));
            // At most 64 agents connect at once; each lets go of its permit once registered.
            tokio::spawn(sim_agent(url, join, pin, i, measure, permit));
        }
        loop {
            let n = hosts_online(&api).await;
            if n == agents {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(300),
                "only {n} of {agents} agents joined"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let joined = t.elapsed();
        let names: Vec<String> = (0..agents).map(|i| format!("sim{i}")).collect();
        let placement: serde_json::Map<String, Value> = (0..bench.components)
            .map(|c| (format!("c{c}"), json!(names)))
            .collect();
        api.post(
            "/clusters/bench/services",
            json!({"name": "noop", "stack": "bench", "service": "noop", "placement": placement}),
        )
        .await
        .expect(201);
        let idle_rss = status_kib(pid, "VmRSS:");
        println!(
            "grpc bench: {agents} simulated agents joined over gRPC in {:.2} s; server idle RSS {} MiB",
            joined.as_secs_f64(),
            idle_rss / 1024
        );

        for run in 1..=bench.runs {
            {
                let mut m = measure.lock().expect("measure");
                m.latencies.clear();
                m.first.clear();
                m.last_finished.iter_mut().for_each(|f| *f = None);
                m.finished = 0;
                m.submitted = Some(Instant::now());
            }
            let cpu0 = cpu_secs(pid);
            let t = Instant::now();
            let job = api
                .post(
                    "/clusters/bench/jobs",
                    json!({"command": "start", "target": "cluster"}),
                )
                .await;
            let id = job.expect(202)["id"].as_i64().expect("job id");
            let state = loop {
                let s = job_state(&api, id).await;
                if ["SUCCEEDED", "FAILED", "CANCELED"].contains(&s.as_str()) {
                    break s;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(600),
                    "job {id} did not end"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let total = t.elapsed();
            let cpu = cpu_secs(pid) - cpu0;
            assert_eq!(state, "SUCCEEDED", "the no-op job ended {state}");
            let (mut lat, mut first, n, last) = {
                let m = measure.lock().expect("measure");
                (
                    m.latencies.clone(),
                    m.first.clone(),
                    m.finished,
                    m.last_finish_at,
                )
            };
            lat.sort_by(f64::total_cmp);
            first.sort_by(f64::total_cmp);
            let at_agents = last.map(|l| l.duration_since(t)).unwrap_or(total);
            per_run.push((
                n as f64 / total.as_secs_f64(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
            ));
            println!(
                "run {run}: {n} tasks in {:.3} s (all results sent by {:.3} s) = {:.0} tasks/s; \
                 dispatch latency p50 {:.2} ms p99 {:.2} ms (first task after the submit: p50 {:.2} ms \
                 p99 {:.2} ms); server CPU {:.2} s ({:.0}% of one core)",
                total.as_secs_f64(),
                at_agents.as_secs_f64(),
                n as f64 / total.as_secs_f64(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                percentile(&first, 0.5),
                percentile(&first, 0.99),
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
        let id = job.expect(202)["id"].as_i64().expect("job id");
        loop {
            let state = job_state(&api, id).await;
            if state == "SUCCEEDED" {
                break;
            }
            assert!(state != "FAILED", "the sequential job failed");
            assert!(
                t.elapsed() < Duration::from_secs(600),
                "job {id} did not end"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (mut lat, n) = {
            let m = measure.lock().expect("measure");
            // The next task goes to another host: measure from the previous Finished sent by
            // any host.
            (m.sequential.clone(), m.finished)
        };
        lat.sort_by(f64::total_cmp);
        let one_p50 = percentile(&lat, 0.5);
        println!(
            "one at a time: {n} tasks in {:.2} s; dispatch latency (previous result sent -> next task received) p50 {:.2} ms p99 {:.2} ms",
            t.elapsed().as_secs_f64(),
            one_p50,
            percentile(&lat, 0.99),
        );
        println!("server peak RSS {} MiB", status_kib(pid, "VmHWM:") / 1024);

        // One real agent, idle: the release build, and the one hosts get when it is built
        // (scripts/build-agent.sh: profile `agent`, built for size and linked statically,
        // into target/<host triple>/agent/; a dynamically linked `--profile agent` build in
        // target/agent/ too, if there is one).
        let target = bigmgr_test_support::target_dir();
        // "release", or "debug" in the test command's smoke run.
        let profile = target
            .file_name()
            .map_or_else(String::new, |p| p.to_string_lossy().into_owned());
        let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let builds = [
            (target.join("bigmgr-agent"), format!("{profile} build")),
            (
                target.with_file_name("agent").join("bigmgr-agent"),
                "profile agent, built for size, dynamically linked".to_owned(),
            ),
            (
                target
                    .with_file_name(host)
                    .join("agent")
                    .join("bigmgr-agent"),
                "profile agent, built for size, statically linked (scripts/build-agent.sh)"
                    .to_owned(),
            ),
        ];
        let mut measured = 0;
        for (i, (binary, build)) in builds.iter().enumerate() {
            if !binary.exists() {
                continue;
            }
            let name = format!("real{}", i + 1);
            let mut cmd = AgentProc::cmd(&url, &name, &format!("127.0.0.{}", i + 2))
                .join_token(&join)
                .binary(binary);
            if let Some(fp) = &pin {
                cmd = cmd.arg("--ca-fingerprint").arg(fp);
            }
            let root = format!("{name}{}", if tls { "-tls" } else { "" });
            let agent = cmd
                .root(&bench.dir.path().join(root))
                .env("BIGMGR_LOG", "warn")
                .start();
            let t = Instant::now();
            let path = format!("/clusters/bench/hosts/{name}");
            while api.get(&path).await.status != 200 {
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "bigmgr-agent ({build}) did not register within 60 s:\n{}",
                    agent.proc.stderr.text()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            let kib = |field| agent.proc.status_kib(field);
            println!(
                "one real bigmgr-agent, registered and idle: RSS {} KiB (peak {} KiB; anonymous {} KiB, file-backed {} KiB): {build}",
                kib("VmRSS:"),
                kib("VmHWM:"),
                kib("RssAnon:"),
                kib("RssFile:"),
            );
            measured += 1;
        }
        if measured == 0 {
            println!(
                "(bigmgr-agent not built next to bigmgr: `cargo build -p bigmgr-agent` to measure its RSS)"
            );
        }
        drop(server);
        let median = |f: fn(&(f64, f64, f64)) -> f64| {
            let mut v: Vec<f64> = per_run.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        (median(|r| r.0), median(|r| r.1), median(|r| r.2), one_p50)
    }
}

/// `--hold N --offset K --url U --token T [--pin FP]`: a child process of the scale bench that
/// opens simulated agents `sim{K}` … `sim{K+N-1}`, prints `held N` once every one is
/// registered, and keeps their sessions (heartbeating) until it is killed (its parent kills it
/// by pid when done, and the kernel when the parent dies).
fn hold_agents(count: usize) {
    // Not outliving the bench, even if it is killed.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).expect("pdeathsig");
    let offset = arg("--offset", 0);
    let url = arg_str("--url").expect("--url");
    let token = arg_str("--token").expect("--token");
    let pin = arg_str("--pin");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async move {
            let measure = Arc::new(Mutex::new(Measure {
                last_finished: vec![None; offset + count],
                ..Measure::default()
            }));
            let sem = Arc::new(tokio::sync::Semaphore::new(64));
            for i in offset..offset + count {
                let permit = Arc::clone(&sem).acquire_owned().await.expect("permit");
                let (url, token, pin, measure) = (
                    url.clone(),
                    token.clone(),
                    pin.clone(),
                    Arc::clone(&measure),
                );
                tokio::spawn(sim_agent(url, token, pin, i, measure, permit));
            }
            while measure.lock().expect("measure").registered < count {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            println!("held {count}");
            std::future::pending::<()>().await;
        });
}

/// `--scale N [--per-process P]`: one real server (TLS, as users run it) holding N simulated
/// agents spread over child processes of at most P each (a process can hold only as many
/// streams as it may open files); prints the join rate, the server's resident memory per
/// connected agent and its CPU while they heartbeat.
async fn held_by_processes(agents: usize, per_process: usize) {
    let server = ServerProc::serve()
        .tls()
        .env("BIGMGR_LOG", "warn")
        .arg("--heartbeat-interval")
        .arg("5s")
        .start();
    let (pid, api) = (server.proc.pid(), server.api());
    api.create_cluster("bench").await;
    let answer = api.post("/clusters/bench/join-tokens", json!({})).await;
    let answer = answer.expect(201).clone();
    let token = answer["token"].as_str().expect("token").to_owned();
    let pin = answer["ca_fingerprint"]
        .as_str()
        .expect("a TLS server's pin");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = status_kib(pid, "VmRSS:");
    let exe = std::env::current_exe().expect("the bench's own path");
    let t = Instant::now();
    let mut holders = Vec::new();
    let mut offset = 0;
    while offset < agents {
        let count = per_process.min(agents - offset);
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "--hold",
            &count.to_string(),
            "--offset",
            &offset.to_string(),
        ])
        .args(["--url", &server.url, "--token", &token, "--pin", pin]);
        let holder = bigmgr_test_support::Proc::spawn(format!("agent holder {offset}"), cmd, &[]);
        holders.push((holder, count));
        offset += count;
    }
    for (holder, count) in &holders {
        let held = format!("held {count}");
        assert!(
            holder
                .stdout
                .wait_for(Duration::from_secs(900), |l| l == held)
                .is_some(),
            "{} did not hold its agents: {}",
            holder.what,
            holder.stderr.text()
        );
    }
    let joined = t.elapsed();
    // Two heartbeat intervals: every session has sent heartbeats and settled.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_held = status_kib(pid, "VmRSS:");
    let cpu0 = cpu_secs(pid);
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let cpu = cpu_secs(pid) - cpu0;
    // The figures hold only if the server itself shows every agent ONLINE, not only the holders.
    let online = hosts_online(&api).await;
    assert_eq!(
        online, agents,
        "the server shows {online} of {agents} agents ONLINE"
    );
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    println!(
        "scale: {agents} simulated agents (TLS, {} process(es)) joined in {:.1} s = {:.0} joins/s; \
         server RSS {} MiB idle, {} MiB holding them = {:.1} KiB per agent; heartbeats every 5 s: \
         server CPU {:.1}% of one core; {fds} open files",
        holders.len(),
        joined.as_secs_f64(),
        agents as f64 / joined.as_secs_f64(),
        rss_idle / 1024,
        rss_held / 1024,
        rss_held.saturating_sub(rss_idle) as f64 / agents as f64,
        cpu / window.as_secs_f64() * 100.0,
    );
    drop(holders);
    drop(server);
}
