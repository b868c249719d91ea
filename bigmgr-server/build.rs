//! Builds the web console (`bigmgr-ui/`, Vue + Vite) and embeds it in `bigmgr`, so
//! `bigmgr serve` serves it at `/` with nothing else to install. Runs `npm ci` when the
//! dependencies are missing or the lock file changed, then `npm run build` into `OUT_DIR`, and
//! writes `ui_assets.rs`: every built file (embedded with `include_bytes!`) and the hash of the
//! sources it was built from ([`ui_sources::hash`]).
//!
//! `BIGMGR_UI=skip` embeds no console; `BIGMGR_UI=require` (the test command sets it) fails the
//! build when the console cannot be built; by default a failure is a warning and the server
//! serves a page saying how to build it.

#[path = "src/ui_sources.rs"]
mod ui_sources;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BIGMGR_UI");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/ui_sources.rs");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let ui = ui_sources::source_dir(&manifest);
    let mode = std::env::var("BIGMGR_UI").unwrap_or_default();
    let dist = out.join("ui");
    let result = if mode == "skip" {
        Err("BIGMGR_UI=skip".to_string())
    } else {
        build(&ui, &dist)
    };
    let code = match result {
        Ok(hash) => assets(&dist, &hash),
        Err(why) => {
            if mode == "require" {
                panic!("the web console (bigmgr-ui/) could not be built: {why}");
            }
            println!("cargo:warning=the web console is not embedded: {why}");
            format!(
                "/// The built console's files (none: it was not built).\n\
                 pub static ASSETS: &[(&str, &[u8])] = &[];\n\
                 /// The hash of the sources the console was built from.\n\
                 pub static SOURCES_HASH: &str = \"\";\n\
                 /// Why there is no console, if there is none.\n\
                 pub static NOT_BUILT: Option<&str> = Some({why:?});\n"
            )
        }
    };
    std::fs::write(out.join("ui_assets.rs"), code).expect("write ui_assets.rs");
}

/// Builds the console from `ui` into `dist`; the hash of its sources.
fn build(ui: &Path, dist: &Path) -> Result<String, String> {
    // Also while it is missing: its arrival must build the console.
    println!(
        "cargo:rerun-if-changed={}",
        ui.join("package.json").display()
    );
    if !ui.join("package.json").is_file() {
        return Err(format!("{} has no package.json", ui.display()));
    }
    let inputs = ui_sources::inputs(ui).map_err(|e| format!("{}: {e}", ui.display()))?;
    for dir in ui_sources::INPUT_DIRS {
        println!("cargo:rerun-if-changed={}", ui.join(dir).display());
    }
    for rel in inputs.iter().filter(|r| !r.contains('/')) {
        println!("cargo:rerun-if-changed={}", ui.join(rel).display());
    }
    let hash = ui_sources::hash(ui).map_err(|e| format!("hashing {}: {e}", ui.display()))?;
    // Downloads are cached under the workspace's target/, as everything else the tests fetch.
    let cache = ui.parent().unwrap_or(ui).join("target").join("npm-cache");
    let npm = |args: &[&str]| -> Result<(), String> {
        let output = Command::new("npm")
            .args(args)
            .current_dir(ui)
            .env("npm_config_cache", &cache)
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("npm_config_update_notifier", "false")
            .output()
            .map_err(|e| format!("cannot run npm ({e}); install Node.js 20 and npm"))?;
        if output.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "`npm {}` failed ({}):\n{}",
            args.join(" "),
            output.status,
            tail.join("\n")
        ))
    };
    if needs_install(ui) {
        npm(&["ci"])?;
    }
    let dist_arg = dist.to_string_lossy().into_owned();
    npm(&["run", "build", "--", "--outDir", &dist_arg, "--emptyOutDir"])?;
    if !dist.join("index.html").is_file() {
        return Err(format!(
            "the build wrote no {}",
            dist.join("index.html").display()
        ));
    }
    precompress(dist);
    Ok(hash)
}

/// Writes `<file>.gz` beside every text file of `dist` over 1 KiB (`gzip -9 -n`, on every
/// Debian), which the server sends to browsers that accept gzip. Without gzip, nothing is
/// precompressed (a warning) and the files go as they are.
fn precompress(dist: &Path) {
    let mut files = Vec::new();
    collect(dist, dist, &mut files);
    for (rel, path) in files {
        let text = [".js", ".css", ".html", ".svg", ".json", ".map", ".txt"]
            .iter()
            .any(|ext| rel.ends_with(ext));
        let big = std::fs::metadata(&path).is_ok_and(|m| m.len() > 1024);
        if !(text && big) {
            continue;
        }
        let done = Command::new("gzip")
            .args(["-9", "-n", "-k", "-f", &path])
            .status();
        if !done.is_ok_and(|s| s.success()) {
            println!("cargo:warning=cannot gzip {rel}: the console is served uncompressed");
            return;
        }
    }
}

/// Whether `npm ci` must run: no installed tree, or a lock file newer than it.
fn needs_install(ui: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(&ui.join("node_modules").join(".package-lock.json")),
        modified(&ui.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => lock > installed,
        _ => true,
    }
}

/// `ui_assets.rs` for the console built into `dist` from sources hashing to `hash`.
fn assets(dist: &Path, hash: &str) -> String {
    let mut files = Vec::new();
    collect(dist, dist, &mut files);
    files.sort();
    let mut code = String::from(
        "/// The built console's files: path under `/`, and bytes.\n\
         pub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (rel, path) in &files {
        let _ = writeln!(code, "    ({rel:?}, include_bytes!({path:?})),");
    }
    let _ = write!(
        code,
        "];\n\
         /// The hash of the sources the console was built from.\n\
         pub static SOURCES_HASH: &str = {hash:?};\n\
         /// Why there is no console, if there is none.\n\
         pub static NOT_BUILT: Option<&str> = None;\n"
    );
    code
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, path.to_string_lossy().into_owned()));
        }
    }
}
