//! `bigmgr store copy`: a populated SQLite installation copied to PostgreSQL serves the same
//! clusters, jobs, logs, config versions and audit from there; and back again.

use bigmgr_test_support::{Api, PgSchema, ServerProc, assert_contains, bigmgr_bin};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What an operator sees of an installation, read over REST.
async fn everything(api: &Api) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    let mut read = |path: String, body: Value| seen.push((path, body));
    for path in [
        "/clusters",
        "/clusters/c/hosts",
        "/clusters/c/services",
        "/clusters/c/services/hello/configs",
        "/clusters/c/relations",
        "/users",
    ] {
        read(path.to_string(), api.get(path).await.expect(200).clone());
    }
    let jobs = api.get("/clusters/c/jobs").await.expect(200).clone();
    let items = jobs.get("items").unwrap_or(&jobs);
    for job in items.as_array().expect("jobs") {
        let id = job["id"].as_i64().expect("id");
        let detail = api.get(&format!("/jobs/{id}")).await.expect(200).clone();
        for stage in detail["stages"].as_array().expect("stages") {
            for task in stage["tasks"].as_array().expect("tasks") {
                let path = format!("/jobs/{id}/tasks/{}/log", task["id"]);
                read(path.clone(), api.get(&path).await.expect(200).clone());
            }
        }
        read(format!("/jobs/{id}"), detail);
    }
    read("/clusters/c/jobs".into(), jobs);
    // The audit minus the reads made since (the copy keeps what was there, and both servers
    // audit nothing for reads).
    let audit = api.get("/audit?limit=1000").await.expect(200).clone();
    read("/audit".into(), audit);
    seen
}

fn bigmgr_store_copy(from: &str, to: &str) -> (bool, String, String) {
    let out = Command::new(bigmgr_bin())
        .args(["store", "copy", "--from", from, "--to", to])
        .output()
        .expect("bigmgr store copy");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sqlite(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[tokio::test]
async fn a_populated_sqlite_store_copied_to_postgres_and_back_serves_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // SQLite, whatever store the other tests run on.
    let before = {
        let server = ServerProc::serve()
            .store(sqlite(&data.join("bigmgr.db")))
            .data(&data)
            .start();
        let api = server.api();
        api.create_cluster("c").await;
        let mut agent = api.join_agent("c", "h1", "127.0.0.2").await;
        api.add_service(
            "c",
            json!({"name": "hello", "stack": "demo", "service": "hello",
                   "placement": {"hello_server": ["h1"]}}),
        )
        .await;
        api.run_job("c", "deploy", json!("cluster"), Duration::from_secs(120))
            .await;
        api.patch(
            "/clusters/c/services/hello/configs",
            json!({"configs": {}, "message": "a second version"}),
        )
        .await;
        let viewer = api
            .post(
                "/users",
                json!({"name": "vera", "role": "viewer", "password": "correct horse"}),
            )
            .await;
        viewer.expect(201);
        api.run_job("c", "stop", json!("cluster"), Duration::from_secs(120))
            .await;
        assert!(agent.proc.terminate().success());
        let seen = everything(&api).await;
        drop(server);
        seen
    };
    assert!(
        before
            .iter()
            .any(|(p, b)| p.ends_with("/log") && !b["lines"].as_array().unwrap().is_empty()),
        "the jobs have logs to copy"
    );

    let schema = PgSchema::create("copy");
    let (ok, stdout, stderr) = bigmgr_store_copy(&sqlite(&data.join("bigmgr.db")), &schema.url());
    assert!(ok, "{stdout}\n{stderr}");
    for table in ["clusters", "jobs", "task_logs", "config_versions", "audit"] {
        assert_contains(&stdout, table);
    }
    assert_contains(&stdout, "every table verified");

    // A second copy into the now populated schema is refused, and changes nothing.
    let (ok, _, stderr) = bigmgr_store_copy(&sqlite(&data.join("bigmgr.db")), &schema.url());
    assert!(!ok);
    assert_contains(&stderr, "the destination is not empty");

    // The same data directory (its admin token), the copy as the store.
    let after = {
        let server = ServerProc::serve().store(schema.url()).data(&data).start();
        let api = server.api();
        let seen = everything(&api).await;
        // The identities go on after the copied ids.
        api.create_cluster("d").await;
        let clusters = api.get("/clusters").await.expect(200).clone();
        let ids: Vec<i64> = clusters
            .get("items")
            .unwrap_or(&clusters)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{clusters}");
        assert!(ids[1] > ids[0], "{clusters}");
        seen
    };
    assert_eq!(before.len(), after.len());
    for ((path, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(b, a, "{path} reads the same after the copy");
    }

    // And back: PostgreSQL to a new SQLite file.
    let back = dir.path().join("back.db");
    let (ok, stdout, stderr) = bigmgr_store_copy(&schema.url(), &sqlite(&back));
    assert!(ok, "{stdout}\n{stderr}");
    assert_contains(&stdout, "every table verified");
}
