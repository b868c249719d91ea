//! The `bigmgr` command line: `bigmgr serve` and `bigmgr quickstart`.

use crate::config::{ServeArgs, ServeConfig};
use crate::quickstart::{self, QuickstartArgs};
use crate::{Result, logging, server};
use clap::{Parser, Subcommand};
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
}

/// Parses the command line, sets up logging and a runtime, and runs the subcommand. Errors are
/// printed as `bigmgr: <error>`; the exit code is 2 for configuration errors, 1 for others.
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
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bigmgr: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one subcommand.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => server::serve(ServeConfig::from_args(&args)?).await,
        Command::Quickstart(args) => quickstart::run(args).await,
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
}
