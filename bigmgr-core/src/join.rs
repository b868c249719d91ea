//! How agents join (docs/design.md §9): a cluster's join token admits an agent once, as a new host
//! of that cluster, and gets it a per-agent credential it presents from then on (both are
//! [`crate::secret`]s).

use crate::auth::Action;
use crate::model::{ClusterId, Host, HostReport, NewHost, Outcome};
use crate::secret::{hash, new_secret, same};
use crate::store::{AdmissionStore, AgentStore, AuditStore};
use crate::{Error, Result};

/// The prefix of join tokens, so a leaked one is recognisable.
pub const JOIN_TOKEN_PREFIX: &str = "bmj_";
/// The prefix of agent credentials.
pub const CREDENTIAL_PREFIX: &str = "bma_";

/// Creates a join token for a cluster and returns it; only its hash is stored.
pub async fn create_join_token(store: &dyn AgentStore, cluster: ClusterId) -> Result<String> {
    let token = new_secret(JOIN_TOKEN_PREFIX)?;
    store.add_join_token(cluster, &hash(&token)).await?;
    Ok(token)
}

/// How an agent proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// A cluster's join token (first connection).
    JoinToken(String),
    /// The credential issued when it joined.
    Credential(String),
}

/// An admitted agent's host, and the credential to hand it if it joined just now.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    /// The host, as stored after this registration.
    pub host: Host,
    /// The cluster's name.
    pub cluster: String,
    /// A new credential, when the agent joined with a token.
    pub credential: Option<String>,
}

/// Admits an agent claiming host `name` with `proof`, or refuses it with
/// [`Error::Refused`] saying why and what to do. Records the registration (`report`: facts,
/// the address the agent reports) on the host. Nothing is written when it is refused.
///
/// - The host name must be valid, and so must `address` (see [`crate::address`]): an agent
///   whose `--address` is not an IP address or a DNS name is refused, naming the setting.
/// - A join token must be one the store knows. The host is created in the token's cluster with
///   `address`, or, if an operator added it there before and no agent has claimed it yet,
///   claimed. Claiming is one compare-and-set in the store ([`AgentStore::claim_host`]): of agents
///   registering for one host at once, exactly one gets it; the others are refused naming the
///   host. A host of another cluster, or one another agent already holds, is refused.
/// - A credential must match the host's.
/// - The host's address is never changed by an agent: an agent that reports another address
///   than the host's (on a host an operator added, or on any later registration) is admitted,
///   its address is kept as the host's `reported_address` and the audit log says so, until an
///   admin accepts it (`Manager::set_host_address`). Joins and such reports are audited with
///   the actor `agent:<host>`.
pub async fn admit(
    store: &dyn AdmissionStore,
    name: &str,
    address: &str,
    proof: &Proof,
    report: &HostReport,
) -> Result<Admitted> {
    crate::name::check_host_name(name).map_err(|e| Error::Refused(e.to_string()))?;
    let bad_address = crate::address::check_address(address)
        .err()
        .map(|e| format!("the agent's address (--address / BIGMGR_ADDRESS): {e}"));
    let existing = store.host_by_name(name).await?;
    let (host, credential, joined) = match proof {
        Proof::Credential(credential) => {
            let Some(host) = existing else {
                return Err(Error::Refused(format!(
                    "host '{name}' is not known to this server; the agent's credential is from \
                     another server or the host was removed: delete credential.json under the \
                     agent's root and join again with a join token"
                )));
            };
            let stored = store.host_credential(host.id).await?;
            if !stored.is_some_and(|s| same(&s, &hash(credential))) {
                return Err(Error::Refused(format!(
                    "the credential presented for host '{name}' is not this host's; delete \
                     credential.json under the agent's root and join again with a join token"
                )));
            }
            if let Some(why) = bad_address {
                // A host's own agent sending a malformed address is worth an operator's look.
                audit(store, name, Outcome::Refused, &why).await;
                return Err(Error::Refused(why));
            }
            (host, None, false)
        }
        Proof::JoinToken(token) => {
            let Some(cluster) = store.join_token_cluster(&hash(token)).await? else {
                return Err(Error::Refused(
                    "the join token is not valid on this server; create one with \
                     POST /api/v1/clusters/{cluster}/join-tokens and pass it with --join-token"
                        .into(),
                ));
            };
            if let Some(why) = bad_address {
                return Err(Error::Refused(why));
            }
            let taken = || {
                Error::Refused(format!(
                    "host name '{name}' is already taken by another agent; give this agent \
                     another --name, or remove host '{name}' first"
                ))
            };
            let host = match existing {
                Some(host) => host,
                None => match store
                    .add_host(NewHost {
                        cluster,
                        name: name.to_string(),
                        address: address.to_string(),
                    })
                    .await
                {
                    Ok(host) => host,
                    // Another agent created it a moment ago: claim it like any other, below.
                    Err(Error::AlreadyExists { .. }) => {
                        store.host_by_name(name).await?.ok_or_else(taken)?
                    }
                    Err(e) => return Err(e),
                },
            };
            if host.cluster != cluster {
                let other = crate::store::cluster_name(store, host.cluster).await?;
                return Err(Error::Refused(format!(
                    "host '{name}' already belongs to cluster '{other}'; a host can be in one \
                     cluster only: remove it from '{other}' first"
                )));
            }
            let credential = new_secret(CREDENTIAL_PREFIX)?;
            if !store.claim_host(host.id, &hash(&credential)).await? {
                audit(
                    store,
                    name,
                    Outcome::Refused,
                    "another agent already holds this host; the join was refused",
                )
                .await;
                return Err(taken());
            }
            (host, Some(credential), true)
        }
    };
    let reported = report.address.as_deref().filter(|a| *a != host.address);
    if joined {
        let detail = match reported {
            Some(a) => format!(
                "joined cluster as host '{name}' (address {}; the agent reported {a}, which an \
                 admin must accept to take effect)",
                host.address
            ),
            None => format!("joined cluster as host '{name}' (address {})", host.address),
        };
        audit(store, name, Outcome::Ok, &detail).await;
    } else if let Some(a) = reported
        && host.reported_address.as_deref() != Some(a)
    {
        let detail = format!(
            "the agent reported address {a}; host '{name}' keeps {} until an admin accepts it \
             (PATCH /api/v1/clusters/{{cluster}}/hosts/{name} {{\"address\": \"{a}\"}})",
            host.address
        );
        tracing::warn!(host = name, reported = a, address = %host.address, "agent reported another address");
        audit(store, name, Outcome::Refused, &detail).await;
    }
    store.record_host_report(host.id, report).await?;
    let cluster = crate::store::cluster_name(store, host.cluster).await?;
    let host = store
        .host_by_name(name)
        .await?
        .ok_or_else(|| Error::not_found("host", name))?;
    Ok(Admitted {
        host,
        cluster,
        credential,
    })
}

/// The audit log's actor for host `name`'s agent.
pub fn agent_actor(name: &str) -> String {
    format!("agent:{name}")
}

/// Appends an agent's registration event to the audit log; a failure is logged, not returned
/// (the registration it describes is decided already).
async fn audit(store: &dyn AuditStore, name: &str, outcome: Outcome, detail: &str) {
    let (actor, target) = (agent_actor(name), format!("host {name}"));
    crate::store::audit(
        store,
        &actor,
        Action::AgentRegister,
        &target,
        outcome,
        detail,
    )
    .await;
}

/// The command a host runs to join through `server` (`host:port`, as a request reached it)
/// with `token`, pinning the CA `fingerprint` when the server speaks TLS; every word quoted
/// for a shell, the host's own name, address and root left as placeholders.
pub fn agent_command(server: &str, token: &str, fingerprint: Option<&str>) -> String {
    let q = crate::shell::quote;
    let scheme = if fingerprint.is_some() {
        "https"
    } else {
        "http"
    };
    let mut cmd = format!(
        "bigmgr-agent --server {} --join-token {}",
        q(&format!("{scheme}://{server}")),
        q(token)
    );
    if let Some(fp) = fingerprint {
        cmd.push_str(&format!(" --ca-fingerprint {}", q(fp)));
    }
    cmd.push_str(" --name HOST_NAME --address HOST_ADDRESS --root /var/lib/bigmgr-agent");
    cmd
}
