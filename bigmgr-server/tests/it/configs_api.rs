//! Config versions, host overrides, snapshots and relations over REST, without agents: what
//! is stored and answered (the real-service tests in `stacks` cover what reaches the hosts).

use bigmgr_test_support::{Api, ServerProc, assert_contains};
use serde_json::{Value, json};

/// A server with cluster `c`, hosts h1–h3 (no agents), node_exporter `nodes` on all three and
/// prometheus `prom` on h1.
async fn infra() -> (ServerProc, Api) {
    let server = ServerProc::start();
    let api = server.api();
    api.create_cluster("c").await;
    for i in 1..=3 {
        let address = format!("127.0.0.{}", i + 1);
        api.add_host("c", &format!("h{i}"), &address).await;
    }
    let nodes = json!({"name": "nodes", "stack": "infra", "service": "node_exporter",
                       "placement": {"node_exporter": ["h1", "h2", "h3"]}});
    api.add_service("c", nodes).await;
    let prom = json!({"name": "prom", "stack": "infra", "service": "prometheus",
                      "placement": {"prometheus_server": ["h1"]}});
    api.add_service("c", prom).await;
    (server, api)
}

fn versions(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["version"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn host_overrides_are_versioned_diffed_and_removed_with_null() {
    let (_server, api) = infra().await;
    let path = "/clusters/c/services/nodes/configs";
    let v1 = api.get(&format!("{path}/1")).await;
    assert_eq!(v1.expect(200)["message"], "initial configs");
    assert_eq!(v1.body["author"], "admin");

    let v2 = api
        .patch(
            path,
            json!({"hosts": {"h2": {"node_exporter.env": {"metrics_port": 9200}}},
                   "message": "h2 has 9100 taken"}),
        )
        .await;
    assert_eq!(
        v2.expect(201)["host_overrides"],
        json!({"h2": {"node_exporter.env": {"metrics_port": 9200}}})
    );
    assert_eq!(
        v2.location.as_deref(),
        Some("/api/v1/clusters/c/services/nodes/configs/2")
    );
    let diff = api.get(&format!("{path}/diff?from=1&to=2")).await;
    assert_eq!(
        diff.expect(200),
        &json!([{"config_type": "node_exporter.env", "host": "h2",
                 "property": "metrics_port", "from": null, "to": 9200}])
    );

    // Refused, and nothing written: an unknown host, a wrong type, an unknown property, no
    // change at all.
    for (body, needle) in [
        (
            json!({"hosts": {"h9": {"node_exporter.env": {"metrics_port": 1}}}}),
            "h9",
        ),
        (
            json!({"hosts": {"h1": {"node_exporter.env": {"metrics_port": "x"}}}}),
            "metrics_port",
        ),
        (
            json!({"configs": {"node_exporter.env": {"metricsport": 1}}}),
            "metricsport",
        ),
        (
            json!({"hosts": {"h2": {"node_exporter.env": {"metrics_port": 9200}}}}),
            "nothing to do",
        ),
    ] {
        let problem = api.patch(path, body).await.problem(422);
        assert_contains(&problem, needle);
    }
    assert_eq!(versions(api.get(path).await.expect(200)), vec![1, 2]);

    // null removes the override: the host falls back to the service layer.
    let v3 = api
        .patch(
            path,
            json!({"hosts": {"h2": {"node_exporter.env": {"metrics_port": null}}}}),
        )
        .await;
    assert_eq!(v3.expect(201)["host_overrides"], json!({}));
    let shown = api.get("/clusters/c/services/nodes").await;
    assert_eq!(shown.expect(200)["config_version"], 3);
    assert_eq!(shown.body["host_overrides"], json!({}));
    // Nothing was configured yet, so nothing is stale and there is nothing to restart.
    let jobs = api
        .post_raw("/clusters/c/restart-stale", &b" \n {}"[..])
        .await;
    assert_eq!(jobs.expect(202), &json!([]));
    // A body must be an object, even where every field is optional (schemathesis found an
    // array accepted as a struct).
    for body in [&b"[null, null]"[..], b"null", b"3"] {
        let r = api.post_raw("/clusters/c/restart-stale", body).await;
        assert!(r.problem(422).contains("JSON object"), "{}", r.text);
    }
    let r = api
        .post(
            "/clusters/c/restart-stale",
            json!({"options": [null, null]}),
        )
        .await;
    assert!(r.problem(422).contains("map"), "{}", r.text);
    let r = api
        .post(
            "/clusters/c/restart-stale",
            json!({"options": {"parallelism": 2147483648u64}}),
        )
        .await;
    assert!(r.problem(422).contains("parallelism"), "{}", r.text);
}

#[tokio::test]
async fn a_snapshot_restores_every_service_that_changed_since() {
    let (_server, api) = infra().await;
    let prom = "/clusters/c/services/prom/configs";
    let scrape_every = |interval: &str| {
        let body = json!({"configs": {"prometheus.yml": {"scrape_interval": interval}}});
        api.patch(prom, body)
    };
    scrape_every("5s").await.expect(201);
    let snap = api
        .post(
            "/clusters/c/snapshots",
            json!({"name": "before-tuning", "message": "known good"}),
        )
        .await;
    assert_eq!(snap.expect(201)["versions"], json!({"nodes": 1, "prom": 2}));
    assert_eq!(snap.body["author"], "admin");
    let dup = api
        .post("/clusters/c/snapshots", json!({"name": "before-tuning"}))
        .await;
    assert!(dup.problem(409).contains("before-tuning"));

    scrape_every("30s").await.expect(201);
    let restored = api
        .post("/clusters/c/snapshots/before-tuning/restore", json!({}))
        .await;
    let restored = restored.expect(201).as_array().unwrap().clone();
    // Only prom changed since: one new version, equal to version 2.
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0]["version"], 4);
    assert_eq!(restored[0]["service"], "prom");
    assert_eq!(
        restored[0]["configs"],
        json!({"prometheus.yml": {"scrape_interval": "5s"}})
    );
    assert!(
        restored[0]["message"]
            .as_str()
            .unwrap()
            .contains("before-tuning")
    );
    let diff = api.get(&format!("{prom}/diff?from=2&to=4")).await;
    assert_eq!(diff.expect(200), &json!([]));
    assert_eq!(
        api.get("/clusters/c/snapshots")
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    api.get("/clusters/c/snapshots/nope").await.problem(404);
}

#[tokio::test]
async fn relations_record_joined_and_broken_and_refuse_duplicates() {
    let (_server, api) = infra().await;
    let rel = api
        .post(
            "/clusters/c/relations",
            json!({"requirer": "prom:metrics", "provider": "nodes:metrics",
                   "auto_reconfigure": false}),
        )
        .await;
    let id = rel.expect(201)["id"].as_i64().unwrap();
    assert_eq!(rel.body["auto_reconfigure"], false);
    assert_eq!(rel.body["requirer"], "prom");
    api.relate("c", "prom", "nodes").await.problem(409);
    let unknown = api.relate("c", "prom:scrape", "nodes").await;
    assert_contains(unknown.problem(422), "metrics (prometheus-scrape)");
    let events = api.get(&format!("/clusters/c/relations/{id}/events")).await;
    let kinds: Vec<(String, String)> = events
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["service"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("joined".into(), "prom".into()),
            ("joined".into(), "nodes".into())
        ]
    );
    // No unit was started: nothing to reconfigure, so no job.
    assert!(
        events
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["job"].is_null())
    );

    api.delete(&format!("/clusters/c/relations/{id}"))
        .await
        .expect(204);
    assert_eq!(
        api.get("/clusters/c/relations").await.expect(200),
        &json!([])
    );
    let events = api
        .list(&format!("/clusters/c/relations/{id}/events"))
        .await;
    let last = events.last().expect("an event");
    assert_eq!(last["kind"], "broken");
    api.delete(&format!("/clusters/c/relations/{id}"))
        .await
        .problem(404);

    // Either way round, as `juju relate` takes them: the requirer is found by its endpoints.
    let swapped = api.relate("c", "nodes", "prom").await;
    assert_eq!(swapped.expect(201)["requirer"], "prom");
    assert_eq!(swapped.body["provider"], "nodes");
    assert_eq!(swapped.body["auto_reconfigure"], true);
}

#[tokio::test]
async fn specs_are_exported_with_secrets_as_references_and_refused_with_their_problems() {
    let (_server, api) = infra().await;
    api.patch(
        "/clusters/c/services/prom/configs",
        json!({"configs": {"prometheus.yml": {"bigmgr_token": "tok-3cr3t"}}}),
    )
    .await
    .expect(201);
    let exported = api.get("/clusters/c/spec").await;
    let exported = exported.expect(200).clone();
    let spec = exported["spec"].as_str().unwrap();
    assert!(!spec.contains("tok-3cr3t"), "{spec}");
    assert_contains(
        spec,
        r#"bigmgr_token = { env = "BIGMGR_PROM_PROMETHEUS_YML_BIGMGR_TOKEN" }"#,
    );
    assert_eq!(
        exported["references"],
        json!(["env:BIGMGR_PROM_PROMETHEUS_YML_BIGMGR_TOKEN"])
    );
    // Without the secret's value: 422 naming the reference and its line; with the same
    // value: nothing to do; with another: one change, shown redacted.
    let refused = api.post("/clusters/c/plan", json!({"spec": spec})).await;
    let body = refused.expect(422);
    assert_eq!(body["type"], "urn:bigmgr:problem:invalid-spec");
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{body}");
    let line = spec
        .lines()
        .position(|l| l.starts_with("bigmgr_token"))
        .unwrap()
        + 1;
    assert_eq!(problems[0]["line"], line, "{body}");
    assert_contains(problems[0]["message"].as_str().unwrap(), "env:BIGMGR_PROM");
    let with = |value: &str| {
        json!({"spec": spec, "prune": true,
               "secrets": {"env:BIGMGR_PROM_PROMETHEUS_YML_BIGMGR_TOKEN": value}})
    };
    let same = api.post("/clusters/c/plan", with("tok-3cr3t")).await;
    assert_eq!(same.expect(200)["configs"], json!([]), "{}", same.text);
    let other = api.post("/clusters/c/plan", with("another")).await;
    let changes = other.expect(200)["configs"].clone();
    assert_eq!(
        changes,
        json!([{"service": "prom", "config_type": "prometheus.yml", "host": null,
                "property": "bigmgr_token", "from": "********", "to": "********"}])
    );
    assert!(!other.text.contains("another") && !other.text.contains("tok-3cr3t"));
    // An unknown cluster has no spec to export.
    api.get("/clusters/nope/spec").await.expect(404);
}
