//! Overload control in the machine (issue #14): the target's circuit breaker and the
//! client's retry budget, consulted before every send, and fed every answer. The state
//! itself lives in [`crate::overload`]; this file holds the machine's two call sites'
//! logic so that the behaviour table in `decide.rs` stays as it is.

use super::decide::{Connection, Context};
use super::{AbortReason, Resume, RetryMachine, SleepReason};
use crate::classify::Reason;
use crate::overload::Admission;
use crate::pool::{KeyId, KeyRef};
use crate::time::Time;

/// Answers that say the provider is struggling: they count against its breaker, and a
/// retry after one spends the retry budget (as does a retry after a rate limit).
pub(crate) fn provider_fault(reason: Reason) -> bool {
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

impl RetryMachine {
    /// Before a send with `key` of target `t`: may it go? When the target's breaker is
    /// open the call falls back, waits for the breaker, or ends `circuit_open`; when the
    /// send is a retry the budget cannot pay for, it ends `retry_budget_exhausted`.
    /// Returns true (having counted a probe and paid) when the send may go.
    pub(super) fn overload_gate(
        &mut self,
        now: Time,
        t: usize,
        key: KeyId,
        connection: Connection,
        from: Option<KeyRef>,
        why: Reason,
    ) -> bool {
        let policy = self.policy.overload;
        match self.overload.breaker(t).admission(now, &policy.breaker) {
            Admission::Closed | Admission::Probe => {}
            Admission::Open { until } | Admission::ProbesOut { retry_at: until } => {
                self.breaker_blocked(now, t, key, connection, from, why, until);
                return false;
            }
        }
        let cost = self.retry_cost(t, why);
        if !self.overload.budget.can_pay(now, cost) {
            let at = from.unwrap_or(KeyRef { target: t, key });
            let resume = Resume {
                target: t,
                prefer: Some(key),
                connection,
                from: from.filter(|f| f.target == t),
                why,
            };
            self.budget_denied(now, at, why, resume);
            return false;
        }
        if let Some(breaker) = self.overload.breakers.get_mut(t) {
            breaker.admit(now, &policy.breaker);
        }
        self.overload.budget.spend(now, cost);
        self.charged = cost;
        true
    }

    /// Whether target `t`'s breaker admits no send at `now`.
    pub(super) fn breaker_open(&self, now: Time, t: usize) -> bool {
        self.overload
            .blocked_until(t, now, &self.policy.overload.breaker)
            .is_some()
    }

    /// Whether the budget can pay at `now` for a retry on target `t` (the call's current
    /// one) after `why`.
    pub(super) fn budget_allows(&self, now: Time, t: usize, why: Reason) -> bool {
        self.overload.budget.can_pay(now, self.retry_cost(t, why))
    }

    /// When the budget's refill pays for a retry on target `t` after `why`, waiting from
    /// `from` (`from` itself when it already can): `None` when that is not before the
    /// deadline, or never.
    pub(super) fn budget_ready(&self, from: Time, t: usize, why: Reason) -> Option<Time> {
        self.overload
            .budget
            .ready_at(from, self.retry_cost(t, why))
            .filter(|ready| *ready < self.deadline)
    }

    /// The budget cannot pay at `now` for a retry after `why` at `at`: a fallback (which is
    /// free) if another target can take the call; else a wait for the budget's refill
    /// when it pays before the deadline (resuming with `resume`); else the call ends
    /// `retry_budget_exhausted`.
    pub(super) fn budget_denied(&mut self, now: Time, at: KeyRef, why: Reason, resume: Resume) {
        if self.fallback(now, at, why, Context::Any) {
            return;
        }
        match self.budget_ready(now, resume.target, why) {
            Some(ready) if self.can_send_more() => {
                self.sleep(now, ready, SleepReason::RetryBudget { after: why }, resume);
            }
            _ => self.abort(now, AbortReason::RetryBudgetExhausted, None),
        }
    }

    /// What a send to target `t` after `why` costs the retry budget: nothing for the
    /// call's first send, a fallback to another target, or a rotation after a key's own
    /// fault; otherwise a retry's cost (a timeout's, after a timeout).
    pub(super) fn retry_cost(&self, t: usize, why: Reason) -> u32 {
        let budget = &self.policy.overload.budget;
        let key_fault = matches!(
            why,
            Reason::Success
                | Reason::KeyRejected
                | Reason::QuotaExhausted
                | Reason::PermissionDenied
        );
        // The first send to a target (the call's first, or a fallback's) is free, whatever
        // happened in between (a wait for the target's breaker, say).
        let first_here = self.attempts == 0 || self.target_attempts == 0 || t != self.target;
        if first_here || key_fault {
            0
        } else if why == Reason::Timeout {
            budget.timeout_retry_cost
        } else {
            budget.retry_cost
        }
    }

    /// The breaker of target `t` does not admit a send before `until`: fall back to a later
    /// target, else wait for the breaker if the send limits and the deadline allow, else
    /// end `circuit_open`.
    #[allow(clippy::too_many_arguments)]
    fn breaker_blocked(
        &mut self,
        now: Time,
        t: usize,
        key: KeyId,
        connection: Connection,
        from: Option<KeyRef>,
        why: Reason,
        until: Time,
    ) {
        let at = from.unwrap_or(KeyRef { target: t, key });
        let wanted = if why == Reason::ContextOverflow {
            Context::Larger
        } else {
            Context::Any
        };
        if self.fallback(now, at, why, wanted) {
            return;
        }
        // A wait for the breaker is no retry (nothing was sent), so it does not count
        // against the transient retries; the deadline bounds it, and every such wait ends
        // when the breaker admits a send unless another call reopened it meanwhile.
        let may_wait = until < self.deadline
            && self.attempts < self.policy.max_attempts
            && self.target_attempts < self.policy.max_attempts_per_target;
        if !may_wait {
            return self.abort(now, AbortReason::CircuitOpen, Some(until));
        }
        // The wait belongs to target `t`: when it ends, the call decides again there (a
        // fallback that led here is not undone by a key of the earlier target).
        let resume = Resume {
            target: t,
            prefer: Some(key),
            connection,
            from: from.filter(|f| f.target == t),
            why,
        };
        // Labelled as a backoff after overload: the breaker opened on the provider's faults.
        let reason = SleepReason::Backoff {
            after: Reason::Overloaded,
        };
        self.sleep(now, until, reason, resume);
    }

    /// After an answer from target `t`: the breaker learns whether the provider is
    /// struggling, and a success refills the budget (the first-try reward, or a share of the
    /// retry's own cost back).
    pub(super) fn record_outcome(&mut self, now: Time, t: usize, reason: Reason) {
        let policy = self.policy.overload;
        let charged = std::mem::take(&mut self.charged);
        let breaker = self.overload.breakers.get_mut(t);
        if reason == Reason::Success {
            // Settled first: the refill up to now pays off the credit as it stood.
            self.overload.budget.settle(now);
            if charged > 0 {
                let refund = policy.budget.refund_milli(charged);
                self.overload.budget.refund(refund);
            } else {
                self.overload.budget.earn(policy.budget.success_reward);
            }
            if let Some(b) = breaker {
                b.record(now, false, &policy.breaker);
            }
        } else if provider_fault(reason) {
            if let Some(b) = breaker {
                b.record(now, true, &policy.breaker);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::classify::{HttpResponse, Observation, Provider};
    use crate::overload::{BreakerPolicy, BreakerState, BudgetPolicy, Overload, OverloadPolicy};
    use crate::pool::{KeyId, KeySpec};
    use crate::{
        AbortReason, Action, Policy, PoolChange, Reason, RetryMachine, SleepReason, Target, Time,
    };

    const OVERLOADED: &str =
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    const OK: &str = r#"{"id":"msg_1","type":"message","content":[]}"#;

    fn http(status: u16, body: &'static str) -> Observation<'static> {
        Observation::Http(HttpResponse {
            status,
            headers: &[],
            body: body.as_bytes(),
        })
    }

    fn targets(n: u32) -> Vec<Target> {
        (0..n)
            .map(|t| {
                Target::new(
                    Provider::Anthropic,
                    format!("model-{t}"),
                    vec![KeySpec::new(t + 1, format!("key-{t}"))],
                )
            })
            .collect()
    }

    fn drain(m: &mut RetryMachine) -> Vec<Action> {
        std::iter::from_fn(|| m.poll_action()).collect()
    }

    fn policy(overload: OverloadPolicy) -> Policy {
        Policy {
            overload,
            ..Policy::default()
        }
    }

    #[test]
    fn an_empty_budget_never_denies_a_first_attempt_but_denies_the_retry() {
        // Capacity 4 cannot pay one retry at cost 5.
        let p = policy(OverloadPolicy {
            budget: BudgetPolicy {
                capacity: 4,
                ..BudgetPolicy::aws_like()
            },
            breaker: BreakerPolicy::off(),
        });
        let mut m = RetryMachine::new(p, targets(1), 1).unwrap();
        m.start(Time(0)).unwrap();
        assert!(matches!(drain(&mut m)[..], [Action::Send(_)]));
        m.handle_response(Time(300), http(529, OVERLOADED)).unwrap();
        let actions = drain(&mut m);
        let [Action::Abort(abort)] = &actions[..] else {
            panic!("{actions:?}")
        };
        assert_eq!(abort.reason, AbortReason::RetryBudgetExhausted);
        assert_eq!(abort.attempts, 1);
        assert!(abort.message.contains("struggling"), "{}", abort.message);
        assert_eq!(m.overload().budget.balance(), 4);
    }

    #[test]
    fn retries_spend_the_budget_and_a_retried_success_gives_its_cost_back() {
        let p = policy(OverloadPolicy {
            budget: BudgetPolicy::aws_like(),
            breaker: BreakerPolicy::off(),
        });
        let mut m = RetryMachine::new(p, targets(1), 1).unwrap();
        m.start(Time(0)).unwrap();
        drain(&mut m);
        m.handle_response(Time(300), http(529, OVERLOADED)).unwrap();
        let [Action::Sleep { until, .. }] = drain(&mut m)[..] else {
            panic!()
        };
        m.handle_timeout(until).unwrap();
        assert!(matches!(drain(&mut m)[..], [Action::Send(_)]));
        // The AWS-like budget: 100 tokens, a retry costs 5.
        assert_eq!(m.overload().budget.balance(), 95);
        m.handle_response(Time(until.0 + 300), http(200, OK))
            .unwrap();
        assert_eq!(m.overload().budget.balance(), 100);
    }

    #[test]
    fn concurrent_calls_merge_what_they_spent() {
        let p = policy(OverloadPolicy {
            budget: BudgetPolicy {
                capacity: 7,
                ..BudgetPolicy::aws_like()
            },
            breaker: BreakerPolicy::off(),
        });
        let fresh = Overload::new(&p.overload, 1);
        let mut shared = fresh.clone();
        let mut a = RetryMachine::new(p.clone(), targets(1), 1).unwrap();
        let mut b = RetryMachine::new(p, targets(1), 2).unwrap();
        for m in [&mut a, &mut b] {
            m.start(Time(0)).unwrap();
            drain(m);
            m.handle_response(Time(300), http(529, OVERLOADED)).unwrap();
            let [Action::Sleep { until, .. }] = drain(m)[..] else {
                panic!()
            };
            m.handle_timeout(until).unwrap();
            drain(m);
        }
        // Each paid 5 from its own copy of 7; the client's budget is 0, not 2 or -3.
        shared.merge_call(&fresh, a.overload());
        shared.merge_call(&fresh, b.overload());
        assert_eq!(shared.budget.balance(), 0);
        // A third call that starts from it may send once, and not retry.
        let p = a.policy().clone();
        let mut c = RetryMachine::new(p, targets(1), 3)
            .unwrap()
            .with_overload(shared);
        c.start(Time(20_000)).unwrap();
        assert!(matches!(drain(&mut c)[..], [Action::Send(_)]));
        c.handle_response(Time(20_300), http(529, OVERLOADED))
            .unwrap();
        assert!(matches!(
            &drain(&mut c)[..],
            [Action::Abort(a)] if a.reason == AbortReason::RetryBudgetExhausted
        ));
    }

    const SERVER_ERROR: &str =
        r#"{"type":"error","error":{"type":"api_error","message":"Internal"}}"#;

    /// One retry's worth of tokens (5, at 5 a retry), 1 back a second, no breaker.
    fn one_retry_refilling() -> Policy {
        policy(OverloadPolicy {
            budget: BudgetPolicy {
                capacity: 5,
                retry_cost: 5,
                timeout_retry_cost: 5,
                success_reward: 0,
                retry_refund_percent: 100,
                refill_per_sec: 1,
            },
            breaker: BreakerPolicy::off(),
        })
    }

    /// A call under `p` answered 500, waited and sent its first retry: the machine and the
    /// time that retry was paid.
    fn retried_once(p: Policy) -> (RetryMachine, Time) {
        let mut m = RetryMachine::new(p, targets(1), 7).unwrap();
        m.start(Time(0)).unwrap();
        drain(&mut m);
        m.handle_response(Time(300), http(500, SERVER_ERROR))
            .unwrap();
        let [Action::Sleep { until, .. }] = drain(&mut m)[..] else {
            panic!()
        };
        m.handle_timeout(until).unwrap();
        assert!(matches!(drain(&mut m)[..], [Action::Send(_)]));
        (m, until)
    }

    #[test]
    fn a_retry_the_budget_cannot_pay_waits_for_the_refill_then_sends() {
        // The second retry must wait until five seconds after the first was paid.
        let (mut m, paid_at) = retried_once(one_retry_refilling());
        m.handle_response(Time(paid_at.0 + 300), http(500, SERVER_ERROR))
            .unwrap();
        let [Action::Sleep {
            until: backoff_end,
            reason,
        }] = drain(&mut m)[..]
        else {
            panic!()
        };
        assert!(matches!(reason, SleepReason::Backoff { .. }), "{reason:?}");
        assert!(
            backoff_end.0 < paid_at.0 + 5_000,
            "the backoff is shorter here"
        );
        m.handle_timeout(backoff_end).unwrap();
        let actions = drain(&mut m);
        let refilled = Time(paid_at.0 + 5_000);
        assert_eq!(
            actions,
            [Action::Sleep {
                until: refilled,
                reason: SleepReason::RetryBudget {
                    after: crate::Reason::ServerError
                }
            }]
        );
        m.handle_timeout(refilled).unwrap();
        let actions = drain(&mut m);
        assert!(
            matches!(&actions[..], [Action::Send(s)] if s.attempt == 3),
            "{actions:?}"
        );
        assert_eq!(m.overload().budget.balance(), 0);
    }

    #[test]
    fn a_refill_that_comes_after_the_deadline_ends_the_call_at_once() {
        // 1 token a second against a 5-token retry with 3 s of deadline left: no wait.
        let p = Policy {
            deadline_ms: 3_000,
            ..one_retry_refilling()
        };
        let (mut m, paid_at) = retried_once(p);
        m.handle_response(Time(paid_at.0 + 300), http(500, SERVER_ERROR))
            .unwrap();
        let actions = drain(&mut m);
        assert!(
            matches!(&actions[..], [Action::Abort(a)] if a.reason == AbortReason::RetryBudgetExhausted),
            "{actions:?}"
        );
    }

    fn breaker_policy() -> OverloadPolicy {
        OverloadPolicy {
            budget: BudgetPolicy::unlimited(),
            breaker: BreakerPolicy {
                enabled: true,
                consecutive_failures: 2,
                open_ms: 10_000,
                half_open_probes: 1,
                ..BreakerPolicy::default()
            },
        }
    }

    /// Two 529s on target 0 at 300 ms and at `t` ms (t ≥ 1 000).
    fn tripped(targets_n: u32) -> (RetryMachine, Time) {
        let mut m = RetryMachine::new(policy(breaker_policy()), targets(targets_n), 1).unwrap();
        m.start(Time(0)).unwrap();
        drain(&mut m);
        m.handle_response(Time(300), http(529, OVERLOADED)).unwrap();
        let [Action::Sleep { until, .. }] = drain(&mut m)[..] else {
            panic!()
        };
        m.handle_timeout(until).unwrap();
        drain(&mut m);
        let second = Time(until.0 + 300);
        (m, second)
    }

    #[test]
    fn an_open_breaker_sends_the_call_to_the_next_target() {
        let (mut m, at) = tripped(2);
        m.handle_response(at, http(529, OVERLOADED)).unwrap();
        // Two faults in a row: target 0 is open for 10 s from the second.
        assert_eq!(
            m.overload().breaker(0).state,
            BreakerState::Open {
                until: Time(at.0 + 10_000)
            }
        );
        let actions = drain(&mut m);
        assert!(
            matches!(&actions[..], [Action::Rotate { .. }, Action::Send(s)] if s.target == 1),
            "{actions:?}"
        );
        // A later call of the client starts on target 1 while target 0 is open.
        let mut next = RetryMachine::new(policy(breaker_policy()), targets(2), 2)
            .unwrap()
            .with_overload(m.overload().clone());
        next.start(Time(at.0 + 9_999)).unwrap();
        let actions = drain(&mut next);
        assert!(
            matches!(&actions[..], [.., Action::Send(s)] if s.target == 1 && s.attempt == 1),
            "{actions:?}"
        );
    }

    #[test]
    fn a_key_held_back_by_an_open_breaker_is_chosen_again_when_the_send_goes() {
        let (mut first, at) = tripped(1);
        first.handle_response(at, http(529, OVERLOADED)).unwrap();
        drain(&mut first);
        let open_until = Time(at.0 + 10_000);
        // A later call on the same target, with two keys in priority order; the first is
        // cooling when the call starts, so the second is the selection's choice then.
        let keys = vec![KeySpec::new(1, "first"), KeySpec::new(2, "second")];
        let target = vec![Target::new(Provider::Anthropic, "model-0", keys)];
        let mut m = RetryMachine::new(policy(breaker_policy()), target, 2)
            .unwrap()
            .with_overload(first.overload().clone());
        let cooling = PoolChange::MarkedBad {
            key: KeyId(1),
            until: Some(Time(at.0 + 60_000)),
        };
        m.handle_pool_change(at, cooling).unwrap();
        m.start(at).unwrap();
        let actions = drain(&mut m);
        assert_eq!(
            actions,
            [Action::Sleep {
                until: open_until,
                reason: SleepReason::Backoff {
                    after: Reason::Overloaded
                }
            }]
        );
        // The first key comes back during the wait. The wait is for the breaker, which no
        // key shortens: it goes on.
        m.handle_pool_change(Time(at.0 + 1_000), PoolChange::Restored { key: KeyId(1) })
            .unwrap();
        assert_eq!(drain(&mut m), []);
        // When the breaker admits the send, the selection chooses again: the first key.
        m.handle_timeout(open_until).unwrap();
        let actions = drain(&mut m);
        assert!(
            matches!(&actions[..], [.., Action::Send(s)] if s.key == KeyId(1)),
            "{actions:?}"
        );
    }

    #[test]
    fn with_one_target_the_call_waits_for_the_breaker_and_is_its_one_probe() {
        let (mut m, at) = tripped(1);
        m.handle_response(at, http(529, OVERLOADED)).unwrap();
        let until = Time(at.0 + 10_000);
        let actions = drain(&mut m);
        // The machine's own backoff may end before the breaker half-opens; then it waits
        // for the breaker.
        let mut now = at;
        let mut actions = actions;
        loop {
            match &actions[..] {
                [Action::Sleep { until: wake, .. }] => {
                    now = *wake;
                    m.handle_timeout(now).unwrap();
                    actions = drain(&mut m);
                }
                [Action::Send(_)] => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(now >= until, "sent at {now}, open until {until}");
        // The probe is out: another call of the client must not send.
        let mut other = RetryMachine::new(policy(breaker_policy()), targets(1), 2)
            .unwrap()
            .with_overload(m.overload().clone());
        other.start(now).unwrap();
        let actions = drain(&mut other);
        assert!(
            matches!(
                &actions[..],
                [Action::Sleep {
                    reason: SleepReason::Backoff { .. },
                    ..
                }]
            ),
            "{actions:?}"
        );
        // The probe succeeds: the breaker closes.
        m.handle_response(Time(now.0 + 300), http(200, OK)).unwrap();
        assert_eq!(m.overload().breaker(0).state, BreakerState::Closed);
    }
}
