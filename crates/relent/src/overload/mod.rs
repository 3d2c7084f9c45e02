//! Overload control shared by the calls of one client (issue #14): a retry budget and a
//! circuit breaker per target.
//!
//! Both are small values, like the [`Pool`](crate::Pool): the driver keeps one
//! [`Overload`] per client beside the pool, hands a copy to each machine
//! ([`RetryMachine::with_overload`](crate::RetryMachine::with_overload)), refreshes the
//! machine's copy before each input ([`RetryMachine::sync_overload`](crate::RetryMachine::sync_overload))
//! and folds what the call did back in after each step ([`Overload::merge_call`]), exactly as
//! it does with [`Pool::merge_call`](crate::Pool::merge_call). Neither reads a clock: the budget
//! moves only with sends and answers, the breaker's open period is measured in the `now`
//! the machine is given, so a run replays from its inputs.
//!
//! Deciding costs no allocation: the budget is one integer, a breaker a few integers and a
//! 128-bit outcome window, and the machine looks up only the target it is about to send to.

mod breaker;
mod budget;

pub use breaker::{Admission, Breaker, BreakerPolicy, BreakerState, MAX_WINDOW};
pub use budget::{BudgetPolicy, RetryBudget, CREDIT_WINDOW_MS};

use crate::time::Time;
use serde::{Deserialize, Serialize};

/// The overload settings of a policy: the retry budget and the breaker. Every default and
/// its source is in `docs/POLICY.md`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OverloadPolicy {
    /// The retry budget shared by a client's calls.
    pub budget: BudgetPolicy,
    /// The circuit breaker of each target.
    pub breaker: BreakerPolicy,
}

/// A client's overload state: its retry budget and one breaker per target of the pool (in
/// the pool's target order).
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overload {
    /// The retry budget.
    pub budget: RetryBudget,
    /// One breaker per target.
    pub breakers: Vec<Breaker>,
}

impl Clone for Overload {
    fn clone(&self) -> Self {
        Overload {
            budget: self.budget,
            breakers: self.breakers.clone(),
        }
    }

    // Reuses the breakers' buffer: a driver refreshes a running call's copy before every
    // input (`RetryMachine::sync_overload`).
    fn clone_from(&mut self, source: &Self) {
        self.budget = source.budget;
        self.breakers.clone_from(&source.breakers);
    }
}

impl Overload {
    /// A fresh client's state for `targets` targets: a full budget, every breaker closed.
    pub fn new(policy: &OverloadPolicy, targets: usize) -> Self {
        Overload {
            budget: RetryBudget::new(&policy.budget),
            breakers: vec![Breaker::default(); targets],
        }
    }

    /// The breaker of target `t` (a closed one if the pool has grown past this state).
    pub fn breaker(&self, t: usize) -> Breaker {
        self.breakers.get(t).copied().unwrap_or_default()
    }

    /// Folds what one call did into this state, which concurrent calls may have changed
    /// meanwhile: `before` is the state the call last took from this one, `after` the
    /// call's state now.
    ///
    /// The budget takes the call's net change (what it spent, what it earned), kept within
    /// zero and the capacity, so two calls that spent from one balance both count. A
    /// breaker the call changed replaces this one when no one else changed it since;
    /// otherwise the more restrictive of the two stays (open beats half-open beats closed,
    /// a later reopening beats an earlier one) and the half-open probes both admitted are
    /// both counted.
    pub fn merge_call(&mut self, before: &Overload, after: &Overload) {
        self.budget.merge_call(&before.budget, &after.budget);
        for (t, learned) in after.breakers.iter().enumerate() {
            let started = before.breaker(t);
            if *learned == started {
                continue;
            }
            match self.breakers.get_mut(t) {
                Some(shared) if *shared == started => *shared = *learned,
                Some(shared) => *shared = shared.merge(started, *learned),
                None => {}
            }
        }
    }

    /// The earliest time target `t` admits a send again, `None` when it does now.
    pub fn blocked_until(&self, t: usize, now: Time, policy: &BreakerPolicy) -> Option<Time> {
        match self.breaker(t).admission(now, policy) {
            Admission::Closed | Admission::Probe => None,
            Admission::Open { until } => Some(until),
            Admission::ProbesOut { retry_at } => Some(retry_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overload::BreakerState;

    #[test]
    fn a_breaker_opened_by_one_call_stays_open_when_another_merges_a_success() {
        let policy = OverloadPolicy::default();
        let before = Overload::new(&policy, 2);
        let mut shared = before.clone();
        let mut a = before.clone();
        a.breakers[1].state = BreakerState::Open {
            until: Time(30_000),
        };
        shared.merge_call(&before, &a);
        let mut b = before.clone();
        b.breakers[1].consecutive = 0;
        b.breakers[1].outcomes = 1;
        shared.merge_call(&before, &b);
        assert_eq!(
            shared.breaker(1).state,
            BreakerState::Open {
                until: Time(30_000)
            }
        );
        // A sync reuses the buffer and copies everything.
        let mut copy = Overload::new(&policy, 2);
        copy.clone_from(&shared);
        assert_eq!(copy, shared);
    }
}
