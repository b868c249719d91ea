//! The layering of core's modules (the "Layers" map in `lib.rs`): each top-level module may
//! name only modules of lower layers, so the import graph has no cycle. Read from the sources,
//! so a new `use crate::…` that climbs a layer fails here with the file that does it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first (`error` and `fsutil` are below everything).
const LAYERS: &[&[&str]] = &[
    &[
        "model", "name", "address", "secret", "shell", "duration", "metrics", "tls",
    ],
    &["stack", "auth", "transport", "sched", "policy"],
    &["store", "plan", "placement"],
    &[
        "render",
        "agent",
        "join",
        "bootstrap",
        "database",
        "assistant",
    ],
    &["engine", "grpc", "spec"],
    &["view", "request", "advisor", "spec_schema", "pipeline"],
    &["manager", "testing"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules a source file names as `crate::<module>` (in paths and in
/// `use crate::{a::…, b::…}` groups), its unit tests and comments left out.
fn named_modules(src: &str) -> Vec<String> {
    let code = src.split("#[cfg(test)]\nmod tests").next().unwrap_or(src);
    let code: String = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let item = item.trim();
                if item.contains("::") {
                    found.push(ident(item));
                }
            }
        } else {
            let m = ident(rest);
            if rest[m.len()..].starts_with("::") {
                found.push(m);
            }
        }
    }
    found
}

#[test]
fn modules_name_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut climbs = BTreeMap::new();
    let mut unplaced = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(top.as_str(), "lib" | "error" | "fsutil") {
            continue;
        }
        let Some(own) = layer_of(&top) else {
            unplaced.push(top);
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for m in named_modules(&text) {
            if m == top || matches!(m.as_str(), "error" | "fsutil" | "") {
                continue;
            }
            match layer_of(&m) {
                Some(l) if l < own => {}
                _ => {
                    climbs.insert(format!("{} → {m}", rel.display()), ());
                }
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules missing from LAYERS (place them in a layer here and in lib.rs): {unplaced:?}"
    );
    let climbs: Vec<_> = climbs.into_keys().collect();
    assert!(
        climbs.is_empty(),
        "these files name a module of their own layer or above (a cycle in the making): {climbs:#?}"
    );
}

#[test]
fn the_reader_sees_paths_and_groups() {
    let src = "use crate::model::Host;\nuse crate::{auth::Role, store::{A, B}, Result};\n\
               // crate::manager::x in a comment\nlet _ = crate::view::follow;\n";
    assert_eq!(named_modules(src), ["model", "auth", "store", "view"]);
}

/// The frontends go through the Manager (docs/design.md §5): none of them names the store.
#[test]
fn no_frontend_reaches_the_store() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut offenders = Vec::new();
    for krate in [
        "bigmgr-server",
        "bigmgr-client",
        "bigmgr-py",
        "bigmgr-agent",
    ] {
        let mut files = Vec::new();
        rust_files(&repo.join(krate).join("src"), &mut files);
        assert!(!files.is_empty(), "{krate}/src has no Rust files");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            if text.contains("bigmgr_core::store") || text.contains(".store()") {
                offenders.push(f.strip_prefix(repo).unwrap().display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "these frontend files reach the store instead of the Manager: {offenders:?}"
    );
}
