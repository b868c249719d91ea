//! `bigmgr assistant providers|set-provider|remove-provider|tools|threads|show|confirm|reject`:
//! the assistant's model providers (admins set them; the key is read from an environment
//! variable or a file, never taken as an argument, and never shown), your threads, and the
//! proposals waiting in them.

use super::ask::{decided, request};
use super::output::{Output, col, shown, text, time};
use super::{Error, Result, list};
use crate::cli::AssistantCommand;
use crate::error::IoError;
use bigmgr_client::{Client, SetProvider};
use bigmgr_core::model::{ChatRole, Proposal, ProposalId, ProposalState, ThreadId};
use serde_json::Value;
use std::path::Path;

/// Runs one `bigmgr assistant` subcommand.
pub async fn assistant(client: &Client, out: Output, command: AssistantCommand) -> Result<()> {
    match command {
        AssistantCommand::Providers => {
            let columns = [
                col("NAME", "name"),
                col("MODEL", "model"),
                col("BASE URL", "base_url"),
                shown("DEFAULT", "default", yes_no),
                shown("KEY", "has_key", |v| {
                    if v.and_then(Value::as_bool) == Some(true) {
                        "stored".into()
                    } else {
                        "none".into()
                    }
                }),
                shown("TIMEOUT MS", "timeout_ms", text),
            ];
            list(client, out, "/assistant/providers", &columns).await
        }
        AssistantCommand::SetProvider {
            name,
            base_url,
            model,
            api_key_env,
            api_key_file,
            default,
            timeout_ms,
        } => {
            let api_key = match (api_key_env, api_key_file) {
                (Some(var), _) => Some(key_from_env(&var)?),
                (None, Some(file)) => Some(key_from_file(&file)?),
                (None, None) => None,
            };
            let body = SetProvider {
                base_url,
                model,
                api_key,
                default,
                timeout_ms,
            };
            let p = client.set_provider(&name, &body).await?;
            out.one(&serde_json::to_value(&p).unwrap_or_default(), |_| {
                println!(
                    "provider {} set: model {} at {}, {}{}",
                    p.name,
                    p.model,
                    p.base_url,
                    if p.has_key { "key stored" } else { "no key" },
                    if p.default { ", the default" } else { "" }
                );
            });
            Ok(())
        }
        AssistantCommand::RemoveProvider { name } => {
            client.remove_provider(&name).await?;
            out.done(format_args!("provider {name} removed"));
            Ok(())
        }
        AssistantCommand::Tools => {
            let columns = [
                col("NAME", "name"),
                shown("PROPOSES", "mutating", yes_no),
                col("DESCRIPTION", "description"),
            ];
            list(client, out, "/assistant/tools", &columns).await
        }
        AssistantCommand::Threads => {
            let columns = [
                col("ID", "id"),
                col("CLUSTER", "cluster"),
                col("TITLE", "title"),
                shown("CREATED", "created_at", time),
            ];
            list(client, out, "/assistant/threads", &columns).await
        }
        AssistantCommand::Show { id } => {
            let t = client.thread(ThreadId(id)).await?;
            out.one(&serde_json::to_value(&t).unwrap_or_default(), |_| {
                println!(
                    "thread {} about cluster {}: {}",
                    t.thread.id, t.thread.cluster, t.thread.title
                );
                for m in &t.messages {
                    match m.role {
                        ChatRole::Tool => println!(
                            "  tool answered: {}",
                            m.content.chars().take(160).collect::<String>()
                        ),
                        role => {
                            if !m.content.is_empty() {
                                println!("{}: {}", role.as_str(), m.content);
                            }
                            for c in &m.tool_calls {
                                println!("  called {} {}", c.name, c.arguments);
                            }
                        }
                    }
                }
                for p in &t.proposals {
                    println!("{}", proposal_line(p));
                }
            });
            Ok(())
        }
        AssistantCommand::Confirm { id } => {
            let p = client.confirm_proposal(ProposalId(id)).await?;
            out.one(&serde_json::to_value(&p).unwrap_or_default(), |_| {
                println!("{}", decided(&p));
            });
            if p.state == ProposalState::Failed {
                return Err(Error::Assistant(format!(
                    "proposal {id} ran, and its request failed"
                )));
            }
            Ok(())
        }
        AssistantCommand::Reject { id } => {
            let p = client.reject_proposal(ProposalId(id)).await?;
            out.one(&serde_json::to_value(&p).unwrap_or_default(), |_| {
                println!("{}", decided(&p));
            });
            Ok(())
        }
    }
}

/// A proposal in a thread's listing: id, state, title and request.
fn proposal_line(p: &Proposal) -> String {
    let mut line = format!(
        "proposal {} [{}] {} — {}",
        p.id,
        p.state.as_str(),
        p.title,
        request(p)
    );
    if let Some(r) = &p.result {
        line.push_str(&format!(" → {}", r.status));
    }
    line
}

/// `yes` or `no` for a boolean cell.
fn yes_no(v: Option<&Value>) -> String {
    if v.and_then(Value::as_bool) == Some(true) {
        "yes".into()
    } else {
        "no".into()
    }
}

/// The API key in environment variable `var`.
fn key_from_env(var: &str) -> Result<String> {
    match std::env::var(var) {
        Ok(k) if !k.trim().is_empty() => Ok(k.trim().to_string()),
        Ok(_) => Err(Error::Config(format!(
            "the environment variable {var} (--api-key-env) is empty"
        ))),
        Err(_) => Err(Error::Config(format!(
            "the environment variable {var} (--api-key-env) is not set"
        ))),
    }
}

/// The API key in `file`: its first line, trimmed.
fn key_from_file(file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(file).map_err(|e| IoError::new(file, e))?;
    match text.lines().next().map(str::trim) {
        Some(k) if !k.is_empty() => Ok(k.to_string()),
        _ => Err(Error::Config(format!(
            "{} (--api-key-file) holds no key on its first line",
            file.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_a_file_or_a_variable_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "  sk-abc \nsecond line\n").unwrap();
        assert_eq!(key_from_file(&file).unwrap(), "sk-abc");
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(key_from_file(&file), Err(Error::Config(_))));
        assert!(matches!(
            key_from_file(&dir.path().join("missing")),
            Err(Error::Io(_))
        ));
        let e = key_from_env("BIGMGR_TEST_NO_SUCH_VARIABLE_16").unwrap_err();
        assert!(e.to_string().contains("is not set"), "{e}");
    }
}
