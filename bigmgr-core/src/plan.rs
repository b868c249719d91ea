//! The planner: a job request becomes a stage DAG (petgraph) from the stack's ordering rules and
//! the command's phases, checked for cycles, in a topological order ready to persist.
//!
//! Phases: `deploy` is install → configure → start → check, `reconfigure` is configure →
//! restart; every other command is one phase.
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

/// What `reconfigure` runs: render and apply the configs, then restart (servers only) — how
/// stale units take a config change.
pub const RECONFIGURE_PHASES: &[&str] = &["configure", "restart"];

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
    } else if command == "reconfigure" {
        RECONFIGURE_PHASES.to_vec()
    } else {
        vec![command]
    }
}

/// The largest parallelism, batch size and failure tolerance a job may ask for.
pub const MAX_JOB_LIMIT: u32 = 1_000_000;

/// The longest reason a job may give.
pub const MAX_REASON_CHARS: usize = 500;

/// Checks job options: limits must be at least 1, and none above [`MAX_JOB_LIMIT`]; a reason
/// is one line of at most [`MAX_REASON_CHARS`] characters.
pub fn check_options(options: &JobOptions) -> Result<()> {
    if let Some(reason) = &options.reason {
        crate::name::check_note("options.reason", "a job's reason", reason, MAX_REASON_CHARS)?;
    }
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
    for (name, v) in [
        ("parallelism", options.parallelism),
        ("batch_size", options.batch_size),
        ("failure_tolerance", Some(options.failure_tolerance)),
    ] {
        if let Some(v) = v.filter(|v| *v > MAX_JOB_LIMIT) {
            return Err(Error::Invalid(format!(
                "{name} {v} is above the largest allowed, {MAX_JOB_LIMIT}"
            )));
        }
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
            "unknown command '{command}': use one of deploy, reconfigure, {} or a custom command the target's components declare",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterId, HostState, ServiceId, UnitState};
    use crate::stack::{Cardinality, Category, CommandDef, ComponentDef, SERVER_ONLY_COMMANDS};
    use std::time::Duration;

    fn component(name: &str, category: Category) -> ComponentDef {
        let commands = STANDARD_COMMANDS
            .iter()
            .filter(|c| category == Category::Server || !SERVER_ONLY_COMMANDS.contains(c))
            .map(|c| {
                let def = CommandDef {
                    name: c.to_string(),
                    script: "/bin/true".into(),
                    timeout: Duration::from_secs(60),
                    retries: 0,
                    once: *c == "check",
                    rerun_if_lost: true,
                };
                (c.to_string(), def)
            })
            .collect();
        ComponentDef {
            name: name.into(),
            category,
            cardinality: Cardinality::AtLeast(0),
            commands,
        }
    }

    fn service(name: &str, components: Vec<ComponentDef>) -> Arc<ServiceDef> {
        crate::testing::service_def(name, components, vec![])
    }

    struct World {
        cluster: Cluster,
        services: Vec<(ServiceInstance, Arc<ServiceDef>)>,
        units: Vec<Unit>,
        hosts: Vec<Host>,
    }

    /// Service `zk` (server + client) and `kafka` (broker), each on hosts h1–h3.
    fn world() -> World {
        let cluster = Cluster {
            id: ClusterId(1),
            name: "c".into(),
            created_at: 0,
        };
        let hosts: Vec<Host> = (1..=3)
            .map(|i| Host {
                id: HostId(i),
                cluster: cluster.id,
                name: format!("h{i}"),
                address: format!("127.0.0.{}", i + 1),
                reported_address: None,
                state: HostState::Online,
                last_heartbeat: None,
                facts: None,
                metrics: None,
            })
            .collect();
        let inst = |id, name: &str| ServiceInstance {
            id: ServiceId(id),
            cluster: cluster.id,
            name: name.into(),
            stack: "s".into(),
            stack_version: "1".into(),
            service: name.into(),
            created_at: 0,
            configs: Default::default(),
            host_overrides: Default::default(),
            config_version: 1,
        };
        let services = vec![
            (
                inst(1, "zk"),
                service(
                    "zk",
                    vec![
                        component("zk_server", Category::Server),
                        component("zk_client", Category::Client),
                    ],
                ),
            ),
            (
                inst(2, "kafka"),
                service("kafka", vec![component("kafka_broker", Category::Server)]),
            ),
        ];
        let mut units = Vec::new();
        for (s, comp) in [(1, "zk_server"), (1, "zk_client"), (2, "kafka_broker")] {
            for h in &hosts {
                units.push(Unit {
                    id: UnitId(units.len() as i64 + 1),
                    service: ServiceId(s),
                    component: comp.into(),
                    host: h.id,
                    state: UnitState::New,
                    health: None,
                    applied_version: None,
                    applied_hash: None,
                });
            }
        }
        World {
            cluster,
            services,
            units,
            hosts,
        }
    }

    fn rule(blocked: &str, after: &[&str]) -> OrderRule {
        OrderRule {
            blocked: blocked.parse().expect("rule"),
            after: after.iter().map(|a| a.parse().expect("rule")).collect(),
        }
    }

    fn run(w: &World, rules: &[OrderRule], target: Target, command: &str) -> Result<NewJob> {
        let input = PlanInput {
            cluster: &w.cluster,
            services: &w.services,
            units: &w.units,
            hosts: &w.hosts,
            rules,
        };
        plan(&input, &target, command, &JobOptions::default())
    }

    #[test]
    fn deploy_runs_its_phases_in_order_and_checks_once() {
        let w = world();
        let rules = [rule("KAFKA_BROKER-START", &["ZK_SERVER-START"])];
        let job = run(&w, &rules, Target::Cluster, "deploy").expect("plan");
        let names: Vec<&str> = job.stages.iter().map(|s| s.name.as_str()).collect();
        let pos = |n: &str| {
            names
                .iter()
                .position(|x| *x == n)
                .unwrap_or_else(|| panic!("{n} missing from {names:?}"))
        };
        // Every install before every configure before every start before every check.
        for (early, late) in [
            ("INSTALL zk/zk_client", "CONFIGURE zk/zk_server"),
            ("CONFIGURE kafka/kafka_broker", "START zk/zk_server"),
            ("START kafka/kafka_broker", "CHECK zk/zk_server"),
        ] {
            assert!(pos(early) < pos(late), "{early} after {late}: {names:?}");
        }
        // The order rule holds within the start phase, as an edge.
        let zk = pos("START zk/zk_server");
        let kafka = &job.stages[pos("START kafka/kafka_broker")];
        assert!(kafka.after.contains(&zk), "{:?}", kafka.after);
        // Clients are never started; checks run on one unit.
        assert!(!names.contains(&"START zk/zk_client"), "{names:?}");
        assert_eq!(job.stages[pos("CHECK zk/zk_server")].tasks.len(), 1);
        assert_eq!(job.stages[pos("INSTALL zk/zk_server")].tasks.len(), 3);
        // Dependencies always point backwards (a topological order).
        for (i, s) in job.stages.iter().enumerate() {
            assert!(
                s.after.iter().all(|a| *a < i),
                "stage {i} depends forward: {:?}",
                s.after
            );
        }
    }

    #[test]
    fn a_start_on_clients_only_has_nothing_to_do() {
        let w = world();
        let target = Target::Component {
            service: "zk".into(),
            component: "zk_client".into(),
        };
        match run(&w, &[], target, "start") {
            Err(Error::Invalid(m)) => assert!(m.contains("nothing to do"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_cycle_is_named_node_by_node() {
        let w = world();
        let rules = [
            rule("KAFKA_BROKER-STOP", &["ZK_SERVER-STOP"]),
            rule("ZK_SERVER-STOP", &["KAFKA_BROKER-STOP"]),
        ];
        match run(&w, &rules, Target::Cluster, "stop") {
            Err(Error::Cycle { cycle }) => {
                assert_eq!(cycle.len(), 3, "{cycle:?}");
                assert_eq!(cycle[0], cycle[2]);
                assert!(
                    cycle.contains(&"ZK_SERVER-STOP".to_string())
                        && cycle.contains(&"KAFKA_BROKER-STOP".to_string())
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn targets_select_units_and_unknown_names_are_not_found() {
        let w = world();
        let job = run(&w, &[], Target::Hosts(vec!["h2".into()]), "stop").expect("plan");
        assert!(
            job.stages
                .iter()
                .all(|s| s.tasks.len() == 1 && s.tasks[0].host == HostId(2))
        );
        assert_eq!(
            job.stages.len(),
            2,
            "zk_server and kafka_broker stop; the client has no stop"
        );
        let job = run(
            &w,
            &[],
            Target::Units(vec![UnitId(1), UnitId(2)]),
            "restart",
        )
        .expect("plan");
        assert_eq!(job.stages[0].tasks.len(), 2);
        assert!(matches!(
            run(&w, &[], Target::Service("nope".into()), "start"),
            Err(Error::NotFound {
                kind: "service",
                ..
            })
        ));
        assert!(matches!(
            run(&w, &[], Target::Units(vec![UnitId(99)]), "start"),
            Err(Error::NotFound { kind: "unit", .. })
        ));
        assert!(matches!(
            run(&w, &[], Target::Cluster, "dance"),
            Err(Error::Invalid(_))
        ));
    }
}
