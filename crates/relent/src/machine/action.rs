//! What the machine asks the driver to do.

use crate::classify::{HintSource, Reason};
use crate::pool::{KeyId, KeyRef};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One idempotency key for the whole logical call, reused by every attempt, so a provider
/// that deduplicates can recognise a retry. Drawn from the machine's seeded RNG.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(pub u128);

// Serialized as its display form: readable, and u128 is not supported by every format.
impl Serialize for IdempotencyKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.strip_prefix("relent-")
            .and_then(|hex| u128::from_str_radix(hex, 16).ok())
            .map(IdempotencyKey)
            .ok_or_else(|| serde::de::Error::custom(format!("not an idempotency key: {text:?}")))
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `relent-` and 32 lower-case hex digits, written without the formatting machinery
        // (a driver prints one per attempt).
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = *b"relent-00000000000000000000000000000000";
        for (i, digit) in text[7..].iter_mut().enumerate() {
            *digit = HEX[((self.0 >> (124 - 4 * i)) & 0xf) as usize];
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// Send the request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Send {
    /// Index of the target in the fallback chain.
    pub target: usize,
    /// The key to authenticate with (the driver looks up its secret).
    pub key: KeyId,
    /// 1 for the first send of the call, counting every send.
    pub attempt: u32,
    /// Open a new connection instead of reusing a pooled one (after resets, timeouts, and
    /// the single retry of a rejected key, which may have hit a bad proxy or node).
    pub fresh_connection: bool,
    /// Abandon the attempt at this time and report [`crate::Event::Timeout`].
    pub timeout_at: Time,
    /// The call's idempotency key.
    pub idempotency_key: IdempotencyKey,
}

/// Why the machine sleeps.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum SleepReason {
    /// A computed backoff after a transient fault.
    Backoff {
        /// The fault.
        after: Reason,
    },
    /// The server said how long to wait.
    ServerHint {
        /// The fault.
        after: Reason,
        /// Which header or field said so.
        source: HintSource,
    },
    /// Every usable key of the target is cooling down; the sleep ends when the first is
    /// ready, or sooner if the pool gains a usable key.
    AllKeysCooling,
    /// The client's retry budget cannot pay for the retry yet: the sleep ends when the
    /// budget's refill does (`Policy::overload`, issue #14).
    RetryBudget {
        /// The fault the retry follows.
        after: Reason,
    },
}

impl SleepReason {
    /// A short snake_case name for metrics and logs.
    pub fn name(&self) -> &'static str {
        match self {
            SleepReason::Backoff { .. } => "backoff",
            SleepReason::ServerHint { .. } => "server_hint",
            SleepReason::AllKeysCooling => "all_keys_cooling",
            SleepReason::RetryBudget { .. } => "retry_budget",
        }
    }

    /// The fault the wait follows, when it follows one.
    pub fn after(&self) -> Option<Reason> {
        match self {
            SleepReason::Backoff { after }
            | SleepReason::ServerHint { after, .. }
            | SleepReason::RetryBudget { after } => Some(*after),
            SleepReason::AllKeysCooling => None,
        }
    }
}

/// Why a call was given up.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AbortReason {
    /// Every usable key was rejected by the provider.
    AuthPermanent,
    /// Every usable key is out of credit or quota.
    QuotaExhausted,
    /// The key is not entitled to this model or region, and no other key or target is.
    PermissionDenied,
    /// The request itself must change (malformed, too long, filtered, unknown model, …).
    NotRetryable,
    /// The only way forward ends after the deadline.
    DeadlineExceeded,
    /// The attempt limits are spent.
    AttemptsExhausted,
    /// The server asked for a wait longer than the caller's own cap
    /// (`Policy::max_server_wait_ms`), though it would end inside the deadline.
    ServerWaitTooLong,
    /// No key of any target can be used (all removed or revoked).
    NoUsableKey,
    /// The server said not to retry.
    ServerSaidNoRetry,
    /// The caller cancelled.
    Cancelled,
    /// A failure after the response was committed to the caller.
    FailedAfterCommit,
    /// The client's retry budget could not pay for a retry: the provider is failing many
    /// of this client's calls, and more retries would add to its load (issue #14).
    RetryBudgetExhausted,
    /// The target's circuit breaker is open (or its half-open probes are out) past what
    /// the call may wait, and no fallback target can take the call (issue #14).
    CircuitOpen,
}

impl AbortReason {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            AbortReason::AuthPermanent => "auth_permanent",
            AbortReason::QuotaExhausted => "quota_exhausted",
            AbortReason::PermissionDenied => "permission_denied",
            AbortReason::NotRetryable => "not_retryable",
            AbortReason::DeadlineExceeded => "deadline_exceeded",
            AbortReason::AttemptsExhausted => "attempts_exhausted",
            AbortReason::ServerWaitTooLong => "server_wait_too_long",
            AbortReason::NoUsableKey => "no_usable_key",
            AbortReason::ServerSaidNoRetry => "server_said_no_retry",
            AbortReason::Cancelled => "cancelled",
            AbortReason::FailedAfterCommit => "failed_after_commit",
            AbortReason::RetryBudgetExhausted => "retry_budget_exhausted",
            AbortReason::CircuitOpen => "circuit_open",
        }
    }
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed, actionable failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    /// Why.
    pub reason: AbortReason,
    /// What happened and what to do, for humans. Never contains a secret.
    pub message: String,
    /// The classification of the last failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Reason>,
    /// The earliest time a retry could succeed, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Time>,
    /// Sends made.
    pub attempts: u32,
}

/// The next thing the driver must do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Send the request; report the outcome with [`crate::Event::Response`], or
    /// [`crate::Event::Timeout`] at `timeout_at`.
    Send(Send),
    /// Wait until `until`, then report [`crate::Event::Timeout`]. A pool change may end the
    /// wait early (the machine then emits a `Send` at once).
    Sleep {
        /// When to wake.
        until: Time,
        /// Why.
        reason: SleepReason,
    },
    /// Informational: the machine moves from one key (or target) to another. A `Send`
    /// follows.
    Rotate {
        /// The key given up; `None` when no key was in use (the call waited from its start
        /// for a key to become ready).
        from: Option<KeyRef>,
        /// The key to use next.
        to: KeyRef,
        /// The fault that caused the move.
        why: Reason,
    },
    /// The response is good: hand it to the caller. For a streamed response, report its end
    /// with [`crate::Event::StreamEnded`] or its failure with [`crate::Event::StreamFailed`].
    Succeeded {
        /// The key that succeeded.
        via: KeyRef,
        /// Sends made.
        attempts: u32,
    },
    /// Give up.
    Abort(Abort),
}

impl Action {
    /// A short name for tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Send(_) => "send",
            Action::Sleep { .. } => "sleep",
            Action::Rotate { .. } => "rotate",
            Action::Succeeded { .. } => "succeeded",
            Action::Abort(_) => "abort",
        }
    }
}
