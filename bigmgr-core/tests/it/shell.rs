//! Values in files a shell reads: every shipped stack's shell-format templates, rendered with
//! arbitrary (type-valid) config values and sourced by a real `sh`, run nothing and deliver
//! every value byte for byte; a stack with an unquoted interpolation is refused at load, naming
//! the file and the line.

use bigmgr_core::model::{
    ClusterId, Host, HostFacts, HostId, HostState, ServiceConfigs, ServiceId, ServiceInstance,
    Unit, UnitId, UnitState,
};
use bigmgr_core::render::Topology;
use bigmgr_core::stack::{ConfigFormat, DirStackProvider, PropertyType, ServiceDef, StackProvider};
use bigmgr_core::{Error, shell};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const STACKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks");

/// Every shipped service that has a shell-format config.
async fn shell_services() -> Vec<Arc<ServiceDef>> {
    let provider = DirStackProvider::new([STACKS]);
    let mut out = Vec::new();
    for r in provider.list().await.expect("list the shipped stacks") {
        let stack = provider
            .stack(&r.name, Some(&r.version))
            .await
            .unwrap_or_else(|e| panic!("shipped stack {} {} loads: {e}", r.name, r.version));
        for def in stack.services.values() {
            if def.configs.iter().any(|c| c.format == ConfigFormat::Shell) {
                out.push(def.clone());
            }
        }
    }
    out
}

/// A cluster of three hosts with one unit of every component of `def` on each, its string
/// properties set to `strings` (cycled), the rest at their defaults.
fn topology(def: &Arc<ServiceDef>, strings: &[String]) -> (Topology, Vec<Unit>) {
    let hosts: Vec<Host> = (1..=3)
        .map(|i| Host {
            id: HostId(i),
            cluster: ClusterId(1),
            name: format!("h{i}"),
            address: format!("127.0.0.{}", i + 1),
            reported_address: None,
            state: HostState::Online,
            last_heartbeat: None,
            facts: Some(HostFacts {
                agent_root: format!("/var/lib/bigmgr agent/h{i}"),
                ..HostFacts::default()
            }),
            metrics: None,
        })
        .collect();
    let mut configs = ServiceConfigs::new();
    let mut next = strings.iter().cycle();
    for ct in &def.configs {
        for p in &ct.properties {
            if p.kind == PropertyType::String {
                let v = next.next().expect("at least one string").clone();
                configs
                    .entry(ct.name.clone())
                    .or_default()
                    .insert(p.name.clone(), serde_json::Value::String(v));
            }
        }
    }
    let instance = ServiceInstance {
        id: ServiceId(1),
        cluster: ClusterId(1),
        name: "svc".into(),
        stack: "s".into(),
        stack_version: "1".into(),
        service: def.name.clone(),
        created_at: 0,
        configs,
        host_overrides: Default::default(),
        config_version: 1,
    };
    let mut units = Vec::new();
    for (i, c) in def.components.iter().enumerate() {
        for h in &hosts {
            units.push(Unit {
                id: UnitId((i as i64) * 10 + h.id.0),
                service: instance.id,
                component: c.name.clone(),
                host: h.id,
                state: UnitState::Started,
                health: None,
                applied_version: None,
                applied_hash: None,
            });
        }
    }
    let topo = Topology::new(
        "c",
        vec![(instance, def.clone())],
        units.clone(),
        hosts,
        vec![],
    )
    .expect("topology");
    (topo, units)
}

/// The variables a rendered shell file assigns, in order (each `NAME=` at a line's start).
fn assigned(content: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in content.lines() {
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && line[name.len()..].starts_with('=') && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Sources `file` in `sh` from `dir` and returns each of `names`' values (NUL-separated
/// output), or the shell's complaint.
fn source(dir: &Path, file: &Path, names: &[String]) -> Result<Vec<Vec<u8>>, String> {
    let mut script = format!(
        ". {}; printf '%s\\0'",
        shell::quote(&file.to_string_lossy())
    );
    for n in names {
        script.push_str(&format!(" \"${n}\""));
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .map_err(|e| format!("run sh: {e}"))?;
    if !out.status.success() || !out.stderr.is_empty() {
        return Err(format!(
            "sh exited {} saying: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut values: Vec<Vec<u8>> = out.stdout.split(|b| *b == 0).map(<[u8]>::to_vec).collect();
    values.pop(); // after the last NUL
    Ok(values)
}

/// Fragments a hostile value is made of: every way out of quoting that a shell knows, each
/// trying to create `pwned` in the working directory.
const FRAGMENTS: &[&str] = &[
    "'",
    "\"",
    "\\",
    "$(touch pwned)",
    "`touch pwned`",
    "';touch pwned;'",
    "\";touch pwned;\"",
    "${IFS}",
    "$HOME",
    "$",
    ";",
    "&",
    "|",
    "#",
    "*",
    " ",
    "\t",
    "~",
    "!",
    "{",
    "}",
    "=",
    "ünï",
    "😀",
    "x",
    "--",
];

fn hostile() -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(FRAGMENTS).prop_map(str::to_string);
    let printable = prop::char::range(' ', '~').prop_map(|c| c.to_string());
    prop::collection::vec(prop_oneof![3 => fragment, 1 => printable], 0..12)
        .prop_map(|parts| parts.concat())
}

/// Renders every unit's shell files of every service twice — with `values`, and with unique
/// harmless tokens in their place — sources both in `sh`, and checks that nothing ran and that
/// each variable holds, byte for byte, what the token rendering holds with each token replaced
/// by its value.
fn check_all(services: &[Arc<ServiceDef>], values: &[String]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens: Vec<String> = (0..values.len()).map(|i| format!("QZX{i}XZQ")).collect();
    for def in services {
        let (hostile_topo, units) = topology(def, values);
        let (token_topo, _) = topology(def, &tokens);
        for unit in &units {
            let hostile_files = hostile_topo.render(unit).map_err(TestCaseError::fail)?;
            let token_files = token_topo.render(unit).map_err(TestCaseError::fail)?;
            for (ct, (hf, tf)) in def
                .configs
                .iter()
                .zip(hostile_files.iter().zip(&token_files))
            {
                if ct.format != ConfigFormat::Shell {
                    continue;
                }
                let names = assigned(&tf.content);
                prop_assert!(!names.is_empty(), "{} assigns nothing", ct.name);
                let (h_path, t_path) =
                    (dir.path().join("hostile.env"), dir.path().join("token.env"));
                std::fs::write(&h_path, &hf.content).unwrap();
                std::fs::write(&t_path, &tf.content).unwrap();
                let expected = source(dir.path(), &t_path, &names).map_err(TestCaseError::fail)?;
                let got = source(dir.path(), &h_path, &names).map_err(|e| {
                    TestCaseError::fail(format!(
                        "{}/{} of {}: {e}\n--- rendered:\n{}",
                        def.name, ct.name, unit.component, hf.content
                    ))
                })?;
                prop_assert!(
                    !dir.path().join("pwned").exists(),
                    "sourcing {}/{} ran a command:\n{}",
                    def.name,
                    ct.name,
                    hf.content
                );
                for ((name, want), got) in names.iter().zip(&expected).zip(&got) {
                    let mut want = String::from_utf8(want.clone()).unwrap();
                    // Longest index first, so QZX1XZQ is not taken for a prefix of QZX10XZQ.
                    for i in (0..tokens.len()).rev() {
                        want = want.replace(&tokens[i], &values[i]);
                    }
                    prop_assert_eq!(
                        want.as_bytes(),
                        got.as_slice(),
                        "{}/{} of {}: ${} differs\n--- rendered:\n{}",
                        def.name,
                        ct.name,
                        unit.component,
                        name,
                        hf.content
                    );
                }
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn shipped_shell_templates_source_any_value_byte_for_byte() {
    let services = shell_services().await;
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "zookeeper",
        "etcd",
        "mariadb",
        "redis",
        "node_exporter",
        "prometheus",
    ] {
        assert!(
            names.contains(&want),
            "{want} has a shell-format config: {names:?}"
        );
    }
    // The examples first, then generated values.
    let fixed: Vec<String> = FRAGMENTS.iter().map(|f| format!("a{f}b")).collect();
    check_all(&services, &fixed).expect("the fixed hostile values");
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(hostile(), 1..8), |values| {
            check_all(&services, &values)
        })
        .unwrap();
}

/// `shell::quote` on any string (newlines and all control characters but NUL, which no shell
/// variable can hold): `sh` reads it back byte for byte and runs nothing.
#[test]
fn quote_round_trips_any_string_through_sh() {
    let dir = tempfile::tempdir().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let any = prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(FRAGMENTS).prop_map(str::to_string),
            1 => any::<char>().prop_filter("no NUL", |c| *c != '\0').prop_map(|c| c.to_string()),
            1 => Just("\n".to_string()),
        ],
        0..16,
    )
    .prop_map(|p| p.concat());
    runner
        .run(&any, |v| {
            let file = dir.path().join("v.env");
            std::fs::write(&file, format!("V={}\n", shell::quote(&v))).unwrap();
            let got = source(dir.path(), &file, &["V".to_string()]).map_err(TestCaseError::fail)?;
            prop_assert!(!dir.path().join("pwned").exists(), "{v:?} ran a command");
            prop_assert_eq!(got, vec![v.into_bytes()]);
            Ok(())
        })
        .unwrap();
}

/// Writes a one-service stack whose config `path` has template `template`; returns its root.
fn stack_with(dir: &Path, path: &str, format: Option<&str>, template: &str) -> PathBuf {
    let svc = dir.join("s/1.0.0/svc");
    std::fs::create_dir_all(svc.join("templates")).unwrap();
    std::fs::write(svc.join("run.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::write(svc.join("templates/t.hbs"), template).unwrap();
    let format = format
        .map(|f| format!("format = \"{f}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        svc.join("service.toml"),
        format!(
            "[service]\nname = \"svc\"\nversion = \"1\"\n\n[[component]]\nname = \"svc_server\"\n\
             category = \"server\"\ncardinality = \"1+\"\nscript = \"run.sh\"\n\n[[config]]\n\
             name = \"t\"\ntemplate = \"templates/t.hbs\"\npath = \"{path}\"\n{format}\n  \
             [[config.property]]\n  name = \"v\"\n  type = \"string\"\n  default = \"x\"\n"
        ),
    )
    .unwrap();
    dir.to_path_buf()
}

async fn load(root: &Path) -> Result<(), Error> {
    DirStackProvider::new([root])
        .stack("s", None)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn an_unquoted_interpolation_in_a_shell_template_is_refused_naming_file_and_line() {
    let bad = "# settings\nGOOD={{shell_quote v}}\nBAD=\"{{v}}\"\n";
    for (path, format) in [
        ("conf/app.env", None),
        ("conf/app-env.sh", None),
        ("conf/app.conf", Some("shell")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = stack_with(dir.path(), path, format, bad);
        let e = load(&root).await.expect_err(path).to_string();
        assert!(
            e.contains("templates/t.hbs:3:") && e.contains("shell_quote v"),
            "{path}: {e}"
        );
    }
    // The same file read by a daemon (format text) is not a shell's business.
    let dir = tempfile::tempdir().unwrap();
    load(&stack_with(dir.path(), "conf/app.conf", None, bad))
        .await
        .expect("a text-format template may interpolate as it likes");
    // A shell-read path cannot be declared text to dodge the check.
    let dir = tempfile::tempdir().unwrap();
    let e = load(&stack_with(dir.path(), "conf/app.env", Some("text"), bad))
        .await
        .expect_err("text on an .env")
        .to_string();
    assert!(e.contains("format") && e.contains("shell"), "{e}");
    // Quoted inside the template's own quotes, in a comment, or as a command: refused too.
    for (template, needle) in [
        ("A=\"{{shell_quote v}}\"\n", "inside double quotes"),
        ("# {{shell_quote v}}\n", "inside a # comment"),
        ("{{shell_quote v}}\n", "not the value of an assignment"),
        ("A=$(cat {{shell_quote v}})\n", "command substitutions"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let e = load(&stack_with(dir.path(), "app.env", None, template))
            .await
            .expect_err(template)
            .to_string();
        assert!(
            e.contains(needle) && e.contains("t.hbs:1:"),
            "{template}: {e}"
        );
    }
}

/// Config strings are one line: a newline would add a line to a daemon's config file.
#[test]
fn config_strings_refuse_control_characters_and_addresses_are_checked() {
    use serde_json::json;
    for bad in ["a\nloadmodule /tmp/x.so", "a\rb", "a\0b", "\u{1b}[31m"] {
        let e = PropertyType::String.check(&json!(bad)).unwrap_err();
        assert!(e.contains("control character"), "{bad:?}: {e}");
    }
    assert!(PropertyType::String.check(&json!("a\tb 'c' $(d)")).is_ok());
    assert!(PropertyType::Address.check(&json!("10.0.0.1")).is_ok());
    assert!(PropertyType::Address.check(&json!("zk-1.example")).is_ok());
    for bad in [json!("$(id)"), json!("a b"), json!(1)] {
        assert!(PropertyType::Address.check(&bad).is_err(), "{bad}");
    }
}
