//! Seeded fault worlds, swarm style: every seed draws its own shape (targets, keys, policy
//! tweaks) and its own fault mix, switching whole fault kinds off, so that rare
//! combinations are reached without tuning a single global distribution.

use crate::schedule::{Fault, FaultKind, FaultScope, HintFormat, Schedule, TimedChange};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relent::classify::providers::SPECS;
use relent::{Jitter, KeyId, KeySpec, Policy, PoolChange, Provider, Selection, Target, Time};

/// The providers a generated world draws from: those the provider table marks `simulated`
/// (every named one but Vertex, which answers like Gemini), in the table's order.
pub(crate) const PROVIDERS: [Provider; SIMULATED] = simulated_providers();

/// How many providers the table marks `simulated`.
const SIMULATED: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < SPECS.len() {
        if SPECS[i].simulated {
            n += 1;
        }
        i += 1;
    }
    n
};

const fn simulated_providers() -> [Provider; SIMULATED] {
    let mut out = [Provider::Generic; SIMULATED];
    let (mut i, mut n) = (0, 0);
    while i < SPECS.len() {
        if SPECS[i].simulated {
            out[n] = SPECS[i].provider;
            n += 1;
        }
        i += 1;
    }
    out
}

struct Dice(ChaCha8Rng);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.0.next_u64() % n
        }
    }
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.0.next_u64() as f64 / u64::MAX as f64) < p
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The label of key `i` of target `t` ("t0-k1"), shared between worlds: most worlds draw
/// from the same dozen labels.
fn key_label(t: u64, i: u32) -> std::sync::Arc<str> {
    const TARGETS: usize = 3;
    const KEYS: usize = 4;
    thread_local! {
        static LABELS: Vec<std::sync::Arc<str>> = (0..TARGETS * KEYS)
            .map(|n| format!("t{}-k{}", n / KEYS, n % KEYS).into())
            .collect();
    }
    let (t, i) = (t as usize, i as usize);
    if t < TARGETS && i < KEYS {
        LABELS.with(|labels| labels[t * KEYS + i].clone())
    } else {
        format!("t{t}-k{i}").into()
    }
}

/// A fault on `key` from the start, for good, on every send with chance `probability`.
fn on_key(key: KeyId, probability: f64, kind: FaultKind) -> Fault {
    Fault {
        scope: FaultScope::Key(key),
        from_ms: 0,
        until_ms: None,
        first_sends: None,
        probability,
        kind,
    }
}

/// The world for `seed`.
pub fn generate(seed: u64) -> Schedule {
    let mut d = Dice(ChaCha8Rng::seed_from_u64(seed));
    let mut schedule = Schedule {
        name: Some(format!("seed-{seed}")),
        seed,
        policy: Policy::default(),
        targets: Vec::new(),
        // About a dozen faults in a typical world.
        faults: Vec::with_capacity(16),
        pool_changes: Vec::new(),
        cancel_at_ms: None,
        latency_ms: d.range(50, 400),
        heal_at_ms: None,
        calls: Vec::new(),
    };

    // One world in ten is the headline case: a single key that is dead from the start.
    if d.chance(0.1) {
        let provider = d.pick(&PROVIDERS);
        schedule.targets.push(Target {
            provider,
            model: "model-0".into(),
            context_tokens: None,
            keys: vec![KeySpec::new(1, "only-key")],
        });
        schedule.faults.push(Fault {
            scope: FaultScope::Key(KeyId(1)),
            from_ms: 0,
            until_ms: None,
            first_sends: None,
            probability: 1.0,
            kind: FaultKind::KeyRejected,
        });
        return schedule;
    }

    let n_targets = match d.below(10) {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    let mut next_key = 1u32;
    let mut context = 8_000u32;
    for t in 0..n_targets {
        let provider = d.pick(&PROVIDERS);
        let n_keys = d.range(1, 4) as u32;
        let keys = (0..n_keys)
            .map(|i| {
                next_key += 1;
                KeySpec {
                    id: KeyId(next_key - 1),
                    label: key_label(t, i),
                }
            })
            .collect();
        context *= if d.chance(0.7) { 4 } else { 1 };
        schedule.targets.push(Target {
            provider,
            model: format!("model-{t}"),
            context_tokens: d.chance(0.8).then_some(context),
            keys,
        });
    }
    let all_keys: Vec<KeyId> = schedule
        .targets
        .iter()
        .flat_map(|t| t.keys.iter().map(|k| k.id))
        .collect();

    // Policy tweaks.
    if d.chance(0.2) {
        schedule.policy.selection = d.pick(&[
            Selection::Priority,
            Selection::RoundRobin,
            Selection::LeastRecentlyUsed,
        ]);
    }
    if d.chance(0.2) {
        schedule.policy.deadline_ms = d.pick(&[15_000, 30_000, 60_000, 300_000]);
    }
    if d.chance(0.1) {
        schedule.policy.backoff.jitter =
            d.pick(&[Jitter::Full, Jitter::Decorrelated, Jitter::None]);
    }
    if d.chance(0.1) {
        schedule.policy.attempt_timeout_ms = d.pick(&[5_000, 20_000]);
    }
    if d.chance(0.1) {
        schedule.policy.fallback_on_content_filter = true;
    }
    if d.chance(0.1) {
        schedule.policy.restart_after_commit = true;
    }
    if d.chance(0.1) {
        schedule.policy.revoked_reprobe_after_ms = Some(d.pick(&[2_000, 20_000]));
    }
    if d.chance(0.1) {
        schedule.policy.overload_attempts_before_fallback = d.pick(&[0, 1, 4]);
    }
    if d.chance(0.1) {
        schedule.policy.max_wait_before_fallback_ms = d.pick(&[0, 60_000]);
    }
    if d.chance(0.1) {
        schedule.policy.max_attempts_per_target = d.pick(&[3, 6]);
    }

    // Swarm: each fault kind is switched on or off for the whole world.
    let horizon = schedule.policy.deadline_ms.min(120_000);
    for kind in FaultKind::ALL.into_iter().chain([FaultKind::Unrecognised]) {
        if !d.chance(0.3) {
            continue;
        }
        for _ in 0..d.range(1, 2) {
            let key_scoped = matches!(
                kind,
                FaultKind::KeyRejected
                    | FaultKind::PermissionDenied
                    | FaultKind::QuotaExhausted { .. }
                    | FaultKind::RateLimited { .. }
            );
            let scope = if key_scoped {
                FaultScope::Key(d.pick(&all_keys))
            } else {
                FaultScope::Target(d.below(n_targets) as usize)
            };
            let from_ms = if d.chance(0.5) {
                0
            } else {
                d.below(horizon / 2)
            };
            let until_ms = if d.chance(0.15) {
                None
            } else {
                Some(from_ms + d.range(500, horizon))
            };
            let probability = if d.chance(0.5) {
                1.0
            } else {
                (d.range(10, 90) as f64) / 100.0
            };
            let first_sends = d.chance(0.2).then(|| d.range(1, 3) as u32);
            schedule.faults.push(Fault {
                scope,
                from_ms,
                until_ms,
                first_sends,
                probability,
                kind,
            });
        }
    }

    // Pool changes during the call.
    if d.chance(0.3) {
        let mut added = 1000u32;
        for _ in 0..d.range(1, 3) {
            let at_ms = d.below(horizon / 2);
            let change = match d.below(4) {
                0 => {
                    added += 1;
                    PoolChange::Added {
                        target: d.below(n_targets) as usize,
                        key: KeySpec::new(added, format!("added-{added}")),
                    }
                }
                1 => PoolChange::Removed {
                    key: d.pick(&all_keys),
                },
                2 => PoolChange::Restored {
                    key: d.pick(&all_keys),
                },
                _ => PoolChange::MarkedBad {
                    key: d.pick(&all_keys),
                    until: d.chance(0.5).then(|| Time(at_ms + d.range(1_000, 60_000))),
                },
            };
            schedule.pool_changes.push(TimedChange {
                at_ms,
                change,
                on_reprobe: false,
            });
        }
    }
    if d.chance(0.05) {
        schedule.cancel_at_ms = Some(d.below(horizon));
    }
    // One world in eight is a client making several calls over one pool: some one after
    // another, some overlapping, so that what one call learns binds the next.
    if d.chance(0.125) {
        let n = d.range(2, 4);
        let mut at = 0;
        schedule.calls.push(0);
        for _ in 1..n {
            at += if d.chance(0.5) {
                d.below(2_000)
            } else {
                d.range(5_000, horizon)
            };
            schedule.calls.push(at);
        }
    }
    if d.chance(0.7) {
        // The liveness phase starts after the last fault of any kind, pool changes included.
        let last_change = schedule
            .pool_changes
            .iter()
            .map(|c| c.at_ms)
            .max()
            .unwrap_or(0);
        schedule.heal_at_ms = Some(d.below(horizon * 3 / 4).max(last_change));
    }
    // Overload control (issue #14): one world in four draws a small retry budget and a
    // touchy breaker, so that denials, openings, probes and closings happen within one
    // world (drawn last, so the rest of every world is as it was).
    if d.chance(0.25) {
        let o = &mut schedule.policy.overload;
        o.budget.capacity = d.range(0, 40) as u32;
        o.budget.retry_cost = d.range(1, 10) as u32;
        o.budget.timeout_retry_cost = o.budget.retry_cost * d.range(1, 2) as u32;
        o.budget.success_reward = d.range(0, 3) as u32;
        // Half of those budgets refill with time, so retries wait for tokens.
        o.budget.refill_per_sec = if d.chance(0.5) {
            d.range(1, 20) as u32
        } else {
            0
        };
        o.breaker.enabled = d.chance(0.9);
        o.breaker.consecutive_failures = d.range(0, 4) as u32;
        o.breaker.window = d.range(2, 20) as u32;
        o.breaker.min_outcomes = d.range(1, u64::from(o.breaker.window)) as u32;
        o.breaker.failure_rate_percent = if d.chance(0.5) {
            d.range(20, 90) as u32
        } else {
            0
        };
        o.breaker.open_ms = d.range(500, 30_000);
        o.breaker.max_open_ms = o.breaker.open_ms * d.range(1, 4);
        o.breaker.half_open_probes = d.range(1, 3) as u32;
    }
    // Escalating key cooldowns (issue #14 item 2): one world in five draws its own shape
    // (or turns escalation off), drawn last for the same reason.
    if d.chance(0.2) {
        let c = &mut schedule.policy.key_cooldown;
        c.enabled = d.chance(0.85);
        c.base_ms = d.range(200, 20_000);
        c.max_ms = c.base_ms * d.range(1, 12);
        c.jitter_percent = d.range(0, 100) as u8;
    }
    // A key that flaps: one in thirty worlds is a client whose calls, one after another,
    // meet a key that answers some sends with a hint-less 429 and others with success, so
    // that its cooldowns escalate, reset on a success, and escalate again across calls.
    if d.chance(1.0 / 30.0) {
        if schedule.calls.is_empty() {
            let mut at = 0;
            schedule.calls.push(0);
            for _ in 1..d.range(3, 6) {
                at += d.range(1_000, 20_000);
                schedule.calls.push(at);
            }
        }
        schedule.faults.push(on_key(
            d.pick(&all_keys),
            (d.range(30, 70) as f64) / 100.0,
            FaultKind::RateLimited {
                hint: HintFormat::None,
            },
        ));
    }
    // The ejection guard (issue #14 item 2): one world in eight has one hint-less rate
    // limit that every key of a target shares (an organisation's, or the provider's), so
    // that keys cool at once; some of them draw their own share for the guard (drawn last,
    // so the rest of every world is as it was).
    if d.chance(0.125) {
        let from_ms = if d.chance(0.5) {
            0
        } else {
            d.below(horizon / 2)
        };
        schedule.faults.push(Fault {
            scope: FaultScope::Target(d.below(n_targets) as usize),
            from_ms,
            until_ms: Some(from_ms + d.range(2_000, 40_000)),
            first_sends: None,
            probability: if d.chance(0.7) {
                1.0
            } else {
                (d.range(50, 90) as f64) / 100.0
            },
            kind: FaultKind::RateLimited {
                hint: HintFormat::None,
            },
        });
        if d.chance(0.3) {
            schedule.policy.max_ejection_percent = d.pick(&[0, 10, 34, 67, 100]);
        }
    }
    // Backoffs of a few milliseconds: one world in sixteen, so that a draw reaches the very
    // top of its jittered range often enough for the spread marks to see it (drawn last).
    if d.chance(1.0 / 16.0) {
        for b in [
            &mut schedule.policy.backoff,
            &mut schedule.policy.congestion_backoff,
        ] {
            b.base_ms = d.range(1, 4);
            b.cap_ms = b.base_ms * d.range(1, 8);
            b.jitter = d.pick(&[
                Jitter::Equal,
                Jitter::Equal,
                Jitter::Full,
                Jitter::Decorrelated,
            ]);
        }
    }
    // The server's own words on waiting (drawn last): one world in eight caps the waits it
    // sleeps on a server's say-so (`max_server_wait_ms`) and meets servers that state a
    // wait on a 500 (`retry-after` of 0, which says nothing; of a few seconds, under or
    // over the cap; or absurd), that say `x-should-retry: false` on a 500 or a 429, and
    // rate limits whose hint may outlast the cap.
    if d.chance(0.125) {
        if d.chance(0.75) {
            schedule.policy.max_server_wait_ms = Some(d.pick(&[0, 1_000, 4_000, 20_000]));
        }
        let window = |d: &mut Dice| {
            let from_ms = if d.chance(0.5) {
                0
            } else {
                d.below(horizon / 2)
            };
            let until_ms = d.chance(0.8).then(|| from_ms + d.range(2_000, horizon));
            let probability = if d.chance(0.5) {
                1.0
            } else {
                (d.range(30, 90) as f64) / 100.0
            };
            (from_ms, until_ms, probability)
        };
        for _ in 0..d.range(1, 3) {
            let (from_ms, until_ms, probability) = window(&mut d);
            let (scope, kind) = match d.below(3) {
                0 => (
                    FaultScope::Target(d.below(n_targets) as usize),
                    FaultKind::ServerErrorWithWait {
                        secs: d.pick(&[0, 0, 1, 3, 10, 30, 99_999_999]),
                        no_retry: d.chance(0.3),
                    },
                ),
                1 => (
                    FaultScope::Key(d.pick(&all_keys)),
                    FaultKind::RateLimitedNoRetry {
                        hint: d.pick(&[
                            HintFormat::None,
                            HintFormat::RetryAfterSeconds,
                            HintFormat::RetryAfterMs,
                            HintFormat::Absurd,
                        ]),
                    },
                ),
                _ => (
                    FaultScope::Key(d.pick(&all_keys)),
                    FaultKind::RateLimited {
                        hint: d.pick(&[HintFormat::RetryAfterSeconds, HintFormat::RetryAfterMs]),
                    },
                ),
            };
            schedule.faults.push(Fault {
                scope,
                from_ms,
                until_ms,
                first_sends: d.chance(0.3).then(|| d.range(1, 3) as u32),
                probability,
                kind,
            });
        }
    }
    // A re-probe that meets an outside mark (drawn last): one world in twenty-four is a
    // single call whose long-lived pool probes revoked keys again, has every key of the first target rejected
    // on its first send and then rate limited or out of quota now and then, and marks one
    // of them bad from outside while its re-probe is out, so that the re-probe's answer
    // meets the mark.
    if d.chance(1.0 / 24.0) && schedule.targets[0].keys.len() >= 2 {
        schedule.policy.revoked_reprobe_after_ms = Some(d.pick(&[500, 2_000]));
        schedule.heal_at_ms = None;
        // One call, so that the mark meets the call's own re-probe. (Concurrent calls that
        // lift and reject one key are the concurrent re-probe family's, below; a world
        // drawn for both is both.)
        schedule.calls.clear();
        let keys: Vec<KeyId> = schedule.targets[0].keys.iter().map(|k| k.id).collect();
        for &key in &keys {
            let rejected_first = Fault {
                first_sends: Some(1),
                ..on_key(key, 1.0, FaultKind::KeyRejected)
            };
            schedule.faults.insert(0, rejected_first);
            schedule.faults.push(on_key(
                key,
                (d.range(50, 100) as f64) / 100.0,
                d.pick(&[
                    FaultKind::RateLimited {
                        hint: HintFormat::None,
                    },
                    FaultKind::QuotaExhausted { reset: false },
                    FaultKind::ServerError,
                ]),
            ));
        }
        // Marked bad for good, or until a time that may fall after the probe's answer
        // (the probe's answer must not drop the mark's end).
        let until = match d.range(0, 2) {
            0 => None,
            1 => Some(Time(3_600_000)),
            _ => Some(Time(d.range(1_000, 600_000))),
        };
        schedule.pool_changes.push(TimedChange {
            at_ms: 0,
            change: PoolChange::MarkedBad {
                key: d.pick(&keys),
                until,
            },
            on_reprobe: true,
        });
    }
    // Concurrent re-probes (drawn last): one world in twenty is a client whose overlapping
    // calls share the keys of the first target, which the provider rejects now and then and
    // otherwise answers with a rate limit or a spent quota now and then. Revoked keys are
    // probed again soon, so one call's re-probe lifts a key (an answer only an accepted key
    // gets) while another's is rejected, and the merge of the two decides what the client
    // holds. Calls start on a grid of a quarter second, so that answers often arrive in the
    // same millisecond.
    if d.chance(1.0 / 20.0) {
        schedule.policy.revoked_reprobe_after_ms = Some(d.pick(&[200, 500, 2_000]));
        let mut at = 0;
        schedule.calls = vec![0];
        for _ in 1..d.range(3, 5) {
            at += d.below(6) * 250;
            schedule.calls.push(at);
        }
        let keys: Vec<KeyId> = schedule.targets[0].keys.iter().map(|k| k.id).collect();
        for &key in &keys {
            if d.chance(0.3) {
                continue;
            }
            // (Fields are drawn in the order written: the window, then the chance.)
            let rejected_now_and_then = Fault {
                until_ms: d.chance(0.5).then(|| d.range(1_000, horizon)),
                ..on_key(
                    key,
                    (d.range(20, 70) as f64) / 100.0,
                    FaultKind::KeyRejected,
                )
            };
            schedule.faults.insert(0, rejected_now_and_then);
            schedule.faults.push(on_key(
                key,
                (d.range(30, 90) as f64) / 100.0,
                d.pick(&[
                    FaultKind::RateLimited {
                        hint: HintFormat::None,
                    },
                    FaultKind::RateLimited {
                        hint: HintFormat::RetryAfterSeconds,
                    },
                    FaultKind::QuotaExhausted { reset: false },
                ]),
            ));
        }
    }
    schedule
}
