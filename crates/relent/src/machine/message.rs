//! Abort messages: what happened, in words a user can act on. Never a secret: keys appear by
//! label, provider text is already redacted by the classifier.

use super::{AbortReason, RetryMachine};
use crate::classify::Reason;
use crate::pool::{KeyId, KeyState};
use crate::time::Time;
use std::fmt::Write;

impl RetryMachine {
    pub(super) fn abort_message(
        &self,
        now: Time,
        reason: AbortReason,
        retry_at: Option<Time>,
    ) -> String {
        let last = self.last_failure.as_ref();
        // A message about keys names the target whose keys answered: the call may have
        // moved on to a fallback since (and found nothing usable there), but the rejection
        // or the spent quota was that target's. Other messages name where the call stands.
        let named = match reason {
            AbortReason::AuthPermanent | AbortReason::QuotaExhausted => {
                last.map_or(self.target, |(at, _)| at.target)
            }
            _ => self.target,
        };
        let target = &self.pool.targets()[named];
        let provider = target.provider;
        let model = &target.model;
        let detail = last.map(|(_, c)| {
            if c.message.is_empty() {
                c.reason.name().to_string()
            } else {
                format!("{}: {}", c.reason, c.message)
            }
        });
        let detail = detail.as_deref().unwrap_or("no response yet");
        // The quoted labels of the target's keys in a state, led by `own` (the key whose
        // answer ended the call) when the pool holds it for another reason by now (removed
        // or marked bad while its request was out).
        let labels = |wanted: fn(KeyState) -> bool, own: Option<KeyId>| -> Vec<String> {
            let mut names: Vec<String> = self
                .pool
                .keys(named)
                .iter()
                .filter(|k| wanted(k.state))
                .map(|k| format!("\"{}\"", k.spec.label))
                .collect();
            if let Some(own) = own.map(|k| format!("\"{}\"", self.pool.label(k))) {
                if !names.contains(&own) {
                    names.insert(0, own);
                }
            }
            names
        };
        let mut m = String::new();
        let _ = match reason {
            AbortReason::AuthPermanent => {
                // Every key of the target held as rejected, and the key whose rejection
                // ended the call.
                let own = last
                    .filter(|(_, c)| c.reason == Reason::KeyRejected)
                    .map(|(at, _)| at.key);
                let rejected = labels(|s| s == KeyState::Revoked, own);
                match rejected.as_slice() {
                    [] | [_] => {
                        let key_label = match rejected.first() {
                            Some(label) => label.clone(),
                            None => format!(
                                "\"{}\"",
                                last.map(|(r, _)| self.pool.label(r.key)).unwrap_or_default()
                            ),
                        };
                        write!(m, "{provider} rejected API key {key_label} ({detail}). Check that the key is valid, active and meant for {provider}, or add another key to the pool.")
                    }
                    many => write!(m, "{provider} rejected the API keys {} for {model} ({detail}). Check the keys, or add a valid one.", many.join(", ")),
                }
            }
            AbortReason::QuotaExhausted => {
                let exhausted = labels(
                    |s| matches!(s, KeyState::Exhausted(_)),
                    last.map(|(at, _)| at.key),
                )
                .join(", ");
                write!(m, "the credit or quota of {exhausted} at {provider} is used up ({detail}). Add credit or a key with quota left")
                    .and_then(|_| match retry_at.or_else(|| self.pool.earliest_ready(named, &self.excluded)) {
                        Some(t) if t > now => write!(m, "; the earliest key resets at {t}."),
                        _ => write!(m, "."),
                    })
            }
            AbortReason::PermissionDenied => {
                write!(m, "no key is allowed to use {provider} {model} ({detail}). Check the account's model access and region, or configure a fallback target.")
            }
            AbortReason::NotRetryable => {
                let advice = match last.map(|(_, c)| c.reason) {
                    Some(Reason::ContextOverflow) => "Shorten the request, or configure a fallback target with a larger context window.",
                    Some(Reason::PayloadTooLarge) => "Send a smaller request body.",
                    Some(Reason::ContentFilter) => "The provider's content filter refused the request; rephrase it, or allow fallback on content filter.",
                    Some(Reason::ModelNotFound) => "Check the model name and that the account has access to it, or configure a fallback target.",
                    Some(Reason::BlockedByWaf) => "A firewall or CDN answered instead of the API; check the base URL and network path, or configure a fallback target.",
                    Some(Reason::TlsCertificate) => "The server's certificate failed verification; check the base URL, proxies and CA bundle.",
                    _ => "The request itself is invalid; fix it, retrying will not help.",
                };
                write!(m, "{provider} {model} refused the request ({detail}). {advice}")
            }
            AbortReason::DeadlineExceeded => {
                write!(m, "gave up at {now} after {}: the only way forward is a wait past the deadline at {} ({detail})", attempts(self.attempts), self.deadline)
                    .and_then(|_| match retry_at {
                        Some(t) => write!(m, "; a retry could succeed at {t}. Raise the deadline, or add keys or a fallback target."),
                        None => write!(m, ". Raise the deadline, or add keys or a fallback target."),
                    })
            }
            AbortReason::ServerWaitTooLong => {
                let cap = self.policy.max_server_wait_ms.filter(|cap| {
                    retry_at.is_none_or(|t| t.since(now).0 > *cap)
                });
                match cap {
                    Some(cap) => write!(m, "{provider} {model} asked to wait longer than this policy's max_server_wait_ms ({cap} ms) ({detail})")
                        .and_then(|_| match retry_at {
                            Some(t) => write!(m, "; a retry could succeed at {t}. Raise max_server_wait_ms, or add keys or a fallback target."),
                            None => write!(m, ". Raise max_server_wait_ms, or add keys or a fallback target."),
                        }),
                    None => write!(m, "{provider} {model} asked to wait a day or more ({detail}); relent does not sleep on a wait that long. Retry later, or add keys or a fallback target."),
                }
            }
            AbortReason::AttemptsExhausted => {
                let waits = match self.transient_retries + self.overload_retries {
                    0 => String::new(),
                    1 => " and 1 wait".to_string(),
                    n => format!(" and {n} waits"),
                };
                write!(m, "{provider} {model} still failing after {}{waits} ({detail}). The provider may be degraded or every key rate limited; retry later, add keys, or configure a fallback target.", attempts(self.attempts))
            }
            AbortReason::NoUsableKey => {
                write!(m, "no usable key for {provider} {model}: every key is removed, revoked or cooling past the deadline. Add a key or restore one.")
            }
            AbortReason::ServerSaidNoRetry => {
                write!(m, "{provider} said not to retry ({detail}). Retrying would not help; check the request and the provider's status.")
            }
            AbortReason::Cancelled => write!(m, "the call was cancelled by the caller after {}.", attempts(self.attempts)),
            AbortReason::RetryBudgetExhausted => {
                let budget = self.overload.budget;
                write!(m, "{provider} {model} is struggling: this client's retry budget is spent ({} of {} tokens left) after {} ({detail}), so the call was not retried, to avoid adding to the provider's load (the budget would not have refilled before the deadline). Retry later; the budget refills as calls succeed and with time.", budget.balance(), budget.capacity(), attempts(self.attempts))
            }
            AbortReason::CircuitOpen => {
                write!(m, "{provider} {model} is struggling: its circuit breaker is open after repeated failures ({detail}) and no fallback target could take the call")
                    .and_then(|_| match retry_at {
                        Some(t) => write!(m, "; it admits a probe again at {t}. Retry later, or configure a fallback target."),
                        None => write!(m, ". Retry later, or configure a fallback target."),
                    })
            }
            AbortReason::FailedAfterCommit => {
                write!(m, "the response from {provider} {model} failed after it was handed to the caller ({detail}). It was not retried because part of it was already delivered.")
            }
        };
        m
    }
}

fn attempts(n: u32) -> String {
    if n == 1 {
        "1 attempt".to_string()
    } else {
        format!("{n} attempts")
    }
}
