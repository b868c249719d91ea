//! Hosts added over SSH: three real OpenSSH servers on 127.0.0.21–23 stand in for machines;
//! core's bootstrap logs in with a key the test made, checks the host key, copies the real
//! `bigmgr-agent`, writes its config with a join token and starts it; the three join and a
//! deploy runs on them. A wrong key fails alone, a second bootstrap changes nothing, and a
//! changed host key is refused.

use bigmgr_core::bootstrap::{
    AgentInstall, HostKey, Installed, SshAuth, SshSession, SshTarget, install_agent,
};
use bigmgr_test_support::{SshKey, Sshd, agent_bin, kill_daemons};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Kills the agents bootstrap started, and their daemons, when dropped: by pid file, and any
/// process still running a binary under the machines' directories (whatever a broken start
/// left).
struct Started(Vec<PathBuf>);

impl Drop for Started {
    fn drop(&mut self) {
        let kill = |pid: i32| {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        };
        for prefix in &self.0 {
            if let Some(pid) = std::fs::read_to_string(prefix.join("agent.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                kill(pid);
            }
            kill_daemons(&prefix.join("root/units"));
            let bin = prefix.join("bin").display().to_string();
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&bin) {
                    kill(pid);
                }
            }
        }
    }
}

fn target(sshd: &Sshd, key: &SshKey, host_key: HostKey) -> SshTarget {
    SshTarget {
        address: sshd.address.clone(),
        port: sshd.port,
        user: "root".into(),
        auth: SshAuth::Key {
            pem: key.private_pem.clone(),
            passphrase: None,
        },
        host_key,
    }
}

#[tokio::test]
async fn hosts_are_bootstrapped_over_ssh_join_and_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let key = SshKey::generate(dir.path(), "operator");
    let stranger = SshKey::generate(dir.path(), "stranger");
    let addresses = ["127.0.0.21", "127.0.0.22", "127.0.0.23"];
    let mut sshds: Vec<Sshd> = addresses
        .iter()
        .map(|a| Sshd::start(a, &[&key.public]))
        .collect();
    let server = bigmgr_test_support::ServerProc::serve()
        .fast_heartbeat()
        .start();
    let api = server.api();
    api.create_cluster("c").await;
    let binary = Arc::new(std::fs::read(agent_bin()).unwrap());
    let prefix = |name: &str| dir.path().join("machines").join(name);
    let mut started = Started(Vec::new());
    let install = |name: &str, address: &str, token: String| AgentInstall {
        binary: binary.clone(),
        arch: std::env::consts::ARCH.to_string(),
        server: server.url.clone(),
        join_token: token,
        ca_fingerprint: None,
        name: name.to_string(),
        address: address.to_string(),
        prefix: prefix(name).display().to_string(),
        upgrade: false,
    };
    let mut known = Vec::new();
    for (i, sshd) in sshds.iter().enumerate() {
        let name = format!("m{}", i + 1);
        let ssh = SshSession::connect(&target(sshd, &key, HostKey::TrustOnFirstUse))
            .await
            .unwrap();
        assert_eq!(
            ssh.host_key, sshd.host_key.fingerprint,
            "the key seen is recorded"
        );
        known.push(ssh.host_key.clone());
        let mut log = Vec::new();
        started.0.push(prefix(&name));
        let token = api.join_token("c").await;
        let done = install_agent(
            &ssh,
            &install(&name, sshd.address.as_str(), token),
            &mut |l| log.push(l),
        )
        .await
        .unwrap();
        assert_eq!(done, Installed::Process, "{log:?}");
        assert!(
            log.iter().any(|l| l.contains("the host runs Linux")),
            "{log:?}"
        );
        let mode = std::fs::metadata(prefix(&name).join("agent.toml"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap();
        assert_eq!(mode, 0o600, "the config holds the join token");
        ssh.close().await;
    }
    for i in 1..=3 {
        api.wait_online("c", &format!("m{i}")).await;
    }
    // A deploy runs on the three.
    api.add_service(
        "c",
        json!({"name": "hello", "stack": "demo", "service": "hello",
               "placement": {"hello_server": ["m1", "m2", "m3"]}}),
    )
    .await;
    let job = api
        .run_job(
            "c",
            "deploy",
            json!({"service": "hello"}),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(job["state"], "SUCCEEDED", "{job}");

    // Again, with the recorded host key: nothing to do there.
    let ssh = SshSession::connect(&target(&sshds[0], &key, HostKey::Known(known[0].clone())))
        .await
        .unwrap();
    let token = api.join_token("c").await;
    let again = install_agent(&ssh, &install("m1", addresses[0], token), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(again, Installed::AlreadyRunning);

    // A key the machine does not know fails alone, saying so.
    let refused =
        SshSession::connect(&target(&sshds[1], &stranger, HostKey::TrustOnFirstUse)).await;
    let e = refused.err().expect("refused").to_string();
    assert!(e.contains("could not log in with the key"), "{e}");

    // A changed host key is refused before the key is offered.
    sshds[2].change_host_key();
    let changed =
        SshSession::connect(&target(&sshds[2], &key, HostKey::Known(known[2].clone()))).await;
    let e = changed.err().expect("refused").to_string();
    assert!(e.contains("the host key changed"), "{e}");
    assert!(e.contains(&sshds[2].host_key.fingerprint), "{e}");

    let stop = api
        .run_job(
            "c",
            "stop",
            json!({"service": "hello"}),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(stop["state"], "SUCCEEDED");
    drop(started);
}
