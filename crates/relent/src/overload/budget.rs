//! The retry budget: a token bucket shared by a client's calls that pays for retries and is
//! refilled by successes, after the AWS SDKs' retry quota and gRPC's retry throttling (A6).

use crate::time::Time;
use serde::{Deserialize, Serialize};

/// How the retry budget fills and drains. Defaults and sources in `docs/POLICY.md`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetPolicy {
    /// Tokens a fresh client holds, and the most it can hold. 0 with no refill turns
    /// retries after a provider fault off entirely.
    pub capacity: u32,
    /// Tokens a retry after a provider fault costs.
    pub retry_cost: u32,
    /// Tokens a retry after a timeout costs (a timeout holds the provider's capacity longer).
    pub timeout_retry_cost: u32,
    /// Tokens a success at the first attempt earns. A success at a retry gives back
    /// `retry_refund_percent` of that retry's cost instead.
    pub success_reward: u32,
    /// The share of a paid retry's cost, in percent, that its success gives back (100: all
    /// of it, the AWS SDKs' rule). Like the refill, the refund is part of the budget's
    /// floor: it adds only what the first-try successes have not already brought in (see
    /// [`RetryBudget`]).
    pub retry_refund_percent: u32,
    /// Tokens the budget gains per second of (the machine's) time, whatever the traffic: the
    /// reserve that lets a client with no successes retry now and then (Finagle's and
    /// tower's `min_retries_per_sec`). A retry the budget cannot pay waits for this refill
    /// when it comes before the deadline; with 0, such a retry ends the call.
    pub refill_per_sec: u32,
}

impl BudgetPolicy {
    /// A budget that never runs out: every retry costs nothing.
    pub fn unlimited() -> Self {
        BudgetPolicy {
            capacity: u32::MAX,
            retry_cost: 0,
            timeout_retry_cost: 0,
            success_reward: 0,
            retry_refund_percent: 0,
            refill_per_sec: 0,
        }
    }

    /// The AWS SDKs' retry quota with a smaller capacity and no refill: 100 tokens, 5 per
    /// retry, 10 after a timeout, +1 per first-try success. A denied retry ends its call.
    pub fn aws_like() -> Self {
        BudgetPolicy {
            capacity: 100,
            retry_cost: 5,
            timeout_retry_cost: 10,
            success_reward: 1,
            retry_refund_percent: 100,
            refill_per_sec: 0,
        }
    }
}

/// The AWS SDKs' costs and first-try reward (5 a retry, 10 after a timeout, +1 per
/// first-try success) in a bucket of 30 tokens that refills by 2 a second; a retried
/// success gives back 80 % of its cost, and the refill and refunds are a floor beside the
/// first-try rewards (see [`RetryBudget`]). Sources and the measurements behind the
/// numbers in `docs/POLICY.md`.
impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy {
            capacity: 30,
            retry_cost: 5,
            timeout_retry_cost: 10,
            success_reward: 1,
            retry_refund_percent: 80,
            refill_per_sec: 2,
        }
    }
}

impl BudgetPolicy {
    /// Milli-tokens a success at a retry that cost `charged` tokens gives back.
    pub fn refund_milli(&self, charged: u32) -> u64 {
        u64::from(charged) * u64::from(self.retry_refund_percent.min(100)) * MILLI / 100
    }
}

/// Thousandths of a token per token: the balance is kept in milli-tokens so that a refill
/// of `r` tokens a second is exactly `r` milli-tokens a millisecond.
const MILLI: u64 = 1_000;

/// The first-try rewards the floor income pays off are those of at most this long's refill.
pub const CREDIT_WINDOW_MS: u64 = 10_000;

/// The tokens left. Never below zero, never above the capacity.
///
/// Two kinds of income fill it. First-try successes earn `success_reward` each: the ratio
/// rule (at 1 token a success and 5 a retry, retries are at most 20 % of first attempts).
/// The time refill and the refunds of retried successes are the floor: they add only what
/// the first-try successes have not already brought in, so over a stretch of time the
/// budget gains the larger of the two, not their sum (Envoy's retry budget allows the
/// larger of `budget_percent` of the requests and `min_retry_concurrency`). The
/// first-try rewards not yet matched by floor income are kept as a `credit` (at most
/// [`CREDIT_WINDOW_MS`] of refill, and at most the capacity), which the floor income pays
/// off before it adds to the balance.
///
/// The refill is settled lazily: [`RetryBudget::settle`] adds what accrued since the last
/// settlement. Accrual is linear, the credit is paid off first and the cap applies at every
/// settlement, so settling at any sequence of times gives the same balance as settling
/// once.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryBudget {
    /// Milli-tokens left.
    milli: u64,
    capacity: u32,
    /// Tokens gained per second (the policy's `refill_per_sec`).
    refill_per_sec: u32,
    /// The time up to which the refill is counted in `milli`.
    as_of: Time,
    /// Milli-tokens this value has gained from the refill, ever (to tell a call's spending
    /// from its refill when merging).
    refilled: u64,
    /// Milli-tokens of first-try rewards that the floor income (refill, refunds) has not
    /// matched yet; at most the credit cap.
    #[serde(default)]
    credit: u64,
    /// Milli-tokens of credit the refill has paid off, ever (for merging, like `refilled`).
    #[serde(default)]
    absorbed: u64,
}

impl RetryBudget {
    /// A full budget.
    pub fn new(policy: &BudgetPolicy) -> Self {
        RetryBudget {
            milli: u64::from(policy.capacity) * MILLI,
            capacity: policy.capacity,
            refill_per_sec: policy.refill_per_sec,
            as_of: Time::ZERO,
            refilled: 0,
            credit: 0,
            absorbed: 0,
        }
    }

    /// Whole tokens left (as last settled).
    pub fn balance(&self) -> u32 {
        u32::try_from(self.milli / MILLI).unwrap_or(u32::MAX)
    }

    /// The most tokens the budget holds.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    fn cap_milli(&self) -> u64 {
        u64::from(self.capacity) * MILLI
    }

    /// Adds the refill accrued up to `now` (nothing when `now` is not later than the last
    /// settlement).
    pub fn settle(&mut self, now: Time) {
        if now <= self.as_of {
            return;
        }
        let mut accrued = (now.0 - self.as_of.0).saturating_mul(u64::from(self.refill_per_sec));
        let paid_off = accrued.min(self.credit);
        self.credit -= paid_off;
        self.absorbed = self.absorbed.saturating_add(paid_off);
        accrued -= paid_off;
        let before = self.milli;
        self.milli = self.milli.saturating_add(accrued).min(self.cap_milli());
        self.refilled = self.refilled.saturating_add(self.milli - before);
        self.as_of = now;
    }

    /// Whether a retry costing `cost` tokens can be paid at `now`.
    pub fn can_pay(&self, now: Time, cost: u32) -> bool {
        let mut settled = *self;
        settled.settle(now);
        settled.milli >= u64::from(cost) * MILLI
    }

    /// The earliest time at or after `now` when the refill alone pays for `cost`; `None`
    /// when it never does (no refill, or a cost above the capacity).
    pub fn ready_at(&self, now: Time, cost: u32) -> Option<Time> {
        let mut settled = *self;
        settled.settle(now);
        let need = (u64::from(cost) * MILLI).checked_sub(settled.milli);
        match need {
            None | Some(0) => Some(now),
            Some(_) if cost > self.capacity || self.refill_per_sec == 0 => None,
            Some(need) => {
                // The refill counts from `as_of`, which an adopted debt may put after `now`.
                // The refill pays off the credit before it adds to the balance.
                let rate = u64::from(self.refill_per_sec);
                let from = settled.as_of.max(now);
                let wait = need.saturating_add(settled.credit).div_ceil(rate);
                Some(Time(from.0.saturating_add(wait)))
            }
        }
    }

    /// Settles to `now` and pays `cost` if the balance allows; returns whether it did.
    pub fn spend(&mut self, now: Time, cost: u32) -> bool {
        self.settle(now);
        match self.milli.checked_sub(u64::from(cost) * MILLI) {
            Some(left) => {
                self.milli = left;
                true
            }
            None => false,
        }
    }

    /// A first-try success's reward: adds `tokens` to the balance (up to the capacity) and
    /// to the credit that the floor income pays off before it adds anything.
    pub fn earn(&mut self, tokens: u32) {
        let milli = u64::from(tokens) * MILLI;
        self.milli = self.milli.saturating_add(milli).min(self.cap_milli());
        self.credit = self.credit.saturating_add(milli).min(self.credit_cap());
    }

    /// The most credit the budget keeps: ten seconds of refill (tower's and Finagle's retry
    /// budgets count deposits over a 10 s window), at most the capacity.
    fn credit_cap(&self) -> u64 {
        (u64::from(self.refill_per_sec) * CREDIT_WINDOW_MS).min(self.cap_milli())
    }

    /// A retried success's refund, `milli` milli-tokens of floor income: it pays off the
    /// credit first and adds the rest to the balance (up to the capacity).
    pub fn refund(&mut self, milli: u64) {
        let paid_off = milli.min(self.credit);
        self.credit -= paid_off;
        self.milli = self
            .milli
            .saturating_add(milli - paid_off)
            .min(self.cap_milli());
    }

    /// Milli-tokens of first-try rewards the floor income has not matched yet.
    pub fn credit(&self) -> u64 {
        self.credit
    }

    /// Takes a call's net change from `before` to `after` (what it spent and earned, not
    /// its refill, which this value counts itself up to the later of the two times), kept
    /// within zero and the capacity.
    pub fn merge_call(&mut self, before: &RetryBudget, after: &RetryBudget) {
        self.settle(after.as_of);
        let delta = i128::from(RetryBudget::call_change(before, after));
        let merged = (i128::from(self.milli) + delta).clamp(0, i128::from(self.cap_milli()));
        self.milli = u64::try_from(merged).unwrap_or(0);
        // The credit likewise: what the call earned and paid off with refunds, not what its
        // refill paid off (this value's own refill does that).
        let credit = i128::from(after.credit) - i128::from(before.credit)
            + (i128::from(after.absorbed) - i128::from(before.absorbed));
        let merged = (i128::from(self.credit) + credit).clamp(0, i128::from(self.credit_cap()));
        self.credit = u64::try_from(merged).unwrap_or(0);
    }

    /// Milli-tokens (thousandths of a token) left, as last settled.
    pub fn milli(&self) -> u64 {
        self.milli
    }

    /// A call's net change from `before` to `after` in milli-tokens: what it earned less
    /// what it spent, not counting the refill (what [`RetryBudget::merge_call`] applies,
    /// before the clamp). A fleet store sums these across processes.
    pub fn call_change(before: &RetryBudget, after: &RetryBudget) -> i64 {
        let refill = i128::from(after.refilled) - i128::from(before.refilled);
        let delta = i128::from(after.milli) - i128::from(before.milli) - refill;
        i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX })
    }

    /// Takes a balance learned elsewhere (a fleet's shared budget, which counts its refill
    /// itself): `milli` milli-tokens as of `now`, at most the capacity. The refill this
    /// value accrued locally up to `now` is dropped; from `now` on it refills as usual. A
    /// negative `milli` is a debt: the balance is zero and the refill starts only once it
    /// would have paid the debt back.
    pub fn adopt(&mut self, now: Time, milli: i64) {
        self.settle(now);
        self.as_of = now;
        self.milli = milli.max(0).unsigned_abs().min(self.cap_milli());
        if milli < 0 && self.refill_per_sec > 0 {
            let wait = milli
                .unsigned_abs()
                .div_ceil(u64::from(self.refill_per_sec));
            self.as_of = Time(now.0.saturating_add(wait));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_aws_like_budget_pays_twenty_retries_and_then_refuses() {
        let policy = BudgetPolicy::aws_like();
        let mut b = RetryBudget::new(&policy);
        let now = Time(1_000_000);
        let paid = (0..100)
            .take_while(|_| b.spend(now, policy.retry_cost))
            .count();
        assert_eq!(paid, 20);
        assert_eq!(b.balance(), 0);
        assert!(!b.can_pay(now, policy.retry_cost));
        // No refill: time alone never pays.
        assert_eq!(b.ready_at(now, policy.retry_cost), None);
        // Five first-try successes pay for one retry again.
        for _ in 0..5 {
            b.earn(policy.success_reward);
        }
        assert!(b.spend(now, policy.retry_cost));
    }

    #[test]
    fn earning_stops_at_the_capacity() {
        let mut b = RetryBudget::new(&BudgetPolicy::aws_like());
        b.earn(1_000);
        assert_eq!(b.balance(), 100);
        // The unlimited budget: no retry ever costs anything.
        let unlimited = BudgetPolicy::unlimited();
        let mut u = RetryBudget::new(&unlimited);
        assert!((0..1_000).all(|i| u.spend(Time(i), unlimited.retry_cost)));
        assert_eq!(u.balance(), u32::MAX);
    }

    #[test]
    fn concurrent_calls_both_count_and_the_balance_never_goes_below_zero() {
        let policy = BudgetPolicy {
            capacity: 12,
            ..BudgetPolicy::aws_like()
        };
        let t = Time(5);
        let before = RetryBudget::new(&policy);
        let mut shared = before;
        let mut a = before;
        let mut b = before;
        assert!(a.spend(t, 5) && a.spend(t, 5));
        assert!(b.spend(t, 10));
        shared.merge_call(&before, &a);
        assert_eq!(shared.balance(), 2);
        shared.merge_call(&before, &b);
        assert_eq!(shared.balance(), 0);
        let mut c = shared;
        c.earn(1_000);
        let zero = shared;
        shared.merge_call(&zero, &c);
        assert_eq!(shared.balance(), 12);
    }

    fn refilling() -> BudgetPolicy {
        BudgetPolicy {
            capacity: 10,
            retry_cost: 5,
            timeout_retry_cost: 10,
            success_reward: 1,
            retry_refund_percent: 100,
            refill_per_sec: 2,
        }
    }

    #[test]
    fn the_refill_pays_a_retry_after_cost_over_rate_seconds() {
        let p = refilling();
        let mut b = RetryBudget::new(&p);
        assert!(b.spend(Time(0), 10));
        // 5 tokens at 2 a second: 2.5 s.
        assert_eq!(b.ready_at(Time(0), 5), Some(Time(2_500)));
        assert!(!b.can_pay(Time(2_499), 5));
        assert!(b.can_pay(Time(2_500), 5));
        // Half a second later, 1 token has accrued: 2 s to go.
        assert_eq!(b.ready_at(Time(500), 5), Some(Time(2_500)));
        // A cost above the capacity is never paid.
        assert_eq!(b.ready_at(Time(0), 11), None);
        // The refill stops at the capacity.
        b.settle(Time(3_600_000));
        assert_eq!(b.balance(), 10);
    }

    #[test]
    fn settling_often_or_once_gives_the_same_balance() {
        let p = refilling();
        let mut often = RetryBudget::new(&p);
        let mut once = often;
        assert!(often.spend(Time(0), 10) && once.spend(Time(0), 10));
        for t in (0..=7_000).step_by(333) {
            often.settle(Time(t));
        }
        often.settle(Time(7_000));
        once.settle(Time(7_000));
        assert_eq!(often.balance(), once.balance());
        assert_eq!(often.balance(), 10);
    }

    #[test]
    fn a_calls_change_leaves_out_the_refill_and_an_adopted_balance_refills_from_then() {
        let p = refilling();
        let before = RetryBudget::new(&p);
        let mut after = before;
        assert!(after.spend(Time(0), 10));
        after.settle(Time(1_000)); // +2 tokens of refill, not the call's doing
        after.earn(1);
        assert_eq!(RetryBudget::call_change(&before, &after), -9_000);
        let mut b = before;
        b.adopt(Time(1_000), 3_500);
        assert_eq!(b.milli(), 3_500);
        b.settle(Time(1_500));
        assert_eq!(b.milli(), 4_500);
        b.adopt(Time(1_500), 1_000_000);
        assert_eq!(b.balance(), 10, "never above the capacity");
        // A debt of 3 tokens at 2 a second: nothing for 1.5 s, then the refill.
        b.adopt(Time(2_000), -3_000);
        assert_eq!(b.milli(), 0);
        assert!(!b.can_pay(Time(3_499), 1));
        assert_eq!(b.ready_at(Time(2_000), 1), Some(Time(4_000)));
        b.settle(Time(4_000));
        assert_eq!(b.milli(), 1_000);
    }

    #[test]
    fn two_calls_refilling_over_the_same_second_add_one_seconds_refill() {
        let p = refilling();
        let mut shared = RetryBudget::new(&p);
        assert!(shared.spend(Time(0), 10));
        let before = shared;
        // Both calls see 1 s pass (2 tokens) and spend nothing.
        let mut a = before;
        let mut b = before;
        a.settle(Time(1_000));
        b.settle(Time(1_000));
        shared.merge_call(&before, &a);
        shared.merge_call(&before, &b);
        assert_eq!(shared.balance(), 2, "the second counted once, not twice");
        // One of them then spends what accrued: the client is back at zero.
        let before = shared;
        let mut c = before;
        assert!(c.spend(Time(1_000), 2));
        shared.merge_call(&before, &c);
        assert_eq!(shared.balance(), 0);
    }

    #[test]
    fn the_refill_and_refunds_add_only_what_first_try_successes_have_not_brought() {
        // The default: 2 tokens a second of refill, a retried success gives back 4 of 5.
        let p = BudgetPolicy::default();
        let mut b = RetryBudget::new(&p);
        assert!((0..6).all(|_| b.spend(Time(0), 5)));
        assert_eq!(b.milli(), 0);
        // Ten first-try successes in the first second: 10 tokens, and 10 of credit.
        for _ in 0..10 {
            b.earn(1);
        }
        assert_eq!((b.milli(), b.credit()), (10_000, 10_000));
        // That second's refill (2 tokens) and a refund (4) pay off credit, adding nothing.
        b.settle(Time(1_000));
        b.refund(p.refund_milli(5));
        assert_eq!((b.milli(), b.credit()), (10_000, 4_000));
        // With no first-try successes the floor adds: 2 s of refill pays off the last 4.
        b.settle(Time(3_000));
        assert_eq!((b.milli(), b.credit()), (10_000, 0));
        b.refund(p.refund_milli(5));
        assert_eq!(b.milli(), 14_000);
        // The credit is at most ten seconds of refill.
        for _ in 0..100 {
            b.earn(1);
        }
        assert_eq!(b.credit(), 20_000);
        assert_eq!(b.balance(), 30);
    }

    #[test]
    fn a_wait_for_the_refill_counts_the_credit_it_pays_off_first() {
        let p = BudgetPolicy::default();
        let mut b = RetryBudget::new(&p);
        assert!((0..6).all(|_| b.spend(Time(0), 5)));
        b.earn(3);
        // 2 tokens short, 3 of credit: 5 tokens of refill at 2 a second.
        assert_eq!(b.ready_at(Time(0), 5), Some(Time(2_500)));
        assert!(!b.can_pay(Time(2_499), 5));
        assert!(b.can_pay(Time(2_500), 5));
        let mut often = b;
        for t in (0..=4_000).step_by(77) {
            often.settle(Time(t));
        }
        often.settle(Time(4_000));
        b.settle(Time(4_000));
        assert_eq!((often.milli(), often.credit()), (b.milli(), b.credit()));
    }

    #[test]
    fn concurrent_calls_merge_the_credit_by_net_change_and_the_refill_once() {
        let p = BudgetPolicy::default();
        let mut shared = RetryBudget::new(&p);
        assert!((0..6).all(|_| shared.spend(Time(0), 5)));
        let before = shared;
        let mut a = before;
        let mut b = before;
        a.earn(1);
        a.earn(1);
        b.earn(1);
        shared.merge_call(&before, &a);
        shared.merge_call(&before, &b);
        assert_eq!((shared.milli(), shared.credit()), (3_000, 3_000));
        // Both calls see the same second pass: the client's refill pays off 2 of its
        // credit once, and a refund in one call pays off the rest.
        let before = shared;
        let mut a = before;
        let mut b = before;
        a.settle(Time(1_000));
        b.settle(Time(1_000));
        b.refund(1_000);
        shared.merge_call(&before, &a);
        shared.merge_call(&before, &b);
        assert_eq!((shared.milli(), shared.credit()), (3_000, 0));
    }
}
