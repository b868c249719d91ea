//! The client backend: the REST API of a running `bigmgr serve` (reqwest).

/// A client of a `bigmgr serve`.
#[derive(Debug)]
pub struct Rest;
