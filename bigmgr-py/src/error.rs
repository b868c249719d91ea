//! The module's one error type and its Python exception hierarchy: `bigmgr.Error` and its
//! subclasses `NotFound`, `Conflict`, `PermissionDenied`, `InvalidInput`, `JobFailed`.

use pyo3::PyErr;
use pyo3::create_exception;
use pyo3::exceptions::PyException;

create_exception!(
    bigmgr,
    BigmgrError,
    PyException,
    "Every error bigmgr raises; its message is the core's."
);
create_exception!(
    bigmgr,
    NotFound,
    BigmgrError,
    "A cluster, host, service, job … that does not exist."
);
create_exception!(
    bigmgr,
    Conflict,
    BigmgrError,
    "The request conflicts with the current state (a name taken, a started unit, a concurrent change)."
);
create_exception!(
    bigmgr,
    PermissionDenied,
    BigmgrError,
    "The token's user may not do this (or no valid token)."
);
create_exception!(
    bigmgr,
    InvalidInput,
    BigmgrError,
    "The request is malformed or breaks a rule (a wrong config type, a bad placement, a template that can't render)."
);
create_exception!(
    bigmgr,
    JobFailed,
    BigmgrError,
    "A job that was waited for ended FAILED or CANCELED; `.job` is the job."
);

/// What went wrong, by kind; each kind is one Python exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Something named does not exist.
    NotFound(String),
    /// A conflict with the current state.
    Conflict(String),
    /// Not allowed (or not authenticated).
    PermissionDenied(String),
    /// Bad input.
    InvalidInput(String),
    /// A job ended without succeeding.
    JobFailed {
        /// The job.
        id: i64,
        /// Its final state.
        state: String,
        /// What failed.
        message: String,
    },
    /// Anything else: transport, store, server errors.
    Other(String),
}

/// The module's result.
pub type Result<T> = std::result::Result<T, Error>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound(m)
            | Error::Conflict(m)
            | Error::PermissionDenied(m)
            | Error::InvalidInput(m)
            | Error::Other(m) => f.write_str(m),
            Error::JobFailed { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl From<bigmgr_core::Error> for Error {
    fn from(e: bigmgr_core::Error) -> Error {
        use bigmgr_core::Error as E;
        let m = e.to_string();
        match e {
            E::NotFound { .. } => Error::NotFound(m),
            E::AlreadyExists { .. } | E::Conflict(_) => Error::Conflict(m),
            E::PermissionDenied(_) | E::Unauthenticated(_) | E::Refused(_) => {
                Error::PermissionDenied(m)
            }
            E::Invalid(_)
            | E::InvalidField { .. }
            | E::Cardinality { .. }
            | E::Cycle { .. }
            | E::Template { .. }
            | E::Manifest { .. }
            | E::Spec(_)
            | E::Pipeline(_)
            | E::Stack { .. } => Error::InvalidInput(m),
            _ => Error::Other(m),
        }
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let m = e.to_string();
        match e {
            Error::NotFound(_) => NotFound::new_err(m),
            Error::Conflict(_) => Conflict::new_err(m),
            Error::PermissionDenied(_) => PermissionDenied::new_err(m),
            Error::InvalidInput(_) => InvalidInput::new_err(m),
            Error::JobFailed { .. } => JobFailed::new_err(m),
            Error::Other(_) => BigmgrError::new_err(m),
        }
    }
}
