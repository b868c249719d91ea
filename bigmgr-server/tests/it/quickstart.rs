//! `bigmgr quickstart`: the server, three in-process agents and the demo stack, deployed and
//! then stopped on a signal; twice on the same data directory.

use bigmgr_test_support::{DaemonGuard, ServerProc};
use nix::sys::signal::Signal;
use std::time::Duration;

#[tokio::test]
async fn quickstart_deploys_the_demo_and_stops_it_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("qs");
    // The demo's daemons go even if an assertion fails half-way (before the directory does).
    let _daemons = DaemonGuard(data.clone());
    for (round, signal) in [(1, Signal::SIGINT), (2, Signal::SIGTERM)] {
        let mut qs = ServerProc::quickstart().data(&data).start();
        let api = qs.api();
        let hosts = api.get("/clusters/demo/hosts").await;
        let hosts = hosts.expect(200)["items"].as_array().unwrap().clone();
        assert_eq!(hosts.len(), 3, "round {round}");
        assert!(hosts.iter().all(|h| h["state"] == "ONLINE"), "{hosts:?}");
        let services = api.get("/clusters/demo/services").await;
        for s in services.expect(200)["items"].as_array().unwrap() {
            for u in s["units"].as_array().unwrap() {
                let want = if u["component"] == "greeter_client" {
                    "INSTALLED"
                } else {
                    "STARTED"
                };
                assert_eq!(u["state"], want, "round {round}: {u}");
            }
        }
        let jobs = api.get("/clusters/demo/jobs").await;
        let last = jobs.expect(200)["items"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(
            (last["command"].as_str(), last["state"].as_str()),
            (Some("deploy"), Some("SUCCEEDED"))
        );
        let out = qs.proc.stdout.text();
        for want in [
            "admin-token",
            "web console  https://",
            "sign in with the admin token",
            "/api/v1/jobs/",
            "agents/h1",
            "units/demo/hello/hello_server",
        ] {
            assert!(out.contains(want), "round {round}: no {want} in\n{out}");
        }

        qs.proc.signal(signal);
        let status = qs.proc.wait_exit(Duration::from_secs(90));
        assert!(
            status.success(),
            "round {round}: {status}\n{}",
            qs.proc.stderr.text()
        );
        let out = qs.proc.stdout.text();
        assert!(out.contains("(stop): SUCCEEDED"), "round {round}:\n{out}");
        for h in ["h1", "h2", "h3"] {
            let pid_file = data.join(format!(
                "agents/{h}/units/demo/hello/hello_server/hello.pid"
            ));
            if let Ok(pid) = std::fs::read_to_string(&pid_file) {
                let pid = nix::unistd::Pid::from_raw(pid.trim().parse().unwrap());
                assert!(
                    nix::sys::signal::kill(pid, None).is_err(),
                    "hello still runs on {h}"
                );
            }
        }
    }
}
