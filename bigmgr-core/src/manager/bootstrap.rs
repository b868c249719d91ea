//! Adding hosts over SSH as a job ([`Manager::bootstrap_hosts`]): the request is checked whole
//! before anything is written; then the hosts are added (WAITING), each gets a unit of the
//! built-in `bigmgr-agent` service, their SSH orders go to the server's runner
//! ([`crate::bootstrap::runner`]), and a `bootstrap` job runs one task per host.

use super::Manager;
use crate::bootstrap::builtin::{self, INSTANCE};
use crate::bootstrap::runner::Order;
use crate::bootstrap::{AgentBinaries, AgentInstall, HostKey, SshAuth, SshTarget};
use crate::model::{Host, Job, JobOptions, JobRequest, NewHost, NewService, NewUnit, Target};
use crate::request::BootstrapHosts;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Where the agent goes on a machine unless the request says otherwise.
pub const DEFAULT_PREFIX: &str = "/opt/bigmgr-agent";

/// The request, checked: what to log in with and where the agents connect.
struct Checked {
    auth: SshAuth,
    prefix: String,
    server: String,
}

fn check(req: &BootstrapHosts, default_server: Option<&str>) -> Result<Checked> {
    if req.hosts.is_empty() || req.hosts.len() > 1000 {
        return Err(Error::invalid_field(
            "hosts",
            "name between 1 and 1000 machines to bootstrap",
        ));
    }
    let user_ok = !req.ssh_user.is_empty()
        && req.ssh_user.len() <= 32
        && req
            .ssh_user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !req
            .ssh_user
            .starts_with(|c: char| c.is_ascii_digit() || c == '-');
    if !user_ok {
        return Err(Error::invalid_field(
            "ssh_user",
            format!(
                "'{}' is not a user name: use lowercase letters, digits, '_' or '-', starting \
                 with a letter or '_'",
                req.ssh_user
            ),
        ));
    }
    for (field, value, max) in [
        ("ssh_key", &req.ssh_key, 65536),
        ("ssh_key_passphrase", &req.ssh_key_passphrase, 1024),
        ("ssh_password", &req.ssh_password, 1024),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > max) {
            return Err(Error::invalid_field(
                field,
                format!("longer than {max} bytes"),
            ));
        }
    }
    let auth = match (&req.ssh_key, &req.ssh_password) {
        (Some(pem), None) => {
            russh::keys::decode_secret_key(pem, req.ssh_key_passphrase.as_deref()).map_err(
                |e| {
                    Error::invalid_field(
                        "ssh_key",
                        format!(
                            "not a usable private key (OpenSSH format; its passphrase in \
                             ssh_key_passphrase): {e}"
                        ),
                    )
                },
            )?;
            SshAuth::Key {
                pem: pem.clone(),
                passphrase: req.ssh_key_passphrase.clone(),
            }
        }
        (None, Some(p)) if !p.is_empty() => SshAuth::Password(p.clone()),
        _ => {
            return Err(Error::invalid_field(
                "ssh_key",
                "give exactly one of ssh_key (a private key) and ssh_password",
            ));
        }
    };
    let prefix = req.prefix.as_deref().unwrap_or(DEFAULT_PREFIX);
    crate::bootstrap::check_prefix(prefix)?;
    let server = req.server.as_deref().or(default_server).ok_or_else(|| {
        Error::invalid_field("server", "give the URL agents reach this server at")
    })?;
    let url_ok = (server.starts_with("https://") || server.starts_with("http://"))
        && server.len() <= 2048
        && !server.chars().any(|c| c.is_whitespace() || c.is_control());
    if !url_ok {
        return Err(Error::invalid_field(
            "server",
            format!("'{server}' is not an http:// or https:// URL"),
        ));
    }
    let (mut names, mut addresses) = (HashSet::new(), HashSet::new());
    for (i, h) in req.hosts.iter().enumerate() {
        let field = |what: &str| format!("hosts[{i}].{what}");
        crate::name::check_host_name(&h.name)
            .map_err(|e| Error::invalid_field(field("name"), e.to_string()))?;
        crate::address::check_address(&h.address)
            .map_err(|e| Error::invalid_field(field("address"), e))?;
        if !names.insert(h.name.as_str()) {
            return Err(Error::invalid_field(
                field("name"),
                format!("host {} is named twice", h.name),
            ));
        }
        if !addresses.insert(h.address.as_str()) {
            return Err(Error::invalid_field(
                field("address"),
                format!("address {} is given twice", h.address),
            ));
        }
        if let Some(prefix) = &h.prefix {
            crate::bootstrap::check_prefix(prefix)
                .map_err(|e| Error::invalid_field(field("prefix"), e.to_string()))?;
        }
        if h.ssh_port == Some(0) || req.ssh_port == Some(0) {
            return Err(Error::invalid_field(field("ssh_port"), "ports are 1–65535"));
        }
        if let Some(fp) = &h.host_key {
            let body = fp.strip_prefix("SHA256:").unwrap_or("");
            let ok = body.len() == 43
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
            if !ok {
                return Err(Error::invalid_field(
                    field("host_key"),
                    format!(
                        "'{fp}' is not a host key fingerprint: give it as `ssh-keygen -lf` \
                         prints it, SHA256: then 43 base64 characters"
                    ),
                ));
            }
        }
    }
    Ok(Checked {
        auth,
        prefix: prefix.to_string(),
        server: server.to_string(),
    })
}

impl Manager {
    /// Adds the machines `req` names to `cluster` over SSH, as one `bootstrap` job with a task
    /// per host (see the module docs); `default_server` is the URL agents reach the server at
    /// when the request gives none. Hosts already in the cluster at the same address are
    /// bootstrapped again (a no-op where the agent runs, unless `upgrade`); a name or address
    /// taken otherwise, or a host being bootstrapped already, refuses the whole request before
    /// anything is written.
    pub async fn bootstrap_hosts(
        &self,
        cluster: &str,
        req: &BootstrapHosts,
        default_server: Option<&str>,
        author: &str,
    ) -> Result<Job> {
        let checked = check(req, default_server)?;
        let c = self.cluster(cluster).await?;
        if let Some(h) = self
            .inner
            .server_side
            .busy(req.hosts.iter().map(|h| h.name.as_str()))
        {
            return Err(Error::Conflict(format!(
                "host {h} is being bootstrapped already: wait for that job to end"
            )));
        }
        let store = &self.inner.store;
        let mut hosts: BTreeMap<String, Option<Host>> = BTreeMap::new();
        for h in &req.hosts {
            let existing = store.host_by_name(&h.name).await?;
            if let Some(e) = &existing {
                if e.cluster != c.id {
                    return Err(Error::AlreadyExists {
                        kind: "host",
                        name: format!("{} (in another cluster)", h.name),
                    });
                }
                if e.address != h.address {
                    return Err(Error::Conflict(format!(
                        "host {} is in the cluster at address {}, not {}: change its address \
                         first, or give another name",
                        h.name, e.address, h.address
                    )));
                }
            }
            hosts.insert(h.name.clone(), existing);
        }
        let dir = self.inner.agent_dir.clone().ok_or_else(|| {
            Error::Invalid(
                "this server has no bigmgr-agent to copy: start it with --agent-dir".into(),
            )
        })?;
        if !tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()) {
            return Err(Error::Invalid(format!(
                "this server's directory of bigmgr-agent executables ({}) is not a directory: \
                 start it with --agent-dir",
                dir.display()
            )));
        }
        let binaries = Arc::new(AgentBinaries::new(dir));
        let token = crate::join::create_join_token(store.as_ref(), c.id).await?;

        // Checked: now the hosts, the built-in service's units, the orders and the job.
        let mut added = Vec::new();
        for h in &req.hosts {
            let host = match hosts.get(&h.name).cloned().flatten() {
                Some(host) => host,
                None => {
                    store
                        .add_host(NewHost {
                            cluster: c.id,
                            name: h.name.clone(),
                            address: h.address.clone(),
                        })
                        .await?
                }
            };
            added.push(host);
        }
        let service = match store.service_by_name(c.id, INSTANCE).await? {
            Some(s) if builtin::is_builtin(&s.stack) => s,
            Some(_) => {
                return Err(Error::Conflict(format!(
                    "cluster {} has a service named {INSTANCE} that is not the built-in one: \
                     rename it to bootstrap hosts over SSH",
                    c.name
                )));
            }
            None => {
                let new = NewService {
                    cluster: c.id,
                    name: INSTANCE.into(),
                    stack: builtin::STACK.into(),
                    stack_version: builtin::VERSION.into(),
                    service: builtin::SERVICE.into(),
                    configs: Default::default(),
                    host_overrides: Default::default(),
                    author: author.into(),
                };
                store.add_service(new, Vec::new()).await?.0
            }
        };
        let units = store.list_units(c.id).await?;
        let mut ids = Vec::new();
        let mut missing = Vec::new();
        for host in &added {
            match units
                .iter()
                .find(|u| u.service == service.id && u.host == host.id)
            {
                Some(u) => ids.push(u.id),
                None => missing.push(NewUnit {
                    component: builtin::SERVICE.into(),
                    host: host.id,
                }),
            }
        }
        if !missing.is_empty() {
            ids.extend(
                store
                    .add_units(service.id, missing)
                    .await?
                    .iter()
                    .map(|u| u.id),
            );
        }
        let mut orders = Vec::new();
        for (h, host) in req.hosts.iter().zip(&added) {
            let host_key = match &h.host_key {
                Some(fp) => HostKey::Known(fp.clone()),
                None => match store.host_ssh_key(host.id).await? {
                    Some(fp) => HostKey::Known(fp),
                    None => HostKey::TrustOnFirstUse,
                },
            };
            let order = Order {
                host: host.id,
                target: SshTarget {
                    address: h.address.clone(),
                    port: h.ssh_port.or(req.ssh_port).unwrap_or(22),
                    user: req.ssh_user.clone(),
                    auth: checked.auth.clone(),
                    host_key,
                },
                install: AgentInstall {
                    binaries: binaries.clone(),
                    server: checked.server.clone(),
                    join_token: token.clone(),
                    ca_fingerprint: self.inner.ca_fingerprint.clone(),
                    name: h.name.clone(),
                    address: h.address.clone(),
                    prefix: h.prefix.clone().unwrap_or_else(|| checked.prefix.clone()),
                    upgrade: req.upgrade,
                },
            };
            orders.push((h.name.clone(), order));
        }
        let names: Vec<String> = orders.iter().map(|(n, _)| n.clone()).collect();
        self.inner.server_side.place(orders)?;
        let submitted = self
            .submit(JobRequest {
                cluster: c.name.clone(),
                target: Target::Units(ids),
                command: builtin::COMMAND.into(),
                options: JobOptions {
                    reason: Some(format!(
                        "{} host(s) added over SSH by {author}{}",
                        names.len(),
                        if req.upgrade {
                            ", upgrading their agents"
                        } else {
                            ""
                        }
                    )),
                    ..JobOptions::default()
                },
            })
            .await;
        if submitted.is_err() {
            self.inner.server_side.withdraw(&names);
        }
        submitted
    }
}
