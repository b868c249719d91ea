//! Replicas on PostgreSQL: the engine's lease (which replica runs the job engine, at which
//! epoch), the fence on that replica's writes, and notifications between replicas
//! (`LISTEN`/`NOTIFY`). Times are the database's clock, so replicas' clocks need not agree.

use super::{Engine, SqlStore, WriteTx, query};
use crate::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The lease of the job engine: its holder runs the engine.
pub const ENGINE_LEASE: &str = "engine";

/// The database's clock in milliseconds, as SQL.
const NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// Who holds a lease, at which epoch, and for how much longer (by the database's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder's id (a replica's url and a process id).
    pub holder: String,
    /// Grows each time the lease changes hands.
    pub epoch: i64,
    /// Milliseconds until it expires (negative once expired).
    pub expires_in_ms: i64,
}

/// The fence of a replica's engine: the lease it must hold, at which epoch (0: none, so every
/// write is refused). Shared with the replica's leadership loop, which sets the epoch.
#[derive(Debug, Clone)]
pub struct Fence {
    holder: Arc<str>,
    epoch: Arc<AtomicI64>,
}

impl Fence {
    /// A fence for `holder`, holding nothing yet.
    pub fn new(holder: &str) -> Fence {
        Fence {
            holder: Arc::from(holder),
            epoch: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The epoch writes must find (0: refuse every write).
    pub fn set_epoch(&self, epoch: i64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// The epoch writes must find.
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Fails with [`Error::Fenced`] unless the lease is this holder's at this epoch. Runs in
    /// the write transaction, after its lock: no other writer can change the lease meanwhile.
    pub(super) async fn check(&self, tx: &mut WriteTx<'_>) -> Result<()> {
        let epoch = self.epoch();
        let found: Option<(String, i64)> = query(
            "SELECT holder, epoch FROM leases WHERE name = ?",
            (ENGINE_LEASE,),
        )
        .row(&mut **tx)
        .await?;
        match found {
            Some((holder, e)) if *holder == *self.holder && e == epoch && epoch > 0 => Ok(()),
            Some((holder, e)) => Err(Error::Fenced(format!(
                "the engine's lease is {holder}'s at epoch {e}, not this replica's \
                 ({} at epoch {epoch}): nothing was written",
                self.holder
            ))),
            None => Err(Error::Fenced(
                "no replica holds the engine's lease: nothing was written".into(),
            )),
        }
    }
}

impl SqlStore {
    fn need_postgres(&self, what: &str) -> Result<()> {
        match self.engine {
            Engine::Postgres => Ok(()),
            Engine::Sqlite => Err(Error::Invalid(format!(
                "{what} needs a PostgreSQL store: replicas share one database"
            ))),
        }
    }

    /// The same store, whose writes are all fenced by `fence` (see [`Fence`]).
    pub fn fenced(&self, fence: Fence) -> SqlStore {
        SqlStore {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// Takes the engine's lease for `holder` for `ttl` if it is free, expired, or already
    /// `holder`'s (then it is renewed at the same epoch); the epoch grows when it changes
    /// hands or was expired. `None` if another replica holds it. Runs as a write, so it waits
    /// for a fenced write of the old holder in progress, and nothing of that holder's lands
    /// after it.
    pub async fn acquire_lease(&self, holder: &str, ttl: Duration) -> Result<Option<i64>> {
        self.need_postgres("a lease")?;
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let sql = format!(
            "INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, ?, 1, {NOW_MS} + ?) \
             ON CONFLICT (name) DO UPDATE SET \
               epoch = CASE WHEN leases.holder = EXCLUDED.holder \
                             AND leases.expires_at >= {NOW_MS} \
                        THEN leases.epoch ELSE leases.epoch + 1 END, \
               holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
             WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < {NOW_MS} \
             RETURNING epoch"
        );
        let unfenced = SqlStore {
            fence: None,
            ..self.clone()
        };
        let mut tx = unfenced.begin_write().await?;
        let epoch: Option<i64> = query(&sql, (ENGINE_LEASE, holder, ttl))
            .value(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(epoch)
    }

    /// Extends the engine's lease if `holder` still holds it at `epoch`; false if not (another
    /// replica took it: step down).
    pub async fn renew_lease(&self, holder: &str, epoch: i64, ttl: Duration) -> Result<bool> {
        self.need_postgres("a lease")?;
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let sql = format!(
            "UPDATE leases SET expires_at = {NOW_MS} + ? \
             WHERE name = ? AND holder = ? AND epoch = ?"
        );
        let res = query(&sql, (ttl, ENGINE_LEASE, holder, epoch))
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Gives the engine's lease up (a replica stopping cleanly), so another takes it at once.
    pub async fn release_lease(&self, holder: &str, epoch: i64) -> Result<()> {
        self.need_postgres("a lease")?;
        let sql = format!(
            "UPDATE leases SET expires_at = {NOW_MS} - 1 WHERE name = ? AND holder = ? AND epoch = ?"
        );
        query(&sql, (ENGINE_LEASE, holder, epoch))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Who holds the engine's lease, if anyone ever did.
    pub async fn lease(&self) -> Result<Option<Lease>> {
        self.need_postgres("a lease")?;
        let sql = format!("SELECT holder, epoch, expires_at - {NOW_MS} FROM leases WHERE name = ?");
        let row: Option<(String, i64, i64)> = query(&sql, (ENGINE_LEASE,)).row(&self.pool).await?;
        Ok(row.map(|(holder, epoch, expires_in_ms)| Lease {
            holder,
            epoch,
            expires_in_ms,
        }))
    }

    /// Sends `payload` to the replicas listening on `channel` (delivered when the sending
    /// transaction commits; at most 8000 bytes).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        self.need_postgres("notifying replicas")?;
        query("SELECT pg_notify(?, ?)", (channel, payload))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A connection of its own listening on `channels` for other replicas' notifications.
    pub async fn listen(&self, channels: &[&str]) -> Result<sqlx::postgres::PgListener> {
        self.need_postgres("listening to replicas")?;
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica paused (or hung) inside a write transaction holds the write lock; PostgreSQL
    /// ends its session after a few idle seconds, so another replica still takes the lease,
    /// and the paused one's transaction commits nothing when it wakes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_left_open_by_a_paused_replica_does_not_block_the_lease() {
        let schema = bigmgr_test_support::PgSchema::create("paused");
        let paused = SqlStore::open(&schema.url()).await.expect("open");
        let other = SqlStore::open(&schema.url()).await.expect("open");
        let mut tx = paused.begin_write().await.expect("a write");
        query(
            "INSERT INTO clusters (name, created_at) VALUES (?, 0)",
            ("half",),
        )
        .execute(&mut *tx)
        .await
        .expect("insert");
        let took = tokio::time::timeout(
            Duration::from_secs(20),
            other.acquire_lease("b", Duration::from_secs(30)),
        )
        .await
        .expect("the lease is taken although a paused write held the lock")
        .expect("lease");
        assert_eq!(took, Some(1));
        assert!(tx.commit().await.is_err(), "its session was ended");
        let names: Vec<String> = crate::store::ClusterStore::list_clusters(&other)
            .await
            .expect("list")
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert!(
            names.is_empty(),
            "nothing of the paused write landed: {names:?}"
        );
        paused.close().await;
        other.close().await;
    }
}
