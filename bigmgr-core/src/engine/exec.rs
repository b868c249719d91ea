//! What a stage runs: its command's script, timeout and retries, resolved from the stack when a
//! job is loaded (scripts are read once per job, not per task).

use crate::model::{ServiceInstance, Stage};
use crate::stack::{Stack, StackProvider};
use crate::transport::Script;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A stage's command, resolved.
#[derive(Debug, Clone)]
pub struct StageExec {
    /// The service instance name.
    pub service: String,
    /// The service definition name.
    pub service_def: String,
    /// The component.
    pub component: String,
    /// The command.
    pub command: String,
    /// The script and its content.
    pub script: Script,
    /// The command's timeout.
    pub timeout: Duration,
    /// How often a failed script is run again.
    pub retries: u32,
    /// A run lost with its host is run again (see `CommandDef::rerun_if_lost`).
    pub rerun_if_lost: bool,
    /// `configure` of a service with config files: each task renders them (from the job's
    /// topology) and sends them along.
    pub renders: bool,
    /// The service has config types or relation endpoints: each task gets the template
    /// context as its script context.
    pub contextual: bool,
    /// The component defines a `status` command (the agent runs it for the unit's health).
    pub status: bool,
    /// The server runs it itself (the built-in `bootstrap`): the host's agent coming and
    /// going says nothing about it.
    pub server_side: bool,
}

/// Resolves every stage; a stage that can't be resolved carries the reason, which fails its
/// tasks when they are dispatched.
pub(super) async fn resolve(
    stacks: &dyn StackProvider,
    services: &[ServiceInstance],
    stages: &[Stage],
) -> Vec<Result<Arc<StageExec>, String>> {
    let mut loaded: HashMap<(String, String), Result<Arc<Stack>, String>> = HashMap::new();
    let mut scripts: HashMap<PathBuf, Result<Arc<[u8]>, String>> = HashMap::new();
    let mut out = Vec::with_capacity(stages.len());
    for st in stages {
        let Some(inst) = services.iter().find(|s| s.id == st.service) else {
            out.push(Err(format!(
                "service instance {} no longer exists",
                st.service
            )));
            continue;
        };
        let key = (inst.stack.clone(), inst.stack_version.clone());
        if !loaded.contains_key(&key) {
            let r = stacks
                .stack(&key.0, Some(&key.1))
                .await
                .map_err(|e| e.to_string());
            loaded.insert(key.clone(), r);
        }
        let resolved = match &loaded[&key] {
            Err(e) => Err(e.clone()),
            Ok(stack) => (|| {
                let def = stack.service(&inst.service).map_err(|e| e.to_string())?;
                let comp = def.component(&st.component).map_err(|e| e.to_string())?;
                let cmd = comp.command(&st.command).ok_or_else(|| {
                    format!("component {} has no command '{}'", comp.name, st.command)
                })?;
                let content = scripts
                    .entry(cmd.script.clone())
                    .or_insert_with(|| match crate::bootstrap::builtin::script(&cmd.script) {
                        Some(content) => Ok(content),
                        None => std::fs::read(&cmd.script).map(Arc::from).map_err(|e| {
                            format!("cannot read script {}: {e}", cmd.script.display())
                        }),
                    })
                    .clone()?;
                let name = cmd
                    .script
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("{}.sh", comp.name));
                let contextual = !def.configs.is_empty()
                    || !def.peers.is_empty()
                    || !def.requires.is_empty()
                    || !def.provides.is_empty();
                Ok(Arc::new(StageExec {
                    service: inst.name.clone(),
                    service_def: def.name.clone(),
                    component: comp.name.clone(),
                    command: st.command.clone(),
                    script: Script { name, content },
                    timeout: cmd.timeout,
                    retries: cmd.retries,
                    rerun_if_lost: cmd.rerun_if_lost,
                    renders: st.command == "configure" && !def.configs.is_empty(),
                    contextual,
                    status: comp.command("status").is_some(),
                    server_side: crate::bootstrap::builtin::script(&cmd.script).is_some(),
                }))
            })(),
        };
        out.push(resolved);
    }
    out
}
