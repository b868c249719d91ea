//! [`JobStore::apply`](crate::store::JobStore::apply) of [`SqlStore`](super::SqlStore): a
//! batch of compare-and-set changes, unit states, applied configs and log lines, in one
//! transaction, in multi-row statements of bounded size.

use super::{built, fk_or, query, text, to_i64};
use crate::model::*;
use crate::store::{Applied, Batch, TaskChange};
use crate::{Error, Result};
use sqlx::AnyConnection;
use sqlx::query_builder::Separated;
use sqlx::{Any, QueryBuilder, Row};
use std::collections::HashMap;
use std::hash::Hash;

/// Changes per multi-row task `UPDATE` (11 binds a row).
const TASK_UPDATE_CHUNK: usize = 500;
/// Rows per multi-row `INSERT` of log lines (6 binds a row).
const LOG_INSERT_CHUNK: usize = 500;
/// Rows per multi-row unit `UPDATE` (at most 3 binds a row).
const UNIT_UPDATE_CHUNK: usize = 1000;

/// Applies a batch on a write transaction's connection (the caller commits).
pub(super) async fn apply(conn: &mut AnyConnection, batch: &Batch) -> Result<Applied> {
    let mut applied = Applied {
        jobs: vec![false; batch.jobs.len()],
        stages: vec![false; batch.stages.len()],
        tasks: vec![false; batch.tasks.len()],
    };
    for (i, c) in batch.jobs.iter().enumerate() {
        let res = query(
            "UPDATE jobs SET state = ?, \
               started_at = CASE WHEN ? AND started_at IS NULL THEN ? ELSE started_at END, \
               finished_at = CASE WHEN ? THEN ? ELSE NULL END \
             WHERE id = ? AND state = ?",
            (
                c.to.as_str(),
                c.to == JobState::Running,
                c.at,
                c.to.is_final(),
                c.at,
                c.id.0,
                c.from.as_str(),
            ),
        )
        .execute(&mut *conn)
        .await?;
        applied.jobs[i] = res.rows_affected() == 1;
    }

    for (i, c) in batch.stages.iter().enumerate() {
        let res = query(
            "UPDATE stages SET state = ? WHERE id = ? AND state = ?",
            (c.to.as_str(), c.id.0, c.from.as_str()),
        )
        .execute(&mut *conn)
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
        apply_task_round(conn, &batch.tasks, round, &mut applied.tasks).await?;
    }

    apply_units(conn, &batch.units).await?;
    apply_configs(conn, &batch.applied_configs).await?;
    insert_logs(conn, &batch.logs).await?;
    Ok(applied)
}

/// A query builder of `WITH {cte} AS (VALUES …)`, a row of values for each of `rows`.
pub(super) fn with_values<'a, T>(
    cte: &str,
    rows: impl IntoIterator<Item = T>,
    push_row: impl FnMut(Separated<'_, 'a, Any, &'static str>, T),
) -> QueryBuilder<'a, Any> {
    let mut qb = QueryBuilder::new(format!("WITH {cte} AS ("));
    qb.push_values(rows, push_row);
    qb.push(") ");
    qb
}

/// The last value given for each key, in no particular order.
fn last_wins<K: Hash + Eq, V>(items: impl IntoIterator<Item = (K, V)>) -> Vec<(K, V)> {
    let last: HashMap<K, V> = items.into_iter().collect();
    last.into_iter().collect()
}

/// Applies task changes whose ids are all distinct, in chunks of one multi-row `UPDATE … FROM`
/// each; marks `applied[i]` for those whose compare matched.
async fn apply_task_round(
    conn: &mut AnyConnection,
    changes: &[TaskChange],
    round: &[usize],
    applied: &mut [bool],
) -> Result<()> {
    for chunk in round.chunks(TASK_UPDATE_CHUNK) {
        let mut qb = with_values(
            "c(id, from_state, to_state, attempt_is, set_attempt, clear, exit_code, pid, \
             started_at, finished_at, message)",
            chunk.iter().map(|&i| &changes[i]),
            |mut row, c| {
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
                    .push_bind(c.message.as_deref().map(|m| text(m).into_owned()));
            },
        );
        qb.push(
            "UPDATE tasks SET \
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
        let rows = built(&mut qb).fetch_all(&mut *conn).await?;
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
async fn apply_units(conn: &mut AnyConnection, units: &[(UnitId, UnitState)]) -> Result<()> {
    let last = last_wins(units.iter().copied());
    for chunk in last.chunks(UNIT_UPDATE_CHUNK) {
        let mut qb = with_values("c(id, state)", chunk, |mut row, (id, state)| {
            row.push_bind(id.0).push_bind(state.as_str());
        });
        qb.push("UPDATE units SET state = c.state FROM c WHERE units.id = c.id");
        built(&mut qb).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Sets the config version and file hash units applied (the last one given for a unit wins);
/// unknown units are skipped.
async fn apply_configs(conn: &mut AnyConnection, applied: &[(UnitId, u32, String)]) -> Result<()> {
    let last = last_wins(
        applied
            .iter()
            .map(|(id, v, hash)| (*id, (*v, hash.as_str()))),
    );
    for chunk in last.chunks(UNIT_UPDATE_CHUNK) {
        let mut qb = with_values("c(id, version, hash)", chunk, |mut row, (id, (v, hash))| {
            row.push_bind(id.0)
                .push_bind(i64::from(*v))
                .push_bind(*hash);
        });
        qb.push(
            "UPDATE units SET applied_version = c.version, applied_hash = c.hash \
             FROM c WHERE units.id = c.id",
        );
        built(&mut qb).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Appends log lines; a line already stored (same task, attempt and number) is kept as it was.
async fn insert_logs(conn: &mut AnyConnection, logs: &[LogLine]) -> Result<()> {
    for chunk in logs.chunks(LOG_INSERT_CHUNK) {
        let mut rows = Vec::with_capacity(chunk.len());
        for l in chunk {
            rows.push((l, to_i64(l.seq, "log line number")?));
        }
        let mut qb: QueryBuilder<Any> =
            QueryBuilder::new("INSERT INTO task_logs (task, attempt, seq, stream, at, line) ");
        qb.push_values(rows, |mut b, (l, seq)| {
            b.push_bind(l.task.0)
                .push_bind(i64::from(l.attempt))
                .push_bind(seq)
                .push_bind(l.stream.as_str())
                .push_bind(l.at)
                .push_bind(text(&l.line).into_owned());
        });
        qb.push(" ON CONFLICT DO NOTHING");
        built(&mut qb).execute(&mut *conn).await.map_err(|e| {
            fk_or(e, || {
                Error::Invalid("a log line names a task that does not exist".into())
            })
        })?;
    }
    Ok(())
}
