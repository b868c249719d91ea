//! The engine's own overhead: plans and runs a no-op job of 10 000 tasks across 1 000
//! in-process hosts (agents with the no-op executor) and prints the time, tasks/s and peak RSS;
//! first on a SQLite file store, then in the same run on PostgreSQL (a schema of its own on
//! the machine's PostgreSQL, `BIGMGR_TEST_POSTGRES`), and the ratio of their medians.
//!
//! `cargo bench -p bigmgr-core --bench engine` (options: `-- --hosts N --components N --runs N
//! --sqlite-only`).

use bigmgr_core::Manager;
use bigmgr_core::agent::LocalTransport;
use bigmgr_core::agent::{AgentConfig, NoopExecutor};
use bigmgr_core::manager::AddService;
use bigmgr_core::model::*;
use bigmgr_core::stack::DirStackProvider;
use bigmgr_core::store::SqlStore;
use bigmgr_test_support::bench::{NoopBench, arg, percentile, run_noop};
use bigmgr_test_support::{PgSchema, status_kib};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let hosts = arg("--hosts", 1000);
    let sqlite_only = std::env::args().any(|a| a == "--sqlite-only");
    run_noop(|bench| async move {
        let file = SqlStore::open_path(&bench.dir.path().join("bench.db"))
            .await
            .expect("store");
        let on_sqlite = run_on(&bench, hosts, "SQLite file", file).await;
        if sqlite_only {
            return;
        }
        let schema = PgSchema::create("bench");
        let pg = SqlStore::open(&schema.url())
            .await
            .expect("PostgreSQL store");
        let on_pg = run_on(&bench, hosts, "PostgreSQL", pg.clone()).await;
        pg.close().await;
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "median job time: SQLite {:.3} s, PostgreSQL {:.3} s: PostgreSQL/SQLite {:.2}x",
            median(&on_sqlite),
            median(&on_pg),
            median(&on_pg) / median(&on_sqlite)
        );
    });
}

/// Runs the no-op job `bench.runs` times on `store`; the job times in seconds.
async fn run_on(bench: &NoopBench, hosts: usize, label: &str, store: SqlStore) -> Vec<f64> {
    let mut times = Vec::new();
    {
        let transport = LocalTransport::new();
        let t0 = Instant::now();
        for h in 0..hosts {
            let name = format!("h{h}");
            let cfg = AgentConfig::new(
                &name,
                "127.0.0.1",
                bench
                    .dir
                    .path()
                    .join(label.replace(' ', "-"))
                    .join("agents")
                    .join(&name),
            );
            transport
                .spawn_agent(cfg, Arc::new(NoopExecutor))
                .await
                .expect("agent");
        }
        let agents_ms = t0.elapsed().as_millis();
        let mgr = Manager::builder()
            .store(store)
            .transport(transport.clone())
            .stacks(DirStackProvider::new([bench.stacks()]))
            .build()
            .await
            .expect("manager");
        mgr.create_cluster("bench").await.expect("cluster");
        let names: Vec<String> = (0..hosts).map(|h| format!("h{h}")).collect();
        for n in &names {
            mgr.add_host("bench", n, "127.0.0.1").await.expect("host");
        }
        let placement: BTreeMap<String, bigmgr_core::placement::Placement> = (0..bench.components)
            .map(|c| (format!("c{c}"), names.clone().into()))
            .collect();
        mgr.add_service(
            "bench",
            AddService {
                name: "noop".into(),
                stack: "bench".into(),
                version: None,
                service: "noop".into(),
                placement,
                configs: Default::default(),
                host_overrides: Default::default(),
            },
        )
        .await
        .expect("service");
        println!(
            "engine bench: {hosts} in-process hosts (opened in {agents_ms} ms), {} components each, no-op executor, {label} store",
            bench.components
        );

        for run in 1..=bench.runs {
            let t = Instant::now();
            let job = mgr
                .submit(JobRequest {
                    cluster: "bench".into(),
                    target: Target::Cluster,
                    command: "start".into(),
                    options: JobOptions::default(),
                })
                .await
                .expect("submit");
            let planned = t.elapsed();
            let done = mgr.wait(job.id).await.expect("wait");
            let total = t.elapsed();
            assert_eq!(done.state, JobState::Succeeded, "the no-op job failed");
            let d = mgr.job(job.id).await.expect("detail");
            let n = d.tasks.len();
            let mut lat: Vec<i64> = d
                .tasks
                .iter()
                .filter_map(|t| Some(t.finished_at? - t.started_at?))
                .collect();
            lat.sort_unstable();
            let latency = if lat.is_empty() {
                String::new()
            } else {
                format!(
                    "; start-to-result p50 {} ms p99 {} ms",
                    percentile(&lat, 0.5),
                    percentile(&lat, 0.99)
                )
            };
            times.push(total.as_secs_f64());
            println!(
                "{label} run {run}: {n} tasks in {:.3} s (plan+persist {:.3} s) = {:.0} tasks/s{latency}",
                total.as_secs_f64(),
                planned.as_secs_f64(),
                n as f64 / total.as_secs_f64(),
            );
        }
        println!(
            "peak RSS {} MiB",
            status_kib(std::process::id(), "VmHWM:") / 1024
        );
        mgr.shutdown().await;
        transport.shutdown().await;
    }
    times
}
