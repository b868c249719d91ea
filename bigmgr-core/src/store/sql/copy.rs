//! Copying a whole installation from one [`SqlStore`] to another (SQLite to PostgreSQL or
//! back): every table, row by row with its ids, then a check that the destination holds the
//! same — per table the row count and a digest of every row, read back from both sides.

use super::{Engine, SqlStore, built};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, QueryBuilder, Row};
use tokio_stream::StreamExt;

/// Every table, parents before children (so foreign keys hold as rows arrive), with its
/// columns and the key that orders it. The same in both engines' schemas.
const TABLES: &[(&str, &str, &str)] = &[
    ("clusters", "id, name, created_at", "id"),
    (
        "hosts",
        "id, cluster, name, address, state, last_heartbeat, credential, facts, metrics, \
         removed_at, reported_address, cert_fingerprint, ssh_host_key",
        "id",
    ),
    (
        "services",
        "id, cluster, name, stack, stack_version, service, created_at, removed_at, configs, \
         host_overrides, config_version",
        "id",
    ),
    (
        "units",
        "id, service, component, host, state, health, applied_version, applied_hash, removed_at",
        "id",
    ),
    (
        "jobs",
        "id, cluster, command, target, options, state, created_at, started_at, finished_at",
        "id",
    ),
    (
        "stages",
        "id, job, seq, name, service, component, command, state",
        "id",
    ),
    ("stage_deps", "stage, after", "stage, after"),
    (
        "tasks",
        "id, job, stage, unit, host, attempt, state, exit_code, pid, started_at, finished_at, \
         message",
        "id",
    ),
    (
        "task_logs",
        "task, attempt, seq, stream, at, line",
        "task, attempt, seq",
    ),
    ("join_tokens", "hash, cluster, created_at", "hash"),
    ("users", "id, name, password_hash, role, created_at", "id"),
    (
        "api_tokens",
        "id, \"user\", hash, name, created_at, last_used_at",
        "id",
    ),
    (
        "audit",
        "id, at, actor, action, target, outcome, detail",
        "id",
    ),
    (
        "config_versions",
        "service, version, author, created_at, message, configs, host_overrides",
        "service, version",
    ),
    (
        "snapshots",
        "id, cluster, name, author, created_at, message, entries",
        "id",
    ),
    (
        "pipelines",
        "id, cluster, name, author, created_at, definition, state, removed_at, message, \
         replicas",
        "id",
    ),
    (
        "pipeline_batches",
        "pipeline, node, batch, state, location, lease_holder, lease_until, attempts, \
         created_at, updated_at",
        "pipeline, node, batch",
    ),
    (
        "relations",
        "id, cluster, requirer, requirer_endpoint, provider, provider_endpoint, interface, \
         auto_reconfigure, created_at, removed_at",
        "id",
    ),
    (
        "relation_events",
        "id, relation, at, kind, service, detail, job",
        "id",
    ),
    ("host_metrics", "host, at, metrics", "host, at, metrics"),
    (
        "alerts",
        "id, definition, subject, cluster, host, service, unit, state, text, since, checked_at",
        "id",
    ),
    (
        "alert_changes",
        "id, alert, cluster, from_state, to_state, text, at",
        "id",
    ),
    (
        "alert_targets",
        "id, cluster, name, url, created_at, kind",
        "id",
    ),
    (
        "notifications",
        "id, target, body, created_at, attempts, next_at, delivered_at",
        "id",
    ),
    (
        "delivery_attempts",
        "id, notification, at, status, answer",
        "id",
    ),
    (
        "maintenance",
        "id, cluster, host, service, until, reason, by_actor, created_at",
        "id",
    ),
    (
        "unit_checks",
        "unit, name, result, checked_at",
        "unit, name",
    ),
    (
        "alert_overrides",
        "cluster, definition, version, settings, author, created_at",
        "cluster, definition, version",
    ),
    (
        "service_policies",
        "service, heal_restart, heal_grace_ms, heal_max_per_hour, updated_at",
        "service",
    ),
    (
        "assistant_providers",
        "name, base_url, model, api_key, is_default, timeout_ms, updated_at",
        "name",
    ),
    (
        "assistant_threads",
        "id, \"user\", cluster, title, created_at",
        "id",
    ),
    (
        "assistant_messages",
        "id, thread, role, content, tool_calls, tool_call_id, created_at",
        "id",
    ),
    (
        "assistant_proposals",
        "id, thread, title, action, state, result, created_at, decided_at",
        "id",
    ),
];

/// Rows per multi-row `INSERT` while copying.
const COPY_CHUNK: usize = 200;

/// What [`SqlStore::copy_into`] copied: per table, its rows and the digest both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Per table, in copy order: its name, how many rows, and the SHA-256 of every row.
    pub tables: Vec<(String, u64, String)>,
}

impl CopyReport {
    /// Rows copied, every table together.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n, _)| n).sum()
    }
}

/// One value of a column: every column of the schema is an integer or text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Null,
    Int(i64),
    Text(String),
}

fn values(row: &AnyRow) -> Result<Vec<Value>> {
    (0..row.len())
        .map(|i| {
            if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                return Ok(v.map_or(Value::Null, Value::Int));
            }
            let v: Option<String> = row.try_get(i)?;
            Ok(v.map_or(Value::Null, Value::Text))
        })
        .collect()
}

/// Adds a row to a digest: each value tagged with its kind and length, so that no two rows
/// read alike.
fn digest_row(hash: &mut Sha256, row: &[Value]) {
    for v in row {
        match v {
            Value::Null => hash.update(b"n"),
            Value::Int(i) => {
                hash.update(b"i");
                hash.update(i.to_le_bytes());
            }
            Value::Text(t) => {
                hash.update(b"t");
                hash.update((t.len() as u64).to_le_bytes());
                hash.update(t.as_bytes());
            }
        }
    }
}

impl SqlStore {
    /// Copies everything this store holds into `dest`, which must be empty (freshly migrated),
    /// keeping every id; then reads both back and compares, per table, the number of rows and
    /// a digest of all of them. Nothing else may write to either store meanwhile (stop the
    /// server first).
    ///
    /// A destination that holds anything is [`Error::Conflict`]; a difference found by the
    /// check is [`Error::Store`] naming the table.
    pub async fn copy_into(&self, dest: &SqlStore) -> Result<CopyReport> {
        for (table, _, _) in TABLES {
            let count = dest.count(table).await?;
            if count > 0 {
                return Err(Error::Conflict(format!(
                    "the destination is not empty (table {table} has {count} rows): copy into \
                     a new database, or a new schema"
                )));
            }
        }
        let mut tx = dest.begin_write().await?;
        for (table, cols, key) in TABLES {
            let select = format!("SELECT {cols} FROM {table} ORDER BY {key}");
            let mut rows = sqlx::query(&select).fetch(&self.pool);
            let mut chunk: Vec<Vec<Value>> = Vec::with_capacity(COPY_CHUNK);
            while let Some(row) = rows.next().await {
                chunk.push(values(&row?)?);
                if chunk.len() == COPY_CHUNK {
                    insert_rows(&mut tx, table, cols, &chunk).await?;
                    chunk.clear();
                }
            }
            if !chunk.is_empty() {
                insert_rows(&mut tx, table, cols, &chunk).await?;
            }
        }
        if dest.engine == Engine::Postgres {
            // Identities go on after the largest id copied, as SQLite's rowids do.
            for (table, cols, key) in TABLES {
                if *key == "id" && *table != "tasks" && cols.starts_with("id,") {
                    let sql = format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                         COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                    );
                    sqlx::query(&sql).execute(&mut *tx).await?;
                }
            }
        }
        tx.commit().await?;

        let mut report = CopyReport { tables: Vec::new() };
        for (table, cols, key) in TABLES {
            let (n, from) = self.digest(table, cols, key).await?;
            let (m, to) = dest.digest(table, cols, key).await?;
            if (n, &from) != (m, &to) {
                return Err(Error::Store(format!(
                    "the copy of table {table} differs: {n} rows (sha256 {from}) in the source, \
                     {m} rows (sha256 {to}) in the destination"
                )));
            }
            report.tables.push((table.to_string(), n, from));
        }
        Ok(report)
    }

    /// The rows of a table.
    async fn count(&self, table: &str) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let (n,): (i64,) = sqlx::query_as(&sql).fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// A table's rows and the SHA-256 (hex) of all of them in key order.
    async fn digest(&self, table: &str, cols: &str, key: &str) -> Result<(u64, String)> {
        let select = format!("SELECT {cols} FROM {table} ORDER BY {key}");
        let mut rows = sqlx::query(&select).fetch(&self.pool);
        let mut hash = Sha256::new();
        let mut n = 0u64;
        while let Some(row) = rows.next().await {
            digest_row(&mut hash, &values(&row?)?);
            n += 1;
        }
        Ok((n, hex::encode(hash.finalize())))
    }
}

/// Inserts rows of `cols` into `table` in one statement.
async fn insert_rows(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    cols: &str,
    rows: &[Vec<Value>],
) -> Result<()> {
    let mut qb: QueryBuilder<Any> = QueryBuilder::new(format!("INSERT INTO {table} ({cols}) "));
    qb.push_values(rows, |mut b, row| {
        for v in row {
            match v {
                Value::Null => b.push("NULL"),
                Value::Int(i) => b.push_bind(*i),
                Value::Text(t) => b.push_bind(t.as_str()),
            };
        }
    });
    built(&mut qb).execute(conn).await?;
    Ok(())
}
