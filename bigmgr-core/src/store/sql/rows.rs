//! Rows and columns: the columns each model type is read from and how ([`Record`]), and values
//! to and from columns. What every part of [`SqlStore`](super::SqlStore) reads is mapped here, in
//! one place, so that the parts' files hold only their SQL.

use crate::auth::Role;
use crate::model::*;
use crate::{Error, Result};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::fmt::Display;
use std::str::FromStr;

/// A model value read from one row of a `SELECT`: the columns it names, and how they map.
pub(super) trait Record: Sized {
    /// What `SELECT` names for [`Record::from_row`] (some of them qualified by a table alias
    /// the queries use, such as `u` for units).
    const COLS: &'static str;
    /// The value of one row.
    fn from_row(row: &AnyRow) -> Result<Self>;
}

pub(super) fn corrupt(col: &str, e: impl Display) -> Error {
    Error::Store(format!("unreadable value in column {col}: {e}"))
}

fn text_state<T: FromStr<Err = Error>>(row: &AnyRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e| corrupt(col, e))
}

fn u32_col(row: &AnyRow, col: &str) -> Result<u32> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|e| corrupt(col, e))
}

fn opt_u32_col(row: &AnyRow, col: &str) -> Result<Option<u32>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| u32::try_from(v).map_err(|e| corrupt(col, e)))
        .transpose()
}

fn opt_i32_col(row: &AnyRow, col: &str) -> Result<Option<i32>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| i32::try_from(v).map_err(|e| corrupt(col, e)))
        .transpose()
}

/// A flag column: an integer, 0 or 1 (neither engine's boolean, so both read it alike).
fn flag_col(row: &AnyRow, col: &str) -> Result<bool> {
    let v: i64 = row.try_get(col)?;
    Ok(v != 0)
}

/// A nullable JSON column (named `table.column`), decoded.
fn json_col<T: serde::de::DeserializeOwned>(row: &AnyRow, name: &str) -> Result<Option<T>> {
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

/// Implements [`Record`] for a model type, each field read from the column of its name unless
/// said otherwise:
///
/// ```text
/// record!(Type from "COLS"; |row|
///     plain: a, b;              // read as they are
///     ids: id TypeId, c CId;    // an id: the integer in its id type
///     with: d u32_col;          // read by a function of (row, column)
///     e: expression over row,   // anything else
/// );
/// ```
macro_rules! record {
    (
        $ty:ident from $cols:expr; |$row:ident|
        plain: $($plain:ident),*;
        ids: $($id:ident $id_ty:ident),*;
        with: $($with:ident $read:ident),*;
        $($field:ident: $value:expr),* $(,)?
    ) => {
        impl Record for $ty {
            const COLS: &'static str = $cols;

            fn from_row($row: &AnyRow) -> Result<$ty> {
                Ok($ty {
                    $($plain: $row.try_get(stringify!($plain))?,)*
                    $($id: $id_ty($row.try_get(stringify!($id))?),)*
                    $($with: $read($row, stringify!($with))?,)*
                    $($field: $value,)*
                })
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Clusters and hosts.

record!(Cluster from "id, name, created_at"; |row|
    plain: name, created_at;
    ids: id ClusterId;
    with: ;
);

record!(Host from "id, cluster, name, address, reported_address, state, last_heartbeat, facts, \
                   metrics"; |row|
    plain: name, address, reported_address, last_heartbeat;
    ids: id HostId, cluster ClusterId;
    with: state text_state;
    facts: json_col(row, "hosts.facts")?,
    metrics: json_col(row, "hosts.metrics")?,
);

// ---------------------------------------------------------------------------------------------
// Service instances and units.

record!(ServiceInstance from "id, cluster, name, stack, stack_version, service, created_at, \
                              configs, host_overrides, config_version"; |row|
    plain: name, stack, stack_version, service, created_at;
    ids: id ServiceId, cluster ClusterId;
    with: config_version u32_col;
    configs: json_col(row, "services.configs")?.unwrap_or_default(),
    host_overrides: json_col(row, "services.host_overrides")?.unwrap_or_default(),
);

// Qualified by the alias `u`.
record!(Unit from "u.id, u.service, u.component, u.host, u.state, u.health, \
                   u.applied_version, u.applied_hash"; |row|
    plain: component, applied_hash;
    ids: id UnitId, service ServiceId, host HostId;
    with: state text_state, applied_version opt_u32_col;
    health: json_col(row, "units.health")?,
);

// ---------------------------------------------------------------------------------------------
// Config versions, snapshots, relations and their events.

record!(ConfigVersion from "service, version, author, created_at, message, configs, \
                            host_overrides"; |row|
    plain: author, created_at, message;
    ids: service ServiceId;
    with: version u32_col;
    configs: json_col(row, "config_versions.configs")?.unwrap_or_default(),
    host_overrides: json_col(row, "config_versions.host_overrides")?.unwrap_or_default(),
);

record!(Snapshot from "id, cluster, name, author, created_at, message, entries"; |row|
    plain: name, author, created_at, message;
    ids: id SnapshotId, cluster ClusterId;
    with: ;
    entries: json_col(row, "snapshots.entries")?.unwrap_or_default(),
);

record!(Relation from "id, cluster, requirer, requirer_endpoint, provider, provider_endpoint, \
                       interface, auto_reconfigure, created_at"; |row|
    plain: requirer_endpoint, provider_endpoint, interface, created_at;
    ids: id RelationId, cluster ClusterId, requirer ServiceId, provider ServiceId;
    with: auto_reconfigure flag_col;
);

record!(RelationEvent from "id, relation, at, kind, service, detail, job"; |row|
    plain: at, detail;
    ids: id RelationEventId, relation RelationId, service ServiceId;
    with: ;
    kind: row.try_get::<String, _>("kind")?
        .parse()
        .map_err(|e| corrupt("relation_events.kind", e))?,
    job: row.try_get::<Option<i64>, _>("job")?.map(JobId),
);

// ---------------------------------------------------------------------------------------------
// Jobs, stages, tasks and log lines.

record!(Job from "id, cluster, command, target, options, state, created_at, started_at, \
                  finished_at"; |row|
    plain: command, created_at, started_at, finished_at;
    ids: id JobId, cluster ClusterId;
    with: state text_state;
    target: serde_json::from_str(&row.try_get::<String, _>("target")?)
        .map_err(|e| corrupt("jobs.target", e))?,
    options: serde_json::from_str(&row.try_get::<String, _>("options")?)
        .map_err(|e| corrupt("jobs.options", e))?,
);

// A stage without its `after`, which is in `stage_deps`.
record!(Stage from "id, job, seq, name, service, component, command, state"; |row|
    plain: name, component, command;
    ids: id StageId, job JobId, service ServiceId;
    with: seq u32_col, state text_state;
    after: Vec::new(),
);

record!(Task from "id, job, stage, unit, host, attempt, state, exit_code, pid, started_at, \
                   finished_at, message"; |row|
    plain: started_at, finished_at, message;
    ids: id TaskId, job JobId, stage StageId, unit UnitId, host HostId;
    with: attempt u32_col, state text_state, exit_code opt_i32_col, pid opt_u32_col;
);

// Of `tasks t JOIN jobs j ON j.id = t.job JOIN stages s ON s.id = t.stage`.
impl Record for HostTask {
    const COLS: &'static str = "t.id, t.job, t.stage, t.unit, t.host, t.attempt, t.state, \
        t.exit_code, t.pid, t.started_at, t.finished_at, t.message, j.command AS job_command, \
        s.service AS stage_service, s.component AS stage_component, s.command AS stage_command";

    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(HostTask {
            task: Task::from_row(row)?,
            command: row.try_get("job_command")?,
            stage_command: row.try_get("stage_command")?,
            service: ServiceId(row.try_get("stage_service")?),
            component: row.try_get("stage_component")?,
        })
    }
}

record!(LogLine from "task, attempt, seq, stream, at, line"; |row|
    plain: at, line;
    ids: task TaskId;
    with: attempt u32_col;
    seq: u64::try_from(row.try_get::<i64, _>("seq")?)
        .map_err(|e| corrupt("task_logs.seq", e))?,
    stream: match row.try_get::<String, _>("stream")?.as_str() {
        "stdout" => LogStream::Stdout,
        "stderr" => LogStream::Stderr,
        other => return Err(corrupt("task_logs.stream", other)),
    },
);

// ---------------------------------------------------------------------------------------------
// Users and API tokens.

record!(User from "id, name, role, \
                   CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS has_password, created_at"; |row|
    plain: name, created_at;
    ids: id UserId;
    with: has_password flag_col;
    role: row.try_get::<String, _>("role")?
        .parse::<Role>()
        .map_err(|e| corrupt("users.role", e))?,
);

// Of `api_tokens t JOIN users u`.
record!(ApiToken from "t.id, u.name AS user, t.name, t.created_at, t.last_used_at"; |row|
    plain: user, name, created_at, last_used_at;
    ids: id ApiTokenId;
    with: ;
);

// ---------------------------------------------------------------------------------------------
// The audit log.

record!(AuditEvent from "id, at, actor, action, target, outcome, detail"; |row|
    plain: at, actor, action, target, detail;
    ids: id AuditId;
    with: outcome text_state;
);

// ---------------------------------------------------------------------------------------------
// Alerts.

/// The subject of an alert from its `cluster`, `host`, `service` and `unit` columns.
fn subject_cols(row: &AnyRow) -> Result<AlertSubject> {
    Ok(AlertSubject {
        cluster: ClusterId(row.try_get("cluster")?),
        host: row.try_get::<Option<i64>, _>("host")?.map(HostId),
        service: row.try_get::<Option<i64>, _>("service")?.map(ServiceId),
        unit: row.try_get::<Option<i64>, _>("unit")?.map(UnitId),
    })
}

impl Record for Alert {
    const COLS: &'static str =
        "id, definition, cluster, host, service, unit, state, text, since, checked_at";

    fn from_row(row: &AnyRow) -> Result<Alert> {
        Ok(Alert {
            id: AlertId(row.try_get("id")?),
            definition: row.try_get("definition")?,
            subject: subject_cols(row)?,
            state: text_state(row, "state")?,
            text: row.try_get("text")?,
            since: row.try_get("since")?,
            checked_at: row.try_get("checked_at")?,
        })
    }
}

// Of `alert_changes c JOIN alerts a ON a.id = c.alert`.
impl Record for AlertChange {
    const COLS: &'static str = "c.id, c.alert, a.definition, a.cluster, a.host, a.service, \
                                a.unit, c.from_state, c.to_state, c.text, c.at";

    fn from_row(row: &AnyRow) -> Result<AlertChange> {
        Ok(AlertChange {
            id: AlertChangeId(row.try_get("id")?),
            alert: AlertId(row.try_get("alert")?),
            definition: row.try_get("definition")?,
            subject: subject_cols(row)?,
            from: text_state(row, "from_state")?,
            to: text_state(row, "to_state")?,
            text: row.try_get("text")?,
            at: row.try_get("at")?,
        })
    }
}

record!(AlertTarget from "id, cluster, name, kind, url, created_at"; |row|
    plain: name, url, created_at;
    ids: id AlertTargetId, cluster ClusterId;
    with: kind text_state;
);

record!(Maintenance from "id, cluster, host, service, until, reason, by_actor, created_at"; |row|
    plain: until, reason, created_at;
    ids: id MaintenanceId, cluster ClusterId;
    with: ;
    host: row.try_get::<Option<i64>, _>("host")?.map(HostId),
    service: row.try_get::<Option<i64>, _>("service")?.map(ServiceId),
    by: row.try_get("by_actor")?,
);

// Of `notifications n JOIN alert_targets t`.
impl Record for Notification {
    const COLS: &'static str = "n.id, n.target, t.kind, t.url, n.body, n.attempts, n.next_at, \
                                n.delivered_at";

    fn from_row(row: &AnyRow) -> Result<Notification> {
        Ok(Notification {
            id: NotificationId(row.try_get("id")?),
            target: AlertTargetId(row.try_get("target")?),
            kind: text_state(row, "kind")?,
            url: row.try_get("url")?,
            body: row.try_get("body")?,
            attempts: u32_col(row, "attempts")?,
            next_at: row.try_get("next_at")?,
            delivered_at: row.try_get("delivered_at")?,
        })
    }
}

record!(Pipeline from "id, cluster, name, author, created_at, definition, state, message, replicas"; |row|
    plain: name, author, created_at, definition, message;
    ids: id PipelineId, cluster ClusterId;
    with: state text_state;
    replicas: json_col(row, "replicas")?.unwrap_or_default(),
);

record!(PipelineBatch from "pipeline, node, batch, state, location, lease_holder, lease_until, attempts, \
                            updated_at"; |row|
    plain: node, batch, location, lease_holder, lease_until, updated_at;
    ids: pipeline PipelineId;
    with: state text_state, attempts u32_col;
);

// ---------------------------------------------------------------------------------------------
// The assistant.

record!(Provider from "name, base_url, model, is_default, CAST(CASE WHEN api_key IS NULL THEN 0 ELSE 1 END AS BIGINT) \
                       AS has_key, timeout_ms, updated_at"; |row|
    plain: name, base_url, model, updated_at;
    ids: ;
    with: ;
    default: flag_col(row, "is_default")?,
    has_key: flag_col(row, "has_key")?,
    timeout_ms: u64::try_from(row.try_get::<i64, _>("timeout_ms")?)
        .map_err(|e| corrupt("timeout_ms", e))?,
);

// Of `assistant_threads t JOIN users us JOIN clusters c`.
record!(Thread from "t.id, t.\"user\" AS user_id, us.name AS user_name, t.cluster, \
                     c.name AS cluster_name, t.title, t.created_at"; |row|
    plain: title, created_at;
    ids: id ThreadId, user_id UserId;
    with: ;
    user: row.try_get("user_name")?,
    cluster: row.try_get("cluster_name")?,
    cluster_id: ClusterId(row.try_get("cluster")?),
);

record!(ChatMessage from "id, role, content, tool_calls, tool_call_id, created_at"; |row|
    plain: content, tool_call_id, created_at;
    ids: id MessageId;
    with: role text_state;
    tool_calls: json_col(row, "tool_calls")?.unwrap_or_default(),
);

record!(Proposal from "id, thread, title, action, state, result, created_at, decided_at"; |row|
    plain: title, created_at, decided_at;
    ids: id ProposalId, thread ThreadId;
    with: state text_state;
    action: json_col(row, "action")?
        .ok_or_else(|| corrupt("action", "missing"))?,
    result: json_col(row, "result")?,
);
