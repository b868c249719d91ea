//! The `bigmgr` client: the subcommands `cluster`, `host`, `stack`, `service`, `job`,
//! `config`, `unit`, `relation`, `advise`, `alert`, `ask`, `assistant`, `user` and `token` over
//! the REST API under `/api/v1`.
//!
//! - [`settings`]: where the server is and which token to send (flag > environment > client
//!   config file > default).
//! - [`bigmgr_client::Client`]: the typed REST client (shared with the Python module);
//!   problem+json answers become [`bigmgr_client::Error::Problem`], pages become one `Vec`.
//! - [`output`]: aligned tables, `key: value` lines and `--json`.
//! - [`resources`]: clusters, hosts, stacks, services, users and tokens; [`bootstrap`]:
//!   adding hosts over SSH; [`pipelines`]: pipelines.
//! - [`jobs`]: running, following (progress per stage, live log lines), controlling jobs and
//!   reading task logs.
//! - [`configs`]: config versions, snapshots and applying them to stale units; units;
//!   relations and their events.
//! - [`ask`] and [`assistant`]: the assistant's chat (answers streamed as they come,
//!   proposals confirmed at a prompt or later), its providers, threads and proposals.
//!
//! Every command prints the server's JSON as is with `--json` (a list as one array of all its
//! pages' items), and a table or `key: value` lines otherwise.

pub mod advise;
pub mod alerts;
pub mod ask;
pub mod assistant;
pub mod bootstrap;
pub mod configs;
pub mod jobs;
pub mod output;
pub mod pipelines;
pub mod resources;
pub mod settings;
pub mod spec;

use crate::cli::{
    AdviseArgs, AlertCommand, AskArgs, AssistantCommand, ClientOpts, ClusterCommand, Command,
    ConfigCommand, ExportArgs, HostCommand, JobCommand, PipelineCommand, RelationCommand,
    ServiceCommand, SpecArgs, StackCommand, TokenCommand, UnitCommand, UserCommand,
};

/// What can go wrong in a client command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or malformed (exit code 2, like a usage error).
    #[error("{0}")]
    Config(String),
    /// A file could not be read.
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
    /// A call of the REST client failed: the server could not be reached, answered with a
    /// problem (RFC 9457) or with something this client does not understand. A malformed
    /// server URL ([`bigmgr_client::Error::Invalid`]) is a setting mistake (exit code 2).
    #[error(transparent)]
    Client(#[from] bigmgr_client::Error),
    /// A job ended FAILED or CANCELED; the failed tasks were printed already.
    #[error("{0}")]
    JobFailed(String),
    /// The assistant's answer failed (its `error` event: the provider failed, timed out or
    /// answered garbage).
    #[error("{0}")]
    Assistant(String),
}

/// How long one request may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The API path of cluster `cluster`, or of `parts` under it, each part percent-encoded:
/// `in_cluster("c", &["services", "zk"])` is `/clusters/c/services/zk`.
pub fn in_cluster(cluster: &str, parts: &[&str]) -> String {
    let mut path = format!("/clusters/{}", bigmgr_client::seg(cluster));
    for part in parts {
        path.push('/');
        path.push_str(&bigmgr_client::seg(part));
    }
    path
}

/// GETs the list at `path`, every page of it, and prints it ([`output::Output::list`]).
pub async fn list(
    client: &bigmgr_client::Client,
    out: output::Output,
    path: &str,
    columns: &[output::Column],
) -> Result<()> {
    out.list(client.list(path).await?, columns);
    Ok(())
}

/// GETs the resource at `path` and prints it ([`output::Output::one`]).
pub async fn show(
    client: &bigmgr_client::Client,
    out: output::Output,
    path: &str,
    human: impl FnOnce(&serde_json::Value),
) -> Result<()> {
    out.one(&client.get(path).await?, human);
    Ok(())
}

/// POSTs `body` to `path` and prints the answer ([`output::Output::one`]).
pub async fn post(
    client: &bigmgr_client::Client,
    out: output::Output,
    path: &str,
    body: &serde_json::Value,
    human: impl FnOnce(&serde_json::Value),
) -> Result<()> {
    out.one(&client.post(path, body).await?, human);
    Ok(())
}

/// DELETEs the `kind` named `name` of a cluster (`/clusters/{cluster}/{kind}s/{name}`) and
/// says it was removed.
pub async fn remove_from(
    client: &bigmgr_client::Client,
    out: output::Output,
    cluster: &str,
    kind: &str,
    name: &str,
) -> Result<()> {
    client
        .delete(&in_cluster(cluster, &[&format!("{kind}s"), name]))
        .await?;
    out.done(format_args!("{kind} {name} removed from cluster {cluster}"));
    Ok(())
}

/// The result type of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit code: 2 for configuration mistakes, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Client(bigmgr_client::Error::Invalid(_)) => 2,
            _ => 1,
        }
    }
}

/// A client subcommand, without its connection options.
#[derive(Debug, Clone)]
pub enum ClientCommand {
    /// `bigmgr cluster …`
    Cluster(ClusterCommand),
    /// `bigmgr host …`
    Host(HostCommand),
    /// `bigmgr stack …`
    Stack(StackCommand),
    /// `bigmgr service …`
    Service(ServiceCommand),
    /// `bigmgr job …`
    Job(JobCommand),
    /// `bigmgr config …`
    Config(ConfigCommand),
    /// `bigmgr unit …`
    Unit(UnitCommand),
    /// `bigmgr relation …`
    Relation(RelationCommand),
    /// `bigmgr plan …`
    Plan(SpecArgs),
    /// `bigmgr apply …`
    Apply(SpecArgs),
    /// `bigmgr export …`
    Export(ExportArgs),
    /// `bigmgr advise …`
    Advise(AdviseArgs),
    /// `bigmgr alert …`
    Alert(AlertCommand),
    /// `bigmgr ask …`
    Ask(AskArgs),
    /// `bigmgr assistant …`
    Assistant(AssistantCommand),
    /// `bigmgr pipeline …`
    Pipeline(PipelineCommand),
    /// `bigmgr user …`
    User(UserCommand),
    /// `bigmgr token …`
    Token(TokenCommand),
}

impl ClientCommand {
    /// Splits a client subcommand into its options and itself; gives back any other command.
    pub fn split(command: Command) -> Result<(ClientOpts, ClientCommand), Box<Command>> {
        Ok(match command {
            Command::Cluster { opts, command } => (opts, ClientCommand::Cluster(command)),
            Command::Host { opts, command } => (opts, ClientCommand::Host(command)),
            Command::Stack { opts, command } => (opts, ClientCommand::Stack(command)),
            Command::Service { opts, command } => (opts, ClientCommand::Service(command)),
            Command::Job { opts, command } => (opts, ClientCommand::Job(command)),
            Command::Config { opts, command } => (opts, ClientCommand::Config(command)),
            Command::Unit { opts, command } => (opts, ClientCommand::Unit(command)),
            Command::Relation { opts, command } => (opts, ClientCommand::Relation(command)),
            Command::Advise { opts, args } => (opts, ClientCommand::Advise(args)),
            Command::Plan { opts, args } => (opts, ClientCommand::Plan(args)),
            Command::Apply { opts, args } => (opts, ClientCommand::Apply(args)),
            Command::Export { opts, args } => (opts, ClientCommand::Export(args)),
            Command::Alert { opts, command } => (opts, ClientCommand::Alert(command)),
            Command::Ask { opts, args } => (opts, ClientCommand::Ask(args)),
            Command::Assistant { opts, command } => (opts, ClientCommand::Assistant(command)),
            Command::Pipeline { opts, command } => (opts, ClientCommand::Pipeline(command)),
            Command::User { opts, command } => (opts, ClientCommand::User(command)),
            Command::Token { opts, command } => (opts, ClientCommand::Token(command)),
            other => return Err(Box::new(other)),
        })
    }
}

/// Resolves the settings, then runs one client subcommand.
pub async fn run(opts: ClientOpts, command: ClientCommand) -> Result<()> {
    let settings = settings::Settings::resolve(&opts)?;
    let token = settings.token.as_deref().ok_or_else(|| {
        Error::Config(
            "no API token: pass --token, set BIGMGR_TOKEN, or put token = \"…\" in the client \
             config file (~/.config/bigmgr/client.toml); the admin token is the file \
             admin-token in the server's data directory"
                .into(),
        )
    })?;
    let client = bigmgr_client::Client::new(
        &settings.server,
        Some(token),
        REQUEST_TIMEOUT,
        settings.ca.as_deref(),
    )?;
    let out = output::Output { json: opts.json };
    match command {
        ClientCommand::Cluster(c) => resources::cluster(&client, out, c).await,
        ClientCommand::Host(c) => resources::host(&client, out, c).await,
        ClientCommand::Stack(c) => resources::stack(&client, out, c).await,
        ClientCommand::Service(c) => resources::service(&client, out, c).await,
        ClientCommand::Job(c) => jobs::job(&client, out, c).await,
        ClientCommand::Config(c) => configs::config(&client, out, c).await,
        ClientCommand::Unit(c) => configs::unit(&client, out, c).await,
        ClientCommand::Relation(c) => configs::relation(&client, out, c).await,
        ClientCommand::Advise(a) => advise::advise(&client, out, a).await,
        ClientCommand::Plan(a) => spec::plan(&client, out, a).await,
        ClientCommand::Apply(a) => spec::apply(&client, out, a).await,
        ClientCommand::Export(a) => spec::export(&client, out, a).await,
        ClientCommand::Alert(c) => alerts::alert(&client, out, c).await,
        ClientCommand::Ask(a) => ask::ask(&client, out, a).await,
        ClientCommand::Assistant(c) => assistant::assistant(&client, out, c).await,
        ClientCommand::Pipeline(c) => pipelines::pipeline(&client, out, c).await,
        ClientCommand::User(c) => resources::user(&client, out, c).await,
        ClientCommand::Token(c) => resources::token(&client, out, c).await,
    }
}
