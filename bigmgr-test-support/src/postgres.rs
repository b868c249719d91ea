//! A PostgreSQL schema of a test's own on the machine's PostgreSQL ([`PgSchema`]): created
//! empty, dropped (with everything in it) when the value is dropped, also when a test fails.

use sqlx::Connection;
use std::sync::atomic::{AtomicU32, Ordering};

/// The database tests use unless `BIGMGR_TEST_POSTGRES` names another: the machine's
/// PostgreSQL on loopback (trust authentication), database `test`.
pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The url of the database tests use (`BIGMGR_TEST_POSTGRES`, or [`DEFAULT_POSTGRES`]).
pub fn postgres_base_url() -> String {
    std::env::var("BIGMGR_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_POSTGRES.to_string())
}

/// A schema of a test's own: [`PgSchema::url`] opens a store in it. Dropped with the value.
#[derive(Debug)]
pub struct PgSchema {
    name: String,
    base: String,
}

impl PgSchema {
    /// Creates an empty schema named after `label`, the process and a counter.
    pub fn create(label: &str) -> PgSchema {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let name = format!(
            "t_{clean}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let base = postgres_base_url();
        run_sql(
            &base,
            &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"),
        )
        .unwrap_or_else(|e| panic!("creating schema {name} on PostgreSQL at {base}: {e}"));
        PgSchema { name, base }
    }

    /// A schema when the tests run on PostgreSQL (`BIGMGR_TEST_STORE=postgres`), for a test
    /// that restarts its server on the same store; `None` when they run on SQLite.
    pub fn when_testing_postgres(label: &str) -> Option<PgSchema> {
        std::env::var("BIGMGR_TEST_STORE")
            .is_ok_and(|s| s == "postgres")
            .then(|| PgSchema::create(label))
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The url of the database with this schema as the search path.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.name)
    }

    /// Runs SQL statements in this schema (for a test that looks at the rows themselves).
    pub fn execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        run_sql(&self.url(), sql)
    }
}

/// Runs SQL statements on a connection of their own, on a thread of their own: callers may be
/// inside a runtime (a test, a drop), which cannot block on another.
fn run_sql(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            sqlx::raw_sql(&sql).execute(&mut conn).await?;
            conn.close().await
        })
    })
    .join()
    .expect("the SQL thread does not panic")
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        if let Err(e) = run_sql(&self.base, &sql) {
            eprintln!("could not drop schema {}: {e}", self.name);
        }
    }
}
