//! The agent's settings, from flags, `BIGMGR_*` environment variables and a TOML file (named by
//! `--config` or `BIGMGR_AGENT_CONFIG`), with the precedence flag > environment > file > default.
//! Relative paths in the file are relative to the file's directory.

use bigmgr_core::agent::AgentConfig;
use bigmgr_core::duration::parse_duration;
use bigmgr_core::grpc::AgentClientConfig;
use clap::Parser;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the agent keeps its ledger, credential, scripts, units and task runs by default.
pub const DEFAULT_ROOT: &str = "/var/lib/bigmgr-agent";

/// bigmgr-agent: runs the tasks a bigmgr server sends to this host.
///
/// Every flag can also be set by its environment variable or in the TOML file named by
/// --config; flags win over variables, variables over the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Parser, Deserialize)]
#[command(name = "bigmgr-agent", version)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The server's URL, e.g. https://bigmgr.example:7070; for several replicas, their URLs
    /// separated by commas (the agent holds its stream to the leader)
    #[arg(long, env = "BIGMGR_SERVER", value_name = "URL[,URL…]")]
    pub server: Option<String>,
    /// The cluster's join token (bmj_…), needed until the agent holds a credential
    #[arg(
        long,
        env = "BIGMGR_JOIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub join_token: Option<String>,
    /// The fingerprint of the server's CA (sha256:…, from `bigmgr cluster join-token`): the
    /// agent refuses an https:// server whose certificate chain lacks it, before sending
    /// anything. Kept with the credential once joined
    #[arg(long, env = "BIGMGR_CA_FINGERPRINT", value_name = "SHA256")]
    pub ca_fingerprint: Option<String>,
    /// The host name this agent serves, unique on the server [default: the system host name]
    #[arg(long, env = "BIGMGR_NAME", value_name = "NAME")]
    pub name: Option<String>,
    /// The address the host's services bind to and other hosts reach it at: an IP address or
    /// a DNS host name. A host keeps the address it was added or joined with: a different one
    /// given later is reported to the server, which keeps it aside until an admin accepts it
    /// (`bigmgr host set-address`)
    #[arg(long, env = "BIGMGR_ADDRESS", value_name = "IP")]
    pub address: Option<String>,
    /// The agent's directory: ledger, credential, scripts, units, task runs. One agent per
    /// root: an agent started on a root another agent holds (its `agent.lock`) logs the
    /// holder's pid and waits until that agent stops [default: /var/lib/bigmgr-agent]
    #[arg(long, env = "BIGMGR_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Between SIGTERM and SIGKILL when a task is canceled or times out [default: 5s]
    #[arg(long, env = "BIGMGR_GRACE", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "bigmgr_core::duration::deserialize_opt")]
    pub grace: Option<Duration>,
    /// A control group whose CPU and memory the heartbeats report instead of the machine's,
    /// as /proc/self/cgroup names it (/bigmgr/h2): for a host that shares its machine (a
    /// container, a slice), so placement by load sees its own load. cgroup v2 or v1 (cpuacct)
    #[arg(long, env = "BIGMGR_METRICS_CGROUP", value_name = "PATH")]
    pub metrics_cgroup: Option<String>,
    /// A TOML file with any of the settings above (server, join_token, ca_fingerprint, name,
    /// address, root, grace, metrics_cgroup)
    #[arg(long, env = "BIGMGR_AGENT_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// The settings a config file may hold: the same as the flags' (but `config`), written as
/// TOML keys (`grace = "5s"`); unknown keys are errors.
pub type FileConfig = Args;

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What `run_agent` needs.
    pub client: AgentClientConfig,
}

impl Settings {
    /// Reads the file `args` names, if any, and merges.
    pub fn from_args(args: &Args) -> Result<Settings, String> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let file: FileConfig = toml::from_str(&text)
                    .map_err(|e| format!("config file {}: {e}", path.display()))?;
                Some((path.as_path(), file))
            }
            None => None,
        };
        Settings::resolve(args, file, system_host_name)
    }

    /// Merges flags and environment (`args`) over a file over the defaults; `host_name` gives
    /// the default `name`.
    pub fn resolve(
        args: &Args,
        file: Option<(&Path, FileConfig)>,
        host_name: impl FnOnce() -> Result<String, String>,
    ) -> Result<Settings, String> {
        let (base, file) = match file {
            Some((path, f)) => (path.parent().map(Path::to_path_buf).unwrap_or_default(), f),
            None => (PathBuf::new(), FileConfig::default()),
        };
        let missing = |what: &str, flag: &str, var: &str, key: &str| {
            format!("{what} is not set: pass {flag} (or set {var}, or `{key}` in the config file)")
        };
        let server = args.server.clone().or(file.server).ok_or_else(|| {
            missing(
                "the server's URL",
                "--server URL",
                "BIGMGR_SERVER",
                "server",
            )
        })?;
        for one in server.split(',').map(str::trim) {
            if !(one.starts_with("http://") || one.starts_with("https://")) {
                return Err(format!(
                    "'{one}' is not a server URL; write it like http://bigmgr.example:7070 \
                     (several replicas: separated by commas)"
                ));
            }
        }
        let address = args.address.clone().or(file.address).ok_or_else(|| {
            missing(
                "the host's address",
                "--address IP",
                "BIGMGR_ADDRESS",
                "address",
            )
        })?;
        bigmgr_core::address::check_address(&address)
            .map_err(|e| format!("the host's address (--address, BIGMGR_ADDRESS): {e}"))?;
        let name = match args.name.clone().or(file.name) {
            Some(n) => n,
            None => host_name()?,
        };
        let root = match (&args.root, file.root) {
            (Some(r), _) => r.clone(),
            (None, Some(r)) => base.join(r),
            (None, None) => PathBuf::from(DEFAULT_ROOT),
        };
        let metrics_cgroup = args.metrics_cgroup.clone().or(file.metrics_cgroup);
        if let Some(cg) = &metrics_cgroup {
            bigmgr_core::agent::Sampler::new(&root)
                .with_cgroup(cg)
                .map_err(|e| format!("--metrics-cgroup (BIGMGR_METRICS_CGROUP): {e}"))?;
        }
        let mut agent = AgentConfig::new(name, address, root);
        if let Some(grace) = args.grace.or(file.grace) {
            agent.grace = grace;
        }
        Ok(Settings {
            client: AgentClientConfig {
                server,
                join_token: args.join_token.clone().or(file.join_token),
                agent,
                ca_fingerprint: args.ca_fingerprint.clone().or(file.ca_fingerprint),
                metrics_cgroup,
            },
        })
    }
}

/// The system's host name, the default `--name`.
fn system_host_name() -> Result<String, String> {
    nix::unistd::gethostname()
        .map_err(|e| format!("cannot read the host name ({e}); pass --name"))
        .map(|n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Result<String, String> {
        Ok("sysname".into())
    }

    #[test]
    fn flags_beat_the_file_and_defaults_fill_in() {
        let file: FileConfig = toml::from_str(
            r#"
            server = "http://file:7070"
            join_token = "bmj_file"
            address = "10.0.0.1"
            root = "agent"
            grace = "2s"
            "#,
        )
        .unwrap();
        let path = Path::new("/etc/bigmgr/agent.toml");
        let s = Settings::resolve(&Args::default(), Some((path, file.clone())), host).unwrap();
        assert_eq!(s.client.server, "http://file:7070");
        assert_eq!(s.client.join_token.as_deref(), Some("bmj_file"));
        assert_eq!(s.client.agent.name, "sysname");
        assert_eq!(s.client.agent.root, PathBuf::from("/etc/bigmgr/agent"));
        assert_eq!(s.client.agent.grace, Duration::from_secs(2));

        let args = Args {
            server: Some("http://flag:1".into()),
            name: Some("h1".into()),
            address: Some("127.0.0.2".into()),
            root: Some("/r".into()),
            grace: Some(Duration::from_millis(500)),
            ..Args::default()
        };
        let s = Settings::resolve(&args, Some((path, file)), host).unwrap();
        assert_eq!(s.client.server, "http://flag:1");
        assert_eq!(s.client.agent.name, "h1");
        assert_eq!(s.client.agent.address, "127.0.0.2");
        assert_eq!(s.client.agent.root, PathBuf::from("/r"));
        assert_eq!(s.client.agent.grace, Duration::from_millis(500));
    }

    #[test]
    fn missing_or_bad_settings_say_how_to_fix_them() {
        let e = Settings::resolve(&Args::default(), None, host).unwrap_err();
        assert!(e.contains("--server") && e.contains("BIGMGR_SERVER"), "{e}");
        let args = Args {
            server: Some("bigmgr:7070".into()),
            ..Args::default()
        };
        let e = Settings::resolve(&args, None, host).unwrap_err();
        assert!(e.contains("http://"), "{e}");
        let args = Args {
            server: Some("http://s:1".into()),
            ..Args::default()
        };
        let e = Settings::resolve(&args, None, host).unwrap_err();
        assert!(e.contains("--address"), "{e}");
        for bad in ["$(touch /tmp/x)", "x';id;'", "../../etc/passwd", "a b"] {
            let args = Args {
                server: Some("http://s:1".into()),
                address: Some(bad.into()),
                ..Args::default()
            };
            let e = Settings::resolve(&args, None, host).unwrap_err();
            assert!(
                e.contains("--address") && e.contains("not an address"),
                "{e}"
            );
        }
        let args = Args {
            server: Some("http://s:1".into()),
            address: Some("127.0.0.2".into()),
            ..Args::default()
        };
        let s = Settings::resolve(&args, None, host).unwrap();
        assert_eq!(s.client.agent.root, PathBuf::from(DEFAULT_ROOT));
        assert_eq!(s.client.agent.grace, Duration::from_secs(5));
        assert!(s.client.join_token.is_none());
    }

    #[test]
    fn the_file_holds_the_flags_settings_and_refuses_the_rest() {
        let e = toml::from_str::<FileConfig>(r#"grace = "5""#).unwrap_err();
        assert!(
            e.to_string().contains("grace") && e.to_string().contains("5"),
            "{e}"
        );
        // `config` is a flag only: a file cannot name another file.
        let e = toml::from_str::<FileConfig>(r#"config = "other.toml""#).unwrap_err();
        assert!(e.to_string().contains("unknown field `config`"), "{e}");
        let e = toml::from_str::<FileConfig>(r#"sever = "http://x:1""#).unwrap_err();
        assert!(e.to_string().contains("unknown field `sever`"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        for bad in ["", "5", "5x", "s5", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
