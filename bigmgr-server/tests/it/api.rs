//! The REST API: authentication, clusters, join tokens, hosts, services, jobs, and errors as
//! problem+json.

use bigmgr_test_support::{Api, ServerProc, assert_contains, named};
use serde_json::json;

#[tokio::test]
async fn health_needs_no_token() {
    let server = ServerProc::start();
    let anon = Api::new(&server.url, None);
    let health = anon.get("/health").await;
    let body = health.expect(200);
    assert_eq!(health.content_type, "application/json");
    assert_eq!(body["store"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn every_other_route_needs_a_valid_token() {
    let server = ServerProc::start();
    let api = server.api();
    let anon = api.with_token(None);
    let wrong = api.with_token(Some("bmt_0000000000000000000000000000"));
    for path in ["/clusters", "/stacks", "/jobs/1", "/clusters/x/hosts"] {
        let detail = anon.get(path).await.problem(401);
        assert_contains(&detail, "Authorization: Bearer");
        let detail = wrong.get(path).await.problem(401);
        assert_contains(&detail, "invalid API token");
    }
    // Nothing is created without the token.
    anon.post("/clusters", json!({"name": "sneaky"}))
        .await
        .problem(401);
    let clusters = api.get("/clusters").await;
    assert_eq!(clusters.expect(200), &json!({"items": [], "next": null}));
}

#[tokio::test]
async fn clusters_are_created_listed_read_and_deleted() {
    let server = ServerProc::start();
    let api = server.api();
    let created = api.post("/clusters", json!({"name": "prod"})).await;
    let c = created.expect(201).clone();
    assert_eq!(c["name"], "prod");
    assert!(c["id"].as_i64().is_some() && c["created_at"].as_i64().is_some());
    assert_eq!(created.location.as_deref(), Some("/api/v1/clusters/prod"));
    api.create_cluster("dev").await;

    let list = api.get("/clusters").await;
    let names: Vec<&str> = list.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prod", "dev"]);
    assert_eq!(api.get("/clusters/prod").await.expect(200), &c);

    assert_eq!(api.delete("/clusters/dev").await.status, 204);
    api.get("/clusters/dev").await.problem(404);
    let list = api.get("/clusters").await;
    assert_eq!(list.expect(200)["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn join_tokens_are_bmj_secrets() {
    let server = ServerProc::start();
    let api = server.api();
    api.create_cluster("c").await;
    let a = api.post("/clusters/c/join-tokens", json!({})).await;
    let a = a.expect(201)["token"].as_str().unwrap().to_string();
    let b = api.post_raw("/clusters/c/join-tokens", "").await;
    let b = b.expect(201)["token"].as_str().unwrap().to_string();
    for t in [&a, &b] {
        assert!(t.starts_with("bmj_") && t.len() == 4 + 64, "{t}");
    }
    assert_ne!(a, b);
    let detail = api
        .post("/clusters/nope/join-tokens", json!({}))
        .await
        .problem(404);
    assert_contains(&detail, "cluster 'nope' not found");
}

#[tokio::test]
async fn errors_are_problem_json_with_a_helpful_detail() {
    let server = ServerProc::start();
    let api = server.api();
    api.create_cluster("c").await;

    let create = |body| api.post("/clusters", body);
    let detail = api.get("/clusters/ghost").await.problem(404);
    assert_contains(&detail, "cluster 'ghost' not found");
    let detail = create(json!({"name": "c"})).await.problem(409);
    assert_contains(&detail, "already exists");
    let detail = api.post_raw("/clusters", "{\"name\": ").await.problem(400);
    assert_contains(&detail, "JSON");
    let unknown = create(json!({"name": "x", "nmae": "y"})).await;
    assert!((400..500).contains(&unknown.status));
    let detail = unknown.problem(unknown.status);
    assert_contains(&detail, "unknown field `nmae`");
    let detail = create(json!({"name": 7})).await.problem(422);
    assert_contains(&detail, "invalid type");
    let detail = create(json!({"name": "has space"})).await.problem(422);
    assert_contains(&detail, "not a valid cluster name");
    let detail = api.get("/jobs/abc").await.problem(400);
    assert_contains(&detail, "abc");
    let detail = api.get("/jobs/999").await.problem(404);
    assert_contains(&detail, "job '999' not found");
    let detail = api.get("/no/such/route").await.problem(404);
    assert_contains(&detail, "/api/v1/no/such/route");
    let detail = api
        .send(reqwest::Method::PUT, "/clusters", None)
        .await
        .problem(405);
    assert_contains(&detail, "PUT");
    let wrong_type = api
        .send(
            reqwest::Method::POST,
            "/clusters",
            Some(("text/plain", b"{}".to_vec())),
        )
        .await;
    wrong_type.problem(415);
    let planet = json!({"planet": "x"});
    let detail = api.post_job("c", "start", planet).await.problem(422);
    assert_contains(&detail, "planet");
    let detail = api
        .post_job("c", "start", json!("cluster"))
        .await
        .problem(422);
    assert!(
        detail.contains("nothing to do") || detail.contains("no "),
        "{detail}"
    );
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let server = ServerProc::start();
    let api = server.api();
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let detail = api.post_raw("/clusters", big).await.problem(413);
    assert_contains(&detail, "1048576");
    // A body just under the limit is read (and refused for its content, not its size).
    let fits = format!("{{\"name\": \"{}\"}}", "x".repeat(1000 * 1000));
    api.post_raw("/clusters", fits).await.problem(422);
}

#[tokio::test]
async fn stacks_list_the_demo_stack_with_its_components() {
    let server = ServerProc::start();
    let stacks = server.api().get("/stacks").await;
    let demo = named(&stacks.expect(200)["items"], "demo");
    assert_eq!(demo["version"], "1.0.0");
    let hello = named(&demo["services"], "hello");
    assert_eq!(hello["components"][0]["name"], "hello_server");
    assert_eq!(hello["components"][0]["category"], "server");
    assert_eq!(hello["components"][0]["cardinality"], "1+");
    // Its config schema: types, defaults, descriptions.
    let conf = &hello["configs"][0];
    assert_eq!(conf["name"], "hello.conf");
    assert_eq!(conf["path"], "conf/hello.conf");
    let greeting = named(&conf["properties"], "greeting");
    assert_eq!(greeting["type"], "string");
    assert_eq!(greeting["default"], "hello");
    assert_eq!(greeting["required"], true);
    assert_eq!(greeting["secret"], false);
}

#[tokio::test]
async fn hosts_services_and_jobs_round_trip() {
    let server = ServerProc::start();
    let api = server.api();
    api.create_cluster("c").await;

    let h = api
        .post(
            "/clusters/c/hosts",
            json!({"name": "h1", "address": "127.0.0.2"}),
        )
        .await;
    assert_eq!(h.location.as_deref(), Some("/api/v1/clusters/c/hosts/h1"));
    let h = h.expect(201).clone();
    assert_eq!(
        (h["name"].as_str(), h["cluster"].as_str()),
        (Some("h1"), Some("c"))
    );
    assert_eq!(h["address"], "127.0.0.2");
    assert!(h["state"].is_string() && h["units"] == json!([]));
    api.post(
        "/clusters/c/hosts",
        json!({"name": "h1", "address": "127.0.0.2"}),
    )
    .await
    .problem(409);
    api.post("/clusters/c/hosts", json!({"name": "h2"}))
        .await
        .problem(422);

    let placement = json!({"hello_server": ["h1"]});
    let svc = api
        .post(
            "/clusters/c/services",
            json!({"name": "hello", "stack": "demo", "service": "hello", "placement": placement}),
        )
        .await;
    let svc = svc.expect(201).clone();
    assert_eq!(svc["stack_version"], "1.0.0");
    assert_eq!(svc["units"][0]["component"], "hello_server");
    assert_eq!(svc["units"][0]["host"], "h1");
    assert_eq!(svc["units"][0]["state"], "NEW");
    let detail = api
        .post(
            "/clusters/c/services",
            json!({"name": "hello2", "stack": "demo", "service": "hello", "placement": {"hello_server": []}}),
        )
        .await
        .problem(422);
    assert_contains(&detail, "needs 1+ unit(s)");
    let detail = api
        .post(
            "/clusters/c/services",
            json!({"name": "x", "stack": "nostack", "service": "hello", "placement": {}}),
        )
        .await
        .problem(404);
    assert_contains(&detail, "nostack");

    let services = api.get("/clusters/c/services").await;
    assert_eq!(services.expect(200)["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get("/clusters/c/services/hello").await.expect(200)["name"],
        "hello"
    );
    let host = api.get("/clusters/c/hosts/h1").await;
    let unit = &host.expect(200)["units"][0];
    assert_eq!(
        (unit["service"].as_str(), unit["component"].as_str()),
        (Some("hello"), Some("hello_server"))
    );
    assert_eq!(
        api.get("/clusters/c/hosts").await.expect(200)["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    api.get("/clusters/c/hosts/h9").await.problem(404);

    let submitted = api
        .post(
            "/clusters/c/jobs",
            json!({"command": "deploy", "target": {"service": "hello"}, "options": {"parallelism": 2}}),
        )
        .await;
    let job = submitted.expect(202).clone();
    let id = job["id"].as_i64().expect("a job id");
    assert_eq!(submitted.location, Some(format!("/api/v1/jobs/{id}")));
    assert_eq!(
        (job["command"].as_str(), job["cluster"].as_str()),
        (Some("deploy"), Some("c"))
    );

    let detail = api.get(&format!("/jobs/{id}")).await;
    let detail = detail.expect(200);
    for key in [
        "id",
        "state",
        "command",
        "cluster",
        "created_at",
        "started_at",
        "finished_at",
        "stages",
    ] {
        assert!(detail.get(key).is_some(), "no {key} in {detail}");
    }
    let stages = detail["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names[0].starts_with("INSTALL"), "{names:?}");
    let task = &stages[0]["tasks"][0];
    for key in [
        "id",
        "host",
        "state",
        "attempt",
        "exit_code",
        "message",
        "started_at",
        "finished_at",
    ] {
        assert!(task.get(key).is_some(), "no {key} in {task}");
    }
    assert_eq!(task["host"], "h1");
    assert_eq!(task["attempt"], 1);
    let task_id = task["id"].as_i64().unwrap();

    let jobs = api.get("/clusters/c/jobs").await;
    assert_eq!(jobs.expect(200)["items"][0]["id"], id);

    // With no agent connected the job cannot succeed; cancel it (or find it already ended).
    let canceled = api.post(&format!("/jobs/{id}/cancel"), json!({})).await;
    match canceled.status {
        200 => {
            let state = canceled.body["state"].as_str().unwrap();
            assert!(["CANCELING", "CANCELED"].contains(&state), "{state}");
        }
        409 => {
            canceled.problem(409);
        }
        other => panic!("cancel answered {other}: {}", canceled.text),
    }
    let detail = api
        .post(&format!("/jobs/{id}/pause"), json!({}))
        .await
        .problem(409);
    assert_contains(&detail, "only a running job can be paused");
    api.post("/jobs/999/resume", json!({})).await.problem(404);

    let log = api.get(&format!("/jobs/{id}/tasks/{task_id}/log")).await;
    assert!(log.expect(200)["lines"].is_array(), "{}", log.text);
    api.get(&format!("/jobs/{id}/tasks/{task_id}/log?attempt=1"))
        .await
        .expect(200);
    api.get(&format!("/jobs/{id}/tasks/{task_id}/log?attempt=x"))
        .await
        .problem(400);
    let detail = api
        .get(&format!("/jobs/{id}/tasks/99999/log"))
        .await
        .problem(404);
    assert_contains(&detail, "99999");

    let detail = api.delete("/clusters/c").await.problem(409);
    assert!(!detail.is_empty());
}

#[tokio::test]
async fn lists_are_paged_with_a_cursor() {
    let server = ServerProc::start();
    let api = server.api();
    for i in 0..5 {
        api.create_cluster(&format!("c{i}")).await;
    }
    let mut names = Vec::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let page = api.get(&format!("/clusters?limit=2{after}")).await;
        let page = page.expect(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        names.extend(
            items
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    assert_eq!(pages, 3);
    // The default page holds them all, with no next page.
    let all = api.get("/clusters").await;
    assert_eq!(all.expect(200)["items"].as_array().unwrap().len(), 5);
    assert!(all.body["next"].is_null());
    // Stacks page by name/version.
    let stacks = api.get("/stacks?limit=1").await;
    let first = stacks.expect(200)["items"][0].clone();
    if let Some(next) = stacks.body["next"].as_str() {
        let second = api.get(&format!("/stacks?limit=1&after={next}")).await;
        assert_ne!(second.expect(200)["items"][0], first);
    }
    // Bad limits and cursors are 400 problems that say what to send.
    for query in ["limit=0", "limit=1001", "limit=x", "after=zz", "color=red"] {
        for list in ["/clusters", "/clusters/c0/hosts", "/clusters/c0/jobs"] {
            let detail = api.get(&format!("{list}?{query}")).await.problem(400);
            assert!(
                detail.contains("limit") || detail.contains("after") || detail.contains("color"),
                "{list}?{query}: {detail}"
            );
        }
    }
    api.get("/clusters/c0/services?limit=0").await.problem(400);
    api.get("/stacks?limit=5000").await.problem(400);
}

#[tokio::test]
async fn openapi_json_and_the_api_page_are_served() {
    let server = ServerProc::start();
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", server.url)).send();
    let res = get("/openapi.json").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: serde_json::Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/clusters"), "{paths:?}");
    assert!(paths.contains_key("/api/v1/jobs/{job}/events"), "{paths:?}");

    // Every documented operation is served: none falls through to "no such route" or 405.
    let api = server.api();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{cluster}", "nope")
                .replace("{host}", "nope")
                .replace("{service}", "nope")
                .replace("{job}", "999")
                .replace("{task}", "999");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let res = http
                .request(method.clone(), format!("{}{concrete}", server.url))
                .bearer_auth(server.token())
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            assert_ne!(status, 405, "{method} {concrete}: {text}");
            assert!(
                !text.contains("no such route"),
                "{method} {concrete} is documented but not served: {text}"
            );
        }
    }
    drop(api);

    for (path, content_type, min_len) in [
        ("/api/docs", "text/html; charset=utf-8", 200),
        (
            "/api/docs/swagger-ui.css",
            "text/css; charset=utf-8",
            100_000,
        ),
        (
            "/api/docs/swagger-ui-bundle.js",
            "text/javascript; charset=utf-8",
            1_000_000,
        ),
    ] {
        let res = get(path).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], content_type, "{path}");
        let body = res.bytes().await.unwrap();
        assert!(body.len() >= min_len, "{path}: {} bytes", body.len());
        if path == "/api/docs" {
            let html = String::from_utf8_lossy(&body);
            assert!(html.contains("/openapi.json") && html.contains("swagger-ui-bundle.js"));
        }
    }
}

#[tokio::test]
async fn hosts_and_services_are_removed_and_their_names_reused() {
    let server = ServerProc::start();
    let api = server.api();
    api.create_cluster("c").await;
    let host = |name: &str| json!({"name": name, "address": "127.0.0.2"});
    let names = |page: &serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap().to_string())
            .collect()
    };
    api.post("/clusters/c/hosts", host("h1")).await.expect(201);
    api.post("/clusters/c/hosts", host("h2")).await.expect(201);

    // A host without units goes; its name can be used again.
    assert_eq!(api.delete("/clusters/c/hosts/h2").await.status, 204);
    assert_eq!(
        names(api.get("/clusters/c/hosts").await.expect(200)),
        ["h1"]
    );
    api.get("/clusters/c/hosts/h2").await.problem(404);
    api.delete("/clusters/c/hosts/h2").await.problem(404);
    api.post("/clusters/c/hosts", host("h2")).await.expect(201);
    assert_eq!(
        names(api.get("/clusters/c/hosts").await.expect(200)),
        ["h1", "h2"]
    );

    // A host with a unit of a service is refused, saying what to do.
    let hello = json!({"name": "hello", "stack": "demo", "service": "hello", "placement": {"hello_server": ["h1"]}});
    api.post("/clusters/c/services", hello.clone())
        .await
        .expect(201);
    let detail = api.delete("/clusters/c/hosts/h1").await.problem(409);
    assert!(
        detail.contains("hello") && detail.contains("bigmgr service remove c hello"),
        "{detail}"
    );

    // A service whose units are NEW goes; its name can be used again.
    assert_eq!(api.delete("/clusters/c/services/hello").await.status, 204);
    api.get("/clusters/c/services/hello").await.problem(404);
    api.delete("/clusters/c/services/hello").await.problem(404);
    assert_eq!(
        api.get("/clusters/c/services").await.expect(200)["items"],
        json!([])
    );
    assert_eq!(
        api.get("/clusters/c/hosts/h1").await.expect(200)["units"],
        json!([])
    );
    api.post("/clusters/c/services", hello).await.expect(201);
    assert_eq!(api.delete("/clusters/c/services/hello").await.status, 204);

    // Then the host goes too, and with every host and service removed, the cluster.
    assert_eq!(api.delete("/clusters/c/hosts/h1").await.status, 204);
    assert_eq!(api.delete("/clusters/c/hosts/h2").await.status, 204);
    assert_eq!(api.delete("/clusters/c").await.status, 204);
}

/// Reads Server-Sent Events from `res` until one named `name` arrives (its data as JSON), or
/// `None` after `within`.
async fn next_event(
    res: &mut reqwest::Response,
    buf: &mut String,
    name: &str,
    within: std::time::Duration,
) -> Option<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let field = |key: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(key).map(|v| v.trim_start().to_string()))
            };
            if field("event:").as_deref() == Some(name) {
                return Some(serde_json::from_str(&field("data:").unwrap()).unwrap());
            }
        }
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Ok(Ok(Some(chunk))) => buf.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return None,
        }
    }
}

#[tokio::test]
async fn cluster_events_name_what_changed_and_stay_quiet_otherwise() {
    let server = ServerProc::start();
    let api = server.api();
    api.create_cluster("c").await;
    let open = || {
        reqwest::Client::new()
            .get(format!("{}/api/v1/clusters/c/events", server.url))
            .bearer_auth(server.token())
            .send()
    };
    let mut res = open().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut buf = String::new();
    let wait = std::time::Duration::from_secs(5);
    // Nothing changes: nothing is sent (longer than the watcher's longest pause).
    let quiet = std::time::Duration::from_secs(3);
    assert_eq!(next_event(&mut res, &mut buf, "changed", quiet).await, None);

    api.add_host("c", "h1", "127.0.0.2").await;
    let e = next_event(&mut res, &mut buf, "changed", wait)
        .await
        .expect("an event");
    assert_eq!(e, json!({"topics": ["hosts"]}));

    api.add_service(
        "c",
        json!({"name": "hello", "stack": "demo", "service": "hello",
               "placement": {"hello_server": ["h1"]}}),
    )
    .await;
    let e = next_event(&mut res, &mut buf, "changed", wait)
        .await
        .expect("an event");
    let topics = e["topics"].as_array().unwrap();
    for t in ["services", "units", "configs"] {
        assert!(topics.contains(&json!(t)), "{e}");
    }
    assert!(!topics.contains(&json!("jobs")), "{e}");

    let job = api.submit("c", "stop", json!({"service": "hello"})).await;
    let e = next_event(&mut res, &mut buf, "changed", wait)
        .await
        .expect("an event");
    assert!(
        e["topics"].as_array().unwrap().contains(&json!("jobs")),
        "{e} (job {job})"
    );

    // Another caller's stream is its own; an unknown cluster is a 404 at once.
    let other = open().await.unwrap();
    assert_eq!(other.status(), 200);
    let missing = api.get("/clusters/nope/events").await;
    missing.problem(404);
}

#[tokio::test]
async fn problems_name_the_field_a_form_shows_them_on_and_nothing_is_written() {
    let server = ServerProc::start();
    let api = server.api();
    cluster_c_with_h1(&api).await;

    // The cardinality of a component: the placement of that component.
    let res = api
        .post(
            "/clusters/c/services",
            hello(json!({"hello_server": []}), json!({})),
        )
        .await;
    let detail = res.problem(422);
    assert_eq!(res.body["field"], "placement.hello_server", "{}", res.text);
    assert_contains(&detail, "hello_server");

    // A config value of the wrong type: that property of that config type.
    let res = api
        .post(
            "/clusters/c/services",
            hello(
                json!({"hello_server": ["h1"]}),
                json!({"hello.conf": {"interval": "often"}}),
            ),
        )
        .await;
    let detail = res.problem(422);
    assert_eq!(
        res.body["field"], "configs.hello.conf.interval",
        "{}",
        res.text
    );
    assert_contains(&detail, "interval");

    // Neither created anything; an error about no field in particular names none.
    assert!(api.list("/clusters/c/services").await.is_empty());
    let res = api.get("/clusters/nope").await;
    res.problem(404);
    assert!(res.body.get("field").is_none(), "{}", res.text);
}

#[tokio::test]
async fn jobs_list_newest_first_a_page_at_a_time() {
    let server = ServerProc::start();
    let api = server.api();
    cluster_c_with_h1(&api).await;
    api.add_service("c", hello(json!({"hello_server": ["h1"]}), json!({})))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(api.submit("c", "status", json!({"service": "hello"})).await);
    }
    let ids_of = |page: &serde_json::Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_i64().unwrap())
            .collect()
    };
    let res = api.get("/clusters/c/jobs?order=newest&limit=2").await;
    let first = res.expect(200).clone();
    assert_eq!(ids_of(&first), [ids[2], ids[1]], "{first}");
    let next = first["next"].as_str().expect("a next page").to_string();
    let res = api
        .get(&format!(
            "/clusters/c/jobs?order=newest&limit=2&after={next}"
        ))
        .await;
    let second = res.expect(200).clone();
    assert_eq!(ids_of(&second), [ids[0]], "{second}");
    assert!(second["next"].is_null(), "{second}");
    // The default stays oldest first; an unknown order is refused.
    let res = api.get("/clusters/c/jobs").await;
    assert_eq!(ids_of(res.expect(200)), ids);
    api.get("/clusters/c/jobs?order=random").await.problem(400);
}

#[tokio::test]
async fn a_dry_run_makes_every_check_and_writes_nothing() {
    let server = ServerProc::start();
    let api = server.api();
    cluster_c_with_h1(&api).await;
    api.add_host("c", "h2", "127.0.0.3").await;
    let audit_before = api.list("/audit").await.len();

    let res = api
        .post(
            "/clusters/c/services?dry_run=true",
            hello(
                json!({"hello_server": ["h2", "h1"]}),
                json!({"hello.conf": {"interval": 9}}),
            ),
        )
        .await;
    assert_eq!(
        res.expect(200),
        &json!({"name": "hello", "stack": "demo", "stack_version": "1.0.0", "service": "hello",
                "units": [{"component": "hello_server", "host": "h2"},
                          {"component": "hello_server", "host": "h1"}]}),
    );
    // Each refusal the real call makes, on the field it is about.
    for (body, status, field) in [
        (
            hello(json!({"hello_server": []}), json!({})),
            422,
            Some("placement.hello_server"),
        ),
        (
            hello(json!({"hello_server": ["h1", "h1"]}), json!({})),
            422,
            Some("placement.hello_server"),
        ),
        (
            hello(
                json!({"hello_server": ["h1"]}),
                json!({"hello.conf": {"interval": "x"}}),
            ),
            422,
            Some("configs.hello.conf.interval"),
        ),
        (
            json!({"name": "bad name!", "stack": "demo", "service": "hello",
                "placement": {"hello_server": ["h1"]}}),
            422,
            Some("name"),
        ),
        (hello(json!({"hello_server": ["h9"]}), json!({})), 404, None),
    ] {
        let res = api.post("/clusters/c/services?dry_run=true", body).await;
        res.problem(status);
        assert_eq!(res.body["field"].as_str(), field, "{}", res.text);
    }
    // Nothing was written, not even an audit row; the same body without the flag adds it.
    assert!(api.list("/clusters/c/services").await.is_empty());
    assert_eq!(
        api.list("/audit").await.len(),
        audit_before,
        "a dry run is not audited"
    );
    api.post(
        "/clusters/c/services?dry_run=maybe",
        hello(json!({"hello_server": ["h1"]}), json!({})),
    )
    .await
    .problem(400);
    let res = api
        .post(
            "/clusters/c/services?dry_run=false",
            hello(json!({"hello_server": ["h1"]}), json!({})),
        )
        .await;
    assert_eq!(res.expect(201)["units"].as_array().unwrap().len(), 1);
    let res = api
        .post(
            "/clusters/c/services?dry_run=true",
            hello(json!({"hello_server": ["h1"]}), json!({})),
        )
        .await;
    res.problem(409);
}

#[tokio::test]
async fn a_units_files_are_rendered_with_its_secrets_masked() {
    let server = ServerProc::start();
    let api = server.api();
    cluster_c_with_h1(&api).await;
    let svc = api
        .add_service(
            "c",
            json!({"name": "cache", "stack": "extra", "service": "redis",
                   "placement": {"redis_primary": ["h1"]},
                   "configs": {"redis.conf": {"requirepass": "s3cret-Pw", "port": 6391}}}),
        )
        .await;
    let unit = svc["units"][0]["id"].as_i64().unwrap();
    let res = api.get(&format!("/clusters/c/units/{unit}/files")).await;
    let files = res.expect(200).as_array().unwrap().clone();
    let conf = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("redis.conf"))
        .unwrap_or_else(|| panic!("a redis.conf among {}", res.text));
    let text = conf["content"].as_str().unwrap();
    assert_contains(text, "port 6391");
    assert_contains(text, "requirepass \"********\"");
    assert!(!res.text.contains("s3cret-Pw"), "{}", res.text);
    api.get("/clusters/c/units/999999/files").await.problem(404);
    api.get("/clusters/nope/units/1/files").await.problem(404);
}

/// Cluster `c` with host `h1` (no agent: WAITING).
async fn cluster_c_with_h1(api: &Api) {
    api.create_cluster("c").await;
    api.add_host("c", "h1", "127.0.0.2").await;
}

/// The body that adds the demo stack's `hello` as `hello` with `placement` and `configs`.
fn hello(placement: serde_json::Value, configs: serde_json::Value) -> serde_json::Value {
    json!({"name": "hello", "stack": "demo", "service": "hello",
           "placement": placement, "configs": configs})
}
