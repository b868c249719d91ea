//! `GET /jobs/{job}/events`: a job's state changes, its tasks' state changes and their log lines
//! as Server-Sent Events, live, ending with an `end` event once the job is final.
//!
//! The stream opens with the job's and every task's current state and the log lines written so
//! far, so a client that connects late misses nothing. State changes come from
//! [`Manager::subscribe`]; core has no broadcast of log lines, so the stream polls the store
//! for new lines of the tasks that run, every [`LOG_POLL`], and sends only lines it has not
//! sent. A task's remaining lines are sent before its final state, and every line before `end`.
//!
//! | event | data |
//! |---|---|
//! | `job` | `{"id", "state"}` |
//! | `task` | `{"id", "state"}` |
//! | `log` | `{"task", "attempt", "seq", "stream", "at", "line"}` |
//! | `end` | `{"id", "state"}`, the last event |
//! | `error` | a problem (`{"type", "title", "status", "detail"}`), then the stream ends |

use super::AppState;
use super::error::{ApiError, ApiResult, Path};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use bigmgr_core::Manager;
use bigmgr_core::Update;
use bigmgr_core::model::{JobDetail, JobId, JobState, TaskId, TaskState};
use bigmgr_core::view::{JobEvent, LogEvent, LogLineView, TaskEvent};
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

/// How often the stream looks for new log lines of running tasks.
pub const LOG_POLL: Duration = Duration::from_millis(200);

/// Every this many polls the stream reloads the job, in case it missed a change.
const RELOAD_EVERY: u32 = 25;

/// The stream's sender; `Err(())` once the client has gone.
type Tx = mpsc::Sender<Result<Event, Infallible>>;

/// `GET /jobs/{job}/events` → `text/event-stream` of `job`, `task`, `log` and a final `end`.
#[utoipa::path(get, path = "/jobs/{job}/events", tag = "jobs",
    params(("job" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "Server-Sent Events: `job` (JobEvent), `task` (TaskEvent), `log` (LogEvent) as they happen, \
                then `end` (JobEvent) once the job is final; `error` (Problem) if the store fails"),
        (status = 404, description = "No such job"),
    ))]
pub async fn job_events(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Sse<KeepAliveStream<ReceiverStream<Result<Event, Infallible>>>>> {
    // Subscribe before loading, so no change between the two is lost.
    let updates = s.mgr.subscribe();
    let detail = s.mgr.job(JobId(id)).await?;
    let (tx, rx) = mpsc::channel(256);
    let follower = Follower {
        mgr: s.mgr.clone(),
        job: JobId(id),
        tx,
        job_state: None,
        tasks: BTreeMap::new(),
        sent: BTreeMap::new(),
    };
    tokio::spawn(follower.run(detail, updates));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::default()))
}

/// Follows one job for one client.
struct Follower {
    mgr: Manager,
    job: JobId,
    tx: Tx,
    /// The job's state as last sent.
    job_state: Option<JobState>,
    /// Each task's state as last sent.
    tasks: BTreeMap<TaskId, TaskState>,
    /// Each task's last log line sent: (attempt, seq).
    sent: BTreeMap<TaskId, (u32, u64)>,
}

/// Why following stops early.
enum Stop {
    /// The client has gone.
    Gone,
    /// The store failed.
    Failed(ApiError),
}

impl From<bigmgr_core::Error> for Stop {
    fn from(e: bigmgr_core::Error) -> Self {
        Stop::Failed(e.into())
    }
}

fn active(state: TaskState) -> bool {
    matches!(state, TaskState::Queued | TaskState::Running)
}

impl Follower {
    async fn run(mut self, detail: JobDetail, updates: broadcast::Receiver<Update>) {
        match self.follow(detail, updates).await {
            Ok(()) | Err(Stop::Gone) => {}
            Err(Stop::Failed(e)) => {
                let _ = self.send("error", &e.problem()).await;
            }
        }
    }

    async fn send(&self, name: &str, data: &impl Serialize) -> Result<(), Stop> {
        let event = Event::default().event(name).json_data(data).map_err(|e| {
            Stop::Failed(ApiError::from(bigmgr_core::Error::Invalid(e.to_string())))
        })?;
        self.tx.send(Ok(event)).await.map_err(|_| Stop::Gone)
    }

    async fn follow(
        &mut self,
        detail: JobDetail,
        mut updates: broadcast::Receiver<Update>,
    ) -> Result<(), Stop> {
        if self.sync(detail).await? {
            return Ok(());
        }
        let mut tick = tokio::time::interval(LOG_POLL);
        let mut ticks = 0u32;
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
                _ = tick.tick() => {
                    if self.tx.is_closed() {
                        return Err(Stop::Gone);
                    }
                    ticks += 1;
                    if ticks.is_multiple_of(RELOAD_EVERY) {
                        if self.reload().await? {
                            return Ok(());
                        }
                    } else {
                        let running: Vec<TaskId> = self
                            .tasks
                            .iter()
                            .filter(|(_, s)| active(**s))
                            .map(|(t, _)| *t)
                            .collect();
                        for task in running {
                            self.send_new_lines(task).await?;
                        }
                    }
                }
            }
        }
    }

    /// Sends what changed since the last events according to `detail`; true if it ended the
    /// stream (the job is final).
    async fn sync(&mut self, detail: JobDetail) -> Result<bool, Stop> {
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

    async fn reload(&mut self) -> Result<bool, Stop> {
        let detail = self.mgr.job(self.job).await?;
        self.sync(detail).await
    }

    async fn job_changed(&mut self, state: JobState) -> Result<(), Stop> {
        if self.job_state != Some(state) {
            self.job_state = Some(state);
            self.send(
                "job",
                &JobEvent {
                    id: self.job.0,
                    state,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Sends the task's new lines, then its state if it changed.
    async fn task_changed(&mut self, task: TaskId, state: TaskState) -> Result<(), Stop> {
        if self.tasks.get(&task) == Some(&state) {
            return Ok(());
        }
        if state != TaskState::Pending {
            self.send_new_lines(task).await?;
        }
        self.tasks.insert(task, state);
        self.send("task", &TaskEvent { id: task.0, state }).await
    }

    /// Sends every line, then `end`.
    async fn end(&mut self, state: JobState) -> Result<(), Stop> {
        let detail = self.mgr.job(self.job).await?;
        for t in &detail.tasks {
            self.task_changed(t.id, t.state).await?;
            self.send_new_lines(t.id).await?;
        }
        self.job_changed(state).await?;
        self.send(
            "end",
            &JobEvent {
                id: self.job.0,
                state,
            },
        )
        .await
    }

    async fn send_new_lines(&mut self, task: TaskId) -> Result<(), Stop> {
        let last = self.sent.get(&task).copied();
        for l in self.mgr.task_log(task, None).await? {
            let key = (l.attempt, l.seq);
            if last.is_some_and(|last| key <= last) {
                continue;
            }
            self.sent.insert(task, key);
            let event = LogEvent {
                task: task.0,
                line: LogLineView {
                    attempt: l.attempt,
                    seq: l.seq,
                    stream: l.stream,
                    at: l.at,
                    line: l.line,
                },
            };
            self.send("log", &event).await?;
        }
        Ok(())
    }
}
