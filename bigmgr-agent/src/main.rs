//! `bigmgr-agent`: the per-host daemon. It reads its settings ([`config`]), then runs
//! [`bigmgr_core::grpc::run_agent`] with the process executor until SIGINT or SIGTERM: it dials
//! the server, joins with the cluster's join token the first time (keeping the credential it
//! gets under its root, and, from a TLS server, the client certificate it presents from then
//! on and renews on its own), and runs the tasks the server sends.
//!
//! Exit codes: 0 after a signal, 2 when the server refuses the agent or a setting is wrong
//! (retrying cannot help), 1 for anything else.

mod config;

use bigmgr_core::agent::ProcessExecutor;
use bigmgr_core::grpc::run_agent;
use config::{Args, Command, Settings};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// Everything that stops the agent.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// A setting is missing or malformed.
    #[error("{0}")]
    Config(String),
    /// The signal handlers could not be installed.
    #[error("cannot listen for signals: {0}")]
    Signal(#[source] std::io::Error),
    /// bigmgr-core failed, or the server refused the agent.
    #[error(transparent)]
    Core(#[from] bigmgr_core::Error),
}

fn main() -> ExitCode {
    let argv: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let parsed = argv
        .map_err(|bad| format!("the argument {bad:?} is not UTF-8"))
        .and_then(|argv| {
            // A variable that is not UTF-8 is read lossily, so the setting's own check names it
            // rather than the agent acting as if it were unset.
            Args::parse(argv, |var| {
                std::env::var_os(var).map(|v| v.to_string_lossy().into_owned())
            })
        });
    let args = match parsed {
        Ok(Command::Run(args)) => *args,
        Ok(Command::Help) => {
            print!("{}", config::help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("bigmgr-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bigmgr-agent: {e}\n\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bigmgr-agent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bigmgr-agent: {e}");
            match e {
                Error::Config(_) | Error::Core(bigmgr_core::Error::Refused(_)) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let settings = Settings::from_args(&args).map_err(Error::Config)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let shutdown = async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "stopping");
    };
    tracing::info!(
        server = %settings.client.server,
        name = %settings.client.agent.name,
        address = %settings.client.agent.address,
        root = %settings.client.agent.root.display(),
        "starting bigmgr-agent {}",
        env!("CARGO_PKG_VERSION")
    );
    run_agent(settings.client, Arc::new(ProcessExecutor), shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Logs to stderr; the filter comes from `BIGMGR_LOG`, else `RUST_LOG`, else `info`: a level,
/// or `target=level` pairs separated by commas (`info,bigmgr_core::grpc=debug`). It is a plain
/// target filter rather than the server's `EnvFilter`, whose span and field matching would put
/// a regex engine into every host's agent (docs/performance.md §3).
fn init_logging() {
    let spec = ["BIGMGR_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "info".into());
    let filter = spec.parse::<Targets>().unwrap_or_else(|e| {
        eprintln!("bigmgr-agent: ignoring the log filter '{spec}': {e}; logging at info");
        Targets::new().with_default(LevelFilter::INFO)
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
}
