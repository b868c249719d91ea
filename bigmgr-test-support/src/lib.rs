//! What the integration tests and benchmarks of every bigmgr crate share: real `bigmgr serve`
//! and `bigmgr-agent` processes ([`ServerProc`], [`AgentProc`]) on free loopback ports, each
//! killed by pid when dropped, also when a test fails (an agent's drop also kills the daemons
//! its scripts left, by the pid files under `<root>/units`); a REST client ([`Api`]) that sends
//! the admin token; polling ([`wait_until`]); and small helpers for files and benchmarks.
//!
//! The binaries are found in the target directory the test runs from ([`target_dir`]), so a
//! crate other than `bigmgr-server` must have them built first: `cargo build -p bigmgr-server
//! --bin bigmgr -p bigmgr-agent --bin bigmgr-agent` (`cargo test --workspace` does).

/// `arg` and `env`, the same on every command builder (a struct with `args` and `env`).
macro_rules! args_and_env {
    ($builder:ty) => {
        impl $builder {
            /// One more argument.
            pub fn arg(mut self, a: impl Into<String>) -> Self {
                self.args.push(a.into());
                self
            }

            /// One more environment variable (a later one wins over an earlier one, and over
            /// the harness's `BIGMGR_LOG`).
            pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
                self.env.push((k.into(), v.into()));
                self
            }
        }
    };
}

mod agent;
mod api;
mod assert;
pub mod bench;
mod bins;
mod cgroups;
mod daemons;
mod fs;
mod json;
mod net;
mod postgres;
mod process;
pub mod procs;
mod server;
mod sse;
mod sshd;
mod wait;

pub use agent::{AgentCmd, AgentProc};
pub use api::{Api, Resp, http_client_trusting, install_crypto};
pub use assert::assert_contains;
pub use bins::{agent_bin, bigmgr_bin, bin, software_cache, stacks_dir, target_dir};
pub use cgroups::Slices;
pub use daemons::{DaemonGuard, kill_daemons};
pub use fs::{copy_dir, temp_file, write_executable};
pub use json::named;
pub use net::{free_addr, free_addrs, free_port};
pub use postgres::{DEFAULT_POSTGRES, PgSchema, postgres_base_url};
pub use process::{EXIT_TIMEOUT, Lines, Proc, status_kib};
pub use server::{READY_TIMEOUT, ServerCmd, ServerProc};
pub use sse::{EventReader, read_events};
pub use sshd::{SshKey, Sshd};
pub use wait::{wait_for_port, wait_until};
