//! What a call of the client can fail with.

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting given to the client is wrong (a server URL that is not `http://host:port`).
    #[error("{0}")]
    Invalid(String),
    /// The server could not be reached.
    #[error(
        "cannot reach the bigmgr server at {url}: {reason}; is `bigmgr serve` running there? \
         Point --server (or BIGMGR_SERVER) at it"
    )]
    Connect {
        /// The server's URL.
        url: String,
        /// Why, from the innermost error (`Connection refused (os error 111)`).
        reason: String,
    },
    /// The server answered with a problem (RFC 9457).
    #[error("{detail} ({status} {title})")]
    Problem {
        /// The HTTP status.
        status: u16,
        /// The problem's title (the status's reason phrase).
        title: String,
        /// What went wrong and what to do about it.
        detail: String,
    },
    /// The server answered something this client does not understand, did not answer in time,
    /// or the exchange broke.
    #[error("{0}")]
    Http(String),
}

/// The result type of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status of a problem the server answered with.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Problem { status, .. } => Some(*status),
            _ => None,
        }
    }
}
