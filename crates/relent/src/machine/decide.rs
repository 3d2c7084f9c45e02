//! The decisions: what to do after each outcome. This file is the behaviour table of the
//! design brief, written as code.

use super::{
    Abort, AbortReason, Action, PoolChange, Resume, RetryMachine, SeenSummary, Send, SleepReason,
    State,
};
use crate::classify::{classify, Classification, HintSource, Observation, Reason, WaitHint};
use crate::pool::{KeyId, KeyRef, KeyState};
use crate::time::{Millis, Time};

/// Inside the machine, the key of a call that has not used one yet. It never leaves the
/// machine: a `Rotate` from it says `from: None`.
const NO_KEY: KeyId = KeyId(u32::MAX);

impl RetryMachine {
    pub(super) fn on_response(
        &mut self,
        now: Time,
        observation: &Observation<'_>,
    ) -> Option<SeenSummary> {
        let State::AwaitingResponse { via, .. } = self.state else {
            return None;
        };
        let provider = self.pool.targets()[via.target].provider;
        let wall_clock = self
            .wall_clock_epoch_unix_ms
            .map(|epoch| epoch.saturating_add(now.0));
        let c = classify(provider, observation, wall_clock);
        let seen = self.trace.is_some().then(|| summarize(&c));
        // Overload control (issue #14): the breaker and the retry budget learn the outcome.
        self.record_outcome(now, via.target, c.reason);
        if c.reason == Reason::Success {
            if let Some(entry) = self.pool.entry_mut(via.key) {
                entry.rejections = 0;
            }
            self.state = State::Committed { via };
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
        match self.state {
            State::AwaitingResponse { timeout_at, .. } if now >= timeout_at => self.on_response(
                now,
                &Observation::Transport(crate::classify::TransportError::Timeout),
            ),
            State::Sleeping { until, .. } if now >= until => {
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
        let State::Committed { via } = self.state else {
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

    /// The behaviour table.
    fn on_failure(&mut self, now: Time, at: KeyRef, c: Classification) {
        let why = c.reason;
        let hint = c.wait;
        let server_says_no = c.server_retry == Some(false);
        let server_says_yes = c.server_retry == Some(true);
        self.last_failure = Some((at, c));
        match why {
            Reason::KeyRejected => self.on_key_rejected(now, at),
            Reason::QuotaExhausted => {
                // Rate-limit hints (retry-after, reset headers, "try again in") describe a
                // rate-limit window, not the quota: only a reset that states the quota's own
                // (Gemini's RetryInfo) ends the exhaustion early.
                let quota_reset = hint.filter(|h| h.source == HintSource::RetryInfo);
                let until =
                    now + Millis(quota_reset.map_or(self.policy.quota_cooldown_ms, |h| h.after_ms));
                self.bench(at.key, KeyState::Exhausted(until));
                self.rotate_wait_or_fallback(now, at, why, None, server_says_no);
            }
            Reason::PermissionDenied => {
                self.excluded.push(at.key);
                self.rotate_wait_or_fallback(now, at, why, None, server_says_no);
            }
            Reason::RateLimited => {
                let (wait_ms, own_wait) = self.wait_for(why, hint);
                self.bench(at.key, KeyState::CoolingDown(now + Millis(wait_ms)));
                self.rotate_wait_or_fallback(now, at, why, Some(own_wait), server_says_no);
            }
            Reason::UpstreamRateLimited => {
                if !self.fallback(now, at, why, false) {
                    self.retry_same(now, at, why, hint, false, server_says_no);
                }
            }
            Reason::Overloaded | Reason::ServerError | Reason::Unknown => {
                self.retry_same(now, at, why, hint, false, server_says_no)
            }
            Reason::Timeout | Reason::ConnectionFailed => {
                self.retry_same(now, at, why, hint, true, server_says_no)
            }
            Reason::TlsCertificate | Reason::BlockedByWaf | Reason::ModelNotFound => {
                self.fallback_or_abort(now, at, why, false)
            }
            Reason::ContextOverflow => self.fallback_or_abort(now, at, why, true),
            // Too many bytes, not too many tokens: any other target may take them.
            Reason::PayloadTooLarge => self.fallback_or_abort(now, at, why, false),
            Reason::ContentFilter if self.policy.fallback_on_content_filter => {
                self.fallback_or_abort(now, at, why, false)
            }
            Reason::MalformedRequest if server_says_yes => {
                self.retry_same(now, at, why, hint, false, false)
            }
            Reason::ContentFilter | Reason::MalformedRequest => {
                self.abort(now, AbortReason::NotRetryable, None)
            }
            Reason::Success => {}
        }
    }

    /// A rejected key is retried once, on a fresh connection and without a sleep, only when
    /// nothing else could be used; otherwise it is revoked at once.
    fn on_key_rejected(&mut self, now: Time, at: KeyRef) {
        let strikes = self.pool.entry_mut(at.key).map_or(2, |k| {
            k.rejections = k.rejections.saturating_add(1);
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
            self.pool.set_state(at.key, KeyState::Revoked);
            self.rotate_wait_or_fallback(now, at, Reason::KeyRejected, None, false);
        } else {
            self.go(now, at.target, at.key, true, None, Reason::KeyRejected);
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

    /// After a key-scoped fault: another ready key at once; else wait for the first key of
    /// this target to come back if that fits the limits; else the next target; else abort.
    /// `own_wait` is the sleep reason when the key that failed is itself the one to wait for.
    fn rotate_wait_or_fallback(
        &mut self,
        now: Time,
        at: KeyRef,
        why: Reason,
        own_wait: Option<SleepReason>,
        server_says_no: bool,
    ) {
        if let Some(key) = self
            .pool
            .pick(at.target, now, self.policy.selection, &self.excluded)
        {
            return self.go(now, at.target, key, false, Some(at), why);
        }
        let ready_at = self
            .pool
            .earliest_ready(at.target, &self.excluded)
            .filter(|t| *t > now);
        let beyond_cap = ready_at.is_some_and(|t| self.beyond_user_cap(t.since(now).0));
        if let Some(ready_at) = ready_at {
            let within_limits = !server_says_no
                && ready_at < self.deadline
                && !beyond_cap
                && self.transient_retries < self.policy.transient_retries_per_target
                && self.can_send_more();
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
                    fresh: false,
                    from: Some(at),
                    why,
                };
                return self.sleep(now, ready_at, reason, resume);
            }
        }
        if self.fallback(now, at, why, false) {
            return;
        }
        let reason = match why {
            Reason::KeyRejected => AbortReason::AuthPermanent,
            Reason::QuotaExhausted => AbortReason::QuotaExhausted,
            Reason::PermissionDenied => AbortReason::PermissionDenied,
            _ if self
                .pool
                .earliest_ready(at.target, &self.excluded)
                .is_none() =>
            {
                AbortReason::NoUsableKey
            }
            _ if server_says_no => AbortReason::ServerSaidNoRetry,
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
        self.abort(now, reason, ready_at);
    }

    /// After a transient fault: wait (the server's hint, else backoff) and send again.
    fn retry_same(
        &mut self,
        now: Time,
        at: KeyRef,
        why: Reason,
        hint: Option<WaitHint>,
        fresh: bool,
        server_says_no: bool,
    ) {
        if server_says_no {
            return self.fallback_or_abort_with(
                now,
                at,
                why,
                false,
                AbortReason::ServerSaidNoRetry,
                None,
            );
        }
        if self.transient_retries >= self.policy.transient_retries_per_target
            || !self.can_send_more()
        {
            // No point sleeping for a send the limits forbid: decide now.
            return self.fallback_or_abort_with(
                now,
                at,
                why,
                false,
                AbortReason::AttemptsExhausted,
                None,
            );
        }
        // Overload control (issue #14): no sleep for a retry the budget cannot pay.
        // When the target's breaker has opened, a fallback beats waiting.
        if !self.budget_allows(at.target, why) {
            return self.budget_denied(now, at, why);
        }
        if self.breaker_open(now, at.target) && self.fallback(now, at, why, false) {
            return;
        }
        let (delay_ms, reason) = self.wait_for(why, hint);
        let until = now + Millis(delay_ms);
        let too_long = hint.is_some() && self.beyond_user_cap(delay_ms);
        if too_long || until >= self.deadline {
            let reason = if until >= self.deadline {
                AbortReason::DeadlineExceeded
            } else {
                AbortReason::ServerWaitTooLong
            };
            return self.fallback_or_abort_with(now, at, why, false, reason, Some(until));
        }
        self.transient_retries += 1;
        let resume = Resume {
            target: at.target,
            prefer: Some(at.key),
            fresh,
            from: None,
            why,
        };
        self.sleep(now, until, reason, resume);
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

    /// Holds a key back after a rate limit or a spent quota. What the key's state already
    /// says may only get stricter: a revocation or an outside mark that arrived while the
    /// request was in flight stays (only a restore lifts it).
    fn bench(&mut self, key: KeyId, state: KeyState) {
        let now_state = self.pool.state(key);
        self.pool.set_state(key, now_state.worse(state));
    }

    /// Whether a server's wait of `wait_ms` is longer than the caller's own cap.
    fn beyond_user_cap(&self, wait_ms: u64) -> bool {
        self.policy
            .max_server_wait_ms
            .is_some_and(|cap| wait_ms > cap)
    }

    /// Whether the attempt limits allow another send on the current target.
    fn can_send_more(&self) -> bool {
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
            self.transient_retries,
            self.previous_delay_ms,
            &mut self.rng,
        );
        self.previous_delay_ms = delay;
        delay
    }

    fn fallback_or_abort(&mut self, now: Time, at: KeyRef, why: Reason, larger_context: bool) {
        self.fallback_or_abort_with(
            now,
            at,
            why,
            larger_context,
            AbortReason::NotRetryable,
            None,
        );
    }

    fn fallback_or_abort_with(
        &mut self,
        now: Time,
        at: KeyRef,
        why: Reason,
        larger_context: bool,
        reason: AbortReason,
        retry_at: Option<Time>,
    ) {
        if !self.fallback(now, at, why, larger_context) {
            self.abort(now, reason, retry_at);
        }
    }

    /// Moves to the next target in the chain that has a ready key (and, after a context
    /// overflow, a larger context window). Returns false when there is none.
    pub(super) fn fallback(
        &mut self,
        now: Time,
        at: KeyRef,
        why: Reason,
        larger_context: bool,
    ) -> bool {
        let current_context = self.pool.targets()[self.target].context_tokens;
        for t in self.target + 1..self.pool.targets().len() {
            let context = self.pool.targets()[t].context_tokens;
            // After a context overflow only a known, larger window can help.
            let larger = context.is_some_and(|c| current_context.is_none_or(|cur| c > cur));
            if larger_context && !larger {
                continue;
            }
            if let Some(key) = self
                .pool
                .pick(t, now, self.policy.selection, &self.excluded)
            {
                self.target = t;
                self.target_attempts = 0;
                self.transient_retries = 0;
                self.previous_delay_ms = 0;
                self.go(now, t, key, false, Some(at), why);
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
        fresh: bool,
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
                false,
                AbortReason::AttemptsExhausted,
                None,
            );
        }
        if !self.pool.state(key).usable_at(now) || self.excluded.contains(&key) {
            // The key went bad while we were deciding (a pool change during the attempt):
            // decide again without it.
            let at = from.unwrap_or(to);
            return self.rotate_wait_or_fallback(now, at, why, None, false);
        }
        // Overload control (issue #14): the target's breaker, then the retry budget.
        if !self.overload_gate(now, t, key, fresh, from, why) {
            return;
        }
        if let Some(from) = from.filter(|f| *f != to) {
            // The placeholder for "no key was in use" is never shown to the caller.
            let from = (from.key != NO_KEY).then_some(from);
            self.push(Action::Rotate { from, to, why });
        }
        self.attempts += 1;
        self.target_attempts += 1;
        self.pool.note_used(to, now);
        let timeout_at = now + Millis(self.policy.attempt_timeout_ms);
        self.state = State::AwaitingResponse {
            via: to,
            attempt: self.attempts,
            timeout_at,
        };
        self.push(Action::Send(Send {
            target: t,
            key,
            attempt: self.attempts,
            fresh_connection: fresh,
            timeout_at,
            idempotency_key: self.idempotency_key,
        }));
    }

    pub(super) fn sleep(&mut self, now: Time, until: Time, reason: SleepReason, resume: Resume) {
        self.resume = Some(resume);
        if until <= now {
            return self.wake(now);
        }
        self.state = State::Sleeping { until, reason };
        self.push(Action::Sleep { until, reason });
    }

    /// The sleep is over (or cut short): send with the preferred key if it is usable, else
    /// with any ready key of the target, else decide again.
    pub(super) fn wake(&mut self, now: Time) {
        let Some(resume) = self.resume.take() else {
            return;
        };
        let preferred = resume
            .prefer
            .filter(|k| self.pool.state(*k).usable_at(now) && !self.excluded.contains(k));
        let key = preferred.or_else(|| {
            self.pool
                .pick(resume.target, now, self.policy.selection, &self.excluded)
        });
        match key {
            Some(key) => {
                let from = resume.from.or(resume.prefer.map(|k| KeyRef {
                    target: resume.target,
                    key: k,
                }));
                self.go(now, resume.target, key, resume.fresh, from, resume.why);
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
        self.rotate_wait_or_fallback(now, at, why, None, false);
    }

    pub(super) fn abort(&mut self, now: Time, reason: AbortReason, retry_at: Option<Time>) {
        let message = self.abort_message(now, reason, retry_at);
        let last_failure = self.last_failure.as_ref().map(|(_, c)| c.reason);
        self.resume = None;
        self.state = State::Aborted { reason };
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
            State::Sleeping { until, reason },
            Some(resume),
        ) = (&change, self.state, self.resume)
        {
            let waiting_for_keys =
                matches!(reason, SleepReason::AllKeysCooling) || resume.why == Reason::RateLimited;
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
        if let (Some(key), State::Sleeping { reason, .. }, Some(resume)) =
            (touched, self.state, self.resume)
        {
            let waiting_for_keys =
                matches!(reason, SleepReason::AllKeysCooling) || resume.why == Reason::RateLimited;
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
        if let Some(resume) = self.resume.as_mut() {
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
