//! The agent's settings, from flags, `BIGMGR_*` environment variables and a TOML file (named by
//! `--config` or `BIGMGR_AGENT_CONFIG`), with the precedence flag > environment > file > default.
//! Relative paths in the file are relative to the file's directory.

use bigmgr_core::agent::AgentConfig;
use bigmgr_core::duration::parse_duration;
use bigmgr_core::grpc::AgentClientConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the agent keeps its ledger, credential, scripts, units and task runs by default.
pub const DEFAULT_ROOT: &str = "/var/lib/bigmgr-agent";

/// The agent's flags, each also read from its environment variable or the config file. A
/// table read by a small parser of its own rather than clap: the agent runs on every host,
/// and its code is most of its resident memory (docs/performance.md §3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// See [`FLAGS`]: `--server`.
    pub server: Option<String>,
    /// `--join-token`.
    pub join_token: Option<String>,
    /// `--ca-fingerprint`.
    pub ca_fingerprint: Option<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `--address`.
    pub address: Option<String>,
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `--grace`.
    #[serde(default, deserialize_with = "bigmgr_core::duration::deserialize_opt")]
    pub grace: Option<Duration>,
    /// `--metrics-cgroup`.
    pub metrics_cgroup: Option<String>,
    /// `--config`.
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// A flag: `--{long} <{value}>`, or its environment variable `env`.
pub struct Flag {
    /// The flag's name, without its dashes.
    pub long: &'static str,
    /// The environment variable that sets it when the flag is not given.
    pub env: &'static str,
    /// What its value is, in the help.
    pub value: &'static str,
    /// Its help (wrapped lines).
    pub help: &'static str,
}

/// Every flag, in the order `--help` shows them.
pub const FLAGS: [Flag; 9] = [
    Flag {
        long: "server",
        env: "BIGMGR_SERVER",
        value: "URL[,URL…]",
        help: "The server's URL, e.g. https://bigmgr.example:7070; for several replicas, their URLs
separated by commas (the agent holds its stream to the leader)",
    },
    Flag {
        long: "join-token",
        env: "BIGMGR_JOIN_TOKEN",
        value: "TOKEN",
        help: "The cluster's join token (bmj_…), needed until the agent holds a credential",
    },
    Flag {
        long: "ca-fingerprint",
        env: "BIGMGR_CA_FINGERPRINT",
        value: "SHA256",
        help: "The fingerprint of the server's CA (sha256:…, from `bigmgr cluster join-token`): the
agent refuses an https:// server whose certificate chain lacks it, before sending anything.
Kept with the credential once joined",
    },
    Flag {
        long: "name",
        env: "BIGMGR_NAME",
        value: "NAME",
        help: "The host name this agent serves, unique on the server [default: the system host name]",
    },
    Flag {
        long: "address",
        env: "BIGMGR_ADDRESS",
        value: "IP",
        help:
            "The address the host's services bind to and other hosts reach it at: an IP address or
a DNS host name. A host keeps the address it was added or joined with: a different one given
later is reported to the server, which keeps it aside until an admin accepts it
(`bigmgr host set-address`)",
    },
    Flag {
        long: "root",
        env: "BIGMGR_ROOT",
        value: "DIR",
        help: "The agent's directory: ledger, credential, scripts, units, task runs.
One agent per root: an agent started on a root another agent holds (its `agent.lock`) logs the
holder's pid and waits until that agent stops [default: /var/lib/bigmgr-agent]",
    },
    Flag {
        long: "grace",
        env: "BIGMGR_GRACE",
        value: "DURATION",
        help: "Between SIGTERM and SIGKILL when a task is canceled or times out [default: 5s]",
    },
    Flag {
        long: "metrics-cgroup",
        env: "BIGMGR_METRICS_CGROUP",
        value: "PATH",
        help: "A control group whose CPU and memory the heartbeats report instead of the machine's,
as /proc/self/cgroup names it (/bigmgr/h2): for a host that shares its machine (a container, a
slice), so placement by load sees its own load. cgroup v2 or v1 (cpuacct)",
    },
    Flag {
        long: "config",
        env: "BIGMGR_AGENT_CONFIG",
        value: "FILE",
        help:
            "A TOML file with any of the settings above (server, join_token, ca_fingerprint, name,
address, root, grace, metrics_cgroup)",
    },
];

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run with these flags and variables.
    Run(Box<Args>),
    /// Print [`help`].
    Help,
    /// Print the version.
    Version,
}

impl Args {
    /// Reads the command line (`args`, without the program's name), then fills what it did
    /// not give from the environment (`env`; an empty variable counts as unset). An unknown
    /// flag, a flag without its value and a malformed duration are errors that say so; a flag
    /// given twice keeps its last value.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Command, String> {
        let mut given: Vec<Option<String>> = vec![None; FLAGS.len()];
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                _ => {}
            }
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument '{arg}'"));
            };
            let (long, inline) = match flag.split_once('=') {
                Some((long, value)) => (long, Some(value.to_owned())),
                None => (flag, None),
            };
            let Some(i) = FLAGS.iter().position(|f| f.long == long) else {
                return Err(format!("unexpected argument '--{long}'"));
            };
            // A flag right after a flag is not its value (`--server --name h1`).
            let value = match inline.or_else(|| args.next().filter(|v| !v.starts_with("--"))) {
                Some(v) => v,
                None => {
                    return Err(format!(
                        "--{long} needs a value: --{long} <{}>",
                        FLAGS[i].value
                    ));
                }
            };
            given[i] = Some(value);
        }
        let mut out = Args::default();
        for (flag, value) in FLAGS.iter().zip(given) {
            let value = value.or_else(|| env(flag.env).filter(|v| !v.is_empty()));
            if let Some(v) = value {
                out.set(flag.long, v)?;
            }
        }
        Ok(Command::Run(Box::new(out)))
    }

    /// Sets the setting of flag `long` from its text.
    fn set(&mut self, long: &str, v: String) -> Result<(), String> {
        match long {
            "server" => self.server = Some(v),
            "join-token" => self.join_token = Some(v),
            "ca-fingerprint" => self.ca_fingerprint = Some(v),
            "name" => self.name = Some(v),
            "address" => self.address = Some(v),
            "root" => self.root = Some(v.into()),
            "grace" => {
                let d = parse_duration(&v)
                    .map_err(|e| format!("invalid value '{v}' for --grace <DURATION>: {e}"))?;
                self.grace = Some(d);
            }
            "metrics-cgroup" => self.metrics_cgroup = Some(v),
            "config" => self.config = Some(v.into()),
            other => unreachable!("--{other} is in FLAGS but has no setting"),
        }
        Ok(())
    }
}

/// `bigmgr-agent --help`: what the agent is, and every flag with its variable. Values of the
/// environment are not shown (a join token may be among them).
pub fn help() -> String {
    let mut out = String::from(
        "bigmgr-agent: runs the tasks a bigmgr server sends to this host.\n\n\
         Every flag can also be set by its environment variable or in the TOML file named by\n\
         --config; flags win over variables, variables over the file.\n\n\
         Usage: bigmgr-agent [OPTIONS]\n\nOptions:\n",
    );
    for f in &FLAGS {
        out.push_str(&format!("      --{} <{}>\n", f.long, f.value));
        for line in f.help.lines() {
            out.push_str(&format!("          {line}\n"));
        }
        out.push_str(&format!("          [env: {}]\n\n", f.env));
    }
    out.push_str(
        "  -h, --help\n          Print help\n\n  -V, --version\n          Print version\n",
    );
    out
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

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Command, String> {
        Args::parse(args.iter().map(|a| a.to_string()), |k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn flags_in_both_forms_beat_their_variables() {
        let env = [
            ("BIGMGR_SERVER", "http://env:1"),
            ("BIGMGR_NAME", "from-env"),
            ("BIGMGR_GRACE", "2s"),
            ("BIGMGR_ROOT", ""),
        ];
        let got = parse(
            &["--server", "http://flag:1", "--root=/r", "--grace=250ms"],
            &env,
        );
        assert_eq!(
            got,
            Ok(Command::Run(Box::new(Args {
                server: Some("http://flag:1".into()),
                name: Some("from-env".into()),
                root: Some("/r".into()),
                grace: Some(Duration::from_millis(250)),
                ..Args::default()
            })))
        );
        let Ok(Command::Run(args)) = parse(&[], &env) else {
            panic!("no flags: the variables");
        };
        assert_eq!(
            (args.grace, args.root),
            (Some(Duration::from_secs(2)), None),
            "an empty variable is unset"
        );
        assert_eq!(parse(&["--version"], &[]), Ok(Command::Version));
        assert_eq!(parse(&["--name", "h", "-h"], &[]), Ok(Command::Help));
    }

    #[test]
    fn a_wrong_command_line_says_what_is_wrong() {
        for (args, want) in [
            (&["--sever", "x"][..], "unexpected argument '--sever'"),
            (&["serve"][..], "unexpected argument 'serve'"),
            (&["--server"][..], "--server needs a value"),
            (&["--server", "--name", "h1"][..], "--server needs a value"),
            (&["--grace", "5"][..], "invalid value '5' for --grace"),
        ] {
            let e = parse(args, &[]).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn every_flag_has_a_setting_and_its_help_and_variable() {
        let text = help();
        for f in &FLAGS {
            let mut args = Args::default();
            args.set(f.long, "1s".into()).unwrap();
            assert_ne!(args, Args::default(), "--{} sets nothing", f.long);
            assert!(
                text.contains(&format!("--{} <{}>", f.long, f.value)),
                "{text}"
            );
            assert!(text.contains(&format!("[env: {}]", f.env)), "{text}");
        }
    }
}
