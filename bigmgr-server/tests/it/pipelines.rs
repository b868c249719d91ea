//! Pipelines through REST and the CLI: a definition is checked whole before anything is
//! created — each kind of mistake (a cycle, an edge to an unknown unit, a blocking unit fed by
//! a source that never ends, a program that does not exist, …) is refused with its line, and
//! the cluster's pipelines are unchanged — then a good one is created, listed, shown and
//! removed (issue 19, test 5).

use crate::cli::Client;
use bigmgr_test_support::{ServerProc, assert_contains};
use serde_json::{Value, json};

const GOOD: &str = r#"name = "sorted"

[sources.files]
kind = "dir"
host = "h1"
path = "/data/in"

[units.filter]
program = "/usr/bin/grep"
kind = "non-blocking"
replicas = 3
hosts = ["h1", "h2", "h3"]
inputs = ["files"]

[units.sort]
program = { stack = "demo", service = "hello", program = "hello_server.sh" }
kind = "blocking"
inputs = ["filter"]

[sinks.out]
kind = "dir"
host = "h1"
path = "/data/out"
inputs = ["sort"]
"#;

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).expect(needle) as u64 + 1
}

#[tokio::test]
async fn bad_pipeline_definitions_are_refused_with_their_lines_and_nothing_is_created() {
    let server = ServerProc::serve().start();
    let api = server.api();
    api.create_cluster("c").await;
    for (i, h) in ["h1", "h2", "h3"].iter().enumerate() {
        api.add_host("c", h, &format!("127.0.0.{}", i + 2)).await;
    }
    let create = |definition: String| {
        let api = api.clone();
        async move {
            api.post("/clusters/c/pipelines", json!({ "definition": definition }))
                .await
        }
    };
    // Each mistake, the path of the value it is about, what the problem says, and the text
    // on the line it names.
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (
            GOOD.replace("inputs = [\"files\"]", "inputs = [\"files\", \"sort\"]"),
            "units.filter.inputs",
            "the edges form a cycle",
            "inputs = [\"files\", \"sort\"]",
        ),
        (
            GOOD.replace("inputs = [\"sort\"]", "inputs = [\"sorter\"]"),
            "sinks.out.inputs",
            "'sorter' is no source, unit or channel",
            "\"sorter\"",
        ),
        (
            GOOD.replace(
                "kind = \"dir\"\nhost = \"h1\"\npath = \"/data/in\"",
                "kind = \"http\"\nhost = \"h1\"",
            ),
            "units.sort.kind",
            "source 'files' never ends",
            "kind = \"blocking\"",
        ),
        (
            GOOD.replace("hello_server.sh", "nope.sh"),
            "units.sort.program",
            "has no program 'nope.sh'",
            "nope.sh",
        ),
        (
            GOOD.replace("/usr/bin/grep", "grep"),
            "units.filter.program",
            "absolute path",
            "program = \"grep\"",
        ),
        (
            GOOD.replace("[\"h1\", \"h2\", \"h3\"]", "[\"h1\", \"h9\"]"),
            "units.filter.hosts",
            "'h9' is not in the cluster",
            "\"h9\"",
        ),
    ];
    for (definition, path, says, on) in &cases {
        let resp = create(definition.clone()).await;
        let detail = resp.problem(422);
        assert_eq!(
            resp.body["type"], "urn:bigmgr:problem:invalid-pipeline",
            "{}",
            resp.text
        );
        let problems = resp.body["problems"].as_array().expect("problems");
        let found = problems
            .iter()
            .find(|p| p["path"] == *path)
            .unwrap_or_else(|| panic!("no problem at {path}: {}", resp.text));
        assert_contains(found["message"].as_str().unwrap(), says);
        assert_eq!(found["line"], json!(line_of(definition, on)), "{found}");
        assert_contains(&detail, says);
    }
    // Not TOML at all: one problem, with its line.
    let resp = create("name = \"x\"\n[units.a\n".into()).await;
    resp.problem(422);
    assert_eq!(resp.body["problems"][0]["line"], 2, "{}", resp.text);
    let none = api.get("/clusters/c/pipelines").await;
    assert_eq!(none.expect(200)["items"], json!([]), "nothing was created");

    // A good one is created, listed and shown; a second of the same name is refused.
    let resp = create(GOOD.into()).await;
    let made = resp.expect(201).clone();
    assert_eq!(
        (made["name"].as_str(), made["state"].as_str()),
        (Some("sorted"), Some("CREATED"))
    );
    assert_eq!(made["definition"], GOOD);
    create(GOOD.into()).await.problem(409);

    // The CLI: a bad file is refused with its lines (exit 1); a list shows the good one.
    let cli = Client::of(&server);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, &cases[0].0).unwrap();
    let out = cli.run(&["pipeline", "create", "c", "-f", bad.to_str().unwrap()]);
    let out = out.expect(1);
    assert_contains(&out.stderr, "the edges form a cycle");
    assert_contains(
        &out.stderr,
        format!("line {}", line_of(&cases[0].0, "\"sort\"]")),
    );
    let listed = cli.run(&["pipeline", "list", "c"]);
    assert_contains(&listed.expect(0).stdout, "sorted");
    let shown = cli.run(&["pipeline", "show", "c", "sorted"]);
    assert_contains(&shown.expect(0).stdout, "kind = \"blocking\"");
    let removed = cli.run(&["pipeline", "delete", "c", "sorted"]);
    removed.expect(0);
    let after: Value = api.get("/clusters/c/pipelines").await.expect(200).clone();
    assert_eq!(after["items"], json!([]), "{after}");
}
