//! The engine's own overhead: plans and runs a no-op job of 10 000 tasks across 1 000
//! in-process hosts (agents with the no-op executor, a SQLite file store) and prints the time,
//! tasks/s and peak RSS.
//!
//! `cargo bench -p bigmgr-core --bench engine` (options: `-- --hosts N --components N --runs N`).

use bigmgr_core::Manager;
use bigmgr_core::agent::LocalTransport;
use bigmgr_core::agent::{AgentConfig, NoopExecutor};
use bigmgr_core::manager::AddService;
use bigmgr_core::model::*;
use bigmgr_core::stack::DirStackProvider;
use bigmgr_core::store::SqlStore;
use bigmgr_test_support::bench::{arg, percentile, run_noop};
use bigmgr_test_support::status_kib;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let hosts = arg("--hosts", 1000);
    run_noop(|bench| async move {
        let transport = LocalTransport::new();
        let t0 = Instant::now();
        for h in 0..hosts {
            let name = format!("h{h}");
            let cfg = AgentConfig::new(
                &name,
                "127.0.0.1",
                bench.dir.path().join("agents").join(&name),
            );
            transport
                .spawn_agent(cfg, Arc::new(NoopExecutor))
                .await
                .expect("agent");
        }
        let agents_ms = t0.elapsed().as_millis();
        let store = SqlStore::open_path(&bench.dir.path().join("bench.db"))
            .await
            .expect("store");
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
        let placement: BTreeMap<String, Vec<String>> = (0..bench.components)
            .map(|c| (format!("c{c}"), names.clone()))
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
            "engine bench: {hosts} in-process hosts (opened in {agents_ms} ms), {} components each, no-op executor, SQLite file store",
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
            println!(
                "run {run}: {n} tasks in {:.3} s (plan+persist {:.3} s) = {:.0} tasks/s{latency}",
                total.as_secs_f64(),
                planned.as_secs_f64(),
                n as f64 / total.as_secs_f64(),
            );
        }
        println!(
            "peak RSS {} MiB",
            status_kib(std::process::id(), "VmHWM:") / 1024
        );
        transport.shutdown().await;
    });
}
