//! A circuit breaker per target: consecutive-failure and failure-rate triggers, an open
//! period that grows each time the target fails its probes (capped), and a fixed number of
//! half-open probes (after resilience4j's `CircuitBreaker` and Envoy's outlier detection).

use crate::time::{Millis, Time};
use serde::{Deserialize, Serialize};

/// When a target's breaker opens and how it recovers. Defaults and sources in
/// `docs/POLICY.md`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerPolicy {
    /// Whether breakers act at all.
    pub enabled: bool,
    /// Provider faults in a row that open the breaker (0: no such trigger).
    pub consecutive_failures: u32,
    /// The share of provider faults, in percent, among the last `window` outcomes that opens
    /// the breaker once `min_outcomes` were seen (0: no such trigger).
    pub failure_rate_percent: u32,
    /// How many outcomes the failure rate looks at (at most 128).
    pub window: u32,
    /// Outcomes needed before the failure rate is judged.
    pub min_outcomes: u32,
    /// The first open period; the n-th opening in a row lasts n times as long.
    pub open_ms: u64,
    /// The longest open period.
    pub max_open_ms: u64,
    /// Sends a half-open breaker admits; all must succeed for it to close, one fault
    /// reopens it. Probes that get no answer within `open_ms` are given up and a new round
    /// is admitted.
    pub half_open_probes: u32,
}

/// The largest failure-rate window (the outcomes are bits of a `u128`).
pub const MAX_WINDOW: u32 = 128;

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            enabled: false,
            consecutive_failures: 5,
            failure_rate_percent: 50,
            window: 100,
            min_outcomes: 100,
            open_ms: 30_000,
            max_open_ms: 300_000,
            half_open_probes: 3,
        }
    }
}

impl BreakerPolicy {
    /// A breaker that never opens.
    pub fn off() -> Self {
        BreakerPolicy {
            enabled: false,
            ..BreakerPolicy::default()
        }
    }

    /// How long the `times`-th opening in a row lasts: `open_ms × times`, at most
    /// `max_open_ms`.
    pub fn open_period(&self, times: u32) -> Millis {
        Millis(
            self.open_ms
                .saturating_mul(u64::from(times.max(1)))
                .min(self.max_open_ms.max(self.open_ms)),
        )
    }
}

/// Where a breaker stands.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum BreakerState {
    /// Sends pass.
    #[default]
    Closed,
    /// No send until `until`.
    Open {
        /// When the breaker half-opens.
        until: Time,
    },
    /// A few probes pass; the rest wait for their outcome.
    HalfOpen {
        /// When this round of probes began.
        since: Time,
        /// Probes admitted in this round.
        admitted: u32,
        /// Probes that succeeded in this round.
        succeeded: u32,
    },
}

impl BreakerState {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half_open",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen { .. } => 1,
            BreakerState::Open { .. } => 2,
        }
    }
}

/// What a breaker says to a send at some time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go.
    Closed,
    /// Go, as a half-open probe.
    Probe,
    /// Open until `until`.
    Open {
        /// When it half-opens.
        until: Time,
    },
    /// Half-open with every probe of the round out; a new round at `retry_at` at the latest.
    ProbesOut {
        /// When the round's probes are given up.
        retry_at: Time,
    },
}

/// One target's breaker.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    /// Its state.
    pub state: BreakerState,
    /// Provider faults in a row while closed.
    pub consecutive: u32,
    /// The last outcomes while closed, newest in bit 0; a set bit is a fault.
    pub window: u128,
    /// How many of `window`'s bits hold an outcome.
    pub outcomes: u32,
    /// Openings since the breaker last closed.
    pub times_opened: u32,
}

impl Breaker {
    /// What the breaker says to a send at `now` (changes nothing).
    pub fn admission(&self, now: Time, policy: &BreakerPolicy) -> Admission {
        if !policy.enabled {
            return Admission::Closed;
        }
        match self.state {
            BreakerState::Closed => Admission::Closed,
            BreakerState::Open { until } if now < until => Admission::Open { until },
            BreakerState::Open { .. } => Admission::Probe,
            BreakerState::HalfOpen {
                since, admitted, ..
            } => {
                let lease_end = since + Millis(policy.open_ms);
                if admitted < policy.half_open_probes || now >= lease_end {
                    Admission::Probe
                } else {
                    Admission::ProbesOut {
                        retry_at: lease_end,
                    }
                }
            }
        }
    }

    /// Records a send at `now` the breaker admitted: a probe is counted. Returns false (and
    /// changes nothing) if the breaker does not admit it.
    pub fn admit(&mut self, now: Time, policy: &BreakerPolicy) -> bool {
        match self.admission(now, policy) {
            Admission::Closed => true,
            Admission::Probe => {
                self.state = match self.state {
                    BreakerState::HalfOpen {
                        since,
                        admitted,
                        succeeded,
                    } if now < since + Millis(policy.open_ms) => BreakerState::HalfOpen {
                        since,
                        admitted: admitted + 1,
                        succeeded,
                    },
                    _ => BreakerState::HalfOpen {
                        since: now,
                        admitted: 1,
                        succeeded: 0,
                    },
                };
                true
            }
            Admission::Open { .. } | Admission::ProbesOut { .. } => false,
        }
    }

    /// Records an answer from the target at `now`: `fault` when it was a provider-side
    /// fault (overload, server error, timeout, dropped connection), else a success.
    /// Answers that say nothing about the provider's health are not recorded.
    pub fn record(&mut self, now: Time, fault: bool, policy: &BreakerPolicy) {
        if !policy.enabled {
            return;
        }
        match self.state {
            BreakerState::Open { .. } => {}
            BreakerState::HalfOpen {
                since,
                admitted,
                succeeded,
            } => {
                if fault {
                    self.open(now, policy);
                } else if succeeded + 1 >= policy.half_open_probes {
                    *self = Breaker::default();
                } else {
                    self.state = BreakerState::HalfOpen {
                        since,
                        admitted,
                        succeeded: succeeded + 1,
                    };
                }
            }
            BreakerState::Closed => {
                let size = policy.window.clamp(1, MAX_WINDOW);
                let mask = if size == MAX_WINDOW {
                    u128::MAX
                } else {
                    (1u128 << size) - 1
                };
                self.window = ((self.window << 1) | u128::from(fault)) & mask;
                self.outcomes = (self.outcomes + 1).min(size);
                self.consecutive = if fault { self.consecutive + 1 } else { 0 };
                let faults = self.window.count_ones();
                let by_count = policy.consecutive_failures > 0
                    && self.consecutive >= policy.consecutive_failures;
                let by_rate = policy.failure_rate_percent > 0
                    && self.outcomes >= policy.min_outcomes.clamp(1, size)
                    && u64::from(faults) * 100
                        >= u64::from(policy.failure_rate_percent) * u64::from(self.outcomes);
                if fault && (by_count || by_rate) {
                    self.open(now, policy);
                }
            }
        }
    }

    fn open(&mut self, now: Time, policy: &BreakerPolicy) {
        self.times_opened = self.times_opened.saturating_add(1);
        self.state = BreakerState::Open {
            until: now + policy.open_period(self.times_opened),
        };
        self.consecutive = 0;
        self.window = 0;
        self.outcomes = 0;
    }

    /// The more restrictive of two breakers both changed since `started` (see
    /// [`super::Overload::merge_call`]).
    pub(super) fn merge(self, started: Breaker, learned: Breaker) -> Breaker {
        let state = match (self.state, learned.state) {
            (BreakerState::Open { until: a }, BreakerState::Open { until: b }) => {
                BreakerState::Open { until: a.max(b) }
            }
            (
                BreakerState::HalfOpen {
                    since,
                    admitted,
                    succeeded,
                },
                BreakerState::HalfOpen {
                    since: theirs,
                    admitted: more,
                    succeeded: ok,
                },
            ) => {
                let already = match started.state {
                    BreakerState::HalfOpen {
                        since: s, admitted, ..
                    } if s == theirs => admitted,
                    _ => 0,
                };
                BreakerState::HalfOpen {
                    since: since.max(theirs),
                    admitted: admitted.saturating_add(more.saturating_sub(already)),
                    succeeded: succeeded.min(ok),
                }
            }
            (mine, theirs) if mine.rank() >= theirs.rank() => mine,
            (_, theirs) => theirs,
        };
        let (window, outcomes) = if learned.outcomes > self.outcomes {
            (learned.window, learned.outcomes)
        } else {
            (self.window, self.outcomes)
        };
        Breaker {
            state,
            consecutive: self.consecutive.max(learned.consecutive),
            window,
            outcomes,
            times_opened: self.times_opened.max(learned.times_opened),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented defaults, switched on (the breaker is off by default).
    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            enabled: true,
            ..BreakerPolicy::default()
        }
    }

    #[test]
    fn five_faults_in_a_row_open_for_thirty_seconds_then_three_probes_close_it() {
        let p = policy();
        let mut b = Breaker::default();
        for i in 0..4 {
            b.record(Time(i), true, &p);
            assert_eq!(b.state, BreakerState::Closed);
        }
        b.record(Time(10), true, &p);
        assert_eq!(
            b.state,
            BreakerState::Open {
                until: Time(30_010)
            }
        );
        assert_eq!(
            b.admission(Time(30_009), &p),
            Admission::Open {
                until: Time(30_010)
            }
        );
        // Exactly three probes pass.
        let admitted = (0..10).filter(|_| b.admit(Time(30_010), &p)).count();
        assert_eq!(admitted, 3);
        b.record(Time(31_000), false, &p);
        b.record(Time(31_000), false, &p);
        assert!(matches!(b.state, BreakerState::HalfOpen { .. }));
        b.record(Time(31_000), false, &p);
        assert_eq!(b, Breaker::default());
    }

    #[test]
    fn a_failed_probe_reopens_for_longer_up_to_the_cap() {
        let p = policy();
        let mut b = Breaker::default();
        for _ in 0..5 {
            b.record(Time(0), true, &p);
        }
        let mut now = Time(0);
        let mut periods = Vec::new();
        for _ in 0..12 {
            let BreakerState::Open { until } = b.state else {
                panic!("{b:?}")
            };
            periods.push(until.since(now).0 / 1_000);
            now = until;
            assert!(b.admit(now, &p));
            b.record(now, true, &p);
        }
        assert_eq!(
            periods,
            [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300]
        );
    }

    #[test]
    fn the_failure_rate_opens_at_half_of_a_hundred_outcomes() {
        let p = policy();
        let mut b = Breaker::default();
        // Alternate: never four faults in a row; the 100th outcome is the 50th fault.
        for i in 0..99 {
            b.record(Time(i), i % 2 == 1, &p);
            assert_eq!(b.state, BreakerState::Closed, "after {i}");
        }
        b.record(Time(99), true, &p);
        assert!(matches!(b.state, BreakerState::Open { .. }));
    }

    #[test]
    fn probes_that_never_come_back_are_given_up_after_the_open_period() {
        let p = policy();
        let mut b = Breaker {
            state: BreakerState::HalfOpen {
                since: Time(0),
                admitted: 3,
                succeeded: 0,
            },
            ..Breaker::default()
        };
        assert_eq!(
            b.admission(Time(29_999), &p),
            Admission::ProbesOut {
                retry_at: Time(30_000)
            }
        );
        assert!(b.admit(Time(30_000), &p));
        assert_eq!(
            b.state,
            BreakerState::HalfOpen {
                since: Time(30_000),
                admitted: 1,
                succeeded: 0
            }
        );
    }

    #[test]
    fn a_disabled_breaker_admits_everything() {
        let p = BreakerPolicy::off();
        let mut b = Breaker::default();
        for _ in 0..50 {
            b.record(Time(0), true, &p);
        }
        assert!(b.admit(Time(0), &p));
    }
}
