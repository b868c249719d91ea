//! `bigmgr quickstart`: the whole system on one machine in one process — the server on an
//! embedded SQLite store, three agents (h1–h3 on 127.0.0.2–4) that join it over gRPC with a
//! join token, the demo stack deployed for real — then, on Ctrl-C or SIGTERM, the demo services
//! stopped, the agents and the server shut down.
//!
//! Running it again on the same data directory reuses the cluster, the hosts (the agents keep
//! their credentials in their roots) and the services, and deploys again (scripts are
//! idempotent).

use crate::config::{ServeConfig, TlsMode, shipped_stacks, tls_names};
use crate::server::{Server, admin_token_env};
use crate::signal::Signals;
use crate::{Error, Result};
use bigmgr_core::Manager;
use bigmgr_core::agent::{AgentConfig, ProcessExecutor};
use bigmgr_core::grpc::{AgentClientConfig, GrpcSettings, run_agent};
use bigmgr_core::manager::AddService;
use bigmgr_core::model::{
    HostState, JobId, JobOptions, JobRequest, JobState, Target, TaskState, now_ms,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// `bigmgr quickstart`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct QuickstartArgs {
    /// Directory for the store, the admin token and the agents' roots
    #[arg(long, value_name = "DIR", default_value = "./quickstart-data")]
    pub data: PathBuf,
    /// Address to serve the REST API and the agents' gRPC on
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
}

/// The demo cluster's name.
pub const CLUSTER: &str = "demo";
/// The stack the demo deploys.
pub const STACK: &str = "demo";
/// The demo's hosts and their loopback addresses.
pub const HOSTS: [(&str, &str); 3] = [
    ("h1", "127.0.0.2"),
    ("h2", "127.0.0.3"),
    ("h3", "127.0.0.4"),
];
/// How long the agents may take to come online.
pub const ONLINE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the deploy job may take.
pub const DEPLOY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the stop job at the end may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long each agent may take to stop.
pub const AGENT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The agents' heartbeat interval: short, so metrics show up soon.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the quickstart until it is stopped.
pub async fn run(args: QuickstartArgs) -> Result<()> {
    let mut signals = Signals::new()?;
    std::fs::create_dir_all(&args.data).map_err(|e| Error::io(&args.data, e))?;
    let data = args
        .data
        .canonicalize()
        .map_err(|e| Error::io(&args.data, e))?;
    let config = ServeConfig {
        listen: args.listen,
        data: data.clone(),
        store: None,
        replica: None,
        alerts: bigmgr_core::AlertSettings::default(),
        stacks: Vec::new(),
        shipped_stacks: shipped_stacks(),
        grpc: GrpcSettings {
            heartbeat_interval: HEARTBEAT_INTERVAL,
            ..GrpcSettings::default()
        },
        lost_grace: bigmgr_core::EngineConfig::default().lost_grace,
        tls: TlsMode::Own {
            names: tls_names(args.listen, &[]),
        },
        agent_dir: crate::config::agent_dir(),
    };
    let server = Server::start(&config, admin_token_env()).await?;
    server.announce();
    let (stop_agents, _) = watch::channel(false);
    let mut demo = Demo {
        mgr: server.manager().clone(),
        url: server.url(),
        ca_fingerprint: server.tls().map(|t| t.ca_fingerprint.clone()),
        data,
        agents: Vec::new(),
        stop_agents,
        deploy: None,
    };

    let ready = tokio::select! {
        r = demo.set_up() => r,
        signal = signals.recv() => Err(Error::Quickstart(format!(
            "{signal} received before the demo was ready"
        ))),
    };
    let mut result = match ready {
        Ok(()) => {
            demo.print_guide(&server).await;
            let signal = signals.recv().await;
            println!("{signal} received: stopping the demo services");
            Ok(())
        }
        Err(e) => Err(e),
    };
    if demo.deploy.is_some() {
        let stopped = demo.stop_services(&mut signals).await;
        result = result.and(stopped);
    }
    demo.stop_agents().await;
    let shut = server.shutdown().await;
    result.and(shut)
}

/// The demo's moving parts.
struct Demo {
    mgr: Manager,
    url: String,
    data: PathBuf,
    agents: Vec<(&'static str, JoinHandle<bigmgr_core::Result<()>>)>,
    /// The CA its agents pin.
    ca_fingerprint: Option<String>,
    stop_agents: watch::Sender<bool>,
    /// The deploy job, once submitted: from then on, services may run and must be stopped.
    deploy: Option<JobId>,
}

impl Demo {
    fn agent_root(&self, host: &str) -> PathBuf {
        self.data.join("agents").join(host)
    }

    /// Cluster, agents, services, deploy.
    async fn set_up(&mut self) -> Result<()> {
        match self.mgr.create_cluster(CLUSTER).await {
            Ok(_) => println!("created cluster {CLUSTER}"),
            Err(bigmgr_core::Error::AlreadyExists { .. }) => {
                println!("cluster {CLUSTER} exists; reusing it")
            }
            Err(e) => return Err(e.into()),
        }
        let token = self.mgr.create_join_token(CLUSTER).await?;
        let since = now_ms();
        for (name, address) in HOSTS {
            self.spawn_agent(name, address, &token)?;
        }
        println!(
            "started agents h1-h3 (roots under {}); waiting for them to join",
            self.data.join("agents").display()
        );
        self.wait_online(since).await?;
        self.add_services().await?;
        self.deploy().await
    }

    fn spawn_agent(&mut self, name: &'static str, address: &str, token: &str) -> Result<()> {
        let root = self.agent_root(name);
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let config = AgentClientConfig {
            server: self.url.clone(),
            join_token: Some(token.to_string()),
            agent: AgentConfig::new(name, address, root),
            ca_fingerprint: self.ca_fingerprint.clone(),
            metrics_cgroup: None,
        };
        let mut stop = self.stop_agents.subscribe();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let task = tokio::spawn(run_agent(config, Arc::new(ProcessExecutor), shutdown));
        self.agents.push((name, task));
        Ok(())
    }

    /// Waits until every demo host has registered in this run (ONLINE, with a heartbeat since
    /// `since`), failing early if an agent stops.
    async fn wait_online(&mut self, since: i64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + ONLINE_TIMEOUT;
        loop {
            if let Some(i) = self.agents.iter().position(|(_, t)| t.is_finished()) {
                let (name, task) = self.agents.remove(i);
                let why = match task.await {
                    Ok(Ok(())) => "it stopped".to_string(),
                    Ok(Err(e @ bigmgr_core::Error::Refused(_))) => format!(
                        "{e}; if {} holds agents of another server, delete it and run again",
                        self.data.display()
                    ),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => format!("it crashed: {e}"),
                };
                return Err(Error::Quickstart(format!(
                    "agent {name} did not start: {why}"
                )));
            }
            let hosts = self.mgr.hosts(CLUSTER).await?;
            let missing: Vec<&str> = HOSTS
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| {
                    !hosts.iter().any(|h| {
                        h.name == *n
                            && h.state == HostState::Online
                            && h.last_heartbeat.is_some_and(|t| t >= since)
                    })
                })
                .collect();
            if missing.is_empty() {
                println!(
                    "agents online: {}",
                    HOSTS.map(|(n, a)| format!("{n} ({a})")).join(", ")
                );
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Quickstart(format!(
                    "host(s) {} did not come online within {ONLINE_TIMEOUT:?}; the agents' log lines above say why",
                    missing.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Adds `hello` (and `greeter`, if the demo stack has it) unless they exist.
    async fn add_services(&self) -> Result<()> {
        let stack = self.mgr.stacks().stack(STACK, None).await?;
        let all: Vec<String> = HOSTS.iter().map(|(n, _)| n.to_string()).collect();
        let mut wanted = vec![("hello", vec![("hello_server", all.clone())])];
        if stack.services.contains_key("greeter") {
            wanted.push((
                "greeter",
                vec![
                    ("greeter_server", all.clone()),
                    ("greeter_client", vec![all[0].clone()]),
                ],
            ));
        }
        for (name, placement) in wanted {
            let placement: BTreeMap<String, bigmgr_core::placement::Placement> = placement
                .into_iter()
                .map(|(c, h)| (c.to_string(), h.into()))
                .collect();
            let req = AddService {
                name: name.into(),
                stack: STACK.into(),
                version: None,
                service: name.into(),
                placement,
                configs: Default::default(),
                host_overrides: Default::default(),
            };
            match self.mgr.add_service(CLUSTER, req).await {
                Ok((_, units)) => println!("added service {name} ({} units)", units.len()),
                Err(bigmgr_core::Error::AlreadyExists { .. }) => {
                    println!("service {name} exists; reusing it")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Runs `deploy` on the cluster and waits for it; a failure prints the failed tasks' logs.
    async fn deploy(&mut self) -> Result<()> {
        let job = self.mgr.submit(request("deploy")).await?;
        self.deploy = Some(job.id);
        println!("job {}: deploy (install, configure, start, check)", job.id);
        let state = wait(&self.mgr, job.id, DEPLOY_TIMEOUT).await?;
        print_job(&self.mgr, job.id).await?;
        if state != JobState::Succeeded {
            return Err(Error::Quickstart(format!(
                "the deploy job {} ended {state}; the failed tasks' output is above",
                job.id
            )));
        }
        Ok(())
    }

    /// Cancels an unfinished deploy, then runs `stop` on the cluster, waiting up to
    /// [`STOP_TIMEOUT`] (or until a second signal).
    async fn stop_services(&self, signals: &mut Signals) -> Result<()> {
        if let Some(id) = self.deploy
            && !self.mgr.job(id).await?.job.state.is_final()
        {
            let _ = self.mgr.cancel(id).await;
            let _ = wait(&self.mgr, id, STOP_TIMEOUT).await;
        }
        let job = self.mgr.submit(request("stop")).await?;
        println!("job {}: stop", job.id);
        let state = tokio::select! {
            s = wait(&self.mgr, job.id, STOP_TIMEOUT) => s?,
            signal = signals.recv() => {
                return Err(Error::Quickstart(format!(
                    "{signal} received again: not waiting for the stop job {}; the demo daemons may still run",
                    job.id
                )));
            }
        };
        print_job(&self.mgr, job.id).await?;
        if state == JobState::Succeeded {
            Ok(())
        } else {
            Err(Error::Quickstart(format!(
                "the stop job {} ended {state}; the demo daemons may still run",
                job.id
            )))
        }
    }

    /// Stops the agents and waits for them (bounded).
    async fn stop_agents(&mut self) {
        let _ = self.stop_agents.send(true);
        for (name, task) in self.agents.drain(..) {
            match tokio::time::timeout(AGENT_STOP_TIMEOUT, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    tracing::warn!(agent = name, error = %e, "agent ended with an error")
                }
                Ok(Err(e)) => tracing::warn!(agent = name, error = %e, "agent crashed"),
                Err(_) => tracing::warn!(agent = name, "agent did not stop in time"),
            }
        }
    }

    /// Writes `<data>/client.toml` (mode 0600: it holds the admin token) with what the CLI
    /// needs to talk to this server: its URL, the admin token and its CA.
    fn write_client_config(&self, server: &Server) -> Result<PathBuf> {
        let path = self.data.join("client.toml");
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut text = format!(
            "# Written by `bigmgr quickstart`: the CLI reads it with BIGMGR_CLIENT_CONFIG={}\nserver = {}\ntoken = {}\n",
            path.display(),
            quote(&self.url),
            quote(&server.admin_token().token)
        );
        if let Some(ca) = server.tls().and_then(|t| t.ca_path.as_ref()) {
            text.push_str(&format!("ca = {}\n", quote(&ca.display().to_string())));
        }
        bigmgr_core::fsutil::write_atomic(&path, text.as_bytes(), 0o600, true)
            .map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }

    /// Prints where to look, then `quickstart ready`.
    async fn print_guide(&self, server: &Server) {
        let url = &self.url;
        let token_file = server.admin_token().path.display();
        let job = self.deploy.map(|j| j.0).unwrap_or(1);
        let task = match self.mgr.job(JobId(job)).await {
            Ok(d) => d.tasks.first().map(|t| t.id.0).unwrap_or(1),
            Err(_) => 1,
        };
        let ca = server.tls().and_then(|t| t.ca_path.clone());
        let auth = match &ca {
            Some(ca) => format!(
                "--cacert {} -H \"Authorization: Bearer $BIGMGR_TOKEN\"",
                ca.display()
            ),
            None => "-H \"Authorization: Bearer $BIGMGR_TOKEN\"".to_string(),
        };
        println!();
        println!("The demo is deployed. Where to look:");
        if crate::ui::is_built() {
            println!(
                "  web console  {url}/   (sign in with the admin token: paste the contents of {token_file})"
            );
            if let Some(ca) = &ca {
                println!(
                    "               your browser does not know bigmgr's own CA yet: import {} or accept its warning",
                    ca.display()
                );
            }
        } else {
            println!("  web console  not built into this bigmgr: {url}/ says why and how");
        }
        if let Some(t) = server.tls() {
            println!(
                "  TLS          the server's CA {} (agents pin it: --ca-fingerprint {})",
                ca.as_ref()
                    .map_or(String::new(), |c| c.display().to_string()),
                t.ca_fingerprint
            );
        }
        match self.write_client_config(server) {
            Ok(path) => println!(
                "  CLI          export BIGMGR_CLIENT_CONFIG={}   (server, admin token and CA for `bigmgr …`)",
                path.display()
            ),
            Err(e) => tracing::warn!(error = %e, "cannot write the CLI's config file"),
        }
        println!("  REST API     {url}/api/v1   (GET {url}/api/v1/health needs no token)");
        println!("  admin token  {token_file}");
        println!("    export BIGMGR_TOKEN=\"$(cat {token_file})\"");
        println!("    curl -s {auth} {url}/api/v1/jobs/{job}");
        println!("    curl -s {auth} {url}/api/v1/jobs/{job}/tasks/{task}/log");
        println!("    curl -s {auth} {url}/api/v1/clusters/{CLUSTER}/hosts");
        println!("    curl -s {auth} {url}/api/v1/clusters/{CLUSTER}/services");
        println!(
            "  store        {}",
            self.data.join(crate::config::DB_FILE).display()
        );
        println!("  agents (each root holds units/, tasks/ and ledger.jsonl):");
        let units = unit_dirs(&self.mgr).await.unwrap_or_default();
        for (name, address) in HOSTS {
            let root = self.agent_root(name);
            println!("    {name}  {address}  {}", root.display());
            for dir in units.get(name).into_iter().flatten() {
                println!("        unit dir  {}", root.join(dir).display());
            }
            println!(
                "        task runs {}  (<task>.<attempt>/stdout.log, stderr.log, context.json)",
                root.join("tasks").display()
            );
        }
        println!("Press Ctrl-C to stop the demo services and exit.");
        println!("quickstart ready");
    }
}

/// A job on the whole demo cluster.
fn request(command: &str) -> JobRequest {
    JobRequest {
        cluster: CLUSTER.into(),
        target: Target::Cluster,
        command: command.into(),
        options: JobOptions::default(),
    }
}

/// Waits for a job to end, at most `timeout`.
async fn wait(mgr: &Manager, id: JobId, timeout: Duration) -> Result<JobState> {
    match tokio::time::timeout(timeout, mgr.wait(id)).await {
        Ok(job) => Ok(job?.state),
        Err(_) => Err(Error::Quickstart(format!(
            "job {id} did not finish within {timeout:?}"
        ))),
    }
}

/// Prints a job's stages, and the output of its tasks that did not succeed.
async fn print_job(mgr: &Manager, id: JobId) -> Result<()> {
    let detail = mgr.job(id).await?;
    println!("job {id} ({}): {}", detail.job.command, detail.job.state);
    for stage in detail.stage_summaries() {
        println!("  {stage}");
    }
    for t in detail
        .tasks
        .iter()
        .filter(|t| t.state.is_final() && t.state != TaskState::Succeeded)
    {
        println!(
            "  task {} {}: {}",
            t.id,
            t.state,
            t.message.as_deref().unwrap_or("")
        );
        for l in mgr.task_log(t.id, Some(t.attempt)).await? {
            println!("    {} {}", l.stream.as_str(), l.line);
        }
    }
    Ok(())
}

/// Each demo host's unit directories, relative to its agent's root.
async fn unit_dirs(mgr: &Manager) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let hosts = mgr.hosts(CLUSTER).await?;
    let services = mgr.services(CLUSTER).await?;
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for u in mgr.units(CLUSTER).await? {
        let (Some(h), Some(s)) = (
            hosts.iter().find(|h| h.id == u.host),
            services.iter().find(|s| s.id == u.service),
        ) else {
            continue;
        };
        out.entry(h.name.clone()).or_default().push(
            Path::new("units")
                .join(CLUSTER)
                .join(&s.name)
                .join(&u.component),
        );
    }
    Ok(out)
}
