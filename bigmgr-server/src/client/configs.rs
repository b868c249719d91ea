//! `bigmgr config|unit|relation …`: config versions, snapshots and applying changes to stale
//! units; units with their staleness; relations and their events.

use super::jobs::{follow_and_report, report};
use super::output::{
    Column, Output, Table, col, field, items, print_fields, shown, target, text, time,
};
use super::{Error, Result, in_cluster, list, post, remove_from, show};
use crate::cli::{ConfigCommand, RelationCommand, SetConfigArgs, UnitCommand};
use bigmgr_client::Client;
use bigmgr_core::model::JobId;
use bigmgr_core::view::follow;
use serde_json::{Map, Value, json};

/// `/clusters/{cluster}/services/{service}/configs`.
fn configs_path(cluster: &str, service: &str) -> String {
    in_cluster(cluster, &["services", service, "configs"])
}

/// `bigmgr config …`
pub async fn config(client: &Client, out: Output, command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Show {
            cluster,
            service,
            version,
        } => {
            let version = match version {
                Some(v) => v.to_string(),
                None => {
                    let s = client
                        .get::<Value>(&in_cluster(&cluster, &["services", &service]))
                        .await?;
                    field(&s, "config_version")
                }
            };
            let path = format!("{}/{version}", configs_path(&cluster, &service));
            show(client, out, &path, print_version).await?;
        }
        ConfigCommand::History { cluster, service } => {
            let columns = [
                col("VERSION", "version"),
                col("AUTHOR", "author"),
                shown("TIME", "created_at", time),
                col("MESSAGE", "message"),
            ];
            list(client, out, &configs_path(&cluster, &service), &columns).await?;
        }
        ConfigCommand::Set(args) => {
            let body = set_body(&args)?;
            let v = client
                .patch::<Value, _>(&configs_path(&args.cluster, &args.service), &body)
                .await?;
            out.one(&v, |v| {
                println!(
                    "config version {} of {} saved; its units are stale until `bigmgr config apply {} --service {}`",
                    field(v, "version"),
                    args.service,
                    args.cluster,
                    args.service
                );
            });
        }
        ConfigCommand::Diff {
            cluster,
            service,
            from,
            to,
        } => {
            let path = format!(
                "{}/diff?from={from}&to={to}",
                configs_path(&cluster, &service)
            );
            show(client, out, &path, |diff| {
                let rows = items(Some(diff));
                if rows.is_empty() {
                    println!("versions {from} and {to} of {service} have the same values");
                    return;
                }
                let columns = [
                    col("CONFIG TYPE", "config_type"),
                    col("HOST", "host"),
                    col("PROPERTY", "property"),
                    col("FROM", "from"),
                    col("TO", "to"),
                ];
                Table::of(rows, &columns).print();
            })
            .await?;
        }
        ConfigCommand::Rollback {
            cluster,
            service,
            version,
            message,
        } => {
            let mut body = json!({ "to": version });
            if let Some(m) = message {
                body["message"] = m.into();
            }
            let path = format!("{}/rollback", configs_path(&cluster, &service));
            post(client, out, &path, &body, |v| {
                println!(
                    "config version {} of {service} has version {version}'s values; its units are stale until `bigmgr config apply {cluster} --service {service}`",
                    field(v, "version"),
                );
            })
            .await?;
        }
        ConfigCommand::Apply {
            cluster,
            service,
            wait,
        } => return apply(client, out, &cluster, service, wait).await,
        ConfigCommand::Snapshot {
            cluster,
            name,
            message,
        } => {
            let body = json!({ "name": name, "message": message.unwrap_or_default() });
            let path = in_cluster(&cluster, &["snapshots"]);
            post(client, out, &path, &body, |s| {
                let versions = versions(s.get("versions"));
                println!("snapshot {} taken: {versions}", field(s, "name"));
            })
            .await?;
        }
        ConfigCommand::Snapshots { cluster } => {
            let path = in_cluster(&cluster, &["snapshots"]);
            let columns = [
                col("NAME", "name"),
                col("AUTHOR", "author"),
                shown("TIME", "created_at", time),
                shown("VERSIONS", "versions", versions),
                col("MESSAGE", "message"),
            ];
            list(client, out, &path, &columns).await?;
        }
        ConfigCommand::Restore { cluster, name } => {
            let path = in_cluster(&cluster, &["snapshots", &name, "restore"]);
            post(client, out, &path, &json!({}), |restored| {
                let restored = items(Some(restored));
                if restored.is_empty() {
                    println!("nothing changed since snapshot {name}");
                    return;
                }
                println!(
                    "snapshot {name} restored: {} service(s) got a new config version; their units are stale until `bigmgr config apply {cluster}`",
                    restored.len()
                );
                for v in restored {
                    println!(
                        "{} version {}: {}",
                        field(v, "service"),
                        field(v, "version"),
                        field(v, "message")
                    );
                }
            })
            .await?;
        }
    }
    Ok(())
}

/// The merge patch of `bigmgr config set`: the values (and nulls for `--unset`) of one config
/// type, in the service layer or a host's overrides. A property given twice is a usage error.
pub fn set_body(args: &SetConfigArgs) -> Result<Value> {
    let mut properties = Map::new();
    let unsets = args.unset.iter().map(|p| (p.clone(), Value::Null));
    for (property, value) in args.values.iter().cloned().chain(unsets) {
        if properties.insert(property.clone(), value).is_some() {
            return Err(Error::Config(format!(
                "property {property} is given more than once"
            )));
        }
    }
    let layer = json!({ args.config_type.clone(): properties });
    let mut body = match &args.host {
        Some(host) => json!({ "hosts": { host.clone(): layer } }),
        None => json!({ "configs": layer }),
    };
    if let Some(m) = &args.message {
        body["message"] = m.clone().into();
    }
    Ok(body)
}

/// A config version as `key: value` lines and a table of its values, service layer first.
fn print_version(v: &Value) {
    print_fields(&[
        ("version", field(v, "version")),
        ("author", field(v, "author")),
        ("time", time(v.get("created_at"))),
        ("message", field(v, "message")),
    ]);
    println!();
    let mut t = Table::new(&["CONFIG TYPE", "HOST", "PROPERTY", "VALUE"]);
    let mut layer = |host: &str, types: &Value| {
        for (config_type, props) in types.as_object().into_iter().flatten() {
            for (property, value) in props.as_object().into_iter().flatten() {
                t.row(vec![
                    config_type.clone(),
                    host.to_string(),
                    property.clone(),
                    text(Some(value)),
                ]);
            }
        }
    };
    layer("-", &v["configs"]);
    for (host, types) in v["host_overrides"].as_object().into_iter().flatten() {
        layer(host, types);
    }
    if t.is_empty() {
        println!("no values set: every property has its stack default");
    } else {
        t.print();
    }
}

/// A snapshot's versions as `nodes 1, prom 2`.
fn versions(v: Option<&Value>) -> String {
    let parts: Vec<String> = v
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, n)| format!("{name} {}", text(Some(n))))
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

/// `bigmgr config apply`: `POST /clusters/{cluster}/restart-stale`, then (with `--wait`)
/// follows each job to its end; an error if any did not succeed.
async fn apply(
    client: &Client,
    out: Output,
    cluster: &str,
    service: Option<String>,
    wait: bool,
) -> Result<()> {
    let mut body = json!({});
    if let Some(s) = &service {
        body["service"] = s.clone().into();
    }
    let jobs = client
        .post::<Value, _>(&in_cluster(cluster, &["restart-stale"]), &body)
        .await?;
    let jobs = jobs.as_array().cloned().unwrap_or_default();
    let ids = jobs
        .iter()
        .map(|j| {
            j["id"].as_i64().ok_or_else(|| {
                bigmgr_client::Error::Http(format!("the server's job has no numeric id: {j}"))
            })
        })
        .collect::<Result<Vec<i64>, _>>()?;
    if !wait || ids.is_empty() {
        if out.json {
            out.print_json(&Value::Array(jobs));
        } else if ids.is_empty() {
            println!("nothing is stale");
        } else {
            for j in &jobs {
                println!(
                    "job {}: {} on {} ({}); `bigmgr job wait {}` follows it",
                    field(j, "id"),
                    field(j, "command"),
                    target(j.get("target")),
                    field(j, "state"),
                    field(j, "id"),
                );
            }
        }
        return Ok(());
    }
    if out.json {
        // One array of the final jobs, then the outcome.
        let mut details = Vec::new();
        for &id in &ids {
            details.push(follow(client, JobId(id), |_| {}).await?);
        }
        out.print_json(&serde_json::to_value(&details).unwrap_or_default());
        return first_failure(details.iter().map(|d| report(out, d)));
    }
    let mut outcomes = Vec::new();
    for (j, &id) in jobs.iter().zip(&ids) {
        println!(
            "job {id}: {} on {}",
            field(j, "command"),
            target(j.get("target"))
        );
        outcomes.push(follow_and_report(client, out, JobId(id)).await);
    }
    first_failure(outcomes)
}

/// `Ok` if every outcome is; else one error naming every failed job.
fn first_failure(outcomes: impl IntoIterator<Item = Result<()>>) -> Result<()> {
    let failed: Vec<String> = outcomes
        .into_iter()
        .filter_map(|o| o.err().map(|e| e.to_string()))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::JobFailed(failed.join("; ")))
    }
}

/// `bigmgr unit …`
pub async fn unit(client: &Client, out: Output, command: UnitCommand) -> Result<()> {
    match command {
        UnitCommand::List { cluster } => {
            let path = in_cluster(&cluster, &["units"]);
            list(client, out, &path, UNITS).await?;
        }
        UnitCommand::Add {
            cluster,
            service,
            component,
            hosts,
        } => {
            let path = in_cluster(&cluster, &["services", &service, "units"]);
            let body = json!({ "component": component, "hosts": hosts });
            post(client, out, &path, &body, |units| {
                let units = items(Some(units));
                let ids: Vec<String> = units.iter().map(|u| field(u, "id")).collect();
                println!(
                    "{} unit(s) of {service}/{component} added; `bigmgr job run {cluster} deploy --units {} --wait` deploys them",
                    units.len(),
                    ids.join(",")
                );
                Table::of(units, UNITS).print();
            })
            .await?;
        }
        UnitCommand::Remove { cluster, id } => {
            remove_from(client, out, &cluster, "unit", &id.to_string()).await?;
        }
    }
    Ok(())
}

/// The columns of units with their config versions and staleness.
const UNITS: &[Column] = &[
    col("ID", "id"),
    col("SERVICE", "service"),
    col("COMPONENT", "component"),
    col("HOST", "host"),
    col("STATE", "state"),
    col("APPLIED", "applied_version"),
    col("DESIRED", "desired_version"),
    shown("STALE", "", stale),
];

/// A unit's staleness: `no`, `yes` or `yes: <reason>`.
fn stale(u: Option<&Value>) -> String {
    let u = u.unwrap_or(&Value::Null);
    if u["stale"].as_bool() != Some(true) {
        return "no".to_string();
    }
    match u["stale_reason"].as_str() {
        Some(reason) => format!("yes: {reason}"),
        None => "yes".to_string(),
    }
}

/// `bigmgr relation …`
pub async fn relation(client: &Client, out: Output, command: RelationCommand) -> Result<()> {
    match command {
        RelationCommand::List { cluster } => {
            let path = in_cluster(&cluster, &["relations"]);
            let columns = [
                col("ID", "id"),
                shown("REQUIRER", "", |r| endpoint(r, "requirer")),
                shown("PROVIDER", "", |r| endpoint(r, "provider")),
                col("INTERFACE", "interface"),
                shown("AUTO", "auto_reconfigure", yes_no),
            ];
            list(client, out, &path, &columns).await?;
        }
        RelationCommand::Add {
            cluster,
            requirer,
            provider,
            no_auto_reconfigure,
        } => {
            let body = json!({
                "requirer": requirer,
                "provider": provider,
                "auto_reconfigure": !no_auto_reconfigure,
            });
            let path = in_cluster(&cluster, &["relations"]);
            post(client, out, &path, &body, |r| {
                println!(
                    "relation {} added: {} requires {} ({}); automatic reconfigure: {}",
                    field(r, "id"),
                    endpoint(Some(r), "requirer"),
                    endpoint(Some(r), "provider"),
                    field(r, "interface"),
                    yes_no(r.get("auto_reconfigure")),
                );
            })
            .await?;
        }
        RelationCommand::Remove { cluster, id } => {
            remove_from(client, out, &cluster, "relation", &id.to_string()).await?;
        }
        RelationCommand::Events { cluster, id } => {
            let path = in_cluster(&cluster, &["relations", &id.to_string(), "events"]);
            let columns = [
                shown("TIME", "at", time),
                col("KIND", "kind"),
                col("SERVICE", "service"),
                col("DETAIL", "detail"),
                col("JOB", "job"),
            ];
            list(client, out, &path, &columns).await?;
        }
    }
    Ok(())
}

/// A relation's side as `service:endpoint`.
fn endpoint(r: Option<&Value>, side: &str) -> String {
    let r = r.unwrap_or(&Value::Null);
    format!(
        "{}:{}",
        field(r, side),
        field(r, &format!("{side}_endpoint"))
    )
}

/// `yes`, `no`, or `-`.
fn yes_no(v: Option<&Value>) -> String {
    match v.and_then(Value::as_bool) {
        Some(true) => "yes".to_string(),
        Some(false) => "no".to_string(),
        None => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_args(host: Option<&str>, values: &[&str], unset: &[&str]) -> SetConfigArgs {
        SetConfigArgs {
            cluster: "c".into(),
            service: "zk".into(),
            config_type: "zoo.cfg".into(),
            values: values
                .iter()
                .map(|v| crate::cli::parse_assignment(v).unwrap())
                .collect(),
            unset: unset.iter().map(|u| u.to_string()).collect(),
            host: host.map(str::to_string),
            message: Some("slower".into()),
        }
    }

    #[test]
    fn set_makes_a_merge_patch_of_one_config_type() {
        assert_eq!(
            set_body(&set_args(None, &["tickTime=3000", "x=a b"], &["initLimit"])).unwrap(),
            json!({"configs": {"zoo.cfg": {"tickTime": 3000, "x": "a b", "initLimit": null}},
                   "message": "slower"})
        );
        assert_eq!(
            set_body(&set_args(Some("h2"), &["maxClientCnxns=100"], &[])).unwrap(),
            json!({"hosts": {"h2": {"zoo.cfg": {"maxClientCnxns": 100}}}, "message": "slower"})
        );
        let e = set_body(&set_args(None, &["tickTime=1"], &["tickTime"])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("tickTime"), "{e}");
    }

    #[test]
    fn failures_are_collected() {
        assert!(first_failure([Ok(()), Ok(())]).is_ok());
        let e = first_failure([
            Err(Error::JobFailed("job 1 FAILED".into())),
            Ok(()),
            Err(Error::JobFailed("job 3 CANCELED".into())),
        ])
        .unwrap_err();
        assert_eq!(e.to_string(), "job 1 FAILED; job 3 CANCELED");
    }
}
