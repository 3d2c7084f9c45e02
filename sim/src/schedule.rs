//! A fault world: targets, keys, and a script of what goes wrong when. Serializes to the
//! JSON schedule format documented in `docs/schedule-format.md`.

use relent::{KeyId, Policy, PoolChange, Target};
use serde::{Deserialize, Serialize};

/// One world: everything needed to replay a call exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A name for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Seeds the machine's jitter and the world's coin flips.
    #[serde(default)]
    pub seed: u64,
    /// The policy under test (defaults when absent).
    #[serde(default, skip_serializing_if = "is_default_policy")]
    pub policy: Policy,
    /// The fallback chain with its keys.
    pub targets: Vec<Target>,
    /// What goes wrong, and when. The first active fault that matches a send decides its
    /// response; a send no fault matches succeeds.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Changes to the pool from outside, at given times.
    #[serde(default)]
    pub pool_changes: Vec<TimedChange>,
    /// The caller cancels at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_at_ms: Option<u64>,
    /// Every response takes this long (slow faults take longer).
    #[serde(default = "default_latency")]
    pub latency_ms: u64,
    /// From this time on, no fault applies (the liveness phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heal_at_ms: Option<u64>,
    /// When each call of the client starts, in ms; empty means one call at 0. Calls share
    /// one pool the way the tokio driver's calls do, and may overlap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<u64>,
}

fn is_default_policy(p: &Policy) -> bool {
    *p == Policy::default()
}

fn default_latency() -> u64 {
    150
}

/// A pool change at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedChange {
    /// When (with `on_reprobe`, the earliest time).
    pub at_ms: u64,
    /// What.
    pub change: PoolChange,
    /// Instead of at `at_ms`, the change lands while a request is out: half a latency after
    /// the first re-probe of the key it names (a send with a key the pool holds revoked) at
    /// or after `at_ms`, so the re-probe's answer meets it. Never, if no such re-probe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_reprobe: bool,
}

/// What a fault applies to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultScope {
    /// Sends with this key.
    Key(KeyId),
    /// Every send to this target (a provider-wide fault).
    Target(usize),
}

/// A fault: a kind of failure, where it applies, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Which sends it applies to.
    pub scope: FaultScope,
    /// Active from this time (inclusive).
    #[serde(default)]
    pub from_ms: u64,
    /// Active until this time (exclusive); forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Only the first N matching sends are hit (then the fault is spent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sends: Option<u32>,
    /// Chance that an eligible send is hit (1.0 when absent).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub probability: f64,
    /// What the send gets.
    pub kind: FaultKind,
}

fn one() -> f64 {
    1.0
}

fn is_one(p: &f64) -> bool {
    *p == 1.0
}

/// The failures a world can script. Each produces realistic bytes in the target
/// provider's own shape (see `respond.rs`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum FaultKind {
    /// The key is rejected (401, or 400 for Gemini and xAI).
    KeyRejected,
    /// The key may not use this model or region (403).
    PermissionDenied,
    /// Credit or quota spent; with `reset` the server says when it refills (the window end).
    QuotaExhausted {
        /// Whether the response carries a reset time.
        #[serde(default)]
        reset: bool,
    },
    /// A rate-limit window; the hint (if any) points at the window's end.
    RateLimited {
        /// How the server says when to come back.
        #[serde(default)]
        hint: HintFormat,
    },
    /// An aggregator's upstream is rate limited (OpenRouter "Provider returned error").
    UpstreamRateLimited,
    /// The provider is overloaded (529, 503, 498, or 429 saying "overloaded").
    Overloaded,
    /// A 500.
    ServerError,
    /// The response never comes before the attempt's timeout.
    Slow,
    /// The connection is reset.
    Reset,
    /// A 500 with garbage and absurd wait headers, which must be ignored or clamped.
    GarbageHeaders,
    /// An overload error inside an HTTP 200 body.
    ErrorIn200,
    /// A 200 whose stream fails after the first chunk.
    StreamFailsMidway,
    /// The request is too long for the model.
    ContextOverflow,
    /// The request body is too large.
    PayloadTooLarge,
    /// The content filter refuses.
    ContentFilter,
    /// The model does not exist.
    ModelNotFound,
    /// The request is malformed.
    MalformedRequest,
    /// A 400 the server marks `x-should-retry: true`: the request may succeed as sent (the
    /// OpenAI SDKs obey the header, whatever the status), so it is waited out like a
    /// transient fault instead of ending the call.
    RetryableBadRequest,
    /// A CDN challenge page.
    WafChallenge,
    /// The server's certificate fails verification.
    TlsCertificate,
    /// An unrecognisable answer (HTTP 418 with a plain-text body).
    Unrecognised,
    /// A 500 that says when to come back (`retry-after: secs`, which may be 0, saying
    /// nothing useful, or absurdly long, which relent clamps to a day) and, with `no_retry`,
    /// that it must not be retried (`x-should-retry: false`). Not in [`FaultKind::ALL`]:
    /// the generator's server-word worlds draw it.
    ServerErrorWithWait {
        /// The `retry-after` header, in seconds.
        secs: u32,
        /// Whether the reply also says `x-should-retry: false`.
        #[serde(default)]
        no_retry: bool,
    },
    /// A rate limit that says `x-should-retry: false` (its hint, if any, as for
    /// [`FaultKind::RateLimited`]). Not in [`FaultKind::ALL`].
    RateLimitedNoRetry {
        /// How the server says when to come back.
        #[serde(default)]
        hint: HintFormat,
    },
}

impl FaultKind {
    /// Every kind, with representative parameters.
    pub const ALL: [FaultKind; 29] = [
        FaultKind::KeyRejected,
        FaultKind::PermissionDenied,
        FaultKind::QuotaExhausted { reset: false },
        FaultKind::QuotaExhausted { reset: true },
        FaultKind::RateLimited {
            hint: HintFormat::None,
        },
        FaultKind::RateLimited {
            hint: HintFormat::RetryAfterSeconds,
        },
        FaultKind::RateLimited {
            hint: HintFormat::RetryAfterMs,
        },
        FaultKind::RateLimited {
            hint: HintFormat::RetryAfterDate,
        },
        FaultKind::RateLimited {
            hint: HintFormat::ResetHeaders,
        },
        FaultKind::RateLimited {
            hint: HintFormat::AnthropicReset,
        },
        FaultKind::RateLimited {
            hint: HintFormat::RetryInfo,
        },
        FaultKind::RateLimited {
            hint: HintFormat::Message,
        },
        FaultKind::RateLimited {
            hint: HintFormat::Absurd,
        },
        FaultKind::UpstreamRateLimited,
        FaultKind::Overloaded,
        FaultKind::ServerError,
        FaultKind::Slow,
        FaultKind::Reset,
        FaultKind::GarbageHeaders,
        FaultKind::ErrorIn200,
        FaultKind::StreamFailsMidway,
        FaultKind::ContextOverflow,
        FaultKind::PayloadTooLarge,
        FaultKind::ContentFilter,
        FaultKind::ModelNotFound,
        FaultKind::MalformedRequest,
        FaultKind::WafChallenge,
        FaultKind::TlsCertificate,
        FaultKind::RetryableBadRequest,
    ];
}

/// How a rate-limited response says when to come back.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintFormat {
    /// No hint at all.
    #[default]
    None,
    /// `retry-after: 7`.
    RetryAfterSeconds,
    /// `retry-after-ms: 6500`.
    RetryAfterMs,
    /// `retry-after: <HTTP-date>` with a `Date` header.
    RetryAfterDate,
    /// `x-ratelimit-reset-requests: 6.5s` and `x-ratelimit-remaining-requests: 0`.
    ResetHeaders,
    /// `anthropic-ratelimit-requests-reset: <RFC 3339>` with a `Date` header.
    AnthropicReset,
    /// Gemini's `RetryInfo.retryDelay` in the body.
    RetryInfo,
    /// "Please try again in 6.5s" in the message.
    Message,
    /// An absurd `retry-after: 99999999` (three years), whatever the window: relent clamps
    /// it and must not sleep on it.
    Absurd,
    /// The `x-ratelimit-*` reset headers of [`HintFormat::ResetHeaders`] *and* the
    /// `retry-after` (whole seconds) real providers send beside them.
    ResetHeadersAndRetryAfter,
}

impl FaultKind {
    /// What a send hit by this fault *is*, whatever a classifier makes of its bytes: the
    /// world's ground truth for the checker.
    pub fn truth(self) -> relent::Reason {
        use relent::Reason as R;
        match self {
            FaultKind::KeyRejected => R::KeyRejected,
            FaultKind::PermissionDenied => R::PermissionDenied,
            FaultKind::QuotaExhausted { .. } => R::QuotaExhausted,
            FaultKind::RateLimited { .. } | FaultKind::RateLimitedNoRetry { .. } => R::RateLimited,
            FaultKind::UpstreamRateLimited => R::UpstreamRateLimited,
            FaultKind::Overloaded | FaultKind::ErrorIn200 => R::Overloaded,
            FaultKind::ServerError
            | FaultKind::GarbageHeaders
            | FaultKind::ServerErrorWithWait { .. } => R::ServerError,
            FaultKind::Slow => R::Timeout,
            FaultKind::Reset => R::ConnectionFailed,
            FaultKind::StreamFailsMidway => R::Success,
            FaultKind::ContextOverflow => R::ContextOverflow,
            FaultKind::PayloadTooLarge => R::PayloadTooLarge,
            FaultKind::ContentFilter => R::ContentFilter,
            FaultKind::ModelNotFound => R::ModelNotFound,
            // The body says malformed; the header says the request may succeed as sent.
            FaultKind::MalformedRequest | FaultKind::RetryableBadRequest => R::MalformedRequest,
            FaultKind::WafChallenge => R::BlockedByWaf,
            FaultKind::TlsCertificate => R::TlsCertificate,
            FaultKind::Unrecognised => R::Unknown,
        }
    }

    /// True when a send hit by this fault could not have succeeded however long it waited
    /// (a dead, unentitled, spent or rate-limited key, or a request the target refuses):
    /// such sends count as wasted. Transient faults (overload, server errors, timeouts,
    /// resets) are not: a send that meets one could have succeeded.
    pub fn is_doomed(self) -> bool {
        !matches!(
            self,
            FaultKind::UpstreamRateLimited
                | FaultKind::Overloaded
                | FaultKind::ServerError
                | FaultKind::ServerErrorWithWait { .. }
                | FaultKind::Slow
                | FaultKind::Reset
                | FaultKind::GarbageHeaders
                | FaultKind::ErrorIn200
                | FaultKind::StreamFailsMidway
                | FaultKind::Unrecognised
                | FaultKind::RetryableBadRequest
        )
    }

    /// True when the reply tells the client the request may be retried as sent
    /// (`x-should-retry: true`), whatever its body says.
    pub fn says_retry(self) -> bool {
        self == FaultKind::RetryableBadRequest
    }

    /// True when the reply tells the client not to retry (`x-should-retry: false`).
    pub fn says_no_retry(self) -> bool {
        matches!(
            self,
            FaultKind::ServerErrorWithWait { no_retry: true, .. }
                | FaultKind::RateLimitedNoRetry { .. }
        )
    }

    /// The wait a transient reply states (its `retry-after`, in milliseconds), which a
    /// reader takes exactly: `Some(0)` for `retry-after: 0`; `None` when it states none.
    pub fn stated_wait_ms(self) -> Option<u64> {
        match self {
            FaultKind::ServerErrorWithWait { secs, .. } => Some(u64::from(secs) * 1000),
            _ => None,
        }
    }
}

impl Schedule {
    /// When each call starts, in order (one call at 0 when `calls` is empty).
    pub fn call_starts(&self) -> Vec<u64> {
        if self.calls.is_empty() {
            vec![0]
        } else {
            let mut starts = self.calls.clone();
            starts.sort_unstable();
            starts
        }
    }

    /// Every key id in the world, including keys added later.
    pub fn all_keys(&self) -> Vec<KeyId> {
        let mut keys: Vec<KeyId> = self
            .targets
            .iter()
            .flat_map(|t| t.keys.iter().map(|k| k.id))
            .collect();
        for c in &self.pool_changes {
            if let PoolChange::Added { key, .. } = &c.change {
                keys.push(key.id);
            }
        }
        keys
    }
}
