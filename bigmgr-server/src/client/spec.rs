//! `bigmgr plan -f FILE` and `bigmgr apply -f FILE`: a cluster spec against the server (its
//! `cluster` names the cluster). The server parses and checks it; a spec with problems is
//! refused whole with each problem's line.

use super::output::Output;
use super::{Error, Result};
use crate::cli::{ExportArgs, SpecArgs};
use crate::error::IoError;
use bigmgr_client::Client;
use bigmgr_core::request::SpecBody;
use bigmgr_core::spec::Plan;

/// The spec's text, the cluster it names, and the values of its secret references, read
/// here (the environment, files beside the spec).
fn read(args: &SpecArgs) -> Result<(String, SpecBody)> {
    let text = std::fs::read_to_string(&args.file).map_err(|e| IoError::new(&args.file, e))?;
    let base = args
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let refused = |problems: Vec<bigmgr_core::spec::Problem>| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Error::Config(format!("{}: {}", args.file.display(), lines.join("; ")))
    };
    let parsed = bigmgr_core::spec::parse(&text).map_err(refused)?;
    let secrets = parsed.local_secrets(base).map_err(refused)?;
    Ok((
        parsed.spec.cluster,
        SpecBody {
            spec: text,
            prune: args.prune,
            secrets,
        },
    ))
}

/// Runs `bigmgr export`: the spec on stdout or in the file, and on stderr the references
/// to set where it is applied.
pub async fn export(client: &Client, out: Output, args: ExportArgs) -> Result<()> {
    let exported = client.export_spec(&args.cluster).await?;
    if out.json {
        out.print_json(&serde_json::to_value(&exported).unwrap_or_default());
        return Ok(());
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, &exported.spec).map_err(|e| IoError::new(path, e))?;
            eprintln!(
                "wrote the spec of cluster {} to {}",
                args.cluster,
                path.display()
            );
        }
        None => print!("{}", exported.spec),
    }
    if !exported.references.is_empty() {
        let names: Vec<&str> = exported
            .references
            .iter()
            .map(|r| r.strip_prefix("env:").unwrap_or(r))
            .collect();
        eprintln!(
            "its secret values are not written: set {} where you run `bigmgr apply`",
            names.join(", ")
        );
    }
    Ok(())
}

/// Runs `bigmgr plan`.
pub async fn plan(client: &Client, out: Output, args: SpecArgs) -> Result<()> {
    let (cluster, body) = read(&args)?;
    let plan = client.plan_spec(&cluster, &body).await?;
    if out.json {
        out.print_json(&serde_json::to_value(&plan).unwrap_or_default());
    } else {
        print_plan(&cluster, &plan);
    }
    Ok(())
}

/// Runs `bigmgr apply`: the changes, then (with `--wait`) each job followed to its end.
pub async fn apply(client: &Client, out: Output, args: SpecArgs) -> Result<()> {
    let (cluster, body) = read(&args)?;
    let applied = client.apply_spec(&cluster, &body).await?;
    if out.json {
        out.print_json(&serde_json::to_value(&applied).unwrap_or_default());
        return Ok(());
    }
    if !args.wait {
        print_plan(&cluster, &applied.plan);
        for j in &applied.jobs {
            println!(
                "job {}: {} ({:?}); `bigmgr job wait {}` follows it",
                j.id, j.command, j.state, j.id
            );
        }
        return Ok(());
    }
    print_plan(&cluster, &applied.plan);
    for j in &applied.jobs {
        println!("job {}: {}", j.id, j.command);
        super::jobs::follow_and_report(client, out, j.id).await?;
    }
    Ok(())
}

/// The plan for people: one line per change.
fn print_plan(cluster: &str, p: &Plan) {
    if p.is_empty() {
        println!("cluster {cluster} is as the spec says: nothing to do");
    }
    if p.create_cluster {
        println!("+ cluster {cluster}");
    }
    for h in &p.hosts_to_add {
        println!("+ host {} ({})", h.name, h.address);
    }
    for s in &p.services_to_add {
        println!("+ service {s}");
    }
    for s in &p.services_to_remove {
        println!("- service {s}");
    }
    for u in &p.units_to_add {
        println!("+ unit {} of {} on {}", u.component, u.service, u.host);
        if let Some(why) = &u.why {
            println!("    {why}");
        }
    }
    for u in &p.units_to_remove {
        println!("- unit {} of {} on {}", u.component, u.service, u.host);
    }
    for c in &p.configs {
        let show = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map_or_else(|| "(unset)".to_string(), |v| v.to_string())
        };
        let on = c
            .host
            .as_ref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        println!(
            "~ {} {}.{}{on}: {} -> {}",
            c.service,
            c.config_type,
            c.property,
            show(&c.from),
            show(&c.to)
        );
    }
    for x in &p.policies {
        println!(
            "~ {} policy {}: {} -> {}",
            x.service, x.policy, x.from, x.to
        );
    }
    for r in &p.relations_to_add {
        println!(
            "+ relation {}:{} -> {}:{}",
            r.requirer, r.requirer_endpoint, r.provider, r.provider_endpoint
        );
    }
    for r in &p.relations_to_remove {
        println!(
            "- relation {}:{} -> {}:{}",
            r.requirer, r.requirer_endpoint, r.provider, r.provider_endpoint
        );
    }
    for j in &p.jobs {
        let on = if j.hosts.is_empty() {
            String::new()
        } else {
            format!(" on {}", j.hosts.join(", "))
        };
        println!("> job {} of {}{on}: {}", j.command, j.service, j.why);
    }
    for k in &p.kept {
        println!("= kept (not in the spec; --prune plans its removal): {k}");
    }
    for problem in &p.problems {
        println!("! {problem}");
    }
}
