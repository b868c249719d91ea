//! The `bigmgr` command line: `bigmgr serve` and `bigmgr quickstart`, and the client
//! subcommands over the REST API (`bigmgr cluster|host|stack|service|job|config|unit|relation|
//! advise|alert|ask|assistant|user|token …`, carried out by [`crate::client`]).
//!
//! Client subcommands are noun-verb (`bigmgr job run c deploy --wait`) and share
//! [`ClientOpts`]: `--server`, `--token`, `--config` and `--json`, accepted anywhere after the
//! noun.

use crate::client;
use crate::config::{ServeArgs, ServeConfig};
use crate::quickstart::{self, QuickstartArgs};
use crate::{Result, logging, server};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// bigmgr: a cluster manager. The server keeps the cluster model and sends tasks to one
/// bigmgr-agent per host.
#[derive(Debug, Parser)]
#[command(name = "bigmgr", version, arg_required_else_help = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API and the agents' gRPC on one address, until SIGINT or SIGTERM.
    ///
    /// Every flag can also be set by its BIGMGR_* environment variable or in the TOML file
    /// named by --config; flags win over variables, variables over the file. The admin token is
    /// BIGMGR_ADMIN_TOKEN, or generated on the first start into the file admin-token of the data
    /// directory.
    Serve(ServeArgs),
    /// Run a server with three local agents (h1–h3 on 127.0.0.2–4), deploy the demo stack,
    /// and stop it again on Ctrl-C.
    Quickstart(QuickstartArgs),
    /// The store's database itself: copy an installation to another database.
    Store {
        /// What to do.
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Clusters: list, create, show, delete, and join tokens for agents.
    Cluster {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Hosts of a cluster: list, show, add.
    Host {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: HostCommand,
    },
    /// Pipelines: DAGs of compute units and data channels over batches (docs/pipelines.md).
    Pipeline {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Stacks the server can deploy.
    Stack {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: StackCommand,
    },
    /// Service instances of a cluster: list, show, add.
    Service {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// Jobs: run a command on a cluster, follow it, control it, read task logs.
    Job {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: JobCommand,
    },
    /// Config versions of service instances: show, history, set, diff, rollback, apply to
    /// stale units, and cluster-wide snapshots.
    Config {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Units (one component of a service instance on one host): list with staleness, add,
    /// remove.
    Unit {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: UnitCommand,
    },
    /// Relations between service instances: list, add, remove, and their events.
    Relation {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: RelationCommand,
    },
    /// What applying a cluster spec (a TOML file, docs/spec.md) would change; changes nothing.
    Plan {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// The spec.
        #[command(flatten)]
        args: SpecArgs,
    },
    /// Apply a cluster spec: create what it names, change what differs, deploy it.
    Apply {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// The spec.
        #[command(flatten)]
        args: SpecArgs,
    },
    /// Write a cluster as a spec (to stdout, or `-o FILE`); secrets become references.
    Export {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to export.
        #[command(flatten)]
        args: ExportArgs,
    },
    /// What the advisor finds wrong in a cluster, with the evidence and what to do.
    Advise {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to advise on.
        #[command(flatten)]
        args: AdviseArgs,
    },
    /// Alerts of a cluster: as they stand, and their history.
    Alert {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: AlertCommand,
    },
    /// Ask the assistant about a cluster: the answer streams as it comes (tools it calls are
    /// shown on stderr); a change it proposes runs only after you confirm it.
    Ask {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// The question and where to ask it.
        #[command(flatten)]
        args: AskArgs,
    },
    /// The assistant: model providers, your threads, and the proposals waiting in them.
    Assistant {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: AssistantCommand,
    },
    /// Users of the API: list, create, delete.
    User {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens of users: create, delete.
    Token {
        /// How to reach the server.
        #[command(flatten)]
        opts: ClientOpts,
        /// What to do.
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// How a client subcommand reaches the server. Each setting comes from its flag, else its
/// variable, else the client config file, else the default.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Client options")]
pub struct ClientOpts {
    /// The server's URL [default: https://127.0.0.1:7070]
    #[arg(long, global = true, env = "BIGMGR_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The server's CA certificate (PEM; the server keeps its own in <data>/tls/ca.pem), to
    /// trust an https:// server
    #[arg(long, global = true, env = "BIGMGR_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The API token, e.g. the admin token from the file admin-token of the server's data
    /// directory
    #[arg(
        long,
        global = true,
        env = "BIGMGR_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A TOML file with `server = "…"`, `token = "…"` and `ca = "…"` [default:
    /// ~/.config/bigmgr/client.toml if it exists]
    #[arg(long, global = true, env = "BIGMGR_CLIENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the server's JSON instead of tables (a list as one array of all its pages' items)
    #[arg(long, global = true)]
    pub json: bool,
}

/// `bigmgr cluster …`
#[derive(Debug, Clone, Subcommand)]
pub enum ClusterCommand {
    /// List the clusters.
    List,
    /// Create a cluster.
    Create {
        /// Its name.
        name: String,
    },
    /// Show a cluster.
    Show {
        /// Its name.
        name: String,
    },
    /// Delete a cluster that has no hosts, services or jobs.
    Delete {
        /// Its name.
        name: String,
    },
    /// Create a join token for agents of a cluster and print it (for bigmgr-agent
    /// --join-token).
    JoinToken {
        /// The cluster's name.
        name: String,
    },
}

/// `bigmgr host …`
#[derive(Debug, Clone, Subcommand)]
pub enum HostCommand {
    /// List the hosts of a cluster with their state.
    List {
        /// The cluster.
        cluster: String,
    },
    /// Show a host: facts, metrics, units.
    Show {
        /// The cluster.
        cluster: String,
        /// The host's name.
        host: String,
    },
    /// Add a host ahead of its agent; an agent started with the same --name claims it.
    Add {
        /// The cluster.
        cluster: String,
        /// The host's name.
        name: String,
        /// The address its services bind to.
        address: String,
    },
    /// Change a host's address (admin). To accept the address its agent reported (shown by
    /// `host show` as "reported address"), give that one.
    SetAddress {
        /// The cluster.
        cluster: String,
        /// The host's name.
        host: String,
        /// The new address: an IP address or a DNS host name.
        address: String,
    },
    /// Remove a host that has no units of services left; its agent is refused from then on.
    Remove {
        /// The cluster.
        cluster: String,
        /// The host's name.
        host: String,
    },
    /// Add machines over SSH (admin): the server logs in to each, installs and starts the
    /// agent, and waits for it to join; one task per host, followed to the end.
    Bootstrap(BootstrapArgs),
}

/// `bigmgr host bootstrap <cluster> --ssh-key FILE [options] MACHINE…`
#[derive(Debug, Clone, clap::Args)]
pub struct BootstrapArgs {
    /// The cluster.
    pub cluster: String,
    /// The machines: ADDRESS (also its host name), or NAME=ADDRESS; either with :PORT for
    /// another SSH port than --ssh-port ([v6::addr]:PORT for IPv6)
    #[arg(required = true, value_name = "MACHINE")]
    pub machines: Vec<String>,
    /// The user to log in as
    #[arg(long, default_value = "root")]
    pub ssh_user: String,
    /// The SSH port [default: 22]
    #[arg(long)]
    pub ssh_port: Option<u16>,
    /// The private key to log in with (OpenSSH format)
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "ssh_password_env"
    )]
    pub ssh_key: Option<PathBuf>,
    /// The environment variable holding the key's passphrase, if it has one
    #[arg(long, value_name = "VAR", requires = "ssh_key")]
    pub ssh_key_passphrase_env: Option<String>,
    /// The environment variable holding a password to log in with instead of a key (never
    /// on the command line)
    #[arg(long, value_name = "VAR", conflicts_with = "ssh_key")]
    pub ssh_password_env: Option<String>,
    /// A machine's known host key: NAME=SHA256:… (as `ssh-keygen -lf` prints it); repeat it.
    /// Without one, the key recorded at the host's last bootstrap is required, or a new
    /// host's key is trusted on first use and recorded
    #[arg(long = "host-key", value_name = "NAME=FINGERPRINT")]
    pub host_keys: Vec<String>,
    /// Replace an agent already running on a machine (else such a machine is left alone)
    #[arg(long)]
    pub upgrade: bool,
    /// The directory for the agent on each machine [default: /opt/bigmgr-agent]
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<String>,
    /// The URL agents reach the server at [default: the one this command uses]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Print the job and return instead of following it
    #[arg(long)]
    pub no_wait: bool,
}

/// `bigmgr pipeline …`
#[derive(Debug, Clone, Subcommand)]
pub enum PipelineCommand {
    /// Create a pipeline from its definition (admin); a definition with problems is refused
    /// whole, each problem with its line.
    Create {
        /// The cluster.
        cluster: String,
        /// The definition (TOML, docs/pipelines.md).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// List the pipelines of a cluster with their state.
    List {
        /// The cluster.
        cluster: String,
    },
    /// Show a pipeline: its state and definition.
    Show {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
    },
    /// Remove a pipeline that is not running (admin).
    Delete {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
    },
    /// Start a pipeline that is not running (operator); what it processed before stays
    /// processed, so it takes only what is new.
    Start {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
    },
    /// Pause a running pipeline: no node takes a new batch; batches being processed finish.
    Pause {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
    },
    /// Resume a paused pipeline.
    Resume {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
    },
    /// Stop a pipeline: drain it (its sources take nothing more, the rest is processed), or
    /// abort it.
    Stop {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
        /// Stop now: batches being processed go back to their channels.
        #[arg(long)]
        abort: bool,
    },
    /// Scale a non-blocking unit to a number of replicas, running or not.
    Scale {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
        /// UNIT=REPLICAS (`filter=4`).
        #[arg(value_name = "UNIT=REPLICAS")]
        replicas: String,
    },
    /// A pipeline's nodes with their batches waiting, being processed and processed.
    Status {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
    },
    /// Push a batch (a file, or `-` for stdin) to an HTTP source of a running pipeline;
    /// with `--batch ID` a push retried is recorded once.
    Push {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
        /// The HTTP source.
        source: String,
        /// The batch: a file, or `-` for stdin.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Names the batch (letters, digits, `.`, `_`, `-`).
        #[arg(long, value_name = "ID")]
        batch: Option<String>,
    },
    /// The latest lines of a pipeline's run.
    Logs {
        /// The cluster.
        cluster: String,
        /// The pipeline's name.
        name: String,
    },
}

/// `bigmgr stack …`
#[derive(Debug, Clone, Subcommand)]
pub enum StackCommand {
    /// List the stack versions with their services and components.
    List,
}

/// `bigmgr service …`
#[derive(Debug, Clone, Subcommand)]
pub enum ServiceCommand {
    /// List the service instances of a cluster.
    List {
        /// The cluster.
        cluster: String,
    },
    /// Show a service instance with its units.
    Show {
        /// The cluster.
        cluster: String,
        /// The service instance's name.
        name: String,
    },
    /// Add a service instance of a stack, placing its components on hosts.
    Add(AddServiceArgs),
    /// Remove a service instance with its units; stop it first.
    Remove {
        /// The cluster.
        cluster: String,
        /// The service instance's name.
        name: String,
    },
}

/// `bigmgr service add`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct AddServiceArgs {
    /// The cluster.
    pub cluster: String,
    /// The instance's name in the cluster [default: the --service name]
    #[arg(long)]
    pub name: Option<String>,
    /// The stack, e.g. demo.
    #[arg(long)]
    pub stack: String,
    /// The service definition of the stack, e.g. hello.
    #[arg(long)]
    pub service: String,
    /// The stack version [default: the newest]
    #[arg(long)]
    pub version: Option<String>,
    /// Where a component runs, as COMPONENT=HOST,HOST…; repeat it for each component.
    #[arg(long = "place", value_name = "COMPONENT=HOSTS", value_parser = parse_placement)]
    pub place: Vec<(String, Vec<String>)>,
    /// Let the server place N units of a component, on the least loaded hosts (CPU and
    /// memory averaged over recent heartbeats), spreading units: COMPONENT=N, or
    /// COMPONENT=N:PATTERN to choose only among hosts whose name matches (`*` any run).
    #[arg(long = "count", value_name = "COMPONENT=N[:PATTERN]", value_parser = parse_count)]
    pub count: Vec<(String, bigmgr_core::placement::CountRule)>,
    /// Make every check the server makes and print the units it would create; add nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Parses `component=h1,h2`.
fn parse_placement(text: &str) -> std::result::Result<(String, Vec<String>), String> {
    let (component, hosts) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not COMPONENT=HOST,HOST…"))?;
    let hosts: Vec<String> = split_list(hosts);
    if component.trim().is_empty() || hosts.is_empty() {
        return Err(format!(
            "'{text}' needs a component and at least one host: COMPONENT=HOST,HOST…"
        ));
    }
    Ok((component.trim().to_string(), hosts))
}

/// Parses `component=3` or `component=3:worker-*`.
fn parse_count(
    text: &str,
) -> std::result::Result<(String, bigmgr_core::placement::CountRule), String> {
    let bad = || format!("'{text}' is not COMPONENT=N or COMPONENT=N:PATTERN");
    let (component, rule) = text.split_once('=').ok_or_else(bad)?;
    let (n, pattern) = match rule.split_once(':') {
        Some((n, p)) => (n, Some(p.trim().to_string())),
        None => (rule, None),
    };
    let count: usize = n.trim().parse().map_err(|_| bad())?;
    if component.trim().is_empty() || pattern.as_deref() == Some("") {
        return Err(bad());
    }
    Ok((
        component.trim().to_string(),
        bigmgr_core::placement::CountRule {
            count,
            among: None,
            pattern,
        },
    ))
}

/// Splits `a,b, c` into its non-empty trimmed parts.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `bigmgr job …`
#[derive(Debug, Clone, Subcommand)]
pub enum JobCommand {
    /// Run a command (install, configure, start, stop, restart, status, check, remove,
    /// deploy or a stack's own) on a cluster, a service, a component or hosts.
    Run(RunJobArgs),
    /// List the jobs of a cluster, oldest first.
    List {
        /// The cluster.
        cluster: String,
    },
    /// Show a job with its stages and tasks.
    Show {
        /// The job id.
        id: i64,
    },
    /// Follow a job until it ends: progress per stage and the tasks' log lines; the exit code
    /// is 0 if it succeeded, 1 if not.
    Wait {
        /// The job id.
        id: i64,
    },
    /// Cancel a job: pending tasks are canceled, running scripts stopped.
    Cancel {
        /// The job id.
        id: i64,
    },
    /// Pause a job: nothing new is dispatched; running tasks finish.
    Pause {
        /// The job id.
        id: i64,
    },
    /// Resume a paused job.
    Resume {
        /// The job id.
        id: i64,
    },
    /// Run a failed or canceled job's failed and canceled tasks again.
    Retry {
        /// The job id.
        id: i64,
        /// Follow the job until it ends, as `job wait` does.
        #[arg(long)]
        wait: bool,
    },
    /// Print a task's log lines, or every task's prefixed with its host and stage.
    Log {
        /// The job id.
        id: i64,
        /// The task id (see `bigmgr job show`) [default: every task of the job]
        task: Option<i64>,
        /// Only this attempt's lines.
        #[arg(long)]
        attempt: Option<u32>,
        /// Keep printing new lines until the task (or job) ends.
        #[arg(long, short)]
        follow: bool,
    },
}

/// `bigmgr job run`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct RunJobArgs {
    /// The cluster.
    pub cluster: String,
    /// The command.
    pub command: String,
    /// At most this many tasks run at once [default: no limit]
    #[arg(long, value_name = "N")]
    pub parallelism: Option<u32>,
    /// Run each stage's tasks in batches of this size, one after the other (rolling)
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u32>,
    /// How many failed tasks a stage tolerates and still succeeds [default: 0]
    #[arg(long, value_name = "N")]
    pub failure_tolerance: Option<u32>,
    /// Start a host's task of a stage as soon as that host's tasks before it succeeded
    #[arg(long)]
    pub pipelined: bool,
    /// Why it runs, as the job list shows it (one line, at most 500 characters).
    #[arg(long)]
    pub reason: Option<String>,
    /// Follow the job until it ends: progress per stage and the tasks' log lines; the exit
    /// code is 0 if it succeeded, 1 if not
    #[arg(long)]
    pub wait: bool,
    /// What to act on [default: the whole cluster]
    #[command(flatten)]
    pub target: TargetArgs,
}

/// A job's target: at most one of these; none is the whole cluster.
#[derive(Debug, Clone, Default, Args)]
#[group(multiple = false)]
#[command(next_help_heading = "Target (at most one; none is the whole cluster)")]
pub struct TargetArgs {
    /// One service instance.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// One component of a service instance.
    #[arg(long, value_name = "SERVICE/COMPONENT")]
    pub component: Option<String>,
    /// Every unit on these hosts.
    #[arg(long, value_name = "HOST,HOST…", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// These units (ids from `bigmgr service show`).
    #[arg(long, value_name = "ID,ID…", value_delimiter = ',')]
    pub units: Vec<i64>,
}

/// `bigmgr config …`
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Show a config version of a service instance: who made it, when, why, and the values of
    /// its service layer and host overrides (secrets read ********).
    Show {
        /// The cluster.
        cluster: String,
        /// The service instance.
        service: String,
        /// The version [default: the current one]
        #[arg(long, value_name = "N")]
        version: Option<u32>,
    },
    /// List the config versions of a service instance, oldest first.
    History {
        /// The cluster.
        cluster: String,
        /// The service instance.
        service: String,
    },
    /// Change properties of one config type: a new version, applied to the units by `bigmgr
    /// config apply`.
    Set(SetConfigArgs),
    /// Show what changed between two versions, property by property.
    Diff {
        /// The cluster.
        cluster: String,
        /// The service instance.
        service: String,
        /// The earlier version.
        from: u32,
        /// The later version.
        to: u32,
    },
    /// Make a new version with an old version's values (history is kept).
    Rollback {
        /// The cluster.
        cluster: String,
        /// The service instance.
        service: String,
        /// The version to go back to.
        version: u32,
        /// Why [default: "rollback to version N"]
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Apply changed configs: reconfigure (rolling) the stale units that are started, and
    /// configure the stale ones that are not.
    Apply {
        /// The cluster.
        cluster: String,
        /// Only this service instance's units [default: every service]
        #[arg(long)]
        service: Option<String>,
        /// Follow the jobs until they end; the exit code is 0 only if all succeeded
        #[arg(long)]
        wait: bool,
    },
    /// Name every service instance's current config version, to restore them later.
    Snapshot {
        /// The cluster.
        cluster: String,
        /// The snapshot's name, unique in the cluster.
        name: String,
        /// Why.
        #[arg(long, short)]
        message: Option<String>,
    },
    /// List the snapshots of a cluster, oldest first.
    Snapshots {
        /// The cluster.
        cluster: String,
    },
    /// Roll every service instance that changed since a snapshot back to its version then (a
    /// new version each).
    Restore {
        /// The cluster.
        cluster: String,
        /// The snapshot's name.
        name: String,
    },
}

/// `bigmgr config set`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct SetConfigArgs {
    /// The cluster.
    pub cluster: String,
    /// The service instance.
    pub service: String,
    /// The config type the properties belong to, e.g. zoo.cfg.
    #[arg(long = "type", value_name = "TYPE")]
    pub config_type: String,
    /// PROPERTY=VALUE: the value is read as JSON if it is JSON (3000, true, "3000"), as a
    /// string otherwise; null removes the property, like --unset.
    #[arg(
        value_name = "PROPERTY=VALUE",
        value_parser = parse_assignment,
        required_unless_present = "unset"
    )]
    pub values: Vec<(String, serde_json::Value)>,
    /// Remove a property from the layer (back to the layer below); repeat it for more.
    #[arg(long, value_name = "PROPERTY")]
    pub unset: Vec<String>,
    /// Set a host override for this host instead of the service layer.
    #[arg(long)]
    pub host: Option<String>,
    /// Why (kept with the version).
    #[arg(long, short)]
    pub message: Option<String>,
}

/// Parses `property=value`: split at the first `=`; the value is JSON if it parses as JSON,
/// else the text as a string.
pub fn parse_assignment(text: &str) -> std::result::Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not PROPERTY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("'{text}' has no property name: PROPERTY=VALUE"));
    }
    let value = serde_json::from_str(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

/// `bigmgr unit …`
#[derive(Debug, Clone, Subcommand)]
pub enum UnitCommand {
    /// List the units of a cluster with the config version each applied, the one it should
    /// have, and whether (and why) it is stale.
    List {
        /// The cluster.
        cluster: String,
    },
    /// Place a component of a service instance on more hosts; deploy the new units with a
    /// job.
    Add {
        /// The cluster.
        cluster: String,
        /// The service instance.
        service: String,
        /// The component.
        component: String,
        /// The hosts, comma-separated.
        #[arg(value_name = "HOST,HOST…", value_delimiter = ',', required = true)]
        hosts: Vec<String>,
    },
    /// Remove a unit that is not started; related services re-render without it.
    Remove {
        /// The cluster.
        cluster: String,
        /// The unit's id (see `bigmgr unit list`).
        id: i64,
    },
}

/// `bigmgr relation …`
#[derive(Debug, Clone, Subcommand)]
pub enum RelationCommand {
    /// List the relations of a cluster.
    List {
        /// The cluster.
        cluster: String,
    },
    /// Relate a service instance that requires an interface to one that provides it; both
    /// sides' templates then see the other side's units.
    Add {
        /// The cluster.
        cluster: String,
        /// The requiring side: SERVICE, or SERVICE:ENDPOINT when more than one would fit.
        requirer: String,
        /// The providing side: SERVICE, or SERVICE:ENDPOINT.
        provider: String,
        /// Leave units made stale by changes on the other side for `bigmgr config apply`
        /// instead of reconfiguring them at once.
        #[arg(long)]
        no_auto_reconfigure: bool,
    },
    /// Remove a relation; both sides get a `broken` event.
    Remove {
        /// The cluster.
        cluster: String,
        /// The relation's id (see `bigmgr relation list`).
        id: i64,
    },
    /// List a relation's events (joined, changed, broken) with the jobs they started.
    Events {
        /// The cluster.
        cluster: String,
        /// The relation's id.
        id: i64,
    },
}

/// `bigmgr user …`
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// List the users.
    List,
    /// Create a user.
    Create {
        /// Its name.
        name: String,
        /// Its role.
        #[arg(long)]
        role: String,
        /// Read a password from the first line of stdin (none: the user logs in with tokens
        /// only).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete a user.
    Delete {
        /// Its name.
        name: String,
    },
}

/// `bigmgr token …`
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print it (it is shown only once).
    Create {
        /// The user.
        user: String,
        /// A name for the token, to tell it apart later.
        #[arg(long)]
        name: String,
    },
    /// Delete (revoke) a token.
    Delete {
        /// The token's id.
        id: String,
    },
}

/// `bigmgr alert …`.
#[derive(Debug, Clone, Subcommand)]
pub enum AlertCommand {
    /// List a cluster's alerts as they stand (host lost, unit down, unit stale, job failed).
    List {
        /// The cluster.
        cluster: String,
        /// Only the alerts that are not OK.
        #[arg(long)]
        firing: bool,
    },
    /// The changes of a cluster's alerts, oldest first.
    History {
        /// The cluster.
        cluster: String,
        /// How many at most (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Put a host or a service in maintenance: its alerts (and its units') notify no one, and
    /// self-healing leaves its units alone, until the window ends.
    Silence {
        /// The cluster.
        cluster: String,
        /// The host to silence.
        #[arg(long, conflicts_with = "service", required_unless_present = "service")]
        host: Option<String>,
        /// The service instance to silence.
        #[arg(long)]
        service: Option<String>,
        /// For how long: 30m, 2h, 1d (at most 30 days).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why (shown with the silenced alerts).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// The maintenance windows in progress.
    Maintenance {
        /// The cluster.
        cluster: String,
    },
    /// End a maintenance window now.
    Unsilence {
        /// The cluster.
        cluster: String,
        /// The window's id (see `bigmgr alert maintenance`).
        id: i64,
    },
    /// The cluster's alert definitions: built-in ones and those its stacks declare, with
    /// their thresholds, `for` times and the cluster's changes.
    Definitions {
        /// The cluster.
        cluster: String,
    },
    /// Change an alert definition for a cluster: its `for` time, thresholds, or whether it is
    /// evaluated (a new version of the change, audited).
    Tune {
        /// The cluster.
        cluster: String,
        /// The definition (`redis.port`, `unit_down`; see `bigmgr alert definitions`).
        name: String,
        /// How long a bad finding lasts before the alert changes (0s: at once).
        #[arg(long = "for", value_name = "DURATION")]
        hold: Option<String>,
        /// How often agents run the check (port, web, script; sent with each unit's next task).
        #[arg(long, value_name = "DURATION")]
        interval: Option<String>,
        /// The warning threshold: a response time (500ms) or a metric value (80).
        #[arg(long)]
        warning: Option<String>,
        /// The critical threshold, the same way.
        #[arg(long)]
        critical: Option<String>,
        /// Stop evaluating it for this cluster (its alerts go OK, saying so).
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Evaluate it again.
        #[arg(long)]
        enable: bool,
    },
    /// Show a service's self-healing policy, or change it with --restart/--off.
    Healing {
        /// The cluster.
        cluster: String,
        /// The service instance.
        service: String,
        /// Restart its STARTED units that are down.
        #[arg(long, conflicts_with = "off")]
        restart: bool,
        /// Stop restarting them.
        #[arg(long)]
        off: bool,
        /// How long a unit is down before the first restart (5s to 1d).
        #[arg(long, value_name = "DURATION")]
        grace: Option<String>,
        /// At most this many restarts of one unit an hour (1 to 60).
        #[arg(long, value_name = "N")]
        max_per_hour: Option<u32>,
    },
}

/// `bigmgr plan|apply -f FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct SpecArgs {
    /// The spec file (its `cluster` names the cluster). Its secret references
    /// (`{ env = "NAME" }`, `{ file = "PATH" }`, a path relative to the spec's directory) are
    /// read here and sent with it.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// Also remove what the cluster has and the spec does not name (services, units,
    /// relations; never hosts): plan lists it, apply stops it, waits, and removes it.
    #[arg(long)]
    pub prune: bool,
    /// apply: follow the jobs to their end (an error if one fails).
    #[arg(long)]
    pub wait: bool,
}

/// `bigmgr export CLUSTER [-o FILE]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The cluster.
    pub cluster: String,
    /// Write the spec to this file instead of stdout (it is replaced).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
}

/// `bigmgr advise CLUSTER [--host H] [--service S] [--job N]`.
#[derive(Debug, Clone, clap::Args)]
pub struct AdviseArgs {
    /// The cluster.
    pub cluster: String,
    /// Only findings about this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only findings about this service instance.
    #[arg(long)]
    pub service: Option<String>,
    /// Only findings about this job (explain its failure).
    #[arg(long)]
    pub job: Option<i64>,
}

/// `bigmgr ask "QUESTION" [--cluster C] [--thread N] [--provider P]`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Options")]
pub struct AskArgs {
    /// The question.
    pub question: String,
    /// The cluster to ask about (a new thread); default: the only cluster there is.
    #[arg(long, conflicts_with = "thread")]
    pub cluster: Option<String>,
    /// Go on in this thread of yours (its id was printed when it was created).
    #[arg(long, value_name = "N")]
    pub thread: Option<i64>,
    /// The model provider to ask; default: the default provider.
    #[arg(long)]
    pub provider: Option<String>,
}

/// `bigmgr assistant …`.
#[derive(Debug, Clone, Subcommand)]
pub enum AssistantCommand {
    /// The model providers (OpenAI-compatible endpoints); never their keys.
    Providers,
    /// Add or replace a model provider (admins). The API key is read from an environment
    /// variable or a file, never from the command line (where `ps` would show it); without
    /// either, a stored key is kept.
    SetProvider {
        /// Its name (`openai`, `local-ollama`).
        name: String,
        /// The base URL of its OpenAI-compatible API (`https://api.openai.com/v1`,
        /// `http://127.0.0.1:11434/v1` for Ollama).
        #[arg(long, value_name = "URL")]
        base_url: String,
        /// The model to ask for.
        #[arg(long)]
        model: String,
        /// Read the API key from this environment variable.
        #[arg(long, value_name = "VAR", conflicts_with = "api_key_file")]
        api_key_env: Option<String>,
        /// Read the API key from this file (its first line).
        #[arg(long, value_name = "FILE")]
        api_key_file: Option<PathBuf>,
        /// Make it the default provider.
        #[arg(long)]
        default: bool,
        /// How long one answer may take, in milliseconds (1000 to 600000; default 120000).
        #[arg(long, value_name = "N")]
        timeout_ms: Option<u64>,
    },
    /// Remove a model provider (admins).
    RemoveProvider {
        /// Its name.
        name: String,
    },
    /// The tools the assistant may call for you (mutating ones only propose).
    Tools,
    /// Your threads, newest first.
    Threads,
    /// One of your threads: its messages and proposals.
    Show {
        /// The thread's id.
        id: i64,
    },
    /// Confirm a pending proposal: its request runs now, as you.
    Confirm {
        /// The proposal's id.
        id: i64,
    },
    /// Reject a pending proposal: nothing runs.
    Reject {
        /// The proposal's id.
        id: i64,
    },
}

/// `bigmgr store …`: works on the databases directly, with the server stopped.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy everything from one store to an empty one (SQLite to PostgreSQL, or back), then
    /// check that both hold the same rows, table by table. Stop the server first; start it
    /// again with --store <to>.
    Copy {
        /// The store to copy: sqlite://<path> (a server's is <data>/bigmgr.db) or
        /// postgres://user@host:port/database
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty store to copy into (created and migrated if missing)
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// Runs `bigmgr store copy` and prints what it copied, table by table.
async fn store_copy(from: &str, to: &str) -> Result<()> {
    use bigmgr_core::database;
    let report = database::copy(from, to).await?;
    for (table, rows, digest) in &report.tables {
        println!("{table:<16} {rows:>9} rows  sha256 {}", &digest[..16]);
    }
    println!(
        "copied {} rows from {} to {}; every table verified (row count and digest)",
        report.rows(),
        database::redact_url(from),
        database::redact_url(to)
    );
    Ok(())
}

/// Parses the command line, sets up logging and a runtime, and runs the subcommand. Errors are
/// printed as `bigmgr: <error>`; the exit code is 2 for configuration and usage errors, 1 for
/// others (a client command's failed job included).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bigmgr: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match client::ClientCommand::split(cli.command) {
        Ok((opts, command)) => runtime
            .block_on(client::run(opts, command))
            .map_err(|e| (e.to_string(), e.exit_code())),
        Err(command) => runtime
            .block_on(run(*command))
            .map_err(|e| (e.to_string(), e.exit_code())),
    };
    match code {
        Ok(()) => ExitCode::SUCCESS,
        Err((message, code)) => {
            eprintln!("bigmgr: {message}");
            ExitCode::from(code)
        }
    }
}

/// Runs one of the server's subcommands (`serve`, `quickstart`); client subcommands are run by
/// [`client::run`].
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => server::serve(ServeConfig::from_args(&args)?).await,
        Command::Quickstart(args) => quickstart::run(args).await,
        Command::Store {
            command: StoreCommand::Copy { from, to },
        } => store_copy(&from, &to).await,
        other => Err(crate::Error::Config(format!(
            "{other:?} is a client command; run it with bigmgr_server::client::run"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn client_options_go_anywhere_after_the_noun() {
        let cli = Cli::try_parse_from([
            "bigmgr",
            "job",
            "--json",
            "run",
            "c",
            "deploy",
            "--service",
            "hello",
            "--wait",
            "--server",
            "http://h:1",
        ])
        .unwrap();
        let Command::Job { opts, command } = cli.command else {
            panic!("not a job command")
        };
        assert!(opts.json);
        assert_eq!(opts.server.as_deref(), Some("http://h:1"));
        let JobCommand::Run(run) = command else {
            panic!("not job run")
        };
        assert!(run.wait);
        assert_eq!(run.target.service.as_deref(), Some("hello"));
    }

    #[test]
    fn placements_parse() {
        assert_eq!(
            parse_placement("hello_server=h1, h2").unwrap(),
            (
                "hello_server".to_string(),
                vec!["h1".to_string(), "h2".to_string()]
            )
        );
        assert!(parse_placement("hello_server").is_err());
        assert!(parse_placement("hello_server=").is_err());
        let (c, rule) = parse_count("zookeeper_server=3:zk-*").unwrap();
        assert_eq!(
            (c.as_str(), rule.count, rule.pattern.as_deref()),
            ("zookeeper_server", 3, Some("zk-*"))
        );
        assert_eq!(parse_count("w=2").unwrap().1.pattern, None);
        for bad in ["w", "w=x", "=2", "w=2:", "w=-1"] {
            assert!(parse_count(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assignments_split_at_the_first_equals_and_read_json_values() {
        use serde_json::json;
        let parsed = |t: &str| parse_assignment(t).unwrap();
        assert_eq!(parsed("tickTime=3000"), ("tickTime".into(), json!(3000)));
        assert_eq!(parsed("enabled=true"), ("enabled".into(), json!(true)));
        assert_eq!(parsed("port=\"3000\""), ("port".into(), json!("3000")));
        assert_eq!(parsed("interval=5s"), ("interval".into(), json!("5s")));
        assert_eq!(
            parsed("opts=-Xmx1g -Da=b"),
            ("opts".into(), json!("-Xmx1g -Da=b"))
        );
        assert_eq!(parsed("empty="), ("empty".into(), json!("")));
        assert_eq!(parsed("gone=null"), ("gone".into(), json!(null)));
        assert!(parse_assignment("tickTime").is_err());
        assert!(parse_assignment("=3").is_err());
    }

    #[test]
    fn config_set_takes_values_or_unsets() {
        let cli = Cli::try_parse_from([
            "bigmgr",
            "config",
            "set",
            "c",
            "zk",
            "--type",
            "zoo.cfg",
            "tickTime=3000",
            "initLimit=5",
            "--host",
            "h2",
            "-m",
            "slower",
        ])
        .unwrap();
        let Command::Config {
            command: ConfigCommand::Set(set),
            ..
        } = cli.command
        else {
            panic!("not config set")
        };
        assert_eq!(set.config_type, "zoo.cfg");
        assert_eq!(set.values.len(), 2);
        assert_eq!(set.host.as_deref(), Some("h2"));
        assert_eq!(set.message.as_deref(), Some("slower"));
        Cli::try_parse_from([
            "bigmgr", "config", "set", "c", "zk", "--type", "zoo.cfg", "--unset", "tickTime",
        ])
        .unwrap();
        let e = Cli::try_parse_from(["bigmgr", "config", "set", "c", "zk", "--type", "zoo.cfg"])
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
