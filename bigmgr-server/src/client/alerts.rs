//! `bigmgr alert list|history`: a cluster's alerts as they stand, and their changes.

use super::output::{Output, col, shown, text, time};
use super::{Result, in_cluster, list};
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
    }
}
