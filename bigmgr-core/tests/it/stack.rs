//! Integration tests: stack. Real stack directories, built in a temporary directory (or the
//! shipped `stacks/`), loaded through `load_service` and `DirStackProvider`; every broken
//! case asserts the exact error variant and that it names the file, the field and the problem.

use bigmgr_core::Error;
use bigmgr_core::stack::manifest::load_service;
use bigmgr_core::stack::{
    Cardinality, Category, DEFAULT_TIMEOUT, DirStackProvider, PropertyType, RoleCommand,
    StackProvider, StackRef,
};
use bigmgr_test_support::{assert_contains, procs};
use std::path::{Path, PathBuf};
use std::time::Duration;

const ZOOKEEPER: &str = r#"
[service]
name = "zookeeper"
version = "3.8.4"
description = "A coordination service."

[[component]]
name = "zookeeper_server"
category = "server"
cardinality = "1+"
  [component.commands.start]
  timeout = "5m"
  retries = 2
  [component.commands.rebalance]
  timeout = 90
  script = "scripts/rebalance.sh"

[[component]]
name = "zookeeper_client"
category = "client"
cardinality = "0+"

[[config]]
name = "zoo.cfg"
template = "templates/zoo.cfg.hbs"
path = "conf/zoo.cfg"
  [[config.property]]
  name = "tickTime"
  type = "int"
  default = 2000
  description = "The tick."
  required = true
  [[config.property]]
  name = "clientPort"
  type = "port"
  default = 2181
  [[config.property]]
  name = "secret"
  type = "string"
  secret = true

[order]
"ZOOKEEPER_SERVER-STOP" = ["KAFKA_BROKER-STOP"]

[[provides]]
name = "client"
interface = "zookeeper"

[[peers]]
name = "ensemble"
interface = "zookeeper-peer"

[[port]]
name = "client"
port = 2181
component = "zookeeper_server"
"#;

const KAFKA: &str = r#"
[service]
name = "kafka"
version = "3.7.0"

[[component]]
name = "kafka_broker"
category = "server"
cardinality = "1-3"

[order]
"KAFKA_BROKER-START" = ["ZOOKEEPER_SERVER-START"]
"KAFKA_BROKER-RESTART" = ["zookeeper_server-restart"]

[[requires]]
name = "zookeeper"
interface = "zookeeper"
"#;

/// Writes `content` to `root/rel`, creating directories.
fn write(root: &Path, rel: &str, content: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

/// A service directory `root/stack/version/name` with its manifest and the given files.
fn service(root: &Path, stack: &str, name: &str, toml: &str, files: &[&str]) -> PathBuf {
    let dir = root.join(stack).join(name);
    write(&dir, "service.toml", toml);
    for f in files {
        let body = if f.ends_with(".hbs") {
            "tickTime={{tickTime}}\n"
        } else {
            "#!/bin/sh\nexit 0\n"
        };
        write(&dir, f, body);
    }
    dir
}

const ZK_FILES: &[&str] = &[
    "scripts/zookeeper_server.sh",
    "scripts/zookeeper_client.sh",
    "scripts/rebalance.sh",
    "templates/zoo.cfg.hbs",
];

/// The valid two-service stack `big/1.0.0` under a fresh root.
fn valid_stack(root: &Path, version: &str) {
    let v = format!("big/{version}");
    service(root, &v, "zookeeper", ZOOKEEPER, ZK_FILES);
    service(root, &v, "kafka", KAFKA, &["scripts/kafka_broker.sh"]);
}

/// A zookeeper service whose manifest is `ZOOKEEPER` with `from` replaced by `to`.
fn broken_zookeeper(root: &Path, from: &str, to: &str) -> PathBuf {
    assert!(ZOOKEEPER.contains(from), "the fixture has no {from:?}");
    service(
        root,
        "big/1.0.0",
        "zookeeper",
        &ZOOKEEPER.replacen(from, to, 1),
        ZK_FILES,
    )
}

/// The manifest error of a zookeeper service whose manifest is `ZOOKEEPER` with `from` replaced
/// by `to` (see [`broken_zookeeper`]), checked to name `field` (see [`manifest_error`]).
fn broken_manifest(from: &str, to: &str, field: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let dir = broken_zookeeper(tmp.path(), from, to);
    manifest_error(&dir, field)
}

/// The manifest error of `load_service(dir)`, checked to name `dir/service.toml` and `field`.
fn manifest_error(dir: &Path, field: &str) -> String {
    let err = load_service(dir).expect_err("the manifest is broken");
    let text = err.to_string();
    match err {
        Error::Manifest {
            file,
            field: got,
            message,
        } => {
            assert_eq!(
                file,
                dir.canonicalize().unwrap().join("service.toml"),
                "{text}"
            );
            assert_eq!(got, field, "{text}");
            assert_contains(&text, "service.toml");
            assert_contains(&text, field);
            message
        }
        other => panic!("expected Error::Manifest, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_two_service_stack_loads_with_everything_in_it() {
    let tmp = tempfile::tempdir().unwrap();
    valid_stack(tmp.path(), "1.0.0");
    let provider = DirStackProvider::new([tmp.path()]);
    assert_eq!(
        provider.list().await.unwrap(),
        vec![StackRef {
            name: "big".into(),
            version: "1.0.0".into()
        }]
    );
    let stack = provider.stack("big", Some("1.0.0")).await.unwrap();
    assert_eq!(
        stack.services.keys().collect::<Vec<_>>(),
        ["kafka", "zookeeper"]
    );

    let zk = stack.service("zookeeper").unwrap();
    assert_eq!(zk.version, "3.8.4");
    assert_eq!(zk.description, "A coordination service.");
    let server = zk.component("zookeeper_server").unwrap();
    assert_eq!(server.category, Category::Server);
    assert_eq!(server.cardinality, Cardinality::AtLeast(1));
    // All standard commands plus the custom one.
    assert_eq!(
        server.commands.keys().collect::<Vec<_>>(),
        [
            "check",
            "configure",
            "install",
            "rebalance",
            "remove",
            "restart",
            "start",
            "status",
            "stop"
        ]
    );
    let start = server.command("start").unwrap();
    assert_eq!(start.timeout, Duration::from_secs(300));
    assert_eq!(start.retries, 2);
    assert!(!start.once);
    assert!(start.script.is_absolute());
    assert!(
        start
            .script
            .ends_with("zookeeper/scripts/zookeeper_server.sh")
    );
    assert_eq!(server.command("stop").unwrap().timeout, DEFAULT_TIMEOUT);
    assert_eq!(
        server.command("status").unwrap().timeout,
        Duration::from_secs(60)
    );
    assert!(server.command("check").unwrap().once);
    let rebalance = server.command("rebalance").unwrap();
    assert_eq!(rebalance.timeout, Duration::from_secs(90));
    assert!(rebalance.script.ends_with("zookeeper/scripts/rebalance.sh"));

    // A client has the standard commands minus the server-only ones.
    let client = zk.component("zookeeper_client").unwrap();
    assert_eq!(client.category, Category::Client);
    assert_eq!(
        client.commands.keys().collect::<Vec<_>>(),
        ["check", "configure", "install", "remove"]
    );

    let cfg = &zk.configs[0];
    assert_eq!(cfg.name, "zoo.cfg");
    assert_eq!(cfg.path, "conf/zoo.cfg");
    assert_eq!(cfg.template, "tickTime={{tickTime}}\n");
    assert_eq!(cfg.properties.len(), 3);
    assert_eq!(cfg.properties[0].kind, PropertyType::Int);
    assert_eq!(cfg.properties[0].default, Some(serde_json::json!(2000)));
    assert!(cfg.properties[0].required);
    assert_eq!(cfg.properties[1].kind, PropertyType::Port);
    assert!(cfg.properties[2].secret);
    assert_eq!(cfg.properties[2].default, None);

    assert_eq!(zk.provides[0].interface, "zookeeper");
    assert_eq!(zk.peers[0].name, "ensemble");
    assert_eq!(zk.ports[0].port, 2181);
    assert_eq!(zk.ports[0].protocol, "tcp");

    let kafka = stack.service("kafka").unwrap();
    assert_eq!(
        kafka.component("kafka_broker").unwrap().cardinality,
        Cardinality::Range(1, 3)
    );
    assert_eq!(kafka.requires[0].interface, "zookeeper");
    let rc = |c: &str, m: &str| RoleCommand {
        component: c.into(),
        command: m.into(),
    };
    let rules: Vec<_> = stack
        .order_rules()
        .map(|r| (r.blocked.clone(), r.after.clone()))
        .collect();
    assert!(rules.contains(&(
        rc("kafka_broker", "start"),
        vec![rc("zookeeper_server", "start")]
    )));
    assert!(rules.contains(&(
        rc("kafka_broker", "restart"),
        vec![rc("zookeeper_server", "restart")]
    )));
    assert!(rules.contains(&(
        rc("zookeeper_server", "stop"),
        vec![rc("kafka_broker", "stop")]
    )));

    // The second request is served from the cache: the same Arc.
    let again = provider.stack("big", None).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&stack, &again));
}

#[test]
fn broken_toml_names_the_line() {
    let message = broken_manifest("version = \"3.8.4\"", "version = \"3.8.4", "-");
    assert_contains(&message, "not valid TOML");
    assert_contains(&message, "line 4");
}

#[test]
fn unknown_missing_and_mistyped_fields_are_named_with_their_path() {
    let message = broken_manifest(
        "cardinality = \"0+\"",
        "cardinality = \"0+\"\ncolour = \"red\"",
        "component[1].colour",
    );
    assert_contains(&message, "unknown field `colour`");
    assert!(
        message.contains("cardinality"),
        "lists the allowed fields: {message}"
    );

    let message = broken_manifest(
        "retries = 2",
        "retry = 2",
        "component[0].commands.start.retry",
    );
    assert_contains(&message, "unknown field `retry`");

    // Missing fields name the table; wrong types name the key.
    let message = broken_manifest("cardinality = \"0+\"\n", "\n", "component[1]");
    assert_contains(&message, "missing field `cardinality`");
    let message = broken_manifest(
        "retries = 2",
        "retries = \"two\"",
        "component[0].commands.start.retries",
    );
    assert_contains(&message, "invalid type: string \"two\"");
}

#[test]
fn bad_cardinality_says_what_is_allowed() {
    let message = broken_manifest(
        "cardinality = \"0+\"",
        "cardinality = \"some\"",
        "component[1].cardinality",
    );
    assert_contains(&message, "'some' is not a cardinality");
    assert_contains(&message, "1+");
}

#[test]
fn bad_timeout_and_category_and_port_are_named() {
    let message = broken_manifest(
        "timeout = \"5m\"",
        "timeout = \"5 days\"",
        "component[0].commands.start.timeout",
    );
    assert_contains(&message, "'5 days' is not a timeout");

    let message = broken_manifest(
        "category = \"client\"",
        "category = \"cli\"",
        "component[1].category",
    );
    assert_contains(&message, "\"server\" or \"client\"");

    let message = broken_manifest("port = 2181", "port = 70000", "port[0].port");
    assert_contains(&message, "1–65535");
}

#[test]
fn server_only_command_on_a_client_is_refused() {
    let message = broken_manifest(
        "cardinality = \"0+\"",
        "cardinality = \"0+\"\n  [component.commands.start]\n  timeout = 5",
        "component[1].commands.start",
    );
    assert_contains(&message, "server-only");
    assert_contains(&message, "zookeeper_client");
}

#[test]
fn missing_script_names_component_command_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = service(
        tmp.path(),
        "big/1.0.0",
        "zookeeper",
        ZOOKEEPER,
        &[
            "scripts/zookeeper_server.sh",
            "scripts/rebalance.sh",
            "templates/zoo.cfg.hbs",
        ],
    );
    let message = manifest_error(&dir, "component[1].script");
    assert_contains(&message, "component 'zookeeper_client'");
    assert_contains(&message, "command 'check'");
    assert_contains(
        &message,
        "zookeeper/scripts/zookeeper_client.sh does not exist",
    );

    // A per-command override that is missing names the command's own field.
    std::fs::remove_file(dir.join("scripts/rebalance.sh")).unwrap();
    write(&dir, "scripts/zookeeper_client.sh", "#!/bin/sh\n");
    let message = manifest_error(&dir, "component[0].commands.rebalance.script");
    assert_contains(&message, "command 'rebalance'");
    assert_contains(&message, "scripts/rebalance.sh");
}

#[test]
fn property_default_of_the_wrong_type() {
    let message = broken_manifest(
        "default = 2181",
        "default = \"2181\"",
        "config[0].property[1].default",
    );
    assert_contains(&message, "property 'clientPort'");
    assert_contains(&message, "is a string");
    assert_contains(&message, "port number");
}

#[test]
fn template_that_does_not_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = broken_zookeeper(tmp.path(), "\n", "\n");
    write(&dir, "templates/zoo.cfg.hbs", "tickTime={{#if tickTime}}\n");
    let message = manifest_error(&dir, "config[0].template");
    assert_contains(&message, "not valid Handlebars");
    assert_contains(&message, "zoo.cfg.hbs");

    std::fs::remove_file(dir.join("templates/zoo.cfg.hbs")).unwrap();
    let message = manifest_error(&dir, "config[0].template");
    assert_contains(&message, "does not exist");
}

#[test]
fn config_path_must_stay_in_the_unit_dir() {
    let message = broken_manifest("\"conf/zoo.cfg\"", "\"../zoo.cfg\"", "config[0].path");
    assert_contains(&message, "'../zoo.cfg'");
}

#[test]
fn duplicate_and_misnamed_things() {
    let message = broken_manifest(
        "name = \"zookeeper_client\"",
        "name = \"zookeeper_server\"",
        "component[1].name",
    );
    assert_contains(&message, "declared twice");

    let message = broken_manifest("name = \"zookeeper\"\n", "name = \"zk\"\n", "service.name");
    assert!(
        message.contains("'zk'") && message.contains("'zookeeper'"),
        "{message}"
    );

    broken_manifest(
        "name = \"zookeeper_client\"",
        "name = \"ZkClient\"",
        "component[1].name",
    );

    let message = broken_manifest(
        "\"ZOOKEEPER_SERVER-STOP\" = [\"KAFKA_BROKER-STOP\"]",
        "\"ZOOKEEPER_SERVER-STOP\" = [\"KAFKA_BROKER\"]",
        "order.\"ZOOKEEPER_SERVER-STOP\"[0]",
    );
    assert_contains(&message, "COMPONENT-COMMAND");
}

/// The error of loading `big/1.0.0` through a provider over `root`.
async fn stack_error(root: &Path) -> Error {
    DirStackProvider::new([root])
        .stack("big", Some("1.0.0"))
        .await
        .expect_err("the stack is broken")
}

/// The error of loading the valid stack whose kafka starts after `after` instead of after
/// `ZOOKEEPER_SERVER-START`.
async fn kafka_start_after(after: &str) -> Error {
    let tmp = tempfile::tempdir().unwrap();
    valid_stack(tmp.path(), "1.0.0");
    let rule = format!("[\"{after}\"]");
    let kafka = KAFKA.replace("[\"ZOOKEEPER_SERVER-START\"]", &rule);
    service(tmp.path(), "big/1.0.0", "kafka", &kafka, &[]);
    stack_error(tmp.path()).await
}

#[tokio::test]
async fn order_rule_naming_an_unknown_component() {
    match kafka_start_after("ZOOKEPER_SERVER-START").await {
        Error::Stack {
            stack,
            version,
            message,
        } => {
            assert_eq!((stack.as_str(), version.as_str()), ("big", "1.0.0"));
            assert_contains(&message, "\"KAFKA_BROKER-START\"");
            assert_contains(&message, "unknown component 'zookeper_server'");
            assert_contains(&message, "kafka/service.toml");
        }
        other => panic!("expected Error::Stack, got {other:?}"),
    }
}

#[tokio::test]
async fn order_rule_naming_a_command_the_component_lacks() {
    match kafka_start_after("ZOOKEEPER_CLIENT-START").await {
        Error::Stack { message, .. } => {
            assert_contains(&message, "command 'start'");
            assert_contains(&message, "'zookeeper_client'");
        }
        other => panic!("expected Error::Stack, got {other:?}"),
    }
}

#[tokio::test]
async fn cyclic_order_across_two_services() {
    let tmp = tempfile::tempdir().unwrap();
    valid_stack(tmp.path(), "1.0.0");
    // zookeeper's start now waits for kafka's start, which waits for zookeeper's.
    broken_zookeeper(
        tmp.path(),
        "[order]\n",
        "[order]\n\"ZOOKEEPER_SERVER-START\" = [\"KAFKA_BROKER-START\"]\n",
    );
    match stack_error(tmp.path()).await {
        Error::Cycle { cycle } => assert_eq!(
            cycle,
            [
                "KAFKA_BROKER-START",
                "ZOOKEEPER_SERVER-START",
                "KAFKA_BROKER-START"
            ]
        ),
        other => panic!("expected Error::Cycle, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failed_load_is_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    valid_stack(tmp.path(), "1.0.0");
    let zk = tmp.path().join("big/1.0.0/zookeeper");
    std::fs::remove_file(zk.join("scripts/zookeeper_client.sh")).unwrap();
    let provider = DirStackProvider::new([tmp.path()]);
    assert!(matches!(
        provider.stack("big", None).await,
        Err(Error::Manifest { .. })
    ));
    write(&zk, "scripts/zookeeper_client.sh", "#!/bin/sh\n");
    assert!(provider.stack("big", None).await.is_ok());
}

#[tokio::test]
async fn newest_version_is_chosen_and_earlier_roots_win() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    for v in ["1.2.0", "1.10.0", "1.9.3"] {
        valid_stack(second.path(), v);
    }
    // The same name+version in the first root hides the second root's, even if broken there.
    valid_stack(first.path(), "1.2.0");
    std::fs::write(
        second.path().join("big/1.2.0/kafka/service.toml"),
        "not toml [",
    )
    .unwrap();
    // A version directory with no service is not a version.
    std::fs::create_dir_all(second.path().join("big/2.0.0/empty")).unwrap();

    let provider = DirStackProvider::new([first.path(), second.path()]);
    let versions: Vec<String> = provider
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, ["1.2.0", "1.9.3", "1.10.0"]);

    let newest = provider.stack("big", None).await.unwrap();
    assert_eq!(newest.version, "1.10.0");
    let hidden = provider.stack("big", Some("1.2.0")).await.unwrap();
    assert!(
        hidden.services["kafka"]
            .dir
            .starts_with(first.path().canonicalize().unwrap())
    );

    match provider.stack("big", Some("3.0")).await {
        Err(Error::NotFound { kind, name }) => {
            assert_eq!(kind, "stack version");
            assert_contains(&name, "1.2.0, 1.9.3, 1.10.0");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match provider.stack("small", None).await {
        Err(Error::NotFound { kind, name }) => {
            assert_eq!(kind, "stack");
            assert!(name.contains("small") && name.contains("big"), "{name}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn the_shipped_demo_stack_loads() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks");
    let provider = DirStackProvider::new([root]);
    assert!(provider.list().await.unwrap().contains(&StackRef {
        name: "demo".into(),
        version: "1.0.0".into()
    }));
    let demo = provider.stack("demo", None).await.unwrap();
    assert_eq!(demo.version, "1.0.0");

    let hello = demo.service("hello").unwrap();
    let server = hello.component("hello_server").unwrap();
    assert_eq!(
        (server.category, server.cardinality),
        (Category::Server, Cardinality::AtLeast(1))
    );
    assert!(server.command("status").is_some());

    let greeter = demo.service("greeter").unwrap();
    let server = greeter.component("greeter_server").unwrap();
    assert_eq!(
        (server.category, server.cardinality),
        (Category::Server, Cardinality::AtLeast(1))
    );
    let client = greeter.component("greeter_client").unwrap();
    assert_eq!(
        (client.category, client.cardinality),
        (Category::Client, Cardinality::AtLeast(0))
    );
    assert!(client.command("start").is_none());
    assert!(client.command("check").unwrap().once);

    let rule = greeter.order.first().unwrap();
    assert_eq!(rule.blocked.to_string(), "GREETER_SERVER-START");
    assert_eq!(rule.after[0].to_string(), "HELLO_SERVER-START");
}

/// Runs a demo script command in `unit`, with the stack library at `lib` as the agent gives
/// it, and returns its exit code.
#[cfg(unix)]
fn run_demo(script: &Path, lib: &Path, unit: &Path, command: &str) -> i32 {
    let out = std::process::Command::new("sh")
        .arg(script)
        .arg(command)
        .env("BIGMGR_LIB", lib)
        .env("BIGMGR_UNIT_DIR", unit)
        .env("BIGMGR_HOST", "test-host")
        .env("BIGMGR_ADDRESS", "127.0.0.1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sh runs");
    out.status.code().unwrap_or(-1)
}

/// Kills (SIGKILL, its process group too) the daemon whose pid is in the file, if its command
/// line names the directory: the demo test's teardown, for a test that failed halfway.
#[cfg(unix)]
struct KillOnDrop {
    pidfile: PathBuf,
    dir: PathBuf,
}

#[cfg(unix)]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return;
        };
        if procs::mentions(pid, "cmdline", &self.dir.to_string_lossy()) {
            procs::kill_with_group(pid);
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_demo_server_scripts_really_run_and_are_idempotent() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../stacks");
    let demo = DirStackProvider::new([root])
        .stack("demo", None)
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("bigmgr.sh");
    bigmgr_core::agent::write_stacklib(&lib).unwrap();
    let unit = tmp.path().join("unit");
    let _daemon = KillOnDrop {
        pidfile: unit.join("hello.pid"),
        dir: tmp.path().to_path_buf(),
    };
    let script = demo
        .service("hello")
        .unwrap()
        .component("hello_server")
        .unwrap()
        .commands["start"]
        .script
        .clone();
    let steps = [
        ("status", 3),
        ("install", 0),
        ("install", 0),
        ("configure", 0),
        ("start", 0),
        ("start", 0),
        ("status", 0),
        ("check", 0),
        ("restart", 0),
        ("stop", 0),
        ("stop", 0),
        ("status", 3),
        ("start", 0),
        ("remove", 0),
        ("remove", 0),
        ("status", 3),
    ];
    for (command, want) in steps {
        assert_eq!(run_demo(&script, &lib, &unit, command), want, "{command}");
        if command == "install" {
            assert!(unit.join("installed").is_file());
        }
        if command == "configure" {
            assert!(unit.join("hello.run").is_file());
        }
    }
    assert_eq!(
        std::fs::read_dir(&unit).unwrap().count(),
        0,
        "remove empties the unit dir"
    );

    let client = demo
        .service("greeter")
        .unwrap()
        .component("greeter_client")
        .unwrap()
        .commands["install"]
        .script
        .clone();
    let cunit = tmp.path().join("client");
    for (command, want) in [
        ("check", 1),
        ("install", 0),
        ("configure", 0),
        ("configure", 0),
        ("check", 0),
        ("remove", 0),
        ("remove", 0),
    ] {
        assert_eq!(
            run_demo(&client, &lib, &cunit, command),
            want,
            "client {command}"
        );
    }
}

/// Issue 15, test 6: bad alert definitions are refused when the stack loads, naming the file
/// and the field; good ones load as written.
#[test]
fn bad_alert_definitions_are_refused_naming_file_and_field() {
    let alert = |body: &str| format!("[[alert]]\n{body}\n\n[[port]]");
    let cases: &[(&str, &str, &str)] = &[
        (
            "name = \"a\"\nkind = \"ping\"\ncomponent = \"zookeeper_server\"",
            "alert[0].kind",
            "'ping' is not a kind of alert",
        ),
        (
            "name = \"cpu\"\nkind = \"metric\"\nmetric = \"cpu_percent\"\ncritical = \"high\"",
            "alert[0].critical",
            "a metric threshold is a number, not string",
        ),
        (
            "name = \"p\"\nkind = \"port\"\ncomponent = \"zookeeper_server\"\nport = 2181\nwarning = 5",
            "alert[0].warning",
            "a response time is a duration",
        ),
        (
            "name = \"ruok\"\nkind = \"script\"\ncomponent = \"zookeeper_server\"\ncommand = \"ruok\"",
            "alert[0].command",
            "does not declare command 'ruok'",
        ),
        (
            "name = \"p\"\nkind = \"port\"\ncomponent = \"zookeeper_srv\"\nport = 2181",
            "alert[0].component",
            "names component 'zookeeper_srv'",
        ),
        (
            "name = \"p\"\nkind = \"port\"\ncomponent = \"zookeeper_server\"\nport = 70000",
            "alert[0].port",
            "1–65535",
        ),
        (
            "name = \"p\"\nkind = \"port\"\ncomponent = \"zookeeper_server\"\nport = \"{{#if}}\"",
            "alert[0].port",
            "not a valid template",
        ),
        (
            "name = \"p\"\nkind = \"port\"\ncomponent = \"zookeeper_server\"\nport = 2181\nurl = \"http://x\"",
            "alert[0].url",
            "a port alert takes no 'url'",
        ),
        (
            "name = \"w\"\nkind = \"web\"\ncomponent = \"zookeeper_server\"\nurl = \"ftp://x\"",
            "alert[0].url",
            "not an http:// or https:// URL",
        ),
        (
            "name = \"m\"\nkind = \"metric\"\nmetric = \"temperature\"\ncritical = 90",
            "alert[0].metric",
            "'temperature' is not a host metric",
        ),
        (
            "name = \"m\"\nkind = \"metric\"\nmetric = \"load1\"\nwarning = 9\ncritical = 4",
            "alert[0].warning",
            "above the critical one",
        ),
        (
            "name = \"m\"\nkind = \"metric\"\nmetric = \"load1\"\ncritical = 4\ninterval = \"soon\"",
            "alert[0].interval",
            "'soon' is not a duration",
        ),
        (
            "name = \"m\"\nkind = \"metric\"\nmetric = \"load1\"\ncritical = 4\ncolour = \"red\"",
            "alert[0].colour",
            "unknown field `colour`",
        ),
        (
            "name = \"Bad Name\"\nkind = \"metric\"\nmetric = \"load1\"\ncritical = 4",
            "alert[0].name",
            "is not an alert name",
        ),
        (
            "name = \"p\"\nkind = \"port\"\ncomponent = \"zookeeper_server\"\nport = 2181\n\
             advise = { rule = \"replica.lagging\" }",
            "alert[0].advise.rule",
            "'replica.lagging' is not an advisor rule an alert can name",
        ),
        (
            "name = \"p\"\nkind = \"port\"\ncomponent = \"zookeeper_server\"\nport = 2181\n\
             advise = { rule = \"replica.not_replicating\", primary = \"zookeeper_server\" }",
            "alert[0].advise.primary",
            "'zookeeper_server' is not another component of this service",
        ),
        (
            "name = \"p\"\nkind = \"port\"\ncomponent = \"zookeeper_server\"\nport = 2181\n\
             advise = { rule = \"replica.not_replicating\" }",
            "alert[0].advise.primary",
            "needs the component of the primary",
        ),
        (
            "name = \"m\"\nkind = \"metric\"\nmetric = \"load1\"\ncritical = 4\n\
             advise = { rule = \"replica.not_replicating\", primary = \"zookeeper_server\" }",
            "alert[0].advise",
            "a metric alert is about hosts",
        ),
    ];
    for (body, field, says) in cases {
        let message = broken_manifest("[[port]]", &alert(body), field);
        assert_contains(&message, *says);
    }
    let twice = format!(
        "{}\n{}",
        alert("name = \"m\"\nkind = \"metric\"\nmetric = \"load1\"\ncritical = 4")
            .trim_end_matches("[[port]]"),
        alert("name = \"m\"\nkind = \"metric\"\nmetric = \"load1\"\ncritical = 5")
    );
    let message = broken_manifest("[[port]]", &twice, "alert[1].name");
    assert_contains(&message, "declared twice");

    // Good ones load as written.
    let tmp = tempfile::tempdir().unwrap();
    let good = alert(
        "name = \"client\"\nkind = \"port\"\ncomponent = \"zookeeper_server\"\n\
         port = \"{{clientPort}}\"\ninterval = \"10s\"\nfor = \"30s\"\nwarning = \"200ms\"\n\
         critical = \"1s\"\n\n[[alert]]\nname = \"busy\"\nkind = \"metric\"\n\
         metric = \"cpu_percent\"\nwindow = \"10m\"\nwarning = 80\ncritical = 95.5",
    );
    let dir = broken_zookeeper(tmp.path(), "[[port]]", &good);
    let def = load_service(&dir).expect("good alerts load");
    assert_eq!(def.alerts.len(), 2);
    assert_eq!(def.alerts[0].qualified(&def.name), "zookeeper.client");
    assert_eq!(def.alerts[0].interval, std::time::Duration::from_secs(10));
    assert_eq!(def.alerts[0].hold, std::time::Duration::from_secs(30));
    assert_eq!(
        def.alerts[1].check,
        bigmgr_core::stack::AlertCheck::Metric {
            metric: bigmgr_core::stack::Metric::CpuPercent,
            window: std::time::Duration::from_secs(600),
            warning: Some(80.0),
            critical: Some(95.5),
        }
    );
}

/// Log diagnoses a stack teaches the advisor: a bad one is refused naming file and field; a
/// good one loads, lower-cased.
#[test]
fn advice_rules_are_checked_when_the_stack_loads() {
    let advice = |body: &str| format!("[[advice]]\n{body}\n\n[[port]]");
    let message = broken_manifest(
        "[[port]]",
        &advice("name = \"x\"\nmatch = []\ntitle = \"t\"\nhint = \"h\""),
        "advice[0].match",
    );
    assert_contains(&message, "substrings");
    let message = broken_manifest(
        "[[port]]",
        &advice("name = \"x\"\nmatch = [\"a\"]\ntitle = \" \"\nhint = \"h\""),
        "advice[0].title",
    );
    assert_contains(&message, "the title is text");
    let tmp = tempfile::tempdir().unwrap();
    let dir = broken_zookeeper(
        tmp.path(),
        "[[port]]",
        &advice("name = \"quorum\"\nmatch = [\"No Quorum\"]\ntitle = \"t\"\nhint = \"h\""),
    );
    let def = load_service(&dir).expect("loads");
    assert_eq!(def.advice[0].any, ["no quorum"]);
}
