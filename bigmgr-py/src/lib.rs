//! The `bigmgr` Python module. A placeholder crate until the Python issue: it re-exports the core
//! version so the workspace links end to end.

/// The version of the core library this module wraps.
pub const CORE_VERSION: &str = bigmgr_core::VERSION;
