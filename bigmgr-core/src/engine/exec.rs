//! What a stage runs: its command's script, timeout and retries, resolved from the stack when a
//! job is loaded (scripts are read once per job, not per task).

use crate::model::{ServiceConfigs, ServiceInstance, Stage};
use crate::stack::{ServiceDef, Stack, StackProvider};
use crate::transport::{FileSpec, Script};
use handlebars::Handlebars;
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
    /// For `configure`: the service's config templates, rendered per task into files.
    pub configs: Option<Arc<Configs>>,
    /// The component defines a `status` command (the agent runs it for the unit's health).
    pub status: bool,
}

/// A service's config templates, compiled once per job, and their values.
#[derive(Debug)]
pub struct Configs {
    registry: Handlebars<'static>,
    /// (template name, path under the unit dir).
    files: Vec<(String, String)>,
    /// Property values: the service instance's, else the stack defaults (host layers come with
    /// versioned configs).
    values: serde_json::Map<String, serde_json::Value>,
}

impl Configs {
    /// Compiles a service's config types: strict (a missing variable is an error naming it),
    /// no HTML escaping.
    pub fn compile(def: &ServiceDef, overrides: &ServiceConfigs) -> Result<Configs, String> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        let mut files = Vec::new();
        let mut values = serde_json::Map::new();
        for ct in &def.configs {
            registry
                .register_template_string(&ct.name, &ct.template)
                .map_err(|e| format!("template {} of service {}: {e}", ct.name, def.name))?;
            files.push((ct.name.clone(), ct.path.clone()));
            for p in &ct.properties {
                let set = overrides.get(&ct.name).and_then(|o| o.get(&p.name));
                if let Some(v) = set.or(p.default.as_ref()) {
                    values.insert(p.name.clone(), v.clone());
                }
            }
        }
        Ok(Configs {
            registry,
            files,
            values,
        })
    }

    /// Renders every config file for one task; `extra` (host, address …) joins the values.
    pub fn render(&self, extra: &[(&str, &str)]) -> Result<Vec<FileSpec>, String> {
        let mut ctx = self.values.clone();
        for (k, v) in extra {
            ctx.insert(
                (*k).to_string(),
                serde_json::Value::String((*v).to_string()),
            );
        }
        let ctx = serde_json::Value::Object(ctx);
        self.files
            .iter()
            .map(|(name, path)| {
                self.registry
                    .render(name, &ctx)
                    .map(|content| FileSpec {
                        path: path.clone(),
                        content,
                    })
                    .map_err(|e| format!("rendering config {name}: {e}"))
            })
            .collect()
    }
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
                    .or_insert_with(|| {
                        std::fs::read(&cmd.script).map(Arc::from).map_err(|e| {
                            format!("cannot read script {}: {e}", cmd.script.display())
                        })
                    })
                    .clone()?;
                let name = cmd
                    .script
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("{}.sh", comp.name));
                let configs = if st.command == "configure" && !def.configs.is_empty() {
                    Some(Arc::new(Configs::compile(def, &inst.configs)?))
                } else {
                    None
                };
                Ok(Arc::new(StageExec {
                    service: inst.name.clone(),
                    service_def: def.name.clone(),
                    component: comp.name.clone(),
                    command: st.command.clone(),
                    script: Script { name, content },
                    timeout: cmd.timeout,
                    retries: cmd.retries,
                    configs,
                    status: comp.command("status").is_some(),
                }))
            })(),
        };
        out.push(resolved);
    }
    out
}
