//! Stacks: versioned sets of service definitions, the [`StackProvider`] trait that lists and
//! loads them, and the directory provider that reads `stacks/<stack>/<version>/<service>/`.
//!
//! The manifest format (`service.toml`) is described in `docs/stacks.md`; [`manifest`] parses
//! it and [`validate`] checks a whole stack.

pub mod advice;
pub mod alerts;
pub mod dir;
pub mod manifest;
pub mod software;
pub mod validate;

pub use advice::AdviceRule;
pub use alerts::{AlertAdvice, AlertCheck, AlertDef, Metric};
pub use dir::DirStackProvider;
pub use software::SoftwareSource;

use crate::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The standard commands every server component has (clients lack start, stop, restart, status).
pub const STANDARD_COMMANDS: &[&str] = &[
    "install",
    "configure",
    "start",
    "stop",
    "restart",
    "status",
    "check",
    "remove",
];

/// The commands a client component does not have.
pub const SERVER_ONLY_COMMANDS: &[&str] = &["start", "stop", "restart", "status"];

/// The default timeout of a command whose manifest gives none (docs/design.md §6).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A stack's name and version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StackRef {
    /// The stack name (`bigtop`).
    pub name: String,
    /// The stack version (`1.0.0`).
    pub version: String,
}

/// A loaded, validated stack.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The stack name.
    pub name: String,
    /// The stack version.
    pub version: String,
    /// Its service definitions by name.
    pub services: BTreeMap<String, Arc<ServiceDef>>,
}

impl Stack {
    /// The service definition of that name, or a NotFound error naming the stack.
    pub fn service(&self, name: &str) -> Result<&Arc<ServiceDef>> {
        self.services.get(name).ok_or_else(|| {
            crate::Error::not_found(
                "service",
                format!("{name} (in stack {} {})", self.name, self.version),
            )
        })
    }

    /// Every ordering rule of every service of the stack.
    pub fn order_rules(&self) -> impl Iterator<Item = &OrderRule> {
        self.services.values().flat_map(|s| s.order.iter())
    }
}

/// One service definition, as read from its manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    /// Its name (`zookeeper`).
    pub name: String,
    /// The version of the software it deploys.
    pub version: String,
    /// One paragraph for operators.
    pub description: String,
    /// The directory it was read from; scripts and templates are relative to it.
    pub dir: PathBuf,
    /// Its components, in manifest order.
    pub components: Vec<ComponentDef>,
    /// Its config types.
    pub configs: Vec<ConfigType>,
    /// Its ordering rules (which may name components of other services of the stack).
    pub order: Vec<OrderRule>,
    /// Relation endpoints it provides.
    pub provides: Vec<Endpoint>,
    /// Relation endpoints it requires.
    pub requires: Vec<Endpoint>,
    /// Peer relation endpoints among its own units.
    pub peers: Vec<Endpoint>,
    /// Ports its components listen on.
    pub ports: Vec<PortDef>,
    /// The alerts it declares (`[[alert]]`).
    pub alerts: Vec<AlertDef>,
    /// The log diagnoses it teaches the advisor (`[[advice]]`).
    pub advice: Vec<AdviceRule>,
    /// Where its software comes from (`[[software]]`); their values are the defaults of the
    /// config type [`software::CONFIG_TYPE`] core adds to `configs`.
    pub software: Vec<SoftwareSource>,
}

impl ServiceDef {
    /// The component of that name, or a NotFound error naming the service.
    pub fn component(&self, name: &str) -> Result<&ComponentDef> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                crate::Error::not_found("component", format!("{name} (in service {})", self.name))
            })
    }
}

/// Server components run daemons; client components only install files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// A daemon: start, stop, status apply.
    Server,
    /// Libraries and configs only: no start, stop, status.
    Client,
}

/// How many units of a component a service instance may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cardinality {
    /// Exactly n (`"3"`).
    Exactly(u32),
    /// n or more (`"1+"`, `"0+"`).
    AtLeast(u32),
    /// Between min and max inclusive (`"1-2"`).
    Range(u32, u32),
}

impl Cardinality {
    /// True if `n` units satisfy it.
    pub fn allows(self, n: usize) -> bool {
        let n = n as u64;
        match self {
            Cardinality::Exactly(k) => n == k as u64,
            Cardinality::AtLeast(k) => n >= k as u64,
            Cardinality::Range(a, b) => n >= a as u64 && n <= b as u64,
        }
    }
}

impl std::fmt::Display for Cardinality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cardinality::Exactly(k) => write!(f, "{k}"),
            Cardinality::AtLeast(k) => write!(f, "{k}+"),
            Cardinality::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl std::str::FromStr for Cardinality {
    type Err = String;

    /// Parses `3`, `1+`, `0+`, `1-2`; the error says which forms are allowed.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || {
            format!(
                "'{s}' is not a cardinality; use a count (`3`), a minimum (`1+`) or a range (`1-2`)"
            )
        };
        let s = s.trim();
        if let Some(min) = s.strip_suffix('+') {
            return min.parse().map(Cardinality::AtLeast).map_err(|_| bad());
        }
        if let Some((a, b)) = s.split_once('-') {
            let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a > b {
                return Err(format!(
                    "'{s}' is not a cardinality: the minimum {a} is above the maximum {b}"
                ));
            }
            return Ok(Cardinality::Range(a, b));
        }
        s.parse().map(Cardinality::Exactly).map_err(|_| bad())
    }
}

/// A component of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentDef {
    /// Its name (`zookeeper_server`), unique in the stack.
    pub name: String,
    /// Server or client.
    pub category: Category,
    /// How many units a service instance may have.
    pub cardinality: Cardinality,
    /// The commands it supports, by name: the standard ones for its category plus custom ones.
    pub commands: BTreeMap<String, CommandDef>,
}

impl ComponentDef {
    /// The command of that name, if the component supports it.
    pub fn command(&self, name: &str) -> Option<&CommandDef> {
        self.commands.get(name)
    }
}

/// One command of a component.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandDef {
    /// Its name (`start`, or a custom one).
    pub name: String,
    /// The script that runs it (absolute path; it gets the command as `argv[1]`).
    pub script: PathBuf,
    /// How long it may run before it is killed.
    pub timeout: Duration,
    /// How often a failure of the script itself is retried (0: never).
    pub retries: u32,
    /// Run on one unit of the service only (a service check), not on every unit.
    pub once: bool,
    /// A run lost with its host (the agent came back, but neither the script's process nor
    /// its exit status survived) is run again as a new attempt, up to three times, instead of
    /// failing with an unknown outcome. Default: true for the standard commands (idempotent by
    /// the stack contract), false for custom ones (docs/engine.md, "Lost hosts").
    pub rerun_if_lost: bool,
}

/// A type a config property's values must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PropertyType {
    /// Any text.
    String,
    /// A whole number.
    Int,
    /// A number.
    Float,
    /// true or false.
    Bool,
    /// A TCP/UDP port, 1–65535.
    Port,
    /// A host address: an IP address or a DNS host name ([`crate::address::check_address`]).
    Address,
}

impl PropertyType {
    /// Checks a JSON value against this type; returns it as the templates will see it, or why
    /// it does not fit. Strings are single-line: no control characters but tab (a newline
    /// would add a line to a daemon's config file, a NUL cut a shell variable short), at most
    /// [`MAX_STRING_LEN`] bytes; addresses follow [`crate::address::check_address`].
    pub fn check(self, v: &serde_json::Value) -> std::result::Result<serde_json::Value, String> {
        use serde_json::Value;
        match (self, v) {
            (PropertyType::String, Value::String(s)) => {
                if s.len() > MAX_STRING_LEN {
                    return Err(format!(
                        "the string has {} bytes; at most {MAX_STRING_LEN} are allowed",
                        s.len()
                    ));
                }
                if let Some(c) = s.chars().find(|c| c.is_control() && *c != '\t') {
                    return Err(format!(
                        "the string contains the control character {c:?}; config strings are \
                         one line of text (no newlines, carriage returns or NULs)"
                    ));
                }
            }
            (PropertyType::Address, Value::String(s)) => {
                crate::address::check_address(s)?;
            }
            _ => {}
        }
        let fits = match (self, v) {
            (PropertyType::Address, Value::String(_)) => true,
            (PropertyType::String, Value::String(_)) => true,
            (PropertyType::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (PropertyType::Float, Value::Number(_)) => true,
            (PropertyType::Bool, Value::Bool(_)) => true,
            (PropertyType::Port, Value::Number(n)) => {
                n.as_u64().is_some_and(|p| (1..=65535).contains(&p))
            }
            _ => false,
        };
        if fits {
            Ok(v.clone())
        } else {
            let needs = match self {
                PropertyType::String => "a string",
                PropertyType::Int => "a whole number (e.g. 2000)",
                PropertyType::Float => "a number (e.g. 0.75)",
                PropertyType::Bool => "true or false",
                PropertyType::Port => "a port number 1-65535",
                PropertyType::Address => "an IP address or a DNS host name, as a string",
            };
            // The value itself is not repeated: it may be a secret.
            let got = match v {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "an object",
            };
            Err(format!("got {got}, but it needs {needs}"))
        }
    }
}

/// The longest string a config property takes, in bytes.
pub const MAX_STRING_LEN: usize = 64 * 1024;

/// One property of a config type.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDef {
    /// Its name, as templates see it.
    pub name: String,
    /// The type its values must have.
    pub kind: PropertyType,
    /// Its default value, of that type.
    pub default: Option<serde_json::Value>,
    /// What it means.
    pub description: String,
    /// A value must be given (by default or by the operator).
    pub required: bool,
    /// Never returned by the API nor written to logs.
    pub secret: bool,
}

/// One config type: typed properties and a Handlebars template rendered to a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigType {
    /// Its name (`zoo.cfg`).
    pub name: String,
    /// The template source (Handlebars), already read and parsed once at load.
    pub template: String,
    /// The template file it came from.
    pub template_file: PathBuf,
    /// Where the rendered file goes, relative to the unit directory.
    pub path: String,
    /// Who reads the rendered file: a shell-format template passed [`crate::shell::check_template`].
    pub format: ConfigFormat,
    /// Its properties.
    pub properties: Vec<PropertyDef>,
    /// The components whose units render it and see its properties (`components = […]`);
    /// empty: every component. A change to it makes only those units stale.
    pub components: Vec<String>,
}

impl ConfigType {
    /// Whether units of `component` render this config and see its properties.
    pub fn applies_to(&self, component: &str) -> bool {
        self.components.is_empty() || self.components.iter().any(|c| c == component)
    }
}

/// Who reads a rendered config file, which decides how values must be quoted in its template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigFormat {
    /// A daemon's own config format (`zoo.cfg`, `redis.conf`, YAML …); values are written as
    /// they are (strings are single-line, see [`PropertyType::check`]).
    Text,
    /// A file a shell sources (`*.env`, `*.sh`): every value must be `{{shell_quote …}}` as an
    /// assignment's value ([`crate::shell`]); the stack is refused at load otherwise.
    Shell,
}

impl ConfigFormat {
    /// The format a config's path implies: `.sh`, `.env` and `.bash` files are read by shells.
    pub fn implied_by(path: &str) -> ConfigFormat {
        let name = path.rsplit('/').next().unwrap_or(path);
        if [".sh", ".env", ".bash"]
            .iter()
            .any(|ext| name.ends_with(ext))
            || name == ".env"
        {
            ConfigFormat::Shell
        } else {
            ConfigFormat::Text
        }
    }
}

/// An ordering rule: `blocked` waits for every one of `after` (Bigtop Manager's `order.json`:
/// `"B-START": ["A-START"]` makes B's start wait for A's start).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderRule {
    /// The waiting component and command.
    pub blocked: RoleCommand,
    /// What it waits for.
    pub after: Vec<RoleCommand>,
}

/// A component and a command, written `COMPONENT-COMMAND` in rules (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleCommand {
    /// The component name, lower case.
    pub component: String,
    /// The command name, lower case.
    pub command: String,
}

impl std::fmt::Display for RoleCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.component.to_uppercase(),
            self.command.to_uppercase()
        )
    }
}

impl std::str::FromStr for RoleCommand {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.rsplit_once('-') {
            Some((c, cmd)) if !c.is_empty() && !cmd.is_empty() => Ok(RoleCommand {
                component: c.to_lowercase(),
                command: cmd.to_lowercase(),
            }),
            _ => Err(format!(
                "'{s}' is not of the form COMPONENT-COMMAND (e.g. ZOOKEEPER_SERVER-START)"
            )),
        }
    }
}

/// A relation endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The endpoint name (`metrics`).
    pub name: String,
    /// The interface both ends must share (`prometheus-scrape`).
    pub interface: String,
    /// The components whose units take part; empty means every component of the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
}

/// A port a component listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortDef {
    /// Its name (`client`).
    pub name: String,
    /// The port number.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The component that listens, if only one does.
    pub component: Option<String>,
}

/// Lists and loads stack definitions. Object-safe; the default is [`DirStackProvider`].
#[async_trait]
pub trait StackProvider: Send + Sync + 'static {
    /// Every stack it offers.
    async fn list(&self) -> Result<Vec<StackRef>>;
    /// One stack, loaded and validated; `version: None` means the newest version.
    async fn stack(&self, name: &str, version: Option<&str>) -> Result<Arc<Stack>>;
}

/// Checks config values against a service definition: known config types and properties,
/// values of the property's type. The error names the first misfit and what would fit.
pub fn check_configs(def: &ServiceDef, configs: &crate::model::ServiceConfigs) -> Result<()> {
    for (ty, props) in configs {
        let ct = named(
            &def.configs,
            ty,
            |c| &c.name,
            || format!("service {} has no config type '{ty}'", def.name),
        )?;
        for (name, value) in props {
            let p = named(
                &ct.properties,
                name,
                |p| &p.name,
                || {
                    format!(
                        "config type {ty} of service {} has no property '{name}'",
                        def.name
                    )
                },
            )?;
            p.kind.check(value).map_err(|why| {
                let message = format!("config {ty}: property {name}: {why}");
                crate::Error::invalid_field(format!("configs.{ty}.{name}"), message)
            })?;
        }
    }
    Ok(())
}

/// The item of `items` whose `key` is `name`; if there is none, an error saying what is
/// `missing` and listing the names there are.
fn named<'a, T>(
    items: &'a [T],
    name: &str,
    key: impl Fn(&T) -> &String,
    missing: impl FnOnce() -> String,
) -> Result<&'a T> {
    items.iter().find(|i| key(i) == name).ok_or_else(|| {
        let known: Vec<&str> = items.iter().map(|i| key(i).as_str()).collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        crate::Error::Invalid(format!("{}; it has: {known}", missing()))
    })
}
