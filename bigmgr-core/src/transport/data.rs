//! The pipelines' data side between the server and an agent (docs/pipelines.md): what the
//! server asks ([`DataRequest`]) and what the agent answers ([`DataAnswer`]), through
//! [`Transport::data`](super::Transport::data). The agent's side is
//! [`crate::agent::data::serve`].

use std::time::Duration;

/// The most a batch carried between hosts holds, files and names together: it must fit one
/// message of the agent protocol with room to spare.
pub const MAX_CARRIED_BYTES: usize = 12 << 20;

/// One request for a pipeline's data side on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    /// `<cluster>/<pipeline>`: the pipeline's directory is `<agent_root>/pipelines/<this>`.
    pub pipeline: String,
    /// What to do.
    pub op: DataOp,
}

/// What the data side does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataOp {
    /// Cuts the files of the host's directory `path` (sorted by name) into batches of
    /// `records` lines, each under `<source>/<file>:<n>/part`; a batch cut before is kept.
    Cut {
        /// The source's name.
        source: String,
        /// An absolute directory of the host.
        path: String,
        /// Lines per batch.
        records: u32,
        /// Only files unchanged for this long (zero: every file).
        settle: Duration,
        /// Files (by name) not to cut again.
        skip: Vec<String>,
    },
    /// Runs `program <work>/in <work>/out` on fresh directories `<unit>/<work>/{in,out}`
    /// holding the inputs (several go to `in/<name>/` and are then laid side by side as
    /// `in/<name>~<file>`); answers with the output directory once it exited 0 in time.
    Process {
        /// The unit.
        unit: String,
        /// A plain file name: the batch's id made one.
        work: String,
        /// Its input batches.
        inputs: Vec<BatchData>,
        /// The program.
        program: ProgramRef,
        /// How long it may run.
        timeout: Duration,
        /// What its run may use.
        limits: Limits,
    },
    /// Copies a batch's files into `<dest>/<name>/`, replacing what was there.
    Deliver {
        /// The batch.
        input: BatchData,
        /// An absolute directory of the host (a sink's), or one relative to the pipeline's
        /// directory (a channel's, on its home host).
        dest: String,
    },
    /// Answers with the files of a directory of the pipeline's directory.
    Fetch {
        /// Relative to the pipeline's directory.
        dir: String,
    },
    /// Removes a directory of the pipeline's directory and what it holds (missing: done).
    Remove {
        /// Relative to the pipeline's directory.
        dir: String,
    },
}

/// Limits of one run of a program (set with the shell's `ulimit` before it starts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Its address space, in KiB.
    pub memory_kib: Option<u64>,
    /// Its CPU time, in seconds.
    pub cpu_seconds: Option<u64>,
}

/// A unit's program: a path on the host, or a stack's file carried to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramRef {
    /// An absolute path on the host.
    Path(String),
    /// A stack's program: written as `programs/<name>` (mode 0755) before it runs.
    Carried {
        /// A plain file name.
        name: String,
        /// Its bytes.
        content: Vec<u8>,
    },
}

/// A batch's files: where they are on this host, or carried along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchData {
    /// A plain file name for the batch.
    pub name: String,
    /// Its files.
    pub data: Carried,
}

/// Where a batch's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// A directory of this host's pipeline directory.
    Local(String),
    /// The files themselves.
    Files(Vec<DataFile>),
}

/// One file of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// A plain file name.
    pub name: String,
    /// Its bytes.
    pub content: Vec<u8>,
}

/// What the data side answers (the fields its request asks for; the rest empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataAnswer {
    /// Cut: each batch with its directory (relative to the pipeline's directory).
    pub batches: Vec<(String, String)>,
    /// Process: the output directory (relative to the pipeline's directory).
    pub output: String,
    /// Fetch: the files.
    pub files: Vec<DataFile>,
}
