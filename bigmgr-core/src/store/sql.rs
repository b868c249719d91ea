//! `SqlStore`: every part of the [`super::Store`] on sqlx (SQLite). Here: opening and migrating
//! the database, and what the parts share (row decoding, error mapping). Each trait is in a file
//! of its own under `sql/`: `clusters.rs`, `agents.rs`, `services.rs`, `configs.rs`, `jobs.rs`,
//! `auth.rs` (users and API tokens) and `audit.rs`.
//!
//! One SQLite database (a file in WAL mode, or in memory), migrated on open from the embedded
//! `migrations/`. Writes take an in-process lock and an immediate transaction, so writers queue
//! instead of spinning on the busy handler; compare-and-set changes are plain
//! `UPDATE … WHERE state = ?`, so they stay correct across processes too. Large inserts and
//! batches of task changes go as multi-row statements in chunks.

mod agents;
mod audit;
mod auth;
mod clusters;
mod configs;
mod jobs;
mod services;

use crate::{Error, Result};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The embedded schema migrations (`bigmgr-core/migrations`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a connection waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The [`Store`](super::Store) on SQLite through sqlx: one database for every part, so the
/// rules that span parts (a cluster with jobs is not deleted, a unit in an unfinished job is not
/// removed) are checked against the same data they protect.
///
/// Cheap to clone: clones share the connection pool and the write lock. Where the trait leaves
/// it open, [`JobStore::apply`](super::JobStore::apply) stores a log line repeated with the same task, attempt and number
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
