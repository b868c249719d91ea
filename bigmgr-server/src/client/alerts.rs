//! `bigmgr alert list|history|silence|maintenance|unsilence|healing`: a cluster's alerts as
//! they stand, their changes, maintenance windows, and services' self-healing policies.

use super::output::{Output, col, shown, text, time};
use super::{Result, in_cluster, list, post};
use crate::cli::AlertCommand;
use bigmgr_client::Client;
use serde_json::Value;

/// What an alert is about, shortest first: the unit, else the service, else the host, else
/// the cluster.
fn subject(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "-".into();
    };
    ["unit", "service", "host"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "cluster".into())
}

/// Runs one `bigmgr alert` subcommand.
pub async fn alert(client: &Client, out: Output, command: AlertCommand) -> Result<()> {
    match command {
        AlertCommand::List { cluster, firing } => {
            let mut path = in_cluster(&cluster, &["alerts"]);
            if firing {
                path.push_str("?firing=true");
            }
            let columns = [
                col("STATE", "state"),
                col("DEFINITION", "definition"),
                shown("SUBJECT", "", subject),
                shown("SINCE", "since", time),
                shown("TEXT", "text", text),
            ];
            list(client, out, &path, &columns).await
        }
        AlertCommand::History { cluster, limit } => {
            let path = format!(
                "{}?limit={limit}",
                in_cluster(&cluster, &["alerts", "history"])
            );
            let columns = [
                shown("AT", "at", time),
                col("DEFINITION", "definition"),
                shown("SUBJECT", "", subject),
                col("FROM", "from"),
                col("TO", "to"),
                shown("TEXT", "text", text),
            ];
            list(client, out, &path, &columns).await
        }
        AlertCommand::Silence {
            cluster,
            host,
            service,
            duration,
            reason,
        } => {
            let body = serde_json::json!({
                "host": host, "service": service, "for": duration, "reason": reason,
            });
            let body = without_nulls(body);
            post(
                client,
                out,
                &in_cluster(&cluster, &["maintenance"]),
                &body,
                |w| {
                    println!(
                        "maintenance {} of {} until {}",
                        w["id"],
                        window_subject(w),
                        time(Some(&w["until"]))
                    );
                },
            )
            .await
        }
        AlertCommand::Maintenance { cluster } => {
            let columns = [
                col("ID", "id"),
                shown("SUBJECT", "", |w| {
                    w.map_or_else(String::new, window_subject)
                }),
                shown("UNTIL", "until", time),
                col("BY", "by"),
                shown("REASON", "reason", text),
            ];
            list(
                client,
                out,
                &in_cluster(&cluster, &["maintenance"]),
                &columns,
            )
            .await
        }
        AlertCommand::Unsilence { cluster, id } => {
            client
                .delete(&in_cluster(&cluster, &["maintenance", &id.to_string()]))
                .await?;
            out.done(format_args!("maintenance {id} of cluster {cluster} ended"));
            Ok(())
        }
        AlertCommand::Definitions { cluster } => {
            let columns = [
                col("NAME", "name"),
                col("KIND", "kind"),
                shown("ENABLED", "enabled", text),
                col("FOR", "for"),
                shown("WARNING", "warning", text),
                shown("CRITICAL", "critical", text),
                shown("CHANGED", "version", text),
                shown("DESCRIPTION", "description", text),
            ];
            let path = in_cluster(&cluster, &["alert-definitions"]);
            list(client, out, &path, &columns).await
        }
        AlertCommand::Tune {
            cluster,
            name,
            hold,
            interval,
            warning,
            critical,
            disable,
            enable,
        } => {
            // A threshold that reads as a number is one (a metric's); else a duration.
            let threshold = |t: Option<String>| {
                t.map(|t| {
                    t.parse::<f64>()
                        .ok()
                        .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                        .unwrap_or(Value::String(t))
                })
            };
            let enabled = (disable || enable).then_some(enable);
            let body = without_nulls(serde_json::json!({
                "for": hold, "interval": interval, "warning": threshold(warning),
                "critical": threshold(critical),
                "enabled": enabled,
            }));
            let path = in_cluster(&cluster, &["alert-definitions", &name]);
            let view: Value = client.put(&path, &body).await?;
            out.one(&view, |d| {
                println!(
                    "{name} of cluster {cluster}: version {}, {}, for {}, warning {}, critical {}",
                    d["version"],
                    if d["enabled"] == true {
                        "enabled"
                    } else {
                        "disabled"
                    },
                    d["for"].as_str().unwrap_or_default(),
                    text(Some(&d["warning"])),
                    text(Some(&d["critical"])),
                );
            });
            Ok(())
        }
        AlertCommand::Healing {
            cluster,
            service,
            restart,
            off,
            grace,
            max_per_hour,
        } => {
            let path = in_cluster(&cluster, &["services", &service, "healing"]);
            let view: Value = if restart || off {
                let body = without_nulls(serde_json::json!({
                    "restart": restart, "grace": grace, "max_per_hour": max_per_hour,
                }));
                client.put(&path, &body).await?
            } else {
                client.get(&path).await?
            };
            out.one(&view, |h| {
                if h["restart"] == true {
                    println!(
                        "self-healing of {service}: restart after {}, at most {} an hour \
                         ({} in the last hour){}",
                        h["grace"].as_str().unwrap_or_default(),
                        h["max_per_hour"],
                        h["attempts_last_hour"],
                        if h["gave_up"] == true {
                            "; GAVE UP on a unit"
                        } else {
                            ""
                        }
                    );
                } else {
                    println!("self-healing of {service}: off");
                }
            });
            Ok(())
        }
    }
}

/// A JSON object without its null members (what was not given is left out).
fn without_nulls(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    v
}

/// `host h1` or `service zk`.
fn window_subject(w: &Value) -> String {
    match (w["host"].as_str(), w["service"].as_str()) {
        (Some(h), _) => format!("host {h}"),
        (_, Some(s)) => format!("service {s}"),
        _ => "-".into(),
    }
}
