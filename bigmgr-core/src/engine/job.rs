//! Job semantics on one loaded job: task transitions and their unit effects, stage and job
//! states derived from task states (docs/design.md §6), and task specs for dispatch.

use super::{Active, Update};
use crate::model::{JobState, StageState, TaskState, UnitState, now_ms};
use crate::sched::JobRun;
use crate::store::{Batch, StageChange, TaskChange};
use crate::transport::limits::MAX_TASK_PAYLOAD;
use crate::transport::{TaskResult, TaskSpec, ToAgent};
use std::sync::Arc;

/// Moves task `i` from its state to `to` (a final state gets its finish time and `message`).
pub(super) fn set_task(
    a: &mut Active,
    batch: &mut Batch,
    published: &mut Vec<Update>,
    i: usize,
    to: TaskState,
    message: Option<String>,
) {
    let t = &mut a.run.tasks[i].task;
    if t.state == to {
        return;
    }
    let finished_at = to.is_final().then(now_ms);
    batch.tasks.push(TaskChange {
        id: t.id,
        from: t.state,
        to,
        attempt_is: Some(t.attempt),
        finished_at,
        message: message.clone(),
        ..TaskChange::default()
    });
    if finished_at.is_some() {
        t.finished_at = finished_at;
    }
    if message.is_some() {
        t.message = message;
    }
    published.push(Update::Task {
        job: t.job,
        task: t.id,
        state: to,
    });
    a.run.set_task_state(i, to);
}

/// Records an agent's result for task `i`, updates its unit, and retries a failed script if
/// its command allows more attempts.
pub(super) fn finish_task(
    a: &mut Active,
    batch: &mut Batch,
    published: &mut Vec<Update>,
    i: usize,
    r: &TaskResult,
) {
    let stage = a.run.tasks[i].stage;
    let t = &mut a.run.tasks[i].task;
    batch.tasks.push(TaskChange {
        id: t.id,
        from: t.state,
        to: r.state,
        attempt_is: Some(t.attempt),
        exit_code: r.exit_code,
        pid: r.pid,
        started_at: if t.started_at.is_none() {
            r.started_at
        } else {
            None
        },
        finished_at: Some(r.finished_at),
        message: r.message.clone(),
        ..TaskChange::default()
    });
    t.exit_code = r.exit_code;
    t.pid = r.pid.or(t.pid);
    t.started_at = t.started_at.or(r.started_at);
    t.finished_at = Some(r.finished_at);
    t.message = r.message.clone();
    let (task, job, unit) = (t.id, t.job, t.unit);
    published.push(Update::Task {
        job,
        task,
        state: r.state,
    });
    a.run.set_task_state(i, r.state);

    let command = a.run.stages[stage].stage.command.as_str();
    if let Some(state) = unit_state_after(command, r.state) {
        batch.units.push((unit, state));
    }
    if r.state == TaskState::Succeeded
        && let Ok(exec) = &a.exec[stage]
        && exec.renders
        && let Ok(topo) = &a.topology
        && let Some(u) = topo.unit(unit)
        && let Some(svc) = topo.service(u.service)
        && let Ok(hash) = topo.applied_hash(u)
    {
        batch
            .applied_configs
            .push((unit, svc.instance.config_version, hash));
    }

    let running = a.run.job.state == JobState::Running;
    if r.state == TaskState::Failed && r.outcome_unknown {
        // Lost with its host: run again if the command is safe to re-run, up to
        // LOST_RERUNS times (a script failure's `retries` budget is not spent on it).
        let rerun = a.exec[stage].as_ref().is_ok_and(|e| e.rerun_if_lost);
        let used = a.lost_reruns.entry(i).or_default();
        if rerun && *used < LOST_RERUNS && running {
            *used += 1;
            tracing::warn!(task = %task, attempt = *used, "run lost with its host: running it again");
            new_attempt(a, batch, published, i);
        }
        return;
    }
    let retries = a.exec[stage].as_ref().map(|e| e.retries).unwrap_or(0);
    let used = a.auto_retries.entry(i).or_default();
    if r.state == TaskState::Failed && *used < retries && running {
        *used += 1;
        new_attempt(a, batch, published, i);
    }
}

/// How often a task whose run was lost with its host is run again (docs/design.md §6: lost
/// transport is retried up to 3 times), if its command allows (`rerun_if_lost`).
pub(super) const LOST_RERUNS: u32 = 3;

/// Puts ended task `i` back to PENDING as a new attempt, its result cleared (a retry: the
/// agent sees a new run id, so it runs again; the old attempt's log stays).
pub(super) fn new_attempt(
    a: &mut Active,
    batch: &mut Batch,
    published: &mut Vec<Update>,
    i: usize,
) {
    let t = &mut a.run.tasks[i].task;
    let (from, attempt) = (t.state, t.attempt);
    batch.tasks.push(TaskChange {
        id: t.id,
        from,
        to: TaskState::Pending,
        attempt_is: Some(attempt),
        set_attempt: Some(attempt + 1),
        clear_result: true,
        ..TaskChange::default()
    });
    t.attempt = attempt + 1;
    t.exit_code = None;
    t.pid = None;
    t.started_at = None;
    t.finished_at = None;
    t.message = None;
    published.push(Update::Task {
        job: t.job,
        task: t.id,
        state: TaskState::Pending,
    });
    a.run.set_task_state(i, TaskState::Pending);
}

/// The unit state a command's result leads to, if it changes it.
fn unit_state_after(command: &str, result: TaskState) -> Option<UnitState> {
    match result {
        TaskState::Succeeded => match command {
            "install" => Some(UnitState::Installed),
            "start" | "restart" => Some(UnitState::Started),
            "stop" => Some(UnitState::Stopped),
            "remove" => Some(UnitState::Removed),
            _ => None,
        },
        TaskState::Failed | TaskState::TimedOut => match command {
            "install" | "configure" | "start" | "stop" | "restart" | "remove" => {
                Some(UnitState::Failed)
            }
            _ => None,
        },
        _ => None,
    }
}

/// Marks task `i` QUEUED and builds its spec; a stage whose command could not be resolved fails
/// the task instead.
pub(super) fn dispatch(
    a: &mut Active,
    batch: &mut Batch,
    published: &mut Vec<Update>,
    i: usize,
) -> Option<(Arc<str>, TaskSpec)> {
    let stage = a.run.tasks[i].stage;
    if let Err(why) = &a.exec[stage] {
        let why = why.clone();
        set_task(a, batch, published, i, TaskState::Failed, Some(why));
        return None;
    }
    let out = match spec(a, i) {
        Ok(out) => out,
        Err(why) => {
            set_task(a, batch, published, i, TaskState::Failed, Some(why));
            return None;
        }
    };
    let t = &a.run.tasks[i].task;
    batch.tasks.push(TaskChange {
        id: t.id,
        from: TaskState::Pending,
        to: TaskState::Queued,
        attempt_is: Some(t.attempt),
        ..TaskChange::default()
    });
    published.push(Update::Task {
        job: t.job,
        task: t.id,
        state: TaskState::Queued,
    });
    a.run.set_task_state(i, TaskState::Queued);
    Some(out)
}

/// The spec of task `i`'s current attempt, and its host's name; why not, if it can't be built.
pub(super) fn spec(a: &Active, i: usize) -> Result<(Arc<str>, TaskSpec), String> {
    let tr = &a.run.tasks[i];
    let exec = a.exec[tr.stage].as_ref().map_err(Clone::clone)?;
    let host = a.hosts.get(&tr.task.host).ok_or_else(|| {
        format!(
            "host {} of task {} no longer exists",
            tr.task.host, tr.task.id
        )
    })?;
    let (files, context) = if exec.contextual {
        let topo = a.topology.as_ref().map_err(Clone::clone)?;
        let unit = topo.unit(tr.task.unit).ok_or_else(|| {
            format!(
                "unit {} of task {} no longer exists",
                tr.task.unit, tr.task.id
            )
        })?;
        let mut context = topo.context(unit)?;
        let svc = topo.service(unit.service);
        let files = match svc {
            Some(svc) if exec.renders => svc.templates.render(&context)?,
            _ => Vec::new(),
        };
        // The unit's alert checks ride along; the agent keeps them in the unit's record.
        let checks = topo.checks(unit, &context);
        if let (Some(ctx), Ok(checks)) = (context.as_object_mut(), serde_json::to_value(checks)) {
            ctx.insert("checks".into(), checks);
        }
        (files, context)
    } else {
        (Vec::new(), serde_json::Value::Object(Default::default()))
    };
    let spec = TaskSpec {
        run: tr.task.run_id(),
        job: tr.task.job,
        cluster: a.cluster.to_string(),
        service: exec.service.clone(),
        service_def: exec.service_def.clone(),
        component: exec.component.clone(),
        command: exec.command.clone(),
        host: host.name.clone(),
        address: host.address.clone(),
        script: exec.script.clone(),
        timeout: exec.timeout,
        env: Default::default(),
        files,
        context,
        status: exec.status,
    };
    // A task too big for one message would break its agent's session at every delivery.
    let payload = spec.script.content.len()
        + spec
            .files
            .iter()
            .map(|f| f.path.len() + f.content.len())
            .sum::<usize>()
        + if exec.contextual {
            serde_json::to_vec(&spec.context).map_or(0, |v| v.len())
        } else {
            0
        };
    if payload > MAX_TASK_PAYLOAD {
        return Err(format!(
            "the task's script, rendered config files and context take {payload} bytes; at \
             most {MAX_TASK_PAYLOAD} fit in one message to the agent: make the script {} or \
             the templates of service {} smaller",
            exec.script.name, exec.service_def
        ));
    }
    Ok((host.name.as_str().into(), spec))
}

/// Derives stage states from task counts, in topological order: a stage with more failures
/// than the job tolerates FAILS and cancels everything downstream; a stage whose tasks all
/// ended SUCCEEDS (or is CANCELED if some were cancelled); a stage with work under way RUNS.
pub(super) fn derive(
    a: &mut Active,
    batch: &mut Batch,
    published: &mut Vec<Update>,
    outbox: &mut Vec<(Arc<str>, ToAgent)>,
) {
    let tolerance = a.run.job.options.failure_tolerance as usize;
    for s in 0..a.run.stages.len() {
        let st = &a.run.stages[s];
        if st.stage.state.is_final() {
            continue;
        }
        let c = st.counts;
        if c.failed > tolerance {
            set_stage(&mut a.run, batch, s, StageState::Failed);
            cancel_stage_tasks(a, batch, published, outbox, s);
            for d in a.run.downstream(s) {
                if !a.run.stages[d].stage.state.is_final() {
                    set_stage(&mut a.run, batch, d, StageState::Canceled);
                    cancel_stage_tasks(a, batch, published, outbox, d);
                }
            }
        } else if c.all_final() {
            let to = if c.canceled > 0 {
                StageState::Canceled
            } else {
                StageState::Succeeded
            };
            set_stage(&mut a.run, batch, s, to);
        } else if st.stage.state == StageState::Pending && c.pending < st.tasks.len() {
            set_stage(&mut a.run, batch, s, StageState::Running);
        }
    }
}

fn set_stage(run: &mut JobRun, batch: &mut Batch, s: usize, to: StageState) {
    let st = &mut run.stages[s].stage;
    if st.state != to {
        batch.stages.push(StageChange {
            id: st.id,
            from: st.state,
            to,
        });
        st.state = to;
    }
}

/// Cancels the pending tasks of stage `s` and tells agents to stop its in-flight ones.
fn cancel_stage_tasks(
    a: &mut Active,
    batch: &mut Batch,
    published: &mut Vec<Update>,
    outbox: &mut Vec<(Arc<str>, ToAgent)>,
    s: usize,
) {
    for k in 0..a.run.stages[s].tasks.len() {
        let i = a.run.stages[s].tasks[k];
        let t = &a.run.tasks[i].task;
        match t.state {
            TaskState::Pending => set_task(
                a,
                batch,
                published,
                i,
                TaskState::Canceled,
                Some("an upstream stage failed".into()),
            ),
            // Siblings of a failed task finish; downstream tasks already under way
            // (pipelined jobs) are stopped.
            TaskState::Queued | TaskState::Running
                if a.run.stages[s].stage.state == StageState::Canceled =>
            {
                if let Some(h) = a.hosts.get(&t.host) {
                    outbox.push((h.name.as_str().into(), ToAgent::Cancel(t.run_id())));
                }
            }
            _ => {}
        }
    }
}

/// The job's final state, once nothing is in flight and every stage has ended; a paused job
/// stays paused until resumed.
pub(super) fn outcome(run: &JobRun) -> Option<JobState> {
    if run.in_flight > 0 || !matches!(run.job.state, JobState::Running | JobState::Canceling) {
        return None;
    }
    if !run.stages.iter().all(|s| s.stage.state.is_final()) {
        return None;
    }
    if run
        .stages
        .iter()
        .any(|s| s.stage.state == StageState::Failed)
    {
        Some(JobState::Failed)
    } else if run.job.state == JobState::Canceling
        || run
            .stages
            .iter()
            .any(|s| s.stage.state == StageState::Canceled)
    {
        Some(JobState::Canceled)
    } else {
        Some(JobState::Succeeded)
    }
}
