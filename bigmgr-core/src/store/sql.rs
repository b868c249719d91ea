//! `SqlStore`: every part of the [`super::Store`] on sqlx, on SQLite or PostgreSQL. Here:
//! opening and migrating the database, and what the parts share: the write lock and
//! transaction, the query helpers and error mapping. How each model type is read from a row is
//! in `sql/rows.rs`. Each trait is in a file of its own under `sql/`: `clusters.rs`,
//! `agents.rs`, `services.rs`, `configs.rs`, `jobs.rs` (and its `apply` in `batch.rs`),
//! `auth.rs` (users and API tokens) and `audit.rs`.
//!
//! One SQL text serves both engines, through sqlx's `Any` driver: SQLite (a file in WAL mode, or
//! in memory) is the embedded default, PostgreSQL the shared store of several replicas. Each is
//! migrated on open from its own embedded migrations (`migrations/` and `migrations/postgres/`,
//! the same schema in each engine's types). Writes take an in-process lock and a transaction
//! that excludes every other writer of the database — `BEGIN IMMEDIATE` on SQLite, a
//! transaction-scoped advisory lock on PostgreSQL — so the rules checked inside a write hold
//! across processes and replicas; compare-and-set changes are plain `UPDATE … WHERE state = ?`.
//! Large inserts and batches of task changes go as multi-row statements in chunks.
//!
//! Every value goes into SQL as a bound parameter: the helpers take the SQL text and a tuple of
//! values for its `?`s (numbered `$1, $2, …` before they run on PostgreSQL); only column lists
//! (constants) are formatted into it.

mod agents;
mod alerts;
mod assistant;
mod audit;
mod auth;
mod batch;
mod clusters;
mod configs;
mod copy;
mod jobs;
mod pipelines;
mod replica;
mod rows;
mod services;

pub use copy::CopyReport;
pub use replica::{ENGINE_LEASE, Fence, Lease};

use crate::{Error, Result};
use rows::Record;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::{
    Any, AnyConnection, AnyPool, Arguments, Encode, Execute, Executor, FromRow, QueryBuilder,
    Transaction, Type,
};
use std::borrow::Cow;
use std::fmt::Display;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// The embedded schema migrations of SQLite (`bigmgr-core/migrations`).
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
/// The embedded schema migrations of PostgreSQL (`bigmgr-core/migrations/postgres`).
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite connection waits for another process's write lock (milliseconds).
const BUSY_TIMEOUT_MS: u32 = 5000;
/// Connections to PostgreSQL per store.
const POSTGRES_CONNECTIONS: u32 = 8;
/// How long opening, or any statement, waits for a PostgreSQL connection.
const POSTGRES_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long PostgreSQL lets a session sit idle inside a transaction before it ends the
/// session. bigmgr's transactions take milliseconds; one idle this long belongs to a process
/// that was paused or hung while holding the write lock, and ending it (rolling it back) lets
/// the other replicas write and take the engine's lease.
const POSTGRES_IDLE_IN_TRANSACTION_MS: u32 = 5000;
/// What a PostgreSQL write transaction runs first: a lock held until it ends, one per schema,
/// which every writer of that schema (in any process) takes, as SQLite's `BEGIN IMMEDIATE` is.
///
/// In the same statement (no round trip of its own), for that transaction only: joins by
/// nested loops. Writes here name their rows by key, hundreds at a time (`UPDATE … FROM
/// (VALUES …)`), and every table they join has an index on the key. Left to itself the
/// planner, pricing each index probe as a random read from disk, hashed the whole `tasks`
/// table for every 500 changes, so each statement cost as much as the table was long
/// (docs/performance.md §5).
const POSTGRES_WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('bigmgr-write:' || current_schema())), \
     set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)";

/// The url of the SQLite file at `path` (percent-encoded, so that any file name works).
pub fn sqlite_url(path: &Path) -> String {
    let mut url = String::from("sqlite://");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// Rows per statement that takes its rows as one JSON value: see [`json_rows`].
const JSON_CHUNK: usize = 1000;

/// Rows as one JSON array, for a PostgreSQL statement that reads them with
/// `json_to_recordset(?::json) AS c(…)`. Its text is the same whatever the number of rows, so
/// it is parsed and prepared once per connection, and one value is bound instead of
/// thousands: a `VALUES` list of 500 rows took longer to plan than to run (docs/performance.md
/// §5). Free text in the rows goes through [`text`] first, as it would as a parameter.
fn json_rows<T: serde::Serialize>(rows: &[T]) -> Result<String> {
    serde_json::to_string(rows).map_err(|e| Error::Store(format!("rows as JSON: {e}")))
}

/// Free text as both engines can keep it: a NUL character (which PostgreSQL's `text` cannot
/// hold) becomes U+FFFD, on SQLite too, so that every engine stores the same.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// The SQL text for the engine `exec` runs on: for PostgreSQL, its `?`s numbered `$1, $2, …`
/// in order (`?N` becomes `$N`); for SQLite as written (SQLite reads `$N` too, but looks each
/// named parameter up by a linear search: quadratic in a statement of thousands of values).
/// Statements hold no `?` in string literals.
fn sql_for<'c, 's>(exec: &impl Exec<'c>, sql: &'s str) -> Cow<'s, str> {
    if exec.postgres() {
        numbered(sql)
    } else {
        Cow::Borrowed(sql)
    }
}

/// `sql` with its `?`s numbered `$1, $2, …` in order (`?N` becomes `$N`).
fn numbered(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
        } else if chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            n += 1;
            out.push_str(&format!("${n}"));
        }
    }
    Cow::Owned(out)
}

/// The database engine a [`SqlStore`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite: a file, or a private in-memory database.
    Sqlite,
    /// PostgreSQL: a database (and schema) shared by every replica.
    Postgres,
}

impl Engine {
    /// The engine a database url names: `sqlite:…` or `postgres://…` (`postgresql://…`).
    pub fn of_url(url: &str) -> Result<Engine> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(Error::Store(format!(
                "bad database url '{}': bigmgr stores in sqlite://<path>, sqlite::memory: or \
                 postgres://<user>@<host>/<database>",
                redact_url(url)
            )))
        }
    }
}

/// A database url with its password (if any) hidden, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The [`Store`](super::Store) on SQLite or PostgreSQL through sqlx: one database for every
/// part, so the rules that span parts (a cluster with jobs is not deleted, a unit in an
/// unfinished job is not removed) are checked against the same data they protect.
///
/// Cheap to clone: clones share the connection pool and the write lock. Where the trait leaves
/// it open, [`JobStore::apply`](super::JobStore::apply) stores a log line repeated with the same
/// task, attempt and number once (redelivered output is harmless), skips unit states of unknown
/// units, and fails the whole batch with [`Error::Invalid`] for a log line of an unknown task.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    engine: Engine,
    /// Serialises this process's writes.
    lock: Arc<Mutex<()>>,
    /// The url it was opened with (a replica listens for notifications on a connection of
    /// its own).
    url: Arc<str>,
    /// Set on the store a replica's engine writes through: every write first checks that this
    /// replica still holds the engine's lease at this epoch (see `replica.rs`).
    fence: Option<replica::Fence>,
}

impl SqlStore {
    /// Opens the database at `url` and migrates it.
    ///
    /// `url` is `sqlite://path/to/file.db` (relative or absolute path; created if missing),
    /// `sqlite::memory:` (a private in-memory database, served by a single connection), or
    /// `postgres://user@host:port/database` (the database must exist; a schema other than
    /// `public` is chosen with `?options=-csearch_path%3D<schema>`).
    pub async fn open(url: &str) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let engine = Engine::of_url(url)?;
        let bad = |e: sqlx::Error| Error::Store(format!("cannot open {}: {e}", redact_url(url)));
        let pool = match engine {
            Engine::Sqlite => {
                let memory = url.contains(":memory:") || url.contains("mode=memory");
                let url = if memory || url.contains("mode=") {
                    url.to_string()
                } else if url.contains('?') {
                    format!("{url}&mode=rwc")
                } else {
                    format!("{url}?mode=rwc")
                };
                let options = if memory {
                    // Every in-memory connection would be its own database (or, shared, would
                    // vanish with the last connection): keep exactly one, forever.
                    AnyPoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    AnyPoolOptions::new().max_connections(4)
                };
                options
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            let journal = if memory { "MEMORY" } else { "WAL" };
                            // One statement each: a string of several may run only its first.
                            for pragma in [
                                format!("PRAGMA journal_mode = {journal}"),
                                "PRAGMA synchronous = NORMAL".to_string(),
                                "PRAGMA foreign_keys = ON".to_string(),
                                format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"),
                            ] {
                                conn.execute(&*pragma).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .map_err(bad)?
            }
            Engine::Postgres => AnyPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS)
                .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        let set = format!(
                            "SET idle_in_transaction_session_timeout = \
                             {POSTGRES_IDLE_IN_TRANSACTION_MS}"
                        );
                        conn.execute(&*set).await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await
                .map_err(bad)?,
        };
        match engine {
            Engine::Sqlite => SQLITE_MIGRATOR.run(&pool).await?,
            Engine::Postgres => POSTGRES_MIGRATOR.run(&pool).await?,
        }
        Ok(SqlStore {
            pool,
            engine,
            lock: Arc::new(Mutex::new(())),
            url: Arc::from(url),
            fence: None,
        })
    }

    /// Opens (creating if missing) the SQLite file at `path` and migrates it.
    pub async fn open_path(path: &Path) -> Result<SqlStore> {
        Self::open(&sqlite_url(path)).await
    }

    /// The engine this store runs on.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction that excludes every other writer of the database (see the
    /// module's documentation), under this process's write lock. Dropped without
    /// [`WriteTx::commit`], it rolls back.
    async fn begin_write(&self) -> Result<WriteTx<'_>> {
        let lock = self.lock.lock().await;
        let tx = match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => {
                let mut tx = self.pool.begin().await?;
                tx.execute(POSTGRES_WRITE_LOCK).await?;
                tx
            }
        };
        let mut tx = WriteTx { tx, _lock: lock };
        if let Some(fence) = &self.fence {
            fence.check(&mut tx).await?;
        }
        Ok(tx)
    }

    /// Begins a read-only transaction whose statements all see one snapshot.
    async fn begin_read(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.engine {
            Engine::Sqlite => self.pool.begin().await?,
            Engine::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        })
    }

    /// Runs one write statement (it needs no transaction of its own) under the write lock.
    /// The error is sqlx's, for the caller to map constraint violations.
    async fn write<'q>(&self, sql: &'q str, binds: impl Binds<'q>) -> sqlx::Result<AnyQueryResult> {
        if self.fence.is_some() {
            // A fenced write checks the lease in its transaction.
            let mut tx = self.begin_write().await.map_err(fenced_as_sqlx)?;
            let res = query(sql, binds).execute(&mut *tx).await?;
            tx.commit().await.map_err(fenced_as_sqlx)?;
            return Ok(res);
        }
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
        if self.fence.is_some() {
            let mut tx = self.begin_write().await?;
            let row = insert(&mut *tx, sql, binds, violation).await?;
            tx.commit().await?;
            return Ok(row);
        }
        let _lock = self.lock.lock().await;
        insert(&self.pool, sql, binds, violation).await
    }
}

/// An immediate write transaction holding the write lock (see [`SqlStore::begin_write`]); it
/// derefs to its connection.
struct WriteTx<'s> {
    // Dropped before the lock: a transaction that is not committed rolls back first.
    tx: Transaction<'static, Any>,
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
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

// ---------------------------------------------------------------------------------------------
// Queries: the SQL text and a tuple of values for its `?`s, on the pool or a connection.

/// Where a statement runs: the pool or a connection (`&mut *tx` for a transaction's), and
/// which engine that is (the SQL text differs in its parameters, see [`sql_for`]).
trait Exec<'c>: Executor<'c, Database = Any> {
    /// True on PostgreSQL.
    fn postgres(&self) -> bool;
}

impl<'c> Exec<'c> for &'c AnyPool {
    fn postgres(&self) -> bool {
        self.connect_options()
            .database_url
            .scheme()
            .starts_with("postgres")
    }
}

impl<'c> Exec<'c> for &'c mut AnyConnection {
    fn postgres(&self) -> bool {
        self.backend_name() == "PostgreSQL"
    }
}

/// The values of a statement's `?`s, in order: a tuple (`()`, `(a,)`, `(a, b)` …).
trait Binds<'a>: Send {
    /// The values as sqlx arguments.
    fn arguments(self) -> sqlx::Result<AnyArguments<'a>>;
}

macro_rules! binds_for_tuple {
    ($($t:ident $i:tt),*) => {
        impl<'a, $($t),*> Binds<'a> for ($($t,)*)
        where
            $($t: 'a + Send + Encode<'a, Any> + Type<Any>,)*
        {
            #[allow(unused_mut)]
            fn arguments(self) -> sqlx::Result<AnyArguments<'a>> {
                let mut args = AnyArguments::default();
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
    let row = sqlx::query_with(&sql_for(&exec, &sql), binds.arguments()?)
        .fetch_one(exec)
        .await
        .map_err(violation)?;
    T::from_row(&row)
}

/// A statement: its SQL and the values for its `?`s, run on the pool or a connection.
fn query<'q>(sql: &'q str, binds: impl Binds<'q>) -> Statement<'q> {
    Statement {
        sql: Cow::Borrowed(sql),
        args: binds.arguments(),
    }
}

/// A built query's SQL (numbered, see [`numbered`]) and arguments, as a [`Statement`].
fn built<'q>(qb: &'q mut QueryBuilder<'_, Any>) -> Statement<'q> {
    let sql = qb.sql().to_owned();
    let mut query = qb.build();
    let args = query
        .take_arguments()
        .map(Option::unwrap_or_default)
        .map_err(sqlx::Error::Encode);
    Statement {
        sql: Cow::Owned(sql),
        args,
    }
}

/// See [`query`].
struct Statement<'q> {
    sql: Cow<'q, str>,
    args: sqlx::Result<AnyArguments<'q>>,
}

/// A row as a tuple of its columns (`(T,)` for one).
trait Columns: for<'r> FromRow<'r, AnyRow> + Send + Unpin {}

impl<O: for<'r> FromRow<'r, AnyRow> + Send + Unpin> Columns for O {}

impl<'q> Statement<'q> {
    /// Runs it (the error is sqlx's, for the caller to map constraint violations).
    async fn execute<'c>(self, exec: impl Exec<'c>) -> sqlx::Result<AnyQueryResult> {
        sqlx::query_with(&sql_for(&exec, &self.sql), self.args?)
            .execute(exec)
            .await
    }

    /// Runs an `INSERT … RETURNING id` and gives the id (the error is sqlx's, for the caller
    /// to map constraint violations).
    async fn inserted_id<'c>(self, exec: impl Exec<'c>) -> sqlx::Result<i64> {
        let (id,): (i64,) = sqlx::query_as_with(&sql_for(&exec, &self.sql), self.args?)
            .fetch_one(exec)
            .await?;
        Ok(id)
    }

    /// Every row as it is.
    async fn fetch_all<'c>(self, exec: impl Exec<'c>) -> Result<Vec<AnyRow>> {
        Ok(sqlx::query_with(&sql_for(&exec, &self.sql), self.args?)
            .fetch_all(exec)
            .await?)
    }

    /// Every row, read as a `T`.
    async fn records<'c, T: Record>(self, exec: impl Exec<'c>) -> Result<Vec<T>> {
        self.fetch_all(exec)
            .await?
            .iter()
            .map(T::from_row)
            .collect()
    }

    /// Every row, each as a tuple of its columns.
    async fn rows<'c, O: Columns>(self, exec: impl Exec<'c>) -> Result<Vec<O>> {
        Ok(self.returning(exec).await?)
    }

    /// Every row, each as a tuple of its columns, of an `INSERT … RETURNING` (the error is
    /// sqlx's, for the caller to map constraint violations).
    async fn returning<'c, O: Columns>(self, exec: impl Exec<'c>) -> sqlx::Result<Vec<O>> {
        sqlx::query_as_with(&sql_for(&exec, &self.sql), self.args?)
            .fetch_all(exec)
            .await
    }

    /// The first row as a tuple of its columns, if any.
    async fn row<'c, O: Columns>(self, exec: impl Exec<'c>) -> Result<Option<O>> {
        Ok(sqlx::query_as_with(&sql_for(&exec, &self.sql), self.args?)
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
    let statement = Statement {
        sql: Cow::Owned(sql),
        args: binds.arguments(),
    };
    statement.records(exec).await
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
fn select<'a, T: Record>(from: &str) -> QueryBuilder<'a, Any> {
    QueryBuilder::new(format!("SELECT {} {from}", T::COLS))
}

/// Every row of a built query, read as a `T`.
async fn read_all<'c, T: Record>(
    exec: impl Exec<'c>,
    qb: &mut QueryBuilder<'_, Any>,
) -> Result<Vec<T>> {
    built(qb).records(exec).await
}

/// Ends a listing by id: after a cursor, ascending, at most `limit` rows.
fn page(qb: &mut QueryBuilder<'_, Any>, after: Option<i64>, limit: Option<u32>) {
    if let Some(after) = after {
        qb.push(" AND id > ").push_bind(after);
    }
    qb.push(" ORDER BY id");
    if let Some(limit) = limit {
        qb.push(" LIMIT ").push_bind(i64::from(limit));
    }
}

/// An error of the store's own (a fenced write) carried where sqlx's is expected; the
/// callers map it back unchanged (`Error::from` keeps its text).
fn fenced_as_sqlx(e: Error) -> sqlx::Error {
    sqlx::Error::Protocol(e.to_string())
}

/// `Ok` if a write touched a row, else [`Error::NotFound`] for `kind` `id`.
fn found(res: &AnyQueryResult, kind: &'static str, id: impl Display) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::{numbered, redact_url, sqlite_url};
    use std::path::Path;

    #[test]
    fn placeholders_are_numbered_in_order_for_postgres() {
        assert_eq!(
            numbered("a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(numbered("x = ?1 OR y = ?1"), "x = $1 OR y = $1");
        assert!(matches!(
            numbered("SELECT 1"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn urls_hide_passwords_and_name_any_file() {
        assert_eq!(
            redact_url("postgres://bigmgr:s3cret@db:5432/bigmgr"),
            "postgres://bigmgr:***@db:5432/bigmgr"
        );
        assert_eq!(
            redact_url("postgres://bigmgr@db/x"),
            "postgres://bigmgr@db/x"
        );
        assert_eq!(
            sqlite_url(Path::new("/data/my db?#.db")),
            "sqlite:///data/my%20db%3F%23.db"
        );
    }
}
