//! Where a component's units go: named hosts, or a count that core places ([`choose`]),
//! spreading units over hosts and preferring the least loaded by the CPU and memory averaged
//! over their recent heartbeats — never by one instantaneous sample. Used alike by cluster
//! specs and by adding a service through REST, the CLI and Python.

use crate::model::HostMetrics;
use crate::stack::Metric;
use serde::{Deserialize, Serialize};

/// How far back a host's heartbeat samples are averaged for placement (ms).
pub const LOAD_WINDOW_MS: i64 = 5 * 60 * 1000;

/// What one unit already on a host weighs against it, in load percent points (CPU plus
/// memory): a host with two more units than another is passed over unless it is 20 points
/// less loaded.
pub const UNIT_WEIGHT: f64 = 10.0;

/// The hosts of one component's units: named, or a count core places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Placement {
    /// These hosts.
    Hosts(Vec<String>),
    /// This many units, on hosts core chooses from all of the cluster's.
    Count(usize),
    /// This many units, on hosts core chooses among some.
    Rule(CountRule),
}

/// A count of units and which hosts may take them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CountRule {
    /// How many units.
    pub count: usize,
    /// Only these hosts (default: every host of the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub among: Option<Vec<String>>,
    /// Only hosts whose name matches this pattern, `*` matching any run of characters
    /// (`worker-*`).
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl Placement {
    /// How many units it asks for.
    pub fn count(&self) -> usize {
        match self {
            Placement::Hosts(h) => h.len(),
            Placement::Count(n) => *n,
            Placement::Rule(r) => r.count,
        }
    }

    /// The hosts it names, if it names them.
    pub fn hosts(&self) -> Option<&[String]> {
        match self {
            Placement::Hosts(h) => Some(h),
            _ => None,
        }
    }

    /// The count rule it is, if it is one.
    pub fn rule(&self) -> Option<CountRule> {
        match self {
            Placement::Hosts(_) => None,
            Placement::Count(n) => Some(CountRule {
                count: *n,
                among: None,
                pattern: None,
            }),
            Placement::Rule(r) => Some(r.clone()),
        }
    }
}

impl From<Vec<String>> for Placement {
    fn from(hosts: Vec<String>) -> Placement {
        Placement::Hosts(hosts)
    }
}

impl FromIterator<String> for Placement {
    fn from_iter<I: IntoIterator<Item = String>>(hosts: I) -> Placement {
        Placement::Hosts(hosts.into_iter().collect())
    }
}

/// A host that may take a unit, as placement sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Candidate {
    /// Its name.
    pub name: String,
    /// How many units (of any service) it has.
    pub units: usize,
    /// Its averaged load, if it has sent heartbeats in the window.
    pub load: Option<Load>,
    /// Whether it is lost (it is never chosen).
    pub lost: bool,
}

/// A host's CPU and memory use averaged over its recent heartbeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Average CPU use, percent.
    pub cpu_percent: f64,
    /// Average memory use, percent.
    pub memory_percent: f64,
    /// How many heartbeats were averaged.
    pub samples: usize,
}

impl Load {
    /// The average of `samples` (none: no load known).
    pub fn average<'a>(samples: impl IntoIterator<Item = &'a HostMetrics>) -> Option<Load> {
        let (mut cpu, mut memory, mut n) = (0.0, 0.0, 0usize);
        for m in samples {
            cpu += Metric::CpuPercent.of(m);
            memory += Metric::MemoryPercent.of(m);
            n += 1;
        }
        #[allow(clippy::cast_precision_loss)]
        (n > 0).then(|| Load {
            cpu_percent: cpu / n as f64,
            memory_percent: memory / n as f64,
            samples: n,
        })
    }

    /// CPU and memory use together, in percent points (0 to 200). A sum keeps a difference
    /// in one visible whatever the other is: hosts sharing a machine's memory still differ by
    /// their CPU.
    fn percent(&self) -> f64 {
        self.cpu_percent + self.memory_percent
    }
}

impl Candidate {
    /// Lower is better: the load (CPU plus memory percent, 0 if unknown) plus
    /// [`UNIT_WEIGHT`] per unit already there.
    #[allow(clippy::cast_precision_loss)]
    pub fn score(&self) -> f64 {
        self.load.map_or(0.0, |l| l.percent()) + UNIT_WEIGHT * self.units as f64
    }

    /// Why it ranks where it does, for a plan.
    pub fn describe(&self) -> String {
        let load = match &self.load {
            Some(l) => format!(
                "cpu {:.0}%, memory {:.0}% averaged over {} heartbeat(s)",
                l.cpu_percent, l.memory_percent, l.samples
            ),
            None => "no heartbeat yet".into(),
        };
        format!("{}: {} unit(s), {load}", self.name, self.units)
    }
}

/// Whether `name` matches `pattern`, `*` matching any run of characters.
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// One host chosen for a unit, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// The host.
    pub host: String,
    /// Why it was chosen (and which hosts were passed over).
    pub why: String,
}

/// The hosts for `rule`'s units of one component that has units on `existing` hosts now:
/// those kept (existing hosts the rule allows, at most `count`), then the best-scoring
/// eligible others ([`Candidate::score`]; ties by name) for the rest. Lost hosts and hosts
/// the rule excludes are never chosen. Returns every host of the placement, the kept ones
/// first; the chosen ones carry why. Err says what is missing.
pub fn choose(
    rule: &CountRule,
    existing: &[String],
    candidates: &[Candidate],
) -> Result<Vec<Chosen>, String> {
    let allowed = |c: &Candidate| {
        !c.lost
            && rule.among.as_ref().is_none_or(|a| a.contains(&c.name))
            && rule.pattern.as_deref().is_none_or(|p| matches(p, &c.name))
    };
    let mut kept: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| existing.contains(&c.name) && allowed(c))
        .collect();
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    kept.truncate(rule.count);
    let mut others: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !existing.contains(&c.name) && allowed(c))
        .collect();
    others.sort_by(|a, b| a.score().total_cmp(&b.score()).then(a.name.cmp(&b.name)));
    let need = rule.count - kept.len();
    if others.len() < need {
        let eligible: Vec<&str> = kept
            .iter()
            .chain(&others)
            .map(|c| c.name.as_str())
            .collect();
        return Err(format!(
            "{} unit(s) need {} host(s), but only {} may take one{}{}",
            rule.count,
            rule.count,
            eligible.len(),
            if eligible.is_empty() { "" } else { ": " },
            eligible.join(", ")
        ));
    }
    let passed: Vec<String> = others[need..]
        .iter()
        .map(|c| format!("{} (score {:.0})", c.describe(), c.score()))
        .collect();
    let mut out: Vec<Chosen> = kept
        .iter()
        .map(|c| Chosen {
            host: c.name.clone(),
            why: String::new(),
        })
        .collect();
    for c in &others[..need] {
        let mut why = format!(
            "chosen by load: {} (score {:.0}, lower is better)",
            c.describe(),
            c.score()
        );
        if !passed.is_empty() {
            why.push_str(&format!("; passed over {}", passed.join("; ")));
        }
        out.push(Chosen {
            host: c.name.clone(),
            why,
        });
    }
    Ok(out)
}

/// The hosts of one component's placement `p`, given the hosts that have its units now
/// (`existing`): named hosts as they are, a count chosen by [`choose`]. Each comes with why
/// core chose it (`None` where it was named or kept). `candidates` count each new unit placed,
/// so the next placement spreads.
pub fn place(
    p: &Placement,
    existing: &[String],
    candidates: &mut [Candidate],
) -> Result<Vec<(String, Option<String>)>, String> {
    let hosts: Vec<(String, Option<String>)> = match p.rule() {
        None => p
            .hosts()
            .unwrap_or_default()
            .iter()
            .map(|h| (h.clone(), None))
            .collect(),
        Some(rule) => choose(&rule, existing, candidates)?
            .into_iter()
            .map(|c| (c.host, (!c.why.is_empty()).then_some(c.why)))
            .collect(),
    };
    for (h, _) in &hosts {
        if !existing.contains(h)
            && let Some(c) = candidates.iter_mut().find(|c| &c.name == h)
        {
            c.units += 1;
        }
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, units: usize, cpu: Option<f64>) -> Candidate {
        Candidate {
            name: name.into(),
            units,
            load: cpu.map(|cpu| Load {
                cpu_percent: cpu,
                memory_percent: 20.0,
                samples: 12,
            }),
            lost: false,
        }
    }

    fn hosts(c: &[Chosen]) -> Vec<&str> {
        c.iter().map(|c| c.host.as_str()).collect()
    }

    #[test]
    fn the_least_loaded_hosts_are_chosen_and_busy_ones_passed_over() {
        let cands = [
            host("h1", 0, Some(95.0)),
            host("h2", 0, Some(3.0)),
            host("h3", 0, Some(99.0)),
            host("h4", 0, Some(5.0)),
        ];
        let rule = CountRule {
            count: 2,
            among: None,
            pattern: None,
        };
        let chosen = choose(&rule, &[], &cands).unwrap();
        assert_eq!(hosts(&chosen), ["h2", "h4"]);
        assert!(chosen[0].why.contains("cpu 3%"), "{}", chosen[0].why);
        assert!(
            chosen[0].why.contains("passed over h1"),
            "{}",
            chosen[0].why
        );
    }

    #[test]
    fn units_spread_and_existing_ones_stay_whatever_the_load() {
        let cands = [
            host("h1", 2, Some(1.0)),
            host("h2", 0, Some(15.0)),
            host("h3", 0, Some(90.0)),
        ];
        let rule = CountRule {
            count: 2,
            among: None,
            pattern: None,
        };
        // Two units on h1 weigh 20 points: h2 (15) goes first, then h1 (21).
        assert_eq!(hosts(&choose(&rule, &[], &cands).unwrap()), ["h2", "h1"]);
        // A unit already on busy h3 stays: applying again moves nothing.
        let again = choose(&rule, &["h3".to_string()], &cands).unwrap();
        assert_eq!(hosts(&again), ["h3", "h2"]);
        assert!(again[0].why.is_empty(), "kept, not chosen");
    }

    #[test]
    fn filters_lost_hosts_and_shortfalls() {
        let mut cands = vec![
            host("worker-1", 0, None),
            host("worker-2", 0, Some(50.0)),
            host("master", 0, Some(0.0)),
        ];
        cands[0].lost = true;
        let rule = CountRule {
            count: 1,
            among: None,
            pattern: Some("worker-*".into()),
        };
        assert_eq!(hosts(&choose(&rule, &[], &cands).unwrap()), ["worker-2"]);
        let two = CountRule { count: 2, ..rule };
        let e = choose(&two, &[], &cands).unwrap_err();
        assert!(e.contains("only 1 may take one: worker-2"), "{e}");
        let among = CountRule {
            count: 1,
            among: Some(vec!["master".into(), "worker-2".into()]),
            pattern: None,
        };
        assert_eq!(hosts(&choose(&among, &[], &cands).unwrap()), ["master"]);
    }

    #[test]
    fn patterns_match_like_globs() {
        for (p, n, want) in [
            ("worker-*", "worker-1", true),
            ("worker-*", "master", false),
            ("*", "anything", true),
            ("h*-b", "h1-b", true),
            ("h*-b", "h1-c", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(matches(p, n), want, "{p} {n}");
        }
    }

    #[test]
    fn placements_read_as_hosts_counts_or_rules() {
        let p: std::collections::BTreeMap<String, Placement> = toml::from_str(
            "a = [\"h1\"]\nb = 3\nc = { count = 2, among = [\"h1\", \"h2\"] }\nd = { count = 1, match = \"w*\" }\n",
        )
        .unwrap();
        assert_eq!(p["a"], Placement::Hosts(vec!["h1".into()]));
        assert_eq!(p["b"], Placement::Count(3));
        assert_eq!(p["c"].count(), 2);
        assert_eq!(p["d"].rule().unwrap().pattern.as_deref(), Some("w*"));
        assert!(
            toml::from_str::<std::collections::BTreeMap<String, Placement>>("x = { cnt = 2 }")
                .is_err()
        );
        let json: Placement = serde_json::from_str("[\"h1\", \"h2\"]").unwrap();
        assert_eq!(json.count(), 2);
    }
}
