//! The [`JobStore`] of [`SqlStore`]: jobs, stages, tasks, their batched changes and logs.

use super::{SqlStore, corrupt, fk_or, opt_i32_col, opt_u32_col, text_state, to_i64, u32_col};
use crate::model::*;
use crate::store::{Applied, Batch, JobStore, TaskChange};
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashMap;

/// Rows per multi-row `INSERT` of tasks (5 binds a row).
const TASK_INSERT_CHUNK: usize = 500;
/// Changes per multi-row task `UPDATE` (11 binds a row).
const TASK_UPDATE_CHUNK: usize = 500;
/// Rows per multi-row `INSERT` of log lines (6 binds a row).
const LOG_INSERT_CHUNK: usize = 500;
/// Rows per multi-row unit `UPDATE` (at most 3 binds a row).
const UNIT_UPDATE_CHUNK: usize = 1000;

const JOB_COLS: &str =
    "id, cluster, command, target, options, state, created_at, started_at, finished_at";
const STAGE_COLS: &str = "id, job, seq, name, service, component, command, state";
const TASK_COLS: &str = "id, job, stage, unit, host, attempt, state, exit_code, pid, started_at, \
                         finished_at, message";

fn job_row(row: &SqliteRow) -> Result<Job> {
    let target: String = row.try_get("target")?;
    let options: String = row.try_get("options")?;
    Ok(Job {
        id: JobId(row.try_get("id")?),
        cluster: ClusterId(row.try_get("cluster")?),
        command: row.try_get("command")?,
        target: serde_json::from_str(&target).map_err(|e| corrupt("jobs.target", e))?,
        options: serde_json::from_str(&options).map_err(|e| corrupt("jobs.options", e))?,
        state: text_state(row, "state")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn stage_row(row: &SqliteRow) -> Result<Stage> {
    Ok(Stage {
        id: StageId(row.try_get("id")?),
        job: JobId(row.try_get("job")?),
        seq: u32_col(row, "seq")?,
        name: row.try_get("name")?,
        service: ServiceId(row.try_get("service")?),
        component: row.try_get("component")?,
        command: row.try_get("command")?,
        after: Vec::new(),
        state: text_state(row, "state")?,
    })
}

fn task_row(row: &SqliteRow) -> Result<Task> {
    Ok(Task {
        id: TaskId(row.try_get("id")?),
        job: JobId(row.try_get("job")?),
        stage: StageId(row.try_get("stage")?),
        unit: UnitId(row.try_get("unit")?),
        host: HostId(row.try_get("host")?),
        attempt: u32_col(row, "attempt")?,
        state: text_state(row, "state")?,
        exit_code: opt_i32_col(row, "exit_code")?,
        pid: opt_u32_col(row, "pid")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        message: row.try_get("message")?,
    })
}

fn log_row(row: &SqliteRow) -> Result<LogLine> {
    let stream: String = row.try_get("stream")?;
    let seq: i64 = row.try_get("seq")?;
    Ok(LogLine {
        task: TaskId(row.try_get("task")?),
        attempt: u32_col(row, "attempt")?,
        seq: u64::try_from(seq).map_err(|e| corrupt("task_logs.seq", e))?,
        stream: match stream.as_str() {
            "stdout" => LogStream::Stdout,
            "stderr" => LogStream::Stderr,
            other => return Err(corrupt("task_logs.stream", other)),
        },
        at: row.try_get("at")?,
        line: row.try_get("line")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Loading (shared by plain reads and by writes that return what they wrote).

async fn load_job(conn: &mut SqliteConnection, id: JobId) -> Result<Option<Job>> {
    let row = sqlx::query(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?"))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(job_row).transpose()
}

async fn load_detail(conn: &mut SqliteConnection, id: JobId) -> Result<Option<JobDetail>> {
    let Some(job) = load_job(conn, id).await? else {
        return Ok(None);
    };
    let mut stages = sqlx::query(&format!(
        "SELECT {STAGE_COLS} FROM stages WHERE job = ? ORDER BY seq"
    ))
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(stage_row)
    .collect::<Result<Vec<_>>>()?;
    let deps = sqlx::query(
        "SELECT d.stage, d.after FROM stage_deps d JOIN stages s ON s.id = d.stage \
         WHERE s.job = ? ORDER BY d.stage, d.after",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    let mut after: HashMap<i64, Vec<StageId>> = HashMap::new();
    for row in &deps {
        let stage: i64 = row.try_get("stage")?;
        let before: i64 = row.try_get("after")?;
        after.entry(stage).or_default().push(StageId(before));
    }
    for stage in &mut stages {
        stage.after = after.remove(&stage.id.0).unwrap_or_default();
    }
    let tasks = sqlx::query(&format!(
        "SELECT {TASK_COLS} FROM tasks WHERE job = ? ORDER BY id"
    ))
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(task_row)
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(JobDetail { job, stages, tasks }))
}

// ---------------------------------------------------------------------------------------------
// Batch pieces.

/// Applies task changes whose ids are all distinct, in chunks of one multi-row `UPDATE … FROM`
/// each; marks `applied[i]` for those whose compare matched.
async fn apply_task_round(
    conn: &mut SqliteConnection,
    changes: &[TaskChange],
    round: &[usize],
    applied: &mut [bool],
) -> Result<()> {
    for chunk in round.chunks(TASK_UPDATE_CHUNK) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "WITH c(id, from_state, to_state, attempt_is, set_attempt, clear, exit_code, pid, \
             started_at, finished_at, message) AS (",
        );
        let mut first = true;
        for &i in chunk {
            let c = &changes[i];
            qb.push(if first { "VALUES (" } else { ", (" });
            first = false;
            let mut row = qb.separated(", ");
            row.push_bind(c.id.0)
                .push_bind(c.from.as_str())
                .push_bind(c.to.as_str())
                .push_bind(c.attempt_is.map(i64::from))
                .push_bind(c.set_attempt.map(i64::from))
                .push_bind(c.clear_result)
                .push_bind(c.exit_code.map(i64::from))
                .push_bind(c.pid.map(i64::from))
                .push_bind(c.started_at)
                .push_bind(c.finished_at)
                .push_bind(c.message.as_deref());
            qb.push(")");
        }
        qb.push(
            ") UPDATE tasks SET \
               state = c.to_state, \
               attempt = COALESCE(c.set_attempt, tasks.attempt), \
               exit_code = CASE WHEN c.clear THEN c.exit_code \
                                ELSE COALESCE(c.exit_code, tasks.exit_code) END, \
               pid = CASE WHEN c.clear THEN c.pid ELSE COALESCE(c.pid, tasks.pid) END, \
               started_at = CASE WHEN c.clear THEN c.started_at \
                                 ELSE COALESCE(c.started_at, tasks.started_at) END, \
               finished_at = CASE WHEN c.clear THEN c.finished_at \
                                  ELSE COALESCE(c.finished_at, tasks.finished_at) END, \
               message = CASE WHEN c.clear THEN c.message \
                              ELSE COALESCE(c.message, tasks.message) END \
             FROM c \
             WHERE tasks.id = c.id AND tasks.state = c.from_state \
               AND (c.attempt_is IS NULL OR tasks.attempt = c.attempt_is) \
             RETURNING tasks.id",
        );
        let rows = qb.build().fetch_all(&mut *conn).await?;
        let index: HashMap<i64, usize> = chunk.iter().map(|&i| (changes[i].id.0, i)).collect();
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            if let Some(&i) = index.get(&id) {
                applied[i] = true;
            }
        }
    }
    Ok(())
}

/// Sets unit states (the last one given for a unit wins); unknown units are skipped.
async fn apply_units(conn: &mut SqliteConnection, units: &[(UnitId, UnitState)]) -> Result<()> {
    let mut last: HashMap<UnitId, UnitState> = HashMap::with_capacity(units.len());
    for &(id, state) in units {
        last.insert(id, state);
    }
    let last: Vec<_> = last.into_iter().collect();
    for chunk in last.chunks(UNIT_UPDATE_CHUNK) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("WITH c(id, state) AS (");
        let mut first = true;
        for (id, state) in chunk {
            qb.push(if first { "VALUES (" } else { ", (" });
            first = false;
            qb.push_bind(id.0)
                .push(", ")
                .push_bind(state.as_str())
                .push(")");
        }
        qb.push(") UPDATE units SET state = c.state FROM c WHERE units.id = c.id");
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Sets the config version and file hash units applied (the last one given for a unit wins);
/// unknown units are skipped.
async fn apply_configs(
    conn: &mut SqliteConnection,
    applied: &[(UnitId, u32, String)],
) -> Result<()> {
    let mut last: HashMap<UnitId, (u32, &str)> = HashMap::with_capacity(applied.len());
    for (id, version, hash) in applied {
        last.insert(*id, (*version, hash.as_str()));
    }
    let last: Vec<_> = last.into_iter().collect();
    for chunk in last.chunks(UNIT_UPDATE_CHUNK) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("WITH c(id, version, hash) AS (");
        let mut first = true;
        for (id, (version, hash)) in chunk {
            qb.push(if first { "VALUES (" } else { ", (" });
            first = false;
            qb.push_bind(id.0)
                .push(", ")
                .push_bind(i64::from(*version))
                .push(", ")
                .push_bind(*hash)
                .push(")");
        }
        qb.push(
            ") UPDATE units SET applied_version = c.version, applied_hash = c.hash \
             FROM c WHERE units.id = c.id",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Appends log lines; a line already stored (same task, attempt and number) is kept as it was.
async fn insert_logs(conn: &mut SqliteConnection, logs: &[LogLine]) -> Result<()> {
    for chunk in logs.chunks(LOG_INSERT_CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        for l in chunk {
            rows.push((l, to_i64(l.seq, "log line number")?));
        }
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT OR IGNORE INTO task_logs (task, attempt, seq, stream, at, line) ",
        );
        qb.push_values(rows, |mut b, (l, seq)| {
            b.push_bind(l.task.0)
                .push_bind(i64::from(l.attempt))
                .push_bind(seq)
                .push_bind(l.stream.as_str())
                .push_bind(l.at)
                .push_bind(l.line.as_str());
        });
        qb.build().execute(&mut *conn).await.map_err(|e| {
            fk_or(e, || {
                Error::Invalid("a log line names a task that does not exist".into())
            })
        })?;
    }
    Ok(())
}

#[async_trait]
impl JobStore for SqlStore {
    async fn create_job(&self, job: &NewJob) -> Result<JobDetail> {
        for (i, stage) in job.stages.iter().enumerate() {
            if let Some(&bad) = stage.after.iter().find(|&&a| a >= i) {
                return Err(Error::Invalid(format!(
                    "stage {i} ('{}') waits for stage {bad}, which does not come before it",
                    stage.name
                )));
            }
        }
        let target = serde_json::to_string(&job.target)
            .map_err(|e| Error::Invalid(format!("job target: {e}")))?;
        let options = serde_json::to_string(&job.options)
            .map_err(|e| Error::Invalid(format!("job options: {e}")))?;

        let _w = self.write.lock().await;
        let created_at = now_ms();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let res = sqlx::query(
            "INSERT INTO jobs (cluster, command, target, options, state, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(job.cluster.0)
        .bind(&job.command)
        .bind(&target)
        .bind(&options)
        .bind(JobState::Queued.as_str())
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| fk_or(e, || Error::not_found("cluster", job.cluster)))?;
        let job_id = JobId(res.last_insert_rowid());

        let mut stages: Vec<Stage> = Vec::with_capacity(job.stages.len());
        for (seq, new) in job.stages.iter().enumerate() {
            let seq = u32::try_from(seq)
                .map_err(|_| Error::Invalid(format!("a job can't have {seq} stages")))?;
            let res = sqlx::query(
                "INSERT INTO stages (job, seq, name, service, component, command, state) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(job_id.0)
            .bind(i64::from(seq))
            .bind(&new.name)
            .bind(new.service.0)
            .bind(&new.component)
            .bind(&new.command)
            .bind(StageState::Pending.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| fk_or(e, || Error::not_found("service", new.service)))?;
            let id = StageId(res.last_insert_rowid());
            let mut after: Vec<StageId> = new.after.iter().map(|&a| stages[a].id).collect();
            after.sort();
            after.dedup();
            for before in &after {
                sqlx::query("INSERT INTO stage_deps (stage, after) VALUES (?, ?)")
                    .bind(id.0)
                    .bind(before.0)
                    .execute(&mut *tx)
                    .await?;
            }
            stages.push(Stage {
                id,
                job: job_id,
                seq,
                name: new.name.clone(),
                service: new.service,
                component: new.component.clone(),
                command: new.command.clone(),
                after,
                state: StageState::Pending,
            });
        }

        // Task ids are given explicitly, following the largest one: the immediate transaction
        // holds the write lock, so no one else takes them, and we need not read them back.
        let base: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM tasks")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let mut tasks: Vec<Task> = Vec::new();
        for (stage, new) in stages.iter().zip(&job.stages) {
            for t in &new.tasks {
                let id = i64::try_from(tasks.len())
                    .ok()
                    .and_then(|n| base.checked_add(n + 1))
                    .ok_or_else(|| Error::Store("task ids are exhausted".into()))?;
                tasks.push(Task {
                    id: TaskId(id),
                    job: job_id,
                    stage: stage.id,
                    unit: t.unit,
                    host: t.host,
                    attempt: 1,
                    state: TaskState::Pending,
                    exit_code: None,
                    pid: None,
                    started_at: None,
                    finished_at: None,
                    message: None,
                });
            }
        }
        for chunk in tasks.chunks(TASK_INSERT_CHUNK) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO tasks (id, job, stage, unit, host, attempt, state) ",
            );
            qb.push_values(chunk, |mut b, t| {
                b.push_bind(t.id.0)
                    .push_bind(t.job.0)
                    .push_bind(t.stage.0)
                    .push_bind(t.unit.0)
                    .push_bind(t.host.0)
                    .push_unseparated(", 1, 'PENDING'");
            });
            qb.build().execute(&mut *tx).await.map_err(|e| {
                fk_or(e, || {
                    Error::Invalid(
                        "a task of the job names a unit or host that does not exist".into(),
                    )
                })
            })?;
        }
        tx.commit().await?;

        Ok(JobDetail {
            job: Job {
                id: job_id,
                cluster: job.cluster,
                command: job.command.clone(),
                target: job.target.clone(),
                options: job.options.clone(),
                state: JobState::Queued,
                created_at,
                started_at: None,
                finished_at: None,
            },
            stages,
            tasks,
        })
    }

    async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        let mut conn = self.pool.acquire().await?;
        load_job(&mut conn, id).await
    }

    async fn job_detail(&self, id: JobId) -> Result<Option<JobDetail>> {
        // One read transaction: job, stages and tasks from the same snapshot.
        let mut tx = self.pool.begin().await?;
        let detail = load_detail(&mut tx, id).await?;
        tx.commit().await?;
        Ok(detail)
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {JOB_COLS} FROM jobs WHERE 1 = 1"));
        if let Some(cluster) = filter.cluster {
            qb.push(" AND cluster = ").push_bind(cluster.0);
        }
        if !filter.states.is_empty() {
            qb.push(" AND state IN (");
            let mut states = qb.separated(", ");
            for s in &filter.states {
                states.push_bind(s.as_str());
            }
            qb.push(")");
        }
        if let Some(after) = filter.after {
            qb.push(" AND id > ").push_bind(after.0);
        }
        qb.push(" ORDER BY id");
        if let Some(limit) = filter.limit {
            qb.push(" LIMIT ").push_bind(i64::from(limit));
        }
        qb.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(job_row)
            .collect()
    }

    async fn apply(&self, batch: &Batch) -> Result<Applied> {
        let mut applied = Applied {
            jobs: vec![false; batch.jobs.len()],
            stages: vec![false; batch.stages.len()],
            tasks: vec![false; batch.tasks.len()],
        };
        if batch.is_empty() {
            return Ok(applied);
        }
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;

        for (i, c) in batch.jobs.iter().enumerate() {
            let res = sqlx::query(
                "UPDATE jobs SET state = ?, \
                   started_at = CASE WHEN ? AND started_at IS NULL THEN ? ELSE started_at END, \
                   finished_at = CASE WHEN ? THEN ? ELSE NULL END \
                 WHERE id = ? AND state = ?",
            )
            .bind(c.to.as_str())
            .bind(c.to == JobState::Running)
            .bind(c.at)
            .bind(c.to.is_final())
            .bind(c.at)
            .bind(c.id.0)
            .bind(c.from.as_str())
            .execute(&mut *tx)
            .await?;
            applied.jobs[i] = res.rows_affected() == 1;
        }

        for (i, c) in batch.stages.iter().enumerate() {
            let res = sqlx::query("UPDATE stages SET state = ? WHERE id = ? AND state = ?")
                .bind(c.to.as_str())
                .bind(c.id.0)
                .bind(c.from.as_str())
                .execute(&mut *tx)
                .await?;
            applied.stages[i] = res.rows_affected() == 1;
        }

        // A task may change more than once in a batch (QUEUED, then RUNNING): its n-th change
        // goes in round n, so each round names a task once and keeps the batch's order per task.
        let mut rounds: Vec<Vec<usize>> = Vec::new();
        let mut seen: HashMap<TaskId, usize> = HashMap::with_capacity(batch.tasks.len());
        for (i, c) in batch.tasks.iter().enumerate() {
            let n = seen.entry(c.id).or_insert(0);
            if rounds.len() <= *n {
                rounds.push(Vec::new());
            }
            rounds[*n].push(i);
            *n += 1;
        }
        for round in &rounds {
            apply_task_round(&mut tx, &batch.tasks, round, &mut applied.tasks).await?;
        }

        apply_units(&mut tx, &batch.units).await?;
        apply_configs(&mut tx, &batch.applied_configs).await?;
        insert_logs(&mut tx, &batch.logs).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn task_log(&self, task: TaskId, attempt: Option<u32>) -> Result<Vec<LogLine>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT task, attempt, seq, stream, at, line FROM task_logs WHERE task = ",
        );
        qb.push_bind(task.0);
        if let Some(attempt) = attempt {
            qb.push(" AND attempt = ").push_bind(i64::from(attempt));
        }
        qb.push(" ORDER BY attempt, seq");
        qb.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(log_row)
            .collect()
    }
}
