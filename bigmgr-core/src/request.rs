//! The bodies of changes frontends send: what the REST API reads and the typed client writes,
//! each refusing unknown fields. (`AddService`, `ConfigChange` and `Relate` live with the
//! Manager operations that take them.)

use crate::auth::Role;
use crate::model::{JobOptions, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The body of `POST /clusters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateCluster {
    /// The new cluster's name: 1-63 letters, digits, `-`, `_` or `.`, starting with a letter
    /// or digit.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::name::name_schema))]
    pub name: String,
}

/// The body of `POST /clusters/{cluster}/hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddHost {
    /// The host name, unique on the server; its agent must use the same `--name`: 1-63
    /// letters, digits, `-`, `_` or `.`, starting with a letter or digit.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::name::name_schema))]
    pub name: String,
    /// The address its services bind to and other hosts reach it at: an IP address or a DNS
    /// host name (RFC 1123).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9.:-]{1,253}$"))]
    pub address: String,
}

/// The body of `PATCH /clusters/{cluster}/hosts/{host}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateHost {
    /// The new address: an IP address or a DNS host name. To accept the address the host's
    /// agent reported, give its `reported_address`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9.:-]{1,253}$"))]
    pub address: String,
}

/// The body of `POST /clusters/{cluster}/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// `install`, `configure`, `start`, `stop`, `restart`, `status`, `check`, `remove`,
    /// `deploy`, or a custom command of the stack.
    pub command: String,
    /// `"cluster"`, `{"service": "zk"}`, `{"component": {"service", "component"}}`,
    /// `{"hosts": [..]}` or `{"units": [..]}`.
    pub target: Target,
    /// Parallelism, batches, failure tolerance, pipelining.
    #[serde(default)]
    pub options: JobOptions,
}

/// The body of `POST …/configs/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version to go back to.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub to: u32,
    /// Why; default "rollback to version N".
    #[serde(default)]
    pub message: Option<String>,
}

/// The body of `POST /clusters/{cluster}/restart-stale`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RestartStaleBody {
    /// Only this service instance's units; all services if left out.
    #[serde(default)]
    pub service: Option<String>,
    /// How the jobs run; default one unit at a time (rolling).
    #[serde(default)]
    pub options: Option<JobOptions>,
}

impl RestartStaleBody {
    /// The stale units of `service` (all services' if `None`), one at a time.
    pub fn of(service: Option<&str>) -> RestartStaleBody {
        RestartStaleBody {
            service: service.map(str::to_owned),
            options: None,
        }
    }
}

/// The body of `POST …/services/{service}/units`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddUnitsBody {
    /// The component to place.
    pub component: String,
    /// The hosts to place it on, by name.
    pub hosts: Vec<String>,
}

/// The body of `POST /clusters/{cluster}/snapshots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SnapshotBody {
    /// Its name, unique in the cluster.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::name::name_schema))]
    pub name: String,
    /// Why.
    #[serde(default)]
    pub message: String,
}

/// The body of `POST /users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The user name.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::name::name_schema))]
    pub name: String,
    /// A password (8 characters or more) for `POST /login`; without one the user signs in
    /// with API tokens only.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: Option<String>,
    /// What the user may do.
    pub role: Role,
}

/// The body of `POST /users/{user}/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label saying what the token is for.
    pub name: String,
}

/// The body of `POST /login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user name.
    pub name: String,
    /// The password.
    pub password: String,
}

/// The body of `POST /clusters/{cluster}/maintenance`: one host or one service, until a time
/// or for a while.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartMaintenance {
    /// The host to put in maintenance (its alerts and its units'), or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// the service instance to put in maintenance (its alerts and its units').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// How long from now (`2h`, `30m`; at most 30 days), or
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// when it ends (ms since the epoch, in the future, within 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Why (one line, at most 500 characters).
    #[serde(default)]
    pub reason: String,
}

/// The body of `PUT /clusters/{cluster}/services/{service}/healing`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetHealing {
    /// Restart the service's STARTED units that are down (false: off).
    pub restart: bool,
    /// How long a unit must be down before the first restart (`30s`, 5 s to 1 day); default
    /// what it was, or 30 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<String>,
    /// At most this many restarts of one unit an hour, 1 to 60; default what it was, or 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_hour: Option<u32>,
}

/// The body of `PUT /assistant/providers/{name}`: how to reach an OpenAI-compatible
/// chat-completions endpoint. Its `Debug` never shows the key.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetProvider {
    /// The base URL of its OpenAI-compatible API (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1` for Ollama, `http://host:8000/v1` for vLLM).
    pub base_url: String,
    /// The model to ask for.
    pub model: String,
    /// The API key: written, never read back. Left out, the stored one is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Whether it is the default provider.
    #[serde(default)]
    pub default: bool,
    /// How long one answer may take (1 000 to 600 000 ms; default 120 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl std::fmt::Debug for SetProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetProvider")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "********"))
            .field("default", &self.default)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// The body of `POST /assistant/threads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateThread {
    /// The cluster the thread is about.
    pub cluster: String,
    /// Its title; default "about <cluster>".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The body of `POST /assistant/threads/{thread}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Ask {
    /// The question.
    pub content: String,
    /// The provider to ask; default the default provider (or the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// `POST /clusters/{cluster}/plan` and `…/apply`: a cluster spec (TOML, docs/spec.md).
#[derive(Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SpecBody {
    /// The spec's text.
    pub spec: String,
    /// Also remove what the cluster has and the spec does not name: its services, units
    /// (stopped first) and relations; never hosts. Without it they are kept.
    #[serde(default)]
    pub prune: bool,
    /// The values of the spec's secret references, by reference: `env:NAME` for
    /// `{ env = "NAME" }`, `file:PATH` for `{ file = "PATH" }` (the CLI and Python read them
    /// where they run). At most 1000, each at most 64 KiB.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for SpecBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecBody")
            .field("spec", &self.spec)
            .field("prune", &self.prune)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The body of `POST /clusters/{cluster}/hosts/bootstrap`: machines the server logs in to
/// over SSH to install and start the agent, which then joins the cluster. Give exactly one of
/// `ssh_key` and `ssh_password`; neither is stored or returned (`Debug` hides them too).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BootstrapHosts {
    /// The machines, each becoming a host of the cluster (1–1000).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub hosts: Vec<BootstrapHost>,
    /// The user to log in as (default `root`).
    #[serde(default = "default_ssh_user")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[a-z_][a-z0-9_-]{0,31}$"))]
    pub ssh_user: String,
    /// The SSH port of every machine that does not give its own (default 22).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 65535))]
    pub ssh_port: Option<u16>,
    /// A private key in OpenSSH format.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 65536))]
    pub ssh_key: Option<String>,
    /// The private key's passphrase, if it has one.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub ssh_key_passphrase: Option<String>,
    /// A password, instead of a key.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub ssh_password: Option<String>,
    /// Replace an agent already running on a machine (else such a machine is left alone).
    #[serde(default)]
    pub upgrade: bool,
    /// The directory on each machine for the agent's binary, config, log and root (default
    /// `/opt/bigmgr-agent`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 512))]
    pub prefix: Option<String>,
    /// The URL the agents reach this server at (default: the one this request reached it at).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub server: Option<String>,
}

fn default_ssh_user() -> String {
    "root".into()
}

impl std::fmt::Debug for BootstrapHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "********");
        f.debug_struct("BootstrapHosts")
            .field("hosts", &self.hosts)
            .field("ssh_user", &self.ssh_user)
            .field("ssh_port", &self.ssh_port)
            .field("ssh_key", &hidden(&self.ssh_key))
            .field("ssh_key_passphrase", &hidden(&self.ssh_key_passphrase))
            .field("ssh_password", &hidden(&self.ssh_password))
            .field("upgrade", &self.upgrade)
            .field("prefix", &self.prefix)
            .field("server", &self.server)
            .finish()
    }
}

/// One machine of a [`BootstrapHosts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BootstrapHost {
    /// Its host name in the cluster (the agent joins under it).
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::name::name_schema))]
    pub name: String,
    /// The address to log in at, which also becomes the host's address: an IP address or a
    /// DNS host name.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9.:-]{1,253}$"))]
    pub address: String,
    /// Its SSH port, if not the request's.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 65535))]
    pub ssh_port: Option<u16>,
    /// Its SSH host key's fingerprint as OpenSSH prints it (`SHA256:…`): only that key is
    /// accepted. Left out, the key recorded at the host's last bootstrap is required, or —
    /// for a host never bootstrapped — the key shown is trusted on first use and recorded.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^SHA256:[A-Za-z0-9+/]{43}$"))]
    pub host_key: Option<String>,
    /// Its directory for the agent, if not the request's `prefix` (machines laid out
    /// differently).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 512))]
    pub prefix: Option<String>,
}

/// The body of `POST /clusters/{cluster}/pipelines`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreatePipeline {
    /// The pipeline's definition (TOML, docs/pipelines.md); its `name` names the pipeline.
    /// At most 256 KiB (a longer one is a 422; a request body over 1 MiB a 413, as for every
    /// route).
    pub definition: String,
}

/// The body of `POST /clusters/{cluster}/pipelines/{pipeline}/scale`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScalePipeline {
    /// A non-blocking unit of the pipeline.
    #[cfg_attr(feature = "openapi", schema(max_length = 63))]
    pub unit: String,
    /// Its replicas from now on, 1 to 64.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 64))]
    pub replicas: u32,
}
