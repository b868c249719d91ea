//! `bigmgr job …`: run a command, list and show jobs, control them, read task logs, and
//! follow a job until it ends.
//!
//! Following a job is [`bigmgr_core::view::follow`] over the server's event stream (`GET
//! /api/v1/jobs/{id}/events`), the same function the Python module follows jobs with: a
//! [`Progress`] shows one bar per stage (tasks done of all, the stage's state) when stderr is a
//! terminal and a `stage X: N/M STATE` line per change when it is not, and every log line is
//! printed once on stdout as `[host stage] line`.

use super::output::{
    Column, Output, Table, age, col, field, items, print_fields, shown, span, target, time,
};
use super::{Error, Result};
use crate::cli::{JobCommand, RunJobArgs};
use bigmgr_client::{Client, JobAction};
use bigmgr_core::model::{JobId, JobOptions, Target, TaskId, TaskState, UnitId};
use bigmgr_core::view::{Followed, JobDetailView, LogLineView, StageView, TaskView, follow};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::IsTerminal;

/// `bigmgr job …`
pub async fn job(client: &Client, out: Output, command: JobCommand) -> Result<()> {
    match command {
        JobCommand::Run(args) => {
            let (target_, options) = submit_parts(&args)?;
            let job = client
                .submit(&args.cluster, &args.command, target_, options)
                .await?;
            let id = job.id;
            let job = to_json(&job);
            if args.wait {
                if !out.json {
                    println!(
                        "job {id}: {} on {} of cluster {}",
                        field(&job, "command"),
                        target(job.get("target")),
                        args.cluster
                    );
                }
                return follow_and_report(client, out, id).await;
            }
            out.one(&job, |job| {
                println!(
                    "job {id} {}: {} on {} of cluster {}; `bigmgr job wait {id}` follows it",
                    field(job, "state"),
                    field(job, "command"),
                    target(job.get("target")),
                    args.cluster
                );
            });
        }
        JobCommand::List { cluster } => {
            let jobs = to_json(&client.jobs(&cluster, None).await?);
            out.list(items(Some(&jobs)).to_vec(), JOBS);
        }
        JobCommand::Show { id } => {
            let detail = client.job(JobId(id)).await?;
            if out.json {
                out.print_json(&to_json(&detail));
            } else {
                print_job(&detail);
            }
        }
        JobCommand::Wait { id } => return follow_and_report(client, out, JobId(id)).await,
        JobCommand::Cancel { id } => control(client, out, id, JobAction::Cancel).await?,
        JobCommand::Pause { id } => control(client, out, id, JobAction::Pause).await?,
        JobCommand::Resume { id } => control(client, out, id, JobAction::Resume).await?,
        JobCommand::Retry { id, wait } => {
            if !wait {
                return control(client, out, id, JobAction::Retry).await;
            }
            client.control(JobId(id), JobAction::Retry).await?;
            return follow_and_report(client, out, JobId(id)).await;
        }
        JobCommand::Log {
            id,
            task,
            attempt,
            follow,
        } => log(client, out, JobId(id), task.map(TaskId), attempt, follow).await?,
    }
    Ok(())
}

/// A value as the JSON the server sent it as.
pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The target (the cluster unless a target flag says otherwise) and the options of a job run.
pub fn submit_parts(args: &RunJobArgs) -> Result<(Target, JobOptions)> {
    let t = &args.target;
    let target = if let Some(s) = &t.service {
        Target::Service(s.clone())
    } else if let Some(c) = &t.component {
        let (service, component) = c
            .split_once('/')
            .filter(|(s, c)| !s.is_empty() && !c.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "--component {c}: expected SERVICE/COMPONENT, e.g. hello/hello_server"
                ))
            })?;
        Target::Component {
            service: service.to_string(),
            component: component.to_string(),
        }
    } else if !t.hosts.is_empty() {
        Target::Hosts(t.hosts.clone())
    } else if !t.units.is_empty() {
        Target::Units(t.units.iter().map(|u| UnitId(*u)).collect())
    } else {
        Target::Cluster
    };
    let d = JobOptions::default();
    let options = JobOptions {
        parallelism: args.parallelism.or(d.parallelism),
        batch_size: args.batch_size.or(d.batch_size),
        failure_tolerance: args.failure_tolerance.unwrap_or(d.failure_tolerance),
        pipelined: args.pipelined || d.pipelined,
        reason: args.reason.clone(),
    };
    Ok((target, options))
}

/// Cancels, pauses, resumes or retries job `id` and says its state after it.
async fn control(client: &Client, out: Output, id: i64, action: JobAction) -> Result<()> {
    let job = client.control(JobId(id), action).await?;
    if out.json {
        out.print_json(&to_json(&job));
    } else {
        println!("job {id} {}", job.state);
    }
    Ok(())
}

/// The columns of `bigmgr job list`.
const JOBS: &[Column] = &[
    col("ID", "id"),
    col("COMMAND", "command"),
    shown("TARGET", "target", target),
    col("STATE", "state"),
    shown("AGE", "created_at", age),
    shown("DURATION", "", |j| j.map_or(String::new(), duration)),
];

/// How long a job ran (or has been running), `-` before it started.
fn duration(job: &Value) -> String {
    match (job["started_at"].as_i64(), job["finished_at"].as_i64()) {
        (Some(s), Some(f)) => span(f - s),
        (Some(s), None) => format!("{} so far", span(super::output::now_ms() - s)),
        _ => "-".to_string(),
    }
}

/// A stage's tasks in a final state, and all its tasks.
fn done_of(stage: &StageView) -> (u64, u64) {
    let done = stage.tasks.iter().filter(|t| t.state.is_final()).count();
    (done as u64, stage.tasks.len() as u64)
}

/// A job with its stages and tasks, for a person.
fn print_job(d: &JobDetailView) {
    let j = to_json(&d.job);
    print_fields(&[
        ("id", field(&j, "id")),
        ("cluster", field(&j, "cluster")),
        ("command", field(&j, "command")),
        ("target", target(j.get("target"))),
        ("state", field(&j, "state")),
        ("created", time(j.get("created_at"))),
        ("started", time(j.get("started_at"))),
        ("finished", time(j.get("finished_at"))),
        ("duration", duration(&j)),
    ]);
    let mut st = Table::new(&["STAGE", "STATE", "DONE"]);
    let mut tt = Table::new(&[
        "TASK", "STAGE", "HOST", "STATE", "ATTEMPT", "EXIT", "MESSAGE",
    ]);
    for stage in &d.stages {
        let (done, total) = done_of(stage);
        st.row(vec![
            stage.name.clone(),
            stage.state.to_string(),
            format!("{done}/{total}"),
        ]);
        for t in &stage.tasks {
            tt.row(vec![
                t.id.to_string(),
                stage.name.clone(),
                t.host.clone(),
                t.state.to_string(),
                t.attempt.to_string(),
                t.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                t.message.clone().unwrap_or_default(),
            ]);
        }
    }
    if !st.is_empty() {
        println!();
        st.print();
        println!();
        tt.print();
    }
}

/// Follows job `id` to its end, then reports: 0 if it SUCCEEDED; the failed tasks on stderr and
/// [`Error::JobFailed`] if not. With `--json` the final job detail is printed and no log lines.
pub async fn follow_and_report(client: &Client, out: Output, id: JobId) -> Result<()> {
    let mut progress = Progress::for_stderr();
    let logs = !out.json;
    let detail = follow(client, id, |f| match f {
        Followed::Progress(d) => progress.update(d),
        Followed::Line { stage, task, line } if logs => {
            progress.println(&prefixed(task, stage, line));
        }
        Followed::Line { .. } => {}
    })
    .await?;
    progress.finish();
    if out.json {
        out.print_json(&to_json(&detail));
    }
    report(out, &detail)
}

/// Reports how a followed job ended: `job N SUCCEEDED in …` (without `--json`) and `Ok`, or
/// its failed tasks on stderr and [`Error::JobFailed`].
pub fn report(out: Output, detail: &JobDetailView) -> Result<()> {
    let id = detail.job.id;
    let state = detail.job.state;
    if state == bigmgr_core::model::JobState::Succeeded {
        if !out.json {
            println!("job {id} SUCCEEDED in {}", duration(&to_json(&detail.job)));
        }
        return Ok(());
    }
    let failed = detail.failed_tasks();
    for f in &failed {
        eprintln!("{f}; `bigmgr job log {id} {}` shows its output", f.task.id);
    }
    Err(Error::JobFailed(format!(
        "job {id} {state}{}",
        match failed.len() {
            0 => String::new(),
            1 => ": 1 task failed".to_string(),
            n => format!(": {n} tasks failed"),
        }
    )))
}

/// `[host stage] text`.
fn prefixed(task: &TaskView, stage: &StageView, line: &LogLineView) -> String {
    format!("[{} {}] {}", task.host, stage.name, line.line)
}

/// A log line as JSON with its task, host and stage added.
fn line_json(task: &TaskView, stage: &StageView, line: &LogLineView) -> Value {
    let mut v = to_json(line);
    if let Value::Object(m) = &mut v {
        m.insert("task".into(), task.id.0.into());
        m.insert("host".into(), task.host.clone().into());
        m.insert("stage".into(), stage.name.clone().into());
    }
    v
}

/// Per-stage progress on stderr: bars on a terminal, a line per change otherwise.
pub enum Progress {
    /// One bar per stage.
    Bars {
        /// The bars' display.
        multi: MultiProgress,
        /// The bar of each stage, by stage id.
        bars: HashMap<i64, ProgressBar>,
    },
    /// `stage X: N/M STATE` whenever a stage changes.
    Lines {
        /// The last line printed per stage id.
        last: HashMap<i64, String>,
    },
}

impl Progress {
    /// Bars if stderr is a terminal, lines otherwise.
    pub fn for_stderr() -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: HashMap::new(),
            }
        } else {
            Progress::Lines {
                last: HashMap::new(),
            }
        }
    }

    /// Shows the stages of `detail`.
    pub fn update(&mut self, detail: &JobDetailView) {
        let width = detail
            .stages
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        for stage in &detail.stages {
            let id = stage.id.0;
            let (done, total) = done_of(stage);
            let failed = stage
                .tasks
                .iter()
                .filter(|t| matches!(t.state, TaskState::Failed | TaskState::TimedOut))
                .count();
            let state_text = if failed > 0 {
                format!("{} ({failed} failed)", stage.state)
            } else {
                stage.state.to_string()
            };
            match self {
                Progress::Bars { multi, bars } => {
                    let bar = bars.entry(id).or_insert_with(|| {
                        let style = ProgressStyle::with_template(&format!(
                            "{{prefix:<{width}}} [{{bar:25}}] {{pos}}/{{len}} {{msg}}"
                        ))
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                        let bar = multi.add(ProgressBar::new(total).with_style(style));
                        bar.set_prefix(stage.name.clone());
                        bar
                    });
                    bar.set_length(total);
                    bar.set_position(done);
                    bar.set_message(state_text);
                }
                Progress::Lines { last } => {
                    let line = format!("stage {}: {done}/{total} {state_text}", stage.name);
                    if last.get(&id) != Some(&line) {
                        eprintln!("{line}");
                        last.insert(id, line);
                    }
                }
            }
        }
    }

    /// Prints a line on stdout without tearing the bars.
    pub fn println(&self, line: &str) {
        match self {
            Progress::Bars { multi, .. } => multi.suspend(|| println!("{line}")),
            Progress::Lines { .. } => println!("{line}"),
        }
    }

    /// Leaves the bars as they are, drawn for the last time.
    pub fn finish(&mut self) {
        if let Progress::Bars { bars, .. } = self {
            for bar in bars.values() {
                bar.abandon();
            }
        }
    }
}

/// `bigmgr job log ID [TASK] [--attempt N] [--follow]`: the lines written so far, or (with
/// `--follow`) every line as it comes until the job ends.
async fn log(
    client: &Client,
    out: Output,
    id: JobId,
    task: Option<TaskId>,
    attempt: Option<u32>,
    follow_it: bool,
) -> Result<()> {
    let wanted = |t: &TaskView, l: &LogLineView| {
        task.is_none_or(|only| only == t.id) && attempt.is_none_or(|a| a == l.attempt)
    };
    let print = |t: &TaskView, s: &StageView, l: &LogLineView| match (out.json, task.is_some()) {
        (true, _) => println!("{}", line_json(t, s, l)),
        (false, true) => println!("{}", l.line),
        (false, false) => println!("{}", prefixed(t, s, l)),
    };
    if follow_it {
        let detail = client.job(id).await?;
        if let Some(only) = task
            && !detail
                .stages
                .iter()
                .flat_map(|s| &s.tasks)
                .any(|t| t.id == only)
        {
            // The server's own 404 says what to do.
            client.task_log(id, only, attempt).await?;
        }
        follow(client, id, |f| {
            if let Followed::Line { stage, task, line } = f
                && wanted(task, line)
            {
                print(task, stage, line);
            }
        })
        .await?;
        return Ok(());
    }
    if let Some(only) = task
        && out.json
    {
        // One task's log as the server gives it.
        let lines = client.task_log(id, only, attempt).await?;
        out.print_json(&json!({ "lines": lines }));
        return Ok(());
    }
    let detail = client.job(id).await?;
    let mut all = Vec::new();
    let mut found = task.is_none();
    for stage in &detail.stages {
        for t in &stage.tasks {
            if task.is_some_and(|only| only != t.id) || t.state == TaskState::Pending {
                found |= task == Some(t.id);
                continue;
            }
            found = true;
            for l in client.task_log(id, t.id, attempt).await? {
                if out.json {
                    all.push(line_json(t, stage, &l));
                } else {
                    print(t, stage, &l);
                }
            }
        }
    }
    if let Some(only) = task
        && !found
    {
        client.task_log(id, only, attempt).await?;
    }
    if out.json {
        out.print_json(&Value::Array(all));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::TargetArgs;

    fn run_args(target: TargetArgs) -> RunJobArgs {
        RunJobArgs {
            cluster: "c".into(),
            command: "deploy".into(),
            target,
            parallelism: None,
            batch_size: Some(2),
            failure_tolerance: None,
            pipelined: false,
            reason: None,
            wait: false,
        }
    }

    #[test]
    fn targets_and_options_become_the_submit_parts() {
        let (t, o) = submit_parts(&run_args(TargetArgs::default())).unwrap();
        assert_eq!(t, Target::Cluster);
        assert_eq!(
            o,
            JobOptions {
                batch_size: Some(2),
                ..JobOptions::default()
            }
        );
        let (t, _) = submit_parts(&run_args(TargetArgs {
            component: Some("hello/hello_server".into()),
            ..TargetArgs::default()
        }))
        .unwrap();
        assert_eq!(
            t,
            Target::Component {
                service: "hello".into(),
                component: "hello_server".into()
            }
        );
        let (t, _) = submit_parts(&run_args(TargetArgs {
            hosts: vec!["h1".into(), "h2".into()],
            ..TargetArgs::default()
        }))
        .unwrap();
        assert_eq!(t, Target::Hosts(vec!["h1".into(), "h2".into()]));
        let e = submit_parts(&run_args(TargetArgs {
            component: Some("hello".into()),
            ..TargetArgs::default()
        }))
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
