//! Hosts added over SSH, as a job, through REST and the CLI: four real OpenSSH servers on
//! 127.0.0.21–24 stand in for machines (the fourth does not know the operator's key). One
//! `POST …/hosts/bootstrap` gives a job with a task per machine: the three join — the server
//! logged in with the key the test made, recorded each host key on first use, copied its own
//! `bigmgr-agent`, wrote its config with a join token and the TLS server's CA fingerprint, and
//! started it — and a deploy runs on them; the fourth fails alone, saying why. Through the
//! CLI, a second bootstrap of a host changes nothing (same agent process), `--upgrade`
//! replaces the agent, and a changed host key is refused.

use crate::cli::Client;
use bigmgr_test_support::{ServerProc, SshKey, Sshd, assert_contains, kill_daemons};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
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
            if let Some(pid) = agent_pid(prefix) {
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

/// The pid the agent's start wrote under `prefix`.
fn agent_pid(prefix: &Path) -> Option<i32> {
    std::fs::read_to_string(prefix.join("agent.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
}

/// The pid of the `bigmgr-agent` process (not its supervisor) running from `prefix`.
fn agent_of(prefix: &Path) -> Option<i32> {
    let bin = prefix.join("bin/bigmgr-agent").display().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        (comm.trim() == "bigmgr-agent" && String::from_utf8_lossy(&cmdline).starts_with(&bin))
            .then_some(pid)
    })
}

/// Every log line of every task of job `id`, by host.
async fn logs_by_host(api: &bigmgr_test_support::Api, job: &Value) -> Vec<(String, String)> {
    let id = job["id"].as_i64().expect("id");
    let mut out = Vec::new();
    for stage in job["stages"].as_array().expect("stages") {
        for t in stage["tasks"].as_array().expect("tasks") {
            let resp = api.get(&format!("/jobs/{id}/tasks/{}/log", t["id"])).await;
            let log = resp.expect(200);
            let text: Vec<&str> = log["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .filter_map(|l| l["line"].as_str())
                .collect();
            out.push((
                t["host"].as_str().expect("host").to_string(),
                text.join("\n"),
            ));
        }
    }
    out
}

#[tokio::test]
async fn hosts_are_bootstrapped_over_ssh_as_a_job_join_and_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let key = SshKey::generate(dir.path(), "operator");
    let stranger = SshKey::generate(dir.path(), "stranger");
    let mut sshds: Vec<Sshd> = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
        .iter()
        .map(|a| Sshd::start(a, &[&key.public]))
        .collect();
    let locked = Sshd::start("127.0.0.24", &[&stranger.public]);
    let server = ServerProc::serve().fast_heartbeat().tls().start();
    let api = server.api();
    api.create_cluster("c").await;
    let prefix = |name: &str| dir.path().join("machines").join(name);
    let started = Started(["m1", "m2", "m3", "m4"].iter().map(|m| prefix(m)).collect());
    let machine = |name: &str, sshd: &Sshd| {
        json!({"name": name, "address": sshd.address, "ssh_port": sshd.port,
               "prefix": prefix(name).display().to_string()})
    };
    let body = json!({
        "hosts": [machine("m1", &sshds[0]), machine("m2", &sshds[1]),
                  machine("m3", &sshds[2]), machine("m4", &locked)],
        "ssh_user": "root",
        "ssh_key": key.private_pem,
    });

    // A request with a mistake is refused whole, naming the field; nothing is added.
    let mut bad = body.clone();
    bad["hosts"][2]["address"] = json!("127.0.0.23; rm -rf /");
    let r = api.post("/clusters/c/hosts/bootstrap", bad).await;
    assert_contains(r.problem(422), "is not an address");
    assert_eq!(r.body["field"], "hosts[2].address", "{}", r.text);
    let mut bad = body.clone();
    bad["ssh_key"] = json!("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n");
    let r = api.post("/clusters/c/hosts/bootstrap", bad).await;
    assert_contains(r.problem(422), "not a usable private key");
    assert_eq!(r.body["field"], "ssh_key", "{}", r.text);
    let hosts = api.get("/clusters/c/hosts").await.expect(200).clone();
    assert_eq!(hosts["items"], json!([]), "nothing was added: {hosts}");

    // One job, a task per machine: three join, the fourth fails alone.
    let resp = api.post("/clusters/c/hosts/bootstrap", body).await;
    let job = resp.expect(202).clone();
    assert_eq!(job["command"], "bootstrap", "{job}");
    let id = job["id"].as_i64().unwrap();
    let done = api.wait_job(id, Duration::from_secs(300)).await;
    assert_eq!(done["state"], "FAILED", "one machine failed: {done}");
    let tasks: Vec<&Value> = done["stages"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(tasks.len(), 4, "{done}");
    for t in &tasks {
        let host = t["host"].as_str().unwrap();
        if host == "m4" {
            assert_eq!(t["state"], "FAILED", "{t}");
            assert_contains(
                t["message"].as_str().unwrap(),
                "could not log in with the key",
            );
        } else {
            assert_eq!(t["state"], "SUCCEEDED", "{t}");
        }
    }
    let logs = logs_by_host(&api, &done).await;
    for (host, log) in &logs {
        if host == "m4" {
            continue;
        }
        let sshd = &sshds[host[1..].parse::<usize>().unwrap() - 1];
        // The host key seen was trusted on first use and recorded; the steps are shown live.
        assert_contains(
            log,
            format!(
                "host key {}: first login, trusted and recorded",
                sshd.host_key.fingerprint
            ),
        );
        assert_contains(log, "the host runs Linux");
        assert_contains(log, "joined: its agent is ONLINE");
        // The agent's config holds the join token (0600) and pins the server's CA.
        let conf = prefix(host).join("agent.toml");
        let mode = std::fs::metadata(&conf)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap();
        assert_eq!(mode, 0o600, "the config holds the join token");
        let conf: toml::Table = toml::from_str(&std::fs::read_to_string(&conf).unwrap()).unwrap();
        assert!(
            conf["ca_fingerprint"]
                .as_str()
                .unwrap()
                .starts_with("sha256:"),
            "{conf}"
        );
        assert!(
            conf["server"].as_str().unwrap().starts_with("https://"),
            "{conf}"
        );
    }
    // The credential is never returned nor recorded: not in the job, its logs or the audit.
    let audit = api.get("/audit?limit=200").await.text;
    assert_contains(&audit, "bootstrap-hosts");
    for text in [done.to_string(), format!("{logs:?}"), audit] {
        assert!(!text.contains("PRIVATE KEY"), "the key leaked: {text}");
    }
    for m in ["m1", "m2", "m3"] {
        api.wait_online("c", m).await;
    }
    // A deploy runs on the three.
    api.add_service(
        "c",
        json!({"name": "hello", "stack": "demo", "service": "hello",
               "placement": {"hello_server": ["m1", "m2", "m3"]}}),
    )
    .await;
    let deploy = api
        .run_job(
            "c",
            "deploy",
            json!({"service": "hello"}),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(deploy["state"], "SUCCEEDED", "{deploy}");

    // Through the CLI: bootstrapping m1 again changes nothing (the recorded key is required
    // and matches; the same agent process runs on).
    let ca = server.ca().expect("a TLS server");
    let cli = Client::with_env(vec![
        ("BIGMGR_SERVER".into(), server.url.clone()),
        ("BIGMGR_TOKEN".into(), server.token()),
        ("BIGMGR_CA".into(), ca.display().to_string()),
    ]);
    let key_file = dir.path().join("operator");
    let bootstrap = |name: &str, sshd: &Sshd, extra: &[&str]| {
        let machine = format!("{name}={}:{}", sshd.address, sshd.port);
        let dir = prefix(name).display().to_string();
        let mut args = vec![
            "host",
            "bootstrap",
            "c",
            "--ssh-key",
            key_file.to_str().unwrap(),
            "--prefix",
            &dir,
        ];
        args.extend_from_slice(extra);
        args.push(&machine);
        cli.run(&args)
    };
    let before = agent_pid(&prefix("m1")).expect("m1's agent pid");
    let again = bootstrap("m1", &sshds[0], &[]);
    let out = again.expect(0);
    assert_contains(&out.stdout, "SUCCEEDED");
    assert_contains(&out.stdout, "the agent already runs there: nothing to do");
    assert_contains(
        &out.stdout,
        format!("host key {}: the known one", sshds[0].host_key.fingerprint),
    );
    assert_eq!(
        agent_pid(&prefix("m1")),
        Some(before),
        "the agent was left alone"
    );

    // No systemd here: the agent runs under a supervisor, which starts it again when it dies.
    let agent = agent_of(&prefix("m1")).expect("m1's agent process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    bigmgr_test_support::wait_until(
        "m1's agent started again",
        Duration::from_secs(30),
        || async { agent_of(&prefix("m1")).filter(|p| *p != agent) },
    )
    .await;

    // --upgrade replaces m2's agent, which joins again.
    let before = agent_pid(&prefix("m2")).expect("m2's agent pid");
    let upgraded = bootstrap("m2", &sshds[1], &["--upgrade"]);
    let out = upgraded.expect(0);
    assert_contains(&out.stdout, "stopping it to upgrade");
    assert_contains(&out.stdout, "joined: its agent is ONLINE");
    let after = agent_pid(&prefix("m2")).expect("m2's new agent pid");
    assert_ne!(after, before, "a new agent process runs");
    assert!(
        !bigmgr_test_support::procs::running(before),
        "the old agent process is gone"
    );

    // m3's machine was reinstalled (a new host key): refused before the key is offered.
    sshds[2].change_host_key();
    let refused = bootstrap("m3", &sshds[2], &[]);
    let err = refused.expect(1);
    assert_contains(&err.stderr, "the host key changed");
    assert_contains(&err.stderr, &sshds[2].host_key.fingerprint);

    // Hosts added over SSH are no part of the cluster's spec, and can be removed once their
    // services are gone (the built-in unit goes with them).
    let spec = api.get("/clusters/c/spec").await.expect(200).clone();
    assert!(!spec.to_string().contains("bigmgr-agent"), "{spec}");
    api.delete("/clusters/c/hosts/m4").await.expect(204);
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
