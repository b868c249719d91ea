//! The Python classes (`Client`, `Embedded`, `Cluster`, `Host`, `Service`, `Unit`, `Job` …)
//! over a [`crate::backend::Backend`].

use pyo3::prelude::*;

/// Adds the classes and functions to the module.
pub(crate) fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
