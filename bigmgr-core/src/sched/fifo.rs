//! The default scheduler: FIFO per cluster, one running job per cluster, clusters in parallel;
//! stages in DAG order; tasks of ready stages in parallel up to the job's limit, one task per
//! host at a time, in batches where the job asks for them, per host where it is pipelined.

use super::{JobRun, Scheduler};
use crate::model::{ClusterId, Job, JobId, StageState, TaskState};
use std::collections::HashSet;

/// FIFO per cluster; see the module doc.
#[derive(Debug, Clone, Copy, Default)]
pub struct FifoScheduler;

impl Scheduler for FifoScheduler {
    fn admit(&self, queued: &[&Job], busy: &HashSet<ClusterId>) -> Vec<JobId> {
        let mut taken: HashSet<ClusterId> = busy.clone();
        queued
            .iter()
            .filter(|j| taken.insert(j.cluster))
            .map(|j| j.id)
            .collect()
    }

    fn ready(&self, run: &JobRun) -> Vec<usize> {
        let opts = &run.job.options;
        let mut room = match opts.parallelism {
            Some(p) => (p as usize).saturating_sub(run.in_flight),
            None => usize::MAX,
        };
        let mut hosts_taken: HashSet<_> = HashSet::new();
        let mut out = Vec::new();
        for (s, st) in run.stages.iter().enumerate() {
            if room == 0 {
                break;
            }
            if st.counts.pending == 0 || st.stage.state.is_final() {
                continue;
            }
            let stage_ready = st
                .after
                .iter()
                .all(|&a| run.stages[a].stage.state == StageState::Succeeded);
            if !stage_ready && !opts.pipelined {
                continue;
            }
            // In batches, only the first batch that is not over may run.
            let window: &[usize] =
                match opts.batch_size {
                    Some(b) if b > 0 => {
                        let b = b as usize;
                        match st.tasks.chunks(b).find(|chunk| {
                            chunk.iter().any(|&i| !run.tasks[i].task.state.is_final())
                        }) {
                            Some(chunk) => chunk,
                            None => continue,
                        }
                    }
                    _ => &st.tasks,
                };
            for &i in window {
                if room == 0 {
                    break;
                }
                let t = &run.tasks[i].task;
                if t.state != TaskState::Pending
                    || run.busy_hosts.contains_key(&t.host)
                    || hosts_taken.contains(&t.host)
                {
                    continue;
                }
                if !stage_ready && !pipeline_ready(run, s, t.host) {
                    continue;
                }
                hosts_taken.insert(t.host);
                out.push(i);
                room -= 1;
            }
        }
        out
    }
}

/// For a pipelined job: the host's task of each stage before `s` succeeded (or, where that
/// stage has no task on the host, the whole stage succeeded).
fn pipeline_ready(run: &JobRun, s: usize, host: crate::model::HostId) -> bool {
    run.stages[s].after.iter().all(|&a| {
        let before = &run.stages[a];
        match before.by_host.get(&host) {
            Some(&i) => run.tasks[i].task.state == TaskState::Succeeded,
            None => before.stage.state == StageState::Succeeded,
        }
    })
}
