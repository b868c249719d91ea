//! `SqlStore`: every part of the [`super::Store`] on sqlx (SQLite). Clusters, hosts, agents,
//! services and jobs are here; users, tokens and audit in `sql/auth.rs`; config versions,
//! snapshots and relations in `sql/configs.rs`.
//!
//! One SQLite database (a file in WAL mode, or in memory), migrated on open from the embedded
//! `migrations/`. Writes take an in-process lock and an immediate transaction, so writers queue
//! instead of spinning on the busy handler; compare-and-set changes are plain
//! `UPDATE … WHERE state = ?`, so they stay correct across processes too. Large inserts and
//! batches of task changes go as multi-row statements in chunks.

mod auth;
mod configs;

use super::{AgentStore, Applied, Batch, ClusterStore, JobStore, ServiceStore, TaskChange};
use crate::model::*;
use crate::{Error, Result};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashMap;
use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The embedded schema migrations (`bigmgr-core/migrations`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Rows per multi-row `INSERT` of tasks (5 binds a row).
const TASK_INSERT_CHUNK: usize = 500;
/// Changes per multi-row task `UPDATE` (11 binds a row).
const TASK_UPDATE_CHUNK: usize = 500;
/// Rows per multi-row `INSERT` of log lines (6 binds a row).
const LOG_INSERT_CHUNK: usize = 500;
/// Rows per multi-row unit `UPDATE` (at most 3 binds a row).
const UNIT_UPDATE_CHUNK: usize = 1000;

/// How long a connection waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const JOB_COLS: &str =
    "id, cluster, command, target, options, state, created_at, started_at, finished_at";
const STAGE_COLS: &str = "id, job, seq, name, service, component, command, state";
const TASK_COLS: &str = "id, job, stage, unit, host, attempt, state, exit_code, pid, started_at, \
                         finished_at, message";
const HOST_COLS: &str =
    "id, cluster, name, address, reported_address, state, last_heartbeat, facts, metrics";
const SERVICE_COLS: &str = "id, cluster, name, stack, stack_version, service, created_at, configs, \
                            host_overrides, config_version";
/// Unit columns, qualified by the alias `u`.
const UNIT_COLS: &str =
    "u.id, u.service, u.component, u.host, u.state, u.health, u.applied_version, u.applied_hash";

/// The [`Store`](super::Store) on SQLite through sqlx: one database for every part, so the
/// rules that span parts (a cluster with jobs is not deleted, a unit in an unfinished job is not
/// removed) are checked against the same data they protect.
///
/// Cheap to clone: clones share the connection pool and the write lock. Where the trait leaves
/// it open, [`JobStore::apply`] stores a log line repeated with the same task, attempt and number
/// once (redelivered output is harmless), skips unit states of unknown units, and fails the
/// whole batch with [`Error::Invalid`] for a log line of an unknown task.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: SqlitePool,
    /// Serialises this process's write transactions.
    write: Arc<tokio::sync::Mutex<()>>,
}

impl SqlStore {
    /// Opens (creating if missing) the database at `url` and migrates it.
    ///
    /// `url` is `sqlite://path/to/file.db` (relative or absolute path) or `sqlite::memory:`
    /// (a private in-memory database, served by a single connection).
    pub async fn open(url: &str) -> Result<SqlStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Store(format!("bad database url '{url}': {e}")))?;
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::connect(options, memory).await
    }

    /// Opens (creating if missing) the SQLite file at `path` and migrates it.
    pub async fn open_path(path: &Path) -> Result<SqlStore> {
        Self::connect(SqliteConnectOptions::new().filename(path), false).await
    }

    async fn connect(options: SqliteConnectOptions, memory: bool) -> Result<SqlStore> {
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = if memory {
            // Every in-memory connection would be its own database (or, shared, would vanish
            // with the last connection): keep exactly one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.journal_mode(SqliteJournalMode::Wal))
                .await?
        };
        MIGRATOR.run(&pool).await?;
        Ok(SqlStore {
            pool,
            write: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Row mapping.

fn corrupt(col: &str, e: impl Display) -> Error {
    Error::Store(format!("unreadable value in column {col}: {e}"))
}

fn text_state<T: FromStr<Err = Error>>(row: &SqliteRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e| corrupt(col, e))
}

fn u32_col(row: &SqliteRow, col: &str) -> Result<u32> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|e| corrupt(col, e))
}

fn opt_u32_col(row: &SqliteRow, col: &str) -> Result<Option<u32>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| u32::try_from(v).map_err(|e| corrupt(col, e)))
        .transpose()
}

fn opt_i32_col(row: &SqliteRow, col: &str) -> Result<Option<i32>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| i32::try_from(v).map_err(|e| corrupt(col, e)))
        .transpose()
}

fn cluster_row(row: &SqliteRow) -> Result<Cluster> {
    Ok(Cluster {
        id: ClusterId(row.try_get("id")?),
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn host_row(row: &SqliteRow) -> Result<Host> {
    Ok(Host {
        id: HostId(row.try_get("id")?),
        cluster: ClusterId(row.try_get("cluster")?),
        name: row.try_get("name")?,
        address: row.try_get("address")?,
        reported_address: row.try_get("reported_address")?,
        state: text_state(row, "state")?,
        last_heartbeat: row.try_get("last_heartbeat")?,
        facts: json_col(row, "hosts.facts")?,
        metrics: json_col(row, "hosts.metrics")?,
    })
}

/// `Ok` if a write touched a row, else [`Error::NotFound`] for `kind` `id`.
pub(super) fn found(
    res: &sqlx::sqlite::SqliteQueryResult,
    kind: &'static str,
    id: impl Display,
) -> Result<()> {
    if res.rows_affected() == 0 {
        Err(Error::not_found(kind, id))
    } else {
        Ok(())
    }
}

/// A nullable JSON column (named `table.column`), decoded.
fn json_col<T: serde::de::DeserializeOwned>(row: &SqliteRow, name: &str) -> Result<Option<T>> {
    let col = name.rsplit('.').next().unwrap_or(name);
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(name, e)))
        .transpose()
}

/// A value as JSON text for a column.
fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Store(format!("cannot encode JSON: {e}")))
}

/// A map as JSON text for a nullable column; an empty map is NULL.
fn map_json<K: serde::Serialize, V: serde::Serialize>(
    map: &std::collections::BTreeMap<K, V>,
) -> Result<Option<String>> {
    if map.is_empty() {
        Ok(None)
    } else {
        to_json(map).map(Some)
    }
}

fn service_row(row: &SqliteRow) -> Result<ServiceInstance> {
    Ok(ServiceInstance {
        id: ServiceId(row.try_get("id")?),
        cluster: ClusterId(row.try_get("cluster")?),
        name: row.try_get("name")?,
        stack: row.try_get("stack")?,
        stack_version: row.try_get("stack_version")?,
        service: row.try_get("service")?,
        created_at: row.try_get("created_at")?,
        configs: json_col(row, "services.configs")?.unwrap_or_default(),
        host_overrides: json_col(row, "services.host_overrides")?.unwrap_or_default(),
        config_version: u32_col(row, "config_version")?,
    })
}

fn unit_row(row: &SqliteRow) -> Result<Unit> {
    Ok(Unit {
        id: UnitId(row.try_get("id")?),
        service: ServiceId(row.try_get("service")?),
        component: row.try_get("component")?,
        host: HostId(row.try_get("host")?),
        state: text_state(row, "state")?,
        health: json_col(row, "units.health")?,
        applied_version: opt_u32_col(row, "applied_version")?,
        applied_hash: row.try_get("applied_hash")?,
    })
}

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
// Error mapping.

/// Maps a unique-constraint violation to [`Error::AlreadyExists`], anything else as is.
fn unique_or(e: sqlx::Error, kind: &'static str, name: &str) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::AlreadyExists {
            kind,
            name: name.to_string(),
        },
        _ => e.into(),
    }
}

/// Maps a foreign-key violation to `missing()`, anything else as is.
fn fk_or(e: sqlx::Error, missing: impl FnOnce() -> Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => missing(),
        _ => e.into(),
    }
}

fn to_i64(v: impl TryInto<i64> + Copy + Display, what: &str) -> Result<i64> {
    v.try_into()
        .map_err(|_| Error::Invalid(format!("{what} {v} is too large to store")))
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

/// Inserts a unit (state NEW) of a service; an unknown host is [`Error::NotFound`].
async fn insert_unit(
    conn: &mut SqliteConnection,
    service: ServiceId,
    unit: NewUnit,
) -> Result<Unit> {
    let state = UnitState::New;
    let res =
        sqlx::query("INSERT INTO units (service, component, host, state) VALUES (?, ?, ?, ?)")
            .bind(service.0)
            .bind(&unit.component)
            .bind(unit.host.0)
            .bind(state.as_str())
            .execute(&mut *conn)
            .await
            .map_err(|e| fk_or(e, || Error::not_found("host", unit.host)))?;
    Ok(Unit {
        id: UnitId(res.last_insert_rowid()),
        service,
        component: unit.component,
        host: unit.host,
        state,
        health: None,
        applied_version: None,
        applied_hash: None,
    })
}

/// The job ids, ascending, of unfinished jobs matching `from_where` (a `FROM … WHERE …` over
/// `jobs j` with one `?` for `id`, the final states following).
async fn unfinished_jobs(
    conn: &mut SqliteConnection,
    from_where: &str,
    id: i64,
) -> Result<Vec<i64>> {
    let final_states = [JobState::Succeeded, JobState::Failed, JobState::Canceled];
    Ok(sqlx::query_scalar(&format!(
        "SELECT DISTINCT j.id {from_where} AND j.state NOT IN (?, ?, ?) ORDER BY j.id"
    ))
    .bind(id)
    .bind(final_states[0].as_str())
    .bind(final_states[1].as_str())
    .bind(final_states[2].as_str())
    .fetch_all(&mut *conn)
    .await?)
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

// ---------------------------------------------------------------------------------------------

#[async_trait]
impl ClusterStore for SqlStore {
    async fn create_cluster(&self, name: &str) -> Result<Cluster> {
        let _w = self.write.lock().await;
        let created_at = now_ms();
        let res = sqlx::query("INSERT INTO clusters (name, created_at) VALUES (?, ?)")
            .bind(name)
            .bind(created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_or(e, "cluster", name))?;
        Ok(Cluster {
            id: ClusterId(res.last_insert_rowid()),
            name: name.to_string(),
            created_at,
        })
    }

    async fn cluster_by_name(&self, name: &str) -> Result<Option<Cluster>> {
        let row = sqlx::query("SELECT id, name, created_at FROM clusters WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cluster_row).transpose()
    }

    async fn list_clusters(&self) -> Result<Vec<Cluster>> {
        sqlx::query("SELECT id, name, created_at FROM clusters ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(cluster_row)
            .collect()
    }

    async fn delete_cluster(&self, id: ClusterId) -> Result<()> {
        let _w = self.write.lock().await;
        let row = sqlx::query(
            "SELECT name, \
               (SELECT COUNT(*) FROM hosts WHERE cluster = c.id AND removed_at IS NULL) AS hosts, \
               (SELECT COUNT(*) FROM services WHERE cluster = c.id AND removed_at IS NULL) \
                 AS services, \
               (SELECT COUNT(*) FROM jobs WHERE cluster = c.id) AS jobs \
             FROM clusters c WHERE c.id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::not_found("cluster", id))?;
        let name: String = row.try_get("name")?;
        let mut held = Vec::new();
        for what in ["hosts", "services", "jobs"] {
            let n: i64 = row.try_get(what)?;
            if n > 0 {
                held.push(format!("{n} {what}"));
            }
        }
        let refuse = |held: &[String]| {
            Error::Conflict(format!(
                "cluster '{name}' still has {}; remove them before deleting the cluster",
                held.join(", ")
            ))
        };
        if !held.is_empty() {
            return Err(refuse(&held));
        }
        // Another process may have added something since: the foreign keys refuse it then.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM join_tokens WHERE cluster = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        // Removed hosts and services (and their units, config versions and relations) only stay
        // for the history of jobs; a cluster without jobs has none, so they go with it, and so
        // do its snapshots. Live ones make the foreign keys refuse below.
        for sql in [
            "DELETE FROM snapshots WHERE cluster = ?1",
            "DELETE FROM relation_events WHERE relation IN \
               (SELECT id FROM relations WHERE cluster = ?1 AND removed_at IS NOT NULL)",
            "DELETE FROM relations WHERE cluster = ?1 AND removed_at IS NOT NULL",
            "DELETE FROM config_versions WHERE service IN \
               (SELECT id FROM services WHERE cluster = ?1 AND removed_at IS NOT NULL)",
            "DELETE FROM units WHERE service IN \
               (SELECT id FROM services WHERE cluster = ?1 AND removed_at IS NOT NULL)",
            "DELETE FROM services WHERE cluster = ?1 AND removed_at IS NOT NULL",
            "DELETE FROM hosts WHERE cluster = ?1 AND removed_at IS NOT NULL \
               AND NOT EXISTS (SELECT 1 FROM units u WHERE u.host = hosts.id)",
        ] {
            sqlx::query(sql).bind(id.0).execute(&mut *tx).await?;
        }
        let res = sqlx::query("DELETE FROM clusters WHERE id = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| fk_or(e, || refuse(&["hosts, services or jobs".to_string()])))?;
        tx.commit().await?;
        found(&res, "cluster", id)
    }

    async fn add_host(&self, host: NewHost) -> Result<Host> {
        let _w = self.write.lock().await;
        let state = HostState::Waiting;
        let res = sqlx::query(
            "INSERT INTO hosts (cluster, name, address, state, last_heartbeat) \
             VALUES (?, ?, ?, ?, NULL)",
        )
        .bind(host.cluster.0)
        .bind(&host.name)
        .bind(&host.address)
        .bind(state.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                unique_or(e, "host", &host.name)
            }
            _ => fk_or(e, || Error::not_found("cluster", host.cluster)),
        })?;
        Ok(Host {
            id: HostId(res.last_insert_rowid()),
            cluster: host.cluster,
            name: host.name,
            address: host.address,
            reported_address: None,
            state,
            last_heartbeat: None,
            facts: None,
            metrics: None,
        })
    }

    async fn host_by_name(&self, name: &str) -> Result<Option<Host>> {
        let row = sqlx::query(&format!(
            "SELECT {HOST_COLS} FROM hosts WHERE name = ? AND removed_at IS NULL"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(host_row).transpose()
    }

    async fn list_hosts(&self, cluster: ClusterId) -> Result<Vec<Host>> {
        sqlx::query(&format!(
            "SELECT {HOST_COLS} FROM hosts WHERE cluster = ? AND removed_at IS NULL ORDER BY id"
        ))
        .bind(cluster.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(host_row)
        .collect()
    }

    async fn remove_host(&self, id: HostId) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT h.name, c.name AS cluster FROM hosts h JOIN clusters c ON c.id = h.cluster \
             WHERE h.id = ? AND h.removed_at IS NULL",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("host", id))?;
        let name: String = row.try_get("name")?;
        let cluster: String = row.try_get("cluster")?;
        let services: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT s.name FROM units u JOIN services s ON s.id = u.service \
             WHERE u.host = ? AND s.removed_at IS NULL AND u.removed_at IS NULL \
             ORDER BY s.name",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(first) = services.first() {
            return Err(Error::Conflict(format!(
                "host '{name}' still has units of service(s) {}; remove those services first \
                 (stop them, then e.g. bigmgr service remove {cluster} {first})",
                services.join(", ")
            )));
        }
        sqlx::query(
            "UPDATE hosts SET removed_at = ?, name = name || '#' || id, credential = NULL \
             WHERE id = ?",
        )
        .bind(now_ms())
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_host_state(
        &self,
        id: HostId,
        state: HostState,
        heartbeat: Option<i64>,
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let res = sqlx::query(
            "UPDATE hosts SET state = ?, last_heartbeat = COALESCE(?, last_heartbeat) \
             WHERE id = ?",
        )
        .bind(state.as_str())
        .bind(heartbeat)
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        found(&res, "host", id)
    }

    async fn set_host_address(&self, host: HostId, address: &str) -> Result<()> {
        let _w = self.write.lock().await;
        let res = sqlx::query(
            "UPDATE hosts SET address = ?, reported_address = NULL \
             WHERE id = ? AND removed_at IS NULL",
        )
        .bind(address)
        .bind(host.0)
        .execute(&self.pool)
        .await?;
        found(&res, "host", host)
    }
}

#[async_trait]
impl AgentStore for SqlStore {
    async fn add_join_token(&self, cluster: ClusterId, token_hash: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("INSERT INTO join_tokens (hash, cluster, created_at) VALUES (?, ?, ?)")
            .bind(token_hash)
            .bind(cluster.0)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    unique_or(e, "join token", "(hidden)")
                }
                _ => fk_or(e, || Error::not_found("cluster", cluster)),
            })?;
        Ok(())
    }

    async fn join_token_cluster(&self, token_hash: &str) -> Result<Option<ClusterId>> {
        let id: Option<i64> = sqlx::query_scalar("SELECT cluster FROM join_tokens WHERE hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id.map(ClusterId))
    }

    async fn claim_host(&self, host: HostId, credential_hash: &str) -> Result<bool> {
        let _w = self.write.lock().await;
        let res = sqlx::query(
            "UPDATE hosts SET credential = ? \
             WHERE id = ? AND credential IS NULL AND removed_at IS NULL",
        )
        .bind(credential_hash)
        .bind(host.0)
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 1 {
            return Ok(true);
        }
        let live: Option<i64> =
            sqlx::query_scalar("SELECT id FROM hosts WHERE id = ? AND removed_at IS NULL")
                .bind(host.0)
                .fetch_optional(&self.pool)
                .await?;
        match live {
            Some(_) => Ok(false),
            None => Err(Error::not_found("host", host)),
        }
    }

    async fn host_credential(&self, host: HostId) -> Result<Option<String>> {
        let row: Option<Option<String>> =
            sqlx::query_scalar("SELECT credential FROM hosts WHERE id = ?")
                .bind(host.0)
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or_else(|| Error::not_found("host", host))
    }

    async fn record_host_report(&self, host: HostId, report: &HostReport) -> Result<()> {
        let facts = report.facts.as_ref().map(to_json).transpose()?;
        let metrics = report.metrics.as_ref().map(to_json).transpose()?;
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let res = sqlx::query(
            "UPDATE hosts SET state = ?1, last_heartbeat = ?2, \
               reported_address = CASE WHEN ?3 IS NULL THEN reported_address \
                 WHEN ?3 = address THEN NULL ELSE ?3 END, \
               facts = COALESCE(?4, facts), metrics = COALESCE(?5, metrics) \
             WHERE id = ?6",
        )
        .bind(HostState::Online.as_str())
        .bind(report.at)
        .bind(report.address.as_deref())
        .bind(facts)
        .bind(metrics)
        .bind(host.0)
        .execute(&mut *tx)
        .await?;
        found(&res, "host", host)?;
        for u in &report.units {
            let health = to_json(&Health {
                healthy: u.healthy,
                message: u.message.clone(),
                checked_at: u.checked_at,
            })?;
            // A unit the store does not know (removed since) is skipped.
            sqlx::query(
                "UPDATE units SET health = ?1 WHERE host = ?2 AND component = ?3 \
                   AND removed_at IS NULL AND service = \
                   (SELECT s.id FROM services s JOIN hosts h ON h.cluster = s.cluster \
                    JOIN clusters c ON c.id = s.cluster \
                    WHERE h.id = ?2 AND c.name = ?4 AND s.name = ?5 AND s.removed_at IS NULL)",
            )
            .bind(health)
            .bind(host.0)
            .bind(&u.component)
            .bind(&u.cluster)
            .bind(&u.service)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl ServiceStore for SqlStore {
    async fn add_service(
        &self,
        service: NewService,
        units: Vec<NewUnit>,
    ) -> Result<(ServiceInstance, Vec<Unit>)> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let created_at = now_ms();
        let res = sqlx::query(
            "INSERT INTO services (cluster, name, stack, stack_version, service, created_at, \
               configs, host_overrides, config_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
        )
        .bind(service.cluster.0)
        .bind(&service.name)
        .bind(&service.stack)
        .bind(&service.stack_version)
        .bind(&service.service)
        .bind(created_at)
        .bind(map_json(&service.configs)?)
        .bind(map_json(&service.host_overrides)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                unique_or(e, "service", &service.name)
            }
            _ => fk_or(e, || Error::not_found("cluster", service.cluster)),
        })?;
        let instance = ServiceInstance {
            id: ServiceId(res.last_insert_rowid()),
            cluster: service.cluster,
            name: service.name,
            stack: service.stack,
            stack_version: service.stack_version,
            service: service.service,
            created_at,
            configs: service.configs,
            host_overrides: service.host_overrides,
            config_version: 1,
        };
        configs::insert_version(
            &mut tx,
            &ConfigVersion {
                service: instance.id,
                version: 1,
                author: service.author,
                created_at,
                message: "initial configs".into(),
                configs: instance.configs.clone(),
                host_overrides: instance.host_overrides.clone(),
            },
        )
        .await?;
        let mut placed = Vec::with_capacity(units.len());
        for unit in units {
            placed.push(insert_unit(&mut tx, instance.id, unit).await?);
        }
        tx.commit().await?;
        Ok((instance, placed))
    }

    async fn service_by_name(
        &self,
        cluster: ClusterId,
        name: &str,
    ) -> Result<Option<ServiceInstance>> {
        let row = sqlx::query(&format!(
            "SELECT {SERVICE_COLS} FROM services \
             WHERE cluster = ? AND name = ? AND removed_at IS NULL"
        ))
        .bind(cluster.0)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(service_row).transpose()
    }

    async fn list_services(&self, cluster: ClusterId) -> Result<Vec<ServiceInstance>> {
        sqlx::query(&format!(
            "SELECT {SERVICE_COLS} FROM services WHERE cluster = ? AND removed_at IS NULL ORDER BY id"
        ))
        .bind(cluster.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(service_row)
        .collect()
    }

    async fn list_units(&self, cluster: ClusterId) -> Result<Vec<Unit>> {
        sqlx::query(&format!(
            "SELECT {UNIT_COLS} FROM units u JOIN services s ON s.id = u.service \
             WHERE s.cluster = ? AND s.removed_at IS NULL AND u.removed_at IS NULL ORDER BY u.id"
        ))
        .bind(cluster.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(unit_row)
        .collect()
    }

    async fn remove_service(&self, id: ServiceId) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT s.name, c.name AS cluster FROM services s \
             JOIN clusters c ON c.id = s.cluster WHERE s.id = ? AND s.removed_at IS NULL",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("service", id))?;
        let name: String = row.try_get("name")?;
        let cluster: String = row.try_get("cluster")?;
        let started: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM units WHERE service = ? AND state = ? AND removed_at IS NULL",
        )
        .bind(id.0)
        .bind(UnitState::Started.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if started > 0 {
            return Err(Error::Conflict(format!(
                "service '{name}' has {started} started unit(s); stop it first: \
                 bigmgr job run {cluster} stop --service {name}"
            )));
        }
        let jobs = unfinished_jobs(
            &mut tx,
            "FROM jobs j JOIN stages st ON st.job = j.id WHERE st.service = ?",
            id.0,
        )
        .await?;
        if let Some(first) = jobs.first() {
            let list: Vec<String> = jobs.iter().map(i64::to_string).collect();
            return Err(Error::Conflict(format!(
                "service '{name}' is in unfinished job(s) {}; wait for them to finish or cancel \
                 them (bigmgr job cancel {first}) first",
                list.join(", ")
            )));
        }
        // Its units and relations go with it (softly: tasks and events keep referring to them).
        let at = now_ms();
        for sql in [
            "UPDATE services SET removed_at = ?1, name = name || '#' || id WHERE id = ?2",
            "UPDATE units SET removed_at = ?1 WHERE service = ?2 AND removed_at IS NULL",
            "UPDATE relations SET removed_at = ?1 \
             WHERE (requirer = ?2 OR provider = ?2) AND removed_at IS NULL",
        ] {
            sqlx::query(sql)
                .bind(at)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn add_units(&self, service: ServiceId, units: Vec<NewUnit>) -> Result<Vec<Unit>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let cluster: i64 =
            sqlx::query_scalar("SELECT cluster FROM services WHERE id = ? AND removed_at IS NULL")
                .bind(service.0)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::not_found("service", service))?;
        let mut placed = Vec::with_capacity(units.len());
        for unit in units {
            let row =
                sqlx::query("SELECT name, cluster FROM hosts WHERE id = ? AND removed_at IS NULL")
                    .bind(unit.host.0)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| Error::not_found("host", unit.host))?;
            let host: String = row.try_get("name")?;
            let host_cluster: i64 = row.try_get("cluster")?;
            if host_cluster != cluster {
                return Err(Error::Invalid(format!(
                    "host '{host}' is not in the service instance's cluster"
                )));
            }
            // Units added before in this call count too.
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM units \
                 WHERE service = ? AND component = ? AND host = ? AND removed_at IS NULL",
            )
            .bind(service.0)
            .bind(&unit.component)
            .bind(unit.host.0)
            .fetch_one(&mut *tx)
            .await?;
            if taken > 0 {
                return Err(Error::AlreadyExists {
                    kind: "unit",
                    name: format!("{} on {host}", unit.component),
                });
            }
            placed.push(insert_unit(&mut tx, service, unit).await?);
        }
        tx.commit().await?;
        Ok(placed)
    }

    async fn remove_unit(&self, id: UnitId) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT u.component, u.state, h.name AS host, s.name AS service, c.name AS cluster \
             FROM units u JOIN services s ON s.id = u.service JOIN hosts h ON h.id = u.host \
             JOIN clusters c ON c.id = s.cluster \
             WHERE u.id = ? AND u.removed_at IS NULL AND s.removed_at IS NULL",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("unit", id))?;
        let component: String = row.try_get("component")?;
        let host: String = row.try_get("host")?;
        let service: String = row.try_get("service")?;
        let cluster: String = row.try_get("cluster")?;
        let what = format!("unit {id} ({service}/{component} on {host})");
        if text_state::<UnitState>(&row, "state")? == UnitState::Started {
            return Err(Error::Conflict(format!(
                "{what} is started; stop it first: bigmgr job run {cluster} stop --units {id}"
            )));
        }
        let jobs = unfinished_jobs(
            &mut tx,
            "FROM jobs j JOIN tasks t ON t.job = j.id WHERE t.unit = ?",
            id.0,
        )
        .await?;
        if let Some(first) = jobs.first() {
            let list: Vec<String> = jobs.iter().map(i64::to_string).collect();
            return Err(Error::Conflict(format!(
                "{what} is in unfinished job(s) {}; wait for them to finish or cancel them \
                 (bigmgr job cancel {first}) first",
                list.join(", ")
            )));
        }
        sqlx::query("UPDATE units SET removed_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
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
