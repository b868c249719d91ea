//! The one error type of bigmgr-core, with variants that tell the user what to fix.

use std::path::PathBuf;

/// Everything that can go wrong in bigmgr-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cluster spec does not parse or check: every problem, each with its line.
    #[error("the spec has {} problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Spec(Vec<crate::spec::Problem>),
    /// A pipeline definition does not parse or check: every problem, each with its line.
    #[error("the pipeline definition has {} problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Pipeline(Vec<crate::spec::Problem>),
    /// A stack manifest (or a file it names) is broken; `field` is the TOML path of the problem.
    #[error("invalid stack manifest {}: {field}: {message}", file.display())]
    Manifest {
        /// The manifest file.
        file: PathBuf,
        /// The field, as a dotted path (`component[1].cardinality`), or `-` for the whole file.
        field: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// A stack as a whole is inconsistent (an order rule names an unknown component, a cycle …).
    #[error("invalid stack {stack} {version}: {message}")]
    Stack {
        /// The stack name.
        stack: String,
        /// The stack version.
        version: String,
        /// What is wrong.
        message: String,
    },
    /// A named thing does not exist.
    #[error("{kind} '{name}' not found")]
    NotFound {
        /// What kind of thing (cluster, host, service …).
        kind: &'static str,
        /// The name or id that was asked for.
        name: String,
    },
    /// A thing with that name already exists.
    #[error("{kind} '{name}' already exists")]
    AlreadyExists {
        /// What kind of thing.
        kind: &'static str,
        /// The name that is taken.
        name: String,
    },
    /// A placement puts the wrong number of units of a component.
    #[error(
        "component {component} of service {service} needs {expected} unit(s), but the placement gives {got}"
    )]
    Cardinality {
        /// The service definition.
        service: String,
        /// The component.
        component: String,
        /// The cardinality the stack declares (`1`, `3`, `1+` …).
        expected: String,
        /// How many units the request places.
        got: usize,
    },
    /// Ordering rules form a cycle; the cycle is named in order.
    #[error("order rules form a cycle: {}; remove one of these rules", cycle.join(" -> "))]
    Cycle {
        /// The nodes of the cycle (`A-START`, `B-START`, `A-START`).
        cycle: Vec<String>,
    },
    /// The request is malformed or asks for something impossible.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// One value of the request is not valid: [`Error::Invalid`] that also names the value,
    /// as a dotted path into the request body, for a form to show the message on its field.
    #[error("invalid request: {message}")]
    InvalidField {
        /// The value: `name`, `address`, `configs.<type>.<property>` …
        field: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// The request conflicts with the current state (pause a finished job …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A template could not be parsed or rendered.
    #[error("template {name}: {message}")]
    Template {
        /// The template (config type or file) name.
        name: String,
        /// The renderer's message, naming the missing variable where there is one.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The store failed (database unreachable, migration failed …).
    #[error("store: {0}")]
    Store(String),
    /// An agent's join token or credential was not accepted, or the host it claims is taken.
    /// Retrying will not help: fix the token, the credential file or the host name.
    #[error("refused: {0}")]
    Refused(String),
    /// The caller presented no API token, an unknown one, or a wrong user name or password.
    /// Log in again or ask an admin for a token.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller is known but its role does not allow the action; the message names the
    /// user, its role, the action and the role needed.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A message could not reach an agent, or the engine is gone.
    #[error("transport: {0}")]
    Transport(String),
    /// A replica's engine wrote after losing its lease: the write was refused (nothing of it
    /// is stored) and the replica steps down.
    #[error("fenced: {0}")]
    Fenced(String),
    /// Not now: the thing asked is full or away for the moment (a pipeline's channel holds
    /// its limit, the host a pushed batch goes to is away). Retry later; nothing was written.
    #[error("busy: {0}")]
    Busy(String),
    /// The assistant's model provider failed: unreachable, refused the key, timed out, or
    /// answered something that is not an OpenAI-compatible chat completion. The advisor
    /// (no model) still works.
    #[error("model provider: {0}")]
    Provider(String),
}

/// The result type of bigmgr-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidField`].
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The value of the request this error is about, as a dotted path into the request body
    /// (`placement.<component>` for a cardinality), if it names one.
    pub fn field(&self) -> Option<String> {
        match self {
            Error::InvalidField { field, .. } => Some(field.clone()),
            Error::Cardinality { component, .. } => Some(format!("placement.{component}")),
            _ => None,
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: &'static str, name: impl std::fmt::Display) -> Self {
        Error::NotFound {
            kind,
            name: name.to_string(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // A fenced write, carried through a path that expects sqlx's error.
            sqlx::Error::Protocol(m) if m.starts_with("fenced: ") => {
                Error::Fenced(m["fenced: ".len()..].to_string())
            }
            e => Error::Store(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Store(format!("migration failed: {e}"))
    }
}
