//! A pipeline's own overhead, in one process (`pipeline::run` with `LocalHosts`: three hosts
//! as directories, programs as processes): `files → cat (non-blocking, 3 replicas on 3 hosts)
//! → sink` over N small records, against the floor measured in the same run — the same work
//! as a shell pipeline on one host (`cat | cat > out`). Prints records/s, the overhead per
//! batch and the ratio. (With three real agents on 127.0.0.x: `scripts/bench-pipeline.sh`.)
//!
//! `cargo bench -p bigmgr-core --bench pipeline` (options: `-- --records N --batch N`).

use bigmgr_core::model::NewPipeline;
use bigmgr_core::pipeline::run::{LocalHosts, Run};
use bigmgr_core::store::{ClusterStore, PipelineStore, SqlStore};
use bigmgr_test_support::bench::arg;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let records = arg("--records", 1_000_000);
    let batch = arg("--batch", 10_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("in")).expect("in");
        let text: String = (0..records).map(|i| format!("record {i}\n")).collect();
        std::fs::write(d.join("in/records"), &text).expect("records");
        let cat = d.join("cat.sh");
        std::fs::write(&cat, "#!/bin/sh\ncat \"$1\"/* > \"$2/part\"\n").expect("cat.sh");
        std::fs::set_permissions(&cat, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");

        // The floor: the same records through the same program shape, one shell pipeline.
        let start = Instant::now();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cat {} | cat > {}",
                d.join("in/records").display(),
                d.join("floor.out").display()
            ))
            .status()
            .expect("sh");
        assert!(status.success());
        let floor = start.elapsed();

        let out = d.join("out");
        std::fs::create_dir_all(&out).expect("out");
        let definition = format!(
            "name = \"bench\"\n\n[sources.files]\nkind = \"dir\"\nhost = \"h1\"\npath = \"{}\"\n\
             records = {batch}\n\n[units.cat]\nprogram = \"{}\"\nkind = \"non-blocking\"\n\
             replicas = 3\nhosts = [\"h1\", \"h2\", \"h3\"]\ninputs = [\"files\"]\n\n\
             [sinks.out]\nkind = \"dir\"\nhost = \"h3\"\npath = \"{}\"\ninputs = [\"cat\"]\n",
            d.join("in").display(),
            cat.display(),
            out.display()
        );
        let hosts: Vec<String> = ["h1", "h2", "h3"].iter().map(|h| h.to_string()).collect();
        let parsed = bigmgr_core::pipeline::parse(&definition).expect("parse");
        let graph = parsed
            .check(&hosts.iter().cloned().collect())
            .expect("check");
        let store = Arc::new(
            SqlStore::open_path(&d.join("bench.db"))
                .await
                .expect("store"),
        );
        let cluster = store.create_cluster("c").await.expect("cluster");
        let p = store
            .add_pipeline(&NewPipeline {
                cluster: cluster.id,
                name: "bench".into(),
                author: "bench".into(),
                definition: definition.clone(),
            })
            .await
            .expect("pipeline");
        let roots: BTreeMap<String, PathBuf> = hosts
            .iter()
            .map(|h| (h.clone(), d.join("hosts").join(h)))
            .collect();
        let run = Arc::new(Run {
            pipeline: p.id,
            def: parsed.def,
            graph,
            store: store.clone(),
            hosts: Arc::new(LocalHosts::new(roots)),
            cluster_hosts: hosts,
            programs: BTreeMap::new(),
            dir: "c/bench".into(),
            control: Default::default(),
            forward: None,
        });
        let start = Instant::now();
        run.run().await.expect("the run");
        let took = start.elapsed();
        let batches = records.div_ceil(batch);
        let mut got = 0usize;
        for b in std::fs::read_dir(&out).expect("out") {
            for f in std::fs::read_dir(b.expect("batch").path()).expect("batch dir") {
                got += std::fs::read_to_string(f.expect("file").path())
                    .expect("part")
                    .lines()
                    .count();
            }
        }
        assert_eq!(got, records, "every record reached the sink once");
        let per_batch = took.saturating_sub(floor).as_secs_f64() * 1000.0 / batches as f64;
        println!(
            "pipeline files → cat ×3 → sink, {records} records in {batches} batches: {:.3} s, \
             {:.0} records/s, {:.2} ms overhead per batch; shell floor (cat | cat): {:.3} s; \
             ratio {:.1}x",
            took.as_secs_f64(),
            records as f64 / took.as_secs_f64(),
            per_batch,
            floor.as_secs_f64(),
            took.as_secs_f64() / floor.as_secs_f64().max(1e-9)
        );
    });
}
