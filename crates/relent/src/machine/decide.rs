//! The decisions: what to do after each outcome. This file is the behaviour table of the
//! design brief, written as code.

use super::{
    Abort, AbortReason, Action, Phase, PoolChange, Resume, RetryMachine, SeenSummary, Send,
    SleepReason,
};
use crate::classify::hints::MAX_HINT_MS;
use crate::classify::{
    classify, Bench, Classification, Classified, HintSource, Observation, Reason, Rule, WaitHint,
};
use crate::pool::{KeyId, KeyRef, KeyState};
use crate::time::{Millis, Time};

/// Whether a send opens a fresh connection (after a dropped connection, a timeout, or for
/// the one retry of a rejected key) or may reuse one.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Connection {
    /// Any pooled connection will do.
    Reuse,
    /// A new connection.
    Fresh,
}

/// Which later targets a fallback may use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Context {
    /// Any target with a ready key.
    Any,
    /// Only a target with a known, larger context window (after a context overflow).
    Larger,
}

/// What the server said about retrying (`x-should-retry`, or a garbled pushback).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ServerSays {
    /// Nothing.
    Nothing,
    /// Retry.
    Retry,
    /// Do not retry.
    NoRetry,
}

impl ServerSays {
    fn of(server_retry: Option<bool>) -> Self {
        match server_retry {
            None => ServerSays::Nothing,
            Some(true) => ServerSays::Retry,
            Some(false) => ServerSays::NoRetry,
        }
    }
}

/// Inside the machine, the key of a call that has not used one yet. It never leaves the
/// machine: a `Rotate` from it says `from: None`.
const NO_KEY: KeyId = KeyId(u32::MAX);

impl RetryMachine {
    pub(super) fn on_response(
        &mut self,
        now: Time,
        observation: &Observation<'_>,
    ) -> Option<SeenSummary> {
        let Phase::AwaitingResponse { via, .. } = self.phase else {
            return None;
        };
        let provider = self.pool.targets()[via.target].provider;
        let wall_clock = self
            .wall_clock_epoch_unix_ms
            .map(|epoch| epoch.saturating_add(now.0));
        self.on_verdict(now, via, classify(provider, observation, wall_clock))
    }

    /// A response the caller classified (`check_fits` saw that it was for the target's
    /// provider).
    pub(super) fn on_classified(
        &mut self,
        now: Time,
        classified: &Classified,
    ) -> Option<SeenSummary> {
        let Phase::AwaitingResponse { via, .. } = self.phase else {
            return None;
        };
        self.on_verdict(now, via, classified.classification().clone())
    }

    /// What the machine does with the classification of the pending send's response.
    fn on_verdict(&mut self, now: Time, via: KeyRef, c: Classification) -> Option<SeenSummary> {
        let seen = self.trace.is_some().then(|| summarize(&c));
        // Overload control (issue #14): the breaker and the retry budget learn the outcome.
        self.record_outcome(now, via.target, c.reason);
        if c.reason == Reason::Success {
            self.probing = false;
            if let Some(entry) = self.pool.entry_mut(via.key) {
                entry.rejections = 0;
                entry.cooldowns = 0;
                // A re-probe of a key the provider had rejected worked: it is back, unless
                // a wait that came while the probe was out (an outside mark with an end)
                // still holds.
                if let (KeyState::Revoked, Some(until)) = (entry.state, entry.revoked_at) {
                    entry.state = if until > now {
                        KeyState::CoolingDown(until)
                    } else {
                        KeyState::Ready
                    };
                    entry.revoked_at = None;
                    entry.lifted_at = Some(now);
                    entry.held = None;
                }
            }
            self.phase = Phase::Committed { via };
            self.push(Action::Succeeded {
                via,
                attempts: self.attempts,
            });
        } else {
            self.on_failure(now, via, c);
        }
        seen
    }

    pub(super) fn on_timeout(&mut self, now: Time) -> Option<SeenSummary> {
        match self.phase {
            Phase::AwaitingResponse { timeout_at, .. } if now >= timeout_at => self.on_response(
                now,
                &Observation::Transport(crate::classify::TransportError::Timeout),
            ),
            Phase::Sleeping { until, .. } if now >= until => {
                self.wake(now);
                None
            }
            // Early timers are spurious; nothing is due yet.
            _ => None,
        }
    }

    pub(super) fn on_stream_failed(
        &mut self,
        now: Time,
        observation: &Observation<'_>,
    ) -> Option<SeenSummary> {
        let Phase::Committed { via } = self.phase else {
            return None;
        };
        let provider = self.pool.targets()[via.target].provider;
        let mut c = classify(provider, observation, None);
        if c.reason == Reason::Success {
            // A "failure" that looks like success is still a broken stream.
            c = Classification::of(Reason::ConnectionFailed);
        }
        let seen = self.trace.is_some().then(|| summarize(&c));
        if self.policy.restart_after_commit {
            self.on_failure(now, via, c);
        } else {
            self.last_failure = Some((via, c));
            self.abort(now, AbortReason::FailedAfterCommit, None);
        }
        seen
    }

    /// The behaviour table: what each reason does to the key, the call and the chain.
    fn on_failure(&mut self, now: Time, at: KeyRef, c: Classification) {
        let why = c.reason;
        let hint = c.wait;
        let server = ServerSays::of(c.server_retry);
        self.last_failure = Some((at, c));
        if std::mem::take(&mut self.probing) {
            self.end_probe(now, at.key, why);
        }
        // An answer only an accepted key gets (a rate limit, a spent quota) ends a run of
        // rejections, as a success does: the key's next rejection is a first one again, with
        // its one retry when nothing else could be used. (This also clears the count of a
        // re-probed key whose revocation `end_probe` just lifted.)
        if matches!(why, Reason::QuotaExhausted | Reason::RateLimited) {
            if let Some(entry) = self.pool.entry_mut(at.key) {
                entry.rejections = 0;
            }
        }
        match why.rule() {
            Rule::RejectKey => self.on_key_rejected(now, at),
            Rule::BenchKey(Bench::Exhausted) => {
                // Rate-limit hints (retry-after, reset headers, "try again in") describe a
                // rate-limit window, not the quota: only a reset that states the quota's own
                // (Gemini's RetryInfo) ends the exhaustion early.
                let quota_reset = hint.filter(|h| h.source == HintSource::RetryInfo);
                let until =
                    now + Millis(quota_reset.map_or(self.policy.quota_cooldown_ms, |h| h.after_ms));
                self.bench(at.key, KeyState::Exhausted(until));
                self.rotate_wait_or_fallback(now, at, why, None, server);
            }
            // The ejection guard (`Policy::max_ejection_percent`): a hint-less rate limit
            // that would leave more than the policy's share of the target's keys cooling
            // at once is a limit the keys share. The key is not benched (another key would
            // only draw the same answer): a later target, else a backoff on this one.
            Rule::BenchKey(_)
                if hint.is_none_or(|h| h.after_ms == 0) && self.ejection_guard(now, at) =>
            {
                if !self.fallback(now, at, why, Context::Any) {
                    self.retry_same(now, at, why, hint, Connection::Reuse, server);
                }
            }
            Rule::BenchKey(_) => {
                let (mut wait_ms, own_wait) = self.wait_for(why, hint);
                // A server's hint is authoritative; only a cooldown the machine picked
                // escalates.
                if matches!(own_wait, SleepReason::Backoff { .. }) {
                    wait_ms = wait_ms.max(self.escalated_cooldown(at.key));
                }
                self.bench(at.key, KeyState::CoolingDown(now + Millis(wait_ms)));
                self.rotate_wait_or_fallback(now, at, why, Some(own_wait), server);
            }
            Rule::ExcludeKey => {
                self.excluded.push(at.key);
                self.rotate_wait_or_fallback(now, at, why, None, server);
            }
            Rule::FallbackThenRetry => {
                if !self.fallback(now, at, why, Context::Any) {
                    self.retry_same(now, at, why, hint, Connection::Reuse, server);
                }
            }
            Rule::RetrySame { fresh_connection } => {
                let connection = if fresh_connection {
                    Connection::Fresh
                } else {
                    Connection::Reuse
                };
                self.retry_same(now, at, why, hint, connection, server)
            }
            Rule::Fallback { larger_context, .. } => {
                let context = if larger_context {
                    Context::Larger
                } else {
                    Context::Any
                };
                self.fallback_or_abort(now, at, why, context)
            }
            Rule::FallbackIfAllowed if self.policy.fallback_on_content_filter => {
                self.fallback_or_abort(now, at, why, Context::Any)
            }
            // `x-should-retry: true` on a 400: the provider says the request may succeed
            // as sent (the OpenAI SDK obeys it), so it is a transient fault.
            Rule::Abort if server == ServerSays::Retry => {
                self.retry_same(now, at, why, hint, Connection::Reuse, ServerSays::Nothing)
            }
            Rule::FallbackIfAllowed | Rule::Abort => {
                self.abort(now, AbortReason::NotRetryable, None)
            }
            // A success never reaches the table (`on_response` commits it).
            Rule::Done => {}
        }
    }

    /// What a failed re-probe of a revoked key tells: a rejection revokes it again (in
    /// `on_key_rejected`); an answer only an accepted key gets (a spent quota, a rate limit)
    /// lifts the revocation, so the answer's own rule applies; any
    /// other fault says nothing about the key, which stays revoked for another period (from
    /// now, or from the end of an outside wait that arrived while the probe was out: the
    /// pool's rule for a wait on a revoked key).
    fn end_probe(&mut self, now: Time, key: KeyId, why: Reason) {
        let Some(entry) = self.pool.entry_mut(key) else {
            return;
        };
        if entry.state != KeyState::Revoked || entry.revoked_at.is_none() {
            return;
        }
        match why {
            Reason::KeyRejected => {}
            Reason::QuotaExhausted | Reason::RateLimited => {
                // A wait that came while the probe was out (an outside mark with an end)
                // still holds.
                entry.state = match entry.revoked_at {
                    Some(until) if until > now => KeyState::CoolingDown(until),
                    _ => KeyState::Ready,
                };
                entry.revoked_at = None;
                entry.lifted_at = Some(now);
                entry.held = None;
            }
            _ => entry.revoked_at = entry.revoked_at.map(|at| at.max(now)),
        }
    }

    /// A rejected key is retried once, on a fresh connection and without a sleep, only when
    /// nothing else could be used; otherwise it is revoked at once.
    fn on_key_rejected(&mut self, now: Time, at: KeyRef) {
        let strikes = self.pool.entry_mut(at.key).map_or(2, |k| {
            k.rejections = k.rejections.saturating_add(1);
            k.rejected_at = Some(now);
            k.rejections
        });
        // A retry the deadline, the limits or an outside mark on the key forbid now is no
        // retry (the one retry is immediate or never): the key's rejection ends the call
        // with its own reason (a limit is named only when it is the cause).
        // (An open breaker forbids it too: issue #14.)
        let can_retry = now < self.deadline
            && self.can_send_more()
            && self.pool.state(at.key).usable_at(now)
            && !self.breaker_open(now, at.target);
        if strikes >= 2 || !can_retry || self.has_alternative(at.key) {
            self.pool.revoke(at.key, now);
            self.rotate_wait_or_fallback(now, at, Reason::KeyRejected, None, ServerSays::Nothing);
        } else {
            self.go(
                now,
                at.target,
                at.key,
                Connection::Fresh,
                None,
                Reason::KeyRejected,
            );
        }
    }

    /// Whether any key other than `except`, in this target or a later one, could still be
    /// used before the deadline.
    fn has_alternative(&self, except: KeyId) -> bool {
        self.pool
            .all_keys()
            .filter(|(t, k)| {
                *t >= self.target && k.spec.id != except && !self.excluded.contains(&k.spec.id)
            })
            .any(|(_, k)| k.state.ready_at().is_some_and(|at| at < self.deadline))
    }

    /// After a key-scoped fault: another ready key at once; else, when the first key of this
    /// target comes back soon (within `max_wait_before_fallback_ms`) or no later target is
    /// ready, wait for it if that fits the limits; else the next target; else abort.
    /// `own_wait` is the sleep reason when the key that failed is itself the one to wait for.
    fn rotate_wait_or_fallback(
        &mut self,
        now: Time,
        at: KeyRef,
        why: Reason,
        own_wait: Option<SleepReason>,
        server: ServerSays,
    ) {
        // Past the deadline (an answer that came after it) nothing more is sent, not even
        // with a key or a fallback target that is ready by now. A key-scoped fault that left
        // no key usable before the deadline ends the call with its own reason (a rejected
        // key stays `auth_permanent`); otherwise the deadline is what ended it.
        if now >= self.deadline {
            let reason = key_scoped_abort(why)
                .filter(|_| !self.has_alternative(at.key))
                .unwrap_or(AbortReason::DeadlineExceeded);
            return self.abort(now, reason, None);
        }
        if let Some(key) = self.pick(at.target, now) {
            return self.go(now, at.target, key, Connection::Reuse, Some(at), why);
        }
        let ready_at = self
            .pool
            .earliest_ready(at.target, &self.excluded)
            .filter(|t| *t > now);
        let beyond_cap = ready_at.is_some_and(|t| self.too_long_to_sleep(t.since(now).0));
        if let Some(ready_at) = ready_at {
            let within_limits = server != ServerSays::NoRetry
                && ready_at < self.deadline
                && !beyond_cap
                && self.transient_retries < self.policy.transient_retries_per_target
                && self.can_send_more();
            let long = ready_at.since(now).0 > self.policy.max_wait_before_fallback_ms;
            if within_limits && long && self.fallback(now, at, why, Context::Any) {
                return;
            }
            if within_limits {
                let own = self.pool.state(at.key).ready_at() == Some(ready_at);
                let waiting_keys = self
                    .pool
                    .keys(at.target)
                    .iter()
                    .filter(|k| k.state.ready_at().is_some())
                    .count();
                let reason = match own_wait {
                    Some(reason) if own && waiting_keys == 1 => reason,
                    _ => SleepReason::AllKeysCooling,
                };
                self.transient_retries += 1;
                let resume = Resume {
                    target: at.target,
                    prefer: own.then_some(at.key),
                    connection: Connection::Reuse,
                    from: Some(at),
                    why,
                };
                return self.sleep(now, ready_at, reason, resume);
            }
        }
        if self.fallback(now, at, why, Context::Any) {
            return;
        }
        let reason = match key_scoped_abort(why) {
            Some(own) => own,
            None if self
                .pool
                .earliest_ready(at.target, &self.excluded)
                .is_none() =>
            {
                AbortReason::NoUsableKey
            }
            _ if server == ServerSays::NoRetry => AbortReason::ServerSaidNoRetry,
            _ if self.transient_retries >= self.policy.transient_retries_per_target
                || !self.can_send_more() =>
            {
                AbortReason::AttemptsExhausted
            }
            _ if beyond_cap && ready_at.is_some_and(|t| t < self.deadline) => {
                AbortReason::ServerWaitTooLong
            }
            _ => AbortReason::DeadlineExceeded,
        };
        // A clamped wait's end is unknown: no retry time is promised for it.
        let retry_at = ready_at.filter(|t| t.since(now).0 < MAX_HINT_MS);
        self.abort(now, reason, retry_at);
    }

    /// A key of target `t` to send with now: a ready one by the policy's selection, else
    /// (in a long-lived pool) one the provider rejected long enough ago to be probed again.
    pub(super) fn pick(&self, t: usize, now: Time) -> Option<KeyId> {
        self.pool
            .pick(t, now, self.policy.selection, &self.excluded)
            .or_else(|| {
                // A probe is a send like any other: only when the limits allow one.
                if !self.can_send_more() || now >= self.deadline {
                    return None;
                }
                let after = self.policy.revoked_reprobe_after_ms?;
                self.pool
                    .reprobe_candidate(t, now, Millis(after), &self.excluded)
            })
    }

    /// Whether `key` may be sent with now: usable, or due for a re-probe.
    fn sendable(&self, key: KeyId, now: Time) -> bool {
        if self.excluded.contains(&key) {
            return false;
        }
        self.pool.state(key).usable_at(now)
            || self
                .policy
                .revoked_reprobe_after_ms
                .is_some_and(|after| self.pool.reprobe_due(key, now, Millis(after)))
    }

    /// After a transient fault: wait (the server's hint, else backoff) and send again; after
    /// a few overloads, or when the wait is long, a later target with a ready key instead.
    fn retry_same(
        &mut self,
        now: Time,
        at: KeyRef,
        why: Reason,
        hint: Option<WaitHint>,
        connection: Connection,
        server: ServerSays,
    ) {
        if server == ServerSays::NoRetry {
            return self.fallback_or_abort_with(
                now,
                at,
                why,
                Context::Any,
                AbortReason::ServerSaidNoRetry,
                None,
            );
        }
        let overload = why == Reason::Overloaded;
        if overload {
            self.target_overloads += 1;
        }
        // Overloads spend the deadline (bounded by the attempt limits); other transient
        // faults also count against the per-target retry limit.
        let retries_spent =
            !overload && self.transient_retries >= self.policy.transient_retries_per_target;
        if retries_spent || !self.can_send_more() {
            // No point sleeping for a send the limits forbid: decide now.
            return self.fallback_or_abort_with(
                now,
                at,
                why,
                Context::Any,
                AbortReason::AttemptsExhausted,
                None,
            );
        }
        // Overload control (issue #14): when the budget cannot pay for the retry now, or
        // the target's breaker has opened, a fallback beats waiting.
        if !self.budget_allows(now, at.target, why) && self.fallback(now, at, why, Context::Any) {
            return;
        }
        if self.breaker_open(now, at.target) && self.fallback(now, at, why, Context::Any) {
            return;
        }
        if overload
            && self.target_overloads >= self.policy.overload_attempts_before_fallback
            && self.fallback(now, at, why, Context::Any)
        {
            return;
        }
        let (delay_ms, reason) = self.wait_for(why, hint);
        let until = now + Millis(delay_ms);
        let too_long = hint.is_some() && self.too_long_to_sleep(delay_ms);
        if too_long || until >= self.deadline {
            let reason = if until >= self.deadline {
                AbortReason::DeadlineExceeded
            } else {
                AbortReason::ServerWaitTooLong
            };
            // A clamped wait's end is unknown: no retry time is promised for it.
            let retry_at = (delay_ms < MAX_HINT_MS).then_some(until);
            return self.fallback_or_abort_with(now, at, why, Context::Any, reason, retry_at);
        }
        if delay_ms > self.policy.max_wait_before_fallback_ms
            && self.fallback(now, at, why, Context::Any)
        {
            return;
        }
        // A retry the budget cannot pay by the deadline is not waited for. (One it can pay
        // later than the wait's end waits for the refill when the wait ends: `go`.)
        if self.budget_ready(until, at.target, why).is_none() {
            return self.abort(now, AbortReason::RetryBudgetExhausted, None);
        }
        let resume = Resume {
            target: at.target,
            prefer: Some(at.key),
            connection,
            from: None,
            why,
        };
        // A retry is charged when it is made. One that waits for no time and finds no key
        // to go out with is not made at all: decide again with the limits as they were
        // (wait for a key, fall back or abort), so that a retry never sent cannot end the
        // call as `attempts_exhausted`.
        if until <= now && self.resume_key(now, &resume).is_none() {
            return self.no_key_ready(now, Some(at), why);
        }
        if overload {
            self.overload_retries += 1;
        } else {
            self.transient_retries += 1;
        }
        self.sleep(now, until, reason, resume);
    }

    /// The key `resume` goes out with at `now`: the preferred one when the send retries it
    /// (it is the key whose answer the call last had) and it is usable outright (a
    /// re-probe is for when no key of the target is: `pick` decides that), else whatever
    /// `pick` chooses now. A key a gate held back on its way out (an open breaker, an
    /// empty retry budget) was the selection's choice then; the selection chooses again
    /// when the send goes, among the keys ready by that time.
    fn resume_key(&self, now: Time, resume: &Resume) -> Option<KeyId> {
        let last = self.last_failure.as_ref().map(|(at, _)| *at);
        resume
            .prefer
            .filter(|k| {
                last == Some(KeyRef {
                    target: resume.target,
                    key: *k,
                })
            })
            .filter(|k| self.pool.state(*k).usable_at(now) && !self.excluded.contains(k))
            .or_else(|| self.pick(resume.target, now))
    }

    /// How long to wait after `why`, and why: the server's hint if it gave one, else the
    /// next backoff delay.
    fn wait_for(&mut self, why: Reason, hint: Option<WaitHint>) -> (u64, SleepReason) {
        // A wait of zero (or a reset at or before the response's `Date`) says nothing
        // useful: resending at once loops against a server that keeps refusing, so it gets
        // the computed backoff, as the OpenAI and Anthropic SDKs do.
        match hint.filter(|h| h.after_ms > 0) {
            Some(h) => (
                h.after_ms,
                SleepReason::ServerHint {
                    after: why,
                    source: h.source,
                },
            ),
            None => (self.next_backoff(why), SleepReason::Backoff { after: why }),
        }
    }

    /// Whether the ejection guard holds `at.key` back from a bench after a hint-less rate
    /// limit: its target's keys already cooling, and the ones that could take a request,
    /// weighed against `Policy::max_ejection_percent`. A key that is not usable now (an
    /// outside mark or removal that came while the request was out) is benched or gone
    /// already: a bench adds no cooling key, so the guard has nothing to hold.
    fn ejection_guard(&self, now: Time, at: KeyRef) -> bool {
        if !self.pool.state(at.key).usable_at(now) {
            return false;
        }
        let (cooling, eligible) = self
            .pool
            .cooling_keys(at.target, at.key, now, &self.excluded);
        crate::policy::ejection_guard_holds(self.policy.max_ejection_percent, cooling, eligible)
    }

    /// The floor, with its jitter, of a cooldown the machine picks for `key` after a rate
    /// limit with no usable hint: the key's count of such cooldowns in a row goes up by one,
    /// and the n-th lasts at least `min(base × n, max)` plus up to `jitter_percent` of that
    /// (`Policy::key_cooldown`, after Envoy's outlier ejection). Zero, and no count, when
    /// escalation is off.
    fn escalated_cooldown(&mut self, key: KeyId) -> u64 {
        let policy = self.policy.key_cooldown;
        if !policy.enabled {
            return 0;
        }
        let Some(entry) = self.pool.entry_mut(key) else {
            return 0;
        };
        entry.cooldowns = entry.cooldowns.saturating_add(1);
        let floor = policy.floor_ms(entry.cooldowns);
        floor + crate::backoff::uniform(&mut self.rng, 0, policy.jitter_ms(floor))
    }

    /// Holds a key back after a rate limit or a spent quota. What the key's state already
    /// says may only get stricter: a revocation or an outside mark that arrived while the
    /// request was in flight stays (only a restore lifts it).
    fn bench(&mut self, key: KeyId, state: KeyState) {
        let now_state = self.pool.state(key);
        self.pool.set_state(key, now_state.worse(state));
        if let Some(until) = state.ready_at() {
            self.pool.postpone_reprobe(key, until);
        }
    }

    /// Whether a server's wait of `wait_ms` is one the machine never sleeps on: longer than
    /// the caller's own cap, or a day or more (a clamped hint, whose true end is unknown).
    fn too_long_to_sleep(&self, wait_ms: u64) -> bool {
        wait_ms >= MAX_HINT_MS
            || self
                .policy
                .max_server_wait_ms
                .is_some_and(|cap| wait_ms > cap)
    }

    /// Whether the attempt limits allow another send on the current target.
    pub(super) fn can_send_more(&self) -> bool {
        self.attempts < self.policy.max_attempts
            && self.target_attempts < self.policy.max_attempts_per_target
    }

    fn next_backoff(&mut self, why: Reason) -> u64 {
        let backoff = if matches!(why, Reason::Overloaded | Reason::RateLimited) {
            self.policy.congestion_backoff
        } else {
            self.policy.backoff
        };
        let delay = backoff.delay_ms(
            self.transient_retries + self.overload_retries,
            self.previous_delay_ms,
            &mut self.rng,
        );
        self.previous_delay_ms = delay;
        delay
    }

    fn fallback_or_abort(&mut self, now: Time, at: KeyRef, why: Reason, context: Context) {
        self.fallback_or_abort_with(now, at, why, context, AbortReason::NotRetryable, None);
    }

    fn fallback_or_abort_with(
        &mut self,
        now: Time,
        at: KeyRef,
        why: Reason,
        context: Context,
        reason: AbortReason,
        retry_at: Option<Time>,
    ) {
        if !self.fallback(now, at, why, context) {
            self.abort(now, reason, retry_at);
        }
    }

    /// Moves to the next target in the chain that has a ready key (and, after a context
    /// overflow, a larger context window). Returns false when there is none.
    pub(super) fn fallback(&mut self, now: Time, at: KeyRef, why: Reason, wanted: Context) -> bool {
        let current_context = self.pool.targets()[self.target].context_tokens;
        for t in self.target + 1..self.pool.targets().len() {
            let context = self.pool.targets()[t].context_tokens;
            // After a context overflow only a known, larger window can help.
            let larger = context.is_some_and(|c| current_context.is_none_or(|cur| c > cur));
            if wanted == Context::Larger && !larger {
                continue;
            }
            if let Some(key) = self.pick(t, now) {
                self.target = t;
                self.target_attempts = 0;
                self.transient_retries = 0;
                self.overload_retries = 0;
                self.target_overloads = 0;
                self.previous_delay_ms = 0;
                self.go(now, t, key, Connection::Reuse, Some(at), why);
                return true;
            }
        }
        false
    }

    /// Sends with `key` of target `t`, after checking every limit.
    pub(super) fn go(
        &mut self,
        now: Time,
        t: usize,
        key: KeyId,
        connection: Connection,
        from: Option<KeyRef>,
        why: Reason,
    ) {
        let to = KeyRef { target: t, key };
        if now >= self.deadline {
            return self.abort(now, AbortReason::DeadlineExceeded, None);
        }
        if self.attempts >= self.policy.max_attempts {
            return self.abort(now, AbortReason::AttemptsExhausted, None);
        }
        if self.target_attempts >= self.policy.max_attempts_per_target {
            let at = from.unwrap_or(to);
            return self.fallback_or_abort_with(
                now,
                at,
                why,
                Context::Any,
                AbortReason::AttemptsExhausted,
                None,
            );
        }
        if !self.sendable(key, now) {
            // The key went bad while we were deciding (a pool change during the attempt):
            // decide again without it.
            let at = from.unwrap_or(to);
            return self.rotate_wait_or_fallback(now, at, why, None, ServerSays::Nothing);
        }
        // Overload control (issue #14): the target's breaker, then the retry budget.
        if !self.overload_gate(now, t, key, connection, from, why) {
            return;
        }
        // A move to another key is announced, from the key the call last sent with (whose
        // failure is the last one: every send but the first follows a failure). Before the
        // first send there is none: a call that waited from its start for a key, or whose
        // first choice met an open breaker, rotates from no key.
        let in_use = self.last_failure.as_ref().map(|(at, _)| *at);
        let announce = match in_use {
            Some(last) => last != to,
            None => from.is_some_and(|f| f != to),
        };
        if announce {
            self.push(Action::Rotate {
                from: in_use,
                to,
                why,
            });
        }
        // A key that is not usable but sendable is a re-probe of a revoked key.
        self.probing = !self.pool.state(key).usable_at(now);
        self.attempts += 1;
        self.target_attempts += 1;
        self.pool.note_used(to, now);
        // No attempt outlives the call.
        let timeout_at = (now + Millis(self.policy.attempt_timeout_ms)).min(self.deadline);
        self.phase = Phase::AwaitingResponse {
            via: to,
            attempt: self.attempts,
            timeout_at,
        };
        // A timeout or a dropped connection may have left the pooled connection dead: the
        // next send to that target opens a new one, whatever route led to it (a retry, a
        // move to another key of the target, a wait for a key, a pool change).
        let after_transport_fault = self.last_failure.as_ref().is_some_and(|(at, c)| {
            at.target == t && matches!(c.reason, Reason::Timeout | Reason::ConnectionFailed)
        });
        self.push(Action::Send(Send {
            target: t,
            key,
            attempt: self.attempts,
            fresh_connection: connection == Connection::Fresh || after_transport_fault,
            timeout_at,
            idempotency_key: self.idempotency_key,
        }));
    }

    /// Sleeps until `until`, then carries out `resume` (at once when `until` is not later).
    pub(super) fn sleep(&mut self, now: Time, until: Time, reason: SleepReason, resume: Resume) {
        if until <= now {
            return self.resume_with(now, resume);
        }
        self.phase = Phase::Sleeping {
            until,
            reason,
            resume,
        };
        self.push(Action::Sleep { until, reason });
    }

    /// The sleep is over (or cut short): carry out its plan.
    pub(super) fn wake(&mut self, now: Time) {
        if let Phase::Sleeping { resume, .. } = self.phase {
            self.resume_with(now, resume);
        }
    }

    /// Sends with the plan's preferred key if it is usable, else with any ready key of the
    /// target, else decides again.
    fn resume_with(&mut self, now: Time, resume: Resume) {
        match self.resume_key(now, &resume) {
            Some(key) => {
                let from = resume.from.or(resume.prefer.map(|k| KeyRef {
                    target: resume.target,
                    key: k,
                }));
                self.go(now, resume.target, key, resume.connection, from, resume.why);
            }
            None => {
                let at = resume.from.unwrap_or(KeyRef {
                    target: resume.target,
                    key: resume.prefer.unwrap_or(NO_KEY),
                });
                self.no_key_ready(now, Some(at), resume.why);
            }
        }
    }

    /// No key of the current target is ready now (at the start, or when a sleep ends and the
    /// keys it waited for are gone): wait for one, fall back, or abort.
    pub(super) fn no_key_ready(&mut self, now: Time, at: Option<KeyRef>, why: Reason) {
        // `NO_KEY` stands for "no key was in use" inside the machine; a Rotate shows it
        // as `from: None`.
        let at = at.unwrap_or(KeyRef {
            target: self.target,
            key: NO_KEY,
        });
        self.rotate_wait_or_fallback(now, at, why, None, ServerSays::Nothing);
    }

    pub(super) fn abort(&mut self, now: Time, reason: AbortReason, retry_at: Option<Time>) {
        let message = self.abort_message(now, reason, retry_at);
        let last_failure = self.last_failure.as_ref().map(|(_, c)| c.reason);
        self.phase = Phase::Aborted { reason };
        self.push(Action::Abort(Abort {
            reason,
            message,
            last_failure,
            retry_at,
            attempts: self.attempts,
        }));
    }

    pub(super) fn on_pool_change(
        &mut self,
        now: Time,
        change: PoolChange,
    ) -> Result<(), super::EventError> {
        let touched = self.pool.apply(&change)?;
        match &change {
            PoolChange::Removed { key } | PoolChange::MarkedBad { key, .. } => {
                self.forget_preference(*key)
            }
            PoolChange::Restored { key } => self.excluded.retain(|k| k != key),
            PoolChange::Added { .. } => {}
        }
        // A sleep that waited for keys to cool down, whose keys are now all gone or benched
        // past its end, waits for nothing: decide again at once (another key, a fallback,
        // a longer sleep, or an abort).
        if let (
            PoolChange::Removed { .. } | PoolChange::MarkedBad { .. },
            Phase::Sleeping {
                until,
                reason,
                resume,
            },
        ) = (&change, self.phase)
        {
            let waiting_for_keys = waits_for_keys(reason);
            let still_due = self
                .pool
                .earliest_ready(resume.target, &self.excluded)
                .is_some_and(|t| t <= until);
            if waiting_for_keys && !still_due {
                self.wake(now);
                return Ok(());
            }
        }
        // A key that is usable now ends a sleep that was waiting for keys to cool down.
        if let (Some(key), Phase::Sleeping { reason, resume, .. }) = (touched, self.phase) {
            let waiting_for_keys = waits_for_keys(reason);
            let same_target = self
                .pool
                .find(key)
                .is_some_and(|(r, _)| r.target == resume.target);
            if waiting_for_keys && same_target && self.pool.state(key).usable_at(now) {
                self.wake(now);
            }
        }
        Ok(())
    }

    fn forget_preference(&mut self, key: KeyId) {
        if let Phase::Sleeping { resume, .. } = &mut self.phase {
            if resume.prefer == Some(key) {
                resume.prefer = None;
                resume.from.get_or_insert(KeyRef {
                    target: resume.target,
                    key,
                });
            }
        }
    }
}

fn summarize(c: &Classification) -> SeenSummary {
    SeenSummary {
        reason: c.reason,
        code: c.code.clone(),
        wait_ms: c.wait.map(|w| w.after_ms),
        wait_source: c.wait.map(|w| w.source),
    }
}

/// Whether a sleep for `reason` waits for keys to come free, so that a change to the pool
/// can end it: a wait for cooling keys, or a call's wait on its one rate-limited key. A
/// wait for an open breaker or for the retry budget waits for the target or the budget,
/// which no key can shorten, even when the send it holds back followed a rate limit.
fn waits_for_keys(reason: SleepReason) -> bool {
    match reason {
        SleepReason::AllKeysCooling => true,
        SleepReason::Backoff { after } | SleepReason::ServerHint { after, .. } => {
            after == Reason::RateLimited
        }
        _ => false,
    }
}

/// The abort reason of a key-scoped fault that leaves no key to try: the fault's own.
fn key_scoped_abort(why: Reason) -> Option<AbortReason> {
    match why {
        Reason::KeyRejected => Some(AbortReason::AuthPermanent),
        Reason::QuotaExhausted => Some(AbortReason::QuotaExhausted),
        Reason::PermissionDenied => Some(AbortReason::PermissionDenied),
        _ => None,
    }
}
