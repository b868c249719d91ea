//! Per-service policies and their limits, one rule for every surface that sets them (REST's
//! `PUT …/healing`, a cluster spec's `[services.x.policy]`): self-healing's grace time and
//! restarts an hour.

use crate::duration::{format_duration, parse_duration};
use crate::model::HealingPolicy;
use crate::{Error, Result};
use std::time::Duration;

/// The shortest and longest grace time of self-healing.
pub const HEALING_GRACE: (Duration, Duration) =
    (Duration::from_secs(5), Duration::from_secs(24 * 3600));
/// The most restarts of one unit an hour a policy may allow.
pub const MAX_HEALS_PER_HOUR: u32 = 60;

/// `policy` with `restart` set and, where given, the grace time (`30s`) and the restarts an
/// hour; a value out of range is an error naming its field (`grace`, `max_per_hour`).
pub fn healing(
    mut policy: HealingPolicy,
    restart: bool,
    grace: Option<&str>,
    max_per_hour: Option<u32>,
) -> Result<HealingPolicy> {
    policy.restart = restart;
    if let Some(grace) = grace {
        let d = parse_duration(grace).map_err(|e| Error::invalid_field("grace", e))?;
        if d < HEALING_GRACE.0 || d > HEALING_GRACE.1 {
            return Err(Error::invalid_field(
                "grace",
                format!(
                    "the grace time is {} to {}",
                    format_duration(HEALING_GRACE.0),
                    format_duration(HEALING_GRACE.1)
                ),
            ));
        }
        policy.grace_ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    }
    if let Some(max) = max_per_hour {
        if !(1..=MAX_HEALS_PER_HOUR).contains(&max) {
            return Err(Error::invalid_field(
                "max_per_hour",
                format!("max_per_hour is 1 to {MAX_HEALS_PER_HOUR} (restarts of one unit an hour)"),
            ));
        }
        policy.max_per_hour = max;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healing_takes_what_is_given_and_refuses_what_is_out_of_range() {
        let p = healing(HealingPolicy::default(), true, Some("1m"), Some(5)).unwrap();
        assert_eq!((p.restart, p.grace_ms, p.max_per_hour), (true, 60_000, 5));
        let kept = healing(p, false, None, None).unwrap();
        assert_eq!(
            (kept.restart, kept.grace_ms, kept.max_per_hour),
            (false, 60_000, 5)
        );
        for (grace, max, field) in [
            (Some("1s"), None, "grace"),
            (Some("2d"), None, "grace"),
            (Some("soon"), None, "grace"),
            (None, Some(0), "max_per_hour"),
            (None, Some(61), "max_per_hour"),
        ] {
            let e = healing(HealingPolicy::default(), true, grace, max).unwrap_err();
            assert_eq!(e.field().as_deref(), Some(field), "{e}");
        }
    }
}
