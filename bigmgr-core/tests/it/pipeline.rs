//! A pipeline run over the metastore with real programs (shell scripts run as processes), three
//! hosts as directories of this machine: `files → filter (non-blocking, 3 replicas on 3 hosts)
//! → sort (blocking) → sink` over 10 000 records in 100 batches gives exactly the sorted,
//! filtered set; a replica that took a batch and died (its lease lapses) loses and doubles
//! nothing. (Issue 19, test 1 in one process; with agents on 127.0.0.x and `kill -9`, to come.)

use bigmgr_core::model::{NewBatch, NewPipeline};
use bigmgr_core::pipeline::run::{LocalHosts, Run};
use bigmgr_core::store::{ClusterStore, PipelineStore, SqlStore};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FILTER: &str = "#!/bin/sh\nset -e\ncat \"$1\"/* | awk '$2 % 2 == 0' > \"$2/part\"\n";
const SORT: &str = "#!/bin/sh\nset -e\ncat \"$1\"/* | sort -n -k2 > \"$2/part\"\n";

fn write_program(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
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

struct Setup {
    dir: tempfile::TempDir,
    run: Run,
    out: PathBuf,
    store: Arc<SqlStore>,
    want: Vec<String>,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let filter = write_program(d, "filter.sh", FILTER);
    let sort = write_program(d, "sort.sh", SORT);
    std::fs::create_dir_all(d.join("in")).unwrap();
    let (text, want) = records();
    std::fs::write(d.join("in/records"), text).unwrap();
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let definition = format!(
        r#"name = "sorted"

[sources.files]
kind = "dir"
host = "h1"
path = "{in_}"
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
host = "h3"
path = "{out}"
inputs = ["sort"]
"#,
        in_ = d.join("in").display(),
        filter = filter.display(),
        sort = sort.display(),
        out = out.display(),
    );
    let hosts: Vec<String> = ["h1", "h2", "h3"].iter().map(|h| h.to_string()).collect();
    let parsed = bigmgr_core::pipeline::parse(&definition).unwrap();
    let graph = parsed.check(&hosts.iter().cloned().collect()).unwrap();
    let store = Arc::new(SqlStore::open("sqlite::memory:").await.unwrap());
    let cluster = store.create_cluster("c").await.unwrap();
    let p = store
        .add_pipeline(&NewPipeline {
            cluster: cluster.id,
            name: "sorted".into(),
            author: "test".into(),
            definition: definition.clone(),
        })
        .await
        .unwrap();
    let roots: BTreeMap<String, PathBuf> = hosts
        .iter()
        .map(|h| (h.clone(), d.join("hosts").join(h)))
        .collect();
    let run = Run {
        pipeline: p.id,
        def: parsed.def,
        graph,
        store: store.clone(),
        hosts: Arc::new(LocalHosts::new(roots)),
        cluster_hosts: hosts,
        programs: BTreeMap::new(),
        dir: "c/sorted".into(),
        control: Default::default(),
        forward: None,
    };
    Setup {
        dir,
        run,
        out,
        store,
        want,
    }
}

/// `run` within a minute (a run that never ends — a lapsed lease never taken over, say —
/// fails the test instead of hanging it).
async fn within<T>(run: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the run ends within a minute")
}

/// Every line of every file the sink wrote.
fn sink_lines(out: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for batch in std::fs::read_dir(out).unwrap() {
        for f in std::fs::read_dir(batch.unwrap().path()).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines
}

#[tokio::test]
async fn files_filter_sort_sink_gives_the_sorted_filtered_set_exactly_once() {
    let s = setup().await;
    let pipeline = s.run.pipeline;
    within(Arc::new(s.run).run()).await.expect("the run");
    let got = sink_lines(&s.out);
    assert_eq!(got.len(), s.want.len(), "as many records as expected");
    assert!(got == s.want, "the sorted, filtered set, exactly once");
    // The metastore: each of the 100 batches processed once by the filter, its 100 outputs
    // processed together by the sort, whose one output reached the sink.
    let into_filter = s
        .store
        .batches(pipeline, Some("files->filter"))
        .await
        .unwrap();
    assert_eq!(into_filter.len(), 100);
    assert!(
        into_filter
            .iter()
            .all(|b| b.attempts == 1 && b.state.as_str() == "CLEAN")
    );
    let into_sort = s
        .store
        .batches(pipeline, Some("filter->sort"))
        .await
        .unwrap();
    assert_eq!(into_sort.len(), 100);
    let into_sink = s.store.batches(pipeline, Some("sort->out")).await.unwrap();
    assert_eq!(into_sink.len(), 1, "{into_sink:?}");
    // Everything every reader processed is CLEAN, and no batch's data is left on the hosts.
    let all = s.store.batches(pipeline, None).await.unwrap();
    assert!(
        all.iter().all(|b| b.state.as_str() == "CLEAN"),
        "{:?}",
        all.iter().find(|b| b.state.as_str() != "CLEAN")
    );
    for h in ["h1", "h2", "h3"] {
        let dir = s.dir.path().join(format!("hosts/{h}/pipelines/c/sorted"));
        let left: Vec<String> = walk(&dir)
            .into_iter()
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        assert!(left.is_empty(), "data left on {h}: {left:?}");
    }
}

/// Every path under `dir` (none if it does not exist).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                all.extend(walk(&p));
            }
            all.push(p);
        }
    }
    all
}

#[tokio::test]
async fn a_batch_whose_replica_died_is_taken_over_when_its_lease_lapses() {
    let s = setup().await;
    let pipeline = s.run.pipeline;
    let store = s.store.clone();
    let run = Arc::new(s.run);
    // A replica leased the first batch (recorded where the source puts it) and died with it:
    // its lease lapses after 300 ms, and another replica processes the batch.
    let first = "records:0";
    let location = "h1:files/records:0".to_string();
    store
        .receive_batches(
            pipeline,
            &[NewBatch {
                node: "files->filter".into(),
                batch: first.into(),
                location,
            }],
        )
        .await
        .unwrap();
    let now = bigmgr_core::model::now_ms();
    let ghost = store
        .lease_batch(pipeline, "files->filter", "ghost", now, now + 300)
        .await
        .unwrap()
        .expect("the ghost's batch");
    assert_eq!(ghost.batch, first);
    within(run.run()).await.expect("the run");
    let taken = first;
    let got = sink_lines(&s.out);
    assert!(
        got == s.want,
        "nothing lost or doubled ({} lines)",
        got.len()
    );
    let b = store
        .batches(pipeline, Some("files->filter"))
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.batch == taken)
        .unwrap();
    assert_eq!(
        b.attempts, 2,
        "leased by the ghost, then by a replica: {b:?}"
    );
}

#[tokio::test]
async fn a_program_that_fails_stops_the_run_naming_its_unit_and_batch() {
    let mut s = setup().await;
    let broken = write_program(s.dir.path(), "broken.sh", "#!/bin/sh\nexit 3\n");
    if let Some(u) = s.run.def.units.get_mut("filter") {
        u.program = bigmgr_core::pipeline::Program::Path(broken.display().to_string());
    }
    let e = within(Arc::new(s.run).run())
        .await
        .expect_err("a failed program stops the run")
        .to_string();
    assert!(e.contains("unit filter, batch records:"), "{e}");
    assert!(e.contains("exit status: 3"), "{e}");
    let nothing = sink_lines(&s.out);
    assert!(nothing.is_empty(), "nothing reached the sink: {nothing:?}");
}

#[tokio::test]
async fn a_slow_unit_holds_its_channel_at_its_limit_and_the_source_waits() {
    let s = setup().await;
    let d = s.dir.path();
    // files → q (a named channel, limit 5) → slow (one replica, 20 ms a batch) → sink.
    let slow = write_program(
        d,
        "slow.sh",
        "#!/bin/sh\nset -e\nsleep 0.02\ncat \"$1\"/* > \"$2/part\"\n",
    );
    let definition = format!(
        r#"name = "slow"

[sources.files]
kind = "dir"
host = "h1"
path = "{in_}"
records = 100

[channels.q]
inputs = ["files"]
limit = 5

[units.slow]
program = "{slow}"
kind = "non-blocking"
hosts = ["h2"]
inputs = ["q"]

[sinks.out]
kind = "dir"
host = "h3"
path = "{out}"
inputs = ["slow"]
"#,
        in_ = d.join("in").display(),
        slow = slow.display(),
        out = s.out.display(),
    );
    let parsed = bigmgr_core::pipeline::parse(&definition).unwrap();
    let graph = parsed
        .check(&["h1", "h2", "h3"].iter().map(|h| h.to_string()).collect())
        .unwrap();
    let run = Run {
        def: parsed.def,
        graph,
        ..s.run
    };
    let (store, pipeline) = (s.store.clone(), run.pipeline);
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (store, watching) = (store.clone(), watching.clone());
        tokio::spawn(async move {
            let mut most = 0;
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(store.backlog(pipeline, "q").await.unwrap());
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            most
        })
    };
    within(Arc::new(run).run()).await.expect("the run");
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let most = watcher.await.unwrap();
    assert!(
        (1..=5).contains(&most),
        "the channel held at most its limit of 5 batches waiting, not {most}"
    );
    let mut got = sink_lines(&s.out);
    got.sort();
    let mut want: Vec<String> = records().0.lines().map(str::to_string).collect();
    want.sort();
    assert!(got == want, "every record once ({} lines)", got.len());
}

#[tokio::test]
async fn a_program_past_its_memory_limit_fails_the_run_naming_its_unit() {
    let mut s = setup().await;
    let greedy = write_program(
        s.dir.path(),
        "greedy.sh",
        "#!/bin/sh\nexec python3 -c 'b = bytearray(512 * 1024 * 1024)'\n",
    );
    if let Some(u) = s.run.def.units.get_mut("filter") {
        u.program = bigmgr_core::pipeline::Program::Path(greedy.display().to_string());
        u.resources.memory = Some("128MiB".into());
    }
    let e = within(Arc::new(s.run).run())
        .await
        .expect_err("a program past its limit fails")
        .to_string();
    assert!(e.contains("unit filter, batch records:"), "{e}");
    assert!(e.contains("MemoryError"), "{e}");
}

#[tokio::test]
async fn a_watching_source_takes_files_added_while_it_runs_until_drained() {
    let mut s = setup().await;
    // Only the filter and a sink: the sort would wait for a source that never ends.
    let definition = format!(
        r#"name = "sorted"

[sources.files]
kind = "dir"
host = "h1"
path = "{in_}"
records = 100
watch = true

[units.filter]
program = "{filter}"
kind = "non-blocking"
replicas = 2
hosts = ["h1", "h2"]
inputs = ["files"]

[sinks.out]
kind = "dir"
host = "h3"
path = "{out}"
inputs = ["filter"]
"#,
        in_ = s.dir.path().join("in").display(),
        filter = s.dir.path().join("filter.sh").display(),
        out = s.out.display(),
    );
    let parsed = bigmgr_core::pipeline::parse(&definition).unwrap();
    let graph = parsed
        .check(&["h1", "h2", "h3"].iter().map(|h| h.to_string()).collect())
        .unwrap();
    s.run.def = parsed.def;
    s.run.graph = graph;
    // Half the records now, the other half in a second file written while it runs.
    let all = std::fs::read_to_string(s.dir.path().join("in/records")).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    std::fs::write(
        s.dir.path().join("in/records"),
        lines[..5000].join("\n") + "\n",
    )
    .unwrap();
    let pipeline = s.run.pipeline;
    let run = Arc::new(s.run);
    let control = run.control.clone();
    let task = tokio::spawn(run.run());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let tmp = s.dir.path().join("later.tmp");
    std::fs::write(&tmp, lines[5000..].join("\n") + "\n").unwrap();
    std::fs::rename(&tmp, s.dir.path().join("in/later")).unwrap();
    let store = s.store.clone();
    within(async {
        loop {
            let n = store
                .batches(pipeline, Some("files->filter"))
                .await
                .unwrap()
                .len();
            if n == 100 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    control.drain();
    within(task).await.unwrap().expect("the drained run");
    let mut got = sink_lines(&s.out);
    got.sort_by_key(|l| {
        l.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u32>().ok())
    });
    assert_eq!(got.len(), s.want.len(), "both files, every record once");
    assert!(got == s.want);
    let batches = store
        .batches(pipeline, Some("files->filter"))
        .await
        .unwrap();
    assert_eq!(batches.len(), 100, "each file cut once");
}
