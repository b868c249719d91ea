//! `bigmgr host bootstrap`: adds machines over SSH — reads the key (or the password from an
//! environment variable, never from the command line), sends one request, and follows the
//! `bootstrap` job (a task per host, its log lines live) to its end.

use super::jobs::follow_and_report;
use super::output::Output;
use super::{Error, Result};
use crate::cli::BootstrapArgs;
use crate::error::IoError;
use bigmgr_client::Client;
use bigmgr_core::request::{BootstrapHost, BootstrapHosts};
use std::collections::BTreeMap;

/// `bigmgr host bootstrap …`
pub async fn bootstrap(client: &Client, out: Output, args: BootstrapArgs) -> Result<()> {
    let env = |var: &str, what: &str| {
        std::env::var(var)
            .map_err(|_| Error::Config(format!("{what}: environment variable {var} is not set")))
    };
    let ssh_key = match &args.ssh_key {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| IoError::new(path, e))?),
        None => None,
    };
    let ssh_key_passphrase = match &args.ssh_key_passphrase_env {
        Some(var) => Some(env(var, "--ssh-key-passphrase-env")?),
        None => None,
    };
    let ssh_password = match &args.ssh_password_env {
        Some(var) => Some(env(var, "--ssh-password-env")?),
        None => None,
    };
    let mut pins = BTreeMap::new();
    for pin in &args.host_keys {
        let (name, fp) = pin
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("--host-key {pin}: give it as NAME=SHA256:…")))?;
        pins.insert(name.to_string(), fp.to_string());
    }
    let mut hosts = Vec::new();
    for m in &args.machines {
        let mut host = machine(m)?;
        host.host_key = pins.remove(&host.name);
        hosts.push(host);
    }
    if let Some(name) = pins.keys().next() {
        return Err(Error::Config(format!(
            "--host-key {name}=…: no machine is named {name}"
        )));
    }
    let req = BootstrapHosts {
        hosts,
        ssh_user: args.ssh_user,
        ssh_port: args.ssh_port,
        ssh_key,
        ssh_key_passphrase,
        ssh_password,
        upgrade: args.upgrade,
        prefix: args.prefix,
        server: args.server,
    };
    let job = client.bootstrap_hosts(&args.cluster, &req).await?;
    if args.no_wait {
        if out.json {
            out.print_json(&super::jobs::to_json(&job));
        } else {
            println!(
                "job {}: bootstrapping {} host(s) of cluster {} over SSH; `bigmgr job wait {}` \
                 follows it",
                job.id,
                req.hosts.len(),
                args.cluster,
                job.id
            );
        }
        return Ok(());
    }
    if !out.json {
        eprintln!(
            "job {}: bootstrapping {} host(s) of cluster {} over SSH",
            job.id,
            req.hosts.len(),
            args.cluster
        );
    }
    follow_and_report(client, out, job.id).await
}

/// A machine as given: `ADDRESS` or `NAME=ADDRESS`, either with `:PORT` (`[v6]:PORT`).
fn machine(arg: &str) -> Result<BootstrapHost> {
    let bad = |why: &str| Error::Config(format!("machine '{arg}': {why}"));
    let (name, at) = match arg.split_once('=') {
        Some((n, a)) => (Some(n), a),
        None => (None, arg),
    };
    let (address, port) = if let Some(rest) = at.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address in [ ] lacks its ]"))?;
        match after.strip_prefix(':') {
            Some(p) => (addr, Some(p)),
            None if after.is_empty() => (addr, None),
            None => return Err(bad("give the port after ]: as [addr]:PORT")),
        }
    } else {
        match at.rsplit_once(':') {
            // One colon: host:port; more: a bare IPv6 address.
            Some((a, p)) if !a.contains(':') => (a, Some(p)),
            _ => (at, None),
        }
    };
    let ssh_port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("the port must be 1–65535"))?,
        ),
        None => None,
    };
    if address.is_empty() {
        return Err(bad("no address"));
    }
    Ok(BootstrapHost {
        name: name.unwrap_or(address).to_string(),
        address: address.to_string(),
        ssh_port,
        host_key: None,
        prefix: None,
    })
}

#[cfg(test)]
mod tests {
    use super::machine;

    #[test]
    fn machines_are_read_with_names_ports_and_ipv6() {
        let m = machine("10.0.0.5").unwrap();
        assert_eq!(
            (m.name.as_str(), m.address.as_str(), m.ssh_port),
            ("10.0.0.5", "10.0.0.5", None)
        );
        let m = machine("m1=10.0.0.5:2222").unwrap();
        assert_eq!(
            (m.name.as_str(), m.address.as_str(), m.ssh_port),
            ("m1", "10.0.0.5", Some(2222))
        );
        let m = machine("m2=[fd00::2]:22").unwrap();
        assert_eq!((m.address.as_str(), m.ssh_port), ("fd00::2", Some(22)));
        let m = machine("m3=fd00::3").unwrap();
        assert_eq!((m.address.as_str(), m.ssh_port), ("fd00::3", None));
        for bad in [
            "m1=10.0.0.5:0",
            "m1=10.0.0.5:x",
            "m1=[fd00::1",
            "m1=",
            "m1=[fd00::1]22",
        ] {
            assert!(machine(bad).is_err(), "{bad}");
        }
    }
}
