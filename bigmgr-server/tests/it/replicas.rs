//! Two `bigmgr serve` replicas on one PostgreSQL schema, three real agents that know both:
//! the leader is killed (`kill -9`) or paused (`SIGSTOP`) in the middle of a two-stage job,
//! the other replica takes the engine's lease, adopts the running tasks and finishes the job,
//! and every task ran exactly once. REST on the surviving replica keeps answering.

use bigmgr_test_support::{
    AgentProc, Api, EXIT_TIMEOUT, PgSchema, ServerProc, http_client_trusting, read_events,
    wait_until, write_executable,
};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const HOSTS: [(&str, &str); 3] = [
    ("h1", "127.0.0.2"),
    ("h2", "127.0.0.3"),
    ("h3", "127.0.0.4"),
];

/// The engine's lease in these tests: a dead leader is replaced within it.
const LEASE: &str = "3s";

/// Services `a` (start sleeps 4 s) and `b` (start after a's, sleeps 1 s); every run of a
/// command appends a line to `runs.<command>` in the unit's directory.
fn write_stack(root: &Path) {
    for (name, sleep, order) in [
        ("a", 4, ""),
        (
            "b",
            1,
            "\n[order]\n\"B_SERVER-START\" = [\"A_SERVER-START\"]\n",
        ),
        ("quick", 0, ""),
    ] {
        let dir = root.join("test").join("1.0.0").join(name);
        std::fs::create_dir_all(&dir).expect("service dir");
        let toml = format!(
            "[service]\nname = \"{name}\"\nversion = \"1.0\"\ndescription = \"test service\"\n\n\
             [[component]]\nname = \"{name}_server\"\ncategory = \"server\"\ncardinality = \"1+\"\n\
             script = \"run.sh\"\n{order}"
        );
        std::fs::write(dir.join("service.toml"), toml).expect("manifest");
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = status ] && exit 0\n\
             echo \"$$\" >> \"$BIGMGR_UNIT_DIR/runs.$1\"\n\
             echo \"{name} $1 on $BIGMGR_HOST\"\nsleep {sleep}\necho \"{name} $1 done\"\n"
        );
        write_executable(&dir.join("run.sh"), &script);
    }
}

/// The replicas, the agents and their files.
struct Rig {
    replicas: Vec<Option<ServerProc>>,
    /// A client of the replicas (trusting their CA when they speak TLS).
    http: reqwest::Client,
    agents: Vec<AgentProc>,
    _dir: tempfile::TempDir,
    // Dropped last: the servers are stopped before their schema goes.
    _schema: PgSchema,
}

impl Rig {
    /// Two replicas on a new schema, three agents, services a and b on every host. With `tls`
    /// the replicas speak TLS (the default) with one CA: the second starts with a copy of the
    /// first one's `tls/ca.pem` and `ca.key` in its data directory, as an operator sets up
    /// replicas, and makes its own server certificate from it.
    async fn start(label: &str, tls: bool) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        write_stack(&dir.path().join("stacks"));
        let schema = PgSchema::create(label);
        let serve = |data: Option<&Path>| {
            let mut cmd = ServerProc::serve()
                .store(schema.url())
                .stacks(&dir.path().join("stacks"))
                .fast_heartbeat()
                .arg("--lease-time")
                .arg(LEASE);
            if let Some(data) = data {
                cmd = cmd.data(data);
            }
            if tls { cmd.tls().start() } else { cmd.start() }
        };
        let first = serve(None);
        let second_data = dir.path().join("second");
        if tls {
            let (from, to) = (first.data_dir().join("tls"), second_data.join("tls"));
            std::fs::create_dir_all(&to).expect("tls dir");
            for f in ["ca.pem", "ca.key"] {
                std::fs::copy(from.join(f), to.join(f)).expect("copy the CA");
            }
        }
        let second = serve(Some(&second_data));
        let http = match first.ca() {
            Some(ca) => http_client_trusting(&ca),
            None => reqwest::Client::new(),
        };
        let mut rig = Rig {
            replicas: vec![Some(first), Some(second)],
            http,
            agents: Vec::new(),
            _dir: dir,
            _schema: schema,
        };
        let leader = rig.wait_leader(None, Duration::from_secs(20)).await;
        let api = rig.api(leader);
        api.create_cluster("c").await;
        let answer = api.join_token_answer("c").await;
        let token = answer["token"].as_str().expect("a token");
        let servers = rig.urls().join(",");
        for (name, address) in HOSTS {
            let mut agent = AgentProc::cmd(&servers, name, address).join_token(token);
            if let Some(fp) = answer["ca_fingerprint"].as_str() {
                agent = agent.arg("--ca-fingerprint").arg(fp);
            }
            rig.agents.push(agent.start());
        }
        // Cluster p, of one host: its jobs run beside c's (one job at a time per cluster).
        api.create_cluster("p").await;
        let answer_p = api.join_token_answer("p").await;
        let mut probe_agent = AgentProc::cmd(&servers, "h4", "127.0.0.5")
            .join_token(answer_p["token"].as_str().expect("a token"));
        if let Some(fp) = answer_p["ca_fingerprint"].as_str() {
            probe_agent = probe_agent.arg("--ca-fingerprint").arg(fp);
        }
        rig.agents.push(probe_agent.start());
        for (name, _) in HOSTS {
            api.wait_online("c", name).await;
        }
        api.wait_online("p", "h4").await;
        api.add_service(
            "p",
            json!({"name": "quick", "stack": "test", "service": "quick",
                   "placement": {"quick_server": ["h4"]}}),
        )
        .await;
        for svc in ["a", "b"] {
            api.add_service(
                "c",
                json!({"name": svc, "stack": "test", "service": svc,
                       "placement": {format!("{svc}_server"): ["h1", "h2", "h3"]}}),
            )
            .await;
        }
        rig
    }

    fn urls(&self) -> Vec<String> {
        self.replicas
            .iter()
            .map(|r| r.as_ref().expect("running").url.clone())
            .collect()
    }

    fn api(&self, i: usize) -> Api {
        self.replicas[i].as_ref().expect("running").api()
    }

    /// What replica `i`'s `/health` says of its engine, if it answers.
    async fn engine_of(&self, i: usize) -> Option<String> {
        let server = self.replicas[i].as_ref()?;
        let res = self
            .http
            .get(format!("{}/api/v1/health", server.url))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .ok()?;
        let body: Value = res.json().await.ok()?;
        body["engine"].as_str().map(str::to_string)
    }

    /// Waits until exactly one replica (other than `not`) leads; its index.
    async fn wait_leader(&self, not: Option<usize>, timeout: Duration) -> usize {
        wait_until("a replica to lead", timeout, || async {
            let mut leaders = Vec::new();
            for i in 0..self.replicas.len() {
                if Some(i) != not && self.engine_of(i).await.as_deref() == Some("leader") {
                    leaders.push(i);
                }
            }
            (leaders.len() == 1).then(|| leaders[0])
        })
        .await
    }

    /// Every `runs.start` line of service `svc` on every agent: one per run.
    fn runs(&self, svc: &str) -> Vec<(String, usize)> {
        let mut found = Vec::new();
        for agent in &self.agents {
            let mut files = Vec::new();
            find_runs(&agent.root, &mut files);
            for f in files {
                let path = f.display().to_string();
                if path.contains(&format!("/{svc}/")) || path.contains(&format!("{svc}_server")) {
                    let n = std::fs::read_to_string(&f)
                        .unwrap_or_default()
                        .lines()
                        .count();
                    found.push((path, n));
                }
            }
        }
        found.sort();
        found
    }
}

fn find_runs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            find_runs(&p, out);
        } else if p.file_name().is_some_and(|n| n == "runs.start") {
            out.push(p);
        }
    }
}

/// Reads job `id` from the replica at `url` every 100 ms until told to stop: (answers,
/// failures).
fn keep_reading(
    http: reqwest::Client,
    url: String,
    token: String,
    id: i64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let res = http
                .get(format!("{url}/api/v1/jobs/{id}"))
                .bearer_auth(&token)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if res.is_ok_and(|r| r.status() == 200) {
                ok.fetch_add(1, Ordering::SeqCst);
            } else {
                failed.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst))
    })
}

/// Waits until every `a` task of job `id` runs (its script started on every host).
async fn wait_a_running(rig: &Rig, api: &Api, id: i64) {
    wait_until("a's tasks to run", Duration::from_secs(30), || async {
        let job = api.get(&format!("/jobs/{id}")).await.body;
        let stages = job["stages"].as_array()?;
        // Stage 0 is a's start (b's waits for it).
        let a = stages.first()?;
        let running = a["tasks"]
            .as_array()?
            .iter()
            .all(|t| t["state"] == "RUNNING");
        (running && rig.runs("a").len() == 3).then_some(())
    })
    .await;
}

/// Every task of job `job` ran exactly once, on every host, per service.
fn assert_each_ran_once(rig: &Rig, job: &Value) {
    assert_eq!(job["state"], "SUCCEEDED", "{job}");
    for svc in ["a", "b"] {
        let runs = rig.runs(svc);
        assert_eq!(runs.len(), 3, "{svc} ran on three hosts: {runs:?}");
        assert!(runs.iter().all(|(p, _)| !p.contains("quick")), "{runs:?}");
        assert!(
            runs.iter().all(|(_, n)| *n == 1),
            "{svc} ran once on each: {runs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_mid_job_is_replaced_and_the_job_finishes_with_every_task_once() {
    // TLS, as replicas run by default: agents (mutual TLS) follow the leader to a replica
    // that shares its CA.
    let mut rig = Rig::start("failover", true).await;
    let leader = rig.wait_leader(None, Duration::from_secs(20)).await;
    let other = 1 - leader;
    // Submitted through the follower: it reaches the leader's engine at once.
    let survivor = rig.api(other);
    let id = survivor.submit("c", "start", json!("cluster")).await;
    wait_a_running(&rig, &survivor, id).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (url, token) = {
        let s = rig.replicas[other].as_ref().expect("the survivor");
        (s.url.clone(), s.token())
    };
    let reader = keep_reading(rig.http.clone(), url, token, id, Arc::clone(&stop));
    let killed_at = Instant::now();
    let mut dead = rig.replicas[leader].take().expect("the leader");
    dead.proc.signal(Signal::SIGKILL);
    dead.proc.wait_exit(EXIT_TIMEOUT);
    drop(dead);

    // A new job through the survivor: its first task is the new leader's first dispatch.
    let probe = survivor
        .submit("p", "start", json!({"service": "quick"}))
        .await;
    let new_leader = rig.wait_leader(Some(leader), Duration::from_secs(20)).await;
    assert_eq!(new_leader, other);
    wait_until(
        "the new leader's first dispatch",
        Duration::from_secs(30),
        || async {
            let job = survivor.get(&format!("/jobs/{probe}")).await.body;
            let tasks: Vec<&Value> = job["stages"]
                .as_array()?
                .iter()
                .flat_map(|s| s["tasks"].as_array().into_iter().flatten())
                .collect();
            tasks
                .iter()
                .any(|t| t["state"] != "PENDING" && t["state"] != "QUEUED")
                .then_some(())
        },
    )
    .await;
    let failover = killed_at.elapsed();

    let done = survivor.wait_job(id, Duration::from_secs(60)).await;
    stop.store(true, Ordering::SeqCst);
    let (answered, failed) = reader.await.expect("reader");
    assert_each_ran_once(&rig, &done);
    survivor
        .expect_success(probe, Duration::from_secs(30))
        .await;
    eprintln!(
        "failover: leader killed -> first task dispatched by the new leader: {} ms \
         (lease {LEASE}); REST on the survivor during it: {answered} answers, {failed} failures",
        failover.as_millis()
    );
    assert_eq!(failed, 0, "the surviving replica answered every read");
    assert!(answered > 10, "{answered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_fenced_when_it_wakes_and_nothing_runs_twice() {
    let rig = Rig::start("split", false).await;
    let leader = rig.wait_leader(None, Duration::from_secs(20)).await;
    let other = 1 - leader;
    let survivor = rig.api(other);
    let id = survivor.submit("c", "start", json!("cluster")).await;
    // The job's events, followed on the replica that is a follower now.
    let events = {
        let s = rig.replicas[other].as_ref().expect("the follower");
        let res = rig
            .http
            .get(format!("{}/api/v1/jobs/{id}/events", s.url))
            .bearer_auth(s.token())
            .send()
            .await
            .expect("the events stream");
        assert_eq!(res.status(), 200);
        tokio::spawn(read_events(res))
    };
    wait_a_running(&rig, &survivor, id).await;

    // Paused past its lease: the other replica takes over.
    let paused = rig.replicas[leader].as_ref().expect("the leader");
    paused.proc.signal(Signal::SIGSTOP);
    let new_leader = rig.wait_leader(Some(leader), Duration::from_secs(20)).await;
    assert_eq!(new_leader, other);
    // Woken: its engine's writes are refused by the fence, and it follows.
    let paused = rig.replicas[leader].as_ref().expect("the old leader");
    paused.proc.signal(Signal::SIGCONT);
    wait_until(
        "the old leader to step down",
        Duration::from_secs(20),
        || async {
            let engine = rig.engine_of(leader).await;
            (engine.as_deref() == Some("follower")).then_some(())
        },
    )
    .await;
    assert_eq!(rig.wait_leader(None, Duration::from_secs(5)).await, other);

    let done = survivor.wait_job(id, Duration::from_secs(60)).await;
    assert_each_ran_once(&rig, &done);
    let events = tokio::time::timeout(Duration::from_secs(30), events)
        .await
        .expect("the stream ends once the job is final")
        .expect("read");
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.last(), Some(&"end"), "{names:?}");
    assert_eq!(events.last().expect("end").1["state"], "SUCCEEDED");
    assert!(
        names.contains(&"task") && names.contains(&"log"),
        "{names:?}"
    );
    // Both replicas answer for the job alike.
    let seen_by_old = rig.api(leader).get(&format!("/jobs/{id}")).await;
    assert_eq!(seen_by_old.expect(200)["state"], "SUCCEEDED");
    let old = &rig.replicas[leader].as_ref().expect("the old leader").proc;
    let log = format!("{}{}", old.stdout.text(), old.stderr.text());
    assert!(
        log.contains("stepping down") || log.contains("fenced"),
        "the old leader says it stepped down: {}",
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
}
