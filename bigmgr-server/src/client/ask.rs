//! `bigmgr ask "QUESTION"`: asks the assistant about a cluster and prints its answer as it
//! streams — the text on stdout, the tools it calls and what they answered as short lines on
//! stderr, and what it proposes with its id and request. Nothing proposed runs unless you
//! confirm it: at a prompt when stdin is a terminal, else later with
//! `bigmgr assistant confirm N`. With `--json`, each event is one JSON line on stdout
//! (`{"event": …, "data": …}`) and proposals are left pending.

use super::output::Output;
use super::{Error, Result};
use crate::cli::AskArgs;
use bigmgr_client::Client;
use bigmgr_core::assistant::ChatEvent;
use bigmgr_core::model::{Proposal, ProposalState, ThreadId};
use std::io::{IsTerminal, Write};

/// The most characters of a tool's arguments or answer shown on its line.
const SHOWN: usize = 160;

/// Runs `bigmgr ask`.
pub async fn ask(client: &Client, out: Output, args: AskArgs) -> Result<()> {
    let thread = match args.thread {
        Some(id) => ThreadId(id),
        None => {
            let cluster = match args.cluster {
                Some(c) => c,
                None => only_cluster(client).await?,
            };
            let t = client.create_thread(&cluster, None).await?;
            eprintln!(
                "thread {} about cluster {} (go on in it with --thread {})",
                t.id, t.cluster, t.id
            );
            t.id
        }
    };
    let mut events = client
        .ask(thread, &args.question, args.provider.as_deref())
        .await?;
    let mut proposals: Vec<Proposal> = Vec::new();
    let mut stdout = std::io::stdout();
    let mut line_open = false;
    while let Some(event) = events.recv().await {
        let event = event?;
        if out.json {
            let line = serde_json::json!({"event": event.name(), "data": event.data()});
            println!("{line}");
        }
        match event {
            ChatEvent::Token { text } => {
                if !out.json {
                    print!("{text}");
                    let _ = stdout.flush();
                    line_open = !text.ends_with('\n');
                }
            }
            ChatEvent::ToolCall(call) => {
                end_line(&mut line_open);
                eprintln!(
                    "[tool] {} {}",
                    call.name,
                    clip(&call.arguments.to_string(), SHOWN)
                );
            }
            ChatEvent::ToolResult {
                name, ok, content, ..
            } => {
                end_line(&mut line_open);
                let how = if ok { "answered" } else { "failed" };
                eprintln!("[tool] {name} {how}: {}", clip(&content.to_string(), SHOWN));
            }
            ChatEvent::Proposal(p) => {
                end_line(&mut line_open);
                eprintln!("[proposal {}] {} — {}", p.id, p.title, request(&p));
                proposals.push(p);
            }
            ChatEvent::Done { .. } => {
                end_line(&mut line_open);
                break;
            }
            ChatEvent::Error { title, detail } => {
                end_line(&mut line_open);
                return Err(Error::Assistant(format!("{title}: {detail}")));
            }
        }
    }
    let pending = proposals
        .into_iter()
        .filter(|p| p.state == ProposalState::Pending);
    let interactive = !out.json && std::io::stdin().is_terminal();
    for p in pending {
        if !interactive {
            eprintln!(
                "proposal {id} is pending (nothing ran): `bigmgr assistant confirm {id}` runs it, \
                 `bigmgr assistant reject {id}` drops it",
                id = p.id
            );
            continue;
        }
        let question = format!("Run proposal {}: {} ? [y/N] ", p.id, request(&p));
        if prompt(question).await? {
            let done = client.confirm_proposal(p.id).await?;
            eprintln!("{}", decided(&done));
        } else {
            let done = client.reject_proposal(p.id).await?;
            eprintln!("{}", decided(&done));
        }
    }
    Ok(())
}

/// The only cluster there is, for a question that names none.
async fn only_cluster(client: &Client) -> Result<String> {
    let clusters = client.clusters().await?;
    match clusters.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Err(Error::Config(
            "there is no cluster to ask about: create one first".into(),
        )),
        many => {
            let names: Vec<&str> = many.iter().map(|c| c.name.as_str()).collect();
            Err(Error::Config(format!(
                "which cluster? give --cluster (one of {}) or --thread N",
                names.join(", ")
            )))
        }
    }
}

/// Ends the answer's line on stdout before a line on stderr.
fn end_line(open: &mut bool) {
    if std::mem::take(open) {
        println!();
    }
}

/// A proposal's request: `POST /api/v1/clusters/c/jobs {"command":"install",…}`.
pub fn request(p: &Proposal) -> String {
    let a = &p.action;
    let body = a
        .body
        .as_ref()
        .map_or_else(String::new, |b| format!(" {}", clip(&b.to_string(), 400)));
    format!("{} /api/v1{}{body}", a.method, a.path)
}

/// What became of a proposal, in a line.
pub fn decided(p: &Proposal) -> String {
    match (&p.state, &p.result) {
        (ProposalState::Confirmed | ProposalState::Failed, Some(r)) => {
            let detail = r
                .body
                .get("detail")
                .and_then(|d| d.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| clip(&r.body.to_string(), SHOWN));
            format!(
                "proposal {} {}: the request answered {} {detail}",
                p.id,
                p.state.as_str(),
                r.status
            )
        }
        (state, _) => format!("proposal {} {}", p.id, state.as_str()),
    }
}

/// Asks `question` on stderr and reads the answer from stdin: yes only for `y` or `yes`.
async fn prompt(question: String) -> Result<bool> {
    let answer = tokio::task::spawn_blocking(move || {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| Error::Config(format!("cannot read the answer: {e}")))?
    .map_err(|e| Error::Config(format!("cannot read the answer from stdin: {e}")))?;
    Ok(is_yes(&answer))
}

/// Whether an answer to a prompt is yes (`y`, `yes`, any case); anything else is no.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// `text` cut to `max` characters (with `…`).
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use bigmgr_core::model::{ProposalId, ProposalResult, SuggestedAction};
    use serde_json::json;

    fn proposal(state: ProposalState, result: Option<ProposalResult>) -> Proposal {
        Proposal {
            id: ProposalId(4),
            thread: ThreadId(1),
            title: "install v".into(),
            action: SuggestedAction {
                title: "install v".into(),
                method: "POST".into(),
                path: "/clusters/c/jobs".into(),
                body: Some(json!({"command": "install"})),
            },
            state,
            result,
            created_at: 0,
            decided_at: None,
        }
    }

    #[test]
    fn only_yes_confirms() {
        for yes in ["y", "Y\n", " yes ", "YES\r\n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yess", "sure"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    #[test]
    fn proposals_show_their_request_and_outcome() {
        let p = proposal(ProposalState::Pending, None);
        assert_eq!(
            request(&p),
            r#"POST /api/v1/clusters/c/jobs {"command":"install"}"#
        );
        assert_eq!(decided(&p), "proposal 4 pending");
        let ran = proposal(
            ProposalState::Confirmed,
            Some(ProposalResult {
                status: 202,
                body: json!({"id": 3}),
            }),
        );
        assert_eq!(
            decided(&ran),
            r#"proposal 4 confirmed: the request answered 202 {"id":3}"#
        );
        let refused = proposal(
            ProposalState::Failed,
            Some(ProposalResult {
                status: 403,
                body: json!({"detail": "needs role operator"}),
            }),
        );
        assert_eq!(
            decided(&refused),
            "proposal 4 failed: the request answered 403 needs role operator"
        );
        assert_eq!(clip("abcdef", 3), "abc…");
    }
}
