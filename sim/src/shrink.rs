//! Shrinking: a failing schedule is reduced, one simplification at a time, while it still
//! breaks the same invariant; what is left is the smallest world that shows the bug.

use crate::runner::{run, RunOptions};
use crate::schedule::Schedule;

/// The invariants `schedule` breaks (sorted, deduplicated).
pub fn broken(schedule: &Schedule) -> Vec<u8> {
    let mut v: Vec<u8> = run(schedule, RunOptions::default())
        .violations
        .iter()
        .map(|v| v.invariant)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Shrinks `schedule` while it still breaks `invariant`. Returns the smallest schedule
/// found and the number of simplifications applied.
pub fn shrink(schedule: &Schedule, invariant: u8) -> (Schedule, usize) {
    shrink_by(schedule, |s| broken(s).contains(&invariant))
}

/// Shrinks `schedule` while `keeps(candidate)` holds. Returns the smallest schedule found
/// and the number of simplifications applied.
pub fn shrink_by(schedule: &Schedule, keeps: impl Fn(&Schedule) -> bool) -> (Schedule, usize) {
    let mut best = schedule.clone();
    let mut steps = 0;
    let still_fails = keeps;
    loop {
        let mut improved = false;
        for candidate in candidates(&best) {
            if still_fails(&candidate) {
                best = candidate;
                steps += 1;
                improved = true;
                break;
            }
        }
        if !improved || steps > 500 {
            return (best, steps);
        }
    }
}

/// Every one-step simplification of `s`, simplest first.
fn candidates(s: &Schedule) -> Vec<Schedule> {
    let mut out = Vec::new();
    if s.cancel_at_ms.is_some() {
        out.push(Schedule {
            cancel_at_ms: None,
            ..s.clone()
        });
    }
    if s.heal_at_ms.is_some() {
        out.push(Schedule {
            heal_at_ms: None,
            calls: Vec::new(),
            ..s.clone()
        });
    }
    for i in 0..s.faults.len() {
        let mut c = s.clone();
        c.faults.remove(i);
        out.push(c);
    }
    for i in 0..s.pool_changes.len() {
        let mut c = s.clone();
        c.pool_changes.remove(i);
        out.push(c);
    }
    // Drop targets at the end of the chain that no fault or change refers to.
    if s.targets.len() > 1 {
        let last = s.targets.len() - 1;
        let referenced = s
            .faults
            .iter()
            .any(|f| f.scope == crate::schedule::FaultScope::Target(last))
            || s.pool_changes.iter().any(
                |c| matches!(c.change, relent::PoolChange::Added { target, .. } if target == last),
            );
        if !referenced {
            let mut c = s.clone();
            let dropped: Vec<_> = c
                .targets
                .pop()
                .map(|t| t.keys.iter().map(|k| k.id).collect())
                .unwrap_or_default();
            c.faults.retain(
                |f| !matches!(f.scope, crate::schedule::FaultScope::Key(k) if dropped.contains(&k)),
            );
            c.pool_changes
                .retain(|ch| !change_names(&ch.change, &dropped));
            out.push(c);
        }
    }
    for i in 0..s.faults.len() {
        let f = &s.faults[i];
        if let Some(until) = f.until_ms {
            let shorter = f.from_ms + (until - f.from_ms) / 2;
            if shorter > f.from_ms {
                let mut c = s.clone();
                c.faults[i].until_ms = Some(shorter);
                out.push(c);
            }
        }
        if f.from_ms > 0 {
            let mut c = s.clone();
            c.faults[i].from_ms /= 2;
            out.push(c);
        }
        if f.probability < 1.0 {
            let mut c = s.clone();
            c.faults[i].probability = 1.0;
            out.push(c);
        }
        match f.first_sends {
            Some(n) if n > 1 => {
                let mut c = s.clone();
                c.faults[i].first_sends = Some(n - 1);
                out.push(c);
            }
            _ => {}
        }
    }
    out
}

fn change_names(change: &relent::PoolChange, keys: &[relent::KeyId]) -> bool {
    match change {
        relent::PoolChange::Added { .. } => false,
        relent::PoolChange::Removed { key }
        | relent::PoolChange::Restored { key }
        | relent::PoolChange::MarkedBad { key, .. } => keys.contains(key),
    }
}
