//! `SqlStore`: every part of the [`super::Store`] on sqlx (SQLite). Here: opening and migrating
//! the database, and what the parts share: the write lock and transaction, the query helpers
//! and error mapping. How each model type is read from a row is in `sql/rows.rs`. Each trait is
//! in a file of its own under `sql/`: `clusters.rs`, `agents.rs`, `services.rs`, `configs.rs`,
//! `jobs.rs` (and its `apply` in `batch.rs`), `auth.rs` (users and API tokens) and `audit.rs`.
//!
//! One SQLite database (a file in WAL mode, or in memory), migrated on open from the embedded
//! `migrations/`. Writes take an in-process lock and an immediate transaction, so writers queue
//! instead of spinning on the busy handler; compare-and-set changes are plain
//! `UPDATE … WHERE state = ?`, so they stay correct across processes too. Large inserts and
//! batches of task changes go as multi-row statements in chunks.
//!
//! Every value goes into SQL as a bound parameter: the helpers take the SQL text and a tuple of
//! values for its `?`s; only column lists (constants) are formatted into it.

mod agents;
mod audit;
mod auth;
mod batch;
mod clusters;
mod configs;
mod jobs;
mod rows;
mod services;

use crate::{Error, Result};
use rows::Record;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteQueryResult, SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, Encode, Executor, FromRow, QueryBuilder, Sqlite, Transaction, Type};
use std::fmt::Display;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// The embedded schema migrations (`bigmgr-core/migrations`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a connection waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The [`Store`](super::Store) on SQLite through sqlx: one database for every part, so the
/// rules that span parts (a cluster with jobs is not deleted, a unit in an unfinished job is not
/// removed) are checked against the same data they protect.
///
/// Cheap to clone: clones share the connection pool and the write lock. Where the trait leaves
/// it open, [`JobStore::apply`](super::JobStore::apply) stores a log line repeated with the same
/// task, attempt and number once (redelivered output is harmless), skips unit states of unknown
/// units, and fails the whole batch with [`Error::Invalid`] for a log line of an unknown task.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: SqlitePool,
    /// Serialises this process's writes.
    lock: Arc<Mutex<()>>,
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
            lock: Arc::new(Mutex::new(())),
        })
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins an immediate write transaction under this process's write lock: writers here
    /// queue on the lock, other processes on SQLite's (the busy timeout). Dropped without
    /// [`WriteTx::commit`], it rolls back.
    async fn begin_write(&self) -> Result<WriteTx<'_>> {
        let lock = self.lock.lock().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _lock: lock })
    }

    /// Runs one write statement (it needs no transaction of its own) under the write lock.
    /// The error is sqlx's, for the caller to map constraint violations.
    async fn write<'q>(
        &self,
        sql: &'q str,
        binds: impl Binds<'q>,
    ) -> sqlx::Result<SqliteQueryResult> {
        let _lock = self.lock.lock().await;
        query(sql, binds).execute(&self.pool).await
    }

    /// [`SqlStore::write`] of a statement about one row: NotFound `kind` `id` if it touched none.
    async fn write_found<'q>(
        &self,
        sql: &'q str,
        binds: impl Binds<'q>,
        kind: &'static str,
        id: impl Display,
    ) -> Result<()> {
        found(&self.write(sql, binds).await?, kind, id)
    }

    /// [`insert`] under the write lock, on the pool.
    async fn write_insert<T: Record>(
        &self,
        sql: &str,
        binds: impl Binds<'_>,
        violation: impl FnOnce(sqlx::Error) -> Error,
    ) -> Result<T> {
        let _lock = self.lock.lock().await;
        insert(&self.pool, sql, binds, violation).await
    }
}

/// An immediate write transaction holding the write lock (see [`SqlStore::begin_write`]); it
/// derefs to its connection.
struct WriteTx<'s> {
    // Dropped before the lock: a transaction that is not committed rolls back first.
    tx: Transaction<'static, Sqlite>,
    _lock: MutexGuard<'s, ()>,
}

impl WriteTx<'_> {
    /// Commits, then releases the write lock.
    async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Deref for WriteTx<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

// ---------------------------------------------------------------------------------------------
// Queries: the SQL text and a tuple of values for its `?`s, on the pool or a connection.

/// Where a statement runs: the pool or a connection (`&mut *tx` for a transaction's).
trait Exec<'c>: Executor<'c, Database = Sqlite> {}

impl<'c, E: Executor<'c, Database = Sqlite>> Exec<'c> for E {}

/// The values of a statement's `?`s, in order: a tuple (`()`, `(a,)`, `(a, b)` …).
trait Binds<'a>: Send {
    /// The values as sqlx arguments.
    fn arguments(self) -> sqlx::Result<SqliteArguments<'a>>;
}

macro_rules! binds_for_tuple {
    ($($t:ident $i:tt),*) => {
        impl<'a, $($t),*> Binds<'a> for ($($t,)*)
        where
            $($t: 'a + Send + Encode<'a, Sqlite> + Type<Sqlite>,)*
        {
            #[allow(unused_mut)]
            fn arguments(self) -> sqlx::Result<SqliteArguments<'a>> {
                let mut args = SqliteArguments::default();
                $(args.add(self.$i).map_err(sqlx::Error::Encode)?;)*
                Ok(args)
            }
        }
    };
}

binds_for_tuple!();
binds_for_tuple!(A 0);
binds_for_tuple!(A 0, B 1);
binds_for_tuple!(A 0, B 1, C 2);
binds_for_tuple!(A 0, B 1, C 2, D 3);
binds_for_tuple!(A 0, B 1, C 2, D 3, E 4);
binds_for_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
binds_for_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
binds_for_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
binds_for_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);

/// Runs `{sql} RETURNING {T::COLS}` (an `INSERT` of one row) and reads the row as stored;
/// `violation` maps the statement's error (such as a constraint it violates).
async fn insert<'c, T: Record>(
    exec: impl Exec<'c>,
    sql: &str,
    binds: impl Binds<'_>,
    violation: impl FnOnce(sqlx::Error) -> Error,
) -> Result<T> {
    let sql = format!("{sql} RETURNING {}", T::COLS);
    let row = sqlx::query_with(&sql, binds.arguments()?)
        .fetch_one(exec)
        .await
        .map_err(violation)?;
    T::from_row(&row)
}

/// A statement: its SQL and the values for its `?`s, run on the pool or a connection.
fn query<'q>(sql: &'q str, binds: impl Binds<'q>) -> Statement<'q> {
    Statement {
        sql,
        args: binds.arguments(),
    }
}

/// See [`query`].
struct Statement<'q> {
    sql: &'q str,
    args: sqlx::Result<SqliteArguments<'q>>,
}

/// A row as a tuple of its columns (`(T,)` for one).
trait Columns: for<'r> FromRow<'r, SqliteRow> + Send + Unpin {}

impl<O: for<'r> FromRow<'r, SqliteRow> + Send + Unpin> Columns for O {}

impl<'q> Statement<'q> {
    /// Runs it (the error is sqlx's, for the caller to map constraint violations).
    async fn execute<'c>(self, exec: impl Exec<'c>) -> sqlx::Result<SqliteQueryResult> {
        sqlx::query_with(self.sql, self.args?).execute(exec).await
    }

    /// Every row, each as a tuple of its columns.
    async fn rows<'c, O: Columns>(self, exec: impl Exec<'c>) -> Result<Vec<O>> {
        let query = sqlx::query_as_with(self.sql, self.args?);
        Ok(query.fetch_all(exec).await?)
    }

    /// The first row as a tuple of its columns, if any.
    async fn row<'c, O: Columns>(self, exec: impl Exec<'c>) -> Result<Option<O>> {
        Ok(sqlx::query_as_with(self.sql, self.args?)
            .fetch_optional(exec)
            .await?)
    }

    /// The first column of every row.
    async fn values<'c, T>(self, exec: impl Exec<'c>) -> Result<Vec<T>>
    where
        (T,): Columns,
    {
        let rows = self.rows(exec).await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

    /// The first column of the first row, if any.
    async fn value<'c, T>(self, exec: impl Exec<'c>) -> Result<Option<T>>
    where
        (T,): Columns,
    {
        Ok(self.row(exec).await?.map(|(v,)| v))
    }

    /// The first row as a tuple of its columns; NotFound `kind` `id` if there is none.
    async fn found_row<'c, O: Columns>(
        self,
        exec: impl Exec<'c>,
        kind: &'static str,
        id: impl Display,
    ) -> Result<O> {
        self.row(exec)
            .await?
            .ok_or_else(|| Error::not_found(kind, id))
    }

    /// The first column of the first row; NotFound `kind` `id` if there is none.
    async fn found_value<'c, T>(
        self,
        exec: impl Exec<'c>,
        kind: &'static str,
        id: impl Display,
    ) -> Result<T>
    where
        (T,): Columns,
    {
        let (value,) = self.found_row(exec, kind, id).await?;
        Ok(value)
    }
}

/// `SELECT {T::COLS} {from}`: every row, read as a `T`.
async fn select_all<'c, T: Record>(
    exec: impl Exec<'c>,
    from: &str,
    binds: impl Binds<'_>,
) -> Result<Vec<T>> {
    let sql = format!("SELECT {} {from}", T::COLS);
    read_all(exec, sqlx::query_with(&sql, binds.arguments()?)).await
}

/// `SELECT {T::COLS} {from}` of at most one row (a lookup by a unique key): the row, read as
/// a `T`, if any.
async fn select_one<'c, T: Record>(
    exec: impl Exec<'c>,
    from: &str,
    binds: impl Binds<'_>,
) -> Result<Option<T>> {
    Ok(select_all(exec, from, binds).await?.into_iter().next())
}

/// A query builder of `SELECT {T::COLS} {from}`, for queries whose conditions vary.
fn select<'a, T: Record>(from: &str) -> QueryBuilder<'a, Sqlite> {
    QueryBuilder::new(format!("SELECT {} {from}", T::COLS))
}

/// Every row of a built query, read as a `T`.
async fn read_all<'c, 'q, T: Record>(
    exec: impl Exec<'c>,
    query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
) -> Result<Vec<T>> {
    query
        .fetch_all(exec)
        .await?
        .iter()
        .map(T::from_row)
        .collect()
}

/// Ends a listing by id: after a cursor, ascending, at most `limit` rows.
fn page(qb: &mut QueryBuilder<'_, Sqlite>, after: Option<i64>, limit: Option<u32>) {
    if let Some(after) = after {
        qb.push(" AND id > ").push_bind(after);
    }
    qb.push(" ORDER BY id");
    if let Some(limit) = limit {
        qb.push(" LIMIT ").push_bind(i64::from(limit));
    }
}

/// `Ok` if a write touched a row, else [`Error::NotFound`] for `kind` `id`.
fn found(res: &SqliteQueryResult, kind: &'static str, id: impl Display) -> Result<()> {
    if res.rows_affected() == 0 {
        Err(Error::not_found(kind, id))
    } else {
        Ok(())
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

/// Maps the violations of an insert: a unique one to [`Error::AlreadyExists`] `kind` `name`, a
/// foreign-key one (the row it belongs to is missing) to `missing()`, anything else as is.
fn insert_err(
    e: sqlx::Error,
    kind: &'static str,
    name: &str,
    missing: impl FnOnce() -> Error,
) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => unique_or(e, kind, name),
        _ => fk_or(e, missing),
    }
}

fn to_i64(v: impl TryInto<i64> + Copy + Display, what: &str) -> Result<i64> {
    v.try_into()
        .map_err(|_| Error::Invalid(format!("{what} {v} is too large to store")))
}
