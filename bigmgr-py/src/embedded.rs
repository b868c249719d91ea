//! The embedded backend: a core `Manager` in-process on a SQLite file, with in-process agents.

/// The engine in-process.
#[derive(Debug)]
pub struct Embedded;
