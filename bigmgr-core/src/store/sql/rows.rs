//! Rows and columns: the columns each model type is read from and how ([`Record`]), and values
//! to and from columns. What every part of [`SqlStore`](super::SqlStore) reads is mapped here, in
//! one place, so that the parts' files hold only their SQL.

use crate::auth::Role;
use crate::model::*;
use crate::{Error, Result};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use std::fmt::Display;
use std::str::FromStr;

/// A model value read from one row of a `SELECT`: the columns it names, and how they map.
pub(super) trait Record: Sized {
    /// What `SELECT` names for [`Record::from_row`] (some of them qualified by a table alias
    /// the queries use, such as `u` for units).
    const COLS: &'static str;
    /// The value of one row.
    fn from_row(row: &SqliteRow) -> Result<Self>;
}

pub(super) fn corrupt(col: &str, e: impl Display) -> Error {
    Error::Store(format!("unreadable value in column {col}: {e}"))
}

fn text_state<T: FromStr<Err = Error>>(row: &SqliteRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e| corrupt(col, e))
}

fn u32_col(row: &SqliteRow, col: &str) -> Result<u32> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|e| corrupt(col, e))
}

fn opt_u32_col(row: &SqliteRow, col: &str) -> Result<Option<u32>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| u32::try_from(v).map_err(|e| corrupt(col, e)))
        .transpose()
}

fn opt_i32_col(row: &SqliteRow, col: &str) -> Result<Option<i32>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| i32::try_from(v).map_err(|e| corrupt(col, e)))
        .transpose()
}

/// A nullable JSON column (named `table.column`), decoded.
fn json_col<T: serde::de::DeserializeOwned>(row: &SqliteRow, name: &str) -> Result<Option<T>> {
    let col = name.rsplit('.').next().unwrap_or(name);
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(name, e)))
        .transpose()
}

/// A value as JSON text for a column.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Store(format!("cannot encode JSON: {e}")))
}

/// A map as JSON text for a nullable column; an empty map is NULL.
pub(super) fn map_json<K: serde::Serialize, V: serde::Serialize>(
    map: &std::collections::BTreeMap<K, V>,
) -> Result<Option<String>> {
    if map.is_empty() {
        Ok(None)
    } else {
        to_json(map).map(Some)
    }
}

// ---------------------------------------------------------------------------------------------
// Clusters and hosts.

impl Record for Cluster {
    const COLS: &'static str = "id, name, created_at";

    fn from_row(row: &SqliteRow) -> Result<Cluster> {
        Ok(Cluster {
            id: ClusterId(row.try_get("id")?),
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl Record for Host {
    const COLS: &'static str =
        "id, cluster, name, address, reported_address, state, last_heartbeat, facts, metrics";

    fn from_row(row: &SqliteRow) -> Result<Host> {
        Ok(Host {
            id: HostId(row.try_get("id")?),
            cluster: ClusterId(row.try_get("cluster")?),
            name: row.try_get("name")?,
            address: row.try_get("address")?,
            reported_address: row.try_get("reported_address")?,
            state: text_state(row, "state")?,
            last_heartbeat: row.try_get("last_heartbeat")?,
            facts: json_col(row, "hosts.facts")?,
            metrics: json_col(row, "hosts.metrics")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Service instances and units.

impl Record for ServiceInstance {
    const COLS: &'static str = "id, cluster, name, stack, stack_version, service, created_at, \
                                configs, host_overrides, config_version";

    fn from_row(row: &SqliteRow) -> Result<ServiceInstance> {
        Ok(ServiceInstance {
            id: ServiceId(row.try_get("id")?),
            cluster: ClusterId(row.try_get("cluster")?),
            name: row.try_get("name")?,
            stack: row.try_get("stack")?,
            stack_version: row.try_get("stack_version")?,
            service: row.try_get("service")?,
            created_at: row.try_get("created_at")?,
            configs: json_col(row, "services.configs")?.unwrap_or_default(),
            host_overrides: json_col(row, "services.host_overrides")?.unwrap_or_default(),
            config_version: u32_col(row, "config_version")?,
        })
    }
}

impl Record for Unit {
    /// Qualified by the alias `u`.
    const COLS: &'static str = "u.id, u.service, u.component, u.host, u.state, u.health, \
                                u.applied_version, u.applied_hash";

    fn from_row(row: &SqliteRow) -> Result<Unit> {
        Ok(Unit {
            id: UnitId(row.try_get("id")?),
            service: ServiceId(row.try_get("service")?),
            component: row.try_get("component")?,
            host: HostId(row.try_get("host")?),
            state: text_state(row, "state")?,
            health: json_col(row, "units.health")?,
            applied_version: opt_u32_col(row, "applied_version")?,
            applied_hash: row.try_get("applied_hash")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Config versions, snapshots, relations and their events.

impl Record for ConfigVersion {
    const COLS: &'static str =
        "service, version, author, created_at, message, configs, host_overrides";

    fn from_row(row: &SqliteRow) -> Result<ConfigVersion> {
        Ok(ConfigVersion {
            service: ServiceId(row.try_get("service")?),
            version: u32_col(row, "version")?,
            author: row.try_get("author")?,
            created_at: row.try_get("created_at")?,
            message: row.try_get("message")?,
            configs: json_col(row, "config_versions.configs")?.unwrap_or_default(),
            host_overrides: json_col(row, "config_versions.host_overrides")?.unwrap_or_default(),
        })
    }
}

impl Record for Snapshot {
    const COLS: &'static str = "id, cluster, name, author, created_at, message, entries";

    fn from_row(row: &SqliteRow) -> Result<Snapshot> {
        Ok(Snapshot {
            id: SnapshotId(row.try_get("id")?),
            cluster: ClusterId(row.try_get("cluster")?),
            name: row.try_get("name")?,
            author: row.try_get("author")?,
            created_at: row.try_get("created_at")?,
            message: row.try_get("message")?,
            entries: json_col(row, "snapshots.entries")?.unwrap_or_default(),
        })
    }
}

impl Record for Relation {
    const COLS: &'static str = "id, cluster, requirer, requirer_endpoint, provider, \
                                provider_endpoint, interface, auto_reconfigure, created_at";

    fn from_row(row: &SqliteRow) -> Result<Relation> {
        Ok(Relation {
            id: RelationId(row.try_get("id")?),
            cluster: ClusterId(row.try_get("cluster")?),
            requirer: ServiceId(row.try_get("requirer")?),
            requirer_endpoint: row.try_get("requirer_endpoint")?,
            provider: ServiceId(row.try_get("provider")?),
            provider_endpoint: row.try_get("provider_endpoint")?,
            interface: row.try_get("interface")?,
            auto_reconfigure: row.try_get("auto_reconfigure")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl Record for RelationEvent {
    const COLS: &'static str = "id, relation, at, kind, service, detail, job";

    fn from_row(row: &SqliteRow) -> Result<RelationEvent> {
        let kind: String = row.try_get("kind")?;
        let job: Option<i64> = row.try_get("job")?;
        Ok(RelationEvent {
            id: RelationEventId(row.try_get("id")?),
            relation: RelationId(row.try_get("relation")?),
            at: row.try_get("at")?,
            kind: kind
                .parse()
                .map_err(|e| corrupt("relation_events.kind", e))?,
            service: ServiceId(row.try_get("service")?),
            detail: row.try_get("detail")?,
            job: job.map(JobId),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs, stages, tasks and log lines.

impl Record for Job {
    const COLS: &'static str =
        "id, cluster, command, target, options, state, created_at, started_at, finished_at";

    fn from_row(row: &SqliteRow) -> Result<Job> {
        let target: String = row.try_get("target")?;
        let options: String = row.try_get("options")?;
        Ok(Job {
            id: JobId(row.try_get("id")?),
            cluster: ClusterId(row.try_get("cluster")?),
            command: row.try_get("command")?,
            target: serde_json::from_str(&target).map_err(|e| corrupt("jobs.target", e))?,
            options: serde_json::from_str(&options).map_err(|e| corrupt("jobs.options", e))?,
            state: text_state(row, "state")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        })
    }
}

impl Record for Stage {
    const COLS: &'static str = "id, job, seq, name, service, component, command, state";

    /// A stage without its `after`, which is in `stage_deps`.
    fn from_row(row: &SqliteRow) -> Result<Stage> {
        Ok(Stage {
            id: StageId(row.try_get("id")?),
            job: JobId(row.try_get("job")?),
            seq: u32_col(row, "seq")?,
            name: row.try_get("name")?,
            service: ServiceId(row.try_get("service")?),
            component: row.try_get("component")?,
            command: row.try_get("command")?,
            after: Vec::new(),
            state: text_state(row, "state")?,
        })
    }
}

impl Record for Task {
    const COLS: &'static str = "id, job, stage, unit, host, attempt, state, exit_code, pid, \
                                started_at, finished_at, message";

    fn from_row(row: &SqliteRow) -> Result<Task> {
        Ok(Task {
            id: TaskId(row.try_get("id")?),
            job: JobId(row.try_get("job")?),
            stage: StageId(row.try_get("stage")?),
            unit: UnitId(row.try_get("unit")?),
            host: HostId(row.try_get("host")?),
            attempt: u32_col(row, "attempt")?,
            state: text_state(row, "state")?,
            exit_code: opt_i32_col(row, "exit_code")?,
            pid: opt_u32_col(row, "pid")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            message: row.try_get("message")?,
        })
    }
}

impl Record for LogLine {
    const COLS: &'static str = "task, attempt, seq, stream, at, line";

    fn from_row(row: &SqliteRow) -> Result<LogLine> {
        let stream: String = row.try_get("stream")?;
        let seq: i64 = row.try_get("seq")?;
        Ok(LogLine {
            task: TaskId(row.try_get("task")?),
            attempt: u32_col(row, "attempt")?,
            seq: u64::try_from(seq).map_err(|e| corrupt("task_logs.seq", e))?,
            stream: match stream.as_str() {
                "stdout" => LogStream::Stdout,
                "stderr" => LogStream::Stderr,
                other => return Err(corrupt("task_logs.stream", other)),
            },
            at: row.try_get("at")?,
            line: row.try_get("line")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Users and API tokens.

impl Record for User {
    const COLS: &'static str =
        "id, name, role, password_hash IS NOT NULL AS has_password, created_at";

    fn from_row(row: &SqliteRow) -> Result<User> {
        let role: String = row.try_get("role")?;
        Ok(User {
            id: UserId(row.try_get("id")?),
            name: row.try_get("name")?,
            role: role.parse::<Role>().map_err(|e| corrupt("users.role", e))?,
            has_password: row.try_get("has_password")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl Record for ApiToken {
    /// Of `api_tokens t JOIN users u`.
    const COLS: &'static str = "t.id, u.name AS user, t.name, t.created_at, t.last_used_at";

    fn from_row(row: &SqliteRow) -> Result<ApiToken> {
        Ok(ApiToken {
            id: ApiTokenId(row.try_get("id")?),
            user: row.try_get("user")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The audit log.

impl Record for AuditEvent {
    const COLS: &'static str = "id, at, actor, action, target, outcome, detail";

    fn from_row(row: &SqliteRow) -> Result<AuditEvent> {
        Ok(AuditEvent {
            id: AuditId(row.try_get("id")?),
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            target: row.try_get("target")?,
            outcome: text_state(row, "outcome")?,
            detail: row.try_get("detail")?,
        })
    }
}
