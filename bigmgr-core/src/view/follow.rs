//! Following a job to its end — one function, [`follow`], for every frontend: the CLI's
//! progress bars and live log lines, the Python module's `Job.logs()` and `Job.wait()`, over a
//! server (the typed client reads `GET /jobs/{id}/events`) or in-process (the Manager's own
//! [`crate::Manager::job_events`]). Each log line is seen once, in order per task.

use super::{JobDetailView, JobStreamEvent, LogLineView, StageView, TaskView};
use crate::model::JobId;
use async_trait::async_trait;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A job's live events, as a [`JobFeed`] hands them over: the channel ends after
/// [`JobStreamEvent::End`], or after an error.
pub type EventReceiver<E> = mpsc::Receiver<Result<JobStreamEvent, E>>;

/// Where a job's state and live events come from.
#[async_trait]
pub trait JobFeed: Send + Sync {
    /// What its calls fail with.
    type Error: Send;
    /// The job with its stages and tasks.
    async fn job_detail(&self, id: JobId) -> Result<JobDetailView, Self::Error>;
    /// Its live events: current states and the lines so far first, then changes as they come.
    async fn job_stream(&self, id: JobId) -> Result<EventReceiver<Self::Error>, Self::Error>;
}

/// What [`follow`] reports as the job goes.
#[derive(Debug)]
pub enum Followed<'a> {
    /// The job as it is now: at the start, and after states changed.
    Progress(&'a JobDetailView),
    /// A line a task's script wrote.
    Line {
        /// The task's stage.
        stage: &'a StageView,
        /// The task (its host, its state).
        task: &'a TaskView,
        /// The line.
        line: &'a LogLineView,
    },
}

/// While tasks change state, the job is read again at most this often (task states are kept
/// up to date from the events themselves in between).
const RELOAD: Duration = Duration::from_millis(500);

/// Follows job `id` until it is final, handing `on` its progress and every log line once;
/// returns the job as it ended.
pub async fn follow<F: JobFeed + ?Sized>(
    feed: &F,
    id: JobId,
    mut on: impl FnMut(Followed<'_>) + Send,
) -> Result<JobDetailView, F::Error> {
    // Subscribe first, so nothing between reading the job and following it is lost.
    let mut events = feed.job_stream(id).await?;
    let mut detail = feed.job_detail(id).await?;
    let mut read_at = Instant::now();
    on(Followed::Progress(&detail));
    while let Some(event) = events.recv().await {
        match event? {
            JobStreamEvent::Log(l) => {
                if locate(&detail, l.task).is_none() {
                    detail = feed.job_detail(id).await?;
                    read_at = Instant::now();
                }
                if let Some((s, t)) = locate(&detail, l.task) {
                    let stage = &detail.stages[s];
                    on(Followed::Line {
                        stage,
                        task: &stage.tasks[t],
                        line: &l.line,
                    });
                }
            }
            JobStreamEvent::Task(t) => {
                let known = match locate(&detail, t.id) {
                    Some((s, i)) => {
                        detail.stages[s].tasks[i].state = t.state;
                        true
                    }
                    None => false,
                };
                if !known || read_at.elapsed() >= RELOAD {
                    detail = feed.job_detail(id).await?;
                    read_at = Instant::now();
                }
                on(Followed::Progress(&detail));
            }
            JobStreamEvent::Job(_) => {
                detail = feed.job_detail(id).await?;
                read_at = Instant::now();
                on(Followed::Progress(&detail));
            }
            JobStreamEvent::End(_) => {
                detail = feed.job_detail(id).await?;
                on(Followed::Progress(&detail));
                return Ok(detail);
            }
        }
    }
    // The stream ended without `End` (the server went away): the job as it is.
    let detail = feed.job_detail(id).await?;
    on(Followed::Progress(&detail));
    Ok(detail)
}

/// Where task `id` is in `detail`: (stage index, task index).
fn locate(detail: &JobDetailView, id: i64) -> Option<(usize, usize)> {
    detail
        .stages
        .iter()
        .enumerate()
        .find_map(|(s, st)| st.tasks.iter().position(|t| t.id.0 == id).map(|t| (s, t)))
}
