//! Conformance of [`JobStore`]: jobs created and read back, queried, and changed by compare-and-set
//! batches, on services of a [`ServiceStore`] in clusters of a [`ClusterStore`].
//!
//! [`ServiceStore`]: crate::store::ServiceStore
//! [`ClusterStore`]: crate::store::ClusterStore

use super::ClusterServices;
use super::fixture::{
    apply_jobs, fixture, fixture_with_job, job, none, not_found, ok, read_paged, refused,
    simple_job, stage,
};
use crate::Error;
use crate::model::*;
use crate::store::{Batch, JobChange, JobStore, StageChange, TaskChange};

/// Runs the checks of jobs.
pub async fn run<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    checks!(store:
        job_round_trip, job_queries, apply_compare_and_set, apply_chains, apply_retry,
        job_times, units_and_logs, concurrent_apply, unknown_ids, host_tasks, state_counts,
        stray_tasks,
    );
}

/// state_counts counts every job and task by state, and follows their changes.
pub async fn state_counts<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "state_counts";
    let before = ok(store.state_counts().await, C, "counts before");
    let count = |c: &StateCounts, j: Option<JobState>, t: Option<TaskState>| -> u64 {
        match (j, t) {
            (Some(j), _) => c.jobs.iter().find(|(s, _)| *s == j).map_or(0, |(_, n)| *n),
            (_, Some(t)) => c.tasks.iter().find(|(s, _)| *s == t).map_or(0, |(_, n)| *n),
            _ => 0,
        }
    };
    let (_fx, detail) = fixture_with_job(store, C, "sc", 3).await;
    let after = ok(store.state_counts().await, C, "counts after a job");
    assert_eq!(
        count(&after, Some(JobState::Queued), None),
        count(&before, Some(JobState::Queued), None) + 1,
        "store conformance [{C}]: a new job is counted QUEUED"
    );
    assert_eq!(
        count(&after, None, Some(TaskState::Pending)),
        count(&before, None, Some(TaskState::Pending)) + 3,
        "store conformance [{C}]: its 3 tasks are counted PENDING"
    );
    let run = JobChange {
        id: detail.job.id,
        from: JobState::Queued,
        to: JobState::Running,
        at: 10,
    };
    apply_jobs(store, C, vec![run], vec![true], "QUEUED -> RUNNING").await;
    let running = ok(store.state_counts().await, C, "counts after a change");
    assert_eq!(
        (
            count(&running, Some(JobState::Queued), None),
            count(&running, Some(JobState::Running), None)
        ),
        (
            count(&before, Some(JobState::Queued), None),
            count(&before, Some(JobState::Running), None) + 1
        ),
        "store conformance [{C}]: a state change moves the job's count"
    );
    assert!(
        running.jobs.iter().chain([]).all(|(_, n)| *n > 0)
            && running.tasks.iter().all(|(_, n)| *n > 0),
        "store conformance [{C}]: states with none are left out"
    );
}

/// host_tasks gives a host's latest tasks, newest first, with their command, service and
/// component, and no other host's.
pub async fn host_tasks<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "host_tasks";
    let fx = fixture(store, C, "ht", 2).await;
    let (h0, h1) = (fx.hosts[0].id, fx.hosts[1].id);
    let first = simple_job(store, C, &fx).await;
    let second = ok(
        store
            .create_job(&job(&fx, vec![stage(&fx, "stop", vec![])]))
            .await,
        C,
        "create job",
    );
    let of = |d: &JobDetail, h: HostId| -> Task {
        d.tasks
            .iter()
            .find(|t| t.host == h)
            .cloned()
            .expect("a task per host")
    };
    let got = ok(store.host_tasks(h0, 10).await, C, "host tasks");
    let want = vec![
        HostTask {
            task: of(&second, h0),
            command: "restart".into(),
            stage_command: "stop".into(),
            service: fx.service.id,
            component: "zookeeper_server".into(),
        },
        HostTask {
            task: of(&first, h0),
            command: "restart".into(),
            stage_command: "start".into(),
            service: fx.service.id,
            component: "zookeeper_server".into(),
        },
    ];
    assert_eq!(
        got, want,
        "store conformance [{C}]: a host's tasks, newest first, with their job's command and their stage's command, service and component"
    );
    let one = ok(store.host_tasks(h1, 1).await, C, "host tasks, limit 1");
    assert_eq!(
        one.iter().map(|t| t.task.id).collect::<Vec<_>>(),
        vec![of(&second, h1).id],
        "store conformance [{C}]: limit keeps the newest"
    );
    let none = ok(
        store.host_tasks(HostId(987_654), 10).await,
        C,
        "unknown host",
    );
    assert!(
        none.is_empty(),
        "store conformance [{C}]: an unknown host has no tasks"
    );
}

/// create_job persists the whole plan and returns it as job_detail loads it.
pub async fn job_round_trip<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "job_round_trip";
    let fx = fixture(store, C, "jrt", 3).await;
    let mut new = job(
        &fx,
        vec![
            stage(&fx, "install", vec![]),
            stage(&fx, "start", vec![0]),
            stage(&fx, "check", vec![1, 0]),
        ],
    );
    new.target = Target::Component {
        service: "svc".into(),
        component: "zookeeper_server".into(),
    };
    new.options = JobOptions {
        parallelism: Some(2),
        batch_size: Some(1),
        failure_tolerance: 1,
        pipelined: true,
        reason: Some("self-heal: why it ran".into()),
    };
    let d = ok(store.create_job(&new).await, C, "create_job");
    let j = &d.job;
    assert_eq!(
        (j.cluster, j.command.as_str(), &j.target, &j.options),
        (fx.cluster.id, "restart", &new.target, &new.options),
        "store conformance [{C}]: the job keeps cluster, command, target and options"
    );
    assert_eq!(
        (j.state, j.started_at, j.finished_at),
        (JobState::Queued, None, None),
        "store conformance [{C}]: a new job is QUEUED, not started nor finished"
    );
    assert!(
        j.created_at > 0,
        "store conformance [{C}]: created_at is set"
    );

    assert_eq!(
        d.stages.len(),
        3,
        "store conformance [{C}]: every stage is stored"
    );
    for (i, (s, n)) in d.stages.iter().zip(&new.stages).enumerate() {
        assert_eq!(
            (
                s.job,
                s.seq as usize,
                s.name.as_str(),
                s.service,
                s.component.as_str(),
                s.command.as_str(),
                s.state
            ),
            (
                j.id,
                i,
                n.name.as_str(),
                n.service,
                n.component.as_str(),
                n.command.as_str(),
                StageState::Pending
            ),
            "store conformance [{C}]: stage {i} comes back in order with its fields, PENDING"
        );
        let mut want: Vec<StageId> = n.after.iter().map(|&a| d.stages[a].id).collect();
        want.sort();
        let mut got = s.after.clone();
        got.sort();
        assert_eq!(
            got, want,
            "store conformance [{C}]: stage {i}'s `after` names the stages it waits for"
        );
    }

    assert!(
        d.tasks.windows(2).all(|w| w[0].id < w[1].id),
        "store conformance [{C}]: job_detail's tasks come by ascending id"
    );
    let mut got: Vec<(StageId, UnitId, HostId)> =
        d.tasks.iter().map(|t| (t.stage, t.unit, t.host)).collect();
    got.sort();
    let mut want: Vec<(StageId, UnitId, HostId)> = d
        .stages
        .iter()
        .flat_map(|s| fx.units.iter().map(move |u| (s.id, u.id, u.host)))
        .collect();
    want.sort();
    assert_eq!(
        got, want,
        "store conformance [{C}]: one task per planned (stage, unit, host)"
    );
    for t in &d.tasks {
        assert_eq!(
            (
                t.job,
                t.attempt,
                t.state,
                t.exit_code,
                t.pid,
                t.started_at,
                t.finished_at,
                &t.message
            ),
            (j.id, 1, TaskState::Pending, None, None, None, None, &None),
            "store conformance [{C}]: a new task is PENDING at attempt 1 with no result"
        );
    }

    assert_eq!(
        ok(store.job_detail(j.id).await, C, "job_detail"),
        Some(d.clone()),
        "store conformance [{C}]: job_detail returns what create_job returned"
    );
    assert_eq!(
        ok(store.get_job(j.id).await, C, "get_job"),
        Some(d.job.clone()),
        "store conformance [{C}]: get_job returns the job"
    );

    // A dependency on a later (or its own) stage is invalid, and nothing is stored.
    let before = listed(store, C, of_cluster(fx.cluster.id)).await;
    for bad in [0usize, 1] {
        let invalid = job(
            &fx,
            vec![
                stage(&fx, "install", vec![]),
                stage(&fx, "start", vec![bad + 1]),
            ],
        );
        refused(
            store.create_job(&invalid).await,
            C,
            "a stage waiting for itself or a later stage",
            "Invalid",
            |e| matches!(e, Error::Invalid(_)),
        );
    }
    let after = listed(store, C, of_cluster(fx.cluster.id)).await;
    assert_eq!(
        before, after,
        "store conformance [{C}]: a refused job stores nothing"
    );

    let mut orphan = job(&fx, vec![]);
    orphan.cluster = ClusterId(i64::MAX);
    not_found(
        store.create_job(&orphan).await,
        C,
        "a job on an unknown cluster",
    );
}

/// list_jobs: cluster and state filters, paging with `after` and `limit`, ascending ids.
pub async fn job_queries<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "job_queries";
    let a = fixture(store, C, "jq-a", 1).await;
    let b = fixture(store, C, "jq-b", 1).await;
    let mut a_jobs = Vec::new();
    let mut b_jobs = Vec::new();
    for i in 0..7 {
        // Interleave the clusters so their ids interleave too.
        if i % 3 == 2 {
            b_jobs.push(simple_job(store, C, &b).await.job);
        } else {
            a_jobs.push(simple_job(store, C, &a).await.job);
        }
    }
    assert_eq!(
        listed(store, C, of_cluster(a.cluster.id)).await,
        a_jobs,
        "store conformance [{C}]: list_jobs by cluster gives its jobs by ascending id"
    );
    let all = listed(store, C, JobFilter::default()).await;
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "store conformance [{C}]: list_jobs is ascending by id"
    );
    for j in a_jobs.iter().chain(&b_jobs) {
        assert!(
            all.contains(j),
            "store conformance [{C}]: an empty filter lists every job, missing {}",
            j.id
        );
    }

    // Two of a's jobs run.
    let run = |i: usize| JobChange {
        id: a_jobs[i].id,
        from: JobState::Queued,
        to: JobState::Running,
        at: 10,
    };
    let rule = "QUEUED -> RUNNING applies";
    apply_jobs(store, C, vec![run(1), run(3)], vec![true, true], rule).await;
    let in_states = |states: Vec<JobState>| JobFilter {
        states,
        ..of_cluster(a.cluster.id)
    };
    let running: Vec<JobId> = listed(store, C, in_states(vec![JobState::Running]))
        .await
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        running,
        vec![a_jobs[1].id, a_jobs[3].id],
        "store conformance [{C}]: list_jobs filters by state"
    );
    let either = listed(
        store,
        C,
        in_states(vec![JobState::Queued, JobState::Running]),
    )
    .await;
    assert_eq!(
        either.len(),
        a_jobs.len(),
        "store conformance [{C}]: list_jobs with several states matches any of them"
    );
    let none = listed(store, C, in_states(vec![JobState::Canceled])).await;
    assert!(
        none.is_empty(),
        "store conformance [{C}]: a state no job is in matches nothing"
    );

    // Paging.
    let cluster = a.cluster.id;
    let page = |after, limit| async move {
        let one_page = JobFilter {
            after,
            limit: Some(limit),
            ..of_cluster(cluster)
        };
        store.list_jobs(&one_page).await
    };
    let paged = read_paged(C, 2, page, |j: &Job| j.id).await;
    assert_eq!(
        paged.iter().map(|j| j.id).collect::<Vec<_>>(),
        a_jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        "store conformance [{C}]: paging with after/limit visits every job once, in order"
    );
    let newest = |after, limit| async move {
        let one_page = JobFilter {
            after,
            limit: Some(limit),
            newest_first: true,
            ..of_cluster(cluster)
        };
        store.list_jobs(&one_page).await
    };
    let paged = read_paged(C, 2, newest, |j: &Job| j.id).await;
    assert_eq!(
        paged.iter().map(|j| j.id).collect::<Vec<_>>(),
        a_jobs.iter().rev().map(|j| j.id).collect::<Vec<_>>(),
        "store conformance [{C}]: newest first, paging visits every job once, newest first"
    );
    let zero = JobFilter {
        limit: Some(0),
        ..of_cluster(a.cluster.id)
    };
    let zero = listed(store, C, zero).await;
    assert!(
        zero.is_empty(),
        "store conformance [{C}]: limit 0 gives no jobs"
    );
}

/// apply: compare-and-set per change, stale changes reported and without effect.
pub async fn apply_compare_and_set<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "apply_compare_and_set";
    let (_, d) = fixture_with_job(store, C, "cas", 2).await;
    let (job, st) = (d.job.id, d.stages[0].id);
    let (t0, t1) = (d.tasks[0].id, d.tasks[1].id);

    let empty = ok(store.apply(&Batch::default()).await, C, "apply empty");
    assert!(
        empty.jobs.is_empty() && empty.stages.is_empty() && empty.tasks.is_empty(),
        "store conformance [{C}]: an empty batch applies nothing"
    );

    apply_tasks(
        store,
        C,
        vec![task_change(t0, TaskState::Pending, TaskState::Queued)],
        vec![true],
        "a task change from its current state applies",
    )
    .await;
    assert_eq!(
        task(store, C, job, t0).await.state,
        TaskState::Queued,
        "store conformance [{C}]: an applied task change sets the state"
    );

    let stale = TaskChange {
        message: Some("stale".into()),
        ..task_change(t0, TaskState::Pending, TaskState::Running)
    };
    apply_tasks(
        store,
        C,
        vec![stale],
        vec![false],
        "a task change from a stale state is reported not applied",
    )
    .await;
    let t = task(store, C, job, t0).await;
    assert_eq!(
        (t.state, &t.message),
        (TaskState::Queued, &None),
        "store conformance [{C}]: a stale task change changes nothing"
    );

    let running = TaskChange {
        pid: Some(42),
        started_at: Some(1_000),
        ..task_change(t0, TaskState::Queued, TaskState::Running)
    };
    let wrong = task_change(t1, TaskState::Running, TaskState::Succeeded);
    apply_tasks(
        store,
        C,
        vec![running, wrong],
        vec![true, false],
        "each change of a batch is compared on its own",
    )
    .await;
    let t = task(store, C, job, t0).await;
    assert_eq!(
        (t.state, t.pid, t.started_at),
        (TaskState::Running, Some(42), Some(1_000)),
        "store conformance [{C}]: an applied task change sets its Some fields"
    );
    assert_eq!(
        task(store, C, job, t1).await.state,
        TaskState::Pending,
        "store conformance [{C}]: the skipped change of a batch leaves its task alone"
    );

    let old_attempt = TaskChange {
        attempt_is: Some(2),
        exit_code: Some(0),
        ..task_change(t0, TaskState::Running, TaskState::Succeeded)
    };
    apply_tasks(
        store,
        C,
        vec![old_attempt],
        vec![false],
        "attempt_is of another attempt does not apply",
    )
    .await;
    assert_eq!(
        task(store, C, job, t0).await.exit_code,
        None,
        "store conformance [{C}]: a change guarded by another attempt changes nothing"
    );
    let done = TaskChange {
        attempt_is: Some(1),
        exit_code: Some(0),
        finished_at: Some(2_000),
        ..task_change(t0, TaskState::Running, TaskState::Succeeded)
    };
    apply_tasks(
        store,
        C,
        vec![done],
        vec![true],
        "attempt_is of the current attempt applies",
    )
    .await;
    let t = task(store, C, job, t0).await;
    assert_eq!(
        (
            t.state,
            t.exit_code,
            t.pid,
            t.started_at,
            t.finished_at,
            t.attempt
        ),
        (
            TaskState::Succeeded,
            Some(0),
            Some(42),
            Some(1_000),
            Some(2_000),
            1
        ),
        "store conformance [{C}]: fields left None keep their stored values"
    );

    // The same task twice in one batch: applied in order.
    apply_tasks(
        store,
        C,
        vec![
            task_change(t1, TaskState::Pending, TaskState::Queued),
            task_change(t1, TaskState::Queued, TaskState::Running),
            task_change(t1, TaskState::Queued, TaskState::Failed),
        ],
        vec![true, true, false],
        "changes of one task in a batch apply in batch order",
    )
    .await;
    assert_eq!(
        task(store, C, job, t1).await.state,
        TaskState::Running,
        "store conformance [{C}]: a task changed twice in a batch ends in the last applied state"
    );

    let unknown = task_change(TaskId(i64::MAX), TaskState::Pending, TaskState::Queued);
    apply_tasks(
        store,
        C,
        vec![unknown],
        vec![false],
        "a change of an unknown task is reported not applied",
    )
    .await;

    // Stages and jobs.
    let batch = Batch {
        stages: vec![
            StageChange {
                id: st,
                from: StageState::Pending,
                to: StageState::Running,
            },
            StageChange {
                id: st,
                from: StageState::Pending,
                to: StageState::Succeeded,
            },
        ],
        jobs: vec![
            JobChange {
                id: job,
                from: JobState::Queued,
                to: JobState::Running,
                at: 5,
            },
            JobChange {
                id: job,
                from: JobState::Queued,
                to: JobState::Failed,
                at: 6,
            },
        ],
        ..Batch::default()
    };
    let a = ok(store.apply(&batch).await, C, "apply");
    assert_eq!(
        a.stages,
        vec![true, false],
        "store conformance [{C}]: stage changes are compare-and-set, in batch order"
    );
    assert_eq!(
        a.jobs,
        vec![true, false],
        "store conformance [{C}]: job changes are compare-and-set, in batch order"
    );
    let d = ok(store.job_detail(job).await, C, "job_detail");
    assert_eq!(
        d.as_ref().map(|d| (d.job.state, d.stages[0].state)),
        Some((JobState::Running, StageState::Running)),
        "store conformance [{C}]: applied job and stage changes set their states"
    );
}

/// create_job refuses a task that names a unit or host that does not exist, or a unit on a
/// host other than the task's, on every engine, and keeps nothing of the job.
pub async fn stray_tasks<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "stray_tasks";
    let fx = fixture(store, C, "strays", 2).await;
    let (u0, u1) = (&fx.units[0], &fx.units[1]);
    let before = listed(store, C, of_cluster(fx.cluster.id)).await;
    for (task, why) in [
        (
            NewTask {
                unit: UnitId(i64::MAX),
                host: u0.host,
            },
            "an unknown unit",
        ),
        (
            NewTask {
                unit: u0.id,
                host: HostId(i64::MAX),
            },
            "an unknown host",
        ),
        (
            NewTask {
                unit: u0.id,
                host: u1.host,
            },
            "a unit on another host",
        ),
    ] {
        let mut bad = stage(&fx, "start", vec![]);
        bad.tasks.push(task);
        let r = store
            .create_job(&job(&fx, vec![stage(&fx, "start", vec![]), bad]))
            .await;
        refused(r, C, why, "Invalid", |e| matches!(e, Error::Invalid(_)));
    }
    assert_eq!(
        listed(store, C, of_cluster(fx.cluster.id)).await,
        before,
        "store conformance [{C}]: a refused job leaves nothing behind"
    );
}

/// apply: several changes of one task in a batch (a store may write them as one) end as the
/// batch's order says, field by field, even when one of them is refused; and so do hundreds
/// of such tasks in one batch.
pub async fn apply_chains<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "apply_chains";
    // A message is whatever a script or an agent said: quotes, escapes, lines, any character.
    const DONE: &str = "done: \"q\" 'it' \\ {x}\n\t\u{2028}ünï 🚀 a\0b";
    const DONE_STORED: &str = "done: \"q\" 'it' \\ {x}\n\t\u{2028}ünï 🚀 a\u{FFFD}b";
    let (_, d) = fixture_with_job(store, C, "chains", 2).await;
    let (chains, t0, t1) = (d.job.id, d.tasks[0].id, d.tasks[1].id);
    let guarded = |id, from, to, attempt| TaskChange {
        attempt_is: Some(attempt),
        ..task_change(id, from, to)
    };

    apply_tasks(
        store,
        C,
        vec![
            guarded(t0, TaskState::Pending, TaskState::Queued, 1),
            TaskChange {
                pid: Some(7),
                started_at: Some(100),
                message: Some("started".into()),
                ..guarded(t0, TaskState::Queued, TaskState::Running, 1)
            },
            TaskChange {
                exit_code: Some(0),
                finished_at: Some(200),
                message: Some(DONE.into()),
                ..guarded(t0, TaskState::Running, TaskState::Succeeded, 1)
            },
        ],
        vec![true, true, true],
        "a task's changes that follow each other all apply",
    )
    .await;
    assert_eq!(
        attempt_of(&task(store, C, chains, t0).await),
        (
            TaskState::Succeeded,
            1,
            Some(0),
            Some(7),
            Some(100),
            Some(200),
            Some(DONE_STORED)
        ),
        "store conformance [{C}]: following changes leave each field as the last that set it, \
         and a message as it came (a NUL as U+FFFD)"
    );

    apply_tasks(
        store,
        C,
        vec![
            TaskChange {
                set_attempt: Some(2),
                clear_result: true,
                ..task_change(t0, TaskState::Succeeded, TaskState::Pending)
            },
            guarded(t0, TaskState::Pending, TaskState::Queued, 2),
            TaskChange {
                pid: Some(8),
                ..guarded(t0, TaskState::Queued, TaskState::Running, 2)
            },
        ],
        vec![true, true, true],
        "a retry and the new attempt's changes after it all apply",
    )
    .await;
    assert_eq!(
        attempt_of(&task(store, C, chains, t0).await),
        (TaskState::Running, 2, None, Some(8), None, None, None),
        "store conformance [{C}]: a retry clears the old result before the changes after it"
    );

    apply_tasks(
        store,
        C,
        vec![
            TaskChange {
                set_attempt: Some(3),
                clear_result: true,
                ..task_change(t0, TaskState::Running, TaskState::Pending)
            },
            guarded(t0, TaskState::Pending, TaskState::Queued, 2),
        ],
        vec![true, false],
        "a change guarded by the attempt a retry before it left does not apply",
    )
    .await;
    assert_eq!(
        attempt_of(&task(store, C, chains, t0).await).0,
        TaskState::Pending,
        "store conformance [{C}]: a refused change after a retry leaves the retried task"
    );

    apply_tasks(
        store,
        C,
        vec![
            task_change(t1, TaskState::Pending, TaskState::Queued),
            task_change(t1, TaskState::Queued, TaskState::Running),
        ],
        vec![true, true],
        "two following changes apply",
    )
    .await;
    apply_tasks(
        store,
        C,
        vec![
            TaskChange {
                message: Some("late".into()),
                ..task_change(t1, TaskState::Queued, TaskState::Running)
            },
            TaskChange {
                exit_code: Some(0),
                ..task_change(t1, TaskState::Running, TaskState::Succeeded)
            },
        ],
        vec![false, true],
        "a refused change does not take the changes after it with it",
    )
    .await;
    let t = task(store, C, chains, t1).await;
    assert_eq!(
        (t.state, t.exit_code, t.message.as_deref()),
        (TaskState::Succeeded, Some(0), None),
        "store conformance [{C}]: after a refused change the next one applies alone"
    );

    // Many tasks (past any statement's chunk: 500 rows on SQLite, 1 000 on PostgreSQL), their changes interleaved: even tasks
    // queue and start, odd ones start too early (refused), then queue.
    let fx = fixture(store, C, "chains-many", 2).await;
    let stages = (0..600).map(|_| stage(&fx, "start", vec![])).collect();
    let d = ok(store.create_job(&job(&fx, stages)).await, C, "create job");
    let (mut changes, mut want) = (Vec::new(), Vec::new());
    for (i, t) in d.tasks.iter().enumerate() {
        let first = if i.is_multiple_of(2) {
            task_change(t.id, TaskState::Pending, TaskState::Queued)
        } else {
            task_change(t.id, TaskState::Queued, TaskState::Running)
        };
        changes.push(first);
        want.push(i.is_multiple_of(2));
    }
    for (i, t) in d.tasks.iter().enumerate() {
        let second = if i.is_multiple_of(2) {
            TaskChange {
                pid: Some(u32::try_from(i).unwrap_or(u32::MAX)),
                ..task_change(t.id, TaskState::Queued, TaskState::Running)
            }
        } else {
            task_change(t.id, TaskState::Pending, TaskState::Queued)
        };
        changes.push(second);
        want.push(true);
    }
    apply_tasks(
        store,
        C,
        changes,
        want,
        "each of many tasks' changes is reported as applied or refused in batch order",
    )
    .await;
    let detail = ok(store.job_detail(d.job.id).await, C, "job_detail");
    let Some(detail) = detail else {
        panic!("store conformance [{C}]: job {} vanished", d.job.id);
    };
    assert_eq!(
        detail.tasks.len(),
        1200,
        "store conformance [{C}]: the job has a task per unit and stage"
    );
    let index: std::collections::HashMap<TaskId, usize> =
        d.tasks.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
    for t in &detail.tasks {
        let i = index[&t.id];
        let want = if i.is_multiple_of(2) {
            (TaskState::Running, u32::try_from(i).ok())
        } else {
            (TaskState::Queued, None)
        };
        assert_eq!(
            (t.state, t.pid),
            want,
            "store conformance [{C}]: task {i} of many ends as its changes in batch order say"
        );
    }
}

/// apply: a retry sets the next attempt and clears the old result; late events of the old
/// attempt are refused.
pub async fn apply_retry<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "apply_retry";
    let (_, d) = fixture_with_job(store, C, "retry", 1).await;
    let (job, t0) = (d.job.id, d.tasks[0].id);
    let run = vec![
        task_change(t0, TaskState::Pending, TaskState::Queued),
        TaskChange {
            pid: Some(7),
            started_at: Some(100),
            ..task_change(t0, TaskState::Queued, TaskState::Running)
        },
        TaskChange {
            exit_code: Some(3),
            finished_at: Some(200),
            message: Some("boom".into()),
            ..task_change(t0, TaskState::Running, TaskState::Failed)
        },
    ];
    apply_tasks(store, C, run, vec![true; 3], "a task runs to FAILED").await;

    let retry = TaskChange {
        attempt_is: Some(1),
        set_attempt: Some(2),
        clear_result: true,
        ..task_change(t0, TaskState::Failed, TaskState::Pending)
    };
    apply_tasks(store, C, vec![retry], vec![true], "a retry applies").await;
    assert_eq!(
        attempt_of(&task(store, C, job, t0).await),
        (TaskState::Pending, 2, None, None, None, None, None),
        "store conformance [{C}]: set_attempt + clear_result start a clean new attempt"
    );

    let late = TaskChange {
        attempt_is: Some(1),
        ..task_change(t0, TaskState::Pending, TaskState::Running)
    };
    apply_tasks(
        store,
        C,
        vec![late],
        vec![false],
        "a late event of the old attempt does not apply",
    )
    .await;

    let again = TaskChange {
        attempt_is: Some(2),
        clear_result: true,
        started_at: Some(300),
        message: Some("second try".into()),
        ..task_change(t0, TaskState::Pending, TaskState::Running)
    };
    apply_tasks(
        store,
        C,
        vec![again],
        vec![true],
        "a change of the new attempt applies",
    )
    .await;
    assert_eq!(
        attempt_of(&task(store, C, job, t0).await),
        (
            TaskState::Running,
            2,
            None,
            None,
            Some(300),
            None,
            Some("second try")
        ),
        "store conformance [{C}]: clear_result clears first, then the Some fields are set"
    );
}

/// apply: a job's started_at is set on its first RUNNING, finished_at on a final state and
/// cleared on any other.
pub async fn job_times<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "job_times";
    let fx = fixture(store, C, "times", 1).await;
    let id = simple_job(store, C, &fx).await.job.id;
    let steps = [
        (JobState::Queued, JobState::Running, 100, Some(100), None),
        (JobState::Running, JobState::Paused, 150, Some(100), None),
        (JobState::Paused, JobState::Running, 200, Some(100), None),
        (
            JobState::Running,
            JobState::Failed,
            300,
            Some(100),
            Some(300),
        ),
        (JobState::Failed, JobState::Running, 400, Some(100), None),
        (JobState::Running, JobState::Canceling, 450, Some(100), None),
        (
            JobState::Canceling,
            JobState::Canceled,
            500,
            Some(100),
            Some(500),
        ),
    ];
    for (from, to, at, started, finished) in steps {
        let rule = format!("job {from} -> {to} applies");
        apply_jobs(
            store,
            C,
            vec![JobChange { id, from, to, at }],
            vec![true],
            &rule,
        )
        .await;
        let j = job_of(store, C, id).await;
        assert_eq!(
            (j.state, j.started_at, j.finished_at),
            (to, started, finished),
            "store conformance [{C}]: after {from} -> {to} at {at}: started_at is the first \
             RUNNING, finished_at is set only in a final state"
        );
    }
    let stale = JobChange {
        id,
        from: JobState::Running,
        to: JobState::Succeeded,
        at: 999,
    };
    let rule = "a stale job change is reported not applied";
    apply_jobs(store, C, vec![stale], vec![false], rule).await;
    let j = job_of(store, C, id).await;
    assert_eq!(
        (j.state, j.started_at, j.finished_at),
        (JobState::Canceled, Some(100), Some(500)),
        "store conformance [{C}]: a stale job change leaves state and times alone"
    );
}

/// apply: unit states are set without compare; logs are appended and read back in order, all
/// of them or those after a line.
pub async fn units_and_logs<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "units_and_logs";
    let (fx, d) = fixture_with_job(store, C, "ul", 2).await;
    let (t0, t1) = (d.tasks[0].id, d.tasks[1].id);
    let (u0, u1) = (fx.units[0].id, fx.units[1].id);

    let batch = Batch {
        units: vec![
            (u0, UnitState::Installed),
            (u1, UnitState::Failed),
            (u0, UnitState::Started),
        ],
        ..Batch::default()
    };
    ok(store.apply(&batch).await, C, "apply units");
    let states: Vec<(UnitId, UnitState)> = ok(store.list_units(fx.cluster.id).await, C, "units")
        .into_iter()
        .map(|u| (u.id, u.state))
        .collect();
    assert_eq!(
        states,
        vec![(u0, UnitState::Started), (u1, UnitState::Failed)],
        "store conformance [{C}]: unit states are set, the last one given for a unit wins"
    );

    let line = |attempt: u32, seq: u64, stream: LogStream| LogLine {
        task: t0,
        attempt,
        seq,
        stream,
        at: 1_000 + seq as i64,
        line: format!("attempt {attempt} line {seq}"),
    };
    // Out of order, across two batches; the second also carries a stale task change.
    let first = Batch {
        logs: vec![
            line(2, 1, LogStream::Stdout),
            line(1, 2, LogStream::Stderr),
            line(1, 0, LogStream::Stdout),
        ],
        ..Batch::default()
    };
    ok(store.apply(&first).await, C, "apply logs");
    let second = Batch {
        tasks: vec![task_change(t0, TaskState::Running, TaskState::Failed)],
        logs: vec![line(2, 0, LogStream::Stderr), line(1, 1, LogStream::Stdout)],
        ..Batch::default()
    };
    let a = ok(store.apply(&second).await, C, "apply logs");
    assert_eq!(
        a.tasks,
        vec![false],
        "store conformance [{C}]: the stale change is reported not applied"
    );
    let all = ok(store.task_log(t0, None).await, C, "task_log");
    assert_eq!(
        all,
        vec![
            line(1, 0, LogStream::Stdout),
            line(1, 1, LogStream::Stdout),
            line(1, 2, LogStream::Stderr),
            line(2, 0, LogStream::Stderr),
            line(2, 1, LogStream::Stdout),
        ],
        "store conformance [{C}]: task_log gives every line (even from a batch with a stale \
         change), by attempt then line number"
    );
    assert_eq!(
        ok(store.task_log(t0, Some(2)).await, C, "task_log"),
        vec![line(2, 0, LogStream::Stderr), line(2, 1, LogStream::Stdout)],
        "store conformance [{C}]: task_log with an attempt gives only that attempt's lines"
    );
    assert_eq!(
        ok(store.task_log(t0, Some(3)).await, C, "task_log"),
        vec![],
        "store conformance [{C}]: task_log of an attempt without output is empty"
    );
    assert_eq!(
        ok(store.task_log(t1, None).await, C, "task_log"),
        vec![],
        "store conformance [{C}]: task_log gives only that task's lines"
    );
    assert_eq!(
        ok(
            store.task_log_after(t0, Some((1, 1)), 10).await,
            C,
            "task_log_after"
        ),
        all[2..].to_vec(),
        "store conformance [{C}]: task_log_after gives the lines after the one named, the next \
         attempts' too"
    );
    assert_eq!(
        ok(store.task_log_after(t0, None, 2).await, C, "task_log_after"),
        all[..2].to_vec(),
        "store conformance [{C}]: task_log_after without a line starts at the first, and gives \
         at most `limit` lines"
    );
    assert_eq!(
        ok(
            store.task_log_after(t0, Some((2, 1)), 10).await,
            C,
            "task_log_after"
        ),
        vec![],
        "store conformance [{C}]: task_log_after the last line is empty"
    );
    assert_eq!(
        ok(
            store.task_log_after(t1, None, 10).await,
            C,
            "task_log_after"
        ),
        vec![],
        "store conformance [{C}]: task_log_after gives only that task's lines"
    );

    // Output is anything a script prints: a NUL is kept as U+FFFD (no engine may refuse it).
    let nul = LogLine {
        task: t1,
        attempt: 1,
        seq: 0,
        stream: LogStream::Stdout,
        at: 5_000,
        line: "bin\0ary".into(),
    };
    ok(
        store
            .apply(&Batch {
                logs: vec![nul.clone()],
                ..Batch::default()
            })
            .await,
        C,
        "apply a line with a NUL",
    );
    assert_eq!(
        ok(store.task_log(t1, None).await, C, "task_log"),
        vec![LogLine {
            line: "bin\u{FFFD}ary".into(),
            ..nul
        }],
        "store conformance [{C}]: a NUL in output is stored as U+FFFD"
    );
}

/// Two `apply` calls racing the same transitions: exactly one wins each.
pub async fn concurrent_apply<S: ClusterServices + JobStore + ?Sized>(store: &S) {
    const C: &str = "concurrent_apply";
    let (fx, d) = fixture_with_job(store, C, "race", 20).await;

    // One task at a time, two different targets.
    for t in &d.tasks {
        let queue = tasks_batch(vec![task_change(
            t.id,
            TaskState::Pending,
            TaskState::Queued,
        )]);
        let cancel = tasks_batch(vec![task_change(
            t.id,
            TaskState::Pending,
            TaskState::Canceled,
        )]);
        let (a, b) = tokio::join!(store.apply(&queue), store.apply(&cancel));
        let (a, b) = (ok(a, C, "apply"), ok(b, C, "apply"));
        assert!(
            a.tasks[0] ^ b.tasks[0],
            "store conformance [{C}]: exactly one of two racing changes of task {} must apply, \
             got {} and {}",
            t.id,
            a.tasks[0],
            b.tasks[0]
        );
        let want = if a.tasks[0] {
            TaskState::Queued
        } else {
            TaskState::Canceled
        };
        assert_eq!(
            task(store, C, d.job.id, t.id).await.state,
            want,
            "store conformance [{C}]: the task ends in the winner's state"
        );
    }

    // Whole batches racing over the same tasks, in opposite orders.
    let d = simple_job(store, C, &fx).await;
    // Each batch queues every task, marking it with the batch's pid.
    let queue_all = |pid| -> Vec<TaskChange> {
        d.tasks
            .iter()
            .map(|t| TaskChange {
                pid: Some(pid),
                ..task_change(t.id, TaskState::Pending, TaskState::Queued)
            })
            .collect()
    };
    let forward = queue_all(1);
    let mut backward = queue_all(2);
    backward.reverse();
    let jobs = |at| {
        vec![JobChange {
            id: d.job.id,
            from: JobState::Queued,
            to: JobState::Running,
            at,
        }]
    };
    let fb = Batch {
        jobs: jobs(1),
        tasks: forward,
        ..Batch::default()
    };
    let bb = Batch {
        jobs: jobs(2),
        tasks: backward,
        ..Batch::default()
    };
    let (a, b) = tokio::join!(store.apply(&fb), store.apply(&bb));
    let (a, b) = (ok(a, C, "apply"), ok(b, C, "apply"));
    assert!(
        a.jobs[0] ^ b.jobs[0],
        "store conformance [{C}]: exactly one of two racing job changes must apply"
    );
    let detail = ok(store.job_detail(d.job.id).await, C, "job_detail");
    let Some(detail) = detail else {
        panic!("store conformance [{C}]: job vanished");
    };
    let n = d.tasks.len();
    for (i, t) in detail.tasks.iter().enumerate() {
        let (wa, wb) = (a.tasks[i], b.tasks[n - 1 - i]);
        assert!(
            wa ^ wb,
            "store conformance [{C}]: exactly one of two racing batches must move task {}",
            t.id
        );
        assert_eq!(
            t.pid,
            Some(if wa { 1 } else { 2 }),
            "store conformance [{C}]: task {} carries the winning batch's fields",
            t.id
        );
    }
}

fn task_change(id: TaskId, from: TaskState, to: TaskState) -> TaskChange {
    TaskChange {
        id,
        from,
        to,
        ..TaskChange::default()
    }
}

fn tasks_batch(changes: Vec<TaskChange>) -> Batch {
    Batch {
        tasks: changes,
        ..Batch::default()
    }
}

/// A task's state, attempt and what its attempt left: exit code, pid, start, finish, message.
type Attempt<'a> = (
    TaskState,
    u32,
    Option<i32>,
    Option<u32>,
    Option<i64>,
    Option<i64>,
    Option<&'a str>,
);

/// See [`Attempt`].
fn attempt_of(t: &Task) -> Attempt<'_> {
    (
        t.state,
        t.attempt,
        t.exit_code,
        t.pid,
        t.started_at,
        t.finished_at,
        t.message.as_deref(),
    )
}

/// Applies task changes as one batch, asserting which of them apply; `rule` says what that
/// checks.
async fn apply_tasks<S: JobStore + ?Sized>(
    store: &S,
    check: &str,
    changes: Vec<TaskChange>,
    want: Vec<bool>,
    rule: &str,
) {
    let a = ok(store.apply(&tasks_batch(changes)).await, check, "apply");
    assert_eq!(a.tasks, want, "store conformance [{check}]: {rule}");
}

async fn task<S: JobStore + ?Sized>(store: &S, check: &str, job: JobId, id: TaskId) -> Task {
    let detail = ok(store.job_detail(job).await, check, "job_detail");
    let Some(detail) = detail else {
        panic!("store conformance [{check}]: job {job} vanished");
    };
    match detail.tasks.into_iter().find(|t| t.id == id) {
        Some(t) => t,
        None => panic!("store conformance [{check}]: task {id} missing from its job {job}"),
    }
}

/// The jobs `filter` lists.
async fn listed<S: JobStore + ?Sized>(store: &S, check: &str, filter: JobFilter) -> Vec<Job> {
    ok(store.list_jobs(&filter).await, check, "list_jobs")
}

/// A filter of one cluster's jobs.
fn of_cluster(cluster: ClusterId) -> JobFilter {
    JobFilter {
        cluster: Some(cluster),
        ..JobFilter::default()
    }
}

async fn job_of<S: JobStore + ?Sized>(store: &S, check: &str, id: JobId) -> Job {
    match ok(store.get_job(id).await, check, "get_job") {
        Some(j) => j,
        None => panic!("store conformance [{check}]: job {id} vanished"),
    }
}

/// Getters of unknown job ids give `Ok(None)`; lists of an unknown cluster or task are empty.
pub async fn unknown_ids<S: JobStore + ?Sized>(store: &S) {
    const C: &str = "jobs::unknown_ids";
    let nc = ClusterId(i64::MAX);
    none(
        store.get_job(JobId(i64::MAX)).await,
        C,
        "get_job of an unknown id is None",
    );
    none(
        store.job_detail(JobId(i64::MAX)).await,
        C,
        "job_detail of an unknown id is None",
    );
    assert!(
        listed(store, C, of_cluster(nc)).await.is_empty(),
        "store conformance [{C}]: lists of an unknown cluster are empty"
    );
    assert_eq!(
        ok(store.task_log(TaskId(i64::MAX), None).await, C, "task_log"),
        vec![],
        "store conformance [{C}]: task_log of an unknown task is empty"
    );
}
