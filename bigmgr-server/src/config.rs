//! The server's settings, from command-line flags, `BIGMGR_*` environment variables and a TOML
//! file, with the precedence flag > environment > file > default.
//!
//! Flags and variables are read by clap ([`ServeArgs`]); the file ([`FileConfig`], named by
//! `--config` or `BIGMGR_CONFIG`) fills in what neither gave; [`ServeConfig::resolve`] merges
//! them and applies the defaults. Relative paths in the file are relative to the file's
//! directory, so a config file works from any working directory.

use crate::error::IoError;
use crate::{Error, Result};
use bigmgr_core::EngineConfig;
use bigmgr_core::duration::parse_duration;
use bigmgr_core::grpc::GrpcSettings;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default listen address: loopback only, so a first start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// The default data directory.
pub const DEFAULT_DATA: &str = "./bigmgr-data";
/// The file in the data directory that holds the SQLite store.
pub const DB_FILE: &str = "bigmgr.db";
/// Where packages install the shipped stacks.
pub const SYSTEM_STACKS: &str = "/usr/share/bigmgr/stacks";

/// `bigmgr serve`'s flags; each can also come from its `BIGMGR_*` variable or the config file,
/// which holds the same settings as TOML keys ([`FileConfig`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// Address to serve the REST API and the agents' gRPC on [default: 127.0.0.1:7070]
    #[arg(long, env = "BIGMGR_LISTEN", value_name = "ADDR:PORT")]
    #[serde(default, deserialize_with = "listen_addr")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite store (bigmgr.db), the admin token and the TLS files
    /// [default: ./bigmgr-data]
    #[arg(long, env = "BIGMGR_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The store: postgres://user@host:port/database (shared by every replica) or
    /// sqlite://path [default: sqlite in <data>/bigmgr.db]
    #[arg(long, env = "BIGMGR_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// How often the built-in alerts (host lost, unit down, unit stale, job failed) are
    /// evaluated [default: 5s]
    #[arg(long, env = "BIGMGR_ALERT_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "bigmgr_core::duration::deserialize_opt")]
    pub alert_interval: Option<Duration>,
    /// How long a started unit's status must fail before its unit_down alert is CRITICAL
    /// [default: 30s]
    #[arg(long, env = "BIGMGR_UNIT_DOWN_FOR", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "bigmgr_core::duration::deserialize_opt")]
    pub unit_down_for: Option<Duration>,
    /// With a PostgreSQL store: how long the engine's lease lasts without renewal; another
    /// replica takes over within it when the leader dies [default: 10s]
    #[arg(long, env = "BIGMGR_LEASE_TIME", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "bigmgr_core::duration::deserialize_opt")]
    pub lease_time: Option<Duration>,
    /// With a PostgreSQL store: the URL agents reach this replica by, which followers hand to
    /// agents [default: http(s)://<listen>]
    #[arg(long, env = "BIGMGR_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,
    /// A stack directory to search before the shipped stacks; repeat it, or separate
    /// directories with ':' in BIGMGR_STACKS
    #[arg(
        long = "stacks",
        env = "BIGMGR_STACKS",
        value_name = "DIR",
        value_delimiter = ':'
    )]
    #[serde(default)]
    pub stacks: Vec<PathBuf>,
    /// How often agents send heartbeats, 1s or more, e.g. 30s, 2m [default: 30s]
    #[arg(long, env = "BIGMGR_HEARTBEAT_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "bigmgr_core::duration::deserialize_opt")]
    pub heartbeat_interval: Option<Duration>,
    /// A host is LOST after this many heartbeat intervals without one [default: 3]
    #[arg(long, env = "BIGMGR_LOST_AFTER", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub lost_after: Option<u32>,
    /// How long a task in flight on a LOST host waits for the host to come back before it
    /// fails with its outcome unknown (never longer than the task's timeout) [default: 60s]
    #[arg(long, env = "BIGMGR_LOST_GRACE", value_name = "DURATION", value_parser = parse_duration)]
    #[serde(default, deserialize_with = "bigmgr_core::duration::deserialize_opt")]
    pub lost_grace: Option<Duration>,
    /// The directory of the bigmgr-agent executables that adding hosts over SSH copies:
    /// bigmgr-agent for this server's architecture, bigmgr-agent-<arch> (as `uname -m` prints
    /// it) for others [default: the directory of this bigmgr]
    #[arg(long, env = "BIGMGR_AGENT_DIR", value_name = "DIR")]
    #[serde(default)]
    pub agent_dir: Option<PathBuf>,
    /// The server's certificate chain (PEM, ending with the CA agents pin) instead of the one it
    /// makes in <data>/tls
    #[arg(
        long,
        env = "BIGMGR_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(
        long,
        env = "BIGMGR_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// A name (DNS name or IP address) agents and clients reach the server by, for the
    /// certificate it makes; repeat it [default: the listen address, 127.0.0.1, localhost and
    /// the host's name]
    #[arg(
        long = "tls-name",
        env = "BIGMGR_TLS_NAMES",
        value_name = "NAME",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub tls_names: Vec<String>,
    /// How long the certificates the server issues to agents are valid; agents renew theirs
    /// with a third left [default: 30d]. Hidden: for tests, which use seconds
    #[arg(long, env = "BIGMGR_AGENT_CERT_VALIDITY", value_name = "DURATION", value_parser = parse_duration, hide = true)]
    #[serde(default, deserialize_with = "bigmgr_core::duration::deserialize_opt")]
    pub agent_cert_validity: Option<Duration>,
    /// Serve plain HTTP and h2c: join tokens, credentials, API tokens and secret config values
    /// cross the network readable by anyone on it. Only for a trusted network or tests
    #[arg(long, env = "BIGMGR_INSECURE_HTTP")]
    #[serde(default)]
    pub insecure_http: bool,
    /// A TOML file with any of the settings above (listen, data, store, stacks, heartbeat_interval,
    /// lost_after, lost_grace, tls_cert, tls_key, tls_names, insecure_http, agent_dir); flags
    /// and environment variables override it
    #[arg(long, env = "BIGMGR_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// The names of the certificate the server makes: the listen address (unless it is a
/// wildcard), 127.0.0.1, localhost, the host's name, and the operator's `extra`, once each.
pub fn tls_names(listen: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    names.extend(["127.0.0.1".to_string(), "localhost".to_string()]);
    if let Ok(h) = nix::unistd::gethostname()
        && let Some(h) = h.to_str()
        && !h.is_empty()
    {
        names.push(h.to_string());
    }
    names.extend(
        extra
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
    );
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// The settings a TOML config file may hold: the flags of `bigmgr serve` but `config`, as keys;
/// every key is optional, unknown keys are errors.
///
/// ```toml
/// listen = "0.0.0.0:7070"
/// data = "/var/lib/bigmgr"
/// stacks = ["/etc/bigmgr/stacks"]
/// heartbeat_interval = "30s"
/// lost_after = 3
/// lost_grace = "60s"
/// ```
pub type FileConfig = ServeArgs;

/// Reads `listen` from a config file, saying what an address looks like if it is not one.
fn listen_addr<'de, D>(d: D) -> std::result::Result<Option<SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    Option::<String>::deserialize(d)?
        .map(|text| {
            text.parse().map_err(|_| {
                D::Error::custom(format!(
                    "listen = \"{text}\" is not an ADDR:PORT such as 127.0.0.1:7070"
                ))
            })
        })
        .transpose()
}

impl FileConfig {
    /// Reads and parses a config file; errors name the file and the offending key.
    pub fn load(path: &Path) -> Result<FileConfig> {
        load_toml(path, "config file", Error::Config)
    }
}

/// Reads and parses the TOML file `path`; `what` names it in the error of a malformed one,
/// which `config` makes (the server's and the client's config files are both read so).
pub fn load_toml<T, E>(path: &Path, what: &str, config: impl FnOnce(String) -> E) -> Result<T, E>
where
    T: serde::de::DeserializeOwned,
    E: From<IoError>,
{
    let text = std::fs::read_to_string(path).map_err(|e| IoError::new(path, e))?;
    toml::from_str(&text).map_err(|e| config(format!("{what} {}: {e}", path.display())))
}

/// The server's resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Where REST and gRPC are served.
    pub listen: SocketAddr,
    /// The data directory (SQLite store, admin token, TLS files).
    pub data: PathBuf,
    /// The store's url, if not the SQLite file in `data`.
    pub store: Option<String>,
    /// On a PostgreSQL store: how this server takes part as a replica.
    pub replica: Option<bigmgr_core::ReplicaSettings>,
    /// How the built-in alerts are evaluated.
    pub alerts: bigmgr_core::AlertSettings,
    /// The operator's stack directories, searched in order before [`ServeConfig::shipped_stacks`].
    pub stacks: Vec<PathBuf>,
    /// The stacks that ship with bigmgr (see [`shipped_stacks`]).
    pub shipped_stacks: PathBuf,
    /// The agent protocol's timings.
    pub grpc: GrpcSettings,
    /// How long a task on a LOST host waits for it (the engine's `lost_grace`).
    pub lost_grace: Duration,
    /// How it speaks to agents and clients.
    pub tls: TlsMode,
    /// Where the bigmgr-agent executables that adding hosts over SSH copies are (see
    /// [`agent_dir`]).
    pub agent_dir: PathBuf,
}

/// Transport security of `bigmgr serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS with the server's own CA and certificate (made in `<data>/tls`) for these names.
    Own {
        /// Names agents and clients reach it by.
        names: Vec<String>,
    },
    /// TLS with the operator's certificate chain and key.
    Files {
        /// The chain (PEM).
        cert: PathBuf,
        /// Its key (PEM).
        key: PathBuf,
    },
    /// Plain HTTP and h2c (`--insecure-http`).
    Insecure,
}

impl ServeConfig {
    /// Reads the config file that `args` names (if any) and merges it with `args`.
    pub fn from_args(args: &ServeArgs) -> Result<ServeConfig> {
        let file = match &args.config {
            Some(path) => Some((path.as_path(), FileConfig::load(path)?)),
            None => None,
        };
        ServeConfig::resolve(args, file)
    }

    /// Merges flags and environment (`args`, already merged by clap) over a config file (with
    /// its path, against which its relative paths resolve) over the defaults.
    pub fn resolve(args: &ServeArgs, file: Option<(&Path, FileConfig)>) -> Result<ServeConfig> {
        let (base, file) = match file {
            Some((path, file)) => (
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
                file,
            ),
            None => (PathBuf::new(), FileConfig::default()),
        };
        let listen = args.listen.or(file.listen).unwrap_or_else(|| {
            DEFAULT_LISTEN
                .parse()
                .expect("the default listen address parses")
        });
        let data = match (&args.data, &file.data) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => base.join(dir),
            (None, None) => PathBuf::from(DEFAULT_DATA),
        };
        let store = args.store.clone().or(file.store.clone());
        if let Some(url) = &store {
            bigmgr_core::database::Engine::of_url(url).map_err(|e| Error::Config(e.to_string()))?;
        }
        let stacks = if args.stacks.is_empty() {
            file.stacks.iter().map(|d| base.join(d)).collect()
        } else {
            args.stacks.clone()
        };
        let defaults = GrpcSettings::default();
        let heartbeat_interval = args
            .heartbeat_interval
            .or(file.heartbeat_interval)
            .unwrap_or(defaults.heartbeat_interval);
        if heartbeat_interval < Duration::from_secs(1) {
            return Err(Error::Config(format!(
                "a heartbeat interval of {heartbeat_interval:?} is too short; use 1s or more"
            )));
        }
        let lost_after = args
            .lost_after
            .or(file.lost_after)
            .unwrap_or(defaults.lost_after);
        if lost_after == 0 {
            return Err(Error::Config(
                "lost_after must be 1 or more heartbeat intervals".into(),
            ));
        }
        let agent_cert_validity = args
            .agent_cert_validity
            .or(file.agent_cert_validity)
            .unwrap_or(defaults.agent_cert_validity);
        if agent_cert_validity < Duration::from_secs(5) {
            return Err(Error::Config(format!(
                "an agent certificate validity of {agent_cert_validity:?} is too short; use 5s \
                 or more (agents renew theirs with a third left)"
            )));
        }
        let lost_grace = args
            .lost_grace
            .or(file.lost_grace)
            .unwrap_or(EngineConfig::default().lost_grace);
        let tls = if args.insecure_http || file.insecure_http {
            TlsMode::Insecure
        } else {
            match (
                args.tls_cert
                    .clone()
                    .or(file.tls_cert.map(|p| base.join(p))),
                args.tls_key.clone().or(file.tls_key.map(|p| base.join(p))),
            ) {
                (Some(cert), Some(key)) => TlsMode::Files { cert, key },
                (None, None) => {
                    let extra = if args.tls_names.is_empty() {
                        file.tls_names.clone()
                    } else {
                        args.tls_names.clone()
                    };
                    TlsMode::Own {
                        names: tls_names(listen, &extra),
                    }
                }
                _ => {
                    return Err(Error::Config(
                        "tls_cert and tls_key go together: give both, or neither for the server's own certificate".into(),
                    ));
                }
            }
        };
        let replica = match &store {
            Some(url)
                if bigmgr_core::database::Engine::of_url(url).ok()
                    == Some(bigmgr_core::database::Engine::Postgres) =>
            {
                let lease_time = args
                    .lease_time
                    .or(file.lease_time)
                    .unwrap_or(Duration::from_secs(10));
                if lease_time < Duration::from_secs(1) {
                    return Err(Error::Config(format!(
                        "a lease time of {lease_time:?} is too short; use 1s or more"
                    )));
                }
                let scheme = if matches!(tls, TlsMode::Insecure) {
                    "http"
                } else {
                    "https"
                };
                let url = args
                    .advertise_url
                    .clone()
                    .or(file.advertise_url.clone())
                    .unwrap_or_else(|| format!("{scheme}://{listen}"));
                Some(bigmgr_core::ReplicaSettings { url, lease_time })
            }
            _ => None,
        };
        let defaults = bigmgr_core::AlertSettings::default();
        let alerts = bigmgr_core::AlertSettings {
            interval: args
                .alert_interval
                .or(file.alert_interval)
                .unwrap_or(defaults.interval)
                .max(Duration::from_millis(200)),
            unit_down_for: args
                .unit_down_for
                .or(file.unit_down_for)
                .unwrap_or(defaults.unit_down_for),
            ..defaults
        };
        Ok(ServeConfig {
            listen,
            data,
            store,
            replica,
            alerts,
            stacks,
            shipped_stacks: shipped_stacks(),
            grpc: GrpcSettings {
                heartbeat_interval,
                lost_after,
                agent_cert_validity,
            },
            lost_grace,
            tls,
            agent_dir: args
                .agent_dir
                .clone()
                .or(file.agent_dir.as_ref().map(|p| base.join(p)))
                .unwrap_or_else(agent_dir),
        })
    }

    /// Every stack directory, in search order: the operator's first (so they can override a
    /// shipped stack version), then the shipped ones.
    pub fn stack_roots(&self) -> Vec<PathBuf> {
        let mut roots = self.stacks.clone();
        roots.push(self.shipped_stacks.clone());
        roots
    }

    /// The SQLite store's file (when no other store is named).
    pub fn db_path(&self) -> PathBuf {
        self.data.join(DB_FILE)
    }

    /// The store's url: the one named, or the SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        self.store
            .clone()
            .unwrap_or_else(|| bigmgr_core::database::sqlite_url(&self.db_path()))
    }
}

/// The directory of the running `bigmgr`, whose `bigmgr-agent` was built (and is installed)
/// with it.
pub fn agent_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The directory of the stacks that ship with bigmgr: `BIGMGR_SHIPPED_STACKS` if set; else the
/// source tree's `stacks/` when running from a build of it; else `stacks/` beside the
/// executable; else [`SYSTEM_STACKS`].
pub fn shipped_stacks() -> PathBuf {
    if let Some(dir) = std::env::var_os("BIGMGR_SHIPPED_STACKS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let source_tree = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks"));
    if source_tree.is_dir() {
        return source_tree
            .canonicalize()
            .unwrap_or_else(|_| source_tree.to_path_buf());
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("stacks")))
        .filter(|d| d.is_dir())
    {
        return dir;
    }
    PathBuf::from(SYSTEM_STACKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let c = ServeConfig::resolve(&ServeArgs::default(), None).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data, PathBuf::from(DEFAULT_DATA));
        assert!(c.stacks.is_empty());
        assert_eq!(c.grpc, GrpcSettings::default());
        assert_eq!(c.lost_grace, Duration::from_secs(60));
        assert_eq!(c.stack_roots(), vec![c.shipped_stacks.clone()]);
    }

    #[test]
    fn the_file_fills_in_and_flags_win() {
        let f = file(
            r#"
            listen = "127.0.0.1:9000"
            data = "state"
            stacks = ["mine", "/abs/theirs"]
            heartbeat_interval = "1500ms"
            lost_after = 5
            lost_grace = "2m"
            "#,
        );
        let path = Path::new("/etc/bigmgr/bigmgr.toml");
        let c = ServeConfig::resolve(&ServeArgs::default(), Some((path, f.clone()))).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.data, PathBuf::from("/etc/bigmgr/state"));
        assert_eq!(
            c.stacks,
            vec![
                PathBuf::from("/etc/bigmgr/mine"),
                PathBuf::from("/abs/theirs")
            ]
        );
        assert_eq!(c.grpc.heartbeat_interval, Duration::from_millis(1500));
        assert_eq!(c.grpc.lost_after, 5);
        assert_eq!(c.lost_grace, Duration::from_secs(120));

        let args = ServeArgs {
            listen: Some("127.0.0.1:9001".parse().unwrap()),
            data: Some("flagdata".into()),
            stacks: vec!["flagstacks".into()],
            heartbeat_interval: Some(Duration::from_secs(2)),
            lost_after: Some(2),
            lost_grace: Some(Duration::from_secs(5)),
            tls_names: vec!["bigmgr.example".into()],
            ..ServeArgs::default()
        };
        let c = ServeConfig::resolve(&args, Some((path, f.clone()))).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(c.data, PathBuf::from("flagdata"));
        assert_eq!(c.stacks, vec![PathBuf::from("flagstacks")]);
        assert_eq!(c.grpc.heartbeat_interval, Duration::from_secs(2));
        assert_eq!(c.grpc.lost_after, 2);
        assert_eq!(c.lost_grace, Duration::from_secs(5));
        assert_eq!(c.stack_roots().len(), 2);
        // TLS by default, with the listen address and the extra name in the certificate;
        // the operator's files, or plain HTTP only when asked for.
        match &c.tls {
            TlsMode::Own { names } => {
                assert_eq!(names[0], "127.0.0.1");
                assert!(names.contains(&"localhost".to_string()), "{names:?}");
                assert!(names.contains(&"bigmgr.example".to_string()), "{names:?}");
            }
            other => panic!("{other:?}"),
        }
        let files = ServeArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..ServeArgs::default()
        };
        assert_eq!(
            ServeConfig::resolve(&files, None).unwrap().tls,
            TlsMode::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
        let plain = ServeArgs {
            insecure_http: true,
            ..ServeArgs::default()
        };
        assert_eq!(
            ServeConfig::resolve(&plain, None).unwrap().tls,
            TlsMode::Insecure
        );
        let half = ServeArgs {
            tls_cert: Some("c.pem".into()),
            ..ServeArgs::default()
        };
        assert!(ServeConfig::resolve(&half, None).is_err());
    }

    #[test]
    fn bad_file_values_name_the_key() {
        let bad = |text: &str| toml::from_str::<FileConfig>(text).unwrap_err().to_string();
        let e = bad(r#"listen = "nowhere""#);
        assert!(
            e.contains("listen = \"nowhere\"") && e.contains("ADDR:PORT"),
            "{e}"
        );
        let e = bad(r#"heartbeat_interval = "30""#);
        assert!(e.contains("heartbeat_interval"), "{e}");
        let e = ServeConfig::resolve(
            &ServeArgs::default(),
            Some((Path::new("b.toml"), file(r#"heartbeat_interval = "500ms""#))),
        )
        .unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
        let validity = |args: &ServeArgs| ServeConfig::resolve(args, None);
        let short = ServeArgs {
            agent_cert_validity: Some(Duration::from_secs(4)),
            ..ServeArgs::default()
        };
        let e = validity(&short).unwrap_err().to_string();
        assert!(
            e.contains("agent certificate validity") && e.contains("5s"),
            "{e}"
        );
        let tested = ServeArgs {
            agent_cert_validity: Some(Duration::from_secs(9)),
            ..ServeArgs::default()
        };
        let c = validity(&tested).unwrap();
        assert_eq!(c.grpc.agent_cert_validity, Duration::from_secs(9));
        assert!(bad("listn = \"x\"").contains("unknown field `listn`"));
        // `config` is a flag only: a file cannot name another file.
        assert!(bad("config = \"x.toml\"").contains("unknown field `config`"));
    }
}
