//! The retry policy: every limit and constant the machine uses, with documented defaults.
//!
//! Each default is explained, with the reference that motivated it, in `docs/POLICY.md`.

use crate::backoff::Backoff;
use crate::pool::Selection;
use serde::{Deserialize, Serialize};

/// Limits and constants for one logical call. Deserializes from JSON or TOML; missing fields
/// take their defaults, unknown fields are an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Most sends in one logical call, across all keys and targets.
    pub max_attempts: u32,
    /// Most sends to one target.
    pub max_attempts_per_target: u32,
    /// Most waits-then-retry for transient faults (server error, timeout, rate limit with no
    /// other key) on one target. Rotations to another key do not count, and neither do
    /// retries after an overload: those spend the deadline instead (bounded by the two
    /// attempt limits), because provider overloads last tens of seconds to minutes.
    pub transient_retries_per_target: u32,
    /// After this many overload answers (529, 503, "overloaded") in a row from one target,
    /// a later target of the chain with a ready key is tried instead of waiting again.
    pub overload_attempts_before_fallback: u32,
    /// The longest wait, in milliseconds, the machine sleeps on the current target (for its
    /// cooling keys, or for a server's or its own backoff) while a later target of the chain
    /// has a key ready now; a longer wait goes to that target instead.
    pub max_wait_before_fallback_ms: u64,
    /// How long, in milliseconds, a key the provider rejected stays revoked before it may be
    /// probed again with one send, and then only when no other key of its target is usable.
    /// `None`: never (only a `Restored` pool change lifts a revocation). A key revoked by an
    /// outside `MarkedBad` is never probed.
    pub revoked_reprobe_after_ms: Option<u64>,
    /// The whole call's budget, from `start`, in milliseconds.
    pub deadline_ms: u64,
    /// How long one attempt may take before it is abandoned, in milliseconds. No attempt
    /// outlives the call: an attempt's timeout is also capped at the call's deadline.
    pub attempt_timeout_ms: u64,
    /// The computed delay between retries.
    pub backoff: Backoff,
    /// The computed delay after congestion: a provider-wide overload (529, 503, 498,
    /// "overloaded") or a rate limit that named no wait. Slower than `backoff`, because both
    /// last tens of seconds and every early retry adds to them or is wasted.
    pub congestion_backoff: Backoff,
    /// A cap of the caller's own on a single wait the machine sleeps on a server's say-so,
    /// in milliseconds; unset by default, so any wait that ends inside the deadline is
    /// honoured. A longer server wait is never shortened (that would send before the
    /// server's reset): the machine rotates, falls back, or aborts with reason
    /// `server_wait_too_long` and the time a retry could succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_server_wait_ms: Option<u64>,
    /// How long a key stays exhausted after a credit or quota error that names no reset.
    pub quota_cooldown_ms: u64,
    /// How a key that keeps drawing rate limits with no server hint cools for longer each
    /// time (issue #14 item 2).
    pub key_cooldown: KeyCooldown,
    /// The ejection guard for keys (issue #14 item 2), after Envoy's `max_ejection_percent`:
    /// the largest share of a target's keys, in percent, that rate limits with no usable
    /// hint may leave cooling at once. A hint-less rate limit that would bench a key beyond
    /// it is read as a limit the keys share (an organisation's, or the provider's): the key
    /// is not benched and its cooldown does not escalate; the call falls back to a later
    /// target with a ready key, else backs off on this one and sends again. One key may
    /// always be benched. `100` turns the guard off. Keys benched for their own faults
    /// (rejected, out of quota, not entitled) are neither limited nor counted.
    pub max_ejection_percent: u8,
    /// How to choose among ready keys.
    pub selection: Selection,
    /// Whether a content-filter refusal may be retried on the next target.
    pub fallback_on_content_filter: bool,
    /// Whether a failure after the response was committed to the caller may restart the call
    /// from scratch (only for callers that can discard what they received).
    pub restart_after_commit: bool,
    /// Overload control shared by a client's calls (issue #14): the retry budget and the
    /// per-target circuit breaker.
    pub overload: crate::overload::OverloadPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 10,
            max_attempts_per_target: 10,
            transient_retries_per_target: 4,
            overload_attempts_before_fallback: 2,
            max_wait_before_fallback_ms: 5_000,
            revoked_reprobe_after_ms: Some(3_600_000),
            deadline_ms: 120_000,
            attempt_timeout_ms: 60_000,
            backoff: Backoff::default(),
            congestion_backoff: Backoff {
                jitter: crate::backoff::Jitter::Equal,
                base_ms: 5_000,
                cap_ms: 30_000,
            },
            max_server_wait_ms: None,
            quota_cooldown_ms: 3_600_000,
            key_cooldown: KeyCooldown::default(),
            max_ejection_percent: 50,
            selection: Selection::Priority,
            fallback_on_content_filter: false,
            restart_after_commit: false,
            overload: crate::overload::OverloadPolicy::default(),
        }
    }
}

/// Escalating key cooldowns, after Envoy's outlier detection (`base_ejection_time`,
/// `max_ejection_time`, `max_ejection_time_jitter`): the n-th rate limit in a row that a key
/// draws with no usable server hint (no `retry-after`, no reset header, no "try again in")
/// benches it for at least `min(base_ms × n, max_ms)`, plus a jitter of up to
/// `jitter_percent` of that, drawn from the machine's seeded RNG. The count is kept in the
/// pool (`KeyEntry::cooldowns`), so it lasts across a client's calls; a success with the key
/// or a `Restored` pool change resets it. A server's hint is never lengthened or shortened:
/// a hinted rate limit neither counts nor resets. The call's own congestion backoff still
/// applies when it is longer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyCooldown {
    /// Whether cooldowns escalate at all; `false` benches a hint-less rate-limited key for
    /// one congestion-backoff delay, as before.
    pub enabled: bool,
    /// The first hint-less cooldown's floor, in milliseconds; the n-th in a row is n times it.
    pub base_ms: u64,
    /// The most the floor grows to, in milliseconds.
    pub max_ms: u64,
    /// The jitter added to the floor: uniform, up to this share of it, in percent.
    pub jitter_percent: u8,
}

impl Default for KeyCooldown {
    fn default() -> Self {
        KeyCooldown {
            enabled: true,
            base_ms: 5_000,
            max_ms: 60_000,
            jitter_percent: 20,
        }
    }
}

impl KeyCooldown {
    /// Escalation off: a hint-less rate limit benches a key for one congestion backoff.
    pub fn off() -> Self {
        KeyCooldown {
            enabled: false,
            ..KeyCooldown::default()
        }
    }

    /// The floor of the `n`-th hint-less cooldown in a row (`n` from 1): `min(base × n,
    /// max)`; zero when escalation is off.
    pub fn floor_ms(&self, n: u8) -> u64 {
        if !self.enabled {
            return 0;
        }
        self.base_ms.saturating_mul(u64::from(n)).min(self.max_ms)
    }

    /// The most jitter added to a floor of `floor_ms`.
    pub fn jitter_ms(&self, floor_ms: u64) -> u64 {
        floor_ms.saturating_mul(u64::from(self.jitter_percent)) / 100
    }
}

/// Whether the ejection guard holds a key back from a bench (`Policy::max_ejection_percent`):
/// `cooling` other keys of its target already cool after rate limits, out of `eligible`
/// keys that could take a request (usable now or cooling; the key itself included). At
/// least one key may always be benched (as with Envoy's `always_eject_one_host`); beyond
/// that, benching one more may not take the cooling share above `max_percent`. `100` (or
/// more) never holds.
pub fn ejection_guard_holds(max_percent: u8, cooling: usize, eligible: usize) -> bool {
    let max_percent = u64::from(max_percent);
    if max_percent >= 100 || cooling == 0 {
        return false;
    }
    (cooling as u64 + 1) * 100 > max_percent * eligible as u64
}

/// The largest attempt or retry limit a policy may set: far beyond any sensible call, small
/// enough that a call always ends in a bounded number of steps.
pub const MAX_LIMIT: u64 = 1_000;

/// A policy that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A limit that must be positive is zero.
    #[error("policy field `{0}` must be greater than zero")]
    Zero(&'static str),
    /// A limit is so large that it could not be meant (the machine would run for ever).
    #[error("policy field `{0}` is {1}, above the most it may be ({2})")]
    TooLarge(&'static str, u64, u64),
    /// The key cooldown's most is below its base.
    #[error("policy key_cooldown.max_ms ({max}) is below key_cooldown.base_ms ({base})")]
    KeyCooldownMaxBelowBase {
        /// The base.
        base: u64,
        /// The most.
        max: u64,
    },
    /// The backoff cap is below its base.
    #[error("policy backoff.cap_ms ({cap}) is below backoff.base_ms ({base})")]
    CapBelowBase {
        /// The base.
        base: u64,
        /// The cap.
        cap: u64,
    },
}

impl Policy {
    /// Checks that the policy can work.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (name, value) in [
            ("max_attempts", u64::from(self.max_attempts)),
            (
                "max_attempts_per_target",
                u64::from(self.max_attempts_per_target),
            ),
            ("deadline_ms", self.deadline_ms),
            ("attempt_timeout_ms", self.attempt_timeout_ms),
            // A key out of quota, or rejected, that is usable again at the instant it failed
            // is sent again at once, every time: the loop relent exists to end. Re-probing is
            // turned off with `null`, not 0.
            ("quota_cooldown_ms", self.quota_cooldown_ms),
            (
                "revoked_reprobe_after_ms",
                self.revoked_reprobe_after_ms.unwrap_or(u64::MAX),
            ),
        ] {
            if value == 0 {
                return Err(PolicyError::Zero(name));
            }
        }
        for (name, value) in [
            ("max_attempts", u64::from(self.max_attempts)),
            (
                "max_attempts_per_target",
                u64::from(self.max_attempts_per_target),
            ),
            (
                "transient_retries_per_target",
                u64::from(self.transient_retries_per_target),
            ),
            (
                "overload_attempts_before_fallback",
                u64::from(self.overload_attempts_before_fallback),
            ),
        ] {
            if value > MAX_LIMIT {
                return Err(PolicyError::TooLarge(name, value, MAX_LIMIT));
            }
        }
        // Overload control (issue #14).
        let breaker = &self.overload.breaker;
        if breaker.enabled {
            if breaker.open_ms == 0 {
                return Err(PolicyError::Zero("overload.breaker.open_ms"));
            }
            if breaker.half_open_probes == 0 {
                return Err(PolicyError::Zero("overload.breaker.half_open_probes"));
            }
            let max = u64::from(crate::overload::MAX_WINDOW);
            if u64::from(breaker.window) > max {
                return Err(PolicyError::TooLarge(
                    "overload.breaker.window",
                    u64::from(breaker.window),
                    max,
                ));
            }
        }
        let cooldown = &self.key_cooldown;
        if cooldown.enabled {
            if cooldown.max_ms < cooldown.base_ms {
                return Err(PolicyError::KeyCooldownMaxBelowBase {
                    base: cooldown.base_ms,
                    max: cooldown.max_ms,
                });
            }
            if cooldown.jitter_percent > 100 {
                return Err(PolicyError::TooLarge(
                    "key_cooldown.jitter_percent",
                    u64::from(cooldown.jitter_percent),
                    100,
                ));
            }
        }
        if self.max_ejection_percent > 100 {
            return Err(PolicyError::TooLarge(
                "max_ejection_percent",
                u64::from(self.max_ejection_percent),
                100,
            ));
        }
        for b in [&self.backoff, &self.congestion_backoff] {
            if b.cap_ms < b.base_ms {
                return Err(PolicyError::CapBelowBase {
                    base: b.base_ms,
                    cap: b.cap_ms,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_defaults_and_unknown_fields_are_errors() {
        let p: Policy =
            serde_json::from_str(r#"{"deadline_ms": 30000, "backoff": {"jitter": "full"}}"#)
                .unwrap();
        assert_eq!(p.deadline_ms, 30_000);
        assert_eq!(p.backoff.jitter, crate::Jitter::Full);
        assert_eq!(p.backoff.base_ms, Backoff::default().base_ms);
        assert_eq!(p.max_attempts, Policy::default().max_attempts);
        let err = serde_json::from_str::<Policy>(r#"{"max_retries": 3}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `max_retries`"), "{err}");
    }

    #[test]
    fn validation_names_the_bad_field() {
        let p = Policy {
            max_attempts: 0,
            ..Policy::default()
        };
        assert_eq!(p.validate(), Err(PolicyError::Zero("max_attempts")));
        let p = Policy {
            backoff: Backoff {
                base_ms: 10,
                cap_ms: 5,
                ..Backoff::default()
            },
            ..Policy::default()
        };
        assert!(matches!(
            p.validate(),
            Err(PolicyError::CapBelowBase { .. })
        ));
        assert_eq!(Policy::default().validate(), Ok(()));
    }

    #[test]
    fn a_cooldown_that_ends_when_it_begins_is_refused() {
        // Both would send again to the key that just failed, at the same instant, until the
        // attempts ran out (found by generated worlds under such policies).
        let p = Policy {
            quota_cooldown_ms: 0,
            ..Policy::default()
        };
        assert_eq!(p.validate(), Err(PolicyError::Zero("quota_cooldown_ms")));
        let p = Policy {
            revoked_reprobe_after_ms: Some(0),
            ..Policy::default()
        };
        assert_eq!(
            p.validate(),
            Err(PolicyError::Zero("revoked_reprobe_after_ms"))
        );
        let never = Policy {
            revoked_reprobe_after_ms: None,
            quota_cooldown_ms: 1,
            ..Policy::default()
        };
        assert_eq!(never.validate(), Ok(()));
        let p = Policy {
            max_attempts: u32::MAX,
            ..Policy::default()
        };
        assert!(matches!(
            p.validate(),
            Err(PolicyError::TooLarge("max_attempts", ..))
        ));
        let p = Policy {
            key_cooldown: KeyCooldown {
                base_ms: 10_000,
                max_ms: 5_000,
                ..KeyCooldown::default()
            },
            ..Policy::default()
        };
        assert_eq!(
            p.validate(),
            Err(PolicyError::KeyCooldownMaxBelowBase {
                base: 10_000,
                max: 5_000
            })
        );
        let p = Policy {
            key_cooldown: KeyCooldown {
                jitter_percent: 101,
                ..KeyCooldown::default()
            },
            ..Policy::default()
        };
        assert!(matches!(
            p.validate(),
            Err(PolicyError::TooLarge(
                "key_cooldown.jitter_percent",
                101,
                100
            ))
        ));
    }

    #[test]
    fn the_ejection_guard_allows_one_key_then_at_most_its_share() {
        // One key may always be benched, whatever the share.
        assert!(!ejection_guard_holds(0, 0, 1));
        assert!(!ejection_guard_holds(50, 0, 4));
        // 50 %: one of two keys, one of three, two of four.
        assert!(ejection_guard_holds(50, 1, 2));
        assert!(ejection_guard_holds(50, 1, 3));
        assert!(!ejection_guard_holds(50, 1, 4));
        assert!(ejection_guard_holds(50, 2, 4));
        // Envoy's 10 %: one key in ten, two in twenty.
        assert!(ejection_guard_holds(10, 1, 10));
        assert!(!ejection_guard_holds(10, 1, 20));
        // 100 % is off.
        assert!(!ejection_guard_holds(100, 3, 4));
        assert_eq!(Policy::default().max_ejection_percent, 50);
        let p = Policy {
            max_ejection_percent: 101,
            ..Policy::default()
        };
        assert_eq!(
            p.validate(),
            Err(PolicyError::TooLarge("max_ejection_percent", 101, 100))
        );
    }

    #[test]
    fn key_cooldown_floors_escalate_to_the_cap_and_vanish_when_off() {
        let c = KeyCooldown {
            enabled: true,
            base_ms: 5_000,
            max_ms: 60_000,
            jitter_percent: 20,
        };
        assert_eq!(c.floor_ms(1), 5_000);
        assert_eq!(c.floor_ms(3), 15_000);
        assert_eq!(c.floor_ms(13), 60_000);
        assert_eq!(c.floor_ms(u8::MAX), 60_000);
        assert_eq!(c.jitter_ms(15_000), 3_000);
        assert_eq!(KeyCooldown::off().floor_ms(7), 0);
        let p: Policy = serde_json::from_str(r#"{"key_cooldown": {"enabled": false}}"#).unwrap();
        assert!(!p.key_cooldown.enabled);
        assert_eq!(p.validate(), Ok(()));
    }
}
