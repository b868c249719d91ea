//! Conversions between the protocol's messages ([`pb`]) and bigmgr_core's own types. Decoding
//! what a peer sent is fallible: a malformed message is an [`Error::Transport`] naming the field.

use super::pb;
use crate::model::{
    CheckResult, HostFacts, HostMetrics, JobId, LogStream, RunId, TaskId, TaskState, UnitHealth,
};
use crate::transport::limits::{self, MAX_LOG_LINE, MAX_RESULT_MESSAGE};
use crate::transport::{AgentEvent, FileSpec, Script, TaskResult, TaskSpec, data};
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;

fn malformed(what: &str) -> Error {
    Error::Transport(format!("malformed message: {what}"))
}

pub(super) fn run_ref(run: RunId) -> pb::RunRef {
    pb::RunRef {
        task: run.task.0,
        attempt: run.attempt,
    }
}

pub(super) fn run_id(r: Option<&pb::RunRef>) -> Result<RunId> {
    let r = r.ok_or_else(|| malformed("a run reference is missing"))?;
    Ok(RunId {
        task: TaskId(r.task),
        attempt: r.attempt,
    })
}

/// A result on the wire; a message longer than [`MAX_RESULT_MESSAGE`] (kept by an agent from
/// before the bound) is cut with a marker.
pub(super) fn result_to_pb(r: &TaskResult) -> pb::TaskResult {
    pb::TaskResult {
        state: r.state.as_str().to_owned(),
        exit_code: r.exit_code,
        pid: r.pid,
        started_at_ms: r.started_at,
        finished_at_ms: r.finished_at,
        message: r
            .message
            .as_deref()
            .map(|m| limits::bounded(m, MAX_RESULT_MESSAGE, "message")),
        outcome_unknown: r.outcome_unknown,
    }
}

pub(super) fn result_from_pb(r: Option<&pb::TaskResult>) -> Result<TaskResult> {
    let r = r.ok_or_else(|| malformed("a task result is missing"))?;
    let state: TaskState = r
        .state
        .parse()
        .map_err(|_| malformed(&format!("unknown task state '{}'", r.state)))?;
    if !state.is_final() {
        return Err(malformed(&format!(
            "'{}' is not a final task state",
            r.state
        )));
    }
    Ok(TaskResult {
        state,
        exit_code: r.exit_code,
        pid: r.pid,
        started_at: r.started_at_ms,
        finished_at: r.finished_at_ms,
        message: r
            .message
            .as_deref()
            .map(|m| limits::bounded(m, MAX_RESULT_MESSAGE, "message")),
        outcome_unknown: r.outcome_unknown && state == TaskState::Failed,
    })
}

pub(super) fn finished_to_pb(run: RunId, r: &TaskResult) -> pb::FinishedRun {
    pb::FinishedRun {
        run: Some(run_ref(run)),
        result: Some(result_to_pb(r)),
    }
}

pub(super) fn finished_from_pb(f: &pb::FinishedRun) -> Result<(RunId, TaskResult)> {
    Ok((run_id(f.run.as_ref())?, result_from_pb(f.result.as_ref())?))
}

pub(super) fn spec_to_pb(s: &TaskSpec) -> pb::RunTask {
    pb::RunTask {
        run: Some(run_ref(s.run)),
        job: s.job.0,
        cluster: s.cluster.clone(),
        service: s.service.clone(),
        service_def: s.service_def.clone(),
        component: s.component.clone(),
        command: s.command.clone(),
        host: s.host.clone(),
        address: s.address.clone(),
        script_name: s.script.name.clone(),
        script: s.script.content.to_vec(),
        timeout_ms: u64::try_from(s.timeout.as_millis()).unwrap_or(u64::MAX),
        env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        files: s
            .files
            .iter()
            .map(|f| pb::File {
                path: f.path.clone(),
                content: f.content.clone(),
            })
            .collect(),
        context_json: s.context.to_string(),
        status: s.status,
    }
}

pub(super) fn spec_from_pb(t: pb::RunTask) -> Result<TaskSpec> {
    let context = if t.context_json.is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_str(&t.context_json)
            .map_err(|e| malformed(&format!("context_json is not JSON: {e}")))?
    };
    Ok(TaskSpec {
        run: run_id(t.run.as_ref())?,
        job: JobId(t.job),
        cluster: t.cluster,
        service: t.service,
        service_def: t.service_def,
        component: t.component,
        command: t.command,
        host: t.host,
        address: t.address,
        script: Script {
            name: t.script_name,
            content: Arc::from(t.script),
        },
        timeout: Duration::from_millis(t.timeout_ms),
        env: t.env.into_iter().collect(),
        files: t
            .files
            .into_iter()
            .map(|f| FileSpec {
                path: f.path,
                content: f.content,
            })
            .collect(),
        context,
        status: t.status,
    })
}

/// An agent event as a protocol event with sequence number `seq`; `None` for `Hello` (which
/// travels as `Register`) and `Presence` (which agents never send). Text over the
/// [`limits`] (an event spooled by an agent from before them) is cut with a marker, so every
/// event's encoded size stays far below the message limit.
pub(super) fn event_to_pb(seq: u64, e: &AgentEvent) -> Option<pb::TaskEvent> {
    use pb::task_event::Kind;
    let (run, kind) = match e {
        AgentEvent::Hello { .. } | AgentEvent::Presence(_) => return None,
        AgentEvent::Received(run) => (*run, Kind::Received(pb::Received {})),
        AgentEvent::Started { run, pid, at } => (
            *run,
            Kind::Started(pb::Started {
                pid: *pid,
                at_ms: *at,
            }),
        ),
        AgentEvent::Log {
            run,
            stream,
            seq,
            at,
            line,
        } => (
            *run,
            Kind::Log(pb::LogLine {
                stream: match stream {
                    LogStream::Stdout => pb::Stream::Stdout,
                    LogStream::Stderr => pb::Stream::Stderr,
                } as i32,
                seq: *seq,
                at_ms: *at,
                line: limits::bounded(line, MAX_LOG_LINE, "line"),
            }),
        ),
        AgentEvent::Finished { run, result } => {
            (*run, Kind::Finished(finished_to_pb(*run, result)))
        }
    };
    Some(pb::TaskEvent {
        seq,
        run: Some(run_ref(run)),
        kind: Some(kind),
    })
}

/// A protocol event as an agent event; text over the [`limits`] is cut with a marker, whoever
/// sent it.
pub(super) fn event_from_pb(e: pb::TaskEvent) -> Result<AgentEvent> {
    use pb::task_event::Kind;
    let run = run_id(e.run.as_ref())?;
    Ok(
        match e
            .kind
            .ok_or_else(|| malformed("a task event has no kind"))?
        {
            Kind::Received(_) => AgentEvent::Received(run),
            Kind::Started(s) => AgentEvent::Started {
                run,
                pid: s.pid,
                at: s.at_ms,
            },
            Kind::Log(l) => AgentEvent::Log {
                run,
                stream: match pb::Stream::try_from(l.stream) {
                    Ok(pb::Stream::Stderr) => LogStream::Stderr,
                    Ok(pb::Stream::Stdout) => LogStream::Stdout,
                    _ => return Err(malformed("a log line's stream is not STDOUT nor STDERR")),
                },
                seq: l.seq,
                at: l.at_ms,
                line: {
                    // An agent from before the limits may send more.
                    let mut line = l.line;
                    limits::bound(&mut line, MAX_LOG_LINE, "line");
                    line
                },
            },
            Kind::Finished(f) => AgentEvent::Finished {
                run,
                result: result_from_pb(f.result.as_ref())?,
            },
        },
    )
}

pub(super) fn facts_to_pb(f: &HostFacts) -> pb::HostFacts {
    pb::HostFacts {
        os: f.os.clone(),
        os_version: f.os_version.clone(),
        kernel: f.kernel.clone(),
        arch: f.arch.clone(),
        cores: f.cores,
        memory_bytes: f.memory_bytes,
        disk_total_bytes: f.disk_total_bytes,
        disk_free_bytes: f.disk_free_bytes,
        agent_root: f.agent_root.clone(),
    }
}

pub(super) fn facts_from_pb(f: pb::HostFacts) -> HostFacts {
    HostFacts {
        os: f.os,
        os_version: f.os_version,
        kernel: f.kernel,
        arch: f.arch,
        cores: f.cores,
        memory_bytes: f.memory_bytes,
        disk_total_bytes: f.disk_total_bytes,
        disk_free_bytes: f.disk_free_bytes,
        agent_root: f.agent_root,
    }
}

pub(super) fn heartbeat_to_pb(
    m: &HostMetrics,
    units: &[UnitHealth],
    checks: &[CheckResult],
) -> pb::Heartbeat {
    pb::Heartbeat {
        at_ms: m.at,
        cpu_percent: m.cpu_percent,
        memory_used_bytes: m.memory_used_bytes,
        memory_total_bytes: m.memory_total_bytes,
        disk_total_bytes: m.disk_total_bytes,
        disk_free_bytes: m.disk_free_bytes,
        load1: m.load[0],
        load5: m.load[1],
        load15: m.load[2],
        units: units
            .iter()
            .map(|u| pb::UnitHealth {
                cluster: u.cluster.clone(),
                service: u.service.clone(),
                component: u.component.clone(),
                healthy: u.healthy,
                exit_code: u.exit_code,
                message: u.message.clone(),
                checked_at_ms: u.checked_at,
            })
            .collect(),
        checks: checks
            .iter()
            .map(|c| pb::CheckResult {
                cluster: c.cluster.clone(),
                service: c.service.clone(),
                component: c.component.clone(),
                name: c.name.clone(),
                ok: c.ok,
                latency_ms: c.latency_ms,
                exit_code: c.exit_code,
                http_status: c.http_status.map(u32::from),
                text: c.text.clone(),
                checked_at_ms: c.checked_at,
            })
            .collect(),
    }
}

/// The most check results one heartbeat may carry.
pub(super) const MAX_CHECKS: usize = 1000;
/// The longest text of a check result kept, in characters.
const MAX_CHECK_TEXT: usize = 1024;

/// A heartbeat's metrics, unit health and check results; the check results are bounded
/// ([`MAX_CHECKS`], texts cut to 1 KiB): an agent's word is not trusted further.
pub(super) fn heartbeat_from_pb(
    h: pb::Heartbeat,
) -> (HostMetrics, Vec<UnitHealth>, Vec<CheckResult>) {
    let metrics = HostMetrics {
        at: h.at_ms,
        cpu_percent: h.cpu_percent,
        memory_used_bytes: h.memory_used_bytes,
        memory_total_bytes: h.memory_total_bytes,
        disk_total_bytes: h.disk_total_bytes,
        disk_free_bytes: h.disk_free_bytes,
        load: [h.load1, h.load5, h.load15],
    };
    let units = h
        .units
        .into_iter()
        .map(|u| UnitHealth {
            cluster: u.cluster,
            service: u.service,
            component: u.component,
            healthy: u.healthy,
            exit_code: u.exit_code,
            message: u.message,
            checked_at: u.checked_at_ms,
        })
        .collect();
    let checks = h
        .checks
        .into_iter()
        .take(MAX_CHECKS)
        .map(|c| CheckResult {
            cluster: c.cluster,
            service: c.service,
            component: c.component,
            name: c.name,
            ok: c.ok,
            latency_ms: c.latency_ms,
            exit_code: c.exit_code,
            http_status: c.http_status.and_then(|s| u16::try_from(s).ok()),
            text: c.text.chars().take(MAX_CHECK_TEXT).collect(),
            checked_at: c.checked_at_ms,
        })
        .collect();
    (metrics, units, checks)
}

fn files_to_pb(files: &[data::DataFile]) -> Vec<pb::DataFile> {
    files
        .iter()
        .map(|f| pb::DataFile {
            name: f.name.clone(),
            content: f.content.clone(),
        })
        .collect()
}

fn files_from_pb(files: Vec<pb::DataFile>) -> Vec<data::DataFile> {
    files
        .into_iter()
        .map(|f| data::DataFile {
            name: f.name,
            content: f.content,
        })
        .collect()
}

fn batch_to_pb(b: &data::BatchData) -> pb::BatchData {
    pb::BatchData {
        name: b.name.clone(),
        data: Some(match &b.data {
            data::Carried::Local(dir) => pb::batch_data::Data::Local(dir.clone()),
            data::Carried::Files(files) => pb::batch_data::Data::Files(pb::DataFiles {
                files: files_to_pb(files),
            }),
        }),
    }
}

fn batch_from_pb(b: pb::BatchData) -> Result<data::BatchData> {
    Ok(data::BatchData {
        name: b.name,
        data: match b.data {
            Some(pb::batch_data::Data::Local(dir)) => data::Carried::Local(dir),
            Some(pb::batch_data::Data::Files(f)) => data::Carried::Files(files_from_pb(f.files)),
            None => return Err(malformed("a batch without data")),
        },
    })
}

/// A data request as sent, under the server's request id.
pub(super) fn data_request_to_pb(id: u64, r: &data::DataRequest) -> pb::DataRequest {
    use pb::data_request::Op;
    let op = match &r.op {
        data::DataOp::Cut {
            source,
            path,
            records,
            settle,
            skip,
        } => Op::Cut(pb::CutSource {
            source: source.clone(),
            path: path.clone(),
            records: *records,
            settle_ms: u64::try_from(settle.as_millis()).unwrap_or(u64::MAX),
            skip: skip.clone(),
        }),
        data::DataOp::Process {
            unit,
            work,
            inputs,
            program,
            timeout,
            limits,
        } => {
            let (program, program_content) = match program {
                data::ProgramRef::Path(p) => (p.clone(), Vec::new()),
                data::ProgramRef::Carried { name, content } => (name.clone(), content.clone()),
            };
            Op::Process(pb::ProcessBatch {
                unit: unit.clone(),
                work: work.clone(),
                inputs: inputs.iter().map(batch_to_pb).collect(),
                program,
                program_content,
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                memory_kib: limits.memory_kib.unwrap_or(0),
                cpu_seconds: limits.cpu_seconds.unwrap_or(0),
            })
        }
        data::DataOp::Deliver { input, dest } => Op::Deliver(pb::DeliverBatch {
            input: Some(batch_to_pb(input)),
            dest: dest.clone(),
        }),
        data::DataOp::Fetch { dir } => Op::Fetch(pb::FetchBatch { dir: dir.clone() }),
        data::DataOp::Remove { dir } => Op::Remove(pb::RemoveBatch { dir: dir.clone() }),
    };
    pb::DataRequest {
        id,
        pipeline: r.pipeline.clone(),
        op: Some(op),
    }
}

/// A data request as received: its id and what it asks.
pub(super) fn data_request_from_pb(r: pb::DataRequest) -> Result<(u64, data::DataRequest)> {
    use pb::data_request::Op;
    let op = match r
        .op
        .ok_or_else(|| malformed("a data request without an operation"))?
    {
        Op::Cut(c) => data::DataOp::Cut {
            source: c.source,
            path: c.path,
            records: c.records,
            settle: Duration::from_millis(c.settle_ms),
            skip: c.skip,
        },
        Op::Process(p) => data::DataOp::Process {
            unit: p.unit,
            work: p.work,
            inputs: p
                .inputs
                .into_iter()
                .map(batch_from_pb)
                .collect::<Result<_>>()?,
            program: if p.program_content.is_empty() {
                data::ProgramRef::Path(p.program)
            } else {
                data::ProgramRef::Carried {
                    name: p.program,
                    content: p.program_content,
                }
            },
            timeout: Duration::from_millis(p.timeout_ms),
            limits: data::Limits {
                memory_kib: (p.memory_kib > 0).then_some(p.memory_kib),
                cpu_seconds: (p.cpu_seconds > 0).then_some(p.cpu_seconds),
            },
        },
        Op::Deliver(d) => data::DataOp::Deliver {
            input: batch_from_pb(
                d.input
                    .ok_or_else(|| malformed("a delivery without input"))?,
            )?,
            dest: d.dest,
        },
        Op::Fetch(f) => data::DataOp::Fetch { dir: f.dir },
        Op::Remove(r) => data::DataOp::Remove { dir: r.dir },
    };
    Ok((
        r.id,
        data::DataRequest {
            pipeline: r.pipeline,
            op,
        },
    ))
}

/// The agent's answer to request `id`.
pub(super) fn data_reply_to_pb(
    id: u64,
    answer: std::result::Result<data::DataAnswer, String>,
) -> pb::DataReply {
    match answer {
        Ok(a) => pb::DataReply {
            id,
            error: String::new(),
            batches: a
                .batches
                .into_iter()
                .map(|(batch, dir)| pb::CutBatch { batch, dir })
                .collect(),
            output: a.output,
            files: files_to_pb(&a.files),
        },
        Err(mut error) => {
            if error.is_empty() {
                error = "failed".into();
            }
            limits::bound(&mut error, MAX_RESULT_MESSAGE, "message");
            pb::DataReply {
                id,
                error,
                ..pb::DataReply::default()
            }
        }
    }
}

/// What an agent answered: the answer, or [`Error::Invalid`] with the reason it failed.
pub(super) fn data_reply_from_pb(r: pb::DataReply) -> Result<data::DataAnswer> {
    if !r.error.is_empty() {
        // The agent's words, bounded: they reach the pipeline's status.
        let error = limits::bounded(&r.error, MAX_RESULT_MESSAGE, "message");
        return Err(Error::Invalid(error));
    }
    Ok(data::DataAnswer {
        batches: r.batches.into_iter().map(|b| (b.batch, b.dir)).collect(),
        output: r.output,
        files: files_from_pb(r.files),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run() -> RunId {
        RunId {
            task: TaskId(7),
            attempt: 2,
        }
    }

    #[test]
    fn specs_round_trip() {
        let spec = TaskSpec {
            timeout: Duration::from_millis(1500),
            env: BTreeMap::from([("A".to_string(), "1".to_string())]),
            files: vec![FileSpec {
                path: "conf/zoo.cfg".into(),
                content: "tickTime=2000".into(),
            }],
            context: serde_json::json!({"peers": ["h2"]}),
            status: true,
            ..TaskSpec::example(run(), "exit 0")
        };
        assert_eq!(spec_from_pb(spec_to_pb(&spec)).unwrap(), spec);
    }

    #[test]
    fn events_round_trip_and_bad_ones_are_refused() {
        let result = TaskResult {
            state: TaskState::Failed,
            exit_code: Some(3),
            pid: Some(42),
            started_at: Some(1),
            finished_at: 2,
            message: Some("boom".into()),
            outcome_unknown: true,
        };
        for e in [
            AgentEvent::Received(run()),
            AgentEvent::Started {
                run: run(),
                pid: 9,
                at: 5,
            },
            AgentEvent::Log {
                run: run(),
                stream: LogStream::Stderr,
                seq: 4,
                at: 6,
                line: "x".into(),
            },
            AgentEvent::Finished {
                run: run(),
                result: result.clone(),
            },
        ] {
            let pb = event_to_pb(11, &e).unwrap();
            assert_eq!(pb.seq, 11);
            assert_eq!(event_from_pb(pb).unwrap(), e);
        }
        let mut bad = event_to_pb(1, &AgentEvent::Finished { run: run(), result }).unwrap();
        if let Some(pb::task_event::Kind::Finished(f)) = &mut bad.kind {
            f.result.as_mut().unwrap().state = "RUNNING".into();
        }
        let err = event_from_pb(bad).unwrap_err().to_string();
        assert!(err.contains("not a final task state"), "{err}");
        let none = pb::TaskEvent {
            seq: 1,
            run: None,
            kind: None,
        };
        assert!(event_from_pb(none).is_err());
    }

    #[test]
    fn text_over_the_limits_is_cut_on_the_wire() {
        let huge = "z".repeat(20 << 20);
        let log = AgentEvent::Log {
            run: run(),
            stream: LogStream::Stdout,
            seq: 0,
            at: 1,
            line: huge.clone(),
        };
        let pb = event_to_pb(1, &log).unwrap();
        let Some(pb::task_event::Kind::Log(l)) = &pb.kind else {
            panic!("{pb:?}")
        };
        assert!(l.line.len() <= MAX_LOG_LINE);
        assert!(l.line.ends_with(" … [line truncated: 20971520 bytes]"));
        let finished = AgentEvent::Finished {
            run: run(),
            result: TaskResult {
                state: TaskState::Failed,
                exit_code: None,
                pid: None,
                started_at: None,
                finished_at: 2,
                message: Some(huge),
                outcome_unknown: false,
            },
        };
        let pb = event_to_pb(2, &finished).unwrap();
        let Some(pb::task_event::Kind::Finished(f)) = &pb.kind else {
            panic!("{pb:?}")
        };
        let message = f.result.as_ref().unwrap().message.as_ref().unwrap();
        assert!(message.len() <= MAX_RESULT_MESSAGE);
        assert!(message.ends_with(" … [message truncated: 20971520 bytes]"));
        // What an agent from before the limits sends is cut on arrival too.
        let mut raw = event_to_pb(1, &log).unwrap();
        if let Some(pb::task_event::Kind::Log(l)) = &mut raw.kind {
            l.line = "z".repeat(1 << 20);
        }
        let AgentEvent::Log { line, .. } = event_from_pb(raw).unwrap() else {
            panic!("a log line")
        };
        assert!(line.len() <= MAX_LOG_LINE);
        assert!(line.ends_with(" … [line truncated: 1048576 bytes]"));
    }
}
