//! `bigmgr job …`: run a command, list and show jobs, control them, read task logs, and
//! follow a job until it ends.
//!
//! Following a job ([`follow`]) polls `GET /api/v1/jobs/{id}` every [`POLL_INTERVAL`]: a
//! [`Progress`] shows one bar per stage (tasks done of all, the stage's state) when stderr is
//! a terminal and a `stage X: N/M STATE` line per change when it is not; [`poll_logs`] fetches
//! the log of every task that ran since the last poll and returns only lines not seen yet,
//! printed on stdout as `[host stage] line`. Swapping [`poll_logs`] for the server's event
//! stream later changes nothing else.

use super::http::{Client, seg};
use super::output::{Output, Table, age, field, fields, span, target, text, time};
use super::{Error, Result};
use crate::cli::{JobCommand, RunJobArgs};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

/// How often a followed job is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// `bigmgr job …`
pub async fn job(client: &Client, out: Output, command: JobCommand) -> Result<()> {
    match command {
        JobCommand::Run(args) => {
            let path = format!("/clusters/{}/jobs", seg(&args.cluster));
            let job = client.post(&path, &submit_body(&args)?).await?;
            let id = job_id(&job)?;
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
            if out.json {
                out.print_json(&job);
            } else {
                println!(
                    "job {id} {}: {} on {} of cluster {}; `bigmgr job wait {id}` follows it",
                    field(&job, "state"),
                    field(&job, "command"),
                    target(job.get("target")),
                    args.cluster
                );
            }
        }
        JobCommand::List { cluster } => {
            let jobs = client
                .list(&format!("/clusters/{}/jobs", seg(&cluster)))
                .await?;
            if out.json {
                out.print_json(&Value::Array(jobs));
                return Ok(());
            }
            let mut t = Table::new(&["ID", "COMMAND", "TARGET", "STATE", "AGE", "DURATION"]);
            for j in &jobs {
                t.row(vec![
                    field(j, "id"),
                    field(j, "command"),
                    target(j.get("target")),
                    field(j, "state"),
                    age(j.get("created_at")),
                    duration(j),
                ]);
            }
            t.print();
        }
        JobCommand::Show { id } => {
            let detail = client.get(&format!("/jobs/{id}")).await?;
            if out.json {
                out.print_json(&detail);
            } else {
                print_job(&detail);
            }
        }
        JobCommand::Wait { id } => return follow_and_report(client, out, id).await,
        JobCommand::Cancel { id } => control(client, out, id, "cancel").await?,
        JobCommand::Pause { id } => control(client, out, id, "pause").await?,
        JobCommand::Resume { id } => control(client, out, id, "resume").await?,
        JobCommand::Retry { id, wait } => {
            if !wait {
                return control(client, out, id, "retry").await;
            }
            client
                .post(&format!("/jobs/{id}/retry"), &json!({}))
                .await?;
            return follow_and_report(client, out, id).await;
        }
        JobCommand::Log {
            id,
            task,
            attempt,
            follow,
        } => log(client, out, id, task, attempt, follow).await?,
    }
    Ok(())
}

/// The body of `POST /clusters/{cluster}/jobs`: the command, the target (the cluster unless a
/// target flag says otherwise) and only the options given.
pub fn submit_body(args: &RunJobArgs) -> Result<Value> {
    let t = &args.target;
    let target = if let Some(s) = &t.service {
        json!({ "service": s })
    } else if let Some(c) = &t.component {
        let (service, component) = c
            .split_once('/')
            .filter(|(s, c)| !s.is_empty() && !c.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "--component {c}: expected SERVICE/COMPONENT, e.g. hello/hello_server"
                ))
            })?;
        json!({ "component": { "service": service, "component": component } })
    } else if !t.hosts.is_empty() {
        json!({ "hosts": t.hosts })
    } else if !t.units.is_empty() {
        json!({ "units": t.units })
    } else {
        json!("cluster")
    };
    let mut options = Map::new();
    if let Some(n) = args.parallelism {
        options.insert("parallelism".into(), n.into());
    }
    if let Some(n) = args.batch_size {
        options.insert("batch_size".into(), n.into());
    }
    if let Some(n) = args.failure_tolerance {
        options.insert("failure_tolerance".into(), n.into());
    }
    if args.pipelined {
        options.insert("pipelined".into(), true.into());
    }
    Ok(json!({ "command": args.command, "target": target, "options": options }))
}

/// A job's id from the server's answer.
fn job_id(job: &Value) -> Result<i64> {
    job["id"]
        .as_i64()
        .ok_or_else(|| Error::Http(format!("the server's job has no numeric id: {job}")))
}

/// `POST /jobs/{id}/{action}` and the job's state after it.
async fn control(client: &Client, out: Output, id: i64, action: &str) -> Result<()> {
    let job = client
        .post(&format!("/jobs/{id}/{action}"), &json!({}))
        .await?;
    if out.json {
        out.print_json(&job);
    } else {
        println!("job {id} {}", field(&job, "state"));
    }
    Ok(())
}

/// How long a job ran (or has been running), `-` before it started.
fn duration(job: &Value) -> String {
    match (job["started_at"].as_i64(), job["finished_at"].as_i64()) {
        (Some(s), Some(f)) => span(f - s),
        (Some(s), None) => format!("{} so far", span(super::output::now_ms() - s)),
        _ => "-".to_string(),
    }
}

/// The stages of a job detail.
fn stages(detail: &Value) -> &[Value] {
    detail["stages"].as_array().map_or(&[], Vec::as_slice)
}

/// The tasks of a stage.
fn tasks(stage: &Value) -> &[Value] {
    stage["tasks"].as_array().map_or(&[], Vec::as_slice)
}

/// True for a job state that changes no more (short of a retry).
pub fn job_is_final(state: &str) -> bool {
    matches!(state, "SUCCEEDED" | "FAILED" | "CANCELED")
}

/// True for a task state that changes no more (short of a retry).
pub fn task_is_final(state: &str) -> bool {
    matches!(state, "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "CANCELED")
}

/// A job with its stages and tasks, for a person.
fn print_job(d: &Value) {
    print!(
        "{}",
        fields(&[
            ("id", field(d, "id")),
            ("cluster", field(d, "cluster")),
            ("command", field(d, "command")),
            ("target", target(d.get("target"))),
            ("state", field(d, "state")),
            ("created", time(d.get("created_at"))),
            ("started", time(d.get("started_at"))),
            ("finished", time(d.get("finished_at"))),
            ("duration", duration(d)),
        ])
    );
    let mut st = Table::new(&["STAGE", "STATE", "DONE"]);
    let mut tt = Table::new(&[
        "TASK", "STAGE", "HOST", "STATE", "ATTEMPT", "EXIT", "MESSAGE",
    ]);
    for stage in stages(d) {
        let (done, total) = done_of(stage);
        st.row(vec![
            field(stage, "name"),
            field(stage, "state"),
            format!("{done}/{total}"),
        ]);
        for t in tasks(stage) {
            tt.row(vec![
                field(t, "id"),
                field(stage, "name"),
                field(t, "host"),
                field(t, "state"),
                field(t, "attempt"),
                field(t, "exit_code"),
                field(t, "message"),
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

/// A stage's tasks in a final state, and all its tasks.
fn done_of(stage: &Value) -> (u64, u64) {
    let ts = tasks(stage);
    let done = ts
        .iter()
        .filter(|t| task_is_final(t["state"].as_str().unwrap_or_default()))
        .count();
    (done as u64, ts.len() as u64)
}

/// Follows job `id` to its end, then reports: 0 if it SUCCEEDED; the failed tasks on stderr and
/// [`Error::JobFailed`] if not. With `--json` the final job detail is printed and no log lines.
pub async fn follow_and_report(client: &Client, out: Output, id: i64) -> Result<()> {
    let detail = follow(client, id, !out.json).await?;
    if out.json {
        out.print_json(&detail);
    }
    report(out, id, &detail)
}

/// Reports how a followed job ended: `job N SUCCEEDED in …` (without `--json`) and `Ok`, or
/// its failed tasks on stderr and [`Error::JobFailed`].
pub fn report(out: Output, id: i64, detail: &Value) -> Result<()> {
    let state = field(detail, "state");
    if state == "SUCCEEDED" {
        if !out.json {
            println!("job {id} SUCCEEDED in {}", duration(detail));
        }
        return Ok(());
    }
    let mut failed = 0;
    for stage in stages(detail) {
        for t in tasks(stage) {
            let ts = field(t, "state");
            if ts == "FAILED" || ts == "TIMED_OUT" {
                failed += 1;
                let exit = t["exit_code"]
                    .as_i64()
                    .map(|c| format!(", exit {c}"))
                    .unwrap_or_default();
                let message = t["message"]
                    .as_str()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                eprintln!(
                    "task {} on {} ({}) {ts}{exit}{message}; `bigmgr job log {id} {}` shows its output",
                    field(t, "id"),
                    field(t, "host"),
                    field(stage, "name"),
                    field(t, "id"),
                );
            }
        }
    }
    Err(Error::JobFailed(format!(
        "job {id} {state}{}",
        match failed {
            0 => String::new(),
            1 => ": 1 task failed".to_string(),
            n => format!(": {n} tasks failed"),
        }
    )))
}

/// Polls job `id` until it reaches a final state, showing progress on stderr and (if `logs`)
/// the tasks' new log lines on stdout; returns the final job detail.
pub async fn follow(client: &Client, id: i64, logs: bool) -> Result<Value> {
    let mut progress = Progress::for_stderr();
    let mut cursor = LogCursor::default();
    loop {
        let detail = client.get(&format!("/jobs/{id}")).await?;
        progress.update(&detail);
        if logs {
            for line in poll_logs(client, &detail, &mut cursor, &LogFilter::default()).await? {
                progress.println(&line.prefixed());
            }
        }
        if job_is_final(detail["state"].as_str().unwrap_or_default()) {
            progress.finish();
            return Ok(detail);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
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
    pub fn update(&mut self, detail: &Value) {
        let width = stages(detail)
            .iter()
            .map(|s| field(s, "name").chars().count())
            .max()
            .unwrap_or(0);
        for stage in stages(detail) {
            let id = stage["id"].as_i64().unwrap_or_default();
            let name = field(stage, "name");
            let state = field(stage, "state");
            let (done, total) = done_of(stage);
            let failed = tasks(stage)
                .iter()
                .filter(|t| matches!(t["state"].as_str(), Some("FAILED" | "TIMED_OUT")))
                .count();
            let state_text = if failed > 0 {
                format!("{state} ({failed} failed)")
            } else {
                state.clone()
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
                        bar.set_prefix(name.clone());
                        bar
                    });
                    bar.set_length(total);
                    bar.set_position(done);
                    bar.set_message(state_text);
                }
                Progress::Lines { last } => {
                    let line = format!("stage {name}: {done}/{total} {state_text}");
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

/// One log line of a task, with where it came from.
#[derive(Debug, Clone)]
pub struct TaskLine {
    /// The task's id.
    pub task: i64,
    /// Its host.
    pub host: String,
    /// Its stage's name.
    pub stage: String,
    /// The line as the server gave it (`attempt`, `seq`, `stream`, `at`, `line`).
    pub raw: Value,
}

impl TaskLine {
    /// `[host stage] text`.
    pub fn prefixed(&self) -> String {
        format!("[{} {}] {}", self.host, self.stage, self.text())
    }

    /// The line's text.
    pub fn text(&self) -> String {
        text(self.raw.get("line"))
    }

    /// The line as JSON with its task, host and stage added.
    pub fn json(&self) -> Value {
        let mut v = self.raw.clone();
        if let Value::Object(m) = &mut v {
            m.insert("task".into(), self.task.into());
            m.insert("host".into(), self.host.clone().into());
            m.insert("stage".into(), self.stage.clone().into());
        }
        v
    }
}

/// Which lines [`poll_logs`] has returned already: per task the last `(attempt, seq)` and
/// the attempt whose final lines were read.
#[derive(Debug, Default)]
pub struct LogCursor {
    last: HashMap<i64, (u64, u64)>,
    drained: HashMap<i64, u64>,
}

/// Which tasks and attempts [`poll_logs`] reads.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Only this task.
    pub task: Option<i64>,
    /// Only this attempt's lines.
    pub attempt: Option<u32>,
}

/// The log lines of `detail`'s tasks not returned before: it reads the log of each task that
/// has been dispatched and whose final lines it has not read yet.
pub async fn poll_logs(
    client: &Client,
    detail: &Value,
    cursor: &mut LogCursor,
    filter: &LogFilter,
) -> Result<Vec<TaskLine>> {
    let job = detail["id"].as_i64().unwrap_or_default();
    let mut out = Vec::new();
    for stage in stages(detail) {
        for t in tasks(stage) {
            let Some(task) = t["id"].as_i64() else {
                continue;
            };
            if filter.task.is_some_and(|only| only != task) {
                continue;
            }
            let state = t["state"].as_str().unwrap_or_default();
            let attempt = t["attempt"].as_u64().unwrap_or(1);
            if state == "PENDING" || cursor.drained.get(&task) == Some(&attempt) {
                continue;
            }
            let is_final = task_is_final(state);
            let query: Vec<(&str, String)> = filter
                .attempt
                .map(|a| ("attempt", a.to_string()))
                .into_iter()
                .collect();
            let log = client
                .get_query(&format!("/jobs/{job}/tasks/{task}/log"), &query)
                .await?;
            let last = cursor.last.entry(task).or_insert((0, 0));
            for line in log["lines"].as_array().into_iter().flatten() {
                let key = (
                    line["attempt"].as_u64().unwrap_or(0),
                    line["seq"].as_u64().unwrap_or(0),
                );
                if *last != (0, 0) && key <= *last {
                    continue;
                }
                *last = key;
                out.push(TaskLine {
                    task,
                    host: field(t, "host"),
                    stage: field(stage, "name"),
                    raw: line.clone(),
                });
            }
            if is_final {
                cursor.drained.insert(task, attempt);
            }
        }
    }
    Ok(out)
}

/// `bigmgr job log ID [TASK] [--attempt N] [--follow]`.
async fn log(
    client: &Client,
    out: Output,
    id: i64,
    task: Option<i64>,
    attempt: Option<u32>,
    follow: bool,
) -> Result<()> {
    let filter = LogFilter { task, attempt };
    if let Some(task) = task
        && out.json
        && !follow
    {
        // One task's log as the server gives it.
        let query: Vec<(&str, String)> = attempt
            .map(|a| ("attempt", a.to_string()))
            .into_iter()
            .collect();
        let log = client
            .get_query(&format!("/jobs/{id}/tasks/{task}/log"), &query)
            .await?;
        out.print_json(&log);
        return Ok(());
    }
    let mut cursor = LogCursor::default();
    let mut all = Vec::new();
    loop {
        let detail = client.get(&format!("/jobs/{id}")).await?;
        if let Some(task) = task
            && !stages(&detail)
                .iter()
                .flat_map(tasks)
                .any(|t| t["id"].as_i64() == Some(task))
        {
            // The server's own 404 says what to do.
            client.get(&format!("/jobs/{id}/tasks/{task}/log")).await?;
        }
        let lines = poll_logs(client, &detail, &mut cursor, &filter).await?;
        for line in lines {
            match (out.json, follow) {
                (true, true) => println!("{}", line.json()),
                (true, false) => all.push(line.json()),
                (false, _) if task.is_some() => println!("{}", line.text()),
                (false, _) => println!("{}", line.prefixed()),
            }
        }
        let done = match task {
            Some(task) => stages(&detail)
                .iter()
                .flat_map(tasks)
                .filter(|t| t["id"].as_i64() == Some(task))
                .all(|t| task_is_final(t["state"].as_str().unwrap_or_default())),
            None => job_is_final(detail["state"].as_str().unwrap_or_default()),
        };
        if !follow || done {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    if out.json && !follow {
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
            wait: false,
        }
    }

    #[test]
    fn targets_and_options_become_the_submit_body() {
        let b = submit_body(&run_args(TargetArgs::default())).unwrap();
        assert_eq!(
            b,
            json!({"command": "deploy", "target": "cluster", "options": {"batch_size": 2}})
        );
        let b = submit_body(&run_args(TargetArgs {
            component: Some("hello/hello_server".into()),
            ..TargetArgs::default()
        }))
        .unwrap();
        assert_eq!(
            b["target"],
            json!({"component": {"service": "hello", "component": "hello_server"}})
        );
        let b = submit_body(&run_args(TargetArgs {
            hosts: vec!["h1".into(), "h2".into()],
            ..TargetArgs::default()
        }))
        .unwrap();
        assert_eq!(b["target"], json!({"hosts": ["h1", "h2"]}));
        let e = submit_body(&run_args(TargetArgs {
            component: Some("hello".into()),
            ..TargetArgs::default()
        }))
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn final_states() {
        assert!(job_is_final("CANCELED") && !job_is_final("CANCELING"));
        assert!(task_is_final("TIMED_OUT") && !task_is_final("QUEUED"));
    }
}
