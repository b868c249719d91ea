//! Relations with real in-process agents and scripts: the automatic reconfigure of a requirer
//! when a provider's units change, never two jobs on one unit at once, and nothing lost when
//! a change arrives while a reconfigure runs.

use crate::harness::{agent_root, start, until};
use bigmgr_core::manager::{AddService, Relate};
use bigmgr_core::model::*;
use bigmgr_core::request::AddUnitsBody;
use bigmgr_test_support::write_executable;
use std::path::Path;
use std::time::Duration;

/// `src` provides `feed`; `sink` requires it and renders its hosts into `sink.conf`. Each
/// `configure` of sink takes 1.5 s and appends the file to `configures.log`, or `OVERLAP` if
/// another configure of the same unit is running.
fn write_stacks(root: &Path) {
    let base = root.join("stacks/rel/1.0.0");
    let services = [
        (
            "src",
            "[service]\nname = \"src\"\nversion = \"1\"\n[[component]]\nname = \"src_server\"\n\
             category = \"server\"\ncardinality = \"1+\"\nscript = \"run.sh\"\n\
             [[provides]]\nname = \"feed\"\ninterface = \"feed\"\n",
            "exit 0",
        ),
        (
            "sink",
            "[service]\nname = \"sink\"\nversion = \"1\"\n[[component]]\nname = \"sink_server\"\n\
             category = \"server\"\ncardinality = \"1\"\nscript = \"run.sh\"\n\
             [[config]]\nname = \"sink.conf\"\ntemplate = \"sink.conf.hbs\"\npath = \"sink.conf\"\n\
             [[requires]]\nname = \"feed\"\ninterface = \"feed\"\n",
            r#"u="$BIGMGR_UNIT_DIR"
if [ "$1" = configure ]; then
  [ -e "$u/busy" ] && echo OVERLAP >> "$u/configures.log"
  touch "$u/busy"; sleep 1.5
  { cat "$u/sink.conf"; echo; } >> "$u/configures.log"
  rm -f "$u/busy"
fi
exit 0"#,
        ),
    ];
    for (name, toml, script) in services {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("service.toml"), toml).unwrap();
        std::fs::write(
            dir.join("sink.conf.hbs"),
            "{{#each relations.feed}}{{this.host}} {{/each}}",
        )
        .unwrap();
        write_executable(&dir.join("run.sh"), &format!("#!/bin/sh\n{script}\n"));
    }
}

fn add(name: &str, component: &str, hosts: &[&str]) -> AddService {
    AddService {
        name: name.into(),
        stack: "rel".into(),
        version: None,
        service: name.into(),
        placement: [(
            component.to_string(),
            hosts.iter().map(|h| h.to_string()).collect(),
        )]
        .into(),
        configs: Default::default(),
        host_overrides: Default::default(),
    }
}

#[tokio::test]
async fn a_change_during_a_reconfigure_waits_for_it_and_is_applied_after() {
    let tmp = tempfile::tempdir().unwrap();
    write_stacks(tmp.path());
    let h = start(tmp.path(), 2, true, Duration::from_secs(1)).await;
    let mgr = &h.mgr;
    mgr.add_service("c1", add("src", "src_server", &["h1"]))
        .await
        .unwrap();
    mgr.add_service("c1", add("sink", "sink_server", &["h1"]))
        .await
        .unwrap();
    let deploy = h
        .submit("deploy", Target::Cluster, JobOptions::default())
        .await;
    assert_eq!(h.wait(deploy.id, 60).await.state, JobState::Succeeded);
    let log = agent_root(tmp.path(), "h1").join("units/c1/sink/sink_server/configures.log");

    // Relating makes sink stale by relation data: an automatic reconfigure starts (J1).
    let rel = mgr
        .relate(
            "c1",
            Relate {
                requirer: "sink".into(),
                provider: "src".into(),
                auto_reconfigure: true,
            },
        )
        .await
        .unwrap();
    let events = mgr.relation_events("c1", rel.id).await.unwrap();
    let j1 = events
        .iter()
        .find(|e| e.job.is_some())
        .and_then(|e| e.job)
        .expect("an automatic job");
    // While J1's configure sleeps, a second src unit appears: sink is busy, so no second job
    // starts now…
    until(10, "J1 running", || async {
        mgr.job(j1).await.unwrap().job.state == JobState::Running
    })
    .await;
    let h2 = AddUnitsBody {
        component: "src_server".into(),
        hosts: vec!["h2".into()],
    };
    mgr.add_units("c1", "src", &h2).await.unwrap();
    let reconfigures = |jobs: Vec<Job>| {
        jobs.into_iter()
            .filter(|j| j.command == "reconfigure")
            .count()
    };
    let jobs = mgr.jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(
        reconfigures(jobs),
        1,
        "no second job while J1 holds the unit"
    );
    // …and once J1 ends, a second reconfigure applies what changed meanwhile.
    assert_eq!(h.wait(j1, 30).await.state, JobState::Succeeded);
    until(30, "sink.conf listing h1 and h2 applied", || async {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().any(|l| l == "h1 h2 "))
    })
    .await;
    until(30, "no stale unit", || async {
        mgr.unit_statuses("c1")
            .await
            .unwrap()
            .iter()
            .all(|u| !u.stale)
    })
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("OVERLAP"),
        "two configures ran at once:\n{text}"
    );
    let jobs = mgr.jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(reconfigures(jobs), 2, "{text}");
}
