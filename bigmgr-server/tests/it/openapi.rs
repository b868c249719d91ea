//! The REST API's OpenAPI document as a snapshot: any change to a route, a parameter or a
//! schema shows as a diff of `snapshots/it__openapi__openapi_json.snap`, to be reviewed and
//! accepted on purpose (docs/testing.md).

use bigmgr_test_support::ServerProc;
use serde_json::{Map, Value};

/// `v` with the keys of every object in sorted order (arrays keep theirs), whatever order the
/// server wrote them in.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[tokio::test]
async fn openapi_json_matches_the_snapshot() {
    let server = ServerProc::start();
    let res = reqwest::get(format!("{}/openapi.json", server.url))
        .await
        .expect("GET /openapi.json");
    assert_eq!(res.status(), 200);
    let mut doc: Value = res.json().await.expect("a JSON document");
    // The crate's version is not part of the API's shape.
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    doc["info"]["version"] = Value::from("[version]");
    let pretty = serde_json::to_string_pretty(&sorted(doc)).expect("JSON");
    insta::assert_snapshot!("openapi_json", pretty);
}
