//! Integration tests: the engine end to end — planning, ordering, failure, timeout, cancel,
//! pause, resume, retry, restart on the same SQLite file, rolling batches and bad input —
//! with in-process agents running real shell scripts.

use crate::harness::*;
use bigmgr_core::Error;
use bigmgr_core::manager::AddService;
use bigmgr_core::model::*;
use bigmgr_test_support::{assert_contains, write_executable};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const GRACE: Duration = Duration::from_secs(1);

/// A script that appends `<host> <command>` to `<marks>/<component>` and sleeps `secs` on start.
fn counting_script(marks: &std::path::Path, secs: &str) -> String {
    format!(
        "echo \"$BIGMGR_HOST $1\" >> '{}'/\"$BIGMGR_COMPONENT\"\necho \"running $1 on $BIGMGR_HOST\"\n[ \"$1\" = start ] && sleep {secs}\nexit 0",
        marks.display()
    )
}

fn two_services(root: &std::path::Path, a_script: &str, b_script: &str, a_extra: &str) {
    write_stack(
        &root.join("stacks"),
        &[
            Svc {
                name: "a",
                component: "a_server",
                script: a_script,
                component_toml: a_extra,
                order: &[],
            },
            Svc {
                name: "b",
                component: "b_server",
                script: b_script,
                component_toml: "",
                order: &[("B_SERVER-START", &["A_SERVER-START"])],
            },
        ],
    )
}

/// A `marks` directory under `tmp`, and a [`counting_script`] (sleeping `secs`) marking there.
fn counting(tmp: &std::path::Path, secs: &str) -> (PathBuf, String) {
    let marks = marks_dir(tmp);
    let script = counting_script(&marks, secs);
    (marks, script)
}

/// A `marks` directory under `tmp` for side-effect counters.
fn marks_dir(tmp: &std::path::Path) -> std::path::PathBuf {
    let marks = tmp.join("marks");
    std::fs::create_dir_all(&marks).expect("marks");
    marks
}

/// Services a and b (B's start after A's) on every one of `hosts` hosts of cluster c1.
async fn two_service_cluster(
    tmp: &std::path::Path,
    a: &str,
    b: &str,
    a_extra: &str,
    hosts: usize,
) -> Harness {
    two_services(tmp, a, b, a_extra);
    let h = a_on_hosts(tmp, hosts).await;
    h.add("b", "b_server", &h.hosts).await;
    h
}

/// Starts `hosts` hosts on the stack written under `tmp` and adds service a on every one.
async fn a_on_hosts(tmp: &std::path::Path, hosts: usize) -> Harness {
    let h = start(tmp, hosts, true, GRACE).await;
    h.add("a", "a_server", &h.hosts).await;
    h
}

/// Runs `start` of service a and waits for the job to end in `state`.
async fn start_a(h: &Harness, state: JobState) -> Job {
    let job = h.run("start", Target::Service("a".into())).await;
    assert_eq!(h.wait(job.id, 20).await.state, state);
    job
}

/// Services a and b (B's start after A's), both running [`counting_script`] with `secs`, on
/// every one of `hosts` hosts; the directory and its `marks`.
async fn counting_cluster(secs: &str, hosts: usize) -> (tempfile::TempDir, PathBuf, Harness) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (marks, script) = counting(tmp.path(), secs);
    let h = two_service_cluster(tmp.path(), &script, &script, "", hosts).await;
    (tmp, marks, h)
}

/// Waits until at least `n` tasks of the job are RUNNING.
async fn until_running(h: &Harness, job: JobId, n: usize) {
    let mgr = h.mgr.clone();
    until(10, &format!("{n} task(s) of job {job} running"), || {
        let mgr = mgr.clone();
        async move {
            mgr.job(job)
                .await
                .expect("detail")
                .tasks
                .iter()
                .filter(|t| t.state == TaskState::Running)
                .count()
                >= n
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_rules_put_a_before_b_and_a_stage_runs_in_parallel() {
    let (_tmp, marks, h) = counting_cluster("0.4", 3).await;

    let job = h.run("start", Target::Cluster).await;
    let done = h.wait(job.id, 30).await;
    assert_eq!(done.state, JobState::Succeeded);

    let d = h.mgr.job(job.id).await.expect("detail");
    let (sa, ta) = stage_tasks(&d, "START a/");
    let (sb, tb) = stage_tasks(&d, "START b/");
    assert_eq!(sb.after, vec![sa.id], "B's start waits for A's start");
    assert_eq!((ta.len(), tb.len()), (3, 3));
    let started =
        |ts: &[&Task]| -> Vec<i64> { ts.iter().map(|t| t.started_at.expect("started")).collect() };
    let finished = |ts: &[&Task]| -> Vec<i64> {
        ts.iter()
            .map(|t| t.finished_at.expect("finished"))
            .collect()
    };
    let a_last_finish = *finished(&ta).iter().max().expect("a");
    let b_first_start = *started(&tb).iter().min().expect("b");
    assert!(
        a_last_finish <= b_first_start,
        "a B task started ({b_first_start}) before the last A task finished ({a_last_finish})"
    );
    let a_last_start = *started(&ta).iter().max().expect("a");
    let a_first_finish = *finished(&ta).iter().min().expect("a");
    assert!(
        a_last_start < a_first_finish,
        "the A tasks did not overlap in time"
    );

    // Each script ran once per host, and the units are started.
    assert_eq!(lines(&marks.join("a_server")).len(), 3);
    assert_eq!(lines(&marks.join("b_server")).len(), 3);
    let units = h.mgr.units("c1").await.expect("units");
    assert!(
        units.iter().all(|u| u.state == UnitState::Started),
        "{units:?}"
    );
    // The task log holds the script's stdout.
    let log = h.mgr.task_log(ta[0].id, None).await.expect("log");
    assert!(
        log.iter().any(|l| l.line.starts_with("running start on h")),
        "{log:?}"
    );
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_script_fails_its_stage_and_cancels_everything_downstream() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = "if [ \"$BIGMGR_HOST\" = h2 ]; then echo \"boom on $BIGMGR_HOST\" >&2; exit 1; fi\nsleep 0.2";
    let h = two_service_cluster(tmp.path(), a, "exit 0", "", 3).await;

    let job = h.run("start", Target::Cluster).await;
    assert_eq!(h.wait(job.id, 30).await.state, JobState::Failed);

    let d = h.mgr.job(job.id).await.expect("detail");
    let (sa, ta) = stage_tasks(&d, "START a/");
    let (sb, tb) = stage_tasks(&d, "START b/");
    assert_eq!(sa.state, StageState::Failed);
    assert_eq!(sb.state, StageState::Canceled);
    assert!(tb.iter().all(|t| t.state == TaskState::Canceled), "{tb:?}");
    let failed: Vec<_> = ta.iter().filter(|t| t.state == TaskState::Failed).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].exit_code, Some(1));
    let log = h.mgr.task_log(failed[0].id, None).await.expect("log");
    assert!(
        log.iter()
            .any(|l| l.stream == LogStream::Stderr && l.line == "boom on h2"),
        "the failing task's log lacks its stderr: {log:?}"
    );
    let units = h.mgr.units("c1").await.expect("units");
    assert_eq!(
        units
            .iter()
            .filter(|u| u.state == UnitState::Failed)
            .count(),
        1
    );
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_past_its_timeout_is_killed_and_timed_out() {
    let tmp = tempfile::tempdir().expect("tmp");
    two_services(
        tmp.path(),
        "sleep 30",
        "exit 0",
        "  [component.commands.start]\n  timeout = 1\n",
    );
    let h = a_on_hosts(tmp.path(), 1).await;
    let job = start_a(&h, JobState::Failed).await;
    let d = h.mgr.job(job.id).await.expect("detail");
    let t = &d.tasks[0];
    assert_eq!(t.state, TaskState::TimedOut);
    let took = t.finished_at.expect("finished") - t.started_at.expect("started");
    assert!(took >= 1000, "killed before its timeout: {took} ms");
    assert!(
        took <= 1000 + GRACE.as_millis() as i64 + 1000,
        "took {took} ms, more than timeout + grace"
    );
    let pid = t.pid.expect("pid");
    assert!(!alive(pid), "the script's process {pid} is still there");
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_sends_sigterm_and_the_job_ends_canceled() {
    let tmp = tempfile::tempdir().expect("tmp");
    let marker = tmp.path().join("got-term");
    let a = format!(
        "trap 'echo term > \"{}\"; exit 143' TERM\nsleep 20 &\nwait $!",
        marker.display()
    );
    let h = two_service_cluster(tmp.path(), &a, "exit 0", "", 2).await;

    let job = h.run("start", Target::Cluster).await;
    until_running(&h, job.id, 2).await;
    let after = h.mgr.cancel(job.id).await.expect("cancel");
    assert!(
        matches!(after.state, JobState::Canceling | JobState::Canceled),
        "{after:?}"
    );
    assert_eq!(h.wait(job.id, 15).await.state, JobState::Canceled);
    assert!(marker.exists(), "the running script never got SIGTERM");
    let d = h.mgr.job(job.id).await.expect("detail");
    assert!(
        d.tasks.iter().all(|t| t.state == TaskState::Canceled),
        "{:?}",
        d.tasks
    );
    assert!(d.stages.iter().all(|s| s.state == StageState::Canceled));
    // A second cancel of an ended job is refused with a reason.
    match h.mgr.cancel(job.id).await {
        Err(Error::Conflict(m)) => assert!(m.contains("CANCELED"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_dispatch_and_resume_continues() {
    let (_tmp, marks, h) = counting_cluster("0.5", 2).await;

    let job = h.run("start", Target::Cluster).await;
    until_running(&h, job.id, 1).await;
    assert_eq!(
        h.mgr.pause(job.id).await.expect("pause").state,
        JobState::Paused
    );
    // A's tasks finish; B's must not start while paused.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let d = h.mgr.job(job.id).await.expect("detail");
    let (_, ta) = stage_tasks(&d, "START a/");
    let (_, tb) = stage_tasks(&d, "START b/");
    assert!(ta.iter().all(|t| t.state == TaskState::Succeeded), "{ta:?}");
    assert!(
        tb.iter().all(|t| t.state == TaskState::Pending),
        "B ran while paused: {tb:?}"
    );
    assert_eq!(d.job.state, JobState::Paused);
    assert!(lines(&marks.join("b_server")).is_empty());

    assert_eq!(
        h.mgr.resume(job.id).await.expect("resume").state,
        JobState::Running
    );
    assert_eq!(h.wait(job.id, 20).await.state, JobState::Succeeded);
    assert_eq!(lines(&marks.join("b_server")).len(), 2);
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_reruns_only_failed_and_cancelled_tasks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let marks = marks_dir(tmp.path());
    let fixed = tmp.path().join("fixed");
    let a = format!(
        "echo \"$BIGMGR_HOST\" >> '{m}/a'\nif [ \"$BIGMGR_HOST\" = h2 ] && [ ! -e '{f}' ]; then echo broken >&2; exit 3; fi",
        m = marks.display(),
        f = fixed.display()
    );
    let b = format!("echo \"$BIGMGR_HOST\" >> '{}/b'", marks.display());
    let h = two_service_cluster(tmp.path(), &a, &b, "", 3).await;

    let job = h.run("start", Target::Cluster).await;
    assert_eq!(h.wait(job.id, 20).await.state, JobState::Failed);
    std::fs::write(&fixed, "").expect("fix");
    assert_eq!(
        h.mgr.retry(job.id).await.expect("retry").state,
        JobState::Queued
    );
    assert_eq!(h.wait(job.id, 20).await.state, JobState::Succeeded);

    let a_runs = sorted_lines(&marks.join("a"));
    assert_eq!(
        a_runs,
        vec!["h1", "h2", "h2", "h3"],
        "only h2's failed A task runs again"
    );
    assert_eq!(
        lines(&marks.join("b")).len(),
        3,
        "the cancelled B tasks run once, on retry"
    );
    let d = h.mgr.job(job.id).await.expect("detail");
    let (_, ta) = stage_tasks(&d, "START a/");
    let attempts: Vec<u32> = ta.iter().map(|t| t.attempt).collect();
    assert_eq!(
        attempts.iter().filter(|a| **a == 2).count(),
        1,
        "{attempts:?}"
    );
    // The first attempt's log is kept beside the second's.
    let h2 = ta.iter().find(|t| t.attempt == 2).expect("retried task");
    let first = h.mgr.task_log(h2.id, Some(1)).await.expect("log");
    assert!(first.iter().any(|l| l.line == "broken"), "{first:?}");
    // A succeeded job has nothing to retry.
    assert!(matches!(h.mgr.retry(job.id).await, Err(Error::Conflict(_))));
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_manager_on_the_same_file_continues_the_job() {
    let (tmp, marks, h) = counting_cluster("1.5", 3).await;
    let job = h.run("start", Target::Cluster).await;
    until_running(&h, job.id, 3).await;
    let before = h.mgr.job(job.id).await.expect("detail");
    let Harness {
        mgr,
        transport,
        daemons: _daemons,
        ..
    } = h;
    drop(mgr);
    drop(transport);

    // Nothing moved in the store while no Manager ran.
    let store = bigmgr_core::store::SqlStore::open_path(&tmp.path().join("bigmgr.db"))
        .await
        .expect("store");
    let seen = bigmgr_core::store::JobStore::job_detail(&store, job.id)
        .await
        .expect("read")
        .expect("job");
    assert_eq!(seen.job.state, JobState::Running);
    assert_eq!(
        seen.tasks.iter().map(|t| t.state).collect::<Vec<_>>(),
        before.tasks.iter().map(|t| t.state).collect::<Vec<_>>()
    );
    drop(store);

    // A new Manager with new agents on the same roots picks the job up and finishes it.
    let h = start(tmp.path(), 3, false, GRACE).await;
    assert_eq!(h.wait(job.id, 30).await.state, JobState::Succeeded);
    let a_runs = sorted_lines(&marks.join("a_server"));
    assert_eq!(
        a_runs,
        vec!["h1 start", "h2 start", "h3 start"],
        "A ran exactly once per host"
    );
    assert_eq!(
        lines(&marks.join("b_server")).len(),
        3,
        "B ran exactly once per host"
    );
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_in_batches_of_two_never_runs_more_than_two() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_a(tmp.path(), "sleep 0.3", "");
    let h = a_on_hosts(tmp.path(), 6).await;
    let opts = JobOptions {
        batch_size: Some(2),
        ..JobOptions::default()
    };
    let job = h.submit("restart", Target::Service("a".into()), opts).await;
    assert_eq!(h.wait(job.id, 30).await.state, JobState::Succeeded);
    let d = h.mgr.job(job.id).await.expect("detail");
    assert_eq!(d.tasks.len(), 6);
    let spans: Vec<(i64, i64)> = d
        .tasks
        .iter()
        .map(|t| {
            (
                t.started_at.expect("started"),
                t.finished_at.expect("finished"),
            )
        })
        .collect();
    let most = max_overlap(&spans);
    assert!(
        most <= 2,
        "{most} tasks ran at once in batches of 2: {spans:?}"
    );
    assert_eq!(most, 2, "the tasks of a batch run together");
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_typed_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    two_services(tmp.path(), "exit 0", "exit 0", "");
    // A broken stack beside it: bad cardinality in its manifest.
    let broken = tmp.path().join("stacks/broken/1.0.0/x");
    std::fs::create_dir_all(&broken).expect("dir");
    std::fs::write(
        broken.join("service.toml"),
        "[service]\nname = \"x\"\nversion = \"1\"\ndescription = \"\"\n[[component]]\nname = \"x_server\"\ncategory = \"server\"\ncardinality = \"lots\"\n",
    )
    .expect("manifest");
    // A cyclic stack: each waits for the other.
    write_stack(
        &tmp.path().join("cyclic"),
        &[
            Svc {
                name: "p",
                component: "p_server",
                script: "exit 0",
                component_toml: "",
                order: &[("P_SERVER-START", &["Q_SERVER-START"])],
            },
            Svc {
                name: "q",
                component: "q_server",
                script: "exit 0",
                component_toml: "",
                order: &[("Q_SERVER-START", &["P_SERVER-START"])],
            },
        ],
    );
    std::fs::rename(
        tmp.path().join("cyclic/test"),
        tmp.path().join("stacks/cyclic"),
    )
    .expect("mv");

    let h = start(tmp.path(), 2, true, GRACE).await;
    let add = |stack: &str, service: &str, comp: &str, hosts: Vec<String>| AddService {
        name: format!("{service}-1"),
        stack: stack.into(),
        version: None,
        service: service.into(),
        placement: BTreeMap::from([(comp.to_string(), hosts.into())]),
        configs: Default::default(),
        host_overrides: Default::default(),
    };
    let refused = |req| h.mgr.add_service("c1", req);

    match refused(add("broken", "x", "x_server", vec!["h1".into()])).await {
        Err(Error::Manifest {
            file,
            field,
            message,
        }) => {
            assert!(file.ends_with("x/service.toml"), "{file:?}");
            assert_contains(&field, "cardinality");
            assert_contains(&message, "lots");
        }
        other => panic!("expected a manifest error, got {other:?}"),
    }
    match refused(add("test", "nosuch", "n", vec!["h1".into()])).await {
        Err(Error::NotFound { kind, name }) => assert!(
            kind == "service" && name.contains("nosuch"),
            "{kind} {name}"
        ),
        other => panic!("expected not found, got {other:?}"),
    }
    match refused(add("test", "a", "a_server", vec![])).await {
        Err(e @ Error::Cardinality { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("a_server") && m.contains("1+") && m.contains("gives 0"),
                "{m}"
            );
        }
        other => panic!("expected a cardinality error, got {other:?}"),
    }
    match refused(add("cyclic", "p", "p_server", vec!["h1".into()])).await {
        Err(Error::Cycle { cycle }) => {
            assert_eq!(cycle.first(), cycle.last(), "{cycle:?}");
            assert!(
                cycle.contains(&"P_SERVER-START".to_string())
                    && cycle.contains(&"Q_SERVER-START".to_string()),
                "{cycle:?}"
            );
        }
        other => panic!("expected a cycle error, got {other:?}"),
    }
    match refused(add("test", "a", "a_server", vec!["h9".into()])).await {
        Err(Error::NotFound { kind: "host", .. }) => {}
        other => panic!("expected host not found, got {other:?}"),
    }
    assert!(
        h.mgr.services("c1").await.expect("services").is_empty(),
        "a refused service was written"
    );
    assert!(
        h.mgr.units("c1").await.expect("units").is_empty(),
        "units of a refused service were written"
    );

    h.add("a", "a_server", &h.hosts).await;
    let bad_jobs = [
        (
            "start",
            Target::Service("nosuch".into()),
            JobOptions::default(),
        ),
        (
            "frobnicate",
            Target::Service("a".into()),
            JobOptions::default(),
        ),
        (
            "start",
            Target::Hosts(vec!["h9".into()]),
            JobOptions::default(),
        ),
        (
            "start",
            Target::Service("a".into()),
            JobOptions {
                batch_size: Some(0),
                ..JobOptions::default()
            },
        ),
    ];
    for (command, target, options) in bad_jobs {
        let r = h
            .mgr
            .submit(JobRequest {
                cluster: "c1".into(),
                target: target.clone(),
                command: command.into(),
                options,
            })
            .await;
        assert!(
            matches!(r, Err(Error::NotFound { .. } | Error::Invalid(_))),
            "{command} {target:?}: {r:?}"
        );
    }
    assert!(matches!(
        h.mgr.add_host("c1", "h1", "127.0.0.9").await,
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        h.mgr.create_cluster("bad name!").await,
        Err(Error::Invalid(_))
    ));
    let jobs = h.mgr.jobs(&JobFilter::default()).await.expect("jobs");
    assert!(jobs.is_empty(), "a refused job was written: {jobs:?}");
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelism_bounds_the_tasks_under_way_and_tolerance_lets_a_stage_succeed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let a = "sleep 0.3\n[ \"$BIGMGR_HOST\" = h3 ] && { echo tolerated >&2; exit 1; }\nexit 0";
    write_a(tmp.path(), a, "");
    let h = a_on_hosts(tmp.path(), 4).await;

    let opts = JobOptions {
        parallelism: Some(2),
        failure_tolerance: 1,
        ..JobOptions::default()
    };
    let job = h.submit("start", Target::Service("a".into()), opts).await;
    assert_eq!(
        h.wait(job.id, 30).await.state,
        JobState::Succeeded,
        "one failure is within the tolerance"
    );
    let d = h.mgr.job(job.id).await.expect("detail");
    assert_eq!(d.stages[0].state, StageState::Succeeded);
    assert_eq!(
        d.tasks
            .iter()
            .filter(|t| t.state == TaskState::Failed)
            .count(),
        1
    );
    let spans: Vec<(i64, i64)> = d
        .tasks
        .iter()
        .map(|t| (t.started_at.expect("s"), t.finished_at.expect("f")))
        .collect();
    assert_eq!(max_overlap(&spans), 2, "parallelism 2: {spans:?}");

    // Without the tolerance the same failure fails the job.
    let job = h.run("start", Target::Service("a".into())).await;
    assert_eq!(h.wait(job.id, 30).await.state, JobState::Failed);
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_job_starts_a_hosts_next_stage_without_waiting_for_the_others() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A is quick on h1 and slow on h2; B after A.
    let a = "[ \"$BIGMGR_HOST\" = h2 ] && sleep 1.5\nexit 0";
    let h = two_service_cluster(tmp.path(), a, "exit 0", "", 2).await;

    let opts = JobOptions {
        pipelined: true,
        ..JobOptions::default()
    };
    let job = h.submit("start", Target::Cluster, opts).await;
    assert_eq!(h.wait(job.id, 30).await.state, JobState::Succeeded);
    let d = h.mgr.job(job.id).await.expect("detail");
    let (_, ta) = stage_tasks(&d, "START a/");
    let (_, tb) = stage_tasks(&d, "START b/");
    let hosts = h.mgr.hosts("c1").await.expect("hosts");
    let id = |n: &str| hosts.iter().find(|x| x.name == n).expect("host").id;
    let a_h2 = ta.iter().find(|t| t.host == id("h2")).expect("a on h2");
    let a_h1 = ta.iter().find(|t| t.host == id("h1")).expect("a on h1");
    let b_h1 = tb.iter().find(|t| t.host == id("h1")).expect("b on h1");
    let b_h2 = tb.iter().find(|t| t.host == id("h2")).expect("b on h2");
    assert!(
        b_h1.started_at >= a_h1.finished_at,
        "B on h1 started before A on h1 ended"
    );
    assert!(
        b_h1.finished_at < a_h2.finished_at,
        "B on h1 waited for A on h2: not pipelined"
    );
    assert!(
        b_h2.started_at >= a_h2.finished_at,
        "B on h2 started before A on h2 ended"
    );
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_for_an_agent_that_connects_late_is_delivered_when_it_says_hello() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (marks, script) = counting(tmp.path(), "0");
    write_a(tmp.path(), &script, "");
    let h = start(tmp.path(), 1, true, GRACE).await;
    // A second host whose agent is not there yet.
    h.mgr
        .add_host("c1", "late", "127.0.0.9")
        .await
        .expect("host");
    h.add("a", "a_server", &["h1".to_string(), "late".to_string()])
        .await;
    let job = h.run("start", Target::Service("a".into())).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = h.mgr.job(job.id).await.expect("detail");
    assert_eq!(
        d.job.state,
        JobState::Running,
        "the job cannot end while one host has no agent"
    );
    let cfg =
        bigmgr_core::agent::AgentConfig::new("late", "127.0.0.9", agent_root(tmp.path(), "late"));
    h.transport
        .spawn_agent(
            cfg,
            std::sync::Arc::new(bigmgr_core::agent::ProcessExecutor),
        )
        .await
        .expect("late agent");
    assert_eq!(h.wait(job.id, 20).await.state, JobState::Succeeded);
    let runs = sorted_lines(&marks.join("a_server"));
    assert_eq!(
        runs,
        vec!["h1 start", "late start"],
        "each host ran the script exactly once"
    );
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_with_retries_runs_a_failed_script_again_as_a_new_attempt() {
    let tmp = tempfile::tempdir().expect("tmp");
    let seen = tmp.path().join("seen");
    // Fails the first time it runs, succeeds after.
    let a = format!(
        "if [ ! -e '{s}' ]; then touch '{s}'; echo flaky >&2; exit 1; fi\necho fine",
        s = seen.display()
    );
    write_a(
        tmp.path(),
        &a,
        "  [component.commands.start]\n  retries = 1\n",
    );
    let h = a_on_hosts(tmp.path(), 1).await;
    let job = start_a(&h, JobState::Succeeded).await;
    let t = &h.mgr.job(job.id).await.expect("detail").tasks[0];
    assert_eq!((t.state, t.attempt), (TaskState::Succeeded, 2));
    let first = h.mgr.task_log(t.id, Some(1)).await.expect("log");
    let second = h.mgr.task_log(t.id, Some(2)).await.expect("log");
    assert!(
        first.iter().any(|l| l.line == "flaky") && second.iter().any(|l| l.line == "fine"),
        "{first:?} {second:?}"
    );
    h.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_store_write_mid_job_is_recovered_without_running_anything_twice() {
    use bigmgr_core::agent::LocalTransport;
    use bigmgr_core::agent::{AgentConfig, ProcessExecutor};
    use bigmgr_core::stack::DirStackProvider;
    use std::sync::Arc;

    let tmp = tempfile::tempdir().expect("tmp");
    let (marks, script) = counting(tmp.path(), "0.3");
    two_services(tmp.path(), &script, &script, "");
    let store = bigmgr_core::store::SqlStore::open_path(&tmp.path().join("db"))
        .await
        .expect("store");
    // The engine's applies: 1 admits the job and queues A's tasks; 2 records their start or
    // results: it fails.
    let jobs = Arc::new(crate::flaky::FlakyJobs {
        inner: Arc::new(store.clone()),
        applies: Default::default(),
        fail_at: 2,
        details: Default::default(),
    });
    let transport = LocalTransport::new();
    for (i, h) in ["h1", "h2"].iter().enumerate() {
        let cfg = AgentConfig::new(*h, format!("127.0.0.{}", i + 2), agent_root(tmp.path(), h));
        transport
            .spawn_agent(cfg, Arc::new(ProcessExecutor))
            .await
            .expect("agent");
    }
    let mgr = bigmgr_core::Manager::builder()
        .store(store)
        .engine_jobs(jobs.clone())
        .transport(transport.clone())
        .stacks(DirStackProvider::new([tmp.path().join("stacks")]))
        .config(bigmgr_core::EngineConfig {
            tick: Duration::from_millis(100),
            delivery_timeout: Duration::from_secs(1),
            ..Default::default()
        })
        .build()
        .await
        .expect("manager");
    mgr.create_cluster("c1").await.expect("cluster");
    for (i, h) in ["h1", "h2"].iter().enumerate() {
        mgr.add_host("c1", h, &format!("127.0.0.{}", i + 2))
            .await
            .expect("host");
    }
    for (s, c) in [("a", "a_server"), ("b", "b_server")] {
        let placement = BTreeMap::from([(
            c.to_string(),
            vec!["h1".to_string(), "h2".to_string()].into(),
        )]);
        let req = AddService {
            name: s.into(),
            stack: "test".into(),
            version: None,
            service: s.into(),
            placement,
            configs: Default::default(),
            host_overrides: Default::default(),
        };
        mgr.add_service("c1", req).await.expect("service");
    }
    let job = mgr
        .submit(JobRequest {
            cluster: "c1".into(),
            target: Target::Cluster,
            command: "start".into(),
            options: JobOptions::default(),
        })
        .await
        .expect("submit");
    let done = tokio::time::timeout(Duration::from_secs(30), mgr.wait(job.id))
        .await
        .expect("job ends")
        .expect("wait");
    assert_eq!(done.state, JobState::Succeeded);
    assert!(
        jobs.applies.load(std::sync::atomic::Ordering::SeqCst) > jobs.fail_at,
        "the engine wrote through the decorator, past the write that failed"
    );
    // The submitted job started as create_job returned it; only the resync after the failed
    // write read its tasks back from the store.
    assert_eq!(
        jobs.details.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the engine read the job's tasks from the store once, to resync"
    );
    let a_runs = sorted_lines(&marks.join("a_server"));
    assert_eq!(
        a_runs,
        vec!["h1 start", "h2 start"],
        "A ran exactly once per host despite the lost write"
    );
    assert_eq!(lines(&marks.join("b_server")).len(), 2);
    transport.shutdown().await;
}

#[tokio::test]
async fn a_task_no_agent_could_receive_is_canceled_at_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_a(tmp.path(), "exit 0", "");
    let h = start(tmp.path(), 1, true, Duration::from_secs(1)).await;
    // h9 has no agent: its task can be sent nowhere.
    h.mgr.add_host("c1", "h9", "127.0.0.9").await.expect("host");
    h.add("a", "a_server", &["h9".to_string()]).await;
    let job = h.run("start", Target::Cluster).await;
    until(10, "the task to be queued", || async {
        h.mgr
            .job(job.id)
            .await
            .is_ok_and(|d| d.tasks.iter().all(|t| t.state == TaskState::Queued))
    })
    .await;
    h.mgr.cancel(job.id).await.expect("cancel");
    // Not CANCELING until the delivery watchdog gives up: nobody can be running it.
    assert_eq!(h.wait(job.id, 5).await.state, JobState::Canceled);
    let d = h.mgr.job(job.id).await.expect("detail");
    let t = &d.tasks[0];
    assert_eq!(t.state, TaskState::Canceled);
    assert_eq!(
        t.message.as_deref(),
        Some("canceled before any agent received it")
    );
}

#[tokio::test]
async fn a_template_naming_an_unknown_variable_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("stacks/test/1.0.0/conf");
    std::fs::create_dir_all(dir.join("templates")).expect("dirs");
    std::fs::write(
        dir.join("service.toml"),
        include_str!("fixtures/conf_service.toml"),
    )
    .expect("manifest");
    std::fs::write(
        dir.join("templates/app.conf.hbs"),
        "listen={{address}}:{{port}}\nmotd={{greting}}\n",
    )
    .expect("template");
    write_executable(&dir.join("run.sh"), "#!/bin/sh\nexit 0\n");
    let h = start(tmp.path(), 1, true, Duration::from_secs(1)).await;
    let add = |configs: ServiceConfigs| AddService {
        name: "conf".into(),
        stack: "test".into(),
        version: None,
        service: "conf".into(),
        placement: [("conf_server".to_string(), vec!["h1".to_string()].into())].into(),
        configs,
        host_overrides: Default::default(),
    };
    let err = h
        .mgr
        .add_service("c1", add(Default::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Template { message, .. } if message.contains("greting")),
        "{err}"
    );
    assert!(h.mgr.services("c1").await.expect("services").is_empty());
}

/// A task too big for one message to its agent (a 9 MiB script here) is failed by the engine,
/// saying why and what to make smaller, and never sent: it would break its agent's session at
/// every delivery. A normal one next to it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_too_big_for_one_message_fails_saying_so_and_is_never_sent() {
    let tmp = tempfile::tempdir().expect("tmp");
    let huge = format!("# {}\nexit 0", "x".repeat(9 << 20));
    let h = two_service_cluster(tmp.path(), &huge, "exit 0", "", 1).await;
    let job = h.run("install", Target::Cluster).await;
    assert_eq!(h.wait(job.id, 60).await.state, JobState::Failed);
    let d = h.mgr.job(job.id).await.expect("detail");
    let (_, ta) = stage_tasks(&d, "INSTALL a/");
    let message = ta[0].message.clone().unwrap_or_default();
    assert!(
        ta[0].state == TaskState::Failed
            && ta[0].pid.is_none()
            && message.contains("fit in one message")
            && message.contains("run.sh"),
        "{:?}",
        ta[0]
    );
    let (_, tb) = stage_tasks(&d, "INSTALL b/");
    assert_eq!(tb[0].state, TaskState::Succeeded);
    h.transport.shutdown().await;
}
