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
    /// The control group whose CPU and memory stand for the host's, if one was given.
    cgroup: Option<Cgroup>,
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
            cgroup: None,
            cpu_read_at: Instant::now(),
            acc: Accumulator::default(),
        }
    }

    /// Reports the CPU and memory of control group `path` (as `/proc/self/cgroup` writes it,
    /// `/bigmgr/h2`) instead of the whole machine's: for a host that shares its machine — a
    /// container, a slice of a bigger machine. Err says why it cannot be read.
    pub fn with_cgroup(mut self, path: &str) -> Result<Sampler, String> {
        let cgroup = Cgroup::find(Path::new(CGROUP_ROOT), path)?;
        self.cgroup = Some(cgroup);
        self.cpu_read_at = Instant::now();
        Ok(self)
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
        let memory_used = self.memory_used();
        let elapsed = self.cpu_read_at.elapsed();
        let cpu = (elapsed >= MINIMUM_CPU_UPDATE_INTERVAL)
            .then(|| {
                let percent = match &mut self.cgroup {
                    Some(cg) => cg.cpu_percent(elapsed, self.system.cpus().len())?,
                    None => {
                        self.system.refresh_cpu_usage();
                        f64::from(self.system.global_cpu_usage())
                    }
                };
                self.cpu_read_at = Instant::now();
                Some((percent, elapsed))
            })
            .flatten();
        self.acc.add(cpu, memory_used);
    }

    /// Memory in use: the control group's if one is given (and readable), else the host's.
    fn memory_used(&self) -> u64 {
        self.cgroup
            .as_ref()
            .and_then(Cgroup::memory_used)
            .unwrap_or_else(|| self.system.used_memory())
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
        let cpu_percent = acc.cpu_percent().unwrap_or_else(|| match &self.cgroup {
            Some(cg) => cg.last_percent,
            None => f64::from(self.system.global_cpu_usage()).clamp(0.0, 100.0),
        });
        let (disk_total_bytes, disk_free_bytes) = disk_space(&self.root);
        let load = System::load_average();
        HostMetrics {
            at: now_ms(),
            cpu_percent,
            memory_used_bytes: acc.memory_used().unwrap_or_else(|| self.memory_used()),
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

/// Where control group hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A control group's CPU time and memory, read from cgroup v2 (`cpu.stat`, `memory.current`)
/// or v1 (`cpuacct/…/cpuacct.usage`, `memory/…/memory.usage_in_bytes`).
#[derive(Debug)]
struct Cgroup {
    /// The file of its cumulative CPU time, and whether it counts µs (v2) or ns (v1).
    cpu_file: PathBuf,
    micros: bool,
    /// The file of its memory in use, if the memory controller has it.
    memory_file: Option<PathBuf>,
    /// The CPU time at the last read (ns).
    last_ns: u64,
    /// The CPU percent of the last read.
    last_percent: f64,
}

impl Cgroup {
    /// Control group `path` under `root` (a cgroup filesystem mount point).
    fn find(root: &Path, path: &str) -> Result<Cgroup, String> {
        let rel = path.trim_start_matches('/');
        if rel.split('/').any(|p| p == ".." || p == ".") {
            return Err(format!("control group '{path}' must not name . or .."));
        }
        let v2 = root.join(rel);
        let candidates = [
            (v2.join("cpu.stat"), true, v2.join("memory.current")),
            (
                root.join("cpuacct").join(rel).join("cpuacct.usage"),
                false,
                root.join("memory").join(rel).join("memory.usage_in_bytes"),
            ),
            (
                root.join("unified").join(rel).join("cpu.stat"),
                true,
                root.join("unified").join(rel).join("memory.current"),
            ),
            (
                root.join("cpu,cpuacct").join(rel).join("cpuacct.usage"),
                false,
                root.join("memory").join(rel).join("memory.usage_in_bytes"),
            ),
        ];
        for (cpu_file, micros, memory) in candidates {
            if cpu_file.is_file() {
                let mut cg = Cgroup {
                    cpu_file,
                    micros,
                    memory_file: memory.is_file().then_some(memory),
                    last_ns: 0,
                    last_percent: 0.0,
                };
                cg.last_ns = cg
                    .cpu_ns()
                    .ok_or_else(|| format!("cannot read {}", cg.cpu_file.display()))?;
                return Ok(cg);
            }
        }
        Err(format!(
            "no control group '{path}' with CPU accounting under {} (cpu.stat for cgroup v2, cpuacct/…/cpuacct.usage for v1)",
            root.display()
        ))
    }

    /// Its cumulative CPU time (ns).
    fn cpu_ns(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.cpu_file).ok()?;
        if self.micros {
            text.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|us| us.saturating_mul(1000))
        } else {
            text.trim().parse().ok()
        }
    }

    /// Its CPU use over the `elapsed` time since the last read, percent of all `cores`.
    #[allow(clippy::cast_precision_loss)]
    fn cpu_percent(&mut self, elapsed: Duration, cores: usize) -> Option<f64> {
        let now = self.cpu_ns()?;
        let used = now.saturating_sub(self.last_ns) as f64;
        self.last_ns = now;
        let cores = cores.max(1) as f64;
        let percent = (used / (elapsed.as_nanos() as f64 * cores) * 100.0).clamp(0.0, 100.0);
        self.last_percent = percent;
        Some(percent)
    }

    /// Its memory in use, if readable.
    fn memory_used(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.memory_file.as_ref()?).ok()?;
        text.trim().parse().ok()
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
    fn a_cgroups_cpu_time_becomes_its_percent_of_all_cores() {
        let root = tempfile::tempdir().unwrap();
        let v1 = root.path().join("cpuacct/bigmgr/h2");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("cpuacct.usage"), "1000000000\n").unwrap();
        let mut cg = Cgroup::find(root.path(), "/bigmgr/h2").unwrap();
        // One core busy for the whole second on a 2-core machine: 50 %.
        std::fs::write(v1.join("cpuacct.usage"), "2000000000\n").unwrap();
        let p = cg.cpu_percent(Duration::from_secs(1), 2).unwrap();
        assert!((p - 50.0).abs() < 1e-9, "{p}");
        assert_eq!(cg.memory_used(), None, "no memory controller here");
        let v2 = root.path().join("slice");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("cpu.stat"), "usage_usec 500\nuser_usec 400\n").unwrap();
        std::fs::write(v2.join("memory.current"), "4096\n").unwrap();
        let cg = Cgroup::find(root.path(), "slice").unwrap();
        assert_eq!((cg.last_ns, cg.memory_used()), (500_000, Some(4096)));
        assert!(Cgroup::find(root.path(), "/nope").is_err());
        assert!(Cgroup::find(root.path(), "/bigmgr/../h2").is_err());
    }

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
