//! [`JobStore::apply`](crate::store::JobStore::apply) of [`SqlStore`](super::SqlStore): a
//! batch of compare-and-set changes, unit states, applied configs and log lines, in one
//! transaction, in multi-row statements of bounded size.

use super::{Exec, JSON_CHUNK, built, fk_or, json_rows, query, text, to_i64};
use crate::model::*;
use crate::store::{Applied, Batch, TaskChange};
use crate::{Error, Result};
use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::query_builder::Separated;
use sqlx::{Any, QueryBuilder, Row};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
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

    // A task may change more than once in a batch (RUNNING, then SUCCEEDED). Each round
    // writes one row per task that has changes left: the longest run of its next changes that
    // compose into one. They all apply if the first does; if it does not, only the first is
    // refused and the rest wait for the next round, so the outcome is the batch's order.
    let mut slots: HashMap<TaskId, usize> = HashMap::with_capacity(batch.tasks.len());
    let mut left: Vec<VecDeque<usize>> = Vec::new();
    for (i, c) in batch.tasks.iter().enumerate() {
        let slot = *slots.entry(c.id).or_insert_with(|| {
            left.push(VecDeque::new());
            left.len() - 1
        });
        left[slot].push_back(i);
    }
    while !left.is_empty() {
        let (round, runs): (Vec<Cow<'_, TaskChange>>, Vec<usize>) =
            left.iter().map(|next| compose(&batch.tasks, next)).unzip();
        let done = apply_task_round(conn, &round).await?;
        for ((next, n), ok) in left.iter_mut().zip(runs).zip(done) {
            let taken = if ok { n } else { 1 };
            for i in next.drain(..taken) {
                applied.tasks[i] = ok;
            }
        }
        left.retain(|next| !next.is_empty());
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

/// The longest run of a task's next changes (`next`, indices into `changes` in batch order)
/// that compose into one change, and how many it took. Change `b` composes after `a` when it
/// starts where `a` ends, neither clears nor sets the attempt, and guards no attempt other
/// than the one `a` leaves: then `b` applies whenever `a` does, and the one change writes
/// what the two would (`b`'s fields over `a`'s). When `a` does not apply, `b` is tried on its
/// own in the next round (the caller's loop).
fn compose<'a>(changes: &'a [TaskChange], next: &VecDeque<usize>) -> (Cow<'a, TaskChange>, usize) {
    let mut one = Cow::Borrowed(&changes[next[0]]);
    let mut n = 1;
    for &j in next.iter().skip(1) {
        let b = &changes[j];
        let a = one.as_ref();
        let attempt = a.set_attempt.or(a.attempt_is);
        if b.from != a.to
            || b.clear_result
            || b.set_attempt.is_some()
            || b.attempt_is.is_some_and(|x| Some(x) != attempt)
        {
            break;
        }
        let c = one.to_mut();
        c.to = b.to;
        c.exit_code = b.exit_code.or(c.exit_code);
        c.pid = b.pid.or(c.pid);
        c.started_at = b.started_at.or(c.started_at);
        c.finished_at = b.finished_at.or(c.finished_at);
        if b.message.is_some() {
            c.message.clone_from(&b.message);
        }
        n += 1;
    }
    (one, n)
}

/// `UPDATE tasks` by compare-and-set from the rows of `c` (`$from`, which names them `c`), one
/// statement text for both sources of rows.
macro_rules! task_update {
    ($from:literal) => {
        concat!(
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
                              ELSE COALESCE(c.message, tasks.message) END ",
            $from,
            " WHERE tasks.id = c.id AND tasks.state = c.from_state \
               AND (c.attempt_is IS NULL OR tasks.attempt = c.attempt_is) \
             RETURNING tasks.id"
        )
    };
}

/// A task change as a row of JSON for `json_to_recordset` (PostgreSQL); a field left out is
/// NULL.
#[derive(Serialize)]
struct TaskChangeRow<'a> {
    id: i64,
    from_state: &'static str,
    to_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_is: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    set_attempt: Option<u32>,
    clear: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Cow<'a, str>>,
}

/// Applies task changes whose ids are all distinct; whether each one's compare matched. On
/// PostgreSQL the rows go as one JSON value to a statement whose text never changes (prepared
/// once per connection, planned in a tenth of the time of a `VALUES` list of thousands of
/// parameters); on SQLite as a `VALUES` list, in chunks of one multi-row `UPDATE … FROM` each.
async fn apply_task_round(
    conn: &mut AnyConnection,
    changes: &[Cow<'_, TaskChange>],
) -> Result<Vec<bool>> {
    let postgres = conn.postgres();
    let size = if postgres {
        JSON_CHUNK
    } else {
        TASK_UPDATE_CHUNK
    };
    let mut applied = vec![false; changes.len()];
    for (c0, chunk) in changes.chunks(size).enumerate() {
        let rows = if postgres {
            let rows: Vec<TaskChangeRow<'_>> = chunk
                .iter()
                .map(|c| TaskChangeRow {
                    id: c.id.0,
                    from_state: c.from.as_str(),
                    to_state: c.to.as_str(),
                    attempt_is: c.attempt_is,
                    set_attempt: c.set_attempt,
                    clear: c.clear_result,
                    exit_code: c.exit_code,
                    pid: c.pid,
                    started_at: c.started_at,
                    finished_at: c.finished_at,
                    message: c.message.as_deref().map(text),
                })
                .collect();
            let sql = task_update!(
                "FROM json_to_recordset(?::json) AS c(id BIGINT, from_state TEXT, \
                 to_state TEXT, attempt_is BIGINT, set_attempt BIGINT, clear BOOLEAN, \
                 exit_code BIGINT, pid BIGINT, started_at BIGINT, finished_at BIGINT, \
                 message TEXT)"
            );
            query(sql, (json_rows(&rows)?,))
                .fetch_all(&mut *conn)
                .await?
        } else {
            let mut qb = with_values(
                "c(id, from_state, to_state, attempt_is, set_attempt, clear, exit_code, pid, \
                 started_at, finished_at, message)",
                chunk,
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
            qb.push(task_update!("FROM c"));
            built(&mut qb).fetch_all(&mut *conn).await?
        };
        let index: HashMap<i64, usize> = chunk
            .iter()
            .enumerate()
            .map(|(k, c)| (c.id.0, c0 * size + k))
            .collect();
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            if let Some(&i) = index.get(&id) {
                applied[i] = true;
            }
        }
    }
    Ok(applied)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: TaskState, to: TaskState) -> TaskChange {
        TaskChange {
            id: TaskId(1),
            from,
            to,
            attempt_is: Some(1),
            ..TaskChange::default()
        }
    }

    /// An agent's Started and Finished of one run, in one step, are one row.
    #[test]
    fn a_start_and_its_result_compose_into_one_change() {
        let changes = [
            TaskChange {
                pid: Some(7),
                started_at: Some(100),
                ..change(TaskState::Queued, TaskState::Running)
            },
            TaskChange {
                exit_code: Some(0),
                finished_at: Some(200),
                ..change(TaskState::Running, TaskState::Succeeded)
            },
        ];
        let (one, n) = compose(&changes, &VecDeque::from([0, 1]));
        assert_eq!(n, 2);
        assert_eq!(
            *one,
            TaskChange {
                pid: Some(7),
                started_at: Some(100),
                exit_code: Some(0),
                finished_at: Some(200),
                ..change(TaskState::Queued, TaskState::Succeeded)
            }
        );
    }

    /// What cannot be one compare-and-set stays apart: a gap between states, a retry, a guard
    /// on another attempt.
    #[test]
    fn changes_that_do_not_follow_stay_apart() {
        let cases = [
            change(TaskState::Queued, TaskState::Failed),
            TaskChange {
                clear_result: true,
                set_attempt: Some(2),
                ..change(TaskState::Running, TaskState::Pending)
            },
            TaskChange {
                attempt_is: Some(2),
                ..change(TaskState::Running, TaskState::Succeeded)
            },
        ];
        for second in cases {
            let changes = [change(TaskState::Queued, TaskState::Running), second];
            let (one, n) = compose(&changes, &VecDeque::from([0, 1]));
            assert_eq!((n, &*one), (1, &changes[0]), "{:?}", changes[1]);
        }
    }
}
