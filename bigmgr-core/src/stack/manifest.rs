//! The service manifest (`service.toml`): its serde form and its conversion to a [`super::ServiceDef`].
//!
//! [`load_service`] reads one service directory and checks everything that can be checked
//! from that directory alone: TOML syntax, unknown fields, names, cardinalities, categories,
//! timeouts, ports, property defaults, duplicates, scripts and templates. Checks that need the
//! whole stack (order rules naming other services' components, cycles) live in
//! [`super::validate`]. The format is documented in `docs/stacks.md`.

use super::{
    Cardinality, Category, CommandDef, ComponentDef, ConfigFormat, ConfigType, DEFAULT_TIMEOUT,
    Endpoint, OrderRule, PortDef, PropertyDef, PropertyType, RoleCommand, SERVER_ONLY_COMMANDS,
    STANDARD_COMMANDS, ServiceDef,
};
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// The file name of a service manifest inside its service directory.
pub const MANIFEST_FILE: &str = "service.toml";

/// The default timeout of the `status` command, which must answer quickly.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(60);

/// The whole `service.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    service: RawService,
    #[serde(default)]
    component: Vec<RawComponent>,
    #[serde(default)]
    config: Vec<RawConfig>,
    #[serde(default)]
    order: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    provides: Vec<RawEndpoint>,
    #[serde(default)]
    requires: Vec<RawEndpoint>,
    #[serde(default)]
    peers: Vec<RawEndpoint>,
    #[serde(default)]
    port: Vec<RawPort>,
    #[serde(default)]
    alert: Vec<super::alerts::RawAlert>,
    #[serde(default)]
    advice: Vec<super::advice::RawAdvice>,
    #[serde(default)]
    software: Vec<super::software::RawSoftware>,
}

/// `[service]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
}

/// A string or an integer: cardinalities (`"1+"` or `3`) and timeouts (`"5m"` or `300`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StrOrInt {
    Int(i64),
    Str(String),
}

/// `[[component]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    name: String,
    category: String,
    cardinality: StrOrInt,
    script: Option<String>,
    #[serde(default)]
    commands: BTreeMap<String, RawCommand>,
}

/// `[component.commands.<name>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    timeout: Option<StrOrInt>,
    retries: Option<u32>,
    script: Option<String>,
    once: Option<bool>,
    rerun_if_lost: Option<bool>,
}

/// `[[config]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: String,
    template: String,
    path: String,
    format: Option<String>,
    #[serde(default)]
    components: Vec<String>,
    #[serde(default)]
    property: Vec<RawProperty>,
}

/// `[[config.property]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProperty {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    default: Option<toml::Value>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

/// `[[provides]]`, `[[requires]]`, `[[peers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    name: String,
    interface: String,
    #[serde(default)]
    components: Vec<String>,
}

/// `[[port]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: String,
    port: i64,
    protocol: Option<String>,
    component: Option<String>,
}

/// Converts every entry of a list of the manifest, each with its index (for the field paths of
/// its errors); the first error stops it.
fn convert_each<R, T>(raw: &[R], convert: impl FnMut(usize, &R) -> Result<T>) -> Result<Vec<T>> {
    let mut convert = convert;
    raw.iter().enumerate().map(|(i, r)| convert(i, r)).collect()
}

/// Builds [`Error::Manifest`]s for one file.
struct Ctx<'a> {
    file: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Manifest {
            file: self.file.to_path_buf(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Records the `name` of entry `i` of the list `what` (`component`, `config`, `port`) in
    /// `seen`, refusing one already there (at `what[i].name`; see [`Ctx::unique`]).
    fn once<'n>(
        &self,
        seen: &mut HashSet<&'n str>,
        what: &str,
        i: usize,
        name: &'n str,
    ) -> Result<()> {
        self.unique(seen, format!("{what}[{i}].name"), what, name, "")
    }

    /// Records the `name` of a `what` declared at `field` in `seen`, refusing one already
    /// there: "{what} '{name}' is declared twice{within}; names must be unique".
    fn unique<'n>(
        &self,
        seen: &mut HashSet<&'n str>,
        field: impl Into<String>,
        what: &str,
        name: &'n str,
        within: &str,
    ) -> Result<()> {
        if seen.insert(name) {
            return Ok(());
        }
        let message = format!("{what} '{name}' is declared twice{within}; names must be unique");
        Err(self.err(field, message))
    }
}

/// Reads `dir/service.toml` and the scripts and templates it names, checks everything local
/// to that directory, and returns the service definition.
///
/// Every problem is an [`Error::Manifest`] naming the manifest file, the dotted field
/// (`component[1].cardinality`, `config[0].property[2].default`, `-` for the whole file) and
/// what is wrong; a directory or manifest that cannot be read is an [`Error::Io`].
pub fn load_service(dir: &Path) -> Result<ServiceDef> {
    let canonical = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    // The name as the stack lays it out (a symlinked service directory keeps its link's name).
    let dir_name = dir
        .file_name()
        .or(canonical.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let file = canonical.join(MANIFEST_FILE);
    let src = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let cx = Ctx { file: &file };
    let raw = parse_manifest(&cx, &src)?;
    convert(&cx, &canonical, &dir_name, raw)
}

/// Parses the TOML text, mapping syntax errors to field `-` and structural errors (unknown
/// fields, wrong types, missing fields) to the dotted path of the offending key.
fn parse_manifest(cx: &Ctx<'_>, src: &str) -> Result<RawManifest> {
    let doc = toml::de::DeTable::parse(src).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" (at {})", line_col(src, s.start)))
            .unwrap_or_default();
        cx.err(
            "-",
            format!("not valid TOML: {}{at}", e.message().trim_end()),
        )
    })?;
    toml::from_str::<RawManifest>(src).map_err(|e| {
        let (field, at) = match e.span() {
            Some(span) => {
                let path = locate(doc.get_ref(), span.start);
                let field = if path.is_empty() { "-".into() } else { path };
                (field, format!(" (at {})", line_col(src, span.start)))
            }
            None => ("-".into(), String::new()),
        };
        let mut message = e.message().trim_end().to_string();
        if message.starts_with("data did not match any variant of untagged enum StrOrInt") {
            message = "expected a string or an integer".into();
        }
        cx.err(field, format!("{message}{at}"))
    })
}

/// `line L, column C` (both 1-based) of a byte offset.
fn line_col(src: &str, offset: usize) -> String {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {col}")
}

/// The dotted path (`component[1].commands.start.timeout`) of the deepest key of a TOML
/// document that encloses byte offset `pos`, or the empty string if none does (for other
/// TOML files core reads, such as cluster specs).
pub(crate) fn locate_path(table: &toml::de::DeTable<'_>, pos: usize) -> String {
    locate(table, pos)
}

/// The dotted path (`component[1].commands.start.timeout`) of the deepest key that encloses
/// byte offset `pos`, or the empty string if none does.
fn locate(table: &toml::de::DeTable<'_>, pos: usize) -> String {
    let mut path = String::new();
    locate_in_table(table, pos, &mut path);
    path
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if bare {
        path.push_str(key);
    } else {
        path.push_str(&format!("{key:?}"));
    }
}

fn contains(span: &std::ops::Range<usize>, pos: usize) -> bool {
    span.start <= pos && pos < span.end.max(span.start + 1)
}

fn locate_in_table(table: &toml::de::DeTable<'_>, pos: usize, path: &mut String) -> bool {
    // A key or a value that covers `pos` exactly.
    for (k, v) in table.iter() {
        if contains(&k.span(), pos) {
            push_key(path, k.get_ref());
            return true;
        }
        if contains(&v.span(), pos) {
            push_key(path, k.get_ref());
            locate_in_value(v.get_ref(), pos, path);
            return true;
        }
    }
    // Otherwise descend into the sub-table (or array of tables) that holds a key near `pos`:
    // headers such as `[[component]]` do not always have a span covering their body.
    let mut best: Option<(usize, &str, &toml::de::DeValue<'_>)> = None;
    for (k, v) in table.iter() {
        let start = first_start(v.get_ref()).unwrap_or(k.span().start);
        if start <= pos && best.is_none_or(|(b, _, _)| start > b) {
            best = Some((start, k.get_ref(), v.get_ref()));
        }
    }
    match best {
        Some((_, key, value)) if value.is_table() || value.is_array() => {
            push_key(path, key);
            locate_in_value(value, pos, path);
            true
        }
        _ => false,
    }
}

fn locate_in_value(value: &toml::de::DeValue<'_>, pos: usize, path: &mut String) {
    if let Some(t) = value.as_table() {
        locate_in_table(t, pos, path);
    } else if let Some(a) = value.as_array() {
        let mut best: Option<(usize, usize)> = None;
        for (i, item) in a.iter().enumerate() {
            let start =
                first_start(item.get_ref()).map_or(item.span().start, |s| s.min(item.span().start));
            if contains(&item.span(), pos) {
                best = Some((i, start));
                break;
            }
            if start <= pos && best.is_none_or(|(_, b)| start >= b) {
                best = Some((i, start));
            }
        }
        if let Some((i, _)) = best {
            path.push_str(&format!("[{i}]"));
            locate_in_value(a[i].get_ref(), pos, path);
        }
    }
}

/// The smallest key offset inside a table or array of tables.
fn first_start(value: &toml::de::DeValue<'_>) -> Option<usize> {
    if let Some(t) = value.as_table() {
        t.iter()
            .flat_map(|(k, v)| [Some(k.span().start), first_start(v.get_ref())])
            .flatten()
            .min()
    } else if let Some(a) = value.as_array() {
        a.iter()
            .filter_map(|i| first_start(i.get_ref()).or(Some(i.span().start)))
            .min()
    } else {
        None
    }
}

fn check_name(cx: &Ctx<'_>, field: &str, what: &str, name: &str) -> Result<()> {
    if crate::name::is_identifier(name) {
        Ok(())
    } else {
        Err(cx.err(
            field,
            format!(
                "{what} name '{name}' is not allowed; use lower-case letters, digits and '_', \
                 starting with a letter (e.g. zookeeper_server)"
            ),
        ))
    }
}

/// Parses a command timeout: a duration (`"90s"`, `"5m"`, `"1h"`, `"1m30s"`, see
/// [`crate::duration`]), or a number of seconds. Zero and negative timeouts are refused; the
/// error says which forms are allowed.
pub fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let parsed = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse().ok().map(Duration::from_secs)
    } else {
        crate::duration::parse_duration(t).ok()
    };
    match parsed {
        None => Err(format!(
            "'{s}' is not a timeout; use seconds (`90` or `\"90s\"`), minutes (`\"5m\"`) \
             or hours (`\"1h\"`)"
        )),
        Some(d) if d.is_zero() => Err(format!("timeout '{s}' must be above zero")),
        Some(d) => Ok(d),
    }
}

/// True if `p` is a non-empty relative path without `..` components.
fn is_safe_relative(p: &str) -> bool {
    let path = Path::new(p);
    !p.trim().is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn convert(cx: &Ctx<'_>, dir: &Path, dir_name: &str, raw: RawManifest) -> Result<ServiceDef> {
    // [service]
    check_name(cx, "service.name", "service", &raw.service.name)?;
    if raw.service.name != dir_name {
        return Err(cx.err(
            "service.name",
            format!(
                "the service is named '{}' but its directory is '{dir_name}'; \
                 they must be equal (rename one of them)",
                raw.service.name
            ),
        ));
    }
    if raw.service.version.trim().is_empty() {
        return Err(cx.err(
            "service.version",
            "the software version is empty; give the version the scripts deploy (e.g. \"3.8.4\")",
        ));
    }

    let components = convert_each(&raw.component, |i, c| convert_component(cx, dir, i, c))?;
    if components.is_empty() {
        return Err(cx.err(
            "component",
            "the service has no components; declare at least one [[component]]",
        ));
    }
    let mut seen = HashSet::new();
    for (i, c) in components.iter().enumerate() {
        cx.once(&mut seen, "component", i, &c.name)?;
    }

    let mut configs = convert_each(&raw.config, |i, c| convert_config(cx, dir, i, c))?;
    let software = super::software::convert_software(cx.file, &raw.software)?;
    if let Some(i) = configs.iter().position(|c| {
        c.name == super::software::CONFIG_TYPE || c.path == super::software::CONFIG_PATH
    }) {
        return Err(cx.err(
            format!("config[{i}]"),
            format!(
                "the config name '{}' and the path '{}' are core's, for the service's \
                 [[software]] sources; choose another",
                super::software::CONFIG_TYPE,
                super::software::CONFIG_PATH
            ),
        ));
    }
    if !software.is_empty() {
        configs.push(super::software::config_type(cx.file, &software));
    }
    for (i, c) in configs.iter().enumerate() {
        for (j, name) in c.components.iter().enumerate() {
            if !components.iter().any(|d| &d.name == name) {
                return Err(cx.err(
                    format!("config[{i}].components[{j}]"),
                    format!(
                        "config '{}' names component '{name}', which this service does not \
                         declare; its components are: {}",
                        c.name,
                        components
                            .iter()
                            .map(|d| d.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    let mut seen = HashSet::new();
    let mut seen_paths = HashSet::new();
    for (i, c) in configs.iter().enumerate() {
        cx.once(&mut seen, "config", i, &c.name)?;
        if !seen_paths.insert(c.path.as_str()) {
            return Err(cx.err(
                format!("config[{i}].path"),
                format!(
                    "config '{}' writes to '{}', which another config already writes to",
                    c.name, c.path
                ),
            ));
        }
    }

    let mut order = Vec::with_capacity(raw.order.len());
    for (key, afters) in &raw.order {
        let field = format!("order.{key:?}");
        let blocked: RoleCommand = key.parse().map_err(|m: String| cx.err(&field, m))?;
        let after = afters
            .iter()
            .enumerate()
            .map(|(j, a)| {
                a.parse::<RoleCommand>()
                    .map_err(|m| cx.err(format!("{field}[{j}]"), m))
            })
            .collect::<Result<Vec<_>>>()?;
        order.push(OrderRule { blocked, after });
    }

    let provides = convert_endpoints(cx, "provides", &raw.provides, &components)?;
    let requires = convert_endpoints(cx, "requires", &raw.requires, &components)?;
    let peers = convert_endpoints(cx, "peers", &raw.peers, &components)?;

    let mut ports = Vec::with_capacity(raw.port.len());
    let mut seen = HashSet::new();
    for (i, p) in raw.port.iter().enumerate() {
        let field = |f: &str| format!("port[{i}].{f}");
        if p.name.trim().is_empty() {
            return Err(cx.err(field("name"), "the port name is empty"));
        }
        cx.once(&mut seen, "port", i, &p.name)?;
        let port = u16::try_from(p.port)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                cx.err(
                    field("port"),
                    format!("port {} is out of range; use 1–65535", p.port),
                )
            })?;
        let protocol = p.protocol.clone().unwrap_or_else(|| "tcp".into());
        if protocol != "tcp" && protocol != "udp" {
            return Err(cx.err(
                field("protocol"),
                format!("protocol '{protocol}' is unknown; use \"tcp\" or \"udp\""),
            ));
        }
        let unknown = p
            .component
            .as_ref()
            .filter(|c| !components.iter().any(|d| &d.name == *c));
        if let Some(c) = unknown {
            return Err(cx.err(
                field("component"),
                format!(
                    "port '{}' names component '{c}', which this service does not declare; \
                     its components are: {}",
                    p.name,
                    components
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        ports.push(PortDef {
            name: p.name.clone(),
            port,
            protocol,
            component: p.component.clone(),
        });
    }

    let alerts = super::alerts::convert_alerts(cx.file, &raw.alert, &components)?;
    let advice = super::advice::convert_advice(cx.file, &raw.advice)?;

    Ok(ServiceDef {
        alerts,
        advice,
        software,
        name: raw.service.name,
        version: raw.service.version,
        description: raw.service.description.trim().to_string(),
        dir: dir.to_path_buf(),
        components,
        configs,
        order,
        provides,
        requires,
        peers,
        ports,
    })
}

fn convert_component(cx: &Ctx<'_>, dir: &Path, i: usize, c: &RawComponent) -> Result<ComponentDef> {
    let at = |f: &str| format!("component[{i}].{f}");
    check_name(cx, &at("name"), "component", &c.name)?;
    let category = match c.category.as_str() {
        "server" => Category::Server,
        "client" => Category::Client,
        other => {
            return Err(cx.err(
                at("category"),
                format!("category '{other}' is unknown; use \"server\" or \"client\""),
            ));
        }
    };
    let cardinality: Cardinality = match &c.cardinality {
        StrOrInt::Str(s) => s.parse(),
        StrOrInt::Int(n) => n.to_string().parse(),
    }
    .map_err(|m: String| cx.err(at("cardinality"), m))?;

    // The component's own script, checked only if some command uses it.
    let (own_script, own_field) = match &c.script {
        Some(s) => (s.clone(), at("script")),
        None => (format!("scripts/{}.sh", c.name), at("script")),
    };

    let mut names: BTreeSet<&str> = STANDARD_COMMANDS.iter().copied().collect();
    if category == Category::Client {
        for s in SERVER_ONLY_COMMANDS {
            names.remove(s);
        }
    }
    for (name, _) in c.commands.iter() {
        let field = at(&format!("commands.{name}"));
        if category == Category::Client && SERVER_ONLY_COMMANDS.contains(&name.as_str()) {
            return Err(cx.err(
                field,
                format!(
                    "'{name}' is a server-only command but '{}' is a client component; \
                     clients have only {}; remove it or make the component a server",
                    c.name,
                    STANDARD_COMMANDS
                        .iter()
                        .filter(|s| !SERVER_ONLY_COMMANDS.contains(s))
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if !crate::name::is_identifier(name) {
            return Err(cx.err(
                field,
                format!(
                    "command name '{name}' is not allowed; use lower-case letters, digits and \
                     '_', starting with a letter (e.g. rebalance)"
                ),
            ));
        }
        names.insert(name.as_str());
    }

    let empty = RawCommand::default();
    let mut commands = BTreeMap::new();
    for name in names {
        let raw = c.commands.get(name).unwrap_or(&empty);
        let field = |f: &str| at(&format!("commands.{name}.{f}"));
        let timeout = match &raw.timeout {
            None if name == "status" => Ok(STATUS_TIMEOUT),
            None => Ok(DEFAULT_TIMEOUT),
            Some(StrOrInt::Str(s)) => parse_timeout(s),
            Some(StrOrInt::Int(n)) => parse_timeout(&n.to_string()),
        }
        .map_err(|m| cx.err(field("timeout"), m))?;
        let (rel, script_field, how) = match &raw.script {
            Some(s) => (s.clone(), field("script"), "the command's `script`"),
            None if c.script.is_some() => (own_script.clone(), own_field.clone(), "`script`"),
            None => (
                own_script.clone(),
                own_field.clone(),
                "the default script; set `script` to use another",
            ),
        };
        let script = resolve_file(dir, &rel).map_err(|path| {
            cx.err(
                script_field,
                format!(
                    "component '{}', command '{name}': script {} does not exist ({how})",
                    c.name,
                    path.display()
                ),
            )
        })?;
        commands.insert(
            name.to_string(),
            CommandDef {
                name: name.to_string(),
                script,
                timeout,
                retries: raw.retries.unwrap_or(0),
                once: raw.once.unwrap_or(name == "check"),
                // The standard commands are idempotent by the stack contract; a custom one
                // says so itself.
                rerun_if_lost: raw
                    .rerun_if_lost
                    .unwrap_or(STANDARD_COMMANDS.contains(&name)),
            },
        );
    }

    Ok(ComponentDef {
        name: c.name.clone(),
        category,
        cardinality,
        commands,
    })
}

/// The canonical path of `rel` under `dir` if it is an existing file, else the expected path.
fn resolve_file(dir: &Path, rel: &str) -> std::result::Result<PathBuf, PathBuf> {
    let path = dir.join(rel);
    if rel.trim().is_empty() || !path.is_file() {
        return Err(path);
    }
    path.canonicalize().map_err(|_| path)
}

fn convert_config(cx: &Ctx<'_>, dir: &Path, i: usize, c: &RawConfig) -> Result<ConfigType> {
    let at = |f: &str| format!("config[{i}].{f}");
    if c.name.trim().is_empty() {
        return Err(cx.err(at("name"), "the config name is empty (e.g. \"zoo.cfg\")"));
    }
    if !is_safe_relative(&c.path) {
        return Err(cx.err(
            at("path"),
            format!(
                "config path '{}' must be relative to the unit directory, without '..' \
                 (e.g. \"conf/zoo.cfg\")",
                c.path
            ),
        ));
    }
    let template_file = resolve_file(dir, &c.template).map_err(|path| {
        cx.err(
            at("template"),
            format!(
                "config '{}': template {} does not exist",
                c.name,
                path.display()
            ),
        )
    })?;
    let template =
        std::fs::read_to_string(&template_file).map_err(|e| Error::io(&template_file, e))?;
    let implied = ConfigFormat::implied_by(&c.path);
    let format = match c.format.as_deref() {
        None => implied,
        Some("shell") => ConfigFormat::Shell,
        Some("text") if implied == ConfigFormat::Shell => {
            return Err(cx.err(
                at("format"),
                format!(
                    "config '{}' goes to {}, which shells read (*.sh, *.env): its format is \
                     \"shell\" (remove format = \"text\")",
                    c.name, c.path
                ),
            ));
        }
        Some("text") => ConfigFormat::Text,
        Some(other) => {
            return Err(cx.err(
                at("format"),
                format!("format '{other}' is unknown; use \"shell\" (a file a shell sources) or \"text\""),
            ));
        }
    };
    if let Err(e) = handlebars::Template::compile(&template) {
        let pos = e
            .pos()
            .map(|(l, c)| format!(" at line {l}, column {c}"))
            .unwrap_or_default();
        return Err(cx.err(
            at("template"),
            format!(
                "config '{}': template {} is not valid Handlebars{pos}: {}",
                c.name,
                template_file.display(),
                e.reason()
            ),
        ));
    }

    if format == ConfigFormat::Shell
        && let Err(v) = crate::shell::check_template(&template)
    {
        return Err(cx.err(
            at("template"),
            format!(
                "config '{}': {}:{}: {} (a shell reads {}: see \"Shell-format templates\" in \
                 docs/stacks.md)",
                c.name,
                template_file.display(),
                v.line,
                v.message,
                c.path
            ),
        ));
    }

    let mut properties = Vec::with_capacity(c.property.len());
    let mut seen = HashSet::new();
    for (j, p) in c.property.iter().enumerate() {
        let pat = |f: &str| at(&format!("property[{j}].{f}"));
        if !crate::name::is_property_name(&p.name) {
            return Err(cx.err(
                pat("name"),
                format!(
                    "property name '{}' is not allowed; use letters, digits, '_', '.' and '-', \
                     starting with a letter or '_' (e.g. tickTime, log.dir)",
                    p.name
                ),
            ));
        }
        let within = format!(" in config '{}'", c.name);
        cx.unique(&mut seen, pat("name"), "property", &p.name, &within)?;
        let kind = match p.kind.as_str() {
            "string" => PropertyType::String,
            "int" => PropertyType::Int,
            "float" => PropertyType::Float,
            "bool" => PropertyType::Bool,
            "port" => PropertyType::Port,
            "address" => PropertyType::Address,
            other => {
                return Err(cx.err(
                    pat("type"),
                    format!(
                        "type '{other}' is unknown; use string, int, float, bool, port or address"
                    ),
                ));
            }
        };
        let default = match &p.default {
            None => None,
            Some(v) => Some(
                typed_default(kind, v)
                    .map_err(|m| cx.err(pat("default"), format!("property '{}': {m}", p.name)))?,
            ),
        };
        properties.push(PropertyDef {
            name: p.name.clone(),
            kind,
            default,
            description: p.description.trim().to_string(),
            required: p.required,
            secret: p.secret,
        });
    }

    Ok(ConfigType {
        name: c.name.clone(),
        template,
        template_file,
        path: c.path.clone(),
        format,
        properties,
        components: c.components.clone(),
    })
}

/// The JSON form of a default value, if it has the property's type.
fn typed_default(
    kind: PropertyType,
    v: &toml::Value,
) -> std::result::Result<serde_json::Value, String> {
    let wrong = |expected: &str| {
        format!(
            "the default {v} is a {}, but the property's type needs {expected}",
            v.type_str()
        )
    };
    match (kind, v) {
        (PropertyType::String | PropertyType::Address, toml::Value::String(s)) => {
            kind.check(&serde_json::Value::from(s.clone()))
        }
        (PropertyType::String, _) => Err(wrong("a string (in quotes)")),
        (PropertyType::Address, _) => Err(wrong("an address in quotes (e.g. \"10.0.0.1\")")),
        (PropertyType::Int, toml::Value::Integer(n)) => Ok(serde_json::Value::from(*n)),
        (PropertyType::Int, _) => Err(wrong("a whole number (e.g. 2000)")),
        (PropertyType::Float, toml::Value::Float(f)) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("the default {f} is not a finite number")),
        (PropertyType::Float, toml::Value::Integer(n)) => Ok(serde_json::Value::from(*n as f64)),
        (PropertyType::Float, _) => Err(wrong("a number (e.g. 0.75)")),
        (PropertyType::Bool, toml::Value::Boolean(b)) => Ok(serde_json::Value::from(*b)),
        (PropertyType::Bool, _) => Err(wrong("true or false (without quotes)")),
        (PropertyType::Port, toml::Value::Integer(n)) if (1..=65535).contains(n) => {
            Ok(serde_json::Value::from(*n))
        }
        (PropertyType::Port, toml::Value::Integer(n)) => {
            Err(format!("the default port {n} is out of range; use 1–65535"))
        }
        (PropertyType::Port, _) => Err(wrong("a port number 1–65535")),
    }
}

fn convert_endpoints(
    cx: &Ctx<'_>,
    kind: &str,
    raw: &[RawEndpoint],
    components: &[ComponentDef],
) -> Result<Vec<Endpoint>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, e) in raw.iter().enumerate() {
        check_name(cx, &format!("{kind}[{i}].name"), "endpoint", &e.name)?;
        if !seen.insert(e.name.as_str()) {
            return Err(cx.err(
                format!("{kind}[{i}].name"),
                format!("endpoint '{}' is declared twice in [[{kind}]]", e.name),
            ));
        }
        let iface_ok = !e.interface.is_empty()
            && e.interface
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !iface_ok {
            return Err(cx.err(
                format!("{kind}[{i}].interface"),
                format!(
                    "interface '{}' is not allowed; use letters, digits, '_', '-' and '.' \
                     (e.g. prometheus-scrape)",
                    e.interface
                ),
            ));
        }
        for (j, c) in e.components.iter().enumerate() {
            if !components.iter().any(|d| &d.name == c) {
                let known: Vec<&str> = components.iter().map(|d| d.name.as_str()).collect();
                return Err(cx.err(
                    format!("{kind}[{i}].components[{j}]"),
                    format!(
                        "'{c}' is not a component of this service; its components are: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        out.push(Endpoint {
            name: e.name.clone(),
            interface: e.interface.clone(),
            components: e.components.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        for (text, ms) in [
            ("90s", 90_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("42", 42_000),
            (" 7s ", 7_000),
            ("1m30s", 90_000),
            ("500ms", 500),
        ] {
            assert_eq!(parse_timeout(text), Ok(Duration::from_millis(ms)), "{text}");
        }
        for bad in ["0", "0s", "-5", "5x", "m", "", "1.5m", "5 m", "s5"] {
            assert!(parse_timeout(bad).is_err(), "{bad} should be refused");
        }
        assert!(parse_timeout("5x").unwrap_err().contains("\"5m\""));
    }

    #[test]
    fn cardinalities() {
        assert_eq!("3".parse(), Ok(Cardinality::Exactly(3)));
        assert_eq!("1+".parse(), Ok(Cardinality::AtLeast(1)));
        assert_eq!("0+".parse(), Ok(Cardinality::AtLeast(0)));
        assert_eq!("1-2".parse(), Ok(Cardinality::Range(1, 2)));
        assert!("2-1".parse::<Cardinality>().is_err());
        assert!("many".parse::<Cardinality>().is_err());
        assert!("-1".parse::<Cardinality>().is_err());
        assert!("1+2".parse::<Cardinality>().is_err());
        assert!(Cardinality::AtLeast(1).allows(5));
        assert!(!Cardinality::AtLeast(1).allows(0));
        assert!(Cardinality::Range(1, 3).allows(3));
        assert!(!Cardinality::Exactly(3).allows(2));
    }

    #[test]
    fn role_commands() {
        let rc: RoleCommand = "ZOOKEEPER_SERVER-START".parse().unwrap();
        assert_eq!(rc.component, "zookeeper_server");
        assert_eq!(rc.command, "start");
        assert_eq!(rc.to_string(), "ZOOKEEPER_SERVER-START");
        assert!("NOCOMMAND".parse::<RoleCommand>().is_err());
        assert!("-START".parse::<RoleCommand>().is_err());
        assert!("A-".parse::<RoleCommand>().is_err());
    }

    #[test]
    fn relative_paths() {
        assert!(is_safe_relative("conf/zoo.cfg"));
        assert!(is_safe_relative("./zoo.cfg"));
        assert!(!is_safe_relative("/etc/zoo.cfg"));
        assert!(!is_safe_relative("../zoo.cfg"));
        assert!(!is_safe_relative("conf/../../x"));
        assert!(!is_safe_relative(""));
    }

    #[test]
    fn defaults_must_match_type() {
        let v = |s: &str| -> toml::Value {
            toml::from_str::<toml::Table>(&format!("v = {s}")).unwrap()["v"].clone()
        };
        assert_eq!(
            typed_default(PropertyType::Int, &v("2000")),
            Ok(serde_json::json!(2000))
        );
        assert!(typed_default(PropertyType::Int, &v("\"2000\"")).is_err());
        assert!(typed_default(PropertyType::Bool, &v("\"true\"")).is_err());
        assert_eq!(
            typed_default(PropertyType::Float, &v("1")),
            Ok(serde_json::json!(1.0))
        );
        assert!(typed_default(PropertyType::Port, &v("70000")).is_err());
        assert!(typed_default(PropertyType::Port, &v("0")).is_err());
        assert!(typed_default(PropertyType::String, &v("5")).is_err());
    }

    fn path_of(src: &str, needle: &str) -> String {
        let doc = toml::de::DeTable::parse(src).unwrap();
        let pos = src.find(needle).unwrap();
        locate(doc.get_ref(), pos)
    }

    #[test]
    fn locates_fields() {
        let src = r#"
[service]
name = "x"

[[component]]
name = "a"

[[component]]
name = "b"
colour = "red"

  [component.commands.start]
  timeout = "5d"

[[config]]
name = "c"
  [[config.property]]
  name = "p"
  [[config.property]]
  name = "q"
  default = "oops"
"#;
        assert_eq!(path_of(src, "colour"), "component[1].colour");
        assert_eq!(
            path_of(src, "\"5d\""),
            "component[1].commands.start.timeout"
        );
        assert_eq!(path_of(src, "\"oops\""), "config[0].property[1].default");
        assert_eq!(path_of(src, "\"x\""), "service.name");
        let src = "[order]\n\"A-START\" = \"B-START\"\n";
        assert_eq!(path_of(src, "\"B-START\""), "order.\"A-START\"");
    }
}
