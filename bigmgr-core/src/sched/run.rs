//! The in-memory view of one job the engine runs and the scheduler reads: stages, tasks and
//! per-stage counts, kept in step by [`JobRun::set_task_state`].

use crate::model::{HostId, Job, JobDetail, Stage, StageState, Task, TaskState};
use std::collections::HashMap;

/// How many tasks of a stage are in each group of states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// PENDING.
    pub pending: usize,
    /// QUEUED or RUNNING.
    pub in_flight: usize,
    /// SUCCEEDED.
    pub succeeded: usize,
    /// FAILED or TIMED_OUT.
    pub failed: usize,
    /// CANCELED.
    pub canceled: usize,
}

impl Counts {
    fn slot(&mut self, state: TaskState) -> &mut usize {
        match state {
            TaskState::Pending => &mut self.pending,
            TaskState::Queued | TaskState::Running => &mut self.in_flight,
            TaskState::Succeeded => &mut self.succeeded,
            TaskState::Failed | TaskState::TimedOut => &mut self.failed,
            TaskState::Canceled => &mut self.canceled,
        }
    }

    /// Every task of the stage has ended.
    pub fn all_final(&self) -> bool {
        self.pending == 0 && self.in_flight == 0
    }
}

/// One stage of a running job.
#[derive(Debug, Clone)]
pub struct StageRun {
    /// The stage as stored.
    pub stage: Stage,
    /// Indexes (into [`JobRun::stages`]) of the stages it waits for.
    pub after: Vec<usize>,
    /// Indexes (into [`JobRun::tasks`]) of its tasks, in planned order.
    pub tasks: Vec<usize>,
    /// Its tasks' states, counted.
    pub counts: Counts,
    /// Its tasks by host (for pipelined stages).
    pub by_host: HashMap<HostId, usize>,
}

/// One task of a running job.
#[derive(Debug, Clone)]
pub struct TaskRun {
    /// The task as stored.
    pub task: Task,
    /// Index of its stage in [`JobRun::stages`].
    pub stage: usize,
}

/// A job with its stages and tasks, as the engine holds it while it runs.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The job as stored.
    pub job: Job,
    /// Its stages, by seq (a topological order).
    pub stages: Vec<StageRun>,
    /// Its tasks.
    pub tasks: Vec<TaskRun>,
    /// Tasks QUEUED or RUNNING, per host.
    pub busy_hosts: HashMap<HostId, usize>,
    /// Tasks QUEUED or RUNNING in the whole job.
    pub in_flight: usize,
}

impl JobRun {
    /// Builds the view of a loaded job.
    pub fn new(detail: JobDetail) -> JobRun {
        let JobDetail { job, stages, tasks } = detail;
        let pos: HashMap<_, _> = stages.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        let mut stages: Vec<StageRun> = stages
            .into_iter()
            .map(|stage| StageRun {
                after: stage
                    .after
                    .iter()
                    .filter_map(|a| pos.get(a).copied())
                    .collect(),
                stage,
                tasks: Vec::new(),
                counts: Counts::default(),
                by_host: HashMap::new(),
            })
            .collect();
        let mut run = JobRun {
            job,
            stages: Vec::new(),
            tasks: Vec::with_capacity(tasks.len()),
            busy_hosts: HashMap::new(),
            in_flight: 0,
        };
        for task in tasks {
            let Some(&s) = pos.get(&task.stage) else {
                continue;
            };
            let i = run.tasks.len();
            stages[s].tasks.push(i);
            stages[s].by_host.insert(task.host, i);
            *stages[s].counts.slot(task.state) += 1;
            if matches!(task.state, TaskState::Queued | TaskState::Running) {
                *run.busy_hosts.entry(task.host).or_default() += 1;
                run.in_flight += 1;
            }
            run.tasks.push(TaskRun { task, stage: s });
        }
        run.stages = stages;
        run
    }

    /// Sets a task's state and keeps the counts in step.
    pub fn set_task_state(&mut self, i: usize, to: TaskState) {
        let t = &mut self.tasks[i];
        let from = t.task.state;
        if from == to {
            return;
        }
        t.task.state = to;
        let host = t.task.host;
        let counts = &mut self.stages[t.stage].counts;
        *counts.slot(from) -= 1;
        *counts.slot(to) += 1;
        let was = matches!(from, TaskState::Queued | TaskState::Running);
        let is = matches!(to, TaskState::Queued | TaskState::Running);
        if was && !is {
            self.in_flight -= 1;
            if let Some(n) = self.busy_hosts.get_mut(&host) {
                *n -= 1;
                if *n == 0 {
                    self.busy_hosts.remove(&host);
                }
            }
        } else if is && !was {
            self.in_flight += 1;
            *self.busy_hosts.entry(host).or_default() += 1;
        }
    }

    /// The state of the stage at index `s`.
    pub fn stage_state(&self, s: usize) -> StageState {
        self.stages[s].stage.state
    }

    /// Indexes of every stage downstream of `s` (transitively), not `s` itself.
    pub fn downstream(&self, s: usize) -> Vec<usize> {
        // Stages are in topological order, so one forward pass finds the closure.
        let mut hit = vec![false; self.stages.len()];
        hit[s] = true;
        let mut out = Vec::new();
        for (i, st) in self.stages.iter().enumerate().skip(s + 1) {
            if st.after.iter().any(|&a| hit[a]) {
                hit[i] = true;
                out.push(i);
            }
        }
        out
    }
}
