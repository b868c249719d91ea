//! The [`JobStore`] of [`SqlStore`]: jobs, stages and tasks created and read, task logs;
//! `apply` is in `batch.rs`.

use super::rows::corrupt;
use super::{
    Engine, JSON_CHUNK, SqlStore, batch, built, fk_or, insert, json_rows, page, query, read_all,
    select, select_all, select_one,
};
use crate::model::*;
use crate::store::{Applied, Batch, JobStore};
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::{Any, QueryBuilder};
use std::collections::HashMap;

/// Rows per multi-row `INSERT` of tasks (5 binds a row).
const TASK_INSERT_CHUNK: usize = 500;

/// A new task as a row of JSON for `json_to_recordset` (PostgreSQL).
#[derive(serde::Serialize)]
struct NewTaskRow {
    id: i64,
    stage: i64,
    unit: i64,
    host: i64,
}

/// A job with its stages (and what each waits for) and tasks, read on one connection (a read
/// transaction gives them from one snapshot).
async fn load_detail(conn: &mut AnyConnection, id: JobId) -> Result<Option<JobDetail>> {
    let Some(job) = select_one(&mut *conn, "FROM jobs WHERE id = ?", (id.0,)).await? else {
        return Ok(None);
    };
    let mut stages: Vec<Stage> = select_all(
        &mut *conn,
        "FROM stages WHERE job = ? ORDER BY seq",
        (id.0,),
    )
    .await?;
    let deps: Vec<(i64, i64)> = query(
        "SELECT d.stage, d.after FROM stage_deps d JOIN stages s ON s.id = d.stage \
         WHERE s.job = ? ORDER BY d.stage, d.after",
        (id.0,),
    )
    .rows(&mut *conn)
    .await?;
    let mut after: HashMap<i64, Vec<StageId>> = HashMap::new();
    for (stage, before) in deps {
        after.entry(stage).or_default().push(StageId(before));
    }
    for stage in &mut stages {
        stage.after = after.remove(&stage.id.0).unwrap_or_default();
    }
    let tasks = select_all(&mut *conn, "FROM tasks WHERE job = ? ORDER BY id", (id.0,)).await?;
    Ok(Some(JobDetail { job, stages, tasks }))
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

        let mut tx = self.begin_write().await?;
        let created: Job = insert(
            &mut *tx,
            "INSERT INTO jobs (cluster, command, target, options, state, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            (
                job.cluster.0,
                &job.command,
                &target,
                &options,
                JobState::Queued.as_str(),
                now_ms(),
            ),
            |e| fk_or(e, || Error::not_found("cluster", job.cluster)),
        )
        .await?;
        let job_id = created.id;

        let mut stages: Vec<Stage> = Vec::with_capacity(job.stages.len());
        for (seq, new) in job.stages.iter().enumerate() {
            let seq = u32::try_from(seq)
                .map_err(|_| Error::Invalid(format!("a job can't have {seq} stages")))?;
            let mut stage: Stage = insert(
                &mut *tx,
                "INSERT INTO stages (job, seq, name, service, component, command, state) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id.0,
                    i64::from(seq),
                    &new.name,
                    new.service.0,
                    &new.component,
                    &new.command,
                    StageState::Pending.as_str(),
                ),
                |e| fk_or(e, || Error::not_found("service", new.service)),
            )
            .await?;
            let mut after: Vec<StageId> = new.after.iter().map(|&a| stages[a].id).collect();
            after.sort();
            after.dedup();
            for before in &after {
                let sql = "INSERT INTO stage_deps (stage, after) VALUES (?, ?)";
                query(sql, (stage.id.0, before.0)).execute(&mut *tx).await?;
            }
            stage.after = after;
            stages.push(stage);
        }

        // Task ids are given explicitly, following the largest one: the immediate transaction
        // holds the write lock, so no one else takes them, and we need not read them back.
        let base: i64 = query("SELECT COALESCE(MAX(id), 0) FROM tasks", ())
            .value(&mut *tx)
            .await?
            .unwrap_or_default();
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
        let missing = || {
            Error::Invalid(
                "a task of the job names a unit or host that does not exist, \
                 or a unit on another host"
                    .into(),
            )
        };
        if self.engine == Engine::Postgres {
            for chunk in tasks.chunks(JSON_CHUNK) {
                let rows: Vec<NewTaskRow> = chunk
                    .iter()
                    .map(|t| NewTaskRow {
                        id: t.id.0,
                        stage: t.stage.0,
                        unit: t.unit.0,
                        host: t.host.0,
                    })
                    .collect();
                query(
                    "INSERT INTO tasks (id, job, stage, unit, host, attempt, state) \
                     SELECT id, ?, stage, unit, host, 1, 'PENDING' \
                     FROM json_to_recordset(?::json) AS t(id BIGINT, stage BIGINT, \
                       unit BIGINT, host BIGINT)",
                    (job_id.0, json_rows(&rows)?),
                )
                .execute(&mut *tx)
                .await
                .map_err(|e| fk_or(e, missing))?;
            }
        } else {
            for chunk in tasks.chunks(TASK_INSERT_CHUNK) {
                let mut qb: QueryBuilder<Any> = QueryBuilder::new(
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
                built(&mut qb)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| fk_or(e, missing))?;
            }
            // SQLite's keys check a task's unit and host each on its own; PostgreSQL's key on
            // the pair also refuses a unit on another host, and so does this.
            let astray: i64 = query(
                "SELECT EXISTS (SELECT 1 FROM tasks t JOIN units u ON u.id = t.unit \
                 WHERE t.job = ? AND u.host <> t.host)",
                (job_id.0,),
            )
            .value(&mut *tx)
            .await?
            .unwrap_or_default();
            if astray != 0 {
                return Err(missing());
            }
        }
        tx.commit().await?;

        Ok(JobDetail {
            job: created,
            stages,
            tasks,
        })
    }

    async fn get_job(&self, id: JobId) -> Result<Option<Job>> {
        select_one(&self.pool, "FROM jobs WHERE id = ?", (id.0,)).await
    }

    async fn job_detail(&self, id: JobId) -> Result<Option<JobDetail>> {
        // One read transaction: job, stages and tasks from the same snapshot.
        let mut tx = self.begin_read().await?;
        let detail = load_detail(&mut tx, id).await?;
        tx.commit().await?;
        Ok(detail)
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>> {
        let mut qb = select::<Job>("FROM jobs WHERE 1 = 1");
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
        if filter.newest_first {
            if let Some(after) = filter.after {
                qb.push(" AND id < ").push_bind(after.0);
            }
            qb.push(" ORDER BY id DESC");
            if let Some(limit) = filter.limit {
                qb.push(" LIMIT ").push_bind(i64::from(limit));
            }
        } else {
            page(&mut qb, filter.after.map(|a| a.0), filter.limit);
        }
        read_all(&self.pool, &mut qb).await
    }

    async fn apply(&self, batch: &Batch) -> Result<Applied> {
        if batch.is_empty() {
            return Ok(Applied::default());
        }
        let mut tx = self.begin_write().await?;
        let applied = batch::apply(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn task_log(&self, task: TaskId, attempt: Option<u32>) -> Result<Vec<LogLine>> {
        let mut qb = select::<LogLine>("FROM task_logs WHERE task = ");
        qb.push_bind(task.0);
        if let Some(attempt) = attempt {
            qb.push(" AND attempt = ").push_bind(i64::from(attempt));
        }
        qb.push(" ORDER BY attempt, seq");
        read_all(&self.pool, &mut qb).await
    }

    async fn task_log_after(
        &self,
        task: TaskId,
        after: Option<(u32, u64)>,
        limit: u32,
    ) -> Result<Vec<LogLine>> {
        let mut qb = select::<LogLine>("FROM task_logs WHERE task = ");
        qb.push_bind(task.0);
        if let Some((attempt, seq)) = after {
            // A line number beyond any stored one: no line comes after it.
            let Ok(seq) = i64::try_from(seq) else {
                return Ok(Vec::new());
            };
            qb.push(" AND (attempt, seq) > (")
                .push_bind(i64::from(attempt))
                .push(", ")
                .push_bind(seq)
                .push(")");
        }
        qb.push(" ORDER BY attempt, seq LIMIT ")
            .push_bind(i64::from(limit));
        read_all(&self.pool, &mut qb).await
    }

    async fn state_counts(&self) -> Result<StateCounts> {
        fn parse<T: std::str::FromStr<Err = Error>>(
            rows: Vec<(String, i64)>,
            table: &str,
        ) -> Result<Vec<(T, u64)>> {
            rows.into_iter()
                .map(|(s, n)| {
                    let state = s
                        .parse()
                        .map_err(|e| corrupt(&format!("{table}.state"), e))?;
                    Ok((state, u64::try_from(n).unwrap_or(0)))
                })
                .collect()
        }
        let mut conn = self.pool.acquire().await?;
        let jobs = query(
            "SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state",
            (),
        )
        .rows(&mut *conn)
        .await?;
        let tasks = query(
            "SELECT state, COUNT(*) FROM tasks GROUP BY state ORDER BY state",
            (),
        )
        .rows(&mut *conn)
        .await?;
        Ok(StateCounts {
            jobs: parse(jobs, "jobs")?,
            tasks: parse(tasks, "tasks")?,
        })
    }

    async fn host_tasks(&self, host: HostId, limit: u32) -> Result<Vec<HostTask>> {
        select_all(
            &self.pool,
            "FROM tasks t JOIN jobs j ON j.id = t.job JOIN stages s ON s.id = t.stage \
             WHERE t.host = ? ORDER BY t.id DESC LIMIT ?",
            (host.0, i64::from(limit)),
        )
        .await
    }
}
