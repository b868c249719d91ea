//! The Python classes (`Client`, `Embedded`, `Cluster`, `Host`, `Service`, `Unit`, `Job`,
//! `Pipeline`, the assistant's `Answer` and `Proposal` …)
//! over a [`crate::backend::Backend`]: each holds the backend and the data it was answered.

mod assistant;
mod cluster;
mod job;
mod pipeline;
mod records;
mod service;
mod session;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;
use std::future::Future;

pub(crate) use assistant::{PyAnswer, PyAnswerStream, PyProposal};
pub(crate) use cluster::PyCluster;
pub(crate) use job::{PyJob, PyLogIter};
pub(crate) use pipeline::{PyPipeline, PyPipelineNode, PyPipelineStatus};
pub(crate) use records::{
    PyAlert, PyConfigDiff, PyConfigVersion, PyExported, PyFinding, PyHealing, PyHost, PyLogLine,
    PyMaintenance, PyPlan, PyRelation, PyRelationEvent, PySnapshot, PyStack, PyStage, PyTask,
    PyUnit,
};
pub(crate) use service::PyService;
pub(crate) use session::{PyClient, PyEmbedded};

/// Adds the classes and functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyClient>()?;
    m.add_class::<PyEmbedded>()?;
    m.add_class::<PyCluster>()?;
    m.add_class::<PyHost>()?;
    m.add_class::<PyService>()?;
    m.add_class::<PyUnit>()?;
    m.add_class::<PyJob>()?;
    m.add_class::<PyStage>()?;
    m.add_class::<PyTask>()?;
    m.add_class::<PyLogLine>()?;
    m.add_class::<PyLogIter>()?;
    m.add_class::<PyConfigVersion>()?;
    m.add_class::<PyConfigDiff>()?;
    m.add_class::<PyAlert>()?;
    m.add_class::<PyFinding>()?;
    m.add_class::<PyPlan>()?;
    m.add_class::<PyExported>()?;
    m.add_class::<PyPipeline>()?;
    m.add_class::<PyPipelineStatus>()?;
    m.add_class::<PyPipelineNode>()?;
    m.add_class::<PyMaintenance>()?;
    m.add_class::<PyHealing>()?;
    m.add_class::<PyRelation>()?;
    m.add_class::<PyRelationEvent>()?;
    m.add_class::<PySnapshot>()?;
    m.add_class::<PyStack>()?;
    m.add_class::<PyAnswer>()?;
    m.add_class::<PyAnswerStream>()?;
    m.add_class::<PyProposal>()?;
    m.add_function(wrap_pyfunction!(session::connect, m)?)?;
    Ok(())
}

/// Runs a backend call on the module's runtime with the GIL released.
pub(crate) fn run<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = crate::error::Result<T>> + Send,
    T: Send,
{
    py.detach(|| crate::runtime().block_on(fut))
        .map_err(PyErr::from)
}

/// A JSON value as a Python object (dicts, lists, str, int, float, bool, None).
pub(crate) fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// A Python object (dict with str keys, list, tuple, str, int, float, bool, None) as JSON.
pub(crate) fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = obj.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            Ok(Value::from(i))
        } else {
            Ok(Value::from(obj.extract::<u64>()?))
        }
    } else if obj.is_instance_of::<PyFloat>() {
        let f = obj.extract::<f64>()?;
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| PyTypeError::new_err(format!("{f} is not a JSON number")))
    } else if let Ok(s) = obj.cast::<PyString>() {
        Ok(Value::String(s.to_cow()?.into_owned()))
    } else if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = serde_json::Map::new();
        for (k, v) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!("dict keys must be str, not {}", type_name(&k)))
            })?;
            m.insert(key.to_cow()?.into_owned(), from_py(&v)?);
        }
        Ok(Value::Object(m))
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for x in obj.try_iter()? {
            out.push(from_py(&x?)?);
        }
        Ok(Value::Array(out))
    } else {
        Err(PyTypeError::new_err(format!(
            "a {} can't be a config value: use str, int, float, bool, None, list or dict",
            type_name(obj)
        )))
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A Python object converted to a Rust type through JSON, with an InvalidInput naming `what`
/// and the shape expected when it does not fit.
pub(crate) fn from_py_as<T: serde::de::DeserializeOwned>(
    obj: &Bound<'_, PyAny>,
    what: &str,
    shape: &str,
) -> PyResult<T> {
    let v = from_py(obj)?;
    serde_json::from_value(v).map_err(|e| {
        crate::error::Error::InvalidInput(format!("{what} must be {shape}: {e}")).into()
    })
}
