//! The client's commands on clusters, hosts, stacks, service instances, users and tokens.

use super::output::{
    Column, Output, Table, age, bytes, col, field, items, print_fields, shown, text, time,
};
use super::{Result, in_cluster, list, post, remove_from, show};
use crate::cli::{
    AddServiceArgs, ClusterCommand, HostCommand, ServiceCommand, StackCommand, TokenCommand,
    UserCommand,
};
use crate::error::IoError;
use bigmgr_client::{Client, seg};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The columns of `bigmgr cluster list`.
const CLUSTERS: &[Column] = &[
    col("NAME", "name"),
    col("ID", "id"),
    shown("AGE", "created_at", age),
];

/// `bigmgr cluster …`
pub async fn cluster(client: &Client, out: Output, command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::List => list(client, out, "/clusters", CLUSTERS).await?,
        ClusterCommand::Create { name } => {
            post(client, out, "/clusters", &json!({ "name": name }), |c| {
                let name = field(c, "name");
                println!(
                    "cluster {name} created; agents join it with the token of `bigmgr cluster join-token {name}`"
                );
            })
            .await?;
        }
        ClusterCommand::Show { name } => {
            let c = client.get::<Value>(&in_cluster(&name, &[])).await?;
            if out.json {
                out.print_json(&c);
                return Ok(());
            }
            let hosts = client.list::<Value>(&in_cluster(&name, &["hosts"])).await?;
            let services = client
                .list::<Value>(&in_cluster(&name, &["services"]))
                .await?;
            let online = hosts.iter().filter(|h| h["state"] == "ONLINE").count();
            print_fields(&[
                ("name", field(&c, "name")),
                ("id", field(&c, "id")),
                ("created", time(c.get("created_at"))),
                ("hosts", format!("{} ({online} online)", hosts.len())),
                (
                    "services",
                    services
                        .iter()
                        .map(|s| field(s, "name"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ]);
        }
        ClusterCommand::Delete { name } => {
            client.delete(&in_cluster(&name, &[])).await?;
            out.done(format_args!("cluster {name} deleted"));
        }
        ClusterCommand::JoinToken { name } => {
            let path = in_cluster(&name, &["join-tokens"]);
            post(client, out, &path, &json!({}), print_join_token).await?;
        }
    }
    Ok(())
}

/// A join token on stdout (for `$(bigmgr cluster join-token c)`), and on stderr the whole
/// agent command, with the CA fingerprint agents pin when the server speaks TLS.
fn print_join_token(t: &Value) {
    println!("{}", field(t, "token"));
    if let Some(fp) = t["ca_fingerprint"].as_str() {
        eprintln!("the server's CA fingerprint (bigmgr-agent --ca-fingerprint): {fp}");
    }
    if let Some(cmd) = t["command"].as_str() {
        eprintln!("on each host, with its name, address and root:\n  {cmd}");
    }
}

/// The columns of `bigmgr host list`.
const HOSTS: &[Column] = &[
    col("NAME", "name"),
    col("ADDRESS", "address"),
    col("STATE", "state"),
    shown("HEARTBEAT", "last_heartbeat", |v| match v {
        Some(v) if v.is_i64() => format!("{} ago", age(Some(v))),
        _ => "-".to_string(),
    }),
    shown("CPU", "metrics", |m| {
        let cpu = m.and_then(|m| m["cpu_percent"].as_f64());
        cpu.map_or("-".to_string(), |p| format!("{p:.0}%"))
    }),
    shown("UNITS", "units", |u| items(u).len().to_string()),
];

/// `bigmgr host …`
pub async fn host(client: &Client, out: Output, command: HostCommand) -> Result<()> {
    match command {
        HostCommand::List { cluster } => {
            list(client, out, &in_cluster(&cluster, &["hosts"]), HOSTS).await?;
        }
        HostCommand::Show { cluster, host } => {
            show(
                client,
                out,
                &in_cluster(&cluster, &["hosts", &host]),
                print_host,
            )
            .await?;
        }
        HostCommand::Add {
            cluster,
            name,
            address,
        } => {
            let body = json!({ "name": name, "address": address });
            post(client, out, &in_cluster(&cluster, &["hosts"]), &body, |h| {
                let name = field(h, "name");
                println!(
                    "host {name} added to cluster {cluster}; start its agent with --name {name}"
                );
            })
            .await?;
        }
        HostCommand::SetAddress {
            cluster,
            host,
            address,
        } => {
            let h = client
                .patch(
                    &in_cluster(&cluster, &["hosts", &host]),
                    &json!({ "address": address }),
                )
                .await?;
            out.one(&h, |h| {
                let address = field(h, "address");
                println!("host {host} of cluster {cluster} now has address {address}");
            });
        }
        HostCommand::Remove { cluster, host } => {
            remove_from(client, out, &cluster, "host", &host).await?;
        }
        HostCommand::Bootstrap(args) => {
            return super::bootstrap::bootstrap(client, out, args).await;
        }
    }
    Ok(())
}

/// A host as `key: value` lines and a table of its units.
fn print_host(h: &Value) {
    let f = &h["facts"];
    let m = &h["metrics"];
    let os = if f.is_object() {
        format!(
            "{} {} ({}, kernel {})",
            field(f, "os"),
            field(f, "os_version"),
            field(f, "arch"),
            field(f, "kernel")
        )
    } else {
        "-".to_string()
    };
    let load = m["load"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|x| format!("{:.2}", x.as_f64().unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "-".to_string());
    print_fields(&[
        ("name", field(h, "name")),
        ("cluster", field(h, "cluster")),
        ("address", field(h, "address")),
        (
            "reported address",
            h["reported_address"].as_str().map_or("-".to_string(), |a| {
                format!("{a} (reported by its agent; `bigmgr host set-address` accepts it)")
            }),
        ),
        ("state", field(h, "state")),
        ("last heartbeat", time(h.get("last_heartbeat"))),
        ("os", os),
        ("cores", field(f, "cores")),
        (
            "memory",
            format!(
                "{} used of {}",
                bytes(m.get("memory_used_bytes")),
                bytes(f.get("memory_bytes"))
            ),
        ),
        (
            "disk",
            format!(
                "{} free of {}",
                bytes(m.get("disk_free_bytes").or(f.get("disk_free_bytes"))),
                bytes(f.get("disk_total_bytes"))
            ),
        ),
        (
            "cpu",
            m["cpu_percent"]
                .as_f64()
                .map_or("-".to_string(), |p| format!("{p:.1}%")),
        ),
        ("load", load),
    ]);
    let units = items(h.get("units"));
    if !units.is_empty() {
        println!();
        let columns = [
            col("UNIT", "id"),
            col("SERVICE", "service"),
            col("COMPONENT", "component"),
            col("STATE", "state"),
            HEALTH,
        ];
        Table::of(units, &columns).print();
    }
}

/// A unit's health column.
const HEALTH: Column = shown("HEALTH", "health", health);

/// A unit's health cell: `healthy`, `unhealthy: <message>` or `-`.
fn health(h: Option<&Value>) -> String {
    let Some(h) = h else {
        return "-".to_string();
    };
    match h["healthy"].as_bool() {
        Some(true) => "healthy".to_string(),
        Some(false) => format!("unhealthy: {}", field(h, "message")),
        None => "-".to_string(),
    }
}

/// `bigmgr stack …`
pub async fn stack(client: &Client, out: Output, command: StackCommand) -> Result<()> {
    match command {
        StackCommand::List => {
            let stacks = client.list("/stacks").await?;
            if out.json {
                out.print_json(&Value::Array(stacks));
                return Ok(());
            }
            let mut t = Table::new(&["STACK", "VERSION", "SERVICE", "COMPONENTS"]);
            for s in &stacks {
                if let Some(e) = s.get("error").filter(|e| !e.is_null()) {
                    t.row(vec![
                        field(s, "name"),
                        field(s, "version"),
                        "-".into(),
                        format!("failed to load: {}", text(Some(e))),
                    ]);
                    continue;
                }
                for svc in s["services"].as_array().into_iter().flatten() {
                    let components = svc["components"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|c| {
                            format!(
                                "{} ({} {})",
                                field(c, "name"),
                                field(c, "category"),
                                field(c, "cardinality")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    t.row(vec![
                        field(s, "name"),
                        field(s, "version"),
                        format!("{} {}", field(svc, "name"), field(svc, "version")),
                        components,
                    ]);
                }
            }
            t.print();
        }
    }
    Ok(())
}

/// `bigmgr service …`
pub async fn service(client: &Client, out: Output, command: ServiceCommand) -> Result<()> {
    match command {
        ServiceCommand::List { cluster } => {
            list(client, out, &in_cluster(&cluster, &["services"]), SERVICES).await?;
        }
        ServiceCommand::Show { cluster, name } => {
            let path = in_cluster(&cluster, &["services", &name]);
            show(client, out, &path, print_service).await?;
        }
        ServiceCommand::Remove { cluster, name } => {
            remove_from(client, out, &cluster, "service", &name).await?;
        }
        ServiceCommand::Add(args) => {
            let mut path = in_cluster(&args.cluster, &["services"]);
            if args.dry_run {
                path.push_str("?dry_run=true");
            }
            let s = client
                .post::<Value, _>(&path, &add_service_body(&args))
                .await?;
            if out.json {
                out.print_json(&s);
                return Ok(());
            }
            if args.dry_run {
                println!(
                    "service {} ({} {}/{}) can be added to cluster {}; nothing was added. Its units would be:",
                    field(&s, "name"),
                    field(&s, "stack"),
                    field(&s, "stack_version"),
                    field(&s, "service"),
                    args.cluster,
                );
                let columns = [
                    col("COMPONENT", "component"),
                    col("HOST", "host"),
                    col("WHY", "why"),
                ];
                Table::of(items(s.get("units")), &columns).print();
                return Ok(());
            }
            println!(
                "service {} added to cluster {}; `bigmgr job run {} deploy --service {} --wait` deploys it",
                field(&s, "name"),
                args.cluster,
                args.cluster,
                field(&s, "name")
            );
            print_units(&s);
        }
    }
    Ok(())
}

/// The body of `POST /clusters/{cluster}/services` (core's `AddService`); repeated `--place`
/// flags for one component add up.
pub fn add_service_body(args: &AddServiceArgs) -> Value {
    let mut placement: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (component, hosts) in &args.place {
        placement
            .entry(component)
            .or_default()
            .extend(hosts.iter().map(String::as_str));
    }
    let mut placement = serde_json::to_value(placement).unwrap_or_default();
    for (component, rule) in &args.count {
        placement[component] = serde_json::to_value(rule).unwrap_or_default();
    }
    json!({
        "name": args.name.as_deref().unwrap_or(&args.service),
        "stack": args.stack,
        "version": args.version,
        "service": args.service,
        "placement": placement,
    })
}

/// The columns of `bigmgr service list`.
const SERVICES: &[Column] = &[
    col("NAME", "name"),
    shown("STACK", "", |s| s.map_or(String::new(), stack_of)),
    col("SERVICE", "service"),
    shown("UNITS", "units", |u| items(u).len().to_string()),
    shown("STATES", "units", state_counts),
];

/// A service instance's stack and its version: `demo 1.0`.
fn stack_of(s: &Value) -> String {
    format!("{} {}", field(s, "stack"), field(s, "stack_version"))
}

/// `3 STARTED, 1 FAILED`.
fn state_counts(units: Option<&Value>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for u in items(units) {
        *counts.entry(field(u, "state")).or_default() += 1;
    }
    if counts.is_empty() {
        return "-".to_string();
    }
    counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A service instance as `key: value` lines and a table of its units.
fn print_service(s: &Value) {
    print_fields(&[
        ("name", field(s, "name")),
        ("id", field(s, "id")),
        ("stack", stack_of(s)),
        ("service", field(s, "service")),
        ("created", time(s.get("created_at"))),
    ]);
    println!();
    print_units(s);
}

/// The units table of a service instance.
fn print_units(s: &Value) {
    let columns = [
        col("UNIT", "id"),
        col("COMPONENT", "component"),
        col("HOST", "host"),
        col("STATE", "state"),
        HEALTH,
    ];
    Table::of(items(s.get("units")), &columns).print();
}

/// `bigmgr user …` (`/api/v1/users`).
pub async fn user(client: &Client, out: Output, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::List => {
            let columns = [
                col("NAME", "name"),
                col("ROLE", "role"),
                shown("AGE", "created_at", age),
            ];
            list(client, out, "/users", &columns).await?;
        }
        UserCommand::Create {
            name,
            role,
            password_stdin,
        } => {
            let mut body = json!({ "name": name, "role": role });
            if password_stdin {
                body["password"] = Value::String(read_password()?);
            }
            post(client, out, "/users", &body, |_| {
                println!("user {name} created with role {role}")
            })
            .await?;
        }
        UserCommand::Delete { name } => {
            client.delete(&format!("/users/{}", seg(&name))).await?;
            out.done(format_args!("user {name} deleted"));
        }
    }
    Ok(())
}

/// The first line of stdin, without its line end.
fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| IoError::new("<stdin>", e))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(super::Error::Config(
            "--password-stdin read an empty password".into(),
        ));
    }
    Ok(password)
}

/// A new token's secret, alone on its line (for `$(bigmgr … )`).
fn print_token(t: &Value) {
    println!("{}", field(t, "token"));
}

/// `bigmgr token …` (`/api/v1/users/{name}/tokens`, `/api/v1/tokens/{id}`).
pub async fn token(client: &Client, out: Output, command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Create { user, name } => {
            let path = format!("/users/{}/tokens", seg(&user));
            post(client, out, &path, &json!({ "name": name }), print_token).await?;
        }
        TokenCommand::Delete { id } => {
            client.delete(&format!("/tokens/{}", seg(&id))).await?;
            out.done(format_args!("token {id} deleted"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_merge_and_the_name_defaults_to_the_service() {
        let args = AddServiceArgs {
            cluster: "c".into(),
            name: None,
            stack: "demo".into(),
            service: "hello".into(),
            version: None,
            place: vec![
                ("hello_server".into(), vec!["h2".into()]),
                ("hello_server".into(), vec!["h1".into(), "h2".into()]),
            ],
            count: vec![(
                "hello_client".into(),
                bigmgr_core::placement::CountRule {
                    count: 2,
                    among: None,
                    pattern: Some("h*".into()),
                },
            )],
            dry_run: false,
        };
        assert_eq!(
            add_service_body(&args),
            json!({"name": "hello", "stack": "demo", "version": null, "service": "hello",
                   "placement": {"hello_server": ["h1", "h2"],
                                 "hello_client": {"count": 2, "match": "h*"}}})
        );
    }
}
