//! `SqlStore`: the [`super::Store`] on sqlx (SQLite).

/// The SQL store (to be written).
#[derive(Debug)]
pub struct SqlStore;
