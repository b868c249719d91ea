//! `bigmgr advise CLUSTER`: what the advisor finds wrong, with the evidence and what to do
//! (the suggested requests are shown, never run).

use super::Result;
use super::output::Output;
use crate::cli::AdviseArgs;
use bigmgr_client::Client;

/// Runs `bigmgr advise`.
pub async fn advise(client: &Client, out: Output, args: AdviseArgs) -> Result<()> {
    let findings = client
        .advice(
            &args.cluster,
            args.host.as_deref(),
            args.service.as_deref(),
            args.job,
        )
        .await?;
    let findings = serde_json::to_value(findings).unwrap_or_default();
    out.one(&findings, |f| {
        let list = f.as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            println!("nothing found wrong in cluster {}", args.cluster);
        }
        for (i, f) in list.iter().enumerate() {
            if i > 0 {
                println!();
            }
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            println!("{} {} [{}]", s("severity"), s("title"), s("rule"));
            for e in f["evidence"].as_array().into_iter().flatten() {
                println!("  evidence: {}", e.as_str().unwrap_or_default());
            }
            println!("  what to do: {}", s("hint"));
            for a in f["actions"].as_array().into_iter().flatten() {
                let body = if a["body"].is_null() {
                    String::new()
                } else {
                    format!(" {}", a["body"])
                };
                println!(
                    "  suggested (run it yourself after checking): {} — {} /api/v1{}{body}",
                    a["title"].as_str().unwrap_or_default(),
                    a["method"].as_str().unwrap_or_default(),
                    a["path"].as_str().unwrap_or_default()
                );
            }
        }
    });
    Ok(())
}
