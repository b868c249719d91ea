//! Software sources (`[[software]]` in `service.toml`): where a service's software comes from —
//! a Debian package, a pinned PyPI distribution file with its SHA-256, or a tarball URL with its
//! SHA-256 — declared by the stack and overridable per service instance as typed config.
//!
//! Each source `NAME` becomes the properties `NAME_kind`, `NAME_package`, `NAME_version`,
//! `NAME_file`, `NAME_url`, `NAME_index` and `NAME_sha256` of a config type named
//! [`CONFIG_TYPE`] that core adds to the service (rendered to [`CONFIG_PATH`]), with the
//! manifest's values as defaults. A config version is checked as a whole source per host
//! ([`check_layers`]): the kind's fields present, the others empty, sums, URLs and file names
//! well formed. The agent's stack library installs it (`bm_software NAME`, docs/stacks.md).

use super::{ConfigFormat, ConfigType, PropertyDef, PropertyType};
use crate::model::ServiceConfigs;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The config type core adds to a service with software sources.
pub const CONFIG_TYPE: &str = "software";

/// Where that config type is rendered in a unit's directory (shell assignments, for operators
/// and scripts that want to read what was installed).
pub const CONFIG_PATH: &str = "conf/software.env";

/// The PyPI index a `pypi` source uses unless it names another (PEP 503 "simple" API).
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// The fields of a source, in the order its properties are listed.
pub const FIELDS: &[&str] = &[
    "kind", "package", "version", "file", "url", "index", "sha256",
];

/// How a source is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Debian packages installed with apt (`package`: one name, or several separated by
    /// spaces).
    Deb,
    /// One file of a PyPI distribution (`package`, `version`, `file`, `sha256`, `index`).
    Pypi,
    /// A tarball (`url`, `sha256`, optionally `file`).
    Tarball,
}

impl SourceKind {
    fn parse(s: &str) -> Option<SourceKind> {
        match s {
            "deb" => Some(SourceKind::Deb),
            "pypi" => Some(SourceKind::Pypi),
            "tarball" => Some(SourceKind::Tarball),
            _ => None,
        }
    }

    /// Which fields this kind needs and which it takes at all.
    fn fields(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            SourceKind::Deb => (&["package"], &["package"]),
            SourceKind::Pypi => (
                &["package", "version", "file", "sha256"],
                &["package", "version", "file", "sha256", "index"],
            ),
            SourceKind::Tarball => (&["url", "sha256"], &["url", "sha256", "file"]),
        }
    }
}

/// One software source as the manifest declares it (the defaults of its properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareSource {
    /// Its name, unique in the service: the prefix of its properties (`spark`).
    pub name: String,
    /// Its fields by name (`kind`, `package`, …), empty ones left out.
    pub fields: BTreeMap<String, String>,
}

impl SoftwareSource {
    /// The property of one of its fields (`spark_sha256`).
    pub fn property(&self, field: &str) -> String {
        format!("{}_{field}", self.name)
    }
}

/// `[[software]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSoftware {
    name: String,
    kind: String,
    #[serde(default)]
    package: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    file: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    index: String,
    #[serde(default)]
    sha256: String,
}

/// Converts every `[[software]]`, refusing a bad one naming the file and the field.
pub(super) fn convert_software(
    file: &Path,
    raw: &[RawSoftware],
) -> crate::Result<Vec<SoftwareSource>> {
    let mut out: Vec<SoftwareSource> = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let err = |f: &str, m: String| crate::Error::Manifest {
            file: file.to_path_buf(),
            field: format!("software[{i}].{f}"),
            message: m,
        };
        if !crate::name::is_identifier(&r.name) {
            return Err(err(
                "name",
                format!(
                    "'{}' is not a source name: lower-case letters, digits and _ (e.g. spark)",
                    r.name
                ),
            ));
        }
        if out.iter().any(|s| s.name == r.name) {
            return Err(err(
                "name",
                format!(
                    "software '{}' is declared twice; names must be unique",
                    r.name
                ),
            ));
        }
        let fields: BTreeMap<String, String> = [
            ("kind", &r.kind),
            ("package", &r.package),
            ("version", &r.version),
            ("file", &r.file),
            ("url", &r.url),
            ("index", &r.index),
            ("sha256", &r.sha256),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        check_source(&fields).map_err(|(f, m)| err(f, m))?;
        out.push(SoftwareSource {
            name: r.name.clone(),
            fields,
        });
    }
    Ok(out)
}

/// The config type core adds for a service's sources: one string property per field of each
/// source, its default the manifest's value, rendered as shell assignments.
pub(super) fn config_type(manifest: &Path, sources: &[SoftwareSource]) -> ConfigType {
    let mut properties = Vec::new();
    let mut template =
        String::from("# The software sources of this service (written by bigmgr).\n");
    for s in sources {
        for f in FIELDS {
            let name = s.property(f);
            template.push_str(&format!("{name}={{{{shell_quote {name}}}}}\n"));
            properties.push(PropertyDef {
                description: describe(&s.name, f),
                default: Some(Value::String(s.fields.get(*f).cloned().unwrap_or_default())),
                name,
                kind: PropertyType::String,
                required: false,
                secret: false,
            });
        }
    }
    ConfigType {
        name: CONFIG_TYPE.into(),
        template,
        template_file: manifest.to_path_buf(),
        path: CONFIG_PATH.into(),
        format: ConfigFormat::Shell,
        properties,
        components: Vec::new(),
    }
}

fn describe(source: &str, field: &str) -> String {
    let what = match field {
        "kind" => {
            "how it is obtained: deb (a Debian package), pypi (a PyPI distribution file) or tarball (a URL)"
        }
        "package" => {
            "the Debian package(s), separated by spaces (deb), or the PyPI distribution name (pypi)"
        }
        "version" => "the distribution's version (pypi); the file must be of that version",
        "file" => {
            "the distribution file to fetch (pypi), or the name to keep a tarball under (tarball; default: the URL's last part)"
        }
        "url" => "where the tarball is (tarball): http://, https:// or file://",
        "index" => {
            "the PEP 503 simple index to find the file in (pypi; empty: https://pypi.org/simple), e.g. a local mirror"
        }
        _ => {
            "the file's SHA-256, 64 lowercase hex digits (pypi, tarball); a download with another sum fails the install"
        }
    };
    format!("Software source '{source}': {what}.")
}

/// Checks the effective fields of one source (empty strings count as absent). The error names
/// the field and says what to fix.
fn check_source(fields: &BTreeMap<String, String>) -> Result<(), (&'static str, String)> {
    let get = |f: &str| fields.get(f).map(String::as_str).filter(|v| !v.is_empty());
    let kind_text = get("kind").unwrap_or("");
    let kind = SourceKind::parse(kind_text).ok_or_else(|| {
        (
            "kind",
            format!("'{kind_text}' is not a source kind; use deb, pypi or tarball"),
        )
    })?;
    let (needs, takes) = kind.fields();
    for f in FIELDS.iter().filter(|f| **f != "kind") {
        match (get(f), needs.contains(f), takes.contains(f)) {
            (None, true, _) => {
                return Err((f, format!("a {kind_text} source needs its {f}")));
            }
            (Some(_), _, false) => {
                return Err((
                    f,
                    format!(
                        "a {kind_text} source takes no {f}; it takes {} (empty the {f})",
                        takes.join(", ")
                    ),
                ));
            }
            _ => {}
        }
    }
    if let Some(p) = get("package") {
        let ok = match kind {
            // Debian policy: lower case, digits, + - . ; at least two, starting alphanumeric;
            // several separated by single spaces.
            SourceKind::Deb => p.split(' ').all(|p| {
                p.len() >= 2
                    && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
            }),
            // PEP 508 names.
            _ => {
                p.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && p.ends_with(|c: char| c.is_ascii_alphanumeric())
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            }
        };
        if !ok || p.len() > 200 {
            return Err((
                "package",
                format!("'{p}' is not a {kind_text} package name"),
            ));
        }
    }
    if let Some(v) = get("version")
        && (v.len() > 100
            || !v.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+!".contains(c)))
    {
        return Err(("version", format!("'{v}' is not a version (e.g. 4.3.0)")));
    }
    if let Some(s) = get("sha256")
        && !(s.len() == 64
            && s.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
    {
        return Err((
            "sha256",
            format!("'{s}' is not a SHA-256: give 64 lowercase hex digits"),
        ));
    }
    if let Some(f) = get("file") {
        let plain = !f.starts_with('.')
            && f.len() <= 255
            && f.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
        if !plain {
            return Err((
                "file",
                format!("'{f}' is not a plain file name (letters, digits, . _ - +)"),
            ));
        }
        if kind == SourceKind::Pypi {
            // Wheels and sdists are named NAME-VERSION…, NAME normalised to _ (PEP 427, 625).
            let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '.'], "_");
            let prefix = format!(
                "{}-{}",
                norm(get("package").unwrap_or_default()),
                get("version").unwrap_or_default().to_ascii_lowercase()
            );
            let lower = f.to_ascii_lowercase();
            let named = lower.strip_prefix(&prefix).is_some_and(|rest| {
                rest.starts_with('-') || rest.starts_with(".tar") || rest.starts_with(".zip")
            });
            if !named {
                return Err((
                    "file",
                    format!(
                        "'{f}' is not a file of {} {}: its name must start with '{prefix}'",
                        get("package").unwrap_or_default(),
                        get("version").unwrap_or_default()
                    ),
                ));
            }
        }
    }
    for f in ["url", "index"] {
        if let Some(u) = get(f) {
            check_url(u).map_err(|m| (if f == "url" { "url" } else { "index" }, m))?;
        }
    }
    if kind == SourceKind::Tarball && get("file").is_none() {
        let last = get("url")
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let last = last.split(['?', '#']).next().unwrap_or_default();
        if last.is_empty()
            || last.starts_with('.')
            || !last
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
        {
            return Err((
                "file",
                "the URL does not end in a plain file name: give the file to keep it under"
                    .to_string(),
            ));
        }
    }
    Ok(())
}

/// An http://, https:// or file:// URL of printable ASCII without spaces or quotes.
fn check_url(u: &str) -> Result<(), String> {
    let scheme_ok = ["http://", "https://", "file:///"]
        .iter()
        .any(|s| u.starts_with(s) && u.len() > s.len());
    let chars_ok = u.len() <= 2048
        && u.chars()
            .all(|c| c.is_ascii_graphic() && !"\"'`\\<>{}|^".contains(c));
    if scheme_ok && chars_ok {
        Ok(())
    } else {
        Err(format!(
            "'{u}' is not a URL bigmgr fetches: http://, https:// or file:/// followed by a path, \
             without spaces, quotes or backslashes"
        ))
    }
}

/// Checks every source of a service as it would be installed on each host: the manifest's
/// values, overlaid by the service layer `configs`, overlaid by each host's layer of
/// `overrides` (only hosts with a software override need a check of their own). The error
/// names the property (`configs.software.spark_sha256`), the host if it is a host's, and what
/// to fix.
pub fn check_layers(
    sources: &[SoftwareSource],
    configs: &ServiceConfigs,
    overrides: &BTreeMap<String, ServiceConfigs>,
) -> crate::Result<()> {
    let layer = |c: &ServiceConfigs| c.get(CONFIG_TYPE).cloned().unwrap_or_default();
    let service = layer(configs);
    let mut hosts: Vec<(Option<&str>, BTreeMap<String, Value>)> = vec![(None, BTreeMap::new())];
    for (h, o) in overrides {
        if o.contains_key(CONFIG_TYPE) {
            hosts.push((Some(h.as_str()), layer(o)));
        }
    }
    for s in sources {
        for (host, over) in &hosts {
            let mut fields = s.fields.clone();
            for f in FIELDS {
                let p = s.property(f);
                if let Some(v) = over.get(&p).or_else(|| service.get(&p)) {
                    match v {
                        Value::String(v) if v.is_empty() => fields.remove(*f),
                        Value::String(v) => fields.insert(f.to_string(), v.clone()),
                        _ => continue, // the property's type check reports it
                    };
                }
            }
            check_source(&fields).map_err(|(f, m)| {
                let on = host
                    .map(|h| format!(" (host override for {h})"))
                    .unwrap_or_default();
                crate::Error::invalid_field(
                    format!("configs.{CONFIG_TYPE}.{}", s.property(f)),
                    format!("software source '{}'{on}: {m}", s.name),
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> BTreeMap<String, String> {
        serde_json::from_value(v).unwrap()
    }

    const SUM: &str = "e8c517948eff7088a7aa07449aa8eafa4a15a8d50319de2525a6fd26622476c6";

    #[test]
    fn each_kind_takes_its_fields() {
        let ok = [
            json!({"kind": "deb", "package": "openjdk-17-jre-headless"}),
            json!({"kind": "deb", "package": "redis-server redis-tools"}),
            json!({"kind": "pypi", "package": "pyspark", "version": "4.3.0",
                   "file": "pyspark-4.3.0.tar.gz", "sha256": SUM}),
            json!({"kind": "pypi", "package": "apache-flink", "version": "2.3.0",
                   "file": "apache_flink-2.3.0-cp311-cp311-manylinux2014_x86_64.whl",
                   "sha256": SUM, "index": "http://127.0.0.1:3141/simple"}),
            json!({"kind": "tarball", "url": "https://archive.example/kafka_2.13-3.7.0.tgz",
                   "sha256": SUM}),
            json!({"kind": "tarball", "url": "file:///srv/mirror/x.tgz?a=b", "sha256": SUM}),
        ];
        for v in ok {
            assert_eq!(check_source(&fields(v.clone())), Ok(()), "{v}");
        }
        let bad = [
            (
                json!({"kind": "rpm", "package": "x"}),
                "kind",
                "deb, pypi or tarball",
            ),
            (json!({"kind": "deb"}), "package", "needs its package"),
            (
                json!({"kind": "deb", "package": "zookeeper", "sha256": SUM}),
                "sha256",
                "takes no sha256",
            ),
            (
                json!({"kind": "deb", "package": "Bad;rm"}),
                "package",
                "not a deb package name",
            ),
            (
                json!({"kind": "deb", "package": "redis  $(x)"}),
                "package",
                "not a deb package name",
            ),
            (
                json!({"kind": "pypi", "package": "pyspark", "version": "4.3.0",
                    "file": "pyspark-4.3.0.tar.gz"}),
                "sha256",
                "needs its sha256",
            ),
            (
                json!({"kind": "pypi", "package": "pyspark", "version": "4.3.0",
                    "file": "pyspark-4.2.0.tar.gz", "sha256": SUM}),
                "file",
                "must start with 'pyspark-4.3.0'",
            ),
            (
                json!({"kind": "pypi", "package": "pyspark", "version": "4.3.0",
                    "file": "../pyspark-4.3.0.tar.gz", "sha256": SUM}),
                "file",
                "plain file name",
            ),
            (
                json!({"kind": "pypi", "package": "pyspark", "version": "4.3.0",
                    "file": "pyspark-4.3.0.tar.gz", "sha256": SUM.to_uppercase()}),
                "sha256",
                "64 lowercase hex",
            ),
            (
                json!({"kind": "tarball", "url": "ftp://x/y.tgz", "sha256": SUM}),
                "url",
                "http://, https:// or file:///",
            ),
            (
                json!({"kind": "tarball", "url": "https://x/$(reboot).tgz'", "sha256": SUM}),
                "url",
                "without spaces, quotes",
            ),
            (
                json!({"kind": "tarball", "url": "https://x/", "sha256": SUM}),
                "file",
                "plain file name",
            ),
            (
                json!({"kind": "tarball", "url": "https://x/a.tgz"}),
                "sha256",
                "needs its sha256",
            ),
        ];
        for (v, field, says) in bad {
            let (f, m) = check_source(&fields(v.clone())).unwrap_err();
            assert_eq!(f, field, "{v}: {m}");
            assert!(m.contains(says), "{v}: {m}");
        }
    }

    #[test]
    fn layers_are_checked_per_host_as_installed() {
        let src = SoftwareSource {
            name: "spark".into(),
            fields: fields(
                json!({"kind": "pypi", "package": "pyspark", "version": "4.3.0",
                                  "file": "pyspark-4.3.0.tar.gz", "sha256": SUM}),
            ),
        };
        let sources = [src];
        let none = BTreeMap::new();
        assert!(check_layers(&sources, &ServiceConfigs::new(), &none).is_ok());
        // Switching the service to a tarball needs the pypi fields emptied.
        let layer = |v: Value| -> ServiceConfigs {
            BTreeMap::from([(CONFIG_TYPE.to_string(), serde_json::from_value(v).unwrap())])
        };
        let half = layer(json!({"spark_kind": "tarball", "spark_url": "https://m/spark.tgz"}));
        let field_and_message = |e: crate::Error| match e {
            crate::Error::InvalidField { field, message } => format!("{field}: {message}"),
            other => panic!("{other}"),
        };
        let e = field_and_message(check_layers(&sources, &half, &none).unwrap_err());
        assert!(
            e.starts_with("configs.software.spark_package:") && e.contains("takes no package"),
            "{e}"
        );
        let whole = layer(
            json!({"spark_kind": "tarball", "spark_url": "https://m/spark.tgz",
            "spark_package": "", "spark_version": "", "spark_file": ""}),
        );
        assert!(check_layers(&sources, &whole, &none).is_ok());
        // A host's own layer is checked over the service's.
        let hosts = BTreeMap::from([("h2".to_string(), layer(json!({"spark_sha256": "abc"})))]);
        let e = field_and_message(check_layers(&sources, &whole, &hosts).unwrap_err());
        assert!(
            e.starts_with("configs.software.spark_sha256:") && e.contains("host override for h2"),
            "{e}"
        );
    }
}
