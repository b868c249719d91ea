//! The web console as `bigmgr serve` serves it: built from the current `bigmgr-ui/` sources
//! (the hash it is stamped with is the hash of the sources now), history-mode fallback, long
//! caching of hashed assets only, and the API never shadowed by it. `GET /api/v1/me` tells the
//! console who is signed in.

use bigmgr_server::ui::{IMMUTABLE, SOURCES_HEADER};
use bigmgr_test_support::{ServerProc, assert_contains};
use std::path::Path;

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url).await.expect("a GET")
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_console_is_served_fresh_from_its_sources_with_app_routes_and_cached_assets() {
    let server = ServerProc::start();
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bigmgr-ui");
    let now = bigmgr_server::ui_sources::hash(&sources).expect("hash bigmgr-ui/");

    let index = get(&format!("{}/", server.url)).await;
    assert_eq!(index.status(), 200);
    assert_eq!(
        header(&index, SOURCES_HEADER),
        now,
        "the console served was not built from the current bigmgr-ui/ sources"
    );
    assert_eq!(header(&index, "cache-control"), "no-cache");
    assert!(header(&index, "content-type").starts_with("text/html"));
    let html = index.text().await.unwrap();
    assert_contains(&html, "<div id=\"app\"");

    // Every route of the app is a deep link: the same page, which then routes in the browser.
    for route in [
        "/login",
        "/clusters/demo/hosts",
        "/jobs/42",
        "/x/y/z?tab=logs",
    ] {
        let res = get(&format!("{}{route}", server.url)).await;
        assert_eq!(res.status(), 200, "{route}");
        assert_eq!(res.text().await.unwrap(), html, "{route}");
    }

    // The page's scripts and styles are hashed assets, cached for a year.
    let assets: Vec<&str> = html
        .split('"')
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    assert!(
        assets.iter().any(|a| a.ends_with(".js")),
        "no script in {html}"
    );
    for asset in &assets {
        let res = get(&format!("{}{asset}", server.url)).await;
        assert_eq!(res.status(), 200, "{asset}");
        assert_eq!(header(&res, "cache-control"), IMMUTABLE, "{asset}");
        let kind = header(&res, "content-type").to_string();
        let body = res.bytes().await.unwrap();
        assert!(!body.is_empty(), "{asset}");
        if asset.ends_with(".js") {
            assert!(kind.starts_with("text/javascript"), "{asset}: {kind}");
        }
    }
    // Browsers that accept gzip get the script precompressed, and only they.
    let script = assets.iter().find(|a| a.ends_with(".js")).unwrap();
    let plain = get(&format!("{}{script}", server.url)).await;
    assert_eq!(header(&plain, "content-encoding"), "");
    let plain = plain.bytes().await.unwrap();
    let zipped = reqwest::Client::new()
        .get(format!("{}{script}", server.url))
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&zipped, "content-encoding"), "gzip");
    assert_eq!(header(&zipped, "vary"), "accept-encoding");
    let zipped = zipped.bytes().await.unwrap();
    assert!(zipped.starts_with(&[0x1f, 0x8b]) && zipped.len() < plain.len());

    // An asset of another build is a 404, not the app's HTML where a script is expected.
    let stale = get(&format!("{}/assets/index-0000000.js", server.url)).await;
    assert_eq!(stale.status(), 404);
    // A path that tries to leave the embedded files gets the app page, never a file.
    let res = get(&format!("{}/assets/..%2F..%2FCargo.toml", server.url)).await;
    assert_eq!(res.status(), 404);
    let res = get(&format!("{}/..%2F..%2Fetc%2Fpasswd", server.url)).await;
    assert_eq!(res.text().await.unwrap(), html);

    // The API keeps its own answers: an unknown API path is a problem, not the app.
    let res = get(&format!("{}/api/v1/no/such/route", server.url)).await;
    assert_eq!(res.status(), 404);
    assert_eq!(header(&res, "content-type"), "application/problem+json");
    let res = get(&format!("{}/openapi.json", server.url)).await;
    assert_eq!(header(&res, "content-type"), "application/json");
}

#[tokio::test]
async fn me_is_the_caller_with_its_role() {
    let server = ServerProc::start();
    let api = server.api();
    let res = api.get("/me").await;
    let me = res.expect(200);
    assert_eq!(me["name"], "admin");
    assert_eq!(me["role"], "admin");
    // What the role may do comes from the server's one rule table: the console copies none.
    let may = me["may"].as_array().unwrap();
    for action in [
        "read",
        "submit-job",
        "control-job",
        "manage-users",
        "create-join-token",
    ] {
        assert!(may.contains(&serde_json::json!(action)), "{me}");
    }
    api.post(
        "/users",
        serde_json::json!({"name": "vic", "role": "viewer", "password": "viewer-pass-1"}),
    )
    .await
    .expect(201);
    let login = api
        .post(
            "/login",
            serde_json::json!({"name": "vic", "password": "viewer-pass-1"}),
        )
        .await;
    let token = login.expect(201)["token"].as_str().unwrap().to_string();
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/me", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let vic: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        vic,
        serde_json::json!({"name": "vic", "role": "viewer",
                           "may": ["read", "login", "manage-own-account"]})
    );
    let anonymous = get(&format!("{}/api/v1/me", server.url)).await;
    assert_eq!(anonymous.status(), 401);
}
