//! What the benchmarks (`harness = false` binaries) share: their options and their numbers.

/// The value of option `name` (`--name N`) on the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The value of option `name` (`--name VALUE`) on the command line, if given.
pub fn arg_str(name: &str) -> Option<String> {
    let mut args = std::env::args().skip_while(|a| a != name);
    args.next()?;
    args.next()
}

/// The `p` percentile (0.0 to 1.0) of `sorted`, nearest rank; the default value if it is
/// empty.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// User + system CPU seconds process `pid` used so far.
pub fn cpu_secs(pid: u32) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields 14 and 15 of stat are utime and stime; `rest` starts at field 3.
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0)
}

/// How often the threads of process `pid` went to sleep and were woken so far: the sum of
/// their voluntary context switches (`/proc/<pid>/task/*/status`).
pub fn wakeups(pid: u32) -> u64 {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    threads
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Writes stack `bench` 1.0.0 under `stacks`: service `noop` with `components` server
/// components `c0`, `c1`, … (cardinality 0+), every command of which runs a script that exits 0.
pub fn write_noop_stack(stacks: &std::path::Path, components: usize) {
    let svc = stacks.join("bench/1.0.0/noop");
    std::fs::create_dir_all(&svc).expect("stack dir");
    let mut toml = String::from(
        "[service]\nname = \"noop\"\nversion = \"1\"\ndescription = \"does nothing\"\n",
    );
    for c in 0..components {
        toml.push_str(&format!(
            "\n[[component]]\nname = \"c{c}\"\ncategory = \"server\"\ncardinality = \"0+\"\nscript = \"noop.sh\"\n"
        ));
    }
    std::fs::write(svc.join("service.toml"), toml).expect("manifest");
    crate::write_executable(&svc.join("noop.sh"), "#!/bin/sh\nexit 0\n");
}

/// What the no-op benchmarks start with: `--components N` (10) and `--runs N` (3) from the
/// command line, and a temporary directory holding the no-op stack under `stacks/`.
pub struct NoopBench {
    /// Components of the no-op service (tasks per host).
    pub components: usize,
    /// How many jobs to run and measure.
    pub runs: usize,
    /// The temporary directory; the stack root is its `stacks/`.
    pub dir: tempfile::TempDir,
}

impl NoopBench {
    /// The stack root, for `--stacks` or a stack provider.
    pub fn stacks(&self) -> std::path::PathBuf {
        self.dir.path().join("stacks")
    }
}

/// Runs `body` to its end on a multi-threaded tokio runtime, with a fresh [`NoopBench`].
pub fn run_noop<F, Fut>(body: F)
where
    F: FnOnce(NoopBench) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let components = arg("--components", 10);
    let bench = NoopBench {
        components,
        runs: arg("--runs", 3),
        dir: tempfile::tempdir().expect("tmp"),
    };
    write_noop_stack(&bench.stacks(), components);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(body(bench));
}
