//! Real OpenSSH servers standing in for machines (Debian's openssh-server, started with its
//! own host key and config on a 127.0.0.x address), and keys for them: what host bootstrap
//! logs in to. Dropping an [`Sshd`] kills it by pid.

use crate::process::Proc;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// Where Debian installs the server.
const SSHD: &str = "/usr/sbin/sshd";

/// An ed25519 key pair made by `ssh-keygen`.
pub struct SshKey {
    /// The private key (OpenSSH format).
    pub private_pem: String,
    /// The public key line (`ssh-ed25519 AAAA… comment`).
    pub public: String,
    /// Its SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
    pub fingerprint: String,
}

impl SshKey {
    /// A fresh key, made in `dir` under `name`.
    pub fn generate(dir: &Path, name: &str) -> SshKey {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("pub"));
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .output()
            .expect("run ssh-keygen (apt-get install openssh-client)");
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        let public_path = PathBuf::from(format!("{}.pub", path.display()));
        let fp = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(&public_path)
            .output()
            .expect("ssh-keygen -l");
        let fingerprint = String::from_utf8_lossy(&fp.stdout)
            .split_whitespace()
            .nth(1)
            .expect("a fingerprint")
            .to_string();
        SshKey {
            private_pem: std::fs::read_to_string(&path).expect("the private key"),
            public: std::fs::read_to_string(&public_path)
                .expect("the public key")
                .trim()
                .to_string(),
            fingerprint,
        }
    }
}

/// A running `sshd` on one loopback address, accepting the keys it was given for root.
pub struct Sshd {
    /// The address it listens on.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Its host key.
    pub host_key: SshKey,
    dir: TempDir,
    proc: Option<Proc>,
}

impl Sshd {
    /// Starts one on `address` (a free port), letting in root with any of `authorized`
    /// (public key lines). Needs root and Debian's openssh-server.
    pub fn start(address: &str, authorized: &[&str]) -> Sshd {
        let dir = tempfile::tempdir().expect("temp dir");
        let host_key = SshKey::generate(dir.path(), "host_key");
        std::fs::write(
            dir.path().join("authorized_keys"),
            format!("{}\n", authorized.join("\n")),
        )
        .expect("authorized_keys");
        // sshd wants its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let mut sshd = Sshd {
            address: address.to_string(),
            port: crate::net::free_port(),
            host_key,
            dir,
            proc: None,
        };
        sshd.spawn();
        sshd
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let config = format!(
            "ListenAddress {}:{}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nLogLevel VERBOSE\n",
            self.address,
            self.port,
            d.join("host_key").display(),
            d.join("sshd.pid").display(),
            d.join("authorized_keys").display(),
        );
        let cfg = d.join("sshd_config");
        std::fs::write(&cfg, config).expect("sshd_config");
        let mut cmd = Command::new(SSHD);
        cmd.arg("-D").arg("-e").arg("-f").arg(&cfg);
        let proc = Proc::spawn(format!("sshd on {}:{}", self.address, self.port), cmd, &[]);
        self.proc = Some(proc);
        crate::wait::wait_for_port(&self.address, self.port);
    }

    /// Restarts it with a new host key (a reinstalled machine, or a man in the middle).
    pub fn change_host_key(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        self.host_key = SshKey::generate(self.dir.path(), "host_key");
        self.spawn();
    }
}
