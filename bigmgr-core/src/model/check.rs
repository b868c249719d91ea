//! Checks agents run for alert definitions of their units (port, web, script): what the
//! server asks for, rendered for one unit, and what one run found.

use serde::{Deserialize, Serialize};

/// What the text of a result starts with when the check could not run at all (it could not
/// be rendered): its alert is UNKNOWN.
pub const CANNOT_CHECK: &str = "cannot check: ";

/// One check of one unit, as the server renders it for the unit's agent (in the task context
/// under `checks`, kept in the unit's record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSpec {
    /// The alert definition (`redis.port`).
    pub name: String,
    /// How often it runs (ms).
    pub interval_ms: u64,
    /// How long one run may take (ms).
    pub timeout_ms: u64,
    /// What it does.
    pub probe: Probe,
}

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Probe {
    /// Connect over TCP to `address:port`.
    Port {
        /// The unit's address.
        address: String,
        /// The port.
        port: u16,
    },
    /// GET `url`; any answer is a result, `expect_status` says which is good.
    Web {
        /// The URL.
        url: String,
        /// The status expected.
        expect_status: u16,
    },
    /// Run the unit's script with `command`.
    Script {
        /// The command (the script's first argument).
        command: String,
    },
    /// The server could not render it (a template over a value that is missing); the agent
    /// reports the message, as UNKNOWN.
    Invalid {
        /// Why.
        message: String,
    },
}

/// What one run of a check found, as an agent reports it with its heartbeat. The server turns
/// it into the alert's state with the definition's thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The cluster name.
    pub cluster: String,
    /// The service instance name.
    pub service: String,
    /// The component name.
    pub component: String,
    /// The alert definition.
    pub name: String,
    /// It connected (port), got the expected status (web) or exited 0 (script).
    pub ok: bool,
    /// How long it took (ms).
    pub latency_ms: u64,
    /// The script's exit code (script), if it exited.
    pub exit_code: Option<i32>,
    /// The HTTP status (web), if one came.
    pub http_status: Option<u16>,
    /// What it said: the script's first line, the error, the answer.
    pub text: String,
    /// When it ran (ms since the epoch).
    pub checked_at: i64,
}
