//! Host facts and heartbeat metrics: CPU and memory read with sysinfo and averaged over the
//! heartbeat interval, disk space of the filesystem holding the agent's root (`statvfs`), load.
//!
//! CPU use is a difference of the kernel's CPU times between two reads, so the [`Sampler`] reads
//! them once when it is made and then on every [`Sampler::sample`] at least
//! [`MINIMUM_CPU_UPDATE_INTERVAL`] after the previous read. Each reading is weighted by the
//! time it covers, so the heartbeat's figure is the CPU use over the whole interval even when
//! samples are irregular. Only CPU times and memory are refreshed; processes are never listed.

use crate::model::{HostFacts, HostMetrics, now_ms};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use sysinfo::{
    CpuRefreshKind, MINIMUM_CPU_UPDATE_INTERVAL, MemoryRefreshKind, RefreshKind, System,
};

/// Samples the host between heartbeats and averages the samples.
#[derive(Debug)]
pub struct Sampler {
    root: PathBuf,
    system: System,
    /// When the CPU times were last read.
    cpu_read_at: Instant,
    /// The samples since the last heartbeat.
    acc: Accumulator,
}

/// Sums of the samples taken since the last heartbeat.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Accumulator {
    /// CPU percent × seconds covered, summed.
    cpu_percent_seconds: f64,
    /// Seconds covered by CPU readings.
    cpu_seconds: f64,
    /// Memory in use, summed over the samples.
    memory_used: u128,
    /// Memory samples taken.
    memory_samples: u64,
}

impl Sampler {
    /// A sampler; `root` is the agent's root, whose filesystem's disk space is reported.
    pub fn new(root: &Path) -> Sampler {
        // Reads the CPU times (the base for the first sample's difference) and the memory.
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        Sampler {
            root: root.to_path_buf(),
            system,
            cpu_read_at: Instant::now(),
            acc: Accumulator::default(),
        }
    }

    /// The host's facts, now.
    pub fn facts(&mut self) -> HostFacts {
        self.refresh_memory();
        let cores = match self.system.cpus().len() {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let (disk_total_bytes, disk_free_bytes) = disk_space(&self.root);
        HostFacts {
            os: System::name().unwrap_or_default(),
            os_version: System::os_version().unwrap_or_default(),
            kernel: System::kernel_version().unwrap_or_default(),
            arch: std::env::consts::ARCH.to_owned(),
            cores: u32::try_from(cores).unwrap_or(u32::MAX),
            memory_bytes: self.system.total_memory(),
            disk_total_bytes,
            disk_free_bytes,
            agent_root: std::path::absolute(&self.root)
                .unwrap_or_else(|_| self.root.clone())
                .to_string_lossy()
                .into_owned(),
        }
    }

    /// Takes one sample of CPU and memory; call it about once a second.
    ///
    /// Memory is sampled every time; CPU only if at least [`MINIMUM_CPU_UPDATE_INTERVAL`] passed
    /// since the CPU times were last read (a shorter difference says little), otherwise the
    /// time carries over to the next sample.
    pub fn sample(&mut self) {
        self.refresh_memory();
        let memory_used = self.system.used_memory();
        let elapsed = self.cpu_read_at.elapsed();
        let cpu = (elapsed >= MINIMUM_CPU_UPDATE_INTERVAL).then(|| {
            self.system.refresh_cpu_usage();
            self.cpu_read_at = Instant::now();
            (f64::from(self.system.global_cpu_usage()), elapsed)
        });
        self.acc.add(cpu, memory_used);
    }

    /// The metrics for a heartbeat: averages of the samples since the previous heartbeat (or a
    /// fresh sample if there were none), disk and load now. Starts a new interval.
    ///
    /// If no sample since the previous heartbeat could read the CPU (they all came less than
    /// [`MINIMUM_CPU_UPDATE_INTERVAL`] after a read), the CPU figure is the latest reading's;
    /// before any, sysinfo's first read gives the average since boot.
    pub fn heartbeat(&mut self) -> HostMetrics {
        if self.acc.memory_samples == 0 {
            self.sample();
        }
        let acc = std::mem::take(&mut self.acc);
        let cpu_percent = acc
            .cpu_percent()
            .unwrap_or_else(|| f64::from(self.system.global_cpu_usage()).clamp(0.0, 100.0));
        let (disk_total_bytes, disk_free_bytes) = disk_space(&self.root);
        let load = System::load_average();
        HostMetrics {
            at: now_ms(),
            cpu_percent,
            memory_used_bytes: acc
                .memory_used()
                .unwrap_or_else(|| self.system.used_memory()),
            memory_total_bytes: self.system.total_memory(),
            disk_total_bytes,
            disk_free_bytes,
            load: [load.one, load.five, load.fifteen],
        }
    }

    /// Reads the memory figures (RAM only, not swap).
    fn refresh_memory(&mut self) {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
    }
}

impl Accumulator {
    /// Adds one sample: a CPU reading (percent, and the time it covers) if there was one, and
    /// the memory in use.
    fn add(&mut self, cpu: Option<(f64, Duration)>, memory_used: u64) {
        if let Some((percent, covered)) = cpu {
            let seconds = covered.as_secs_f64();
            self.cpu_percent_seconds += percent.clamp(0.0, 100.0) * seconds;
            self.cpu_seconds += seconds;
        }
        self.memory_used += u128::from(memory_used);
        self.memory_samples += 1;
    }

    /// The CPU use over the time the readings cover, if there were any.
    fn cpu_percent(&self) -> Option<f64> {
        (self.cpu_seconds > 0.0)
            .then(|| (self.cpu_percent_seconds / self.cpu_seconds).clamp(0.0, 100.0))
    }

    /// The average memory in use, if there were samples.
    fn memory_used(&self) -> Option<u64> {
        let samples = u128::from(self.memory_samples);
        (samples > 0).then(|| u64::try_from(self.memory_used / samples).unwrap_or(u64::MAX))
    }
}

/// The size of, and the space available to unprivileged users on, the filesystem holding
/// `path` (or its nearest existing ancestor, for a root not made yet); zeros if none can be
/// read.
#[allow(
    clippy::useless_conversion,
    reason = "statvfs's field types are u64 on some platforms, narrower on others"
)]
fn disk_space(path: &Path) -> (u64, u64) {
    let mut last_error = None;
    for dir in path.ancestors() {
        match nix::sys::statvfs::statvfs(dir) {
            Ok(st) => {
                let unit = u64::from(st.fragment_size());
                return (
                    u64::from(st.blocks()).saturating_mul(unit),
                    u64::from(st.blocks_available()).saturating_mul(unit),
                );
            }
            Err(e) => last_error = Some(e),
        }
    }
    tracing::warn!(
        path = %path.display(),
        error = ?last_error,
        "cannot read the disk space of the agent's root"
    );
    (0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_describe_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let facts = Sampler::new(dir.path()).facts();
        assert_eq!(facts.arch, std::env::consts::ARCH);
        assert!(facts.cores > 0, "{facts:?}");
        assert!(facts.memory_bytes > 0, "{facts:?}");
        assert!(facts.disk_total_bytes > 0, "{facts:?}");
        assert!(facts.disk_free_bytes <= facts.disk_total_bytes, "{facts:?}");
        assert!(!facts.kernel.is_empty(), "{facts:?}");
    }

    #[test]
    fn disk_of_a_root_not_made_yet_is_its_parents() {
        let dir = tempfile::tempdir().unwrap();
        let (total, _) = disk_space(&dir.path().join("not/yet"));
        assert_eq!(total, disk_space(dir.path()).0);
        assert!(total > 0);
    }

    #[test]
    fn heartbeat_after_samples_is_sane() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sampler::new(dir.path());
        for _ in 0..3 {
            std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL);
            s.sample();
        }
        assert_eq!(s.acc.memory_samples, 3);
        assert!(s.acc.cpu_seconds > 0.0);
        let m = s.heartbeat();
        assert!((0.0..=100.0).contains(&m.cpu_percent), "{m:?}");
        assert!(m.memory_used_bytes > 0, "{m:?}");
        assert!(m.memory_used_bytes <= m.memory_total_bytes, "{m:?}");
        assert!(m.disk_total_bytes > 0, "{m:?}");
        assert!(m.load.iter().all(|l| *l >= 0.0), "{m:?}");
        assert!(m.at > 0);
    }

    #[test]
    fn heartbeat_without_samples_takes_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sampler::new(dir.path());
        // Too soon after the first read for a CPU figure: still a sane heartbeat.
        let m = s.heartbeat();
        assert!((0.0..=100.0).contains(&m.cpu_percent), "{m:?}");
        assert!(m.memory_used_bytes > 0 && m.memory_used_bytes <= m.memory_total_bytes);
    }

    #[test]
    fn averages_are_weighted_and_reset_between_heartbeats() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sampler::new(dir.path());
        s.acc.add(Some((50.0, Duration::from_secs(1))), 100);
        s.acc.add(Some((100.0, Duration::from_secs(3))), 300);
        s.acc.add(None, 200);
        let m = s.heartbeat();
        assert_eq!(m.cpu_percent, 87.5);
        assert_eq!(m.memory_used_bytes, 200);
        assert_eq!(s.acc, Accumulator::default());

        s.acc.add(Some((10.0, Duration::from_secs(1))), 50);
        let m = s.heartbeat();
        assert_eq!(m.cpu_percent, 10.0);
        assert_eq!(m.memory_used_bytes, 50);
        assert_eq!(s.acc, Accumulator::default());
    }
}
