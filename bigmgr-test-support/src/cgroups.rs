//! Control groups standing for hosts that share this machine, so each agent's heartbeats can
//! report its own CPU (`bigmgr-agent --metrics-cgroup`), and CPU burners put in some of them:
//! real kernel accounting of real busy processes. Dropping [`Slices`] kills the burners by
//! pid and removes the groups.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where cgroup hierarchies are mounted.
const ROOT: &str = "/sys/fs/cgroup";

/// One control group per host name under a fresh parent, with the burners put in them.
pub struct Slices {
    /// The directory the groups are made in (a cgroup v1 `cpuacct` hierarchy or a v2 one).
    base: PathBuf,
    /// The parent's path as `--metrics-cgroup` takes it (`/bigmgr-test-123`).
    parent: String,
    names: Vec<String>,
    burners: Vec<Child>,
}

impl Slices {
    /// Makes a group for each of `names`, in cgroup v1's `cpuacct` hierarchy where it is
    /// mounted, else in the v2 one (needs root). Panics saying why if neither can be written.
    pub fn create(names: &[&str]) -> Slices {
        let parent = format!("/bigmgr-test-{}", std::process::id());
        let mounts = [
            Path::new(ROOT).join("cpuacct"),
            Path::new(ROOT).join("cpu,cpuacct"),
            PathBuf::from(ROOT),
            Path::new(ROOT).join("unified"),
        ];
        let usable =
            |m: &Path| m.join("cpuacct.usage").is_file() || m.join("cgroup.controllers").is_file();
        let base = mounts
            .into_iter()
            .find(|m| usable(m))
            .unwrap_or_else(|| panic!("no cgroup hierarchy with CPU accounting under {ROOT}"));
        let mut slices = Slices {
            base,
            parent,
            names: Vec::new(),
            burners: Vec::new(),
        };
        for n in names {
            let dir = slices.dir(n);
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("cannot make control group {}: {e}", dir.display()));
            slices.names.push((*n).to_string());
        }
        slices
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.base
            .join(self.parent.trim_start_matches('/'))
            .join(name)
    }

    /// The group of `name` as `--metrics-cgroup` takes it, as `/proc/<pid>/cgroup` names it
    /// (`/bigmgr-test-123/h2`).
    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.parent)
    }

    /// Starts a process that spins on one core, in the group of `name`.
    pub fn burn(&mut self, name: &str) {
        let child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn a CPU burner");
        let procs = self.dir(name).join("cgroup.procs");
        let moved = std::fs::write(&procs, child.id().to_string());
        self.burners.push(child);
        moved.unwrap_or_else(|e| panic!("cannot move the burner into {}: {e}", procs.display()));
    }
}

impl Drop for Slices {
    fn drop(&mut self) {
        for b in &mut self.burners {
            let _ = b.kill();
            let _ = b.wait();
        }
        for n in &self.names {
            let _ = std::fs::remove_dir(self.dir(n));
        }
        let _ = std::fs::remove_dir(self.base.join(self.parent.trim_start_matches('/')));
    }
}
