//! The built-in stack `bigmgr`: one service, `bigmgr_agent`, whose component `bigmgr_agent`
//! has one command, `bootstrap`, that the server runs itself over SSH
//! ([`super::runner`]) instead of sending it to an agent. A cluster gets an instance of it
//! (named [`INSTANCE`]) with a unit on each host added over SSH, so that a bootstrap is an
//! ordinary job: one task per host, live logs, per-host failures, the job list and page.
//!
//! Operators never add it: [`BuiltinStacks`] serves it beside the stacks of the provider it
//! wraps without listing it, and adding a service of it is refused; exports and prunes leave
//! it out. Its component has no lifecycle commands, so cluster-wide jobs pass it by.

use crate::stack::{
    Cardinality, Category, CommandDef, ComponentDef, ServiceDef, Stack, StackProvider, StackRef,
};
use crate::{Error, Result};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// The built-in stack's name.
pub const STACK: &str = "bigmgr";
/// Its one version.
pub const VERSION: &str = "1";
/// Its service (and component) definition.
pub const SERVICE: &str = "bigmgr_agent";
/// The name of its instance in a cluster.
pub const INSTANCE: &str = "bigmgr-agent";
/// The command that installs and starts an agent over SSH.
pub const COMMAND: &str = "bootstrap";
/// How long one host's bootstrap may take: logging in, copying the agent, and waiting for it
/// to join.
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// The "path" of the bootstrap command's script: nothing on disk has it.
const SCRIPT_PATH: &str = "builtin:bigmgr-agent-bootstrap.sh";

/// What an agent would run, were the command ever sent to one: it fails, saying why.
pub const SCRIPT: &[u8] = b"#!/bin/sh\n\
echo 'bootstrap is run by the bigmgr server over SSH, never by an agent' >&2\nexit 1\n";

/// The content of a built-in script path, for the engine, which reads scripts from disk;
/// `None` for any other path.
pub fn script(path: &Path) -> Option<Arc<[u8]>> {
    (path == Path::new(SCRIPT_PATH)).then(|| Arc::from(SCRIPT))
}

/// True for an instance of the built-in stack (left out of exports and prunes).
pub fn is_builtin(stack: &str) -> bool {
    stack == STACK
}

static BUILTIN: LazyLock<Arc<Stack>> = LazyLock::new(|| {
    let bootstrap = CommandDef {
        name: COMMAND.into(),
        script: PathBuf::from(SCRIPT_PATH),
        timeout: TIMEOUT,
        retries: 0,
        once: false,
        rerun_if_lost: false,
    };
    let def = ServiceDef {
        name: SERVICE.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: "The bigmgr agent, installed and started over SSH by the server (host \
                      bootstrap); built in."
            .into(),
        dir: PathBuf::new(),
        components: vec![ComponentDef {
            name: SERVICE.into(),
            category: Category::Client,
            cardinality: Cardinality::AtLeast(0),
            commands: BTreeMap::from([(COMMAND.to_string(), bootstrap)]),
        }],
        configs: Vec::new(),
        order: Vec::new(),
        provides: Vec::new(),
        requires: Vec::new(),
        peers: Vec::new(),
        ports: Vec::new(),
        alerts: Vec::new(),
        advice: Vec::new(),
        software: Vec::new(),
    };
    Arc::new(Stack {
        name: STACK.into(),
        version: VERSION.into(),
        services: BTreeMap::from([(SERVICE.to_string(), Arc::new(def))]),
    })
});

/// The built-in stack.
pub fn stack() -> Arc<Stack> {
    BUILTIN.clone()
}

/// A provider serving the built-in stack beside (and over) the stacks of the one it wraps,
/// without listing it.
pub struct BuiltinStacks {
    inner: Arc<dyn StackProvider>,
}

impl BuiltinStacks {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn StackProvider>) -> Self {
        BuiltinStacks { inner }
    }
}

#[async_trait]
impl StackProvider for BuiltinStacks {
    async fn list(&self) -> Result<Vec<StackRef>> {
        let mut all = self.inner.list().await?;
        all.retain(|s| s.name != STACK);
        Ok(all)
    }

    async fn stack(&self, name: &str, version: Option<&str>) -> Result<Arc<Stack>> {
        if name != STACK {
            return self.inner.stack(name, version).await;
        }
        match version {
            None | Some(VERSION) => Ok(stack()),
            Some(v) => Err(Error::not_found("stack", format!("{STACK} {v}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_builtin_path_has_a_builtin_script() {
        let def = stack();
        let cmd = def.services[SERVICE].components[0]
            .command(COMMAND)
            .unwrap();
        assert_eq!(script(&cmd.script).as_deref(), Some(SCRIPT));
        assert_eq!(script(Path::new("/etc/passwd")), None);
        assert!(
            def.services[SERVICE].components[0]
                .command("start")
                .is_none()
        );
    }
}
