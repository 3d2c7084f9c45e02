//! The invariant catalog of the design brief, checked after every step.
//!
//! Numbers follow the brief: 1 single dead key, 2 no send with a revoked/removed key or
//! before its reset, 3 attempt limits, 4 deadline, 5 non-retryable not resent, 6 bounded,
//! 7 determinism (checked by the caller, which runs seeds twice), 8 actionable aborts,
//! 9 no sleep while a ready key exists after a rate limit, 10 overload leaves keys alone,
//! 11 liveness after healing.

use crate::marks::Marks;
use crate::runner::Outcome;
use crate::schedule::Schedule;
use relent::classify::redact::contains_secret;
use relent::machine::TraceEntry;
use relent::{AbortReason, Action, KeyId, PoolChange, Reason, RetryMachine, SleepReason, Time};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The invariant's number in the brief (0: the runner itself).
    pub invariant: u8,
    /// Virtual time.
    pub at_ms: u64,
    /// What went wrong.
    pub detail: String,
}

/// Per-run checking state.
pub(crate) struct Checker {
    max_attempts: u32,
    max_per_target: u32,
    attempt_timeout_ms: u64,
    latency_ms: u64,
    heal_at_ms: Option<u64>,
    last_pool_change_ms: Option<u64>,
    dead_from_outside: BTreeSet<KeyId>,
    sends_per_target: BTreeMap<usize, u32>,
    server_reset: BTreeMap<KeyId, Time>,
    removed: BTreeSet<KeyId>,
    refused_targets: BTreeSet<usize>,
    last_send: Option<(usize, KeyId)>,
    lone_rejections: BTreeMap<KeyId, u32>,
    expect_after_rejection: Option<(KeyId, u32)>,
    /// Every key's state after the previous entry (empty before the first).
    previous_keys: Vec<(KeyId, relent::KeyState)>,
    violations: Vec<Violation>,
}

impl Checker {
    pub(crate) fn new(schedule: &Schedule) -> Self {
        Checker {
            max_attempts: schedule.policy.max_attempts,
            max_per_target: schedule.policy.max_attempts_per_target,
            attempt_timeout_ms: schedule.policy.attempt_timeout_ms,
            latency_ms: schedule.latency_ms,
            heal_at_ms: schedule.heal_at_ms,
            last_pool_change_ms: schedule.pool_changes.iter().map(|c| c.at_ms).max(),
            dead_from_outside: BTreeSet::new(),
            sends_per_target: BTreeMap::new(),
            server_reset: BTreeMap::new(),
            removed: BTreeSet::new(),
            refused_targets: BTreeSet::new(),
            last_send: None,
            lone_rejections: BTreeMap::new(),
            expect_after_rejection: None,
            previous_keys: Vec::new(),
            violations: Vec::new(),
        }
    }

    pub(crate) fn violation(&mut self, now: Time, invariant: u8, detail: &str) {
        self.violations.push(Violation {
            invariant,
            at_ms: now.0,
            detail: detail.to_string(),
        });
    }

    pub(crate) fn into_violations(self) -> Vec<Violation> {
        self.violations
    }

    pub(crate) fn note_server_reset(&mut self, key: KeyId, reset: Option<Time>) {
        if let Some(reset) = reset {
            let entry = self.server_reset.entry(key).or_insert(reset);
            *entry = (*entry).max(reset);
        }
    }

    pub(crate) fn note_pool_change(&mut self, change: &PoolChange) {
        match change {
            PoolChange::Removed { key } => {
                self.removed.insert(*key);
                self.dead_from_outside.insert(*key);
            }
            PoolChange::MarkedBad { key, until: None } => {
                self.dead_from_outside.insert(*key);
            }
            PoolChange::Restored { key } => {
                self.dead_from_outside.remove(key);
                self.server_reset.remove(key);
                self.lone_rejections.remove(key);
            }
            _ => {}
        }
    }

    /// Checks one action as the driver receives it.
    pub(crate) fn check_action(&mut self, now: Time, action: &Action, machine: &RetryMachine) {
        match action {
            Action::Send(send) => {
                if let Some((key, n)) = self.expect_after_rejection.take() {
                    if send.key != key || !send.fresh_connection || n >= 2 {
                        self.violation(now, 1, &format!("after rejection {n} of the only key {key}, sent with {} (fresh: {})", send.key, send.fresh_connection));
                    }
                }
                let state = machine.pool().state(send.key);
                if self.removed.contains(&send.key) || !state.usable_at(now) {
                    self.violation(
                        now,
                        2,
                        &format!("send with key {} in state {state:?}", send.key),
                    );
                }
                if let Some(reset) = self.server_reset.get(&send.key) {
                    if now < *reset {
                        self.violation(
                            now,
                            2,
                            &format!(
                                "send with key {} at {now} before the server's reset at {reset}",
                                send.key
                            ),
                        );
                    }
                }
                let per_target = {
                    let count = self.sends_per_target.entry(send.target).or_default();
                    *count += 1;
                    *count
                };
                if send.attempt > self.max_attempts || per_target > self.max_per_target {
                    self.violation(
                        now,
                        3,
                        &format!(
                            "attempt {} ({} to target {}) exceeds the limits",
                            send.attempt, per_target, send.target
                        ),
                    );
                }
                if self.refused_targets.contains(&send.target) {
                    self.violation(
                        now,
                        5,
                        &format!(
                            "resent to target {} after a non-retryable failure",
                            send.target
                        ),
                    );
                }
                self.last_send = Some((send.target, send.key));
            }
            Action::Sleep { until, reason } => {
                if let Some((key, n)) = self.expect_after_rejection {
                    self.violation(
                        now,
                        1,
                        &format!("sleep after rejection {n} of the only key {key}"),
                    );
                }
                if *until > machine.deadline() {
                    self.violation(
                        now,
                        4,
                        &format!(
                            "sleep until {until} ends after the deadline {}",
                            machine.deadline()
                        ),
                    );
                }
                let after_rate_limit = match reason {
                    SleepReason::AllKeysCooling => true,
                    SleepReason::Backoff { after } | SleepReason::ServerHint { after, .. } => {
                        *after == Reason::RateLimited
                    }
                };
                if after_rate_limit {
                    if let Some((target, _)) = self.last_send {
                        // Keys the machine knows are not entitled (excluded) do not count.
                        let ready = machine.pool().keys(target).iter().any(|k| {
                            k.state.usable_at(now)
                                && !self.removed.contains(&k.spec.id)
                                && !machine.excluded_keys().contains(&k.spec.id)
                        });
                        if ready {
                            self.violation(now, 9, &format!("sleep after a rate limit while target {target} has a ready key"));
                        }
                    }
                }
            }
            Action::Abort(abort) => {
                if abort.message.trim().is_empty() {
                    self.violation(now, 8, &format!("abort {} without a message", abort.reason));
                }
                if contains_secret(&abort.message) {
                    self.violation(
                        now,
                        8,
                        &format!("abort message holds a secret: {}", abort.message),
                    );
                }
                if let Some((key, n)) = self.expect_after_rejection.take() {
                    if n >= 2 && abort.reason != AbortReason::AuthPermanent {
                        self.violation(
                            now,
                            1,
                            &format!(
                                "the only key {key} was rejected twice but the abort says {}",
                                abort.reason
                            ),
                        );
                    }
                }
            }
            Action::Rotate { .. } | Action::Succeeded { .. } => {}
        }
    }

    /// Checks one trace entry (an event and its consequences).
    pub(crate) fn check_entry(
        &mut self,
        entry: &TraceEntry,
        machine: &RetryMachine,
        marks: &mut Marks,
    ) {
        let now = entry.at;
        if let Some(seen) = &entry.seen {
            marks.reason(seen.reason);
            let target_key = self.last_send;
            match seen.reason {
                Reason::Overloaded | Reason::ServerError => {
                    let same = entry
                        .keys
                        .iter()
                        .map(|k| (k.key, k.state))
                        .eq(self.previous_keys.iter().copied());
                    if !self.previous_keys.is_empty() && !same {
                        self.violation(now, 10, &format!("{} changed key states", seen.reason));
                    }
                }
                Reason::MalformedRequest
                | Reason::ContextOverflow
                | Reason::PayloadTooLarge
                | Reason::ContentFilter
                | Reason::ModelNotFound
                | Reason::TlsCertificate
                | Reason::BlockedByWaf => {
                    if let Some((target, _)) = target_key {
                        self.refused_targets.insert(target);
                    }
                }
                Reason::KeyRejected => {
                    if let Some((_, key)) = target_key {
                        let others = machine
                            .pool()
                            .all_keys()
                            .filter(|(_, k)| k.spec.id != key)
                            .any(|(_, k)| {
                                k.state.ready_at().is_some_and(|t| t < machine.deadline())
                            });
                        let usable = machine.pool().state(key).usable_at(now);
                        if !others && usable {
                            let n = self.lone_rejections.entry(key).or_default();
                            *n += 1;
                            self.expect_after_rejection = Some((key, *n));
                        }
                    }
                }
                Reason::Success => {
                    if let Some((_, key)) = target_key {
                        self.lone_rejections.remove(&key);
                    }
                }
                _ => {}
            }
        }
        // The expectation set by a rejection must be met by this entry's own actions.
        if let Some((key, n)) = self.expect_after_rejection {
            let ok = match entry.actions.as_slice() {
                [] => entry.seen.is_none(),
                [Action::Send(s)] => n == 1 && s.key == key && s.fresh_connection,
                [Action::Abort(a)] => n == 1 || a.reason == AbortReason::AuthPermanent,
                _ => false,
            };
            if entry.seen.is_some() && !ok {
                self.violation(
                    now,
                    1,
                    &format!(
                        "after rejection {n} of the only key {key} the machine did {:?}",
                        entry.actions.iter().map(Action::kind).collect::<Vec<_>>()
                    ),
                );
            }
            // The actions are checked again one by one as the driver drains them.
        }
        self.previous_keys.clear();
        self.previous_keys
            .extend(entry.keys.iter().map(|k| (k.key, k.state)));
    }

    pub(crate) fn finish(
        &mut self,
        now: Time,
        outcome: &Outcome,
        machine: &RetryMachine,
        marks: &mut Marks,
    ) {
        self.expect_after_rejection = None;
        if *outcome == Outcome::Livelock {
            self.violation(now, 6, "the call did not end within the step bound");
        }
        let limit = machine.deadline() + relent::Millis(self.attempt_timeout_ms);
        if now > limit && !matches!(outcome, Outcome::Invalid(_)) {
            self.violation(now, 4, &format!("the call ended at {now}, after the deadline plus one attempt timeout ({limit})"));
        }
        // Liveness is owed only once every fault, pool changes included, is over.
        // And only while the outside world left at least one key alive.
        // And only while the outside world left at least one key alive, and the machine has
        // not rightly benched every other one past the deadline (a key that answered "out of
        // credit" with no reset stays exhausted for an hour, as the brief asks).
        // Only targets the machine can still reach count: it moves down the fallback chain,
        // never back up.
        // A key counts when it is usable by the healing time: not dead from outside, not
        // excluded as unentitled, not benched by the machine past that time.
        let current = self.last_send.map_or(0, |(t, _)| t);
        let key_alive_at = |heal: u64| {
            machine.pool().all_keys().any(|(t, k)| {
                t >= current
                    && !self.dead_from_outside.contains(&k.spec.id)
                    && !machine.excluded_keys().contains(&k.spec.id)
                    && k.state.ready_at().is_some_and(|at| at.0 <= heal)
            })
        };
        let heal = self
            .heal_at_ms
            .filter(|h| key_alive_at(*h) && self.last_pool_change_ms.is_none_or(|c| c <= *h));
        if let Some(heal) = heal {
            if now.0 > heal + self.attempt_timeout_ms + self.latency_ms {
                marks.hit(crate::marks::Named::LivenessChecked);
            }
        }
        if let (Some(heal), Outcome::Aborted(reason)) = (heal, outcome) {
            let settled = heal + self.attempt_timeout_ms + self.latency_ms;
            if *reason != AbortReason::Cancelled && now.0 > settled && now < machine.deadline() {
                self.violation(
                    now,
                    11,
                    &format!(
                        "aborted ({reason}) at {now} although every fault healed at {}",
                        Time(heal)
                    ),
                );
            }
        }
    }
}
