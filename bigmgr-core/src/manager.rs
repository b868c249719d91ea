//! The Manager: the composition root and the facade every frontend calls.

/// The facade (to be written).
#[derive(Debug)]
pub struct Manager;

/// Builds a [`Manager`] (to be written).
#[derive(Debug, Default)]
pub struct ManagerBuilder;
