//! Pipelines (docs/pipelines.md) through the Manager: a definition is parsed and checked
//! whole — against the cluster's hosts and, for programs a stack ships, against the stack —
//! before anything is stored; every problem is listed with its line.

use super::Manager;
use crate::model::{NewPipeline, Pipeline};
use crate::pipeline::{Parsed, Program};
use crate::spec::Problem;
use crate::{Error, Result};
use std::collections::BTreeSet;

/// The longest definition taken, in bytes.
pub const MAX_DEFINITION: usize = 256 * 1024;

impl Manager {
    /// Creates a pipeline from its definition (TOML), CREATED; [`Error::Pipeline`] with every
    /// problem of a definition that does not check, and nothing stored.
    pub async fn create_pipeline(
        &self,
        cluster: &str,
        definition: &str,
        author: &str,
    ) -> Result<Pipeline> {
        if definition.len() > MAX_DEFINITION {
            return Err(Error::invalid_field(
                "definition",
                format!("a definition is at most {MAX_DEFINITION} bytes"),
            ));
        }
        let c = self.cluster(cluster).await?;
        let parsed = crate::pipeline::parse(definition).map_err(Error::Pipeline)?;
        let hosts: BTreeSet<String> = self
            .inner
            .store
            .list_hosts(c.id)
            .await?
            .into_iter()
            .map(|h| h.name)
            .collect();
        let mut problems = match parsed.check(&hosts) {
            Ok(_) => Vec::new(),
            Err(p) => p,
        };
        problems.extend(self.program_problems(&parsed).await);
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(Error::Pipeline(problems));
        }
        self.inner
            .store
            .add_pipeline(&NewPipeline {
                cluster: c.id,
                name: parsed.def.name.clone(),
                author: author.into(),
                definition: definition.into(),
            })
            .await
    }

    /// The problems of the programs units take from stacks: the stack, its service and the
    /// file under the service's `scripts/` must exist. (Programs by path are on the hosts,
    /// which check them before a run starts.)
    async fn program_problems(&self, parsed: &Parsed) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (name, u) in &parsed.def.units {
            let Program::Stack {
                stack,
                service,
                program,
            } = &u.program
            else {
                continue;
            };
            let found = match self.inner.stacks.stack(stack, None).await {
                Err(e) => Err(e.to_string()),
                Ok(s) => match s.service(service) {
                    Err(e) => Err(e.to_string()),
                    Ok(def) => {
                        let path = def.dir.join("scripts").join(program);
                        if path.is_file() {
                            Ok(())
                        } else {
                            Err(format!(
                                "service {service} of stack {stack} has no program '{program}' \
                                 (no file scripts/{program})"
                            ))
                        }
                    }
                },
            };
            if let Err(why) = found {
                problems.push(parsed.problem(&["units", name, "program"], why));
            }
        }
        problems
    }

    /// A cluster's pipelines.
    pub async fn pipelines(&self, cluster: &str) -> Result<Vec<Pipeline>> {
        let c = self.cluster(cluster).await?;
        self.inner.store.list_pipelines(c.id).await
    }

    /// One pipeline of a cluster, or not found.
    pub async fn pipeline(&self, cluster: &str, name: &str) -> Result<Pipeline> {
        let c = self.cluster(cluster).await?;
        self.inner
            .store
            .pipeline(c.id, name)
            .await?
            .ok_or_else(|| Error::not_found("pipeline", format!("{name} (in cluster {cluster})")))
    }

    /// Removes a pipeline that is not running.
    pub async fn remove_pipeline(&self, cluster: &str, name: &str) -> Result<()> {
        let p = self.pipeline(cluster, name).await?;
        self.inner.store.remove_pipeline(p.id).await?;
        self.forget_run(p.id);
        Ok(())
    }
}
