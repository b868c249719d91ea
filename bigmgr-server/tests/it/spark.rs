//! The bigtop stack's Spark on real JVMs: a standalone cluster (two masters kept highly
//! available by a real three-node ZooKeeper ensemble, two workers) deployed by real agents on
//! 127.0.0.2–5, its check application's answer, a master killed with SIGKILL and the standby
//! taking over, a rolling restart of stale workers, and a software source whose checksum is
//! wrong. The software comes from PyPI through each agent's download cache, shared by the tests
//! ([`bigmgr_test_support::software_cache`]).

use crate::stacks::{Deployment, address};
use bigmgr_test_support::{software_cache, wait_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A master's or worker's JSON status (`/json/` of its web UI), or Null if it does not answer.
async fn status(addr: &str, port: u16) -> Value {
    let url = format!("http://{addr}:{port}/json/");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    match client.get(&url).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// The ALIVE workers a master lists.
fn alive_workers(master: &Value) -> Vec<Value> {
    master["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["state"] == "ALIVE")
        .cloned()
        .collect()
}

/// The task logs of job `job`'s stages running `command` (of `component`, if given), joined.
async fn stage_logs(d: &Deployment, job: &Value, component: Option<&str>, command: &str) -> String {
    let id = job["id"].as_i64().unwrap();
    let mut out = String::new();
    for st in job["stages"].as_array().unwrap() {
        if st["command"] == command && component.is_none_or(|c| st["component"] == c) {
            for t in st["tasks"].as_array().unwrap() {
                let log = d
                    .api
                    .get(&format!("/jobs/{id}/tasks/{}/log", t["id"]))
                    .await;
                out += &log.expect(200).to_string();
            }
        }
    }
    out
}

/// Tests 1 and 3 of issue 17: deploy with HA, check, kill the ALIVE master, submit again, roll
/// the stale workers one at a time while a master keeps serving.
#[tokio::test]
async fn spark_masters_fail_over_through_zookeeper_and_stale_workers_roll_one_at_a_time() {
    let d = Deployment::start(4).await;
    let events = tempfile::tempdir().unwrap();
    // tickTime 1000 caps ZooKeeper sessions at 20 s: a killed master's leadership ends then.
    d.add_service(json!({
        "name": "zk", "stack": "bigtop", "service": "zookeeper",
        "placement": {"zookeeper_server": ["h1", "h2", "h3"]},
        "configs": {"zoo.cfg": {"tickTime": 1000}, "zookeeper-env": {"heapSize": 128}},
    }))
    .await;
    d.add_service(json!({
        "name": "spark", "stack": "bigtop", "service": "spark",
        "placement": {"spark_master": ["h1", "h2"], "spark_worker": ["h3", "h4"],
                      "spark_history_server": ["h4"], "spark_client": ["h3"]},
        "configs": {
            "spark-defaults": {
                "daemon_memory": "256m",
                "event_log_dir": format!("file:{}", events.path().display()),
            },
            "spark-worker": {"worker_cores": 1, "worker_memory": "1g"},
        },
    }))
    .await;
    let rel = d.api.relate("c", "spark:zookeeper", "zk").await;
    assert_eq!(rel.expect(201)["interface"], "zookeeper");
    d.run("deploy", json!({"service": "zk"})).await;
    let started = Instant::now();
    let deployed = d.run("deploy", json!({"service": "spark"})).await;
    eprintln!(
        "spark: deploy -> check passed in {:.1} s (2 masters, 2 workers)",
        started.elapsed().as_secs_f64()
    );

    // The check application ran through the masters and found executors on both workers.
    let check = stage_logs(&d, &deployed, Some("spark_master"), "check").await;
    let want = 20000u64 * 20001 * 40001 / 6;
    assert!(
        check.contains(&format!(
            "computed {want} (right) with executors on all 2 worker(s)"
        )),
        "{check}"
    );

    // The history server lists the check application from the event logs.
    let history = format!("http://{}:18080/api/v1/applications", address(4));
    wait_until(
        "the check application in the history server",
        Duration::from_secs(60),
        || {
            let url = history.clone();
            async move {
                let apps: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
                apps.as_array()?
                    .iter()
                    .any(|a| a["name"] == "bigmgr-check")
                    .then_some(())
            }
        },
    )
    .await;

    // From outside: one master ALIVE with both workers, the other STANDBY.
    let masters = [address(1), address(2)];
    let (alive, standby) = wait_until("one ALIVE master", Duration::from_secs(60), || {
        let masters = masters.clone();
        async move {
            let a = status(&masters[0], 8080).await;
            let b = status(&masters[1], 8080).await;
            match (a["status"].as_str(), b["status"].as_str()) {
                (Some("ALIVE"), Some("STANDBY")) => Some((0, 1)),
                (Some("STANDBY"), Some("ALIVE")) => Some((1, 0)),
                _ => None,
            }
        }
    })
    .await;
    let alive_status = status(&masters[alive], 8080).await;
    let workers = alive_workers(&alive_status);
    assert_eq!(workers.len(), 2, "{alive_status}");
    let conf = std::fs::read_to_string(
        d.unit_dir(1, "spark", "spark_master")
            .join("conf/spark-defaults.conf"),
    )
    .unwrap();
    assert!(
        conf.contains("spark.deploy.recoveryMode ZOOKEEPER")
            && conf.contains(&format!("{}:2181", address(3)))
            && conf.contains(&format!(
                "spark.master spark://{}:7077,{}:7077",
                address(1),
                address(2)
            )),
        "{conf}"
    );

    // kill -9 the ALIVE master's JVM: the standby takes over and the workers follow it.
    let pidfile = d
        .unit_dir(alive + 1, "spark", "spark_master")
        .join("spark_master.pid");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let killed = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let taken_over = wait_until(
        "the standby to become ALIVE",
        Duration::from_secs(120),
        || {
            let m = masters[standby].clone();
            async move {
                let s = status(&m, 8080).await;
                (s["status"] == "ALIVE").then_some(s)
            }
        },
    )
    .await;
    let failover = killed.elapsed();
    eprintln!(
        "spark: master failover (SIGKILL -> standby ALIVE) in {:.1} s",
        failover.as_secs_f64()
    );
    assert!(
        status(&masters[alive], 8080).await.is_null(),
        "the killed master still answers"
    );
    let _ = taken_over;
    wait_until(
        "both workers with the new master",
        Duration::from_secs(90),
        || {
            let m = masters[standby].clone();
            async move { (alive_workers(&status(&m, 8080).await).len() == 2).then_some(()) }
        },
    )
    .await;

    // A second application, submitted after the failover, completes.
    let again = d
        .run(
            "check",
            json!({"component": {"service": "spark", "component": "spark_master"}}),
        )
        .await;
    let check = stage_logs(&d, &again, Some("spark_master"), "check").await;
    assert!(
        check.contains(&format!("computed {want} (right)"))
            && check.contains(&format!("of the ALIVE master {}", masters[standby])),
        "{check}"
    );
    // The killed master comes back as the standby.
    d.run(
        "start",
        json!({"component": {"service": "spark", "component": "spark_master"}}),
    )
    .await;
    wait_until(
        "the old master back as STANDBY",
        Duration::from_secs(90),
        || {
            let m = masters[alive].clone();
            async move { (status(&m, 8080).await["status"] == "STANDBY").then_some(()) }
        },
    )
    .await;

    // Test 3: more worker memory makes the workers stale, and restart-stale rolls them one at
    // a time while the ALIVE master keeps serving.
    d.api
        .patch(
            "/clusters/c/services/spark/configs",
            json!({"configs": {"spark-worker": {"worker_memory": "900m"}}, "message": "less memory"}),
        )
        .await
        .expect(201);
    let units = d.api.get("/clusters/c/units").await;
    let stale: Vec<String> = units
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["service"] == "spark" && u["stale"] == true)
        .map(|u| u["component"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        stale,
        ["spark_worker", "spark_worker"],
        "only the workers are stale"
    );
    let jobs = d
        .api
        .post("/clusters/c/restart-stale", json!({"service": "spark"}))
        .await;
    let jobs = jobs.expect(202).as_array().unwrap().clone();
    let leader = masters[standby].clone();
    let watch = tokio::spawn(async move {
        // The ALIVE master's state over the rolling restart.
        let mut seen = Vec::new();
        for _ in 0..600 {
            seen.push(status(&leader, 8080).await["status"].clone());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        seen
    });
    let mut worker_tasks = Vec::new();
    for j in &jobs {
        let done = d.expect_success(j["id"].as_i64().unwrap()).await;
        for st in done["stages"].as_array().unwrap() {
            if st["component"] == "spark_worker" {
                for t in st["tasks"].as_array().unwrap() {
                    worker_tasks.push((
                        t["started_at"].as_i64().unwrap(),
                        t["finished_at"].as_i64().unwrap(),
                        st["command"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    watch.abort();
    // One at a time: no two worker restarts overlap.
    let mut restarts: Vec<(i64, i64, String)> = worker_tasks
        .into_iter()
        .filter(|t| t.2 == "restart")
        .collect();
    restarts.sort();
    assert_eq!(restarts.len(), 2, "{restarts:?}");
    assert!(
        restarts[0].1 <= restarts[1].0,
        "the restarts overlapped: {restarts:?}"
    );
    let s = status(&masters[standby], 8080).await;
    assert_eq!(s["status"], "ALIVE", "the master kept serving: {s}");
    let workers = wait_until(
        "both workers back with 900 MiB",
        Duration::from_secs(90),
        || {
            let m = masters[standby].clone();
            async move {
                let w = alive_workers(&status(&m, 8080).await);
                (w.len() == 2 && w.iter().all(|w| w["memory"] == 900)).then_some(w)
            }
        },
    )
    .await;
    assert_eq!(workers.len(), 2);
    d.assert_nothing_stale().await;

    d.stop_and_remove("spark", 7077, 2).await;
    for i in 3..=4 {
        assert!(
            status(&address(i), 8081).await.is_null(),
            "a worker still answers on h{i}"
        );
    }
    d.stop_and_remove("zk", 2181, 3).await;
}

/// Test 4 of issue 17: a software source overridden to a local tarball with a wrong checksum
/// fails `install` naming the source and both sums, keeps nothing, and leaves the unit as it was;
/// a checksum that is not one is refused before anything runs.
#[tokio::test]
async fn a_software_source_with_a_wrong_checksum_fails_install_and_keeps_nothing() {
    let d = Deployment::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir(&content).unwrap();
    std::fs::write(content.join("README"), "not spark\n").unwrap();
    let name = format!("spark-mirror-{}.tgz", std::process::id());
    let tarball = dir.path().join(&name);
    assert!(
        std::process::Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(&content)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let actual = {
        let out = std::process::Command::new("sha256sum")
            .arg(&tarball)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    };
    let wrong = "0".repeat(64);
    let url = format!("file://{}", tarball.display());
    let source = |sum: &str| {
        json!({"spark_kind": "tarball", "spark_url": url, "spark_sha256": sum,
               "spark_package": "", "spark_version": "", "spark_file": ""})
    };
    let body = |sum: &str| {
        json!({
            "name": "spark", "stack": "bigtop", "service": "spark",
            "placement": {"spark_master": ["h1"], "spark_worker": ["h1"]},
            "configs": {"software": source(sum)},
        })
    };

    // Not a checksum, or a tarball source still naming a PyPI file: refused whole.
    let bad = d.api.post("/clusters/c/services", body("abc")).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.to_string().contains("64 lowercase hex"),
        "{}",
        bad.body
    );
    assert_eq!(
        bad.body["field"], "configs.software.spark_sha256",
        "{}",
        bad.body
    );
    let mut half = body(&wrong);
    half["configs"]["software"]
        .as_object_mut()
        .unwrap()
        .remove("spark_package");
    let bad = d.api.post("/clusters/c/services", half).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.to_string().contains("takes no package"),
        "{}",
        bad.body
    );
    assert!(d.api.get("/clusters/c/services/spark").await.status == 404);

    d.add_service(body(&wrong)).await;
    let id = d
        .api
        .submit("c", "install", json!({"service": "spark"}))
        .await;
    let job = d.api.wait_job(id, Duration::from_secs(240)).await;
    assert_eq!(job["state"], "FAILED", "{job}");
    let logs = stage_logs(&d, &job, None, "install").await;
    assert!(
        logs.contains("software source 'spark' (tarball ")
            && logs.contains(&url)
            && logs.contains(&format!("has SHA-256 {actual}, not the expected {wrong}")),
        "{logs}"
    );
    // Nothing kept: no unit SPARK_HOME, nothing cached under the name, no temporary file.
    for component in ["spark_master", "spark_worker"] {
        let unit = d.unit_dir(1, "spark", component);
        assert!(!unit.join("spark").exists(), "{component} has a SPARK_HOME");
    }
    let cache = software_cache();
    assert!(!cache.join(&name).exists());
    let leftovers: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".fetch."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let units = d.units("spark").await;
    for (_, _, u) in &units {
        assert_ne!(u["state"], "INSTALLED", "{u}");
    }

    // The right sum gets past the fetch: then the tarball is found to hold no Spark.
    d.api
        .patch(
            "/clusters/c/services/spark/configs",
            json!({"configs": {"software": source(&actual)}}),
        )
        .await
        .expect(201);
    let id = d
        .api
        .submit("c", "install", json!({"service": "spark"}))
        .await;
    let job = d.api.wait_job(id, Duration::from_secs(240)).await;
    assert_eq!(job["state"], "FAILED", "{job}");
    let logs = stage_logs(&d, &job, None, "install").await;
    assert!(
        logs.contains("the spark source has no Spark distribution"),
        "{logs}"
    );
    assert!(cache.join(&name).exists());
    std::fs::remove_file(cache.join(&name)).unwrap();
    let _ = std::fs::remove_dir_all(cache.join("unpacked").join(&actual));
}
