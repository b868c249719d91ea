//! Checks of a whole stack: order rules name known components and commands, and form no cycle.
//!
//! [`super::manifest::load_service`] checks each service on its own; [`validate_stack`] checks
//! what only the stack as a whole can tell: component names are unique across services, the
//! order rules (which may name other services' components) refer to components and commands
//! that exist, and together they form no cycle.

use super::manifest::MANIFEST_FILE;
use super::{RoleCommand, ServiceDef, Stack};
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Checks what spans the services of `stack`: unique component names, order rules that name
/// existing components and commands ([`Error::Stack`] naming the rule, the unknown name and
/// the manifest it is in), and no cycle among the rules ([`Error::Cycle`]).
pub fn validate_stack(stack: &Stack) -> Result<()> {
    let stack_err = |message: String| Error::Stack {
        stack: stack.name.clone(),
        version: stack.version.clone(),
        message,
    };

    // Component names are unique across the stack.
    let mut owners: HashMap<&str, &ServiceDef> = HashMap::new();
    for service in stack.services.values() {
        for c in &service.components {
            if let Some(other) = owners.insert(c.name.as_str(), service) {
                return Err(stack_err(format!(
                    "component '{}' is declared by both service '{}' ({}) and service '{}' \
                     ({}); component names must be unique in a stack",
                    c.name,
                    other.name,
                    other.dir.join(MANIFEST_FILE).display(),
                    service.name,
                    service.dir.join(MANIFEST_FILE).display()
                )));
            }
        }
    }

    // Every role command of every rule exists.
    for service in stack.services.values() {
        let file = service.dir.join(MANIFEST_FILE);
        for rule in &service.order {
            for rc in std::iter::once(&rule.blocked).chain(&rule.after) {
                let Some(owner) = owners.get(rc.component.as_str()) else {
                    let mut known: Vec<&str> = owners.keys().copied().collect();
                    known.sort_unstable();
                    return Err(stack_err(format!(
                        "order rule \"{}\" in {} names unknown component '{}' (in {rc}); \
                         the components of this stack are: {}",
                        rule.blocked,
                        file.display(),
                        rc.component,
                        known.join(", ")
                    )));
                };
                let component = owner.component(&rc.component)?;
                if component.command(&rc.command).is_none() {
                    return Err(stack_err(format!(
                        "order rule \"{}\" in {} names command '{}' of component '{}' (in \
                         {rc}), which it does not have; its commands are: {}",
                        rule.blocked,
                        file.display(),
                        rc.command,
                        rc.component,
                        component
                            .commands
                            .keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    }

    // The rules form no cycle.
    let mut edges: BTreeMap<&RoleCommand, BTreeSet<&RoleCommand>> = BTreeMap::new();
    for rule in stack.order_rules() {
        edges.entry(&rule.blocked).or_default().extend(&rule.after);
    }
    if let Some(cycle) = find_cycle(&edges) {
        return Err(Error::Cycle {
            cycle: cycle.iter().map(ToString::to_string).collect(),
        });
    }
    Ok(())
}

/// The first cycle of a directed graph (`node → the nodes it waits for`), found by a
/// depth-first search in key order, so the same graph always gives the same cycle. The cycle
/// starts and ends with the same node.
pub fn find_cycle<T: Ord + Clone>(edges: &BTreeMap<T, BTreeSet<T>>) -> Option<Vec<T>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        OnPath,
        Done,
    }
    let mut marks: BTreeMap<&T, Mark> = BTreeMap::new();
    let no_edges = BTreeSet::new();
    for root in edges.keys() {
        if marks.contains_key(root) {
            continue;
        }
        // An explicit stack of (node, its successors not yet visited), and the current path.
        let mut stack = vec![(root, edges.get(root).unwrap_or(&no_edges).iter())];
        marks.insert(root, Mark::OnPath);
        while let Some((node, next)) = stack.last_mut() {
            match next.next() {
                Some(succ) => match marks.get(succ) {
                    Some(Mark::OnPath) => {
                        let start = stack.iter().position(|(n, _)| *n == succ)?;
                        let mut cycle: Vec<T> =
                            stack[start..].iter().map(|(n, _)| (*n).clone()).collect();
                        cycle.push(succ.clone());
                        return Some(cycle);
                    }
                    Some(Mark::Done) => {}
                    None => {
                        marks.insert(succ, Mark::OnPath);
                        stack.push((succ, edges.get(succ).unwrap_or(&no_edges).iter()));
                    }
                },
                None => {
                    marks.insert(*node, Mark::Done);
                    stack.pop();
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(
        pairs: &[(&'static str, &[&'static str])],
    ) -> BTreeMap<&'static str, BTreeSet<&'static str>> {
        pairs
            .iter()
            .map(|(k, v)| (*k, v.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn no_cycle_in_a_dag() {
        let g = graph(&[("c", &["b", "a"]), ("b", &["a"]), ("d", &["c", "a"])]);
        assert_eq!(find_cycle(&g), None);
        assert_eq!(find_cycle(&graph(&[])), None);
    }

    #[test]
    fn two_node_cycle() {
        let g = graph(&[("a", &["b"]), ("b", &["a"])]);
        assert_eq!(find_cycle(&g), Some(vec!["a", "b", "a"]));
    }

    #[test]
    fn self_loop() {
        let g = graph(&[("a", &["a"])]);
        assert_eq!(find_cycle(&g), Some(vec!["a", "a"]));
    }

    #[test]
    fn cycle_behind_a_tail_names_only_the_cycle() {
        // a → b → c → d → b: the cycle is b, c, d, b, not the tail a.
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["d"]), ("d", &["b"])]);
        assert_eq!(find_cycle(&g), Some(vec!["b", "c", "d", "b"]));
    }

    #[test]
    fn deterministic_and_diamonds_are_fine() {
        // Diamond a → {b, c} → d is no cycle; e ↔ f is.
        let g = graph(&[
            ("a", &["b", "c"]),
            ("b", &["d"]),
            ("c", &["d"]),
            ("e", &["f"]),
            ("f", &["e"]),
        ]);
        for _ in 0..10 {
            assert_eq!(find_cycle(&g), Some(vec!["e", "f", "e"]));
        }
    }
}
