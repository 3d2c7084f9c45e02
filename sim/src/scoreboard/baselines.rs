//! The published retry policies of other systems, as faithfully as `shared/ANCHORS.md`
//! section 1 describes them (sources in `docs/SCOREBOARD.md`). Each sees the same replies
//! relent sees and has only the abilities that system has: a client with no key pool gets the
//! first key of the first target; one that reads Retry-After reads only its own formats.

use super::caller::{unit, Caller, Seen, Step};
use crate::respond::Reply;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relent::{KeyId, Target, Time};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A client with one key and no fallback: all it decides is whether, and how long, to wait
/// before sending again.
pub trait RetryRule {
    /// After a failure: `Some(wait in ms)` to retry, `None` to give up.
    fn after_failure(&mut self, now: Time, seen: &Seen<'_>) -> Option<u64>;
    /// After a success.
    fn on_success(&mut self) {}
}

/// A [`RetryRule`] driving the first key of the first target.
pub struct SingleKey<R> {
    key: KeyId,
    rule: R,
}

impl<R: RetryRule> SingleKey<R> {
    /// The client for `targets` with `rule`.
    pub fn new(targets: &[Target], rule: R) -> Self {
        SingleKey {
            key: first_key(targets),
            rule,
        }
    }
}

impl<R: RetryRule> Caller for SingleKey<R> {
    fn start(&mut self, _now: Time) -> Step {
        Step::Send {
            target: 0,
            key: self.key,
        }
    }

    fn on_reply(&mut self, now: Time, reply: &Reply) -> Step {
        let seen = Seen::of(reply);
        if seen.ok() {
            self.rule.on_success();
            return Step::Done(true);
        }
        match self.rule.after_failure(now, &seen) {
            Some(wait) => Step::Wait(Time(now.0 + wait)),
            None => Step::Done(false),
        }
    }

    fn on_wake(&mut self, _now: Time) -> Step {
        Step::Send {
            target: 0,
            key: self.key,
        }
    }
}

/// The OpenAI or Anthropic Python SDK (they differ only in the longest honoured server wait
/// and in what happens beyond it).
pub struct PythonSdk {
    rng: ChaCha8Rng,
    retries: u32,
    anthropic: bool,
}

impl PythonSdk {
    /// `anthropic` selects the Anthropic SDK's rule for server waits.
    pub fn new(targets: &[Target], seed: u64, anthropic: bool) -> SingleKey<Self> {
        SingleKey::new(
            targets,
            PythonSdk {
                rng: ChaCha8Rng::seed_from_u64(seed),
                retries: 0,
                anthropic,
            },
        )
    }
}

impl RetryRule for PythonSdk {
    fn after_failure(&mut self, now: Time, seen: &Seen<'_>) -> Option<u64> {
        // DEFAULT_MAX_RETRIES = 2.
        if self.retries >= 2 {
            return None;
        }
        let should_retry = match seen.header("x-should-retry") {
            Some("true") => true,
            Some("false") => false,
            _ => {
                seen.transport.is_some()
                    || matches!(seen.status, 408 | 409 | 429)
                    || seen.status >= 500
            }
        };
        if !should_retry {
            return None;
        }
        let server_wait = seen.sdk_retry_after_ms(now).filter(|ms| *ms > 0);
        let limit = if self.anthropic { 60_000 } else { 120_000 };
        let wait = match server_wait {
            Some(ms) if ms <= limit => ms,
            // The OpenAI SDK gives up when the server asks for more than it will wait; the
            // Anthropic SDK falls back to its computed backoff.
            Some(_) if !self.anthropic => return None,
            _ => {
                let base = (0.5 * 2f64.powi(self.retries as i32)).min(8.0);
                (base * (1.0 - 0.25 * unit(&mut self.rng)) * 1000.0) as u64
            }
        };
        self.retries += 1;
        Some(wait)
    }
}

/// The Vercel AI SDK: 2 retries, 2 s doubling, no jitter; a server wait under 60 s (or shorter
/// than the computed delay) is used instead.
pub struct Vercel {
    retries: u32,
}

impl Vercel {
    /// The client.
    pub fn new(targets: &[Target]) -> SingleKey<Self> {
        SingleKey::new(targets, Vercel { retries: 0 })
    }
}

impl RetryRule for Vercel {
    fn after_failure(&mut self, now: Time, seen: &Seen<'_>) -> Option<u64> {
        let retryable = seen.transport.is_some()
            || matches!(seen.status, 408 | 409 | 429)
            || seen.status >= 500;
        if !retryable || self.retries >= 2 {
            return None;
        }
        let computed = 2_000 * 2u64.pow(self.retries);
        self.retries += 1;
        Some(match seen.sdk_retry_after_ms(now) {
            Some(ms) if ms < 60_000 || ms < computed => ms,
            _ => computed,
        })
    }
}

/// backon's `ExponentialBuilder` defaults, retrying every error: 1 s doubling to 60 s, 3
/// retries, no jitter.
pub struct Backon {
    retries: u32,
}

impl Backon {
    /// The client.
    pub fn new(targets: &[Target]) -> SingleKey<Self> {
        SingleKey::new(targets, Backon { retries: 0 })
    }
}

impl RetryRule for Backon {
    fn after_failure(&mut self, _now: Time, _seen: &Seen<'_>) -> Option<u64> {
        if self.retries >= 3 {
            return None;
        }
        let wait = (1_000 * 2u64.pow(self.retries)).min(60_000);
        self.retries += 1;
        Some(wait)
    }
}

/// The AWS SDKs' standard retry mode: 3 attempts, full jitter (base 1 s, cap 20 s), and a
/// retry quota (a token bucket of 500) shared by every client of a run.
pub struct AwsStandard {
    rng: ChaCha8Rng,
    attempts: u32,
    last_cost: u32,
    bucket: Rc<RefCell<u32>>,
}

/// The AWS SDK's retry quota, shared across the calls of one run.
pub fn aws_bucket() -> Rc<RefCell<u32>> {
    Rc::new(RefCell::new(500))
}

impl AwsStandard {
    /// A client drawing on `bucket`.
    pub fn new(targets: &[Target], seed: u64, bucket: Rc<RefCell<u32>>) -> SingleKey<Self> {
        SingleKey::new(
            targets,
            AwsStandard {
                rng: ChaCha8Rng::seed_from_u64(seed),
                attempts: 1,
                last_cost: 0,
                bucket,
            },
        )
    }
}

impl RetryRule for AwsStandard {
    fn on_success(&mut self) {
        // A first-try success adds one token; a success after retries refunds the last cost.
        let mut bucket = self.bucket.borrow_mut();
        *bucket = (*bucket
            + if self.attempts == 1 {
                1
            } else {
                self.last_cost
            })
        .min(500);
    }

    fn after_failure(&mut self, _now: Time, seen: &Seen<'_>) -> Option<u64> {
        let body = seen.body.to_ascii_lowercase();
        let throttling = seen.status == 429
            || body.contains("throttlingexception")
            || body.contains("toomanyrequests");
        let transient = seen.transport.is_some() || matches!(seen.status, 500 | 502 | 503 | 504);
        if !(throttling || transient) || self.attempts >= 3 {
            return None;
        }
        let cost = if seen.transport == Some(relent::TransportError::Timeout) {
            10
        } else {
            5
        };
        let mut bucket = self.bucket.borrow_mut();
        if *bucket < cost {
            return None;
        }
        *bucket -= cost;
        self.last_cost = cost;
        let cap = 2f64.powi(self.attempts as i32 - 1).min(20.0);
        self.attempts += 1;
        Some((unit(&mut self.rng) * cap * 1000.0) as u64)
    }
}

/// LiteLLM's router: every key of the first target is a deployment of one model group; the
/// second target (if any) is the configured fallback group.
pub struct Litellm {
    targets: Vec<Vec<KeyId>>,
    group: usize,
    retries: u32,
    cooldown_until: BTreeMap<KeyId, Time>,
    rng: ChaCha8Rng,
    last: Option<KeyId>,
}

impl Litellm {
    /// The router.
    pub fn new(targets: &[Target], seed: u64) -> Self {
        Litellm {
            targets: targets
                .iter()
                .take(2)
                .map(|t| t.keys.iter().map(|k| k.id).collect())
                .collect(),
            group: 0,
            retries: 0,
            cooldown_until: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            last: None,
        }
    }

    fn healthy(&self, now: Time) -> Vec<KeyId> {
        self.targets[self.group]
            .iter()
            .copied()
            .filter(|k| self.cooldown_until.get(k).is_none_or(|t| *t <= now))
            .collect()
    }

    /// simple-shuffle: a random healthy deployment.
    fn pick(&mut self, now: Time) -> Step {
        let healthy = self.healthy(now);
        if healthy.is_empty() {
            // "No deployments available": fail at once (or move to the fallback group).
            return self.fall_back(now);
        }
        let key = healthy[(unit(&mut self.rng) * healthy.len() as f64) as usize % healthy.len()];
        self.last = Some(key);
        Step::Send {
            target: self.group,
            key,
        }
    }

    fn fall_back(&mut self, now: Time) -> Step {
        if self.group + 1 < self.targets.len() {
            self.group += 1;
            self.retries = 0;
            return self.pick(now);
        }
        Step::Done(false)
    }
}

impl Caller for Litellm {
    fn start(&mut self, now: Time) -> Step {
        self.pick(now)
    }

    fn on_reply(&mut self, now: Time, reply: &Reply) -> Step {
        let seen = Seen::of(reply);
        if seen.ok() {
            return Step::Done(true);
        }
        let body = seen.body.to_ascii_lowercase();
        let deployments = self.targets[self.group].len();
        // LiteLLM's exception mapping turns Gemini's and xAI's 400 "API key not valid" /
        // "Incorrect API key" into an AuthenticationError.
        let status = if body.contains("api key not valid") || body.contains("incorrect api key") {
            401
        } else {
            seen.status
        };
        let seen = seen.with_status(status);
        let server_wait = seen.sdk_retry_after_ms(now);
        // Cooldown (5 s, or the server's wait) on 429, 401, 408, 404 and 5xx; never for a
        // single-deployment group.
        if deployments > 1 && (matches!(seen.status, 401 | 404 | 408 | 429) || seen.status >= 500) {
            if let Some(key) = self.last {
                let ttl = server_wait.unwrap_or(5_000);
                self.cooldown_until.insert(key, Time(now.0 + ttl));
            }
        }
        let context_error = body.contains("context length")
            || body.contains("context_length")
            || body.contains("too long")
            || body.contains("maximum number of tokens");
        if context_error || seen.status == 404 {
            // context_window_fallbacks / no retry for NotFound.
            return if context_error {
                self.fall_back(now)
            } else {
                Step::Done(false)
            };
        }
        if seen.status == 401 && deployments <= 1 {
            return self.fall_back(now);
        }
        let retryable = seen.transport.is_some()
            || matches!(seen.status, 401 | 408 | 409 | 429)
            || seen.status >= 500;
        if !retryable {
            return self.fall_back(now);
        }
        if self.retries >= 2 {
            // num_retries spent: the configured fallbacks run next.
            return self.fall_back(now);
        }
        self.retries += 1;
        if self.healthy(now).len() > 1 || (deployments > 1 && !self.healthy(now).is_empty()) {
            // Zero sleep when healthy deployments remain.
            return self.pick(now);
        }
        if self.healthy(now).is_empty() && deployments > 1 {
            return self.fall_back(now);
        }
        let base = (0.5 * 2f64.powi(self.retries as i32 - 1)).min(8.0);
        let computed = (base * (1.0 - 0.25 * unit(&mut self.rng)) * 1000.0) as u64;
        let wait = match server_wait {
            Some(ms) if ms > 0 && ms <= 60_000 => ms.max(computed),
            _ => computed,
        };
        Step::Wait(Time(now.0 + wait))
    }

    fn on_wake(&mut self, now: Time) -> Step {
        self.pick(now)
    }
}

/// hermes-agent: 3 API retries with jittered backoff (base 2 s, cap 60 s, ratio 0.5), a
/// credential pool with cooldown TTLs, and a fallback model.
pub struct Hermes {
    targets: Vec<Vec<KeyId>>,
    target: usize,
    key_index: usize,
    retries: u32,
    cooldown_until: BTreeMap<KeyId, Time>,
    rng: ChaCha8Rng,
}

impl Hermes {
    /// The agent.
    pub fn new(targets: &[Target], seed: u64) -> Self {
        Hermes {
            targets: targets
                .iter()
                .take(2)
                .map(|t| t.keys.iter().map(|k| k.id).collect())
                .collect(),
            target: 0,
            key_index: 0,
            retries: 0,
            cooldown_until: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn key(&self) -> KeyId {
        self.targets[self.target][self.key_index]
    }

    fn usable(&self, now: Time) -> Vec<usize> {
        (0..self.targets[self.target].len())
            .filter(|i| {
                self.cooldown_until
                    .get(&self.targets[self.target][*i])
                    .is_none_or(|t| *t <= now)
            })
            .collect()
    }

    /// jittered_backoff(n, base, max, 0.5) = min(base · 2^(n-1), max) + U(0, 0.5 · that).
    fn backoff(&mut self, base: f64, max: f64) -> u64 {
        let d = (base * 2f64.powi(self.retries as i32 - 1)).min(max);
        ((d + unit(&mut self.rng) * 0.5 * d) * 1000.0) as u64
    }

    fn fall_back(&mut self) -> Step {
        if self.target + 1 < self.targets.len() {
            self.target += 1;
            self.key_index = 0;
            return Step::Send {
                target: self.target,
                key: self.key(),
            };
        }
        Step::Done(false)
    }
}

impl Caller for Hermes {
    fn start(&mut self, _now: Time) -> Step {
        Step::Send {
            target: 0,
            key: self.key(),
        }
    }

    fn on_reply(&mut self, now: Time, reply: &Reply) -> Step {
        let seen = Seen::of(reply);
        if seen.ok() {
            return Step::Done(true);
        }
        let body = seen.body.to_ascii_lowercase();
        let pool_size = self.targets[self.target].len();
        let overloaded = body.contains("overloaded") || seen.status == 529 || seen.status == 503;
        // The classifier: 401 auth, 402 billing, 429 rate limit (unless "overloaded").
        let (pool_fault, ttl) = match seen.status {
            401 => (true, 300_000),
            402 => (true, 3_600_000),
            429 if !overloaded => (true, 3_600_000),
            _ => (false, 0),
        };
        // Every retry, rotation included, uses up the budget (#16830).
        self.retries += 1;
        if self.retries > 3 {
            return self.fall_back();
        }
        if pool_fault && pool_size > 1 {
            let server = seen.sdk_retry_after_ms(now);
            let mut ttl = server.unwrap_or(ttl);
            if self.usable(now).len() <= 1 && seen.status != 402 {
                ttl = ttl.min(60_000);
            }
            self.cooldown_until.insert(self.key(), Time(now.0 + ttl));
            if let Some(next) = self.usable(now).first().copied() {
                self.key_index = next;
                return Step::Send {
                    target: self.target,
                    key: self.key(),
                };
            }
        }
        if seen.status == 401 && pool_size <= 1 {
            // The single-key 401 path of #30331: retried with the invalid-response backoff.
            let wait = self.backoff(5.0, 120.0);
            return Step::Wait(Time(now.0 + wait));
        }
        let retryable = seen.transport.is_some()
            || matches!(seen.status, 408 | 409 | 429 | 402)
            || seen.status >= 500;
        if !retryable {
            return self.fall_back();
        }
        let wait = match seen.sdk_retry_after_ms(now) {
            Some(ms) => ms.min(600_000),
            None => self.backoff(2.0, 60.0),
        };
        Step::Wait(Time(now.0 + wait))
    }

    fn on_wake(&mut self, now: Time) -> Step {
        if let Some(next) = self.usable(now).first().copied() {
            self.key_index = next;
        }
        Step::Send {
            target: self.target,
            key: self.key(),
        }
    }
}

fn first_key(targets: &[Target]) -> KeyId {
    targets
        .first()
        .and_then(|t| t.keys.first())
        .map_or(KeyId(0), |k| k.id)
}
