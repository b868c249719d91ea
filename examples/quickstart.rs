//! The quickstart: embeds the bigmgr engine with three in-process agents (h1–h3 on
//! 127.0.0.2–4, each with its own root), creates cluster `demo`, adds the `hello` and `greeter`
//! services of the shipped `demo` stack, deploys them (install → configure → start → check) with
//! real scripts, shows each stage, then stops the services.
//!
//! `cargo run -p bigmgr-core --example quickstart [-- DATA_DIR]` (default `./quickstart-data`).

use bigmgr_core::Manager;
use bigmgr_core::agent::LocalTransport;
use bigmgr_core::agent::{AgentConfig, ProcessExecutor};
use bigmgr_core::manager::AddService;
use bigmgr_core::model::*;
use bigmgr_core::placement::Placement;
use bigmgr_core::stack::DirStackProvider;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "quickstart-data".into()),
    );
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    std::fs::create_dir_all(&data)?;
    let data = data.canonicalize()?;
    let stacks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../stacks");

    let transport = LocalTransport::new();
    let hosts = ["h1", "h2", "h3"];
    for (i, h) in hosts.iter().enumerate() {
        let cfg = AgentConfig::new(
            *h,
            format!("127.0.0.{}", i + 2),
            data.join("agents").join(h),
        );
        transport
            .spawn_agent(cfg, Arc::new(ProcessExecutor))
            .await?;
    }
    let mgr = Manager::builder()
        .sqlite(data.join("bigmgr.db"))
        .transport(transport.clone())
        .stacks(DirStackProvider::new([stacks]))
        .build()
        .await?;

    mgr.create_cluster("demo").await?;
    for (i, h) in hosts.iter().enumerate() {
        mgr.add_host("demo", h, &format!("127.0.0.{}", i + 2))
            .await?;
    }
    let all: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    for (name, placement) in [
        ("hello", vec![("hello_server", all.clone())]),
        (
            "greeter",
            vec![
                ("greeter_server", all.clone()),
                ("greeter_client", vec!["h1".to_string()]),
            ],
        ),
    ] {
        let placement: BTreeMap<String, Placement> = placement
            .into_iter()
            .map(|(c, h)| (c.to_string(), h.into()))
            .collect();
        mgr.add_service(
            "demo",
            AddService {
                name: name.into(),
                stack: "demo".into(),
                version: None,
                service: name.into(),
                placement,
                configs: Default::default(),
                host_overrides: Default::default(),
            },
        )
        .await?;
    }

    for command in ["deploy", "stop"] {
        let job = mgr
            .submit(JobRequest {
                cluster: "demo".into(),
                target: Target::Cluster,
                command: command.into(),
                options: JobOptions::default(),
            })
            .await?;
        let done = mgr.wait(job.id).await?;
        let detail = mgr.job(job.id).await?;
        println!("job {} ({command}): {}", job.id, done.state);
        for stage in detail.stage_summaries() {
            println!("  {stage}");
        }
        if done.state != JobState::Succeeded {
            for t in detail
                .tasks
                .iter()
                .filter(|t| t.state != TaskState::Succeeded)
            {
                for l in mgr.task_log(t.id, None).await? {
                    println!("    task {} {}: {}", t.id, l.stream.as_str(), l.line);
                }
            }
            return Err(format!("the {command} job ended {}", done.state).into());
        }
    }
    for u in mgr.units("demo").await? {
        println!(
            "unit {} {} on host {}: {}",
            u.id, u.component, u.host, u.state
        );
    }
    println!(
        "\nstore: {}\nagent roots (unit dirs, task contexts, ledgers): {}",
        data.join("bigmgr.db").display(),
        data.join("agents").display()
    );
    transport.shutdown().await;
    Ok(())
}
