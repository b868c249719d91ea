//! The agent's event spool: every event bound for the server is appended to a file under the
//! agent's root before it is sent, and dropped only once the server acknowledges it, so events
//! produced while the server is away (or across an agent restart) are replayed in order.
//!
//! The spool is a JSON-lines file with two kinds of line:
//!
//! - `{"seq":N,"event":…}`: an event, with its sequence number. Numbers start at 1 and go up
//!   by one, also across restarts and compactions.
//! - `{"ack":N}`: the server stored every event up to `N` (or those it did not were set
//!   aside). An acknowledgement costs one small append, and it is ordered with the events in the
//!   same file, so the file alone says what is pending.
//!
//! Each line is appended with a single `write(2)` and no `fsync`: it survives the agent process
//! being killed at any point, but a machine crash may lose the last lines. A line torn by a crash
//! mid-write is the last line of the file; [`Spool::open`] sets it (and any other line that
//! does not parse) aside and rewrites the file without it.
//!
//! No event can hold the spool up: one that cannot be sent, or that the server refuses, is set
//! aside ([`Spool::reject`]) and never sent again. What is set aside is appended to the
//! rejected file beside the spool (`spool.rejected` for `spool.jsonl`), one JSON object a line
//! with `at` (ms since the epoch), `reason`, and `seq` and `event`, or `line` for a line of the
//! spool that did not parse (as text, invalid UTF-8 replaced). Nothing reads that file back: it
//! is for the operator, who may delete it at any time.
//!
//! The file does not grow forever while the server keeps up: when an acknowledgement leaves it
//! larger than [`COMPACT_MIN_BYTES`] and mostly acknowledged, it is rewritten (temporary file,
//! `fsync`, rename) as one `{"ack":N}` line, which carries the sequence across, followed by the
//! events still pending.

use crate::model::now_ms;
use crate::transport::AgentEvent;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Compact only files larger than this many bytes …
const COMPACT_MIN_BYTES: u64 = 256 * 1024;
/// … and holding more than this many times the bytes of the events still pending (a fully
/// acknowledged spool always qualifies).
const COMPACT_RATIO: u64 = 4;

/// An event line, as written.
#[derive(Serialize)]
struct EventLine<'a> {
    seq: u64,
    event: &'a AgentEvent,
}

/// An acknowledgement line, as written.
#[derive(Serialize)]
struct AckLine {
    ack: u64,
}

/// An entry of the rejected file, as written.
#[derive(Serialize)]
struct RejectedLine<'a> {
    at: i64,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a AgentEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<&'a str>,
}

/// Any line, as read back.
#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    /// An event.
    Event { seq: u64, event: AgentEvent },
    /// Every event up to `ack` was acknowledged.
    Ack { ack: u64 },
}

/// An event not yet acknowledged.
#[derive(Debug)]
struct Pending {
    seq: u64,
    event: AgentEvent,
    /// The length of its line in the file, newline included.
    bytes: u64,
}

/// An append-only, on-disk queue of events with increasing sequence numbers.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    /// Opened for appending.
    file: File,
    /// The unacknowledged events, oldest first.
    pending: VecDeque<Pending>,
    /// The sequence number the next event gets.
    next_seq: u64,
    /// Every event up to this one is acknowledged or set aside (0: none).
    acked: u64,
    /// The file's length.
    file_bytes: u64,
    /// The bytes of the pending events' lines.
    pending_bytes: u64,
}

impl Spool {
    /// Opens (creating if missing) the spool file at `path` and loads the events not yet
    /// acknowledged.
    ///
    /// Lines that do not parse (a last line torn by a crash) are skipped with a warning, and
    /// the file is then rewritten without them so that new lines append cleanly.
    pub fn open(path: impl Into<PathBuf>) -> Result<Spool> {
        let path = path.into();
        let loaded = match std::fs::read(&path) {
            Ok(bytes) => load(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Loaded::default(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        if !loaded.rejected.is_empty() {
            let entries: Vec<Vec<u8>> = loaded
                .rejected
                .iter()
                .map(|(reason, line)| {
                    encode(&RejectedLine {
                        at: now_ms(),
                        reason,
                        seq: None,
                        event: None,
                        line: Some(&String::from_utf8_lossy(line)),
                    })
                })
                .collect::<Result<_>>()?;
            // Losing them is no reason not to start: they were not sendable anyway.
            if let Err(e) = append_rejected(&rejected_path(&path), &entries) {
                tracing::warn!(error = %e, lines = entries.len(), "cannot keep the spool's broken lines");
            }
        }
        let pending_bytes = loaded.pending.iter().map(|p| p.bytes).sum();
        let (file, file_bytes) =
            if loaded.damaged || worth_compacting(loaded.file_bytes, pending_bytes) {
                rewrite(&path, loaded.acked, &loaded.pending)?
            } else {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::io(&path, e))?;
                (file, loaded.file_bytes)
            };
        Ok(Spool {
            path,
            file,
            pending: loaded.pending,
            next_seq: loaded.last_seq.max(loaded.acked).saturating_add(1),
            acked: loaded.acked,
            file_bytes,
            pending_bytes,
        })
    }

    /// The file this spool lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends an event; returns its sequence number (one more than the previous event's, also
    /// across restarts).
    pub fn push(&mut self, event: &AgentEvent) -> Result<u64> {
        let seq = self.next_seq;
        let line = encode(&EventLine { seq, event })?;
        self.append(&line)?;
        self.next_seq += 1;
        let bytes = line.len() as u64;
        self.pending_bytes += bytes;
        self.pending.push_back(Pending {
            seq,
            event: event.clone(),
            bytes,
        });
        Ok(seq)
    }

    /// The events not yet acknowledged, in order.
    pub fn pending(&self) -> Vec<(u64, AgentEvent)> {
        self.pending
            .iter()
            .map(|p| (p.seq, p.event.clone()))
            .collect()
    }

    /// The events not yet acknowledged whose sequence number is above `after`, in order: what
    /// a connection has not sent yet. At most `limit` of them, and no more than fit in
    /// `max_bytes` of spool lines (the first one always does), so a batch of long lines is not
    /// copied whole to send a part of it.
    pub fn pending_after(
        &self,
        after: u64,
        limit: usize,
        max_bytes: u64,
    ) -> Vec<(u64, AgentEvent)> {
        let start = self.pending.partition_point(|p| p.seq <= after);
        let mut bytes = 0u64;
        self.pending
            .range(start..)
            .take(limit)
            .take_while(|p| {
                let first = bytes == 0;
                bytes = bytes.saturating_add(p.bytes.max(1));
                first || bytes <= max_bytes
            })
            .map(|p| (p.seq, p.event.clone()))
            .collect()
    }

    /// Sets pending events aside for good, each with the reason why (it cannot be sent, or the
    /// server refused it): appends them to the rejected file (see the module documentation),
    /// then rewrites the spool without them, so they are never sent again, also after a
    /// restart. Sequence numbers that are not pending are ignored. Returns how many were set
    /// aside.
    pub fn reject(&mut self, rejected: &[(u64, String)]) -> Result<usize> {
        let mut entries = Vec::new();
        let mut seqs = Vec::new();
        for (seq, reason) in rejected {
            let Ok(i) = self.pending.binary_search_by_key(seq, |p| p.seq) else {
                continue;
            };
            tracing::warn!(
                path = %self.path.display(), seq, %reason,
                "setting a spooled event aside; it will not be sent again"
            );
            entries.push(encode(&RejectedLine {
                at: now_ms(),
                reason,
                seq: Some(*seq),
                event: Some(&self.pending[i].event),
                line: None,
            })?);
            seqs.push(*seq);
        }
        if seqs.is_empty() {
            return Ok(0);
        }
        // Kept in the rejected file before it leaves the spool: a crash in between leaves it in
        // both, never in neither.
        append_rejected(&rejected_path(&self.path), &entries)?;
        self.pending.retain(|p| !seqs.contains(&p.seq));
        self.pending_bytes = self.pending.iter().map(|p| p.bytes).sum();
        // Every event below the first one pending is gone now: the mark says so, which also
        // carries the sequence past an event set aside last across a restart.
        let gone = self
            .pending
            .front()
            .map_or(self.next_seq.saturating_sub(1), |p| p.seq - 1);
        self.acked = self.acked.max(gone);
        (self.file, self.file_bytes) = rewrite(&self.path, self.acked, &self.pending)?;
        Ok(seqs.len())
    }

    /// Drops every event with a sequence number up to `upto`.
    ///
    /// Acknowledgements only move forward: an `upto` at or below an earlier one does nothing.
    /// An `upto` beyond the last event pushed (the server saw events this spool lost in a
    /// machine crash) moves the next sequence number past it, so no number is used twice.
    pub fn ack(&mut self, upto: u64) -> Result<()> {
        if upto <= self.acked {
            return Ok(());
        }
        self.append(&encode(&AckLine { ack: upto })?)?;
        self.acked = upto;
        self.next_seq = self.next_seq.max(upto.saturating_add(1));
        while let Some(p) = self.pending.front()
            && p.seq <= upto
        {
            self.pending_bytes -= p.bytes;
            self.pending.pop_front();
        }
        if worth_compacting(self.file_bytes, self.pending_bytes) {
            (self.file, self.file_bytes) = rewrite(&self.path, self.acked, &self.pending)?;
        }
        Ok(())
    }

    /// How many events are not yet acknowledged.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether every event was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one line with a single write. If the write fails part-way, the file is cut back
    /// to its previous length, so a later line does not run into the fragment.
    fn append(&mut self, line: &[u8]) -> Result<()> {
        if let Err(e) = self.file.write_all(line) {
            if let Err(cut) = self.file.set_len(self.file_bytes) {
                tracing::warn!(
                    path = %self.path.display(), error = %cut,
                    "cannot cut a partly written line off the spool"
                );
            }
            return Err(Error::io(&self.path, e));
        }
        self.file_bytes += line.len() as u64;
        Ok(())
    }
}

/// Whether a file of `file_bytes` holding `pending_bytes` of pending events is big and mostly
/// acknowledged events.
fn worth_compacting(file_bytes: u64, pending_bytes: u64) -> bool {
    file_bytes > COMPACT_MIN_BYTES && pending_bytes * COMPACT_RATIO < file_bytes
}

/// Rewrites the spool at `path` as the acknowledgement mark and the pending events: written to
/// a temporary file, made durable, renamed over the spool and reopened for appending. Returns
/// the file and its length.
fn rewrite(path: &Path, acked: u64, pending: &VecDeque<Pending>) -> Result<(File, u64)> {
    let mut buf = encode(&AckLine { ack: acked })?;
    for p in pending {
        buf.extend_from_slice(&encode(&EventLine {
            seq: p.seq,
            event: &p.event,
        })?);
    }
    let file = crate::fsutil::rewrite_log(path, &buf)?;
    Ok((file, buf.len() as u64))
}

/// The rejected file beside the spool at `path`: `spool.rejected` for `spool.jsonl`.
pub(crate) fn rejected_path(path: &Path) -> PathBuf {
    path.with_extension("rejected")
}

/// Appends `entries` (encoded lines) to the rejected file at `path`, durably.
fn append_rejected(path: &Path, entries: &[Vec<u8>]) -> Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(&entries.concat())
        .and_then(|()| file.sync_data())
        .map_err(|e| Error::io(path, e))
}

/// What [`load`] read from a spool file.
#[derive(Debug, Default)]
struct Loaded {
    /// The events after the acknowledgement mark, in order.
    pending: VecDeque<Pending>,
    /// The highest sequence number of any event in the file.
    last_seq: u64,
    /// The highest acknowledgement mark in the file.
    acked: u64,
    /// The file's length.
    file_bytes: u64,
    /// Some line was skipped or the file does not end with a newline: rewrite it.
    damaged: bool,
    /// The lines skipped, with why: to be set aside.
    rejected: Vec<(String, Vec<u8>)>,
}

/// Reads a spool file's lines, skipping (with a warning, and keeping them with the reason in
/// [`Loaded::rejected`]) those that do not parse or whose sequence number does not go up.
fn load(path: &Path, bytes: &[u8]) -> Loaded {
    let mut loaded = Loaded {
        file_bytes: bytes.len() as u64,
        damaged: bytes.last().is_some_and(|b| *b != b'\n'),
        ..Loaded::default()
    };
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        match serde_json::from_slice::<Line>(line) {
            Ok(Line::Event { seq, event }) if seq > loaded.last_seq => {
                loaded.last_seq = seq;
                loaded.pending.push_back(Pending {
                    seq,
                    event,
                    bytes: line.len() as u64 + 1,
                });
            }
            Ok(Line::Event { seq, .. }) => {
                tracing::warn!(
                    path = %path.display(), line = i + 1, seq, after = loaded.last_seq,
                    "skipping a spooled event whose sequence number does not go up"
                );
                loaded.damaged = true;
                loaded.rejected.push((
                    format!(
                        "line {}: its sequence number {seq} does not go up (after {})",
                        i + 1,
                        loaded.last_seq
                    ),
                    line.to_vec(),
                ));
            }
            Ok(Line::Ack { ack }) => loaded.acked = loaded.acked.max(ack),
            Err(e) if last => {
                tracing::warn!(
                    path = %path.display(), line = i + 1, error = %e,
                    "skipping the spool's last line, torn by a crash mid-write"
                );
                loaded.damaged = true;
                loaded.rejected.push((
                    format!(
                        "line {}: the last line, torn by a crash mid-write: {e}",
                        i + 1
                    ),
                    line.to_vec(),
                ));
            }
            Err(e) => {
                tracing::warn!(
                    path = %path.display(), line = i + 1, error = %e,
                    "skipping a corrupt line of the spool"
                );
                loaded.damaged = true;
                loaded.rejected.push((
                    format!("line {}: not a spool line: {e}", i + 1),
                    line.to_vec(),
                ));
            }
        }
    }
    let acked = loaded.acked;
    loaded.pending.retain(|p| p.seq > acked);
    loaded
}

/// One line of JSON with its newline.
fn encode(value: &impl Serialize) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value)
        .map_err(|e| Error::Invalid(format!("cannot encode a spool line: {e}")))?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LogStream, RunId, TaskId};

    fn log(n: u64) -> AgentEvent {
        AgentEvent::Log {
            run: RunId {
                task: TaskId(1),
                attempt: 1,
            },
            stream: LogStream::Stdout,
            seq: n,
            at: 1_700_000_000_000,
            line: format!("line {n}"),
        }
    }

    /// A spool in a fresh directory (keep it while the test runs) holding `log(0)` to
    /// `log(n - 1)`, with its path.
    fn spool_with(n: u64) -> (tempfile::TempDir, PathBuf, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let mut s = Spool::open(&path).unwrap();
        for n in 0..n {
            s.push(&log(n)).unwrap();
        }
        (dir, path, s)
    }

    /// Closes the spool and opens its file again, as the next agent process would.
    fn reopen(s: Spool, path: &Path) -> Spool {
        drop(s);
        Spool::open(path).unwrap()
    }

    /// Reopens the spool and checks that it holds nothing and gives the next event the number
    /// `next`.
    fn assert_reopens_empty(s: Spool, path: &Path, next: u64) {
        let mut s = reopen(s, path);
        assert!(s.is_empty());
        assert_eq!(s.push(&log(next - 1)).unwrap(), next);
    }

    /// Appends raw bytes to the spool file, as a crash or a disk error might leave them.
    fn append(path: &Path, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(bytes).unwrap();
    }

    /// The file of events set aside, and its entries.
    fn rejected(path: &Path) -> (String, Vec<serde_json::Value>) {
        let text = std::fs::read_to_string(rejected_path(path)).unwrap();
        let entries = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (text, entries)
    }

    fn seqs(spool: &Spool) -> Vec<u64> {
        spool.pending().into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn push_pending_ack_keep_order() {
        let (_dir, _, mut s) = spool_with(0);
        assert!(s.is_empty());
        for n in 0..5 {
            assert_eq!(s.push(&log(n)).unwrap(), n + 1);
        }
        assert_eq!(
            s.pending(),
            (0..5).map(|n| (n + 1, log(n))).collect::<Vec<_>>()
        );
        let after = |s: &Spool, after, limit| -> Vec<u64> {
            s.pending_after(after, limit, u64::MAX)
                .iter()
                .map(|(q, _)| *q)
                .collect()
        };
        assert_eq!(after(&s, 2, 2), vec![3, 4]);
        assert_eq!(after(&s, 0, 10), vec![1, 2, 3, 4, 5]);
        assert!(after(&s, 5, 10).is_empty());
        s.ack(2).unwrap();
        assert_eq!(seqs(&s), vec![3, 4, 5]);
        assert_eq!(after(&s, 1, 10), vec![3, 4, 5]);
        assert_eq!(s.len(), 3);
        // An older acknowledgement changes nothing.
        s.ack(1).unwrap();
        assert_eq!(seqs(&s), vec![3, 4, 5]);
        s.ack(5).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.push(&log(9)).unwrap(), 6);
    }

    #[test]
    fn reopen_keeps_pending_and_sequence() {
        let (_dir, path, s) = spool_with(3);
        let mut s = reopen(s, &path);
        assert_eq!(s.pending(), vec![(1, log(0)), (2, log(1)), (3, log(2))]);
        assert_eq!(s.push(&log(3)).unwrap(), 4);
    }

    #[test]
    fn ack_survives_reopen() {
        let (_dir, path, mut s) = spool_with(4);
        s.ack(3).unwrap();
        let mut s = reopen(s, &path);
        assert_eq!(s.pending(), vec![(4, log(3))]);
        s.ack(4).unwrap();
        // Everything acknowledged: nothing pending, and the numbers go on.
        assert_reopens_empty(s, &path, 5);
    }

    #[test]
    fn ack_beyond_the_last_event_moves_the_sequence_on() {
        let (_dir, path, mut s) = spool_with(1);
        s.ack(10).unwrap();
        assert_eq!(s.push(&log(1)).unwrap(), 11);
        let mut s = reopen(s, &path);
        assert_eq!(seqs(&s), vec![11]);
        assert_eq!(s.push(&log(2)).unwrap(), 12);
    }

    #[test]
    fn compaction_keeps_the_sequence() {
        let (_dir, path, mut s) = spool_with(0);
        let mut last = 0;
        let mut max_len = 0;
        // Far more than COMPACT_MIN_BYTES in total, acknowledged as it goes.
        for n in 0..10_000 {
            last = s.push(&log(n)).unwrap();
            if n % 10 == 9 {
                s.ack(last).unwrap();
            }
            max_len = max_len.max(std::fs::metadata(&path).unwrap().len());
        }
        assert_eq!(last, 10_000);
        assert!(max_len <= COMPACT_MIN_BYTES + 4096, "grew to {max_len}");
        assert!(s.is_empty());
        assert_reopens_empty(s, &path, 10_001);
    }

    #[test]
    fn compaction_keeps_pending_events() {
        let (_dir, path, mut s) = spool_with(0);
        // Lagging acknowledgements: one event is always pending.
        for n in 0..5_000 {
            let seq = s.push(&log(n)).unwrap();
            s.ack(seq - 1).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= COMPACT_MIN_BYTES + 4096);
        assert_eq!(s.pending(), vec![(5_000, log(4_999))]);
        let s = reopen(s, &path);
        assert_eq!(s.pending(), vec![(5_000, log(4_999))]);
    }

    #[test]
    fn torn_last_line_is_skipped() {
        let (_dir, path, s) = spool_with(2);
        drop(s);
        append(&path, br#"{"seq":3,"event":{"Log":{"run":"#);
        let mut s = Spool::open(&path).unwrap();
        assert_eq!(s.pending(), vec![(1, log(0)), (2, log(1))]);
        // The torn line is gone from the file, so new lines append cleanly.
        assert_eq!(s.push(&log(2)).unwrap(), 3);
        let s = reopen(s, &path);
        assert_eq!(seqs(&s), vec![1, 2, 3]);
    }

    #[test]
    fn corrupt_middle_line_is_skipped() {
        let (_dir, path, s) = spool_with(1);
        drop(s);
        append(&path, b"\0\0garbage\0\n");
        let second = EventLine {
            seq: 2,
            event: &log(1),
        };
        append(&path, &encode(&second).unwrap());
        let mut s = Spool::open(&path).unwrap();
        assert_eq!(s.pending(), vec![(1, log(0)), (2, log(1))]);
        assert_eq!(s.push(&log(2)).unwrap(), 3);
        let s = reopen(s, &path);
        assert_eq!(seqs(&s), vec![1, 2, 3]);
        // The garbage line was set aside with the reason, not thrown away.
        let (text, entries) = rejected(&path);
        assert_eq!(entries.len(), 1, "{text}");
        assert!(
            entries[0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("line 2: not a spool line")
        );
        assert!(entries[0]["line"].as_str().unwrap().contains("garbage"));
    }

    #[test]
    fn pending_after_stops_at_a_byte_budget_but_always_gives_one() {
        let (_dir, _, s) = spool_with(10);
        let line = s.pending[0].bytes;
        let got = |after, max_bytes| -> Vec<u64> {
            s.pending_after(after, 100, max_bytes)
                .iter()
                .map(|(q, _)| *q)
                .collect()
        };
        assert_eq!(got(0, 3 * line), vec![1, 2, 3]);
        assert_eq!(got(0, 3 * line + line / 2), vec![1, 2, 3]);
        assert_eq!(got(4, 1), vec![5]);
        assert_eq!(got(0, u64::MAX).len(), 10);
    }

    #[test]
    fn rejected_events_are_set_aside_for_good_with_their_reason() {
        let (_dir, path, mut s) = spool_with(4);
        let why = |r: &str| r.to_owned();
        assert_eq!(
            s.reject(&[(2, why("too large")), (4, why("refused")), (9, why("gone"))])
                .unwrap(),
            2
        );
        assert_eq!(seqs(&s), vec![1, 3]);
        assert_eq!(s.pending_after(0, 10, u64::MAX).len(), 2);
        // Once more changes nothing.
        assert_eq!(s.reject(&[(2, why("too large"))]).unwrap(), 0);
        assert_eq!(s.push(&log(4)).unwrap(), 5);
        s.ack(3).unwrap();
        let s = reopen(s, &path);
        assert_eq!(s.pending(), vec![(5, log(4))]);
        let (text, entries) = rejected(&path);
        assert_eq!(entries.len(), 2, "{text}");
        assert_eq!(entries[0]["seq"], 2);
        assert_eq!(entries[0]["reason"], "too large");
        assert_eq!(entries[0]["event"]["Log"]["line"], "line 1");
        assert_eq!(entries[1]["seq"], 4);
        assert_eq!(entries[1]["reason"], "refused");
        // Setting aside the last event does not give its number to the next one.
        let mut s = s;
        s.reject(&[(5, why("refused"))]).unwrap();
        assert!(s.is_empty());
        assert_reopens_empty(s, &path, 6);
    }
}
