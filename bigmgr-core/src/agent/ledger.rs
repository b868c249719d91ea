//! The task ledger: which runs this agent received and how they ended, persisted under its root.
//!
//! The ledger is an append-only JSON-lines file: one line per event (a run was received, its
//! process started — a [`StartedRun`] —, a run finished with its [`TaskResult`], runs were
//! cleaned). [`Ledger::open`] reads it, reduces it to the latest state of each run, drops what
//! was cleaned and rewrites the file compactly.
//!
//! ```text
//! {"received":{"task":12,"attempt":1}}
//! {"started":{"run":{"task":12,"attempt":1},"pid":4242,"start_time":981234,"started_at":1700000000000,"timeout_ms":1800000}}
//! {"finished":{"run":{"task":12,"attempt":1},"result":{"state":"SUCCEEDED",…}}}
//! {"clean":[{"task":12,"attempt":1}]}
//! ```
//!
//! Each event is appended with a single `write(2)` and no `fsync`: a record survives the agent
//! process being killed at any point (the kernel holds the data), but not a machine crash or
//! power loss, which may lose the last records. A record torn by a crash mid-write is the last
//! line of the file and is ignored when the ledger is opened.

use super::StartedRun;
use crate::model::RunId;
use crate::transport::TaskResult;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Compact when the file holds more than this many lines and more than
/// [`COMPACT_RATIO`] times the live entries.
const COMPACT_MIN_LINES: usize = 1024;
/// See [`COMPACT_MIN_LINES`].
const COMPACT_RATIO: usize = 4;

/// What the ledger knows about one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEntry {
    /// The run was received and recorded; no result yet. Its process may have started: see
    /// [`Ledger::started`].
    Received,
    /// The run finished with this result.
    Finished(TaskResult),
}

/// One line of the ledger file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Record {
    /// A run was received.
    Received(RunId),
    /// A run's process started.
    Started {
        /// The run.
        run: RunId,
        /// Its process.
        #[serde(flatten)]
        process: StartedRun,
    },
    /// A run finished.
    Finished {
        /// The run.
        run: RunId,
        /// How it ended.
        result: TaskResult,
    },
    /// The server stored these results; forget them.
    Clean(Vec<RunId>),
}

/// The agent's persistent record of runs: an append-only JSON-lines file (`ledger.jsonl`).
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
    entries: BTreeMap<RunId, LedgerEntry>,
    /// The processes of the runs in flight that started.
    started: BTreeMap<RunId, StartedRun>,
    /// Lines in the file now.
    lines: usize,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path`, reads it and rewrites it compactly.
    ///
    /// A last line that does not parse (a write torn by a crash) is ignored; a broken line
    /// elsewhere is an error, since the ledger cannot be trusted then.
    pub fn open(path: impl Into<PathBuf>) -> Result<Ledger> {
        let path = path.into();
        let (entries, started, clean) = match std::fs::read(&path) {
            Ok(bytes) => replay(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (BTreeMap::new(), BTreeMap::new(), true)
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        // Rewrite only when there is something to drop: opening many agents stays cheap.
        let file = if clean {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?
        } else {
            rewrite(&path, &entries, &started)?
        };
        let lines = entries.len() + started.len();
        Ok(Ledger {
            path,
            file,
            entries,
            started,
            lines,
        })
    }

    /// The file this ledger lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the ledger knows about `run`, if anything.
    pub fn lookup(&self, run: RunId) -> Option<LedgerEntry> {
        self.entries.get(&run).cloned()
    }

    /// Records that `run` was received; call before running it.
    pub fn record_received(&mut self, run: RunId) -> Result<()> {
        self.append(&Record::Received(run))?;
        self.entries.insert(run, LedgerEntry::Received);
        Ok(())
    }

    /// Records that the process of `run`, received and in flight, started. Ignored for a run
    /// the ledger does not hold in flight.
    pub fn record_started(&mut self, run: RunId, process: StartedRun) -> Result<()> {
        if !matches!(self.entries.get(&run), Some(LedgerEntry::Received)) {
            return Ok(());
        }
        self.append(&Record::Started { run, process })?;
        self.started.insert(run, process);
        Ok(())
    }

    /// The process of `run`, if it is in flight and its process started.
    pub fn started(&self, run: RunId) -> Option<StartedRun> {
        self.started.get(&run).copied()
    }

    /// Records how `run` ended.
    pub fn record_finished(&mut self, run: RunId, result: TaskResult) -> Result<()> {
        self.append(&Record::Finished {
            run,
            result: result.clone(),
        })?;
        self.entries.insert(run, LedgerEntry::Finished(result));
        self.started.remove(&run);
        Ok(())
    }

    /// Forgets the finished runs among `runs` (the server stored their results). Runs still in
    /// flight are kept, so a redelivery of one can never run it twice.
    pub fn clean(&mut self, runs: &[RunId]) -> Result<()> {
        let done: Vec<RunId> = runs
            .iter()
            .copied()
            .filter(|r| matches!(self.entries.get(r), Some(LedgerEntry::Finished(_))))
            .collect();
        if done.is_empty() {
            return Ok(());
        }
        self.append(&Record::Clean(done.clone()))?;
        for run in &done {
            self.entries.remove(run);
        }
        self.maybe_compact()
    }

    /// The finished runs not yet cleaned, with their results, by run id.
    pub fn finished(&self) -> Vec<(RunId, TaskResult)> {
        self.entries
            .iter()
            .filter_map(|(run, e)| match e {
                LedgerEntry::Finished(r) => Some((*run, r.clone())),
                LedgerEntry::Received => None,
            })
            .collect()
    }

    /// The runs received without a result, by run id.
    pub fn in_flight(&self) -> Vec<RunId> {
        self.entries
            .iter()
            .filter_map(|(run, e)| matches!(e, LedgerEntry::Received).then_some(*run))
            .collect()
    }

    /// Appends one record as one line with a single write.
    fn append(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::Invalid(format!("cannot encode a ledger record: {e}")))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| Error::io(&self.path, e))?;
        self.lines += 1;
        Ok(())
    }

    /// Rewrites the file when it has grown far beyond the live entries.
    fn maybe_compact(&mut self) -> Result<()> {
        let live = self.entries.len() + self.started.len();
        if self.lines > COMPACT_MIN_LINES && self.lines > COMPACT_RATIO * live {
            self.file = rewrite(&self.path, &self.entries, &self.started)?;
            self.lines = live;
        }
        Ok(())
    }
}

/// The latest entry of each run, the processes of the started runs in flight, and whether the
/// file is already compact.
type Replayed = (
    BTreeMap<RunId, LedgerEntry>,
    BTreeMap<RunId, StartedRun>,
    bool,
);

/// Reduces the ledger file's lines to the latest entry of each run and the processes of the
/// started runs in flight; the flag says whether the file is already compact (one whole line
/// per live entry and process, nothing torn).
fn replay(path: &Path, bytes: &[u8]) -> Result<Replayed> {
    let mut entries = BTreeMap::new();
    let mut started = BTreeMap::new();
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let record: Record = match serde_json::from_slice(line) {
            Ok(r) => r,
            // The last line may be torn by a crash mid-write: ignore it.
            Err(_) if i + 1 == lines.len() => return Ok((entries, started, false)),
            Err(e) => {
                return Err(Error::io(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("ledger record {} is corrupt: {e}", i + 1),
                    ),
                ));
            }
        };
        match record {
            Record::Received(run) => {
                entries.insert(run, LedgerEntry::Received);
            }
            Record::Started { run, process } => {
                if matches!(entries.get(&run), Some(LedgerEntry::Received)) {
                    started.insert(run, process);
                }
            }
            Record::Finished { run, result } => {
                entries.insert(run, LedgerEntry::Finished(result));
                started.remove(&run);
            }
            Record::Clean(runs) => {
                for run in runs {
                    entries.remove(&run);
                    started.remove(&run);
                }
            }
        }
    }
    let compact =
        lines.len() == entries.len() + started.len() && bytes.last().is_none_or(|b| *b == b'\n');
    Ok((entries, started, compact))
}

/// Writes `entries` (each followed by its process, if it started) to a temporary file, renames
/// it over `path` and opens it for appending.
fn rewrite(
    path: &Path,
    entries: &BTreeMap<RunId, LedgerEntry>,
    started: &BTreeMap<RunId, StartedRun>,
) -> Result<File> {
    let mut buf = Vec::new();
    for (run, entry) in entries {
        let record = match entry {
            LedgerEntry::Received => Record::Received(*run),
            LedgerEntry::Finished(result) => Record::Finished {
                run: *run,
                result: result.clone(),
            },
        };
        let process = started.get(run).map(|process| Record::Started {
            run: *run,
            process: *process,
        });
        for record in std::iter::once(record).chain(process) {
            serde_json::to_writer(&mut buf, &record)
                .map_err(|e| Error::Invalid(format!("cannot encode a ledger record: {e}")))?;
            buf.push(b'\n');
        }
    }
    crate::fsutil::rewrite_log(path, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TaskId, TaskState};

    fn run(task: i64, attempt: u32) -> RunId {
        RunId {
            task: TaskId(task),
            attempt,
        }
    }

    fn result(state: TaskState) -> TaskResult {
        TaskResult {
            state,
            exit_code: Some(0),
            pid: Some(42),
            started_at: Some(1),
            finished_at: 2,
            message: None,
            outcome_unknown: false,
        }
    }

    /// A ledger in a fresh directory (keep it while the test runs), with its path.
    fn fresh() -> (tempfile::TempDir, PathBuf, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let l = Ledger::open(&path).unwrap();
        (dir, path, l)
    }

    /// Closes the ledger and opens its file again, as the next agent process would.
    fn reopen(l: Ledger, path: &Path) -> Ledger {
        drop(l);
        Ledger::open(path).unwrap()
    }

    /// Reopens the ledger and checks what it holds: the finished runs, the runs in flight, and
    /// how many lines its file has (opening compacts it).
    fn assert_reopened(
        l: Ledger,
        path: &Path,
        finished: Vec<(RunId, TaskResult)>,
        in_flight: Vec<RunId>,
        lines: usize,
    ) {
        let l = reopen(l, path);
        assert_eq!(l.finished(), finished);
        assert_eq!(l.in_flight(), in_flight);
        assert_eq!(count_lines(path), lines);
    }

    /// Records `r` received, then finished in `state`.
    fn run_to_end(l: &mut Ledger, r: RunId, state: TaskState) {
        l.record_received(r).unwrap();
        l.record_finished(r, result(state)).unwrap();
    }

    fn count_lines(path: &Path) -> usize {
        std::fs::read_to_string(path).unwrap().lines().count()
    }

    #[test]
    fn records_survive_reopen() {
        let (_dir, path, mut l) = fresh();
        l.record_received(run(1, 1)).unwrap();
        l.record_received(run(2, 1)).unwrap();
        l.record_finished(run(1, 1), result(TaskState::Succeeded))
            .unwrap();
        assert_eq!(
            l.lookup(run(1, 1)),
            Some(LedgerEntry::Finished(result(TaskState::Succeeded)))
        );
        assert_eq!(l.lookup(run(2, 1)), Some(LedgerEntry::Received));
        assert_eq!(l.lookup(run(3, 1)), None);
        // Compacted: one line per live entry.
        let finished = vec![(run(1, 1), result(TaskState::Succeeded))];
        assert_reopened(l, &path, finished, vec![run(2, 1)], 2);
    }

    #[test]
    fn clean_forgets_finished_runs_only() {
        let (_dir, path, mut l) = fresh();
        run_to_end(&mut l, run(1, 1), TaskState::Failed);
        l.record_received(run(2, 1)).unwrap();
        l.clean(&[run(1, 1), run(2, 1), run(9, 9)]).unwrap();
        assert_eq!(l.lookup(run(1, 1)), None);
        assert_eq!(l.lookup(run(2, 1)), Some(LedgerEntry::Received));
        assert_reopened(l, &path, vec![], vec![run(2, 1)], 1);
    }

    #[test]
    fn torn_last_line_is_ignored() {
        let (_dir, path, mut l) = fresh();
        run_to_end(&mut l, run(1, 1), TaskState::Succeeded);
        drop(l);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"finished":{"run":{"task":1,"attempt":1},"res"#)
            .unwrap();
        drop(f);
        let mut l = Ledger::open(&path).unwrap();
        assert_eq!(
            l.lookup(run(1, 1)),
            Some(LedgerEntry::Finished(result(TaskState::Succeeded)))
        );
        // The torn line is gone from the file, so new appends are readable.
        l.record_received(run(2, 1)).unwrap();
        let l = reopen(l, &path);
        assert_eq!(l.in_flight(), vec![run(2, 1)]);
    }

    #[test]
    fn started_processes_survive_reopen_until_finished() {
        let (_dir, path, mut l) = fresh();
        let process = StartedRun {
            pid: 4242,
            start_time: 981_234,
            started_at: 1_700_000_000_000,
            timeout_ms: 1_800_000,
        };
        l.record_received(run(1, 1)).unwrap();
        l.record_started(run(1, 1), process).unwrap();
        l.record_received(run(2, 1)).unwrap();
        l.record_started(run(2, 1), process).unwrap();
        l.record_finished(run(2, 1), result(TaskState::Succeeded))
            .unwrap();
        // Not in flight: ignored.
        l.record_started(run(2, 1), process).unwrap();
        l.record_started(run(3, 1), process).unwrap();
        assert_eq!(l.started(run(1, 1)), Some(process));
        assert_eq!(l.started(run(2, 1)), None);
        assert_eq!(l.started(run(3, 1)), None);
        drop(l);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(r#"{"started":{"run":{"task":1,"attempt":1},"pid":4242,"start_time":981234,"started_at":1700000000000,"timeout_ms":1800000}}"#),
            "{text}"
        );
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.in_flight(), vec![run(1, 1)]);
        assert_eq!(l.started(run(1, 1)), Some(process));
        assert_eq!(l.started(run(2, 1)), None);
        // Compacted: the received run, its process and the finished run.
        assert_eq!(count_lines(&path), 3);
        // Reopening a compact ledger keeps the process.
        let mut l = reopen(l, &path);
        assert_eq!(l.started(run(1, 1)), Some(process));
        l.record_finished(run(1, 1), result(TaskState::Failed))
            .unwrap();
        assert_eq!(l.started(run(1, 1)), None);
        let l = reopen(l, &path);
        assert_eq!(l.started(run(1, 1)), None);
        assert!(l.in_flight().is_empty());
        assert_eq!(count_lines(&path), 2);
    }

    #[test]
    fn corrupt_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        std::fs::write(
            &path,
            "garbage\n{\"received\":{\"task\":1,\"attempt\":1}}\n",
        )
        .unwrap();
        let err = Ledger::open(&path).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn compacts_when_mostly_cleaned() {
        let (_dir, path, mut l) = fresh();
        for t in 0..1000 {
            run_to_end(&mut l, run(t, 1), TaskState::Succeeded);
            if t > 0 {
                l.clean(&[run(t - 1, 1)]).unwrap();
            }
        }
        assert!(count_lines(&path) < COMPACT_MIN_LINES + 10);
        assert_eq!(l.finished().len(), 1);
        let l = reopen(l, &path);
        assert_eq!(
            l.finished(),
            vec![(run(999, 1), result(TaskState::Succeeded))]
        );
    }
}
