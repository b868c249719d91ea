//! Adding a host over SSH (Ambari's and Bigtop Manager's "add host" wizard): connect with a
//! key or a password ([`SshSession::connect`], russh — no `ssh` subprocess), check the host
//! key against a known fingerprint or record it on first use, check the OS and architecture,
//! copy the `bigmgr-agent` binary, write its config with a join token, and start it — as a
//! systemd unit where systemd runs, else under a supervisor process that restarts it
//! ([`install_agent`]). A host that already runs the agent is left alone unless an upgrade
//! is asked for.
//!
//! Every value that reaches the remote shell is quoted ([`crate::shell::quote`]); the key,
//! the password and the join token are never logged or returned.

pub mod builtin;
pub mod runner;

use crate::shell::quote;
use crate::{Error, Result};
use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate, decode_secret_key};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long connecting and authenticating may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How to log in.
#[derive(Clone)]
pub enum SshAuth {
    /// A private key (OpenSSH PEM), with its passphrase if it has one.
    Key {
        /// The key's text.
        pem: String,
        /// Its passphrase.
        passphrase: Option<String>,
    },
    /// A password.
    Password(String),
}

impl std::fmt::Debug for SshAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SshAuth::Key { .. } => "Key(********)",
            SshAuth::Password(_) => "Password(********)",
        })
    }
}

/// Which host key to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKey {
    /// Only this one: its SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
    Known(String),
    /// Whichever the host shows the first time; the session says which it was, to record.
    TrustOnFirstUse,
}

/// A machine to reach over SSH.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// Its address (an IP address or a DNS name).
    pub address: String,
    /// The SSH port.
    pub port: u16,
    /// The user to log in as (root, or one that may run `sudo` without a password — not
    /// supported yet: root).
    pub user: String,
    /// How to log in.
    pub auth: SshAuth,
    /// Which host key to accept.
    pub host_key: HostKey,
}

/// What a remote command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its exit status (None: it ended without one, e.g. by a signal).
    pub status: Option<u32>,
    /// What it wrote to stdout.
    pub stdout: String,
    /// What it wrote to stderr.
    pub stderr: String,
}

struct Checker {
    want: HostKey,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let fingerprint = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.fingerprint(HashAlg::Sha256).to_string()
            }
            PublicKeyOrCertificate::Certificate(c) => {
                c.public_key().fingerprint(HashAlg::Sha256).to_string()
            }
        };
        let ok = match &self.want {
            HostKey::Known(f) => *f == fingerprint,
            HostKey::TrustOnFirstUse => true,
        };
        *self.seen.lock().expect("not poisoned") = Some(fingerprint);
        Ok(ok)
    }
}

/// A logged-in SSH session.
pub struct SshSession {
    handle: client::Handle<Checker>,
    /// The host key's fingerprint (`SHA256:…`): record it after a trust-on-first-use login.
    pub host_key: String,
}

impl SshSession {
    /// Connects to `target` and logs in, within [`CONNECT_TIMEOUT`]. A host key other than
    /// the known one is refused before anything is sent; so is a failed login.
    pub async fn connect(target: &SshTarget) -> Result<SshSession> {
        crate::address::check_address(&target.address)
            .map_err(|e| Error::invalid_field("address", e))?;
        let at = format!("{}:{}", target.address, target.port);
        tokio::time::timeout(CONNECT_TIMEOUT, Self::login(target, &at))
            .await
            .map_err(|_| {
                Error::Transport(format!(
                    "ssh {at}: no login within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
    }

    async fn login(target: &SshTarget, at: &str) -> Result<SshSession> {
        let seen = Arc::new(Mutex::new(None));
        let checker = Checker {
            want: target.host_key.clone(),
            seen: seen.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(120)),
            ..client::Config::default()
        });
        let host = target.address.trim_start_matches('[').trim_end_matches(']');
        let connected = client::connect(config, (host, target.port), checker).await;
        let seen_key = seen.lock().expect("not poisoned").clone();
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                if let (HostKey::Known(want), Some(got)) = (&target.host_key, &seen_key)
                    && want != got
                {
                    return Err(Error::Refused(format!(
                        "ssh {at}: the host key changed: it is {got}, not the known {want}; \
                         if the machine was reinstalled, give its new fingerprint"
                    )));
                }
                return Err(Error::Transport(format!("ssh {at}: {e}")));
            }
        };
        let who = target.user.clone();
        let auth = match &target.auth {
            SshAuth::Key { pem, passphrase } => {
                let key = decode_secret_key(pem, passphrase.as_deref()).map_err(|e| {
                    Error::invalid_field("ssh_key", format!("not a usable private key: {e}"))
                })?;
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| Error::Transport(format!("ssh {at}: {e}")))?
                    .flatten();
                handle
                    .authenticate_publickey(who, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
                    .await
            }
            SshAuth::Password(p) => handle.authenticate_password(who, p.clone()).await,
        }
        .map_err(|e| Error::Transport(format!("ssh {at}: {e}")))?;
        if !auth.success() {
            return Err(Error::Refused(format!(
                "ssh {at}: {} could not log in with the {} given",
                target.user,
                match target.auth {
                    SshAuth::Key { .. } => "key",
                    SshAuth::Password(_) => "password",
                }
            )));
        }
        Ok(SshSession {
            handle,
            host_key: seen_key.unwrap_or_default(),
        })
    }

    /// Runs `command` (a shell command line: quote what goes in it) with `stdin` fed to it.
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<Output> {
        let err = |e: russh::Error| Error::Transport(format!("ssh: {e}"));
        let mut channel = self.handle.channel_open_session().await.map_err(err)?;
        channel.exec(true, command).await.map_err(err)?;
        if let Some(data) = stdin {
            channel.data(data).await.map_err(err)?;
        }
        channel.eof().await.map_err(err)?;
        let (mut stdout, mut stderr, mut status) = (Vec::new(), Vec::new(), None);
        while let Some(msg) = channel.wait().await {
            match msg {
                russh::ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                russh::ChannelMsg::ExtendedData { data, .. } => stderr.extend_from_slice(&data),
                russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                _ => {}
            }
        }
        Ok(Output {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Runs `command` and fails naming `what` unless it exits 0.
    async fn run(&self, what: &str, command: &str, stdin: Option<&[u8]>) -> Result<String> {
        let out = self.exec(command, stdin).await?;
        if out.status == Some(0) {
            Ok(out.stdout)
        } else {
            Err(Error::Invalid(format!(
                "{what} failed (exit {}): {}",
                out.status.map_or("none".to_string(), |s| s.to_string()),
                out.stderr.trim()
            )))
        }
    }

    /// Logs out.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// Where the `bigmgr-agent` executables to copy come from: a directory holding
/// `bigmgr-agent-<arch>` for each architecture it serves (as `uname -m` prints it: `x86_64`,
/// `aarch64`), and `bigmgr-agent` for this server's own (the one built with it). Each is read
/// once, when a host of its architecture first needs it.
#[derive(Debug)]
pub struct AgentBinaries {
    dir: std::path::PathBuf,
    read: tokio::sync::Mutex<std::collections::HashMap<String, Arc<Vec<u8>>>>,
}

impl AgentBinaries {
    /// The executables of `dir`.
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        AgentBinaries {
            dir: dir.into(),
            read: Default::default(),
        }
    }

    /// The directory they are read from.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The executable for Linux on `arch`, or an error saying where one was looked for.
    pub async fn for_arch(&self, arch: &str) -> Result<Arc<Vec<u8>>> {
        let ok = !arch.is_empty()
            && arch.len() <= 32
            && arch
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::Invalid(format!("unsupported architecture '{arch}'")));
        }
        let mut read = self.read.lock().await;
        if let Some(b) = read.get(arch) {
            return Ok(b.clone());
        }
        let named = self.dir.join(format!("bigmgr-agent-{arch}"));
        let own = (arch == std::env::consts::ARCH).then(|| self.dir.join("bigmgr-agent"));
        for path in std::iter::once(named.clone()).chain(own) {
            match tokio::fs::read(&path).await {
                Ok(bytes) => {
                    let bytes = Arc::new(bytes);
                    read.insert(arch.to_string(), bytes.clone());
                    return Ok(bytes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Invalid(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        Err(Error::Invalid(format!(
            "this server has no bigmgr-agent for Linux {arch}: put one in {} as {}",
            self.dir.display(),
            named
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )))
    }
}

/// What to install on a host and how it joins.
#[derive(Clone)]
pub struct AgentInstall {
    /// Where the executable to copy comes from (the one for the host's architecture).
    pub binaries: Arc<AgentBinaries>,
    /// The server URL(s) the agent connects to.
    pub server: String,
    /// A join token of the cluster.
    pub join_token: String,
    /// The server's CA fingerprint to pin, on a TLS server.
    pub ca_fingerprint: Option<String>,
    /// The host's name in the cluster.
    pub name: String,
    /// The host's address.
    pub address: String,
    /// The directory on the host for the agent's binary, config, log and root
    /// (default `/opt/bigmgr-agent`).
    pub prefix: String,
    /// Replace an agent already running there (else such a host is left alone).
    pub upgrade: bool,
}

impl std::fmt::Debug for AgentInstall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentInstall")
            .field("binaries", &self.binaries.dir())
            .field("server", &self.server)
            .field("name", &self.name)
            .field("address", &self.address)
            .field("prefix", &self.prefix)
            .field("upgrade", &self.upgrade)
            .finish_non_exhaustive()
    }
}

/// How an install ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The agent already ran there; nothing was changed.
    AlreadyRunning,
    /// Installed and started as a systemd unit (`bigmgr-agent.service`).
    Systemd,
    /// Installed and started under a supervisor process that restarts it (the supervisor's
    /// pid in `<prefix>/agent.pid`), where no systemd runs.
    Process,
}

/// Checks the agent's directory on a host: an absolute path without `..`, of at most 512
/// printable characters.
pub fn check_prefix(prefix: &str) -> Result<()> {
    if !prefix.starts_with('/')
        || prefix.split('/').any(|p| p == "..")
        || prefix.len() > 512
        || prefix.chars().any(char::is_control)
    {
        return Err(Error::invalid_field(
            "prefix",
            format!("'{prefix}': the agent's directory must be an absolute path without .."),
        ));
    }
    Ok(())
}

/// The systemd unit that runs the agent.
const UNIT: &str = "bigmgr-agent";

/// Installs and starts the agent over `ssh` as `install` says, telling `progress` each step.
pub async fn install_agent(
    ssh: &SshSession,
    install: &AgentInstall,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<Installed> {
    crate::name::check_host_name(&install.name)
        .map_err(|e| Error::invalid_field("name", e.to_string()))?;
    crate::address::check_address(&install.address)
        .map_err(|e| Error::invalid_field("address", e))?;
    check_prefix(&install.prefix)?;
    let prefix = install.prefix.trim_end_matches('/');
    let q = |p: &str| quote(&format!("{prefix}/{p}"));
    let system = ssh.run("uname", "uname -sm", None).await?;
    let system = system.trim();
    progress(format!("the host runs {system}"));
    let mut parts = system.split_whitespace();
    let (os, arch) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if os != "Linux" {
        return Err(Error::Invalid(format!(
            "unsupported system '{system}': bigmgr agents run on Linux"
        )));
    }
    let binary = install.binaries.for_arch(arch).await?;
    let systemd = ssh
        .exec("test -d /run/systemd/system && command -v systemctl", None)
        .await?
        .status
        == Some(0);
    let running = if systemd {
        format!("systemctl is-active --quiet {UNIT}")
    } else {
        format!(
            "pid=$(cat {} 2>/dev/null) && [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null",
            q("agent.pid")
        )
    };
    if ssh.exec(&running, None).await?.status == Some(0) {
        if !install.upgrade {
            progress("the agent already runs there: nothing to do".into());
            return Ok(Installed::AlreadyRunning);
        }
        progress("the agent runs there: stopping it to upgrade".into());
        // The supervisor leads its own process group: ending the group ends it and the agent,
        // whose task processes run in sessions of their own and go on.
        let stop = if systemd {
            format!("systemctl stop {UNIT}")
        } else {
            format!(
                "pid=$(cat {}) && kill -TERM -- -\"$pid\" && for i in $(seq 1 100); do \
                 kill -0 -- -\"$pid\" 2>/dev/null || exit 0; sleep 0.1; done; \
                 kill -KILL -- -\"$pid\" 2>/dev/null; true",
                q("agent.pid")
            )
        };
        ssh.run("stopping the agent", &stop, None).await?;
    }
    ssh.run(
        "making the agent's directory",
        &format!("umask 077 && mkdir -p {} {}", q("bin"), q("root")),
        None,
    )
    .await?;
    progress(format!(
        "copying bigmgr-agent ({} bytes) to {prefix}/bin",
        binary.len()
    ));
    let sum = hex::encode(Sha256::digest(binary.as_slice()));
    let tmp = q("bin/bigmgr-agent.new");
    ssh.run(
        "copying the agent",
        &format!("cat > {tmp} && chmod 0755 {tmp}"),
        Some(binary.as_slice()),
    )
    .await?;
    let got = ssh
        .run("checking the copy", &format!("sha256sum {tmp}"), None)
        .await?;
    if got.split_whitespace().next() != Some(sum.as_str()) {
        return Err(Error::Invalid(format!(
            "the copied agent's SHA-256 is {}, not {sum}: the copy was damaged",
            got.split_whitespace().next().unwrap_or("unknown")
        )));
    }
    ssh.run(
        "installing the agent",
        &format!("mv -f {tmp} {}", q("bin/bigmgr-agent")),
        None,
    )
    .await?;
    let config = agent_config(install, prefix);
    ssh.run(
        "writing the agent's config",
        &format!("umask 077 && cat > {}", q("agent.toml")),
        Some(config.as_bytes()),
    )
    .await?;
    progress(format!("wrote {prefix}/agent.toml (mode 0600)"));
    let exec = format!("{} --config {}", q("bin/bigmgr-agent"), q("agent.toml"));
    if systemd {
        let unit = format!(
            "[Unit]\nDescription=bigmgr agent\nAfter=network-online.target\n\n[Service]\n\
             ExecStart={exec}\nRestart=always\nRestartSec=5\n\n[Install]\nWantedBy=multi-user.target\n"
        );
        ssh.run(
            "installing the systemd unit",
            &format!("cat > /etc/systemd/system/{UNIT}.service && systemctl daemon-reload && systemctl enable --now {UNIT}"),
            Some(unit.as_bytes()),
        )
        .await?;
        progress(format!("started {UNIT}.service"));
        Ok(Installed::Systemd)
    } else {
        // No systemd: a small supervisor in a session of its own runs the agent and starts it
        // again 5 s after it exits, as systemd's Restart=always would.
        let supervise = "while :; do \"$0\" --config \"$1\"; \
                         echo \"bigmgr-agent exited ($?); starting it again in 5s\"; sleep 5; done";
        ssh.run(
            "starting the agent",
            &format!(
                "cd /; nohup setsid sh -c {} {} {} >> {} 2>&1 < /dev/null & echo $! > {}",
                quote(supervise),
                q("bin/bigmgr-agent"),
                q("agent.toml"),
                q("agent.log"),
                q("agent.pid")
            ),
            None,
        )
        .await?;
        progress(format!(
            "started the agent under a supervisor that restarts it (no systemd there); the \
             supervisor's pid is in {prefix}/agent.pid"
        ));
        Ok(Installed::Process)
    }
}

/// The agent's config file (TOML, every value a quoted string).
fn agent_config(install: &AgentInstall, prefix: &str) -> String {
    let mut t = toml::Table::new();
    let mut put = |k: &str, v: &str| {
        t.insert(k.into(), toml::Value::String(v.into()));
    };
    put("server", &install.server);
    put("join_token", &install.join_token);
    if let Some(fp) = &install.ca_fingerprint {
        put("ca_fingerprint", fp);
    }
    put("name", &install.name);
    put("address", &install.address);
    put("root", &format!("{prefix}/root"));
    format!(
        "# Written by bigmgr's host bootstrap.\n{}",
        toml::to_string(&t).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_quotes_every_value_and_debug_hides_secrets() {
        let install = AgentInstall {
            binaries: Arc::new(AgentBinaries::new("/nonexistent")),
            server: "https://a:7070".into(),
            join_token: "bmj_secret\"\n[x]".into(),
            ca_fingerprint: Some("sha256:ab".into()),
            name: "h1".into(),
            address: "10.0.0.1".into(),
            prefix: "/opt/bigmgr-agent".into(),
            upgrade: false,
        };
        let text = agent_config(&install, "/opt/bigmgr-agent");
        let back: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(back["join_token"].as_str(), Some("bmj_secret\"\n[x]"));
        assert_eq!(back["root"].as_str(), Some("/opt/bigmgr-agent/root"));
        assert_eq!(back.len(), 6);
        assert!(!format!("{install:?}").contains("bmj_"));
        let auth = SshAuth::Password("hunter2".into());
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}

#[cfg(test)]
mod binaries_tests {
    use super::*;

    #[tokio::test]
    async fn the_executable_of_each_architecture_is_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bigmgr-agent"), b"own").unwrap();
        std::fs::write(dir.path().join("bigmgr-agent-riscv64"), b"riscv").unwrap();
        let b = AgentBinaries::new(dir.path());
        assert_eq!(*b.for_arch(std::env::consts::ARCH).await.unwrap(), b"own");
        assert_eq!(*b.for_arch("riscv64").await.unwrap(), b"riscv");
        let e = b.for_arch("s390x").await.unwrap_err().to_string();
        assert!(
            e.contains("no bigmgr-agent for Linux s390x") && e.contains("bigmgr-agent-s390x"),
            "{e}"
        );
        let e = b.for_arch("../x").await.unwrap_err().to_string();
        assert!(e.contains("unsupported architecture"), "{e}");
    }
}
