//! The one error type of the server crate: what stops `bigmgr` from starting or serving.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can stop `bigmgr serve` or `bigmgr quickstart`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or malformed; the message names the flag, variable or key to fix.
    #[error("configuration: {0}")]
    Config(String),
    /// A file or directory could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The listen address could not be bound (in use, or not an address of this machine).
    #[error("cannot listen on {addr}: {source}; pick another --listen address")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while serving.
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
    /// bigmgr-core failed (the store, a stack, a refused agent …).
    #[error(transparent)]
    Core(#[from] bigmgr_core::Error),
    /// A quickstart step did not complete; the message says which and what to try.
    #[error("quickstart: {0}")]
    Quickstart(String),
}

/// A file or directory that could not be read or written, with why: the server's and the
/// client's errors both carry it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct IoError {
    /// The file or directory.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// The error of reading or writing `path`.
    pub fn new(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError {
            path: path.into(),
            source,
        }
    }
}

/// The result type of the server crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io(IoError::new(path, source))
    }

    /// The process exit code for this error: 2 for configuration mistakes (as for usage
    /// errors), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => 2,
            _ => 1,
        }
    }
}
