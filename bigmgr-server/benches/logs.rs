//! Live logs: how soon a line a task prints reaches a follower of its job's events, and what a
//! task that prints nothing costs its agent.
//!
//! `cargo bench -p bigmgr-server --bench logs` (options after `--`: `--lines N` (200),
//! `--idle-secs N` (5)); `bigmgr-agent` must be built in the same profile first (`cargo build
//! --release -p bigmgr-agent`). A quick run in the dev profile: `cargo bench --profile dev -p
//! bigmgr-server --bench logs -- --lines 20 --idle-secs 1`.
//!
//! It starts a real `bigmgr serve` over TLS and one real `bigmgr-agent`, then:
//!
//! - runs a task that prints N lines, one about every 20 ms, each the wall-clock time it was
//!   printed at (`date +%s%N`), follows the job's `GET /api/v1/jobs/{id}/events` from before
//!   the first line, and takes for each `log` event its arrival time minus the time in its line:
//!   the whole way of a line, from the script's file through the agent, its gRPC stream, the
//!   server's store, to the follower. The line's `at` (when the agent read it, ms) splits that
//!   way in two: print to the agent's read, and the agent's read to the follower;
//! - measures the agent's CPU time (utime + stime) and wakeups (voluntary context switches)
//!   over `--idle-secs` seconds with no task, then as long while a task sleeps.

use bigmgr_test_support::bench::{arg, cpu_secs, percentile, wakeups};
use bigmgr_test_support::{Api, ServerProc, wait_until, write_executable};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The cluster of the bench.
const CLUSTER: &str = "bench";

/// How long a job may take beyond what its script sleeps.
const SLACK: Duration = Duration::from_secs(60);

/// Writes stack `bench` 1.0.0 under `stacks`: service `talk`, whose `start` prints `lines`
/// timestamps (after a second, so the follower is there before the first), and `idle`, whose
/// `start` sleeps `idle_secs` + 2 seconds. Each has one server component of its name.
fn write_stack(stacks: &Path, lines: usize, idle_secs: usize) {
    let talk = format!(
        "sleep 1\ni=0\nwhile [ $i -lt {lines} ]; do date +%s%N; sleep 0.02; i=$((i + 1)); done"
    );
    let idle = format!("sleep {}", idle_secs + 2);
    for (name, body) in [("talk", talk), ("idle", idle)] {
        let dir = stacks.join("bench/1.0.0").join(name);
        std::fs::create_dir_all(&dir).expect("service dir");
        let toml = format!(
            "[service]\nname = \"{name}\"\nversion = \"1\"\ndescription = \"bench {name}\"\n\n\
             [[component]]\nname = \"{name}\"\ncategory = \"server\"\ncardinality = \"1+\"\n\
             script = \"run.sh\"\n"
        );
        std::fs::write(dir.join("service.toml"), toml).expect("manifest");
        let script = format!("#!/bin/sh\n[ \"$1\" = status ] && exit 0\n{body}\n");
        write_executable(&dir.join("run.sh"), &script);
    }
}

/// Now, ns since the epoch.
fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// What the follower measured of the lines, in ms, each list sorted.
struct Latencies {
    /// From print to arrival at the follower.
    whole: Vec<f64>,
    /// From print to the agent's read.
    to_agent: Vec<f64>,
    /// From the agent's read to arrival at the follower.
    from_agent: Vec<f64>,
}

/// Runs the `talk` task, following its job's events: the latencies of its lines.
async fn live_lines(api: &Api, lines: usize) -> Latencies {
    let id = api
        .submit(CLUSTER, "start", json!({"service": "talk"}))
        .await;
    let mut events = api.events(&format!("/jobs/{id}/events")).await;
    let opened = now_ns();
    let mut latencies = Latencies {
        whole: Vec::with_capacity(lines),
        to_agent: Vec::with_capacity(lines),
        from_agent: Vec::with_capacity(lines),
    };
    let mut before_opened = 0;
    let limit = Duration::from_millis(30 * lines as u64) + SLACK;
    let follow = async {
        while let Some((name, data)) = events.next().await {
            match name.as_str() {
                "log" => {
                    let arrived = now_ns();
                    let line = data["line"].as_str().unwrap_or_default();
                    let printed: i128 = line
                        .trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("a line that is not a timestamp: {data}"));
                    // `at` is whole ms: the read was within the ms after it, taken at its middle.
                    let at = i128::from(data["at"].as_i64().expect("the line's at"));
                    let read = at * 1_000_000 + 500_000;
                    if printed < opened {
                        before_opened += 1;
                    } else {
                        let ms = |from: i128, to: i128| (to - from) as f64 / 1e6;
                        latencies.whole.push(ms(printed, arrived));
                        latencies.to_agent.push(ms(printed, read));
                        latencies.from_agent.push(ms(read, arrived));
                    }
                }
                "end" => {
                    assert_eq!(data["state"], "SUCCEEDED", "the talking job ended {data}");
                    return;
                }
                "error" => panic!("the events stream failed: {data}"),
                _ => {}
            }
        }
        panic!("the events stream ended without `end`");
    };
    tokio::time::timeout(limit, follow)
        .await
        .unwrap_or_else(|_| panic!("job {id} did not end within {limit:?}"));
    assert_eq!(
        latencies.whole.len() + before_opened,
        lines,
        "every line arrives once"
    );
    if before_opened > 0 {
        println!("({before_opened} lines printed before the follower came are left out)");
    }
    for l in [
        &mut latencies.whole,
        &mut latencies.to_agent,
        &mut latencies.from_agent,
    ] {
        l.sort_by(f64::total_cmp);
    }
    latencies
}

/// The agent's CPU time (ms) and wakeups over `secs` seconds.
async fn cost(pid: u32, secs: usize) -> (f64, u64) {
    let (cpu, woke) = (cpu_secs(pid), wakeups(pid));
    tokio::time::sleep(Duration::from_secs(secs as u64)).await;
    ((cpu_secs(pid) - cpu) * 1000.0, wakeups(pid) - woke)
}

/// Whether every task of a job's detail is in `state`.
fn all_tasks(job: &Value, state: &str) -> bool {
    let tasks: Vec<&Value> = job["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["tasks"].as_array().into_iter().flatten())
        .collect();
    !tasks.is_empty() && tasks.iter().all(|t| t["state"] == state)
}

/// Runs the `idle` task: the agent's CPU time (ms) and wakeups over `secs` seconds of it.
async fn idle_task(api: &Api, pid: u32, secs: usize) -> (f64, u64) {
    let id = api
        .submit(CLUSTER, "start", json!({"service": "idle"}))
        .await;
    wait_until("the idle task to run", SLACK, || async {
        let job = api.get(&format!("/jobs/{id}")).await;
        all_tasks(&job.body, "RUNNING").then_some(())
    })
    .await;
    let measured = cost(pid, secs).await;
    api.expect_success(id, Duration::from_secs(secs as u64) + SLACK)
        .await;
    measured
}

fn main() {
    let lines = arg("--lines", 200);
    let idle_secs = arg("--idle-secs", 5);
    let dir = tempfile::tempdir().expect("tmp");
    let stacks = dir.path().join("stacks");
    write_stack(&stacks, lines, idle_secs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Warnings only: the server's own logging would weigh on what is measured.
        let server = ServerProc::serve()
            .stacks(&stacks)
            .tls()
            .env("BIGMGR_LOG", "warn")
            .start();
        let api = server.api();
        api.create_cluster(CLUSTER).await;
        let agent = api.join_agent(CLUSTER, "h1", "127.0.0.1").await;
        for name in ["talk", "idle"] {
            let body = json!({"name": name, "stack": "bench", "service": name,
                              "placement": {name: ["h1"]}});
            api.add_service(CLUSTER, body).await;
        }
        let pid = agent.proc.pid();

        let l = live_lines(&api, lines).await;
        let (no_task_cpu, no_task_wakeups) = cost(pid, idle_secs).await;
        let (idle_cpu, idle_wakeups) = idle_task(&api, pid, idle_secs).await;
        println!(
            "live logs: {} lines, task line -> SSE follower p50 {:.1} ms p99 {:.1} ms max {:.1} ms; \
             agent CPU while a task sleeps {idle_secs} s: {idle_cpu:.0} ms ({idle_wakeups} wakeups; \
             with no task: {no_task_cpu:.0} ms, {no_task_wakeups} wakeups)",
            l.whole.len(),
            percentile(&l.whole, 0.5),
            percentile(&l.whole, 0.99),
            l.whole.last().copied().unwrap_or_default(),
        );
        // The agent's read time is in whole ms: each part is ±0.5 ms.
        println!(
            "  of which task line -> agent read p50 {:.1} ms p99 {:.1} ms, agent read -> SSE \
             follower p50 {:.1} ms p99 {:.1} ms (±0.5 ms)",
            percentile(&l.to_agent, 0.5),
            percentile(&l.to_agent, 0.99),
            percentile(&l.from_agent, 0.5),
            percentile(&l.from_agent, 0.99),
        );
        drop(agent);
        drop(server);
    });
}
