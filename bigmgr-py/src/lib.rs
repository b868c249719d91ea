//! The `bigmgr` Python module (pyo3): `bigmgr.connect(url, token)`, a client of a running
//! `bigmgr serve`, and `bigmgr.Embedded(path)`, the engine in-process on a SQLite file. Both
//! are the same Python classes over one [`backend::Backend`] trait; every rule stays in
//! `bigmgr-core`.

pub mod backend;
pub mod embedded;
pub mod error;
mod py;
pub mod rest;

use pyo3::prelude::*;
use std::sync::OnceLock;

/// The version of the core library this module wraps.
pub const CORE_VERSION: &str = bigmgr_core::VERSION;

/// The tokio runtime every call runs on (the embedded engine lives on it too): two worker
/// threads, started on first use.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bigmgr")
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    })
}

/// The native part of the `bigmgr` package (`bigmgr._bigmgr`).
#[pymodule]
fn _bigmgr(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("Error", py.get_type::<error::BigmgrError>())?;
    m.add("NotFound", py.get_type::<error::NotFound>())?;
    m.add("Conflict", py.get_type::<error::Conflict>())?;
    m.add("PermissionDenied", py.get_type::<error::PermissionDenied>())?;
    m.add("InvalidInput", py.get_type::<error::InvalidInput>())?;
    m.add("JobFailed", py.get_type::<error::JobFailed>())?;
    py::register(m)
}
