//! Users, tokens, roles and the audit log over REST, against a real server process.

use bigmgr_test_support::{Api, ServerProc, assert_contains};
use serde_json::{Value, json};
use std::time::Duration;

/// Creates a user with `role` (and a password) as admin and returns a client with a new token
/// of that user.
async fn user(admin: &Api, name: &str, role: &str) -> Api {
    let token = admin.user_token(name, role).await;
    assert!(token.starts_with("bmt_"), "{token}");
    admin.with_token(Some(&token))
}

/// The demo `hello` service on h1, as `POST …/services` takes it.
fn hello_on_h1() -> Value {
    json!({"name": "hello", "stack": "demo", "service": "hello",
           "placement": {"hello_server": ["h1"]}})
}

/// A server with cluster `c`, and clients of its admin, of viewer `vic` and of operator
/// `olga`.
async fn admin_viewer_operator() -> (ServerProc, Api, Api, Api) {
    let server = ServerProc::start();
    let admin = server.api();
    let viewer = user(&admin, "vic", "viewer").await;
    let operator = user(&admin, "olga", "operator").await;
    admin.create_cluster("c").await;
    (server, admin, viewer, operator)
}

/// The audit events, as admin.
async fn audit(admin: &Api) -> Vec<Value> {
    admin.get("/audit?limit=1000").await.expect(200)["items"]
        .as_array()
        .expect("array")
        .clone()
}

fn has(events: &[Value], actor: &str, action: &str, outcome: &str) -> bool {
    events
        .iter()
        .any(|e| e["actor"] == actor && e["action"] == action && e["outcome"] == outcome)
}

#[tokio::test]
async fn each_role_may_do_what_it_should_and_is_audited() {
    let (_server, admin, viewer, operator) = admin_viewer_operator().await;

    // The admin sets up a cluster with a service (its host has no agent: jobs just wait).
    admin.add_host("c", "h1", "127.0.0.2").await;
    admin.add_service("c", hello_on_h1()).await;

    // Viewer: reads, nothing else.
    viewer.get("/clusters").await.expect(200);
    viewer.get("/clusters/c/services").await.expect(200);
    let d = viewer
        .post("/clusters", json!({"name": "v"}))
        .await
        .problem(403);
    assert!(d.contains("'vic'") && d.contains("needs role admin"), "{d}");
    let d = viewer
        .post_job("c", "start", json!("cluster"))
        .await
        .problem(403);
    assert_contains(&d, "needs role operator");
    viewer.get("/audit").await.problem(403);
    viewer.get("/users").await.problem(403);

    // Operator: jobs yes, cluster changes no.
    let id = operator.submit("c", "start", json!("cluster")).await;
    operator
        .post(&format!("/jobs/{id}/cancel"), json!({}))
        .await
        .expect(200);
    operator
        .post("/clusters", json!({"name": "o"}))
        .await
        .problem(403);
    operator
        .post("/clusters/c/join-tokens", json!({}))
        .await
        .problem(403);

    // Wrong or missing tokens.
    admin
        .with_token(Some("bmt_not_a_token_at_all"))
        .get("/clusters")
        .await
        .problem(401);
    admin.with_token(None).get("/clusters").await.problem(401);

    // The audit log has the changes and the refusals, with who and what.
    let events = audit(&admin).await;
    assert!(
        has(&events, "vic", "create-cluster", "refused"),
        "{events:?}"
    );
    assert!(has(&events, "vic", "submit-job", "refused"), "{events:?}");
    assert!(has(&events, "olga", "submit-job", "ok"), "{events:?}");
    assert!(has(&events, "olga", "control-job", "ok"), "{events:?}");
    assert!(
        has(&events, "olga", "create-cluster", "refused"),
        "{events:?}"
    );
    assert!(has(&events, "admin", "create-cluster", "ok"), "{events:?}");
    assert!(has(&events, "admin", "manage-users", "ok"), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["target"] == "cluster c" && e["actor"] == "olga"),
        "{events:?}"
    );
    // Pages by cursor.
    let first = admin.get("/audit?limit=2").await.expect(200).clone();
    let last = first["items"][1]["id"].as_i64().expect("id");
    assert_eq!(first["next"], last.to_string(), "{first}");
    let next = admin
        .get(&format!("/audit?limit=2&after={last}"))
        .await
        .expect(200)
        .clone();
    assert!(
        next["items"][0]["id"].as_i64().expect("id") > last,
        "{next}"
    );
}

#[tokio::test]
async fn users_log_in_and_tokens_can_be_revoked() {
    let server = ServerProc::start();
    let admin = server.api();
    let _ = user(&admin, "olga", "operator").await;

    let anon = admin.with_token(None);
    anon.post(
        "/login",
        json!({"name": "olga", "password": "wrong password"}),
    )
    .await
    .problem(401);
    let login = anon
        .post(
            "/login",
            json!({"name": "olga", "password": "correct horse"}),
        )
        .await;
    let body = login.expect(201).clone();
    let token = body["token"].as_str().expect("token");
    let olga = admin.with_token(Some(token));
    olga.get("/clusters").await.expect(200);
    // Her own tokens she may list and revoke.
    let tokens = olga.get("/users/olga/tokens").await.expect(200).clone();
    assert_eq!(
        tokens["items"].as_array().expect("items").len(),
        2,
        "{tokens}"
    );
    olga.delete(&format!("/tokens/{}", body["id"]))
        .await
        .expect(204);
    olga.get("/clusters").await.problem(401);

    // Users are admin business; the last admin stays.
    admin.delete("/users/olga").await.expect(204);
    admin.delete("/users/admin").await.problem(409);
    for reserved in ["system", "anonymous"] {
        let detail = admin
            .post("/users", json!({"name": reserved, "role": "viewer"}))
            .await
            .problem(422);
        assert_contains(&detail, "reserved");
    }
    admin
        .post(
            "/users",
            json!({"name": "x", "password": "short", "role": "viewer"}),
        )
        .await
        .problem(422);
    admin
        .post("/users", json!({"name": "x", "role": "superuser"}))
        .await
        .problem(422);
}

/// Who may call a route: viewer and operator (admins may call everything).
struct Rule {
    method: &'static str,
    path: String,
    body: Option<Value>,
    viewer: bool,
    operator: bool,
}

fn rule(method: &'static str, path: impl Into<String>, viewer: bool, operator: bool) -> Rule {
    Rule {
        method,
        path: path.into(),
        body: None,
        viewer,
        operator,
    }
}

#[tokio::test]
async fn every_route_is_allowed_or_refused_by_role_and_refusals_are_audited() {
    let (_server, admin, viewer, operator) = admin_viewer_operator().await;
    admin.create_cluster("c2").await;
    let _agent = admin.join_agent("c", "h1", "127.0.0.2").await;
    admin.add_service("c", hello_on_h1()).await;
    // A job that ended to read, and one to control.
    let cluster = || json!("cluster");
    let detail = admin
        .run_job("c", "install", cluster(), Duration::from_secs(60))
        .await;
    let done = detail["id"].as_i64().expect("id");
    let task = detail["stages"][0]["tasks"][0]["id"]
        .as_i64()
        .expect("task");
    let live = admin.submit("c", "status", cluster()).await;
    // Job lists filter by state.
    let ok = admin.get("/clusters/c/jobs?state=SUCCEEDED").await;
    let ok = ok.expect(200)["items"].as_array().expect("items").clone();
    assert!(ok.iter().any(|j| j["id"] == done), "{ok:?}");
    assert!(ok.iter().all(|j| j["state"] == "SUCCEEDED"), "{ok:?}");
    admin
        .get("/clusters/c/jobs?state=NAPPING")
        .await
        .problem(400);

    // The least role besides admin that may call each route. (`/../../mcp` is `/mcp`, at the
    // root outside `/api/v1`: any role may use MCP, whose tools are limited by role, see mcp.rs.)
    let table = format!(
        "
        viewer   GET    /clusters
        viewer   GET    /clusters/c
        viewer   GET    /clusters/c/hosts
        viewer   GET    /clusters/c/hosts/h1
        viewer   GET    /stacks
        viewer   GET    /clusters/c/services
        viewer   GET    /clusters/c/services/hello
        viewer   GET    /clusters/c/jobs
        viewer   GET    /jobs/{done}
        viewer   GET    /jobs/{done}/tasks/{task}/log
        viewer   GET    /jobs/{done}/events
        viewer   GET    /clusters/c/alerts
        viewer   GET    /clusters/c/alerts/history
        viewer   GET    /clusters/c/alerts/deliveries
        viewer   GET    /clusters/c/alert-targets
        operator POST   /clusters/c/alert-targets
        viewer   GET    /clusters/c/maintenance
        operator POST   /clusters/c/maintenance
        viewer   GET    /clusters/c/services/hello/healing
        operator PUT    /clusters/c/services/hello/healing
        viewer   GET    /clusters/c/alert-definitions
        viewer   GET    /clusters/c/advice
        viewer   GET    /assistant/providers
        admin    PUT    /assistant/providers/p1
        viewer   GET    /assistant/tools
        viewer   GET    /assistant/threads
        viewer   POST   /assistant/threads
        operator PUT    /clusters/c/alert-definitions/unit_down
        admin    POST   /clusters
        admin    DELETE /clusters/c2
        admin    POST   /clusters/c/join-tokens
        admin    POST   /clusters/c/hosts
        admin    POST   /clusters/c/hosts/bootstrap
        viewer   GET    /clusters/c/pipelines
        viewer   GET    /clusters/c/pipelines/p1
        admin    POST   /clusters/c/pipelines
        admin    DELETE /clusters/c/pipelines/p1
        viewer   GET    /clusters/c/pipelines/p1/status
        viewer   GET    /clusters/c/pipelines/p1/logs
        operator POST   /clusters/c/pipelines/p1/start
        operator POST   /clusters/c/pipelines/p1/pause
        operator POST   /clusters/c/pipelines/p1/resume
        operator POST   /clusters/c/pipelines/p1/stop
        operator POST   /clusters/c/pipelines/p1/scale
        operator POST   /clusters/c/pipelines/p1/sources/s/batches
        admin    POST   /clusters/c/services
        viewer   GET    /clusters/c/spec
        viewer   POST   /clusters/c/plan
        admin    POST   /clusters/c/apply
        admin    DELETE /clusters/c/services/hello
        admin    DELETE /clusters/c/hosts/h1
        operator POST   /clusters/c/jobs
        operator POST   /jobs/{live}/pause
        operator POST   /jobs/{live}/resume
        operator POST   /jobs/{live}/cancel
        operator POST   /jobs/{done}/retry
        admin    GET    /users
        admin    POST   /users
        admin    DELETE /users/admin
        admin    GET    /users/admin/tokens
        admin    POST   /users/admin/tokens
        admin    GET    /audit
        viewer   POST   /../../mcp
        "
    );
    let mut rules: Vec<Rule> = table
        .lines()
        .filter_map(|line| {
            let [least, method, path] = line.split_whitespace().collect::<Vec<_>>()[..] else {
                return None;
            };
            let method = ["GET", "POST", "PUT", "DELETE"]
                .into_iter()
                .find(|m| *m == method)?;
            Some(rule(method, path, least == "viewer", least != "admin"))
        })
        .collect();
    assert_eq!(rules.len(), 63, "every row of the table is read");
    let bodies = [
        ("/clusters", json!({"name": "x"})),
        (
            "/clusters/c/hosts",
            json!({"name": "h9", "address": "127.0.0.9"}),
        ),
        (
            "/clusters/c/services",
            json!({"name": "x", "stack": "demo", "service": "hello", "placement": {}}),
        ),
        (
            "/clusters/c/pipelines",
            json!({"definition": "name = \"p9\"\n"}),
        ),
        (
            "/clusters/c/pipelines/p1/scale",
            json!({"unit": "f", "replicas": 2}),
        ),
        (
            "/clusters/c/hosts/bootstrap",
            json!({"hosts": [{"name": "h8", "address": "127.0.0.8"}], "ssh_password": "x"}),
        ),
        (
            "/clusters/c/jobs",
            json!({"command": "start", "target": "cluster"}),
        ),
        (
            "/clusters/c/alert-targets",
            json!({"name": "t1", "url": "http://127.0.0.1:9/hook"}),
        ),
        (
            "/clusters/c/maintenance",
            json!({"host": "h1", "for": "1h", "reason": "roles"}),
        ),
        (
            "/clusters/c/services/hello/healing",
            json!({"restart": false}),
        ),
        ("/users", json!({"name": "x", "role": "viewer"})),
        ("/clusters/c/plan", json!({"spec": "cluster = \"c\"\n"})),
        ("/clusters/c/apply", json!({"spec": "cluster = \"c\"\n"})),
        (
            "/assistant/providers/p1",
            json!({"base_url": "http://127.0.0.1:9/v1", "model": "m"}),
        ),
        ("/assistant/threads", json!({"cluster": "c"})),
        ("/users/admin/tokens", json!({"name": "x"})),
        (
            "/../../mcp",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        ),
    ];
    for r in &mut rules {
        if r.method == "POST" || r.method == "PUT" {
            r.body = Some(
                bodies
                    .iter()
                    .find(|(p, _)| *p == r.path)
                    .map_or(json!({}), |(_, b)| b.clone()),
            );
        }
    }
    for (who, api) in [("vic", &viewer), ("olga", &operator)] {
        for r in &rules {
            let allowed = if who == "vic" { r.viewer } else { r.operator };
            let resp = match (r.method, &r.body) {
                ("GET", _) => api.get(&r.path).await,
                ("DELETE", _) => api.delete(&r.path).await,
                ("PUT", body) => api.put(&r.path, body.clone().unwrap_or(json!({}))).await,
                (_, body) => api.post(&r.path, body.clone().unwrap_or(json!({}))).await,
            };
            if allowed {
                assert!(
                    resp.status != 403 && resp.status != 401 && resp.status < 500,
                    "{who} may {} {}: got {} {}",
                    r.method,
                    r.path,
                    resp.status,
                    resp.text
                );
            } else {
                let detail = resp.problem(403);
                assert_contains(&detail, format!("'{who}'"));
            }
        }
    }
    // Each refused call left an audit row naming who, what and where (core names what a
    // change is to: `cluster c`, `host h1 of cluster c`, `job 7`).
    let audited = |r: &Rule| -> Option<String> {
        let body_name = r
            .body
            .as_ref()
            .and_then(|b| b["name"].as_str().map(str::to_owned));
        let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        Some(match (r.method, segs.as_slice()) {
            ("POST", ["clusters"]) => format!("cluster {}", body_name?),
            ("DELETE", ["clusters", c]) => format!("cluster {c}"),
            ("POST", ["clusters", c, "join-tokens"])
            | ("POST", ["clusters", c, "jobs"])
            | ("POST", ["clusters", c, "alert-targets"])
            | ("POST", ["clusters", c, "maintenance"])
            | ("POST", ["clusters", c, "apply"]) => format!("cluster {c}"),
            ("PUT", ["clusters", c, "services", s, "healing"]) => {
                format!("service {s} of cluster {c}")
            }
            ("PUT", ["clusters", c, "alert-definitions", a]) => {
                format!("alert {a} of cluster {c}")
            }
            ("POST", ["clusters", c, "hosts"]) => format!("host {} of cluster {c}", body_name?),
            ("POST", ["clusters", c, "hosts", "bootstrap"]) => format!("hosts h8 of cluster {c}"),
            ("POST", ["clusters", c, "pipelines"]) => format!("pipeline p9 of cluster {c}"),
            ("DELETE", ["clusters", c, "pipelines", p])
            | ("POST", ["clusters", c, "pipelines", p, _])
            | ("POST", ["clusters", c, "pipelines", p, "sources", _, "batches"]) => {
                format!("pipeline {p} of cluster {c}")
            }
            ("DELETE", ["clusters", c, "hosts", h]) => format!("host {h} of cluster {c}"),
            ("POST", ["clusters", c, "services"]) => {
                format!("service {} of cluster {c}", body_name?)
            }
            ("DELETE", ["clusters", c, "services", s]) => format!("service {s} of cluster {c}"),
            ("POST", ["jobs", id, _]) => format!("job {id}"),
            ("PUT", ["assistant", "providers", p]) => format!("provider {p}"),
            _ => return None,
        })
    };
    let events = audit(&admin).await;
    for (who, api_rules) in [("vic", false), ("olga", true)] {
        for r in rules
            .iter()
            .filter(|r| !(if api_rules { r.operator } else { r.viewer }))
        {
            let exempt = r.path.starts_with("/users") || r.path == "/audit";
            let target = audited(r);
            assert!(
                exempt || target.is_some(),
                "the test names no audit target for {} {}",
                r.method,
                r.path
            );
            assert!(
                events.iter().any(|e| e["actor"] == who
                    && e["outcome"] == "refused"
                    && (exempt || e["target"] == target.as_deref().unwrap_or_default())),
                "no refusal of {who} {} {} ({target:?}) in the audit log",
                r.method,
                r.path
            );
        }
    }
    // A change without a valid token is refused and audited as `anonymous`.
    admin
        .with_token(None)
        .post("/clusters", json!({"name": "sneaky"}))
        .await
        .problem(401);
    let events = audit(&admin).await;
    assert!(
        events.iter().any(|e| e["actor"] == "anonymous"
            && e["outcome"] == "refused"
            && e["target"] == "/api/v1/clusters"),
        "{events:?}"
    );
}

/// Addresses from outside are an IP address or a DNS name, nothing else: every hostile one is
/// a 422 naming the field, and nothing is written. Only an admin changes a host's address.
#[tokio::test]
async fn hostile_host_addresses_are_refused_and_only_admins_change_one() {
    let (_server, admin, _viewer, operator) = admin_viewer_operator().await;
    let long = "x".repeat(300);
    let hostile = [
        "$(touch /tmp/bigmgr-pwned)",
        "`id`",
        "x';id;'",
        "x\";id;\"",
        "../../etc/passwd",
        "a\nb",
        "h1;reboot",
        "1.2.3.999",
        "-h",
        long.as_str(),
    ];
    for bad in hostile {
        let d = admin
            .post("/clusters/c/hosts", json!({"name": "h1", "address": bad}))
            .await
            .problem(422);
        assert!(d.contains("address"), "{bad:?}: {d}");
    }
    assert_eq!(
        admin.get("/clusters/c/hosts").await.expect(200)["items"],
        json!([]),
        "nothing was written"
    );
    let h = admin.add_host("c", "h1", "10.1.2.3").await;
    assert_eq!(
        (h["state"].as_str(), h["reported_address"].is_null()),
        (Some("WAITING"), true),
        "a host no agent registered for says so: {h}"
    );
    for bad in hostile {
        admin
            .patch("/clusters/c/hosts/h1", json!({"address": bad}))
            .await
            .problem(422);
    }
    let d = operator
        .patch("/clusters/c/hosts/h1", json!({"address": "10.1.2.4"}))
        .await
        .problem(403);
    assert_contains(&d, "needs role admin");
    let h = admin
        .patch("/clusters/c/hosts/h1", json!({"address": "node-1.example"}))
        .await;
    assert_eq!(h.expect(200)["address"], "node-1.example");
    admin
        .patch("/clusters/c/hosts/h9", json!({"address": "10.0.0.1"}))
        .await
        .problem(404);
    let events = audit(&admin).await;
    assert!(has(&events, "admin", "change-host", "ok"), "{events:?}");
    assert!(has(&events, "olga", "change-host", "refused"), "{events:?}");
}
