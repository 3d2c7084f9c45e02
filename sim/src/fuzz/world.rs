//! The `world` target: arbitrary fault worlds through the runner, every invariant on.

use crate::runner::{run, RunOptions};
use crate::schedule::{Fault, FaultKind, FaultScope, Schedule, TimedChange};
use arbitrary::{Arbitrary, Unstructured};
use relent::{KeyId, KeySpec, Policy, PoolChange, Provider, Target, Time};

/// A compact, arbitrary description of a world, mapped onto a [`Schedule`].
#[derive(Arbitrary, Debug)]
struct WorldSpec {
    seed: u64,
    targets: Vec<(u8, u8, Option<u16>)>,
    faults: Vec<FaultSpec>,
    changes: Vec<(u32, u8, u8, Option<u32>)>,
    cancel_at: Option<u32>,
    heal_at: Option<u32>,
    latency: u16,
    deadline: Option<u32>,
    /// Later calls of the same client, by start time in units of 100 ms.
    calls: Vec<u16>,
}

/// One fault: kind, key- or target-scoped, which one, start, length, first-sends budget, and
/// probability in percent.
#[derive(Arbitrary, Debug)]
struct FaultSpec(u8, bool, u8, u32, Option<u32>, Option<u8>, u8);

fn world_from(spec: WorldSpec) -> Schedule {
    let mut next_key = 0u32;
    let mut targets: Vec<Target> = spec
        .targets
        .iter()
        .take(3)
        .enumerate()
        .map(|(t, (p, n, ctx))| {
            let keys = (0..(1 + n % 4))
                .map(|_| {
                    next_key += 1;
                    KeySpec::new(next_key, format!("t{t}-k{next_key}"))
                })
                .collect();
            Target {
                provider: crate::generate::PROVIDERS
                    [*p as usize % crate::generate::PROVIDERS.len()],
                model: format!("m{t}"),
                context_tokens: ctx.map(|c| u32::from(c) * 16),
                keys,
            }
        })
        .collect();
    if targets.is_empty() {
        next_key = 1;
        targets.push(Target::new(
            Provider::Openai,
            "m0",
            vec![KeySpec::new(1, "only")],
        ));
    }
    let kinds: Vec<FaultKind> = FaultKind::ALL
        .into_iter()
        .chain([FaultKind::Unrecognised])
        .collect();
    let faults = spec
        .faults
        .iter()
        .take(12)
        .map(
            |FaultSpec(kind, key_scoped, which, from, len, first, p)| Fault {
                scope: if *key_scoped {
                    FaultScope::Key(KeyId(1 + u32::from(*which) % next_key))
                } else {
                    FaultScope::Target(*which as usize % targets.len())
                },
                from_ms: u64::from(*from % 200_000),
                until_ms: len.map(|l| u64::from(*from % 200_000) + u64::from(l % 200_000)),
                first_sends: first.map(|f| u32::from(f % 5)),
                probability: f64::from(*p % 101) / 100.0,
                kind: kinds[*kind as usize % kinds.len()],
            },
        )
        .collect();
    let mut added = 1000;
    let pool_changes = spec
        .changes
        .iter()
        .take(6)
        .map(|(at, what, which, until)| {
            let key = KeyId(1 + u32::from(*which) % next_key);
            let change = match what % 4 {
                0 => {
                    added += 1;
                    PoolChange::Added {
                        target: *which as usize % targets.len(),
                        key: KeySpec::new(added, format!("added-{added}")),
                    }
                }
                1 => PoolChange::Removed { key },
                2 => PoolChange::Restored { key },
                _ => PoolChange::MarkedBad {
                    key,
                    until: until.map(|u| Time(u64::from(u % 300_000))),
                },
            };
            TimedChange {
                on_reprobe: false,
                at_ms: u64::from(*at % 200_000),
                change,
            }
        })
        .collect();
    let mut policy = Policy::default();
    if let Some(d) = spec.deadline {
        policy.deadline_ms = 1 + u64::from(d % 400_000);
    }
    Schedule {
        name: None,
        seed: spec.seed,
        policy,
        targets,
        faults,
        pool_changes,
        cancel_at_ms: spec.cancel_at.map(|c| u64::from(c % 300_000)),
        latency_ms: u64::from(spec.latency % 5_000),
        heal_at_ms: spec.heal_at.map(|h| u64::from(h % 300_000)),
        calls: if spec.calls.is_empty() {
            Vec::new()
        } else {
            std::iter::once(0)
                .chain(
                    spec.calls
                        .iter()
                        .take(4)
                        .map(|c| u64::from(*c % 3_000) * 100),
                )
                .collect()
        },
    }
}

/// An arbitrary fault world through the simulator's runner with every invariant check on.
pub fn fuzz_world(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(spec) = WorldSpec::arbitrary(&mut u) else {
        return;
    };
    let schedule = world_from(spec);
    let report = run(&schedule, RunOptions::default());
    if !report.violations.is_empty() {
        panic!(
            "violations {:?}\nschedule {}",
            report.violations,
            serde_json::to_string(&schedule).unwrap_or_default()
        );
    }
}
