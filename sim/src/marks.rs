//! Coverage marks: the rare paths a standard run must reach ("sometimes" properties).
//!
//! A mark is one bit: hitting one costs a few instructions and no allocation, since the
//! simulator hits several per world.

use relent::{Action, Reason, SleepReason};
use serde::{Serialize, Serializer};

/// The action kinds, in the order of their bits (after the reasons).
const ACTIONS: [&str; 5] = ["send", "sleep", "rotate", "succeeded", "abort"];

/// The named marks, in the order of their bits (after the action kinds).
const NAMED: [&str; 34] = [
    "rotate_after:key_rejected",
    "rotate_after:quota_exhausted",
    "rotate_after:rate_limited",
    "fallback_to_another_target",
    "pool_change_during_sleep",
    "abort_at_deadline",
    "server_wait_honoured",
    "all_keys_cooling",
    "liveness_checked",
    "concurrent_calls",
    "later_call_inherited_key_state",
    "later_call_succeeded",
    "restart_after_commit",
    "fallback_after_overload",
    "revoked_key_reprobed",
    "retry_denied",
    "retry_budget_waited",
    "breaker_opened",
    "breaker_half_opened",
    "breaker_closed",
    "key_cooldown_escalated",
    "key_cooldown_escalated_across_calls",
    "key_cooldown_restarted_after_success",
    "retried_when_the_server_said_so",
    "ejection_guard_held",
    "backoff_drew_its_top",
    "equal_jitter_backoff_in_top_eighth",
    "key_cooldown_jitter_in_upper_half",
    "aborted_as_the_server_said_no_retry",
    "aborted_on_a_server_wait_over_the_cap",
    "outside_mark_during_a_reprobe",
    "sleep_ended_when_its_keys_were_lost",
    "sleep_went_on_after_a_key_was_lost",
    "a_lift_met_a_rejection_in_the_merge",
];

const REASONS: usize = Reason::ALL.len();
const ALL_MARKS: usize = REASONS + ACTIONS.len() + NAMED.len();
const _: () = assert!(ALL_MARKS <= 64, "marks are bits of a u64");

/// A mark with a fixed name (not a reason or an action kind).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Named {
    /// A key was rotated away after it was rejected.
    RotateAfterKeyRejected,
    /// A key was rotated away after its quota ran out.
    RotateAfterQuotaExhausted,
    /// A key was rotated away after a rate limit.
    RotateAfterRateLimited,
    /// The call moved down the fallback chain.
    FallbackToAnotherTarget,
    /// The pool changed while the machine slept.
    PoolChangeDuringSleep,
    /// The call was aborted at its deadline.
    AbortAtDeadline,
    /// The machine slept for a server's wait hint.
    ServerWaitHonoured,
    /// The machine slept because every key was cooling.
    AllKeysCooling,
    /// The liveness check applied to the world.
    LivenessChecked,
    /// Two calls of one client ran at the same time.
    ConcurrentCalls,
    /// A call started from a pool in which an earlier call had revoked or benched a key.
    LaterCallInheritedKeyState,
    /// A call after the first succeeded.
    LaterCallSucceeded,
    /// A failed stream was restarted because the policy allows it.
    RestartAfterCommit,
    /// The call moved down the chain after overloads instead of waiting again.
    FallbackAfterOverload,
    /// A key the provider had revoked was probed again.
    RevokedKeyReprobed,
    /// The retry budget denied a retry (issue #14).
    RetryDenied,
    /// A retry waited for the retry budget's refill (issue #14).
    RetryBudgetWaited,
    /// A target's breaker opened.
    BreakerOpened,
    /// An open breaker admitted a half-open probe.
    BreakerHalfOpened,
    /// A half-open breaker closed after its probes succeeded.
    BreakerClosed,
    /// A key drew its second (or later) rate limit with no hint in a row, so its cooldown
    /// escalated (issue #14 item 2).
    KeyCooldownEscalated,
    /// ... with a count an earlier call of the client had started.
    KeyCooldownEscalatedAcrossCalls,
    /// A key drew a rate limit with no hint after a success had reset its count of such
    /// cooldowns, so its cooldown started again from the base.
    KeyCooldownRestartedAfterSuccess,
    /// A request the provider refused (a 400) was sent again on the same key because the
    /// server said it may succeed as sent (`x-should-retry: true`).
    RetriedWhenTheServerSaidSo,
    /// The ejection guard held a key back from a bench after a hint-less rate limit, as
    /// one the target's keys share (issue #14 item 2, invariant 29).
    EjectionGuardHeld,
    /// A call's first backoff drew the very top of its jittered range (a draw that leaves
    /// out the top, as an off-by-one in the uniform draw does, never reaches it).
    BackoffDrewItsTop,
    /// A call's first equal-jitter backoff drew from the top eighth of its range.
    EqualJitterBackoffInTopEighth,
    /// A hint-less key cooldown drew more than half its jitter above its floor.
    KeyCooldownJitterInUpperHalf,
    /// A call ended `server_said_no_retry` (`x-should-retry: false`).
    AbortedAsTheServerSaidNoRetry,
    /// A call ended `server_wait_too_long` (a server's wait over `max_server_wait_ms`).
    AbortedOnAServerWaitOverTheCap,
    /// A key was marked bad from outside while its re-probe was out
    /// (`TimedChange::on_reprobe`).
    OutsideMarkDuringAReprobe,
    /// A key removed or marked bad during a sleep for cooling keys left no key due before
    /// the sleep's end, so the sleep ended (invariant 14).
    SleepEndedWhenItsKeysWereLost,
    /// A key removed or marked bad during a sleep for cooling keys left another key due
    /// before the sleep's end, so the sleep went on (invariant 14).
    SleepWentOnAfterAKeyWasLost,
    /// One call's re-probe lifted a key's revocation, and another call's rejection of the
    /// same key met it when the client took in what the calls learned (of the two, the
    /// later stands).
    ALiftMetARejectionInTheMerge,
}

/// The marks reached.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks(u64);

impl Marks {
    /// Every mark a standard run must reach, by name.
    pub fn required() -> Vec<String> {
        (0..ALL_MARKS).map(name).collect()
    }

    /// The names of the marks reached.
    pub fn names(&self) -> Vec<String> {
        (0..ALL_MARKS)
            .filter(|bit| self.0 & (1 << bit) != 0)
            .map(name)
            .collect()
    }

    /// How many marks were reached.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether no mark was reached.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Whether the mark called `name` was reached.
    pub fn contains(&self, name: &str) -> bool {
        (0..ALL_MARKS).any(|bit| self.0 & (1 << bit) != 0 && self::name(bit) == name)
    }

    /// Adds a named mark.
    pub fn hit(&mut self, mark: Named) {
        self.set(REASONS + ACTIONS.len() + mark as usize);
    }

    /// Merges another set in.
    pub fn merge(&mut self, other: &Marks) {
        self.0 |= other.0;
    }

    /// Required marks not reached.
    pub fn missing(&self) -> Vec<String> {
        (0..ALL_MARKS)
            .filter(|bit| self.0 & (1 << bit) == 0)
            .map(name)
            .collect()
    }

    fn set(&mut self, bit: usize) {
        self.0 |= 1 << bit;
    }

    pub(crate) fn action(&mut self, action: &Action) {
        let kind = match action {
            Action::Send(_) => 0,
            Action::Sleep { .. } => 1,
            Action::Rotate { .. } => 2,
            Action::Succeeded { .. } => 3,
            Action::Abort(_) => 4,
        };
        self.set(REASONS + kind);
        match action {
            Action::Rotate { from, to, why } => {
                if from.is_some_and(|f| f.target != to.target) {
                    self.hit(Named::FallbackToAnotherTarget);
                    if *why == Reason::Overloaded {
                        self.hit(Named::FallbackAfterOverload);
                    }
                } else {
                    match why {
                        Reason::KeyRejected => self.hit(Named::RotateAfterKeyRejected),
                        Reason::QuotaExhausted => self.hit(Named::RotateAfterQuotaExhausted),
                        Reason::RateLimited => self.hit(Named::RotateAfterRateLimited),
                        _ => {}
                    }
                }
            }
            Action::Sleep {
                reason: SleepReason::ServerHint { .. },
                ..
            } => self.hit(Named::ServerWaitHonoured),
            Action::Sleep {
                reason: SleepReason::AllKeysCooling,
                ..
            } => self.hit(Named::AllKeysCooling),
            Action::Sleep {
                reason: SleepReason::RetryBudget { .. },
                ..
            } => self.hit(Named::RetryBudgetWaited),
            Action::Abort(abort) if abort.reason == relent::AbortReason::DeadlineExceeded => {
                self.hit(Named::AbortAtDeadline)
            }
            Action::Abort(abort) if abort.reason == relent::AbortReason::RetryBudgetExhausted => {
                self.hit(Named::RetryDenied)
            }
            Action::Abort(abort) if abort.reason == relent::AbortReason::ServerSaidNoRetry => {
                self.hit(Named::AbortedAsTheServerSaidNoRetry)
            }
            Action::Abort(abort) if abort.reason == relent::AbortReason::ServerWaitTooLong => {
                self.hit(Named::AbortedOnAServerWaitOverTheCap)
            }
            _ => {}
        }
    }

    pub(crate) fn reason(&mut self, reason: Reason) {
        self.set(reason as usize);
    }
}

/// The name of the mark at `bit`.
fn name(bit: usize) -> String {
    if bit < REASONS {
        format!("reason:{}", Reason::ALL[bit])
    } else if bit < REASONS + ACTIONS.len() {
        format!("action:{}", ACTIONS[bit - REASONS])
    } else {
        NAMED[bit - REASONS - ACTIONS.len()].to_string()
    }
}

impl Serialize for Marks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut names = self.names();
        names.sort();
        names.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_bits_follow_the_declaration_order() {
        for (i, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{reason}");
        }
    }

    #[test]
    fn every_mark_has_its_own_name() {
        let mut names = Marks::required();
        assert_eq!(names.len(), ALL_MARKS);
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL_MARKS);
    }

    #[test]
    fn hits_are_named() {
        let mut marks = Marks::default();
        marks.hit(Named::LivenessChecked);
        marks.reason(Reason::RateLimited);
        assert_eq!(marks.len(), 2);
        assert!(marks.contains("liveness_checked"));
        assert!(marks.contains("reason:rate_limited"));
        assert!(!marks.missing().contains(&"liveness_checked".to_string()));
        assert_eq!(marks.missing().len(), ALL_MARKS - 2);
    }
}
