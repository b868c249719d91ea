//! Where the store lives, for the frontends: which engine a database url names, the url of a
//! SQLite file, a url fit for logs, and copying an installation from one database to another
//! (`bigmgr store copy`). Everything else reaches the store through the [`crate::Manager`].

use crate::Result;
use crate::store::SqlStore;
pub use crate::store::{CopyReport, Engine, redact_url, sqlite_url};

/// Copies everything in the store at `from` into the empty store at `to` (either engine; `to`
/// is created and migrated if missing), then checks per table that both hold the same rows.
/// The server must be stopped meanwhile. See [`SqlStore::copy_into`].
pub async fn copy(from: &str, to: &str) -> Result<CopyReport> {
    Engine::of_url(from)?;
    Engine::of_url(to)?;
    let source = SqlStore::open(from).await?;
    let dest = SqlStore::open(to).await?;
    let report = source.copy_into(&dest).await;
    source.close().await;
    dest.close().await;
    report
}
