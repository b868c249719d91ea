//! Pipelines (docs/pipelines.md): DAGs of compute units joined by data channels, run on the
//! cluster's hosts. This module holds the definition a user writes — sources, units, named
//! channels, sinks and the edges between them, in TOML — and its check: [`parse`] reads a
//! file, [`Parsed::check`] finds every problem (each with its line) against the cluster's
//! hosts, and [`Parsed::graph`] gives the checked graph with the implicit channels inserted.

pub mod run;

use crate::spec::{Problem, line_at, parse_toml};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The most replicas a unit may have.
pub const MAX_REPLICAS: u32 = 64;
/// A channel's backlog limit (batches waiting) when its definition gives none.
pub const DEFAULT_CHANNEL_LIMIT: u32 = 64;

/// A pipeline as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    /// Its name in the cluster.
    pub name: String,
    /// Where batches come from, by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceDef>,
    /// The compute units, by name.
    #[serde(default)]
    pub units: BTreeMap<String, UnitDef>,
    /// Channels given a name to be shared (`a, b → shared → c, d`), by name.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelDef>,
    /// Where the results go, by name.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkDef>,
}

/// A source of batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceDef {
    /// The files of a directory on one host, `records` lines to a batch. Bounded (the files
    /// there when the run starts) unless `watch`, when files added later are read too.
    Dir {
        /// The host.
        host: String,
        /// The directory (absolute).
        path: String,
        /// Lines per batch (default 100).
        #[serde(default = "default_records")]
        records: u32,
        /// Keep reading files added later: the source never ends (unbounded).
        #[serde(default)]
        watch: bool,
    },
    /// Batches pushed over HTTP, through the server's API
    /// (`POST /clusters/{c}/pipelines/{p}/sources/{source}/batches`), kept on one host's disk:
    /// unbounded (it ends when the pipeline is stopped by draining).
    Http {
        /// The host whose disk holds the pushed batches.
        host: String,
    },
}

fn default_records() -> u32 {
    100
}

impl SourceDef {
    /// Whether it ends on its own (a blocking unit may only take bounded input).
    pub fn bounded(&self) -> bool {
        matches!(self, SourceDef::Dir { watch: false, .. })
    }

    /// The host it runs on.
    pub fn host(&self) -> &str {
        match self {
            SourceDef::Dir { host, .. } | SourceDef::Http { host, .. } => host,
        }
    }
}

/// How a unit takes its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitKind {
    /// Batch by batch, as they come (a filter).
    NonBlocking,
    /// All of its input at once, once every upstream batch of the run is complete (a sort).
    Blocking,
}

/// The program a unit runs per batch: `program <input dir> <output dir>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Program {
    /// An executable by absolute path on the unit's hosts.
    Path(String),
    /// An executable shipped by a stack's service (`scripts/<program>` of it).
    Stack {
        /// The stack.
        stack: String,
        /// The service of the stack.
        service: String,
        /// The file under the service's `scripts/`.
        program: String,
    },
}

/// A compute unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitDef {
    /// What it runs.
    pub program: Program,
    /// Batch by batch, or all at once.
    pub kind: UnitKind,
    /// How many copies take batches from its input channel (a blocking unit has one).
    #[serde(default = "one")]
    pub replicas: u32,
    /// The hosts its replicas run on (spread over them); empty: any host of the cluster.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// How long one batch may take (`30s`, `5m`; default 10m).
    #[serde(default)]
    pub timeout: Option<String>,
    /// What one run of its program may use.
    #[serde(default)]
    pub resources: Resources,
    /// What feeds it: sources, units or named channels.
    pub inputs: Vec<String>,
}

/// Limits on one run of a unit's program, set by its agent before the program starts (the
/// shell's `ulimit`: a program past them fails, naming its unit and batch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Its address space (`512MiB`, `2GiB`, `1000000KiB`; at least 16MiB).
    #[serde(default)]
    pub memory: Option<String>,
    /// Its CPU time (`30s`, `5m`; at least 1s).
    #[serde(default)]
    pub cpu_time: Option<String>,
}

impl Resources {
    /// The memory limit in KiB, if any.
    pub fn memory_kib(&self) -> Result<Option<u64>, String> {
        let Some(m) = &self.memory else {
            return Ok(None);
        };
        let t = m.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, unit) = t.split_at(split);
        let n: u64 = n
            .parse()
            .map_err(|_| format!("'{m}' is no size: give one like 512MiB or 2GiB"))?;
        let kib = match unit.trim() {
            "KiB" => Some(n),
            "MiB" => n.checked_mul(1024),
            "GiB" => n.checked_mul(1024 * 1024),
            _ => return Err(format!("'{m}' is no size: give one like 512MiB or 2GiB")),
        }
        .ok_or_else(|| format!("'{m}' is too large"))?;
        if kib < 16 * 1024 {
            return Err(format!(
                "'{m}' is too little for a program: give 16MiB or more"
            ));
        }
        Ok(Some(kib))
    }

    /// The CPU time limit in whole seconds, if any.
    pub fn cpu_seconds(&self) -> Result<Option<u64>, String> {
        let Some(t) = &self.cpu_time else {
            return Ok(None);
        };
        let d = crate::duration::parse_duration(t)?;
        if d.as_secs() == 0 {
            return Err(format!("'{t}' is under a second: give 1s or more"));
        }
        Ok(Some(d.as_secs()))
    }
}

fn one() -> u32 {
    1
}

/// A named channel (units joined directly get one without a name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelDef {
    /// What feeds it: sources or units.
    pub inputs: Vec<String>,
    /// The backlog (batches waiting) past which it answers not-ready (default 64).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Buffer in memory only (lost with its host) instead of on disk: not built yet, so a
    /// definition asking for it is refused.
    #[serde(default)]
    pub memory: bool,
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkDef {
    /// Files in a directory on one host, one per batch, named by the batch.
    Dir {
        /// The host.
        host: String,
        /// The directory (absolute).
        path: String,
        /// What feeds it.
        inputs: Vec<String>,
    },
    /// Another pipeline of the cluster: each batch is pushed to an HTTP source of it (as
    /// `POST …/sources/{source}/batches` does), once, while that pipeline runs.
    Pipeline {
        /// That pipeline.
        pipeline: String,
        /// Its HTTP source; none: its only one.
        #[serde(default)]
        source: Option<String>,
        /// What feeds it.
        inputs: Vec<String>,
    },
}

impl SinkDef {
    fn inputs(&self) -> &[String] {
        match self {
            SinkDef::Dir { inputs, .. } | SinkDef::Pipeline { inputs, .. } => inputs,
        }
    }
}

/// What a node of the checked graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A source.
    Source,
    /// A compute unit.
    Unit,
    /// A data channel (named, or inserted where nodes join).
    Channel,
    /// A sink.
    Sink,
}

/// The checked graph: every node, and every edge with a channel wherever two non-channel
/// nodes joined (named `<from>-><to>`), so each unit reads one channel per input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    /// The nodes by name, with their kind.
    pub nodes: BTreeMap<String, NodeKind>,
    /// The edges, `(from, to)`, in name order.
    pub edges: BTreeSet<(String, String)>,
}

/// A parsed definition with its source, so problems name their lines.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The definition.
    pub def: PipelineDef,
    source: String,
}

/// Parses a definition; a file that is not valid TOML, or has an unknown key or a value of
/// the wrong shape, is one problem naming its line.
pub fn parse(source: &str) -> Result<Parsed, Vec<Problem>> {
    Ok(Parsed {
        def: parse_toml(source)?,
        source: source.to_string(),
    })
}

impl Parsed {
    /// A problem at `path` (keys from the top), on that value's line.
    pub fn problem(&self, path: &[&str], message: impl Into<String>) -> Problem {
        Problem {
            line: line_at(&self.source, path),
            path: path.join("."),
            message: message.into(),
        }
    }

    /// Every problem of the definition against the cluster's `hosts`, each with its line:
    /// names, hosts, paths, replicas, timeouts, inputs naming nodes that exist and may feed,
    /// cycles, and blocking units fed (at any distance) by an unbounded source. Stack
    /// programs and paths on hosts are checked where they are (see docs/pipelines.md).
    pub fn check(&self, hosts: &BTreeSet<String>) -> Result<Graph, Vec<Problem>> {
        let d = &self.def;
        let mut problems = Vec::new();
        if let Err(e) = crate::name::check_name("pipeline", &d.name) {
            problems.push(self.problem(&["name"], e.to_string()));
        }
        // Every node name, once, across kinds.
        let mut kinds: BTreeMap<&str, NodeKind> = BTreeMap::new();
        let all = [
            (
                "sources",
                NodeKind::Source,
                d.sources.keys().collect::<Vec<_>>(),
            ),
            ("units", NodeKind::Unit, d.units.keys().collect()),
            ("channels", NodeKind::Channel, d.channels.keys().collect()),
            ("sinks", NodeKind::Sink, d.sinks.keys().collect()),
        ];
        for (table, kind, names) in &all {
            for name in names {
                if let Err(e) = crate::name::check_name("node", name) {
                    problems.push(self.problem(&[table, name], e.to_string()));
                } else if name.contains("->") {
                    problems.push(self.problem(&[table, name], "'->' names implicit channels"));
                }
                if kinds.insert(name.as_str(), *kind).is_some() {
                    problems.push(self.problem(
                        &[table, name],
                        format!("'{name}' names two nodes: sources, units, channels and sinks share one set of names"),
                    ));
                }
            }
        }
        if d.sources.is_empty() {
            problems.push(self.problem(&["sources"], "a pipeline needs a source"));
        }
        if d.sinks.is_empty() {
            problems.push(self.problem(&["sinks"], "a pipeline needs a sink"));
        }
        let host_ok = |h: &str| hosts.contains(h);
        let abs = |p: &str| p.starts_with('/') && !p.split('/').any(|c| c == "..");
        for (name, s) in &d.sources {
            if !host_ok(s.host()) {
                problems.push(self.problem(
                    &["sources", name, "host"],
                    format!("host '{}' is not in the cluster", s.host()),
                ));
            }
            match s {
                SourceDef::Dir { path, records, .. } => {
                    if !abs(path) {
                        problems.push(self.problem(
                            &["sources", name, "path"],
                            "give an absolute path without ..",
                        ));
                    }
                    if *records == 0 {
                        problems.push(self.problem(
                            &["sources", name, "records"],
                            "a batch holds 1 line or more",
                        ));
                    }
                }
                SourceDef::Http { .. } => {}
            }
        }
        for (name, u) in &d.units {
            let at = |field: &'static str| ["units", name.as_str(), field];
            match &u.program {
                Program::Path(p) if !abs(p) => problems.push(self.problem(
                    &at("program"),
                    format!("'{p}': give the program's absolute path on the unit's hosts"),
                )),
                Program::Stack { program, .. }
                    if program.is_empty() || program.contains('/') || program == ".." =>
                {
                    problems.push(self.problem(
                        &at("program"),
                        format!("'{program}': name a file of the service's scripts/"),
                    ))
                }
                _ => {}
            }
            if u.replicas == 0 || u.replicas > MAX_REPLICAS {
                problems.push(self.problem(
                    &at("replicas"),
                    format!("give 1 to {MAX_REPLICAS} replicas"),
                ));
            } else if u.kind == UnitKind::Blocking && u.replicas != 1 {
                problems.push(self.problem(
                    &at("replicas"),
                    "a blocking unit takes all of its input at once: it has one replica",
                ));
            }
            for h in &u.hosts {
                if !host_ok(h) {
                    problems.push(
                        self.problem(&at("hosts"), format!("host '{h}' is not in the cluster")),
                    );
                }
            }
            if let Some(t) = &u.timeout
                && let Err(e) = crate::duration::parse_duration(t)
            {
                problems.push(self.problem(&at("timeout"), e));
            }
            if let Err(e) = u.resources.memory_kib() {
                problems.push(self.problem(&["units", name, "resources", "memory"], e));
            }
            if let Err(e) = u.resources.cpu_seconds() {
                problems.push(self.problem(&["units", name, "resources", "cpu_time"], e));
            }
            if u.inputs.is_empty() {
                problems.push(self.problem(&at("inputs"), "a unit needs an input"));
            }
        }
        for (name, c) in &d.channels {
            if c.inputs.is_empty() {
                problems
                    .push(self.problem(&["channels", name, "inputs"], "a channel needs an input"));
            }
            if c.memory {
                problems.push(self.problem(
                    &["channels", name, "memory"],
                    "memory-only channels are not built yet: channels buffer on the hosts' \
                     disks (remove `memory`)",
                ));
            }
            if c.limit == Some(0) {
                problems.push(self.problem(
                    &["channels", name, "limit"],
                    "a channel holds 1 batch or more before it answers not-ready",
                ));
            }
        }
        for (name, s) in &d.sinks {
            match s {
                SinkDef::Dir { host, path, .. } => {
                    if !host_ok(host) {
                        problems.push(self.problem(
                            &["sinks", name, "host"],
                            format!("host '{host}' is not in the cluster"),
                        ));
                    }
                    if !abs(path) {
                        problems.push(
                            self.problem(
                                &["sinks", name, "path"],
                                "give an absolute path without ..",
                            ),
                        );
                    }
                }
                SinkDef::Pipeline {
                    pipeline, source, ..
                } => {
                    if let Some(Err(e)) =
                        source.as_ref().map(|s| crate::name::check_name("node", s))
                    {
                        problems.push(self.problem(&["sinks", name, "source"], e.to_string()));
                    }
                    if let Err(e) = crate::name::check_name("pipeline", pipeline) {
                        problems.push(self.problem(&["sinks", name, "pipeline"], e.to_string()));
                    } else if *pipeline == d.name {
                        problems.push(self.problem(
                            &["sinks", name, "pipeline"],
                            "a pipeline cannot feed itself",
                        ));
                    }
                }
            }
            if s.inputs().is_empty() {
                problems.push(self.problem(&["sinks", name, "inputs"], "a sink needs an input"));
            }
        }
        // The edges: each input names a node that may feed this one.
        let mut feeds: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let inputs = d
            .units
            .iter()
            .map(|(n, u)| ("units", n, NodeKind::Unit, &u.inputs))
            .chain(
                d.channels
                    .iter()
                    .map(|(n, c)| ("channels", n, NodeKind::Channel, &c.inputs)),
            )
            .chain(d.sinks.iter().map(|(n, s)| {
                let inputs = match s {
                    SinkDef::Dir { inputs, .. } | SinkDef::Pipeline { inputs, .. } => inputs,
                };
                ("sinks", n, NodeKind::Sink, inputs)
            }));
        for (table, name, kind, ins) in inputs {
            let mut seen = BTreeSet::new();
            for input in ins {
                let at = [table, name.as_str(), "inputs"];
                if !seen.insert(input) {
                    problems.push(self.problem(&at, format!("'{input}' is named twice")));
                    continue;
                }
                match kinds.get(input.as_str()) {
                    None => problems.push(self.problem(
                        &at,
                        format!(
                            "'{input}' is no source, unit or channel of this pipeline (known: {})",
                            kinds
                                .iter()
                                .filter(|(_, k)| **k != NodeKind::Sink)
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                    Some(NodeKind::Sink) => problems.push(
                        self.problem(&at, format!("'{input}' is a sink: sinks feed nothing")),
                    ),
                    Some(NodeKind::Channel) if kind == NodeKind::Channel => {
                        problems.push(self.problem(
                            &at,
                            format!("'{input}' is a channel: channels take sources and units"),
                        ))
                    }
                    Some(_) => {
                        feeds.entry(input.clone()).or_default().insert(name.clone());
                    }
                }
            }
        }
        for name in d.channels.keys() {
            if !feeds.contains_key(name) {
                problems.push(self.problem(&["channels", name], "nothing reads this channel"));
            }
        }
        for name in d.units.keys() {
            if !feeds.contains_key(name) {
                problems.push(self.problem(
                    &["units", name],
                    "nothing reads this unit's output: give it to a unit, channel or sink",
                ));
            }
        }
        if let Some(cycle) = crate::stack::validate::find_cycle(&feeds) {
            let first = &cycle[0];
            let table = match kinds.get(first.as_str()) {
                Some(NodeKind::Channel) => "channels",
                _ => "units",
            };
            problems.push(self.problem(
                &[table, first, "inputs"],
                format!("the edges form a cycle: {}", cycle.join(" → ")),
            ));
        }
        // A blocking unit waits for all of its input: none of it may come from a source that
        // never ends.
        for (name, u) in &d.units {
            if u.kind != UnitKind::Blocking {
                continue;
            }
            if let Some(src) = self.unbounded_upstream(name, &feeds) {
                problems.push(self.problem(
                    &["units", name, "kind"],
                    format!(
                        "a blocking unit needs all of its input, but source '{src}' never ends \
                         ({}): make the unit non-blocking, or the source bounded",
                        match &d.sources[src] {
                            SourceDef::Http { .. } => "it takes pushes over HTTP",
                            _ => "it watches its directory",
                        }
                    ),
                ));
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(problems);
        }
        Ok(self.graph(&kinds, &feeds))
    }

    /// An unbounded source `node` reads from, at any distance, if any.
    fn unbounded_upstream<'a>(
        &'a self,
        node: &str,
        feeds: &'a BTreeMap<String, BTreeSet<String>>,
    ) -> Option<&'a str> {
        let mut todo = vec![node.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            for (from, tos) in feeds {
                if tos.contains(&n) {
                    if let Some(s) = self.def.sources.get(from)
                        && !s.bounded()
                    {
                        return Some(from);
                    }
                    todo.push(from.clone());
                }
            }
        }
        None
    }

    /// The graph with a channel inserted on every edge between two non-channel nodes.
    fn graph(
        &self,
        kinds: &BTreeMap<&str, NodeKind>,
        feeds: &BTreeMap<String, BTreeSet<String>>,
    ) -> Graph {
        let mut nodes: BTreeMap<String, NodeKind> =
            kinds.iter().map(|(n, k)| (n.to_string(), *k)).collect();
        let mut edges = BTreeSet::new();
        for (from, tos) in feeds {
            for to in tos {
                let joined = kinds.get(from.as_str()) == Some(&NodeKind::Channel)
                    || kinds.get(to.as_str()) == Some(&NodeKind::Channel);
                if joined {
                    edges.insert((from.clone(), to.clone()));
                } else {
                    let channel = format!("{from}->{to}");
                    nodes.insert(channel.clone(), NodeKind::Channel);
                    edges.insert((from.clone(), channel.clone()));
                    edges.insert((channel, to.clone()));
                }
            }
        }
        Graph { nodes, edges }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "sorted"

[sources.files]
kind = "dir"
host = "h1"
path = "/data/in"
records = 100

[units.filter]
program = "/usr/local/bin/filter"
kind = "non-blocking"
replicas = 3
hosts = ["h1", "h2", "h3"]
inputs = ["files"]

[units.sort]
program = { stack = "demo", service = "hello", program = "sort.sh" }
kind = "blocking"
inputs = ["filter"]

[sinks.out]
kind = "dir"
host = "h1"
path = "/data/out"
inputs = ["sort"]
"#;

    fn hosts() -> BTreeSet<String> {
        ["h1", "h2", "h3"].iter().map(|h| h.to_string()).collect()
    }

    fn problems(source: &str) -> Vec<Problem> {
        parse(source)
            .and_then(|p| p.check(&hosts()))
            .expect_err("refused")
    }

    #[test]
    fn a_good_pipeline_gets_a_channel_on_every_edge_between_nodes() {
        let g = parse(GOOD).unwrap().check(&hosts()).unwrap();
        let edges: Vec<(&str, &str)> = g
            .edges
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            edges,
            [
                ("files", "files->filter"),
                ("files->filter", "filter"),
                ("filter", "filter->sort"),
                ("filter->sort", "sort"),
                ("sort", "sort->out"),
                ("sort->out", "out"),
            ]
        );
        assert_eq!(g.nodes["filter->sort"], NodeKind::Channel);
    }

    #[test]
    fn a_named_channel_is_shared_by_its_writers_and_readers() {
        let src = GOOD.replace(
            "[units.sort]",
            "[channels.shared]\ninputs = [\"filter\", \"files\"]\nlimit = 8\n\n[units.sort]",
        );
        let src = src.replace(
            "kind = \"blocking\"\ninputs = [\"filter\"]",
            "kind = \"blocking\"\ninputs = [\"shared\"]",
        );
        let g = parse(&src).unwrap().check(&hosts()).unwrap();
        assert!(g.edges.contains(&("filter".into(), "shared".into())));
        assert!(g.edges.contains(&("files".into(), "shared".into())));
        assert!(g.edges.contains(&("shared".into(), "sort".into())));
        assert!(!g.nodes.contains_key("filter->sort"));
    }

    #[test]
    fn resources_and_memory_channels_are_checked() {
        let limited = GOOD.replace(
            "inputs = [\"files\"]",
            "inputs = [\"files\"]\nresources = { memory = \"256MiB\", cpu_time = \"30s\" }",
        );
        let parsed = parse(&limited).unwrap();
        parsed.check(&hosts()).expect("good resources");
        let r = &parsed.def.units["filter"].resources;
        assert_eq!(r.memory_kib(), Ok(Some(256 * 1024)));
        assert_eq!(r.cpu_seconds(), Ok(Some(30)));
        for (bad, path, says) in [
            (
                "memory = \"lots\"",
                "units.filter.resources.memory",
                "is no size",
            ),
            (
                "memory = \"1MiB\"",
                "units.filter.resources.memory",
                "16MiB or more",
            ),
            (
                "cpu_time = \"0s\"",
                "units.filter.resources.cpu_time",
                "1s or more",
            ),
        ] {
            let src = GOOD.replace(
                "inputs = [\"files\"]",
                &format!("inputs = [\"files\"]\nresources = {{ {bad} }}"),
            );
            let p = problems(&src);
            assert!(
                p.iter().any(|p| p.path == path && p.message.contains(says)),
                "{bad}: {p:?}"
            );
        }
        let memory = format!(
            "{GOOD}\n[channels.fast]\ninputs = [\"files\"]\nmemory = true\n\n[units.more]\n\
             program = \"/bin/cat\"\nkind = \"non-blocking\"\ninputs = [\"fast\"]\n\n\
             [sinks.more_out]\nkind = \"dir\"\nhost = \"h1\"\npath = \"/data/more\"\n\
             inputs = [\"more\"]\n"
        );
        let p = problems(&memory);
        assert!(
            p.iter()
                .any(|p| p.path == "channels.fast.memory" && p.message.contains("not built yet")),
            "{p:?}"
        );
    }

    #[test]
    fn each_kind_of_mistake_is_refused_with_its_line() {
        // A cycle.
        let cyc = GOOD.replace("inputs = [\"files\"]", "inputs = [\"files\", \"sort\"]");
        let p = problems(&cyc);
        assert!(
            p.iter()
                .any(|p| p.message.contains("cycle") && p.message.contains("filter")),
            "{p:?}"
        );
        // An edge to an unknown unit.
        let unknown = GOOD.replace("inputs = [\"sort\"]", "inputs = [\"sorter\"]");
        let p = problems(&unknown);
        let line = unknown
            .lines()
            .position(|l| l.contains("\"sorter\""))
            .unwrap()
            + 1;
        assert!(
            p.iter().any(
                |p| p.message.contains("'sorter' is no source, unit or channel")
                    && p.path == "sinks.out.inputs"
            ),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.path == "sinks.out.inputs" && p.line == line),
            "{p:?} on line {line}"
        );
        // A blocking unit fed by an unbounded source, at a distance.
        let pushed = GOOD.replace(
            "kind = \"dir\"\nhost = \"h1\"\npath = \"/data/in\"\nrecords = 100",
            "kind = \"http\"\nhost = \"h1\"",
        );
        let p = problems(&pushed);
        assert!(
            p.iter()
                .any(|p| p.path == "units.sort.kind"
                    && p.message.contains("source 'files' never ends")),
            "{p:?}"
        );
        // A program that is not an absolute path; a host not in the cluster; two replicas of
        // a blocking unit.
        let bad = GOOD
            .replace("/usr/local/bin/filter", "filter.sh")
            .replace(
                "hosts = [\"h1\", \"h2\", \"h3\"]",
                "hosts = [\"h1\", \"h9\"]",
            )
            .replace("kind = \"blocking\"", "kind = \"blocking\"\nreplicas = 2");
        let p = problems(&bad);
        for (path, what) in [
            ("units.filter.program", "absolute path"),
            ("units.filter.hosts", "'h9' is not in the cluster"),
            ("units.sort.replicas", "one replica"),
        ] {
            assert!(
                p.iter().any(|p| p.path == path && p.message.contains(what)),
                "{path}: {p:?}"
            );
        }
        assert!(
            p.windows(2).all(|w| w[0].line <= w[1].line),
            "sorted by line: {p:?}"
        );
        // A key the format does not have is one problem naming it.
        let p = problems(&GOOD.replace("replicas = 3", "replica = 3"));
        assert!(p[0].message.contains("replica"), "{p:?}");
    }
}
