//! The simulated provider: answers each send from the schedule's faults, in the target
//! provider's own bytes. Shared by the invariant runner and the scoreboard, so relent and
//! every baseline face the same server.

use crate::respond::{self, Reply};
use crate::schedule::{FaultScope, Schedule};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relent::{KeyId, Time};

/// What the server did with one send.
#[derive(Clone, Debug)]
pub struct Served {
    /// The provider of the target the send went to, in whose bytes the reply is.
    pub provider: relent::Provider,
    /// The reply.
    pub reply: Reply,
    /// True when this send could not have succeeded (a dead, unentitled, spent or
    /// rate-limited key, or a request the target refuses).
    pub doomed: bool,
    /// The reset time the reply announces, when it announces one.
    pub reset_at: Option<Time>,
    /// What the reply is (the world's ground truth, not a classification).
    pub truth: relent::Reason,
    /// The reply says the request may be retried as sent (`x-should-retry: true`).
    pub says_retry: bool,
    /// The reply says not to retry (`x-should-retry: false`).
    pub says_no_retry: bool,
    /// The wait a transient reply states (its `retry-after`), in milliseconds.
    pub stated_wait_ms: Option<u64>,
    /// How much later than `reset_at` an exact reader may hold the key back (the
    /// resolution of the reply's clock, for resets given as dates).
    pub reset_slack_ms: u64,
}

/// A schedule's server: its coin flips and per-fault hit counts.
#[derive(Clone, Debug)]
pub struct Server<'a> {
    schedule: &'a Schedule,
    rng: ChaCha8Rng,
    hits: Vec<u32>,
}

impl<'a> Server<'a> {
    /// A fresh server for `schedule` (its coins seeded from the schedule's seed).
    pub fn new(schedule: &'a Schedule) -> Self {
        Server {
            schedule,
            rng: ChaCha8Rng::seed_from_u64(schedule.seed ^ 0x5eed_5eed_5eed_5eed),
            hits: vec![0; schedule.faults.len()],
        }
    }

    /// Whether two servers would answer every future send alike (same coins, same counts).
    pub fn same_state(&self, other: &Server<'_>) -> bool {
        // Hit counts matter only for faults limited to their first sends.
        let budgets = |s: &Server<'_>| -> Vec<u32> {
            s.schedule
                .faults
                .iter()
                .zip(&s.hits)
                .filter(|(f, _)| f.first_sends.is_some())
                .map(|(_, h)| *h)
                .collect()
        };
        self.rng == other.rng && budgets(self) == budgets(other)
    }

    /// Answers a send with `key` to `target` that reaches the server at `at`.
    pub fn serve(&mut self, key: KeyId, target: usize, at: Time) -> Served {
        let schedule = self.schedule;
        let provider = schedule
            .targets
            .get(target)
            .map(|t| t.provider)
            .unwrap_or_default();
        let healed = schedule.heal_at_ms.is_some_and(|h| at.0 >= h);
        if !healed {
            for (i, fault) in schedule.faults.iter().enumerate() {
                let in_scope = match fault.scope {
                    FaultScope::Key(k) => k == key,
                    FaultScope::Target(t) => t == target,
                };
                let in_window = at.0 >= fault.from_ms && fault.until_ms.is_none_or(|u| at.0 < u);
                let has_budget = fault.first_sends.is_none_or(|n| self.hits[i] < n);
                if !(in_scope && in_window && has_budget) {
                    continue;
                }
                // Draw the coin only for faults that could apply, so removing one fault does
                // not shift every later coin (shrinking relies on this locality).
                let hit = fault.probability >= 1.0
                    || (self.rng.next_u64() as f64 / u64::MAX as f64) < fault.probability;
                if !hit {
                    continue;
                }
                self.hits[i] += 1;
                let window_end = fault.until_ms.unwrap_or(at.0 + 60_000);
                let window_end = schedule
                    .heal_at_ms
                    .map_or(window_end, |h| window_end.min(h.max(at.0)));
                let reset_after = window_end.saturating_sub(at.0);
                return Served {
                    provider,
                    reply: respond::fault(provider, fault.kind, at.0, reset_after),
                    doomed: fault.kind.is_doomed(),
                    reset_at: respond::hinted_reset_ms(fault.kind, provider, at.0, reset_after)
                        .map(Time),
                    truth: fault.kind.truth(),
                    says_retry: fault.kind.says_retry(),
                    says_no_retry: fault.kind.says_no_retry(),
                    stated_wait_ms: fault.kind.stated_wait_ms(),
                    reset_slack_ms: respond::reset_resolution_ms(fault.kind),
                };
            }
        }
        Served {
            provider,
            reply: respond::success(provider),
            doomed: false,
            reset_at: None,
            truth: relent::Reason::Success,
            says_retry: false,
            says_no_retry: false,
            stated_wait_ms: None,
            reset_slack_ms: 0,
        }
    }
}
