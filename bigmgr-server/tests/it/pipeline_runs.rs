//! Pipelines run by real agents (issue 19, tests 1–4): three `bigmgr-agent` processes on
//! 127.0.0.2–4 with roots of their own, one `bigmgr serve`, programs that are shell scripts.
//! `files (h1) → filter (3 replicas on h1–h3) → sort (blocking, h2) → sink (h1)` over 10 000
//! records in 100 batches gives exactly the sorted, filtered set — carried between hosts by
//! the agents' data side; pausing, resuming and scaling 3 → 1 → 4 while it runs loses and
//! doubles nothing; a `kill -9` of the agent running a replica mid-batch moves that batch to
//! another replica, and a `kill -9` of the server mid-run, then a restart, finishes the run
//! with the exact output; a slow unit makes its channel answer not-ready and holds it at its
//! limit while every process's memory stays bounded.

use crate::cli::Client;
use bigmgr_test_support::{AgentProc, Api, ServerProc, assert_contains, free_addr, wait_until};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const FILTER: &str = "#!/bin/sh\nset -e\ncat \"$1\"/* | awk '$2 % 2 == 0' > \"$2/part\"\n";
const SORT: &str = "#!/bin/sh\nset -e\ncat \"$1\"/* | sort -n -k2 > \"$2/part\"\n";
/// How long a run may take here, at most.
const RUN: Duration = Duration::from_secs(120);

/// A filter that takes `secs` per batch.
fn slow_filter(secs: &str) -> String {
    format!("#!/bin/sh\nset -e\nsleep {secs}\ncat \"$1\"/* | awk '$2 % 2 == 0' > \"$2/part\"\n")
}

/// 10 000 records `r<n> <value>` with distinct values, and what the pipeline must give:
/// those with an even value, by value.
fn records() -> (String, Vec<String>) {
    let all: Vec<(u32, u32)> = (0..10_000u32).map(|n| (n, (n * 7919) % 10_007)).collect();
    let text: String = all.iter().map(|(n, v)| format!("r{n:05} {v}\n")).collect();
    let mut want: Vec<(u32, u32)> = all.into_iter().filter(|(_, v)| v % 2 == 0).collect();
    want.sort_by_key(|(_, v)| *v);
    (
        text,
        want.iter().map(|(n, v)| format!("r{n:05} {v}")).collect(),
    )
}

/// One pipeline's files: its input, its programs and where its sink writes.
struct Files {
    input: PathBuf,
    out: PathBuf,
    filter: PathBuf,
    sort: PathBuf,
    want: Vec<String>,
}

fn files(dir: &Path, name: &str, filter: &str) -> Files {
    let d = dir.join(name);
    let (input, out) = (d.join("in"), d.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let (text, want) = records();
    std::fs::write(input.join("records"), text).unwrap();
    let (f, s) = (d.join("filter.sh"), d.join("sort.sh"));
    bigmgr_test_support::write_executable(&f, filter);
    bigmgr_test_support::write_executable(&s, SORT);
    Files {
        input,
        out,
        filter: f,
        sort: s,
        want,
    }
}

/// `files → filter (3 replicas on h1–h3) → sort (blocking, on h2) → sink (on h1)`.
fn definition(name: &str, f: &Files) -> String {
    format!(
        r#"name = "{name}"

[sources.files]
kind = "dir"
host = "h1"
path = "{input}"
records = 100

[units.filter]
program = "{filter}"
kind = "non-blocking"
replicas = 3
hosts = ["h1", "h2", "h3"]
inputs = ["files"]

[units.sort]
program = "{sort}"
kind = "blocking"
hosts = ["h2"]
inputs = ["filter"]

[sinks.out]
kind = "dir"
host = "h1"
path = "{out}"
inputs = ["sort"]
"#,
        input = f.input.display(),
        filter = f.filter.display(),
        sort = f.sort.display(),
        out = f.out.display(),
    )
}

/// Every line the sink wrote, in file order.
fn sink_lines(out: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for batch in std::fs::read_dir(out).unwrap() {
        for f in std::fs::read_dir(batch.unwrap().path()).unwrap() {
            files.push(f.unwrap().path());
        }
    }
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            all.extend(files_under(&p));
        } else {
            all.push(p);
        }
    }
    all
}

/// A server (one heartbeat a second: a host is LOST after 3 s) on `data` and `addr`.
fn server(data: &Path, addr: std::net::SocketAddr) -> ServerProc {
    ServerProc::serve()
        .data(data)
        .listen(addr)
        .fast_heartbeat()
        .start()
}

async fn agents(api: &Api) -> Vec<AgentProc> {
    api.create_cluster("c").await;
    let mut agents = Vec::new();
    for (i, h) in ["h1", "h2", "h3"].iter().enumerate() {
        agents.push(api.join_agent("c", h, &format!("127.0.0.{}", i + 2)).await);
    }
    agents
}

async fn status(api: &Api, name: &str) -> Value {
    api.get(&format!("/clusters/c/pipelines/{name}/status"))
        .await
        .expect(200)
        .clone()
}

/// A node of a status.
fn node<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {status}"))
}

/// Batches the filter processed so far.
async fn filtered(api: &Api, name: &str) -> u64 {
    node(&status(api, name).await, "filter")["processed"]
        .as_u64()
        .unwrap()
}

/// Waits until the pipeline is in `state` (panics on FAILED, with its message).
async fn wait_state(api: &Api, name: &str, state: &str) -> Value {
    wait_until(&format!("pipeline {name} {state}"), RUN, || async {
        let p = api
            .get(&format!("/clusters/c/pipelines/{name}"))
            .await
            .expect(200)
            .clone();
        assert!(
            p["state"] != "FAILED" || state == "FAILED",
            "the run failed: {p}"
        );
        (p["state"] == state).then_some(p)
    })
    .await
}

async fn logs(api: &Api, name: &str) -> String {
    let l = api
        .get(&format!("/clusters/c/pipelines/{name}/logs"))
        .await
        .expect(200)
        .clone();
    l["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap_or_default().to_string() + "\n")
        .collect()
}

#[tokio::test]
async fn a_pipeline_runs_exactly_once_on_three_agents_and_is_steered_while_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(&tmp.path().join("data"), free_addr());
    let api = server.api();
    let agents = agents(&api).await;
    let cli = Client::of(&server);

    // Test 1: the whole run, through the CLI.
    let f = files(tmp.path(), "sorted", FILTER);
    let def = tmp.path().join("sorted.toml");
    std::fs::write(&def, definition("sorted", &f)).unwrap();
    cli.run(&["pipeline", "create", "c", "-f", def.to_str().unwrap()])
        .expect(0);
    let started = cli.run(&["pipeline", "start", "c", "sorted"]);
    assert_contains(&started.expect(0).stdout, "pipeline sorted: RUNNING");
    let done = wait_state(&api, "sorted", "FINISHED").await;
    assert_eq!(done["message"], "every batch was processed", "{done}");
    let got = sink_lines(&f.out);
    assert_eq!(got.len(), f.want.len(), "as many records as expected");
    assert!(got == f.want, "the sorted, filtered set, exactly once");
    // The metastore: 100 batches into the filter, its 100 outputs into the sort, one result.
    let s = status(&api, "sorted").await;
    assert_eq!(node(&s, "files")["recorded"], 100, "{s}");
    assert_eq!(node(&s, "filter")["processed"], 100, "{s}");
    assert_eq!(node(&s, "filter->sort")["processed"], 100, "{s}");
    assert_eq!(node(&s, "sort->out")["processed"], 1, "{s}");
    assert_eq!(node(&s, "out")["processed"], 1, "{s}");
    // Every host ran the filter; once every reader processed a batch its data was removed,
    // so nothing is left under the agents' roots.
    let log = logs(&api, "sorted").await;
    for holder in ["filter#0@h1", "filter#1@h2", "filter#2@h3", "sort#0@h2"] {
        assert_contains(&log, format!("{holder}: batch"));
    }
    let id = done["id"].as_i64().unwrap();
    for a in &agents {
        let dir = a.root.join(format!("pipelines/c/sorted.{id}"));
        assert!(dir.is_dir(), "{} ran nothing", dir.display());
        let left = files_under(&dir);
        assert!(
            left.is_empty(),
            "data left under {}: {left:?}",
            dir.display()
        );
    }
    let table = cli.run(&["pipeline", "status", "c", "sorted"]);
    let table = table.expect(0).stdout.clone();
    assert_contains(&table, "FINISHED");
    assert_contains(&table, "filter->sort");
    // Started again, it finds nothing new to do and finishes.
    cli.run(&["pipeline", "start", "c", "sorted"]).expect(0);
    wait_state(&api, "sorted", "FINISHED").await;
    assert!(
        sink_lines(&f.out) == f.want,
        "nothing doubled by a second run"
    );

    // Test 4: pause, resume, scale 3 → 1 → 4 while it runs.
    let f = files(tmp.path(), "steered", &slow_filter("0.1"));
    api.post(
        "/clusters/c/pipelines",
        json!({ "definition": definition("steered", &f) }),
    )
    .await
    .expect(201);
    api.post("/clusters/c/pipelines/steered/start", json!({}))
        .await
        .expect(200);
    wait_until("10 batches filtered", RUN, || async {
        (filtered(&api, "steered").await >= 10).then_some(())
    })
    .await;
    let paused = cli.run(&["pipeline", "pause", "c", "steered"]);
    assert_contains(&paused.expect(0).stdout, "PAUSED");
    // Batches being processed finish; then nothing moves.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = filtered(&api, "steered").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = filtered(&api, "steered").await;
    assert_eq!(before, after, "a paused pipeline takes no new batch");
    assert!(after < 100, "paused before the end ({after})");
    api.post("/clusters/c/pipelines/steered/pause", json!({}))
        .await
        .problem(409);
    cli.run(&["pipeline", "resume", "c", "steered"]).expect(0);
    let one = cli.run(&["pipeline", "scale", "c", "steered", "filter=1"]);
    assert_contains(&one.expect(0).stdout, "scaled to 1 replicas");
    let at = filtered(&api, "steered").await;
    wait_until("5 more batches with one replica", RUN, || async {
        (filtered(&api, "steered").await >= at + 5).then_some(())
    })
    .await;
    let s = status(&api, "steered").await;
    assert_eq!(node(&s, "filter")["replicas"], 1, "{s}");
    assert!(
        node(&s, "filter")["leased"].as_u64().unwrap() <= 1,
        "one replica leases one batch at a time: {s}"
    );
    cli.run(&["pipeline", "scale", "c", "steered", "filter=4"])
        .expect(0);
    // Bad scalings are refused, naming what to fix.
    let bad = api
        .post(
            "/clusters/c/pipelines/steered/scale",
            json!({"unit": "sort", "replicas": 2}),
        )
        .await;
    assert_contains(bad.problem(422), "blocking");
    let bad = api
        .post(
            "/clusters/c/pipelines/steered/scale",
            json!({"unit": "nope", "replicas": 2}),
        )
        .await;
    assert_contains(bad.problem(422), "no unit 'nope'");
    wait_state(&api, "steered", "FINISHED").await;
    let got = sink_lines(&f.out);
    assert!(
        got == f.want,
        "paused, resumed and scaled: still exactly the set ({} lines)",
        got.len()
    );
    let log = logs(&api, "steered").await;
    assert_contains(&log, "paused");
    assert_contains(&log, "unit filter scaled to 4 replicas");
    assert_contains(&log, "filter#3@h1");

    // Aborted mid-run, then started again: the batches in flight went back to their
    // channels, and the second run ends with exactly the set.
    let f = files(tmp.path(), "aborted", &slow_filter("0.1"));
    api.post(
        "/clusters/c/pipelines",
        json!({ "definition": definition("aborted", &f) }),
    )
    .await
    .expect(201);
    cli.run(&["pipeline", "start", "c", "aborted"]).expect(0);
    wait_until("5 batches filtered", RUN, || async {
        (filtered(&api, "aborted").await >= 5).then_some(())
    })
    .await;
    let out = cli.run(&["pipeline", "stop", "c", "aborted", "--abort"]);
    assert_contains(&out.expect(0).stdout, "STOPPED");
    let stopped = wait_state(&api, "aborted", "STOPPED").await;
    assert_eq!(stopped["message"], "aborted", "{stopped}");
    wait_until("the aborted run's end in its log", RUN, || async {
        logs(&api, "aborted")
            .await
            .contains("run ended: aborted")
            .then_some(())
    })
    .await;
    let s = status(&api, "aborted").await;
    assert_eq!(node(&s, "filter")["leased"], 0, "leases released: {s}");
    cli.run(&["pipeline", "start", "c", "aborted"]).expect(0);
    wait_state(&api, "aborted", "FINISHED").await;
    let got = sink_lines(&f.out);
    assert!(
        got == f.want,
        "aborted and started again: exactly the set ({} lines)",
        got.len()
    );
    drop(agents);
}

#[tokio::test]
async fn a_killed_agent_s_batch_moves_to_another_replica_and_a_killed_server_resumes_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, addr) = (tmp.path().join("data"), free_addr());
    let mut first = server(&data, addr);
    let api = first.api();
    let mut agents = agents(&api).await;
    let f = files(tmp.path(), "sturdy", &slow_filter("0.3"));
    let made = api
        .post(
            "/clusters/c/pipelines",
            json!({ "definition": definition("sturdy", &f) }),
        )
        .await
        .expect(201)
        .clone();
    let id = made["id"].as_i64().unwrap();
    api.post("/clusters/c/pipelines/sturdy/start", json!({}))
        .await
        .expect(200);

    // Test 2: h3's agent dies mid-batch — while its program runs (its output directory is
    // still empty).
    let work = agents[2]
        .root
        .join(format!("pipelines/c/sturdy.{id}/filter"));
    wait_until("h3 in the middle of a batch", RUN, || async {
        let busy = std::fs::read_dir(&work)
            .ok()?
            .flatten()
            .any(|d| std::fs::read_dir(d.path().join("out")).is_ok_and(|mut o| o.next().is_none()));
        busy.then_some(())
    })
    .await;
    agents[2].proc.kill();
    let log = wait_until("h3's batch released", RUN, || async {
        let log = logs(&api, "sturdy").await;
        log.contains("filter#2@h3").then_some(log)
    })
    .await;
    assert_contains(&log, "1 batch(es) released to other replicas");
    wait_until("h3 LOST", RUN, || async {
        let h = api.get("/clusters/c/hosts/h3").await.expect(200).clone();
        (h["state"] == "LOST").then_some(())
    })
    .await;
    wait_until("40 batches filtered", RUN, || async {
        (filtered(&api, "sturdy").await >= 40).then_some(())
    })
    .await;

    // The server dies mid-run and comes back on the same store and address.
    let before = filtered(&api, "sturdy").await;
    assert!(before < 100, "killed mid-run ({before} of 100)");
    first.proc.kill();
    drop(first);
    let second = server(&data, addr);
    let api = second.api();
    let done = wait_state(&api, "sturdy", "FINISHED").await;
    assert_eq!(done["message"], "every batch was processed", "{done}");
    let got = sink_lines(&f.out);
    assert_eq!(got.len(), f.want.len(), "no record lost or doubled");
    assert!(got == f.want, "exactly the sorted, filtered set");
    let s = status(&api, "sturdy").await;
    assert_eq!(node(&s, "filter")["processed"], 100, "{s}");
    drop(agents);
}

#[tokio::test]
async fn a_slow_unit_makes_its_channel_not_ready_and_memory_stays_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(&tmp.path().join("data"), free_addr());
    let api = server.api();
    let agents = agents(&api).await;
    let f = files(tmp.path(), "pressed", FILTER);
    let slow = tmp.path().join("pressed/slow.sh");
    bigmgr_test_support::write_executable(
        &slow,
        "#!/bin/sh\nset -e\nsleep 0.05\ncp \"$1\"/* \"$2\"/\n",
    );
    // files → filter (3 replicas) → q (limit 5) → slow (1 replica) → sink.
    let definition = format!(
        r#"name = "pressed"

[sources.files]
kind = "dir"
host = "h1"
path = "{input}"
records = 100

[units.filter]
program = "{filter}"
kind = "non-blocking"
replicas = 3
hosts = ["h1", "h2", "h3"]
inputs = ["files"]

[channels.q]
inputs = ["filter"]
limit = 5

[units.slow]
program = "{slow}"
kind = "non-blocking"
hosts = ["h1"]
inputs = ["q"]

[sinks.out]
kind = "dir"
host = "h1"
path = "{out}"
inputs = ["slow"]
"#,
        input = f.input.display(),
        filter = f.filter.display(),
        slow = slow.display(),
        out = f.out.display(),
    );
    api.post("/clusters/c/pipelines", json!({ "definition": definition }))
        .await
        .expect(201);
    api.post("/clusters/c/pipelines/pressed/start", json!({}))
        .await
        .expect(200);
    let (mut most, mut not_ready) = (0u64, false);
    loop {
        let s = status(&api, "pressed").await;
        let q = node(&s, "q");
        most = most.max(q["waiting"].as_u64().unwrap());
        not_ready |= q["ready"] == false;
        if s["pipeline"]["state"] != "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_state(&api, "pressed", "FINISHED").await;
    let mut got = sink_lines(&f.out);
    got.sort_by_key(|l| {
        l.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u32>().ok())
    });
    assert!(got == f.want, "every record once ({} lines)", got.len());
    assert!(
        not_ready,
        "the channel before the slow unit answered not-ready"
    );
    assert!(most <= 5, "the channel held at most its limit: {most}");
    // Peak resident memory (VmHWM) of the server and each agent over the whole run.
    let mut peaks = vec![("server".to_string(), server.proc.status_kib("VmHWM:"))];
    for (i, a) in agents.iter().enumerate() {
        peaks.push((format!("agent h{}", i + 1), a.proc.status_kib("VmHWM:")));
    }
    for (what, kib) in &peaks {
        eprintln!("peak RSS of {what}: {} MiB", kib / 1024);
        assert!(*kib > 0, "measured {what}");
        assert!(
            *kib < 256 * 1024,
            "{what} stays bounded: {} MiB",
            kib / 1024
        );
    }
    drop(agents);
}

#[tokio::test]
async fn an_http_source_takes_pushed_batches_once_and_a_drained_pipeline_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(&tmp.path().join("data"), free_addr());
    let api = server.api();
    let agents = agents(&api).await;
    let f = files(tmp.path(), "pushed", FILTER);
    let definition = format!(
        r#"name = "pushed"

[sources.events]
kind = "http"
host = "h2"

[units.filter]
program = "{filter}"
kind = "non-blocking"
replicas = 2
hosts = ["h1", "h3"]
inputs = ["events"]

[sinks.out]
kind = "dir"
host = "h1"
path = "{out}"
inputs = ["filter"]
"#,
        filter = f.filter.display(),
        out = f.out.display(),
    );
    api.post("/clusters/c/pipelines", json!({ "definition": definition }))
        .await
        .expect(201);
    let push = "/clusters/c/pipelines/pushed/sources/events/batches";
    let records = std::fs::read_to_string(f.input.join("records")).unwrap();
    let lines: Vec<&str> = records.lines().collect();
    let chunk = |i: usize| lines[i * 1000..(i + 1) * 1000].join("\n") + "\n";
    // Not running yet: refused, nothing recorded.
    let early = api.post_raw(&format!("{push}?batch=b0"), chunk(0)).await;
    assert_contains(early.problem(409), "start it");
    api.post("/clusters/c/pipelines/pushed/start", json!({}))
        .await
        .expect(200);
    for i in 0..9 {
        let r = api.post_raw(&format!("{push}?batch=b{i}"), chunk(i)).await;
        assert_eq!(r.expect(201)["new"], true);
    }
    // Without an id the server names it; pushed again with its id, it is not recorded twice.
    let named = api.post_raw(push, chunk(9)).await;
    let id = named.expect(201)["batch"].as_str().unwrap().to_string();
    let again = api.post_raw(&format!("{push}?batch={id}"), chunk(9)).await;
    assert_eq!(again.expect(200)["new"], false);
    let cli = Client::of(&server);
    let b3 = tmp.path().join("b3");
    std::fs::write(&b3, chunk(3)).unwrap();
    let b3 = b3.to_str().unwrap();
    let again = cli.run(&[
        "pipeline", "push", "c", "pushed", "events", b3, "--batch", "b3",
    ]);
    assert_contains(&again.expect(0).stdout, "batch b3 was pushed before");
    // Hostile or wrong pushes are refused, naming what to fix.
    let bad = api.post_raw(&format!("{push}?batch=..%2Fetc"), "x\n").await;
    assert_contains(bad.problem(422), "a batch id is");
    let bad = api
        .post_raw("/clusters/c/pipelines/pushed/sources/nope/batches", "x\n")
        .await;
    assert_contains(bad.problem(422), "no HTTP source 'nope'");
    // Drained: what was pushed is processed, then it stops; pushes are refused.
    let stopping = cli.run(&["pipeline", "stop", "c", "pushed"]);
    assert_contains(&stopping.expect(0).stdout, "DRAINING");
    let stopped = wait_state(&api, "pushed", "STOPPED").await;
    assert_eq!(stopped["message"], "drained", "{stopped}");
    let late = api.post_raw(&format!("{push}?batch=late"), chunk(0)).await;
    late.problem(409);
    let mut got = sink_lines(&f.out);
    got.sort_by_key(|l| {
        l.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u32>().ok())
    });
    assert_eq!(got.len(), f.want.len(), "every pushed record once");
    assert!(got == f.want, "exactly the filtered set");
    let s = status(&api, "pushed").await;
    assert_eq!(node(&s, "events")["recorded"], 10, "{s}");
    drop(agents);
}

#[tokio::test]
async fn a_pipeline_sink_feeds_another_pipeline_each_batch_once() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(&tmp.path().join("data"), free_addr());
    let api = server.api();
    let agents = agents(&api).await;
    let f = files(tmp.path(), "first", FILTER);
    let copy = tmp.path().join("copy.sh");
    bigmgr_test_support::write_executable(&copy, "#!/bin/sh\nset -e\ncp \"$1\"/* \"$2\"/\n");
    // first: files → filter → (pipeline sink) → second: events → copy → dir.
    let first = format!(
        r#"name = "first"

[sources.files]
kind = "dir"
host = "h1"
path = "{input}"
records = 100

[units.filter]
program = "{filter}"
kind = "non-blocking"
replicas = 3
hosts = ["h1", "h2", "h3"]
inputs = ["files"]

[sinks.next]
kind = "pipeline"
pipeline = "second"
inputs = ["filter"]
"#,
        input = f.input.display(),
        filter = f.filter.display(),
    );
    let second = format!(
        r#"name = "second"

[sources.events]
kind = "http"
host = "h3"

[units.copy]
program = "{copy}"
kind = "non-blocking"
replicas = 2
inputs = ["events"]

[sinks.out]
kind = "dir"
host = "h2"
path = "{out}"
inputs = ["copy"]
"#,
        copy = copy.display(),
        out = f.out.display(),
    );
    for d in [&first, &second] {
        api.post("/clusters/c/pipelines", json!({ "definition": d }))
            .await
            .expect(201);
    }
    // The first runs before the second: its batches wait until the second takes them.
    api.post("/clusters/c/pipelines/first/start", json!({}))
        .await
        .expect(200);
    wait_until("the first pipeline waiting for the second", RUN, || async {
        logs(&api, "first")
            .await
            .contains("start it before pushing")
            .then_some(())
    })
    .await;
    api.post("/clusters/c/pipelines/second/start", json!({}))
        .await
        .expect(200);
    wait_state(&api, "first", "FINISHED").await;
    api.post("/clusters/c/pipelines/second/stop", json!({}))
        .await
        .expect(200);
    wait_state(&api, "second", "STOPPED").await;
    let mut got = sink_lines(&f.out);
    got.sort_by_key(|l| {
        l.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u32>().ok())
    });
    assert_eq!(got.len(), f.want.len(), "every record once");
    assert!(
        got == f.want,
        "exactly the filtered set, through two pipelines"
    );
    let s = status(&api, "second").await;
    assert_eq!(node(&s, "events")["recorded"], 100, "{s}");
    drop(agents);
}
