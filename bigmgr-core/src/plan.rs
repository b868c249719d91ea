//! The planner: a job request becomes a stage DAG (petgraph) from the stack's ordering rules and
//! the command's phases, checked for cycles, in a topological order ready to persist.
//!
//! Phases: `deploy` is install → configure → start → check; every other command is one phase.
//! Every stage of a phase waits for every stage of the phase before. Within a phase, a rule
//! `"B-START": ["A-START"]` makes each START stage of component B wait for each START stage of
//! component A. Client components get no start, stop, restart or status. A command marked
//! `once` (the service check) runs on one unit of the service instance.

use crate::model::{
    Cluster, Host, HostId, JobOptions, NewJob, NewStage, NewTask, ServiceId, ServiceInstance,
    Target, Unit, UnitId,
};
use crate::stack::{OrderRule, RoleCommand, STANDARD_COMMANDS, ServiceDef};
use crate::{Error, Result};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// The phases of `deploy`.
pub const DEPLOY_PHASES: &[&str] = &["install", "configure", "start", "check"];

/// What the planner reads: one cluster's model and the definitions of its services.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// Its service instances, each with its definition.
    pub services: &'a [(ServiceInstance, Arc<ServiceDef>)],
    /// Its units.
    pub units: &'a [Unit],
    /// Its hosts.
    pub hosts: &'a [Host],
    /// The ordering rules of every stack its services come from.
    pub rules: &'a [OrderRule],
}

/// The commands a request may name: the standard ones plus `deploy`; custom ones are checked
/// against the components.
pub fn phases(command: &str) -> Vec<&str> {
    if command == "deploy" {
        DEPLOY_PHASES.to_vec()
    } else {
        vec![command]
    }
}

/// Checks job options: limits must be at least 1.
pub fn check_options(options: &JobOptions) -> Result<()> {
    if options.parallelism == Some(0) {
        return Err(Error::Invalid(
            "parallelism must be at least 1 (or left out for no limit)".into(),
        ));
    }
    if options.batch_size == Some(0) {
        return Err(Error::Invalid(
            "batch_size must be at least 1 (or left out for no batches)".into(),
        ));
    }
    Ok(())
}

/// Plans `command` on `target`: selects the units, builds the stage DAG, rejects cycles (naming
/// the cycle) and returns the job to persist, stages in topological order.
pub fn plan(
    input: &PlanInput<'_>,
    target: &Target,
    command: &str,
    options: &JobOptions,
) -> Result<NewJob> {
    check_options(options)?;
    if command.is_empty() {
        return Err(Error::Invalid(
            "the command is empty; name one such as start or deploy".into(),
        ));
    }
    let units = select_units(input, target)?;
    let host_names: HashMap<HostId, &str> = input
        .hosts
        .iter()
        .map(|h| (h.id, h.name.as_str()))
        .collect();
    let services: HashMap<ServiceId, &(ServiceInstance, Arc<ServiceDef>)> =
        input.services.iter().map(|s| (s.0.id, s)).collect();

    // Group the selected units by (service instance, component), keeping manifest order.
    let mut groups: BTreeMap<(ServiceId, usize), Vec<&Unit>> = BTreeMap::new();
    for u in &units {
        let (_, def) = services
            .get(&u.service)
            .ok_or_else(|| Error::not_found("service", u.service))?;
        let ci = def
            .components
            .iter()
            .position(|c| c.name == u.component)
            .ok_or_else(|| {
                Error::not_found(
                    "component",
                    format!("{} (in service {})", u.component, def.name),
                )
            })?;
        groups.entry((u.service, ci)).or_default().push(u);
    }

    let phases = phases(command);
    let known = phases.iter().all(|p| STANDARD_COMMANDS.contains(p))
        || groups
            .keys()
            .any(|(s, ci)| services[s].1.components[*ci].command(command).is_some());
    if !known {
        return Err(Error::Invalid(format!(
            "unknown command '{command}': use one of deploy, {} or a custom command the target's components declare",
            STANDARD_COMMANDS.join(", ")
        )));
    }

    struct Node {
        stage: NewStage,
        phase: usize,
        role: RoleCommand,
    }
    let mut nodes: Vec<Node> = Vec::new();
    for (pi, phase) in phases.iter().enumerate() {
        for ((sid, ci), us) in &groups {
            let (inst, def) = services[sid];
            let comp = &def.components[*ci];
            let Some(cmd) = comp.command(phase) else {
                continue;
            };
            let mut us: Vec<&&Unit> = us.iter().collect();
            us.sort_by_key(|u| (host_names.get(&u.host).copied().unwrap_or(""), u.id));
            if cmd.once {
                us.truncate(1);
            }
            nodes.push(Node {
                stage: NewStage {
                    name: format!("{} {}/{}", phase.to_uppercase(), inst.name, comp.name),
                    service: *sid,
                    component: comp.name.clone(),
                    command: (*phase).to_string(),
                    after: Vec::new(),
                    tasks: us
                        .iter()
                        .map(|u| NewTask {
                            unit: u.id,
                            host: u.host,
                        })
                        .collect(),
                },
                phase: pi,
                role: RoleCommand {
                    component: comp.name.to_lowercase(),
                    command: (*phase).to_string(),
                },
            });
        }
    }
    if nodes.is_empty() {
        return Err(Error::Invalid(format!(
            "nothing to do: no unit of the target supports '{command}' (client components have no start, stop, restart or status)"
        )));
    }

    // The DAG: phase barriers, then order rules within a phase.
    let mut g: DiGraph<usize, ()> = DiGraph::new();
    let idx: Vec<NodeIndex> = (0..nodes.len()).map(|i| g.add_node(i)).collect();
    let mut by_role: HashMap<(usize, &RoleCommand), Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        by_role.entry((n.phase, &n.role)).or_default().push(i);
    }
    let mut edges: HashSet<(usize, usize)> = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.phase > 0 {
            for (j, m) in nodes.iter().enumerate() {
                if m.phase + 1 == n.phase {
                    edges.insert((j, i));
                }
            }
        }
        for rule in input.rules.iter().filter(|r| r.blocked == n.role) {
            for after in &rule.after {
                for &j in by_role.get(&(n.phase, after)).into_iter().flatten() {
                    edges.insert((j, i));
                }
            }
        }
    }
    let mut edges: Vec<_> = edges.into_iter().collect();
    edges.sort_unstable();
    for &(a, b) in &edges {
        g.add_edge(idx[a], idx[b], ());
    }

    let order = match petgraph::algo::toposort(&g, None) {
        Ok(order) => order,
        Err(_) => {
            // Any node of a strongly connected component with more than one node (or a
            // self-loop) is on a cycle; take the first in index order, for a stable message.
            let start = petgraph::algo::tarjan_scc(&g)
                .into_iter()
                .filter(|c| c.len() > 1 || g.contains_edge(c[0], c[0]))
                .filter_map(|c| c.into_iter().min())
                .min()
                .unwrap_or(idx[0]);
            let names = find_cycle(&g, start)
                .into_iter()
                .map(|n| nodes[g[n]].role.to_string())
                .collect();
            return Err(Error::Cycle { cycle: names });
        }
    };
    let mut seq = vec![0usize; nodes.len()];
    for (k, n) in order.iter().enumerate() {
        seq[g[*n]] = k;
    }
    let mut stages: Vec<Option<NewStage>> = vec![None; nodes.len()];
    for (i, n) in nodes.into_iter().enumerate() {
        stages[seq[i]] = Some(n.stage);
    }
    let mut stages: Vec<NewStage> = stages.into_iter().flatten().collect();
    for &(a, b) in &edges {
        stages[seq[b]].after.push(seq[a]);
    }
    for s in &mut stages {
        s.after.sort_unstable();
    }
    Ok(NewJob {
        cluster: input.cluster.id,
        command: command.to_string(),
        target: target.clone(),
        options: options.clone(),
        stages,
    })
}

/// The units a target names; unknown names are NotFound errors.
fn select_units<'a>(input: &PlanInput<'a>, target: &Target) -> Result<Vec<&'a Unit>> {
    let live = |u: &&Unit| u.state != crate::model::UnitState::Removed;
    let service_id = |name: &str| {
        input
            .services
            .iter()
            .find(|(s, _)| s.name == name)
            .map(|(s, _)| s.id)
            .ok_or_else(|| {
                Error::not_found(
                    "service",
                    format!("{name} (in cluster {})", input.cluster.name),
                )
            })
    };
    let units: Vec<&Unit> = match target {
        Target::Cluster => input.units.iter().filter(live).collect(),
        Target::Service(name) => {
            let id = service_id(name)?;
            input
                .units
                .iter()
                .filter(live)
                .filter(|u| u.service == id)
                .collect()
        }
        Target::Component { service, component } => {
            let id = service_id(service)?;
            let (_, def) = input
                .services
                .iter()
                .find(|(s, _)| s.id == id)
                .expect("found above");
            def.component(component)?;
            input
                .units
                .iter()
                .filter(live)
                .filter(|u| u.service == id && &u.component == component)
                .collect()
        }
        Target::Hosts(names) => {
            let mut ids = HashSet::new();
            for n in names {
                let h = input.hosts.iter().find(|h| &h.name == n).ok_or_else(|| {
                    Error::not_found("host", format!("{n} (in cluster {})", input.cluster.name))
                })?;
                ids.insert(h.id);
            }
            input
                .units
                .iter()
                .filter(live)
                .filter(|u| ids.contains(&u.host))
                .collect()
        }
        Target::Units(ids) => {
            let wanted: HashSet<UnitId> = ids.iter().copied().collect();
            let found: Vec<&Unit> = input
                .units
                .iter()
                .filter(|u| wanted.contains(&u.id))
                .collect();
            if let Some(missing) = ids.iter().find(|id| !found.iter().any(|u| u.id == **id)) {
                return Err(Error::not_found(
                    "unit",
                    format!("{missing} (in cluster {})", input.cluster.name),
                ));
            }
            found
        }
    };
    if units.is_empty() {
        return Err(Error::Invalid(
            "nothing to do: the target has no units".into(),
        ));
    }
    Ok(units)
}

/// A cycle through `start`, as nodes with the first repeated at the end.
pub(crate) fn find_cycle<N, E>(g: &DiGraph<N, E>, start: NodeIndex) -> Vec<NodeIndex> {
    // Depth-first from `start` until an edge leads back to it; the stack is the cycle.
    // `start` is on a cycle (toposort said so), so some path returns to it.
    let mut stack = vec![(start, g.neighbors(start).collect::<Vec<_>>())];
    let mut seen = HashSet::from([start]);
    while let Some((_, next)) = stack.last_mut() {
        match next.pop() {
            Some(n) if n == start => {
                let mut cycle: Vec<NodeIndex> = stack.iter().map(|(n, _)| *n).collect();
                cycle.push(start);
                return cycle;
            }
            Some(n) if seen.insert(n) => {
                let nb = g.neighbors(n).collect();
                stack.push((n, nb));
            }
            Some(_) => {}
            None => {
                stack.pop();
            }
        }
    }
    vec![start, start]
}
