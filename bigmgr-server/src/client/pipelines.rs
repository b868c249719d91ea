//! `bigmgr pipeline`: create a pipeline from its definition file (checked whole by the
//! server, every problem with its line), list, show and delete pipelines (docs/pipelines.md).

use super::output::{Output, age, col, field, print_fields, shown};
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
    }
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
