//! The client backend: [`crate::backend::Backend`] over [`bigmgr_client::Client`], the typed
//! REST client the CLI uses too (paging, problem+json, following a job's events); what each
//! operation calls is in the backend's table. Problems map to the module's error kinds by
//! status.

use crate::error::Error;
use bigmgr_client::Client;

impl From<bigmgr_client::Error> for Error {
    fn from(e: bigmgr_client::Error) -> Error {
        match e {
            bigmgr_client::Error::Problem { status, detail, .. } => match status {
                404 => Error::NotFound(detail),
                409 => Error::Conflict(detail),
                401 | 403 => Error::PermissionDenied(detail),
                400 | 413 | 415 | 422 => Error::InvalidInput(detail),
                _ => Error::Other(detail),
            },
            bigmgr_client::Error::Invalid(m) => Error::InvalidInput(m),
            other => Error::Other(other.to_string()),
        }
    }
}

/// The REST backend: the typed client itself.
pub type Rest = Client;
