//! The retry budget: a token bucket shared by a client's calls that pays for retries and is
//! refilled by successes, after the AWS SDKs' retry quota and gRPC's retry throttling (A6).

use serde::{Deserialize, Serialize};

/// How the retry budget fills and drains. Defaults and sources in `docs/POLICY.md`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetPolicy {
    /// Tokens a fresh client holds, and the most it can hold. 0 turns retries after a
    /// provider fault off entirely.
    pub capacity: u32,
    /// Tokens a retry after a provider fault costs.
    pub retry_cost: u32,
    /// Tokens a retry after a timeout costs (a timeout holds the provider's capacity longer).
    pub timeout_retry_cost: u32,
    /// Tokens a success at the first attempt earns. A success at a retry gives that
    /// retry's cost back instead.
    pub success_reward: u32,
}

impl BudgetPolicy {
    /// A budget that never runs out: every retry costs nothing.
    pub fn unlimited() -> Self {
        BudgetPolicy {
            capacity: u32::MAX,
            retry_cost: 0,
            timeout_retry_cost: 0,
            success_reward: 0,
        }
    }
}

impl BudgetPolicy {
    /// The budget measured in `docs/SCOREBOARD.md` (after the AWS SDKs' retry quota, with a
    /// smaller capacity): 100 tokens, 5 per retry, 10 after a timeout, +1 per first-try
    /// success. It holds a many-clients overload to about 1.24× peak amplification but, as a
    /// denied retry ends its call, loses a third of those calls; so it is opt-in for now.
    pub fn aws_like() -> Self {
        BudgetPolicy {
            capacity: 100,
            retry_cost: 5,
            timeout_retry_cost: 10,
            success_reward: 1,
        }
    }
}

/// Off by default (unlimited): see [`BudgetPolicy::aws_like`] for why.
impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy::unlimited()
    }
}

/// The tokens left. Never below zero, never above the capacity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryBudget {
    balance: u32,
    capacity: u32,
}

impl RetryBudget {
    /// A full budget.
    pub fn new(policy: &BudgetPolicy) -> Self {
        RetryBudget {
            balance: policy.capacity,
            capacity: policy.capacity,
        }
    }

    /// Tokens left.
    pub fn balance(&self) -> u32 {
        self.balance
    }

    /// The most tokens the budget holds.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Whether a retry costing `cost` can be paid.
    pub fn can_pay(&self, cost: u32) -> bool {
        self.balance >= cost
    }

    /// Pays `cost` if the balance allows; returns whether it did.
    pub fn spend(&mut self, cost: u32) -> bool {
        match self.balance.checked_sub(cost) {
            Some(left) => {
                self.balance = left;
                true
            }
            None => false,
        }
    }

    /// Adds `tokens`, up to the capacity.
    pub fn earn(&mut self, tokens: u32) {
        self.balance = self.balance.saturating_add(tokens).min(self.capacity);
    }

    /// Takes a call's net change from `before` to `after`, kept within zero and the
    /// capacity.
    pub fn merge_call(&mut self, before: &RetryBudget, after: &RetryBudget) {
        let delta = i64::from(after.balance) - i64::from(before.balance);
        let merged = (i64::from(self.balance) + delta).clamp(0, i64::from(self.capacity));
        self.balance = u32::try_from(merged).unwrap_or(self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_aws_like_budget_pays_twenty_retries_and_then_refuses() {
        let policy = BudgetPolicy::aws_like();
        let mut b = RetryBudget::new(&policy);
        let paid = (0..100).take_while(|_| b.spend(policy.retry_cost)).count();
        assert_eq!(paid, 20);
        assert_eq!(b.balance(), 0);
        assert!(!b.can_pay(policy.retry_cost));
        // Five first-try successes pay for one retry again.
        for _ in 0..5 {
            b.earn(policy.success_reward);
        }
        assert!(b.spend(policy.retry_cost));
    }

    #[test]
    fn earning_stops_at_the_capacity() {
        let mut b = RetryBudget::new(&BudgetPolicy::aws_like());
        b.earn(1_000);
        assert_eq!(b.balance(), 100);
        // The default budget is unlimited: no retry ever costs anything.
        let unlimited = BudgetPolicy::default();
        let mut u = RetryBudget::new(&unlimited);
        assert!((0..1_000).all(|_| u.spend(unlimited.retry_cost)));
        assert_eq!(u.balance(), u32::MAX);
    }

    #[test]
    fn concurrent_calls_both_count_and_the_balance_never_goes_below_zero() {
        let policy = BudgetPolicy {
            capacity: 12,
            ..BudgetPolicy::default()
        };
        let before = RetryBudget::new(&policy);
        let mut shared = before;
        let mut a = before;
        let mut b = before;
        assert!(a.spend(5) && a.spend(5));
        assert!(b.spend(10));
        shared.merge_call(&before, &a);
        assert_eq!(shared.balance(), 2);
        shared.merge_call(&before, &b);
        assert_eq!(shared.balance(), 0);
        let mut c = shared;
        c.earn(1_000);
        shared.merge_call(
            &RetryBudget {
                balance: 0,
                ..before
            },
            &c,
        );
        assert_eq!(shared.balance(), 12);
    }
}
