//! Structured logs to stderr with tracing: the filter comes from `BIGMGR_LOG`, else `RUST_LOG`,
//! else `info`.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The filter used when neither variable is set.
pub const DEFAULT_FILTER: &str = "info";

/// Installs the global subscriber. A filter that does not parse is reported and replaced by the
/// default rather than stopping the server.
pub fn init() {
    let (var, spec) = ["BIGMGR_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|var| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (var, v))
        })
        .unwrap_or(("default", DEFAULT_FILTER.to_string()));
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("bigmgr: ignoring {var}={spec}: {e}; logging at {DEFAULT_FILTER}");
        EnvFilter::new(DEFAULT_FILTER)
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
