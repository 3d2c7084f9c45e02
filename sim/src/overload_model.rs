//! The checker's own model of a client's retry budget and breakers (issue #14), written
//! from the policy's documented rules (`docs/POLICY.md`), not from relent's code: the
//! budget is a plain counter, each breaker a list of recent outcomes and a mode. The
//! checker feeds it the sends it observes and the world's ground truth for every answer.

use relent::{Policy, Reason, Time};
use std::collections::VecDeque;

/// Where the model puts one target's breaker.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Sends pass.
    Closed,
    /// No send before this time.
    Open(Time),
    /// A round of probes began at `start`; `sent` of them went out, `ok` came back well.
    HalfOpen {
        /// When the round began.
        start: Time,
        /// Probes sent in the round.
        sent: u32,
        /// Probes answered with a success.
        ok: u32,
    },
}

/// One target's breaker, as the model keeps it.
#[derive(Debug, PartialEq, Eq)]
pub struct BreakerModel {
    /// Its mode.
    pub mode: Mode,
    /// Outcomes since it last closed or opened, oldest first (`true`: a provider fault).
    pub recent: VecDeque<bool>,
    /// Provider faults in a row since it last closed or opened.
    pub run: u64,
    /// Openings since it last closed.
    pub openings: u64,
}

/// What the model says about a send to a target at some time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It may go.
    Pass,
    /// It may go as a probe.
    Probe,
    /// The breaker is open until the given time.
    Open(Time),
    /// Every probe of the round is out until the given time.
    ProbesOut(Time),
}

/// A client's budget and breakers, as the model keeps them.
#[derive(Debug, PartialEq, Eq)]
pub struct OverloadModel {
    /// Thousandths of a token left (the refill adds `refill_per_sec` of them per ms).
    pub milli: u64,
    /// The time the refill is counted up to.
    pub counted_to: Time,
    /// Thousandths of a token of first-try rewards that the floor income (the refill and
    /// the refunds) has not matched yet; the floor income pays these off before it adds
    /// to the balance, so the budget gains the larger of the two, not their sum.
    pub credit: u64,
    /// One breaker per target.
    pub breakers: Vec<BreakerModel>,
}

// Hand-written so that `clone_from` reuses the buffers: the runner copies the model
// between a client and its calls at every step.
impl Clone for BreakerModel {
    fn clone(&self) -> Self {
        BreakerModel {
            mode: self.mode,
            recent: self.recent.clone(),
            run: self.run,
            openings: self.openings,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.mode = source.mode;
        self.recent.clone_from(&source.recent);
        self.run = source.run;
        self.openings = source.openings;
    }
}

impl Clone for OverloadModel {
    fn clone(&self) -> Self {
        OverloadModel {
            milli: self.milli,
            counted_to: self.counted_to,
            credit: self.credit,
            breakers: self.breakers.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        self.milli = source.milli;
        self.counted_to = source.counted_to;
        self.credit = source.credit;
        self.breakers.clone_from(&source.breakers);
    }
}

/// Answers that count as the provider struggling (documented in `docs/POLICY.md`).
pub fn provider_fault(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Overloaded
            | Reason::ServerError
            | Reason::Timeout
            | Reason::ConnectionFailed
            | Reason::Unknown
            | Reason::UpstreamRateLimited
    )
}

/// Failures after which the next send is no retry in the budget's sense (a key's own
/// fault: a rotation, or the one retry of a rejected key).
pub fn free_after(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Success | Reason::KeyRejected | Reason::QuotaExhausted | Reason::PermissionDenied
    )
}

impl OverloadModel {
    /// A fresh client: a full budget, every breaker closed.
    pub fn new(policy: &Policy, targets: usize) -> Self {
        OverloadModel {
            milli: 1_000 * u64::from(policy.overload.budget.capacity),
            counted_to: Time::ZERO,
            credit: 0,
            breakers: (0..targets)
                .map(|_| BreakerModel {
                    mode: Mode::Closed,
                    recent: VecDeque::new(),
                    run: 0,
                    openings: 0,
                })
                .collect(),
        }
    }

    /// What a retry after `reason` costs.
    pub fn cost(policy: &Policy, reason: Reason) -> u64 {
        let b = &policy.overload.budget;
        u64::from(if reason == Reason::Timeout {
            b.timeout_retry_cost
        } else {
            b.retry_cost
        })
    }

    /// What target `t`'s breaker says to a send at `now`.
    pub fn verdict(&self, policy: &Policy, t: usize, now: Time) -> Verdict {
        let p = &policy.overload.breaker;
        let Some(b) = self.breakers.get(t).filter(|_| p.enabled) else {
            return Verdict::Pass;
        };
        match b.mode {
            Mode::Closed => Verdict::Pass,
            Mode::Open(until) if now < until => Verdict::Open(until),
            Mode::Open(_) => Verdict::Probe,
            Mode::HalfOpen { start, sent, .. } => {
                let round_end = Time(start.0.saturating_add(p.open_ms));
                if now >= round_end || sent < p.half_open_probes {
                    Verdict::Probe
                } else {
                    Verdict::ProbesOut(round_end)
                }
            }
        }
    }

    /// A send to target `t` at `now` went out (the caller checked the verdict).
    pub fn sent(&mut self, policy: &Policy, t: usize, now: Time) {
        let verdict = self.verdict(policy, t, now);
        let p = &policy.overload.breaker;
        let Some(b) = self.breakers.get_mut(t) else {
            return;
        };
        if verdict != Verdict::Probe {
            return;
        }
        b.mode = match b.mode {
            Mode::HalfOpen { start, sent, ok } if now.0 < start.0.saturating_add(p.open_ms) => {
                Mode::HalfOpen {
                    start,
                    sent: sent + 1,
                    ok,
                }
            }
            _ => Mode::HalfOpen {
                start: now,
                sent: 1,
                ok: 0,
            },
        };
    }

    /// Target `t` answered `reason` at `now`.
    pub fn answered(&mut self, policy: &Policy, t: usize, now: Time, reason: Reason) {
        let p = &policy.overload.breaker;
        if !p.enabled {
            return;
        }
        let Some(b) = self.breakers.get_mut(t) else {
            return;
        };
        let fault = provider_fault(reason);
        if !fault && reason != Reason::Success {
            return;
        }
        let open = |b: &mut BreakerModel| {
            b.openings += 1;
            let period = (p.open_ms.saturating_mul(b.openings)).min(p.max_open_ms.max(p.open_ms));
            b.mode = Mode::Open(Time(now.0.saturating_add(period)));
            b.recent.clear();
            b.run = 0;
        };
        match b.mode {
            Mode::Open(_) => {}
            Mode::HalfOpen { start, sent, ok } => {
                if fault {
                    open(b);
                } else if ok + 1 >= p.half_open_probes {
                    b.mode = Mode::Closed;
                    b.openings = 0;
                    b.recent.clear();
                    b.run = 0;
                } else {
                    b.mode = Mode::HalfOpen {
                        start,
                        sent,
                        ok: ok + 1,
                    };
                }
            }
            Mode::Closed => {
                let size = p.window.clamp(1, relent::overload::MAX_WINDOW) as usize;
                b.recent.push_back(fault);
                while b.recent.len() > size {
                    b.recent.pop_front();
                }
                b.run = if fault { b.run + 1 } else { 0 };
                let run = b.run;
                let faults = b.recent.iter().filter(|f| **f).count() as u64;
                let seen = b.recent.len() as u64;
                let min = u64::from(p.min_outcomes).clamp(1, size as u64);
                let by_run = p.consecutive_failures > 0 && run >= u64::from(p.consecutive_failures);
                let by_rate = p.failure_rate_percent > 0
                    && seen >= min
                    && faults * 100 >= u64::from(p.failure_rate_percent) * seen;
                if fault && (by_run || by_rate) {
                    open(b);
                }
            }
        }
    }

    /// The budget's ceiling, in thousandths of a token.
    fn ceiling(policy: &Policy) -> u64 {
        1_000 * u64::from(policy.overload.budget.capacity)
    }

    /// The most credit kept: ten seconds of refill, at most the capacity (documented in
    /// `docs/POLICY.md`).
    fn credit_ceiling(policy: &Policy) -> u64 {
        let ten_seconds = 10 * 1_000 * u64::from(policy.overload.budget.refill_per_sec);
        ten_seconds.min(Self::ceiling(policy))
    }

    /// The (balance, credit) at `now`, in thousandths of a token: the refill since the last
    /// count (`refill_per_sec` thousandths a millisecond) first pays off the credit, the
    /// rest goes to the balance, never past the capacity.
    fn state_at(&self, policy: &Policy, now: Time) -> (u64, u64) {
        let elapsed_ms = now.0.saturating_sub(self.counted_to.0);
        let gained = elapsed_ms.saturating_mul(u64::from(policy.overload.budget.refill_per_sec));
        let to_credit = gained.min(self.credit);
        let milli = self
            .milli
            .saturating_add(gained - to_credit)
            .min(Self::ceiling(policy));
        (milli, self.credit - to_credit)
    }

    /// The thousandths of a token the budget holds at `now`.
    fn milli_at(&self, policy: &Policy, now: Time) -> u64 {
        self.state_at(policy, now).0
    }

    /// Counts the refill up to `now`.
    pub fn refill_to(&mut self, policy: &Policy, now: Time) {
        if now > self.counted_to {
            (self.milli, self.credit) = self.state_at(policy, now);
            self.counted_to = now;
        }
    }

    /// Whole tokens left at `now`.
    pub fn tokens_at(&self, policy: &Policy, now: Time) -> u64 {
        self.milli_at(policy, now) / 1_000
    }

    /// Whether the budget holds `cost` tokens at `now`.
    pub fn affords(&self, policy: &Policy, now: Time, cost: u64) -> bool {
        self.milli_at(policy, now) >= cost * 1_000
    }

    /// The first millisecond at or after `now` at which the refill alone makes the budget
    /// hold `cost` tokens; `None` when it never does.
    pub fn affords_from(&self, policy: &Policy, now: Time, cost: u64) -> Option<Time> {
        let (held, credit) = self.state_at(policy, now);
        let wanted = cost * 1_000;
        if held >= wanted {
            return Some(now);
        }
        let rate = u64::from(policy.overload.budget.refill_per_sec);
        if rate == 0 || wanted > Self::ceiling(policy) {
            return None;
        }
        // The smallest whole number of milliseconds whose refill pays off the credit and
        // then covers the shortfall.
        let short = wanted - held + credit;
        let ms = short / rate + u64::from(short % rate != 0);
        Some(Time(now.0 + ms))
    }

    /// Pays `cost` tokens at `now` (the caller checked it can).
    pub fn pay(&mut self, policy: &Policy, now: Time, cost: u64) {
        self.refill_to(policy, now);
        self.milli = self.milli.saturating_sub(cost * 1_000);
    }

    /// A first-try success at `now`: `success_reward` tokens to the balance (up to the
    /// capacity) and to the credit (up to its ceiling).
    pub fn rewarded(&mut self, policy: &Policy, now: Time) {
        self.refill_to(policy, now);
        let reward = 1_000 * u64::from(policy.overload.budget.success_reward);
        self.milli = (self.milli + reward).min(Self::ceiling(policy));
        self.credit = (self.credit + reward).min(Self::credit_ceiling(policy));
    }

    /// A success at `now` of a retry that cost `charged` tokens: `retry_refund_percent` of
    /// that back, which first pays off the credit.
    pub fn refunded(&mut self, policy: &Policy, now: Time, charged: u64) {
        self.refill_to(policy, now);
        let percent = u64::from(policy.overload.budget.retry_refund_percent.min(100));
        let refund = charged * 1_000 * percent / 100;
        let to_credit = refund.min(self.credit);
        self.credit -= to_credit;
        self.milli = (self.milli + refund - to_credit).min(Self::ceiling(policy));
    }
}
