//! `bigmgr pipeline`: create a pipeline from its definition file (checked whole by the
//! server, every problem with its line), list, show and delete pipelines; start, pause,
//! resume, stop and scale them, and read their status and run log (docs/pipelines.md).

use super::output::{Output, Table, age, col, field, items, print_fields, shown, text, time};
use super::{Result, in_cluster, list, post, remove_from, show};
use crate::cli::PipelineCommand;
use crate::error::IoError;
use bigmgr_client::Client;
use serde_json::{Value, json};

/// The columns of `bigmgr pipeline list`.
const PIPELINES: &[super::output::Column] = &[
    col("NAME", "name"),
    col("STATE", "state"),
    col("AUTHOR", "author"),
    shown("AGE", "created_at", age),
];

/// `bigmgr pipeline …`
pub async fn pipeline(client: &Client, out: Output, command: PipelineCommand) -> Result<()> {
    match command {
        PipelineCommand::Create { cluster, file } => {
            let definition = std::fs::read_to_string(&file).map_err(|e| IoError::new(&file, e))?;
            let path = in_cluster(&cluster, &["pipelines"]);
            post(
                client,
                out,
                &path,
                &json!({ "definition": definition }),
                |p| {
                    println!(
                        "pipeline {} created in cluster {cluster} ({})",
                        field(p, "name"),
                        field(p, "state")
                    );
                },
            )
            .await
        }
        PipelineCommand::List { cluster } => {
            list(
                client,
                out,
                &in_cluster(&cluster, &["pipelines"]),
                PIPELINES,
            )
            .await
        }
        PipelineCommand::Show { cluster, name } => {
            let path = in_cluster(&cluster, &["pipelines", &name]);
            show(client, out, &path, print_pipeline).await
        }
        PipelineCommand::Delete { cluster, name } => {
            remove_from(client, out, &cluster, "pipeline", &name).await
        }
        PipelineCommand::Start { cluster, name } => {
            control(client, out, &cluster, &name, "start").await
        }
        PipelineCommand::Pause { cluster, name } => {
            control(client, out, &cluster, &name, "pause").await
        }
        PipelineCommand::Resume { cluster, name } => {
            control(client, out, &cluster, &name, "resume").await
        }
        PipelineCommand::Stop {
            cluster,
            name,
            abort,
        } => {
            let action = if abort { "stop?abort=true" } else { "stop" };
            control(client, out, &cluster, &name, action).await
        }
        PipelineCommand::Scale {
            cluster,
            name,
            replicas,
        } => {
            let (unit, n) = replicas
                .split_once('=')
                .and_then(|(u, n)| Some((u, n.parse::<u32>().ok()?)))
                .ok_or_else(|| {
                    super::Error::Config(format!(
                        "'{replicas}' is not UNIT=REPLICAS (give, say, filter=4)"
                    ))
                })?;
            let path = in_cluster(&cluster, &["pipelines", &name, "scale"]);
            post(
                client,
                out,
                &path,
                &json!({ "unit": unit, "replicas": n }),
                |_| println!("unit {unit} of pipeline {name} scaled to {n} replicas"),
            )
            .await
        }
        PipelineCommand::Status { cluster, name } => {
            let path = in_cluster(&cluster, &["pipelines", &name, "status"]);
            show(client, out, &path, print_status).await
        }
        PipelineCommand::Push {
            cluster,
            name,
            source,
            file,
            batch,
        } => {
            let data = if file.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                    .map_err(|e| IoError::new(&file, e))?;
                buf
            } else {
                std::fs::read(&file).map_err(|e| IoError::new(&file, e))?
            };
            let pushed = client
                .push_batch(&cluster, &name, &source, batch.as_deref(), data)
                .await?;
            let value = serde_json::to_value(&pushed).unwrap_or_default();
            out.one(&value, |_| {
                if pushed.new {
                    println!("batch {} pushed to {name}/{source}", pushed.batch);
                } else {
                    println!("batch {} was pushed before: nothing written", pushed.batch);
                }
            });
            Ok(())
        }
        PipelineCommand::Logs { cluster, name } => {
            let path = in_cluster(&cluster, &["pipelines", &name, "logs"]);
            show(client, out, &path, |v| {
                for l in items(v.get("lines")) {
                    println!("{}  {}", time(l.get("at")), field(l, "line"));
                }
            })
            .await
        }
    }
}

/// `POST …/pipelines/{name}/<action>` and says the state the pipeline is in now.
async fn control(
    client: &Client,
    out: Output,
    cluster: &str,
    name: &str,
    action: &str,
) -> Result<()> {
    let path = format!("{}/{action}", in_cluster(cluster, &["pipelines", name]));
    post(client, out, &path, &json!({}), |p| {
        println!("pipeline {name}: {}", field(p, "state"));
    })
    .await
}

/// A pipeline's state, then a table of its nodes.
fn print_status(s: &Value) {
    let p = s.get("pipeline").cloned().unwrap_or_default();
    let mut pairs = vec![
        ("pipeline", field(&p, "name")),
        ("state", field(&p, "state")),
    ];
    if p.get("message").is_some_and(|m| !m.is_null()) {
        pairs.push(("message", field(&p, "message")));
    }
    print_fields(&pairs);
    let mut t = Table::new(&[
        "NODE",
        "KIND",
        "REPLICAS",
        "WAITING",
        "LEASED",
        "PROCESSED",
        "LAST MIN",
        "READY",
    ]);
    for n in items(s.get("nodes")) {
        let kind = field(n, "kind");
        let processed = if kind == "source" {
            text(n.get("recorded"))
        } else {
            text(n.get("processed"))
        };
        let limit = n.get("limit").filter(|l| !l.is_null());
        t.row(vec![
            field(n, "name"),
            kind,
            n.get("replicas")
                .filter(|r| !r.is_null())
                .map(|r| r.to_string())
                .unwrap_or_default(),
            match limit {
                Some(l) => format!("{}/{l}", text(n.get("waiting"))),
                None => text(n.get("waiting")),
            },
            text(n.get("leased")),
            processed,
            text(n.get("processed_last_minute")),
            if n.get("ready").and_then(Value::as_bool) == Some(false) {
                "no".into()
            } else {
                "yes".into()
            },
        ]);
    }
    println!();
    t.print();
}

/// A pipeline as `key: value` lines, then its definition.
fn print_pipeline(p: &Value) {
    print_fields(&[
        ("name", field(p, "name")),
        ("state", field(p, "state")),
        ("author", field(p, "author")),
        ("created", age(p.get("created_at"))),
    ]);
    println!("\n{}", field(p, "definition").trim_end());
}
