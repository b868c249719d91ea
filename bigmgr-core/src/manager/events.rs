//! A job's live events ([`Manager::job_events`]): its state changes, its tasks' state changes
//! and their log lines, ending with `End` once the job is final — what `GET /jobs/{id}/events`
//! sends as Server-Sent Events and what every frontend follows a job with.
//!
//! The stream opens with the job's and every task's current state and the log lines written so
//! far, so a follower that starts late misses nothing. State changes come from
//! [`Manager::subscribe`]. The engine broadcasts no log lines, only which tasks it stored new
//! ones of ([`Manager::subscribe_logs`]): the stream reads a running task's new lines from the
//! store as soon as the engine says so, and also every [`LOG_POLL`] (the engine of another
//! replica says nothing here), and sends only lines it has not sent. A task's remaining lines
//! come before its final state, and every line before `End`.

use super::Manager;
use crate::engine::{Logged, Update};
use crate::model::{JobDetail, JobId, JobState, TaskId, TaskState};
use crate::view::{JobEvent, JobStreamEvent, LogEvent, LogLineView, TaskEvent};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How often the stream also looks for new log lines of running tasks, without the engine's
/// word: how the lines come on a replica that does not run the engine.
pub const LOG_POLL: Duration = Duration::from_millis(200);

/// At most this many log lines are read from the store at once.
const LOG_PAGE: u32 = 1000;

/// Every this many polls the stream reloads the job, in case it missed a change.
const RELOAD_EVERY: u32 = 25;

impl Manager {
    /// A job's live events, as a channel that ends after [`JobStreamEvent::End`] (or after an
    /// `Err` if the store failed). A job that does not exist is an error at once. Dropping the
    /// receiver stops the follower.
    pub async fn job_events(&self, id: JobId) -> Result<mpsc::Receiver<Result<JobStreamEvent>>> {
        // Subscribe before loading, so no change between the two is lost.
        let updates = self.subscribe();
        let logged = self.subscribe_logs();
        let detail = self.job(id).await?;
        let (tx, rx) = mpsc::channel(256);
        let follower = Follower {
            mgr: self.clone(),
            job: id,
            tx,
            job_state: None,
            tasks: BTreeMap::new(),
            sent: BTreeMap::new(),
        };
        tokio::spawn(follower.run(detail, updates, logged));
        Ok(rx)
    }
}

/// Follows one job for one receiver.
struct Follower {
    mgr: Manager,
    job: JobId,
    tx: mpsc::Sender<Result<JobStreamEvent>>,
    /// The job's state as last sent.
    job_state: Option<JobState>,
    /// Each task's state as last sent.
    tasks: BTreeMap<TaskId, TaskState>,
    /// Each task's last log line sent: (attempt, seq).
    sent: BTreeMap<TaskId, (u32, u64)>,
}

/// Why following stops early.
enum Stop {
    /// The receiver has gone.
    Gone,
    /// The store failed.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

fn active(state: TaskState) -> bool {
    matches!(state, TaskState::Queued | TaskState::Running)
}

impl Follower {
    async fn run(
        mut self,
        detail: JobDetail,
        updates: broadcast::Receiver<Update>,
        logged: broadcast::Receiver<Logged>,
    ) {
        match self.follow(detail, updates, logged).await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Failed(e)) => {
                let _ = self.tx.send(Err(e)).await;
            }
        }
    }

    async fn send(&self, event: JobStreamEvent) -> std::result::Result<(), Stop> {
        self.tx.send(Ok(event)).await.map_err(|_| Stop::Gone)
    }

    async fn follow(
        &mut self,
        detail: JobDetail,
        mut updates: broadcast::Receiver<Update>,
        mut logged: broadcast::Receiver<Logged>,
    ) -> std::result::Result<(), Stop> {
        if self.sync(detail).await? {
            return Ok(());
        }
        let mut tick = tokio::time::interval(LOG_POLL);
        let mut ticks = 0u32;
        // Until the engine's channel closes (the server shuts down): then the tick alone.
        let mut listening = true;
        loop {
            tokio::select! {
                update = updates.recv() => match update {
                    Ok(Update::Job { id, state }) if id == self.job => {
                        if state.is_final() {
                            return self.end(state).await;
                        }
                        self.job_changed(state).await?;
                    }
                    Ok(Update::Task { job, task, state }) if job == self.job => {
                        self.task_changed(task, state).await?;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if self.reload().await? {
                            return Ok(());
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        // The engine stopped (the server shuts down): end with what the store says.
                        self.reload().await?;
                        return Ok(());
                    }
                },
                logged = logged.recv(), if listening => match logged {
                    Ok(Logged { job, task }) if job == self.job => {
                        if self.tasks.get(&task).is_some_and(|s| active(*s)) {
                            self.send_new_lines(task).await?;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => self.send_running_lines().await?,
                    Err(broadcast::error::RecvError::Closed) => listening = false,
                },
                _ = tick.tick() => {
                    if self.tx.is_closed() {
                        return Err(Stop::Gone);
                    }
                    ticks += 1;
                    if ticks.is_multiple_of(RELOAD_EVERY) && self.reload().await? {
                        return Ok(());
                    }
                    self.send_running_lines().await?;
                }
            }
        }
    }

    /// Sends what changed since the last events according to `detail`; true if it ended the
    /// stream (the job is final).
    async fn sync(&mut self, detail: JobDetail) -> std::result::Result<bool, Stop> {
        if !detail.job.state.is_final() {
            self.job_changed(detail.job.state).await?;
        }
        for t in &detail.tasks {
            self.task_changed(t.id, t.state).await?;
        }
        if detail.job.state.is_final() {
            self.end(detail.job.state).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn reload(&mut self) -> std::result::Result<bool, Stop> {
        let detail = self.mgr.job(self.job).await?;
        self.sync(detail).await
    }

    async fn job_changed(&mut self, state: JobState) -> std::result::Result<(), Stop> {
        if self.job_state != Some(state) {
            self.job_state = Some(state);
            self.send(JobStreamEvent::Job(JobEvent {
                id: self.job.0,
                state,
            }))
            .await?;
        }
        Ok(())
    }

    /// Sends the task's state if it changed, after its new lines when they are due: before a
    /// final state, and the first time a started task is seen (a late follower gets what was
    /// written so far). A running task's lines otherwise come when the engine says it stored
    /// some, and on every tick: one read per task and run, not one per change.
    async fn task_changed(
        &mut self,
        task: TaskId,
        state: TaskState,
    ) -> std::result::Result<(), Stop> {
        let known = self.tasks.get(&task);
        if known == Some(&state) {
            return Ok(());
        }
        if state.is_final() || (known.is_none() && state != TaskState::Pending) {
            self.send_new_lines(task).await?;
        }
        self.tasks.insert(task, state);
        self.send(JobStreamEvent::Task(TaskEvent { id: task.0, state }))
            .await
    }

    /// Sends every line, then `End`. A task that succeeded had all its lines read when it was
    /// seen final ([`Follower::task_changed`]): its agent reports the end after the last line,
    /// and the engine stores them in that order. Any other task is read once more, since the
    /// engine may have ended it (a lost host, a cancel) before its agent's last lines came.
    async fn end(&mut self, state: JobState) -> std::result::Result<(), Stop> {
        let detail = self.mgr.job(self.job).await?;
        for t in &detail.tasks {
            self.task_changed(t.id, t.state).await?;
            if t.state != TaskState::Succeeded {
                self.send_new_lines(t.id).await?;
            }
        }
        self.job_changed(state).await?;
        self.send(JobStreamEvent::End(JobEvent {
            id: self.job.0,
            state,
        }))
        .await
    }

    /// Sends the new lines of every task that runs.
    async fn send_running_lines(&mut self) -> std::result::Result<(), Stop> {
        let running: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, s)| active(**s))
            .map(|(t, _)| *t)
            .collect();
        for task in running {
            self.send_new_lines(task).await?;
        }
        Ok(())
    }

    /// Sends the task's lines after the last one sent.
    async fn send_new_lines(&mut self, task: TaskId) -> std::result::Result<(), Stop> {
        let store = &self.mgr.inner.store;
        loop {
            let after = self.sent.get(&task).copied();
            let lines = store.task_log_after(task, after, LOG_PAGE).await?;
            let more = lines.len() >= LOG_PAGE as usize;
            for l in lines {
                self.sent.insert(task, (l.attempt, l.seq));
                self.send(JobStreamEvent::Log(LogEvent {
                    task: task.0,
                    line: LogLineView::from(l),
                }))
                .await?;
            }
            if !more {
                return Ok(());
            }
        }
    }
}

#[async_trait::async_trait]
impl crate::view::JobFeed for Manager {
    type Error = Error;

    async fn job_detail(&self, id: JobId) -> Result<crate::view::JobDetailView> {
        self.job_view(id).await
    }

    async fn job_stream(&self, id: JobId) -> Result<crate::view::EventReceiver<Error>> {
        self.job_events(id).await
    }
}
