//! The published retry policies of other systems, each rule read from the system's own
//! source (file and commit for every rule in `docs/SCOREBOARD.md`, section "Baselines").
//! Each baseline sees the same replies relent sees and has only the abilities that system
//! has: a client with no key pool gets the first key of the first target; one that reads
//! Retry-After reads only its own formats. A baseline that is weaker *or* stronger than the
//! real system is a bug; `sim/tests/scoreboard.rs` has one test per rule.

use super::caller::{unit, Caller, Seen, Step};
use crate::respond::{Reply, WALL_EPOCH_UNIX_MS};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use relent::classify::hints;
use relent::{KeyId, Target, Time, TransportError};
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

/// The OpenAI and Anthropic Python SDKs. At the cited commits their retry code is the same
/// (both are generated from one template): 2 retries; `x-should-retry` obeyed; else 408,
/// 409, 429, ≥ 500, timeouts and connection errors retried; a server wait honoured when
/// 0 < wait ≤ 60 s, otherwise `min(0.5·2ⁿ, 8)·(1 − 0.25·U)` s.
pub struct PythonSdk {
    rng: ChaCha8Rng,
    retries: u32,
}

impl PythonSdk {
    /// The SDK's client (`DEFAULT_MAX_RETRIES = 2`).
    pub fn new(targets: &[Target], seed: u64) -> SingleKey<Self> {
        SingleKey::new(
            targets,
            PythonSdk {
                rng: ChaCha8Rng::seed_from_u64(seed),
                retries: 0,
            },
        )
    }
}

impl RetryRule for PythonSdk {
    fn after_failure(&mut self, now: Time, seen: &Seen<'_>) -> Option<u64> {
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
        let wait = match seen.sdk_retry_after_ms(now) {
            Some(ms) if ms > 0 && ms <= 60_000 => ms,
            _ => {
                let base = (0.5 * 2f64.powi(self.retries as i32)).min(8.0);
                (base * (1.0 - 0.25 * unit(&mut self.rng)) * 1000.0) as u64
            }
        };
        self.retries += 1;
        Some(wait)
    }
}

/// The Vercel AI SDK: 2 retries, 2 s doubling, no jitter; retries an `APICallError` marked
/// retryable (408, 409, 429, ≥ 500, and a failed fetch) but never an abort, which is how a
/// timeout reaches it; a server wait (`retry-after-ms`, then `retry-after`) is used when
/// 0 ≤ wait < 60 s or shorter than the computed delay.
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
        let retryable = match seen.transport {
            // `isAbortError(error)`: thrown at once, never retried.
            Some(TransportError::Timeout) => false,
            Some(_) => true,
            None => matches!(seen.status, 408 | 409 | 429) || seen.status >= 500,
        };
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

/// async-openai's default tower `OpenAIRetryLayer` (3 retries): a 429 is retried unless its
/// body's `error.type` is `insufficient_quota` (or the body is not an OpenAI error object);
/// any 5xx and connect errors are retried; the wait is an integer-second `Retry-After`, used
/// as it is (no cap), or else `100 ms·2ⁿ` capped at 8 s without jitter, where n counts only
/// the waits that were computed.
pub struct AsyncOpenai {
    retries: u32,
    backoff_attempt: u32,
}

impl AsyncOpenai {
    /// The client.
    pub fn new(targets: &[Target]) -> SingleKey<Self> {
        SingleKey::new(
            targets,
            AsyncOpenai {
                retries: 0,
                backoff_attempt: 0,
            },
        )
    }
}

/// How async-openai reads a 429's body: `None` when it does not parse as an OpenAI error
/// object (`{"error": {"message": …}}`), else whether its type is `insufficient_quota`.
fn openai_error_is_quota(body: &str) -> Option<bool> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?;
    error.get("message")?.as_str()?;
    Some(error.get("type").and_then(|t| t.as_str()) == Some("insufficient_quota"))
}

impl RetryRule for AsyncOpenai {
    fn after_failure(&mut self, _now: Time, seen: &Seen<'_>) -> Option<u64> {
        let retryable = match seen.transport {
            // reqwest's `is_connect()`: the connection was never made.
            Some(kind) => matches!(
                kind,
                TransportError::ConnectRefused
                    | TransportError::Dns
                    | TransportError::TlsHandshake
                    | TransportError::TlsCertificate
            ),
            None if seen.status == 429 => openai_error_is_quota(&seen.body) == Some(false),
            None => seen.status >= 500,
        };
        if !retryable || self.retries >= 3 {
            return None;
        }
        let server = seen
            .header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(|s| s.saturating_mul(1000));
        let wait = server.unwrap_or_else(|| {
            let ms = 100u64.saturating_mul(2u64.saturating_pow(self.backoff_attempt));
            self.backoff_attempt += 1;
            ms.min(8_000)
        });
        self.retries += 1;
        Some(wait)
    }
}

/// The AWS SDKs' standard retry mode: 3 attempts; retries a throttling error (decided by the
/// error code alone, not by the status) or a transient one (codes `RequestTimeout`,
/// `RequestTimeoutException`, `PriorRequestNotComplete`; status 500, 502, 503, 504; a
/// connection error or timeout); full jitter `U(0,1)·min(2^(attempt−1), 20)` s; and a retry
/// quota (a token bucket of 500) shared by every client of a run.
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

/// botocore's `ThrottledRetryableChecker._THROTTLED_ERROR_CODES`.
const AWS_THROTTLING_CODES: [&str; 14] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// botocore's `TransientRetryableChecker._TRANSIENT_ERROR_CODES`.
const AWS_TRANSIENT_CODES: [&str; 3] = [
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

/// The error code botocore's JSON protocols parse: the `x-amzn-errortype` header (up to its
/// `:`), else the body's top-level `__type` (after any `#`) or `code`.
pub fn aws_error_code(seen: &Seen<'_>) -> Option<String> {
    if let Some(h) = seen.header("x-amzn-errortype") {
        return h.split(':').next().map(str::to_string);
    }
    let value: serde_json::Value = serde_json::from_str(&seen.body).ok()?;
    let code = value
        .get("__type")
        .or_else(|| value.get("code"))?
        .as_str()?;
    Some(code.rsplit('#').next().unwrap_or(code).to_string())
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
        let code = aws_error_code(seen);
        let code = code.as_deref();
        let throttling = code.is_some_and(|c| AWS_THROTTLING_CODES.contains(&c));
        let transient = seen.transport.is_some()
            || code.is_some_and(|c| AWS_TRANSIENT_CODES.contains(&c))
            || matches!(seen.status, 500 | 502 | 503 | 504);
        if !(throttling || transient) || self.attempts >= 3 {
            return None;
        }
        let cost = if seen.transport == Some(TransportError::Timeout) {
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

/// How LiteLLM sees an error: the exception class its mapping raises.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum LitellmError {
    RateLimit,
    Auth,
    NotFound,
    ContextWindow,
    ContentPolicy,
    Timeout,
    Connection,
    Other,
}

/// LiteLLM's router over the first target's keys as the deployments of one model group; the
/// second target (if any) is the configured fallback group (for regular and context-window
/// fallbacks alike).
///
/// `async_function_with_retries`: the first failure is checked once by
/// `should_retry_this_error` (raise for NotFound, for a context-window or content-policy
/// error, for a rate limit with no healthy deployment when fallbacks exist, for auth with at
/// most one deployment, and when no deployment is healthy); otherwise `num_retries` = 2 more
/// tries, each preceded by `_time_to_sleep_before_retry` (0 when a healthy deployment remains
/// in a group of several, else the *original* exception's `retry-after` if 0 < x ≤ 60 s,
/// else `0.5·2ⁿ·(1 − 0.25·U)` s capped at 8); a try that finds no healthy deployment fails
/// without a send and the loop sleeps and goes on. Cooldowns follow
/// `_should_cooldown_deployment` for a router with traffic: a 429 in a group of several, a
/// 401 or a 404 cool the deployment for the `retry-after` or 5 s; a single 5xx or timeout
/// does not (its failure share stays under 50 %), and connection errors never do.
pub struct Litellm {
    groups: Vec<Vec<KeyId>>,
    group: usize,
    cooldown_until: BTreeMap<KeyId, Time>,
    rng: ChaCha8Rng,
    last: Option<KeyId>,
    /// `None` before the first failure; then the retries left and the original failure.
    retrying: Option<Retrying>,
}

#[derive(Clone)]
struct Retrying {
    /// Tries of the retry loop made so far.
    tries: u32,
    /// The first failure's `retry-after`, in ms (may be negative for a past date).
    original_retry_after_ms: Option<i64>,
}

/// LiteLLM Router's `num_retries` default.
pub const LITELLM_NUM_RETRIES: u32 = 2;

impl Litellm {
    /// The router.
    pub fn new(targets: &[Target], seed: u64) -> Self {
        Litellm {
            groups: targets
                .iter()
                .take(2)
                .map(|t| t.keys.iter().map(|k| k.id).collect())
                .collect(),
            group: 0,
            cooldown_until: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            last: None,
            retrying: None,
        }
    }

    fn healthy(&self, now: Time) -> Vec<KeyId> {
        self.groups[self.group]
            .iter()
            .copied()
            .filter(|k| self.cooldown_until.get(k).is_none_or(|t| *t <= now))
            .collect()
    }

    fn has_fallback(&self) -> bool {
        self.group + 1 < self.groups.len()
    }

    /// simple-shuffle: a random healthy deployment, or `None` ("no deployments available").
    fn pick(&mut self, now: Time) -> Option<Step> {
        let healthy = self.healthy(now);
        if healthy.is_empty() {
            return None;
        }
        let key = healthy[(unit(&mut self.rng) * healthy.len() as f64) as usize % healthy.len()];
        self.last = Some(key);
        Some(Step::Send {
            target: self.group,
            key,
        })
    }

    /// The group's error is raised: the fallback group runs with fresh retries, or the call
    /// fails.
    fn fall_back(&mut self, now: Time) -> Step {
        if self.has_fallback() {
            self.group += 1;
            self.retrying = None;
            return self.pick(now).unwrap_or(Step::Done(false));
        }
        Step::Done(false)
    }

    fn error_class(seen: &Seen<'_>) -> LitellmError {
        let body = seen.body.to_ascii_lowercase();
        if let Some(kind) = seen.transport {
            return if kind == TransportError::Timeout {
                LitellmError::Timeout
            } else {
                LitellmError::Connection
            };
        }
        if body.contains("context length")
            || body.contains("context_length")
            || body.contains("too long")
            || body.contains("maximum number of tokens")
            || body.contains("maximum context length")
        {
            return LitellmError::ContextWindow;
        }
        if body.contains("content_policy")
            || body.contains("content management policy")
            || body.contains("safety")
        {
            return LitellmError::ContentPolicy;
        }
        // The exception mapping turns Gemini's and xAI's 400 "API key not valid" /
        // "Incorrect API key" into an AuthenticationError.
        if seen.status == 401
            || body.contains("api key not valid")
            || body.contains("incorrect api key")
        {
            return LitellmError::Auth;
        }
        match seen.status {
            429 => LitellmError::RateLimit,
            404 => LitellmError::NotFound,
            _ => LitellmError::Other,
        }
    }

    /// The status the exception carries (timeouts are 408; connection errors carry none).
    fn status_of(class: LitellmError, seen: &Seen<'_>) -> Option<u16> {
        match class {
            LitellmError::Timeout => Some(408),
            LitellmError::Connection => None,
            LitellmError::Auth => Some(401),
            _ => Some(seen.status),
        }
    }

    /// `deployment_callback_on_failure` for a router with traffic.
    fn cool_down(&mut self, now: Time, class: LitellmError, seen: &Seen<'_>) {
        let Some(key) = self.last else { return };
        let Some(status) = Self::status_of(class, seen) else {
            return;
        };
        let several = self.groups[self.group].len() > 1;
        let cool = (status == 429 && several) || matches!(status, 401 | 404);
        if !cool {
            return;
        }
        let ttl = litellm_retry_after_ms(seen, now)
            .filter(|ms| *ms >= 0)
            .map_or(5_000, |ms| ms as u64);
        if ttl == 0 {
            return; // a cooldown of 0 is not run
        }
        self.cooldown_until.insert(key, Time(now.0 + ttl));
    }

    /// `_time_to_sleep_before_retry`, where `n` = `num_retries − remaining_retries`.
    fn sleep_ms(&mut self, now: Time, n: u32) -> u64 {
        let all = self.groups[self.group].len();
        if all != 1 && !self.healthy(now).is_empty() {
            return 0;
        }
        let original = self
            .retrying
            .as_ref()
            .and_then(|r| r.original_retry_after_ms);
        if let Some(ms) = original.filter(|ms| *ms > 0 && *ms <= 60_000) {
            return ms as u64;
        }
        let base = (0.5 * 2f64.powi(n as i32)).min(8.0);
        (base * (1.0 - 0.25 * unit(&mut self.rng)) * 1000.0) as u64
    }

    /// A try of the retry loop failed (with or without a send): the loop sleeps, and then
    /// tries again or, with its retries spent, raises the original error.
    fn after_failed_try(&mut self, now: Time) -> Step {
        let Some(r) = self.retrying.as_mut() else {
            return Step::Done(false);
        };
        // `remaining_retries = num_retries − current_attempt` for the try just made.
        let n = r.tries;
        r.tries += 1;
        let wait = self.sleep_ms(now, n);
        Step::Wait(Time(now.0 + wait))
    }
}

/// LiteLLM's `_get_retry_after_from_exception_header`: `retry-after` as integer seconds, else
/// as an HTTP-date against the clock (negative when past); `retry-after-ms` is not read.
fn litellm_retry_after_ms(seen: &Seen<'_>, now: Time) -> Option<i64> {
    let value = seen.header("retry-after")?;
    if let Ok(s) = value.trim().parse::<i64>() {
        return Some(s.saturating_mul(1000));
    }
    hints::http_date_unix_ms(value).map(|at| at as i64 - (WALL_EPOCH_UNIX_MS + now.0) as i64)
}

impl Caller for Litellm {
    fn start(&mut self, now: Time) -> Step {
        // No healthy deployment on the first pick raises before any retry.
        self.pick(now).unwrap_or_else(|| self.fall_back(now))
    }

    fn on_reply(&mut self, now: Time, reply: &Reply) -> Step {
        let seen = Seen::of(reply);
        if seen.ok() {
            return Step::Done(true);
        }
        let class = Self::error_class(&seen);
        self.cool_down(now, class, &seen);
        match &mut self.retrying {
            // A failed retry: the loop goes on whatever the error.
            Some(_) => self.after_failed_try(now),
            None => {
                // should_retry_this_error, once.
                let healthy = self.healthy(now).len();
                let all = self.groups[self.group].len();
                let raise = match class {
                    LitellmError::NotFound
                    | LitellmError::ContextWindow
                    | LitellmError::ContentPolicy => true,
                    LitellmError::RateLimit => healthy == 0 && self.has_fallback(),
                    LitellmError::Auth => all <= 1,
                    _ => false,
                } || healthy == 0;
                if raise {
                    return self.fall_back(now);
                }
                self.retrying = Some(Retrying {
                    tries: 0,
                    original_retry_after_ms: litellm_retry_after_ms(&seen, now),
                });
                // The sleep before the first retry (`remaining_retries = num_retries`).
                let wait = self.sleep_ms(now, 0);
                Step::Wait(Time(now.0 + wait))
            }
        }
    }

    fn next_call(&mut self) -> bool {
        // The router's cooldowns outlive a call; the retry loop does not.
        self.group = 0;
        self.retrying = None;
        self.last = None;
        true
    }

    fn on_wake(&mut self, now: Time) -> Step {
        if self
            .retrying
            .as_ref()
            .is_some_and(|r| r.tries >= LITELLM_NUM_RETRIES)
        {
            // The loop is over: the original error is raised to the fallbacks.
            return self.fall_back(now);
        }
        match self.pick(now) {
            Some(step) => step,
            // "No deployments available" inside the loop: this try fails without a send.
            None => self.after_failed_try(now),
        }
    }
}

/// How hermes-agent's classifier files a failure.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HermesReason {
    /// 401, 403: not retryable; the pool refreshes (impossible for an API key) or rotates.
    Auth,
    /// 402, or a billing phrase ("credit balance", "insufficient_quota", …): not retryable;
    /// the pool rotates at once.
    Billing,
    /// A 429 that is not billing or overload: the same key once more, then rotate.
    RateLimit,
    /// 529, 503, or "overloaded": retryable, and the recovery ladder applies.
    Overloaded,
    /// Another 5xx: retryable, ladder.
    ServerError,
    /// A timeout or a failed connection: retryable, ladder.
    Timeout,
    /// The request is too long: the fallback model (hermes would compress first).
    ContextOverflow,
    /// Any other 4xx: not retryable.
    ClientError,
}

/// Phrases `agent/error_classifier.py` files as billing.
const HERMES_BILLING_PATTERNS: [&str; 8] = [
    "insufficient credits",
    "insufficient_quota",
    "insufficient balance",
    "credit balance",
    "credits have been exhausted",
    "payment required",
    "billing hard limit",
    "exceeded your current quota",
];

/// `retry_utils.parse_retry_after_seconds`: the `Retry-After` header as seconds (a float)
/// or an HTTP-date; `retry-after-ms` is not read.
fn hermes_retry_after_ms(seen: &Seen<'_>, now: Time) -> Option<u64> {
    let value = seen.header("retry-after")?;
    hints::retry_after_seconds(value).or_else(|| {
        hints::http_date_unix_ms(value).map(|at| at.saturating_sub(WALL_EPOCH_UNIX_MS + now.0))
    })
}

/// hermes-agent's reading of a reply.
pub fn hermes_reason(seen: &Seen<'_>) -> HermesReason {
    if seen.transport.is_some() {
        return HermesReason::Timeout;
    }
    let body = seen.body.to_ascii_lowercase();
    if seen.status == 402 {
        return HermesReason::Billing;
    }
    if matches!(seen.status, 400 | 403 | 429)
        && HERMES_BILLING_PATTERNS.iter().any(|p| body.contains(p))
    {
        return HermesReason::Billing;
    }
    if body.contains("overloaded") || matches!(seen.status, 503 | 529) {
        return HermesReason::Overloaded;
    }
    if body.contains("context length")
        || body.contains("context_length")
        || body.contains("too long")
        || body.contains("maximum number of tokens")
        || body.contains("maximum context length")
    {
        return HermesReason::ContextOverflow;
    }
    match seen.status {
        401 | 403 => HermesReason::Auth,
        429 => HermesReason::RateLimit,
        s if s >= 500 => HermesReason::ServerError,
        _ => HermesReason::ClientError,
    }
}

/// The API retries per recovery cycle (`api_max_retries`, attempts, not extra retries).
pub const HERMES_MAX_RETRIES: u32 = 3;
/// `auto_recovery_cycles`.
pub const HERMES_RECOVERY_CYCLES: u32 = 5;

/// hermes-agent (current main): 3 attempts (`retry_count >= 3` stops), every failure
/// counting, rotations included; the wait before a retry is the server's Retry-After (up to
/// 600 s) or `jittered_backoff(n, 2 s, 60 s, 0.5)`. The credential pool (fill-first over the
/// first target's keys) handles a 429 by retrying the same key once and rotating on the
/// second (`has_retried_429`), billing by rotating at once, and auth by rotating (an API key
/// cannot be refreshed); a rotated-away key cools 300 s after a 401, 3600 s after a 429,
/// billing or anything else, or until the server's reset, and a 429's cooldown is cut to
/// 60 s when the pool holds at most one non-dead key (never a 401's or billing's). When the
/// pool cannot recover, a non-retryable error goes to the fallback model (the second target)
/// or ends the call; spent retries go to the fallback, then to the recovery ladder: up to 5
/// cycles, only for overload, server errors and timeouts, each waiting
/// `jittered_backoff(cycle, 15 s, 60 s, 0.2)` (15/30/60/60/60 s) or the server's Retry-After
/// up to 120 s, then 3 more attempts.
pub struct Hermes {
    targets: Vec<Vec<KeyId>>,
    target: usize,
    key: KeyId,
    retry_count: u32,
    has_retried_429: bool,
    cycles_used: u32,
    cooldown_until: BTreeMap<KeyId, Time>,
    bench_ttl: BTreeMap<KeyId, u64>,
    rng: ChaCha8Rng,
}

impl Hermes {
    /// The cooldown the pool gave `key` when it last benched it, in ms.
    pub fn bench_ttl_ms(&self, key: KeyId) -> Option<u64> {
        self.bench_ttl.get(&key).copied()
    }

    /// The agent.
    pub fn new(targets: &[Target], seed: u64) -> Self {
        let groups: Vec<Vec<KeyId>> = targets
            .iter()
            .take(2)
            .map(|t| t.keys.iter().map(|k| k.id).collect())
            .collect();
        let key = groups[0][0];
        Hermes {
            targets: groups,
            target: 0,
            key,
            retry_count: 0,
            has_retried_429: false,
            cycles_used: 0,
            cooldown_until: BTreeMap::new(),
            bench_ttl: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// `jittered_backoff(attempt, base, max, ratio)`: `min(base·2^(attempt−1), max)` plus
    /// `U(0, ratio·that)`, in ms.
    fn backoff(&mut self, attempt: u32, base: f64, max: f64, ratio: f64) -> u64 {
        let d = (base * 2f64.powi(attempt.max(1) as i32 - 1)).min(max);
        ((d + unit(&mut self.rng) * ratio * d) * 1000.0) as u64
    }

    fn send(&self) -> Step {
        Step::Send {
            target: self.target,
            key: self.key,
        }
    }

    /// `mark_exhausted_and_rotate`: benches the current key and returns the next available
    /// one in priority order (fill-first), if any. The pool is the primary target's only.
    fn rotate(&mut self, now: Time, reason: HermesReason, seen: &Seen<'_>) -> bool {
        if self.target != 0 {
            return false;
        }
        let pool = &self.targets[0];
        // Keys are never marked dead by an API-key pool here, so every key counts as
        // non-dead: the sole-credential cut applies to a pool of one.
        let sole = pool.len() <= 1;
        let base = match reason {
            HermesReason::Auth => 300_000,
            _ => 3_600_000,
        };
        // `_exhausted_ttl`: a 401 keeps its 300 s and billing its hour; anything else is cut
        // to 60 s for a sole credential. A provider-supplied reset overrides all of them.
        let capped = sole && reason != HermesReason::Billing && seen.status != 401;
        let ttl = match hermes_retry_after_ms(seen, now) {
            Some(ms) => ms,
            None if capped => base.min(60_000),
            None => base,
        };
        self.cooldown_until.insert(self.key, Time(now.0 + ttl));
        self.bench_ttl.insert(self.key, ttl);
        let next = pool
            .iter()
            .copied()
            .find(|k| self.cooldown_until.get(k).is_none_or(|t| *t <= now));
        match next {
            Some(k) => {
                self.key = k;
                true
            }
            None => false,
        }
    }

    fn fall_back(&mut self) -> Option<Step> {
        if self.target + 1 < self.targets.len() {
            self.target += 1;
            self.key = self.targets[self.target][0];
            self.retry_count = 0;
            self.has_retried_429 = false;
            return Some(self.send());
        }
        None
    }
}

impl Caller for Hermes {
    fn start(&mut self, now: Time) -> Step {
        // A turn starts on the primary model with the pool's first available entry.
        if let Some(k) = self.targets[0]
            .iter()
            .copied()
            .find(|k| self.cooldown_until.get(k).is_none_or(|t| *t <= now))
        {
            self.key = k;
        }
        self.send()
    }

    fn next_call(&mut self) -> bool {
        // The credential pool's benches outlive a turn; the turn's counters do not.
        self.target = 0;
        self.key = self.targets[0][0];
        self.retry_count = 0;
        self.has_retried_429 = false;
        self.cycles_used = 0;
        true
    }

    fn on_reply(&mut self, now: Time, reply: &Reply) -> Step {
        let seen = Seen::of(reply);
        if seen.ok() {
            return Step::Done(true);
        }
        let reason = hermes_reason(&seen);
        // Every failure counts against the attempts, rotations included (#16830).
        self.retry_count += 1;
        let out_of_attempts = self.retry_count >= HERMES_MAX_RETRIES;
        // The credential pool first.
        let recovered = match reason {
            HermesReason::Billing | HermesReason::Auth => self.rotate(now, reason, &seen),
            HermesReason::RateLimit if self.has_retried_429 => {
                let rotated = self.rotate(now, reason, &seen);
                if rotated {
                    self.has_retried_429 = false;
                }
                rotated
            }
            HermesReason::RateLimit => {
                self.has_retried_429 = true;
                false
            }
            _ => false,
        };
        if recovered && !out_of_attempts {
            return self.send();
        }
        let retryable = matches!(
            reason,
            HermesReason::RateLimit
                | HermesReason::Overloaded
                | HermesReason::ServerError
                | HermesReason::Timeout
        );
        if !retryable {
            return self.fall_back().unwrap_or(Step::Done(false));
        }
        if out_of_attempts {
            if let Some(step) = self.fall_back() {
                return step;
            }
            // The recovery ladder, for a provider that is only away for now.
            let ladder = matches!(
                reason,
                HermesReason::Overloaded | HermesReason::ServerError | HermesReason::Timeout
            );
            if !ladder || self.cycles_used >= HERMES_RECOVERY_CYCLES {
                return Step::Done(false);
            }
            self.cycles_used += 1;
            self.retry_count = 0;
            let wait = match hermes_retry_after_ms(&seen, now) {
                Some(ms) => ms.min(120_000),
                None => self.backoff(self.cycles_used, 15.0, 60.0, 0.2),
            };
            return Step::Wait(Time(now.0 + wait));
        }
        let wait = match hermes_retry_after_ms(&seen, now) {
            Some(ms) if ms > 0 => ms.min(600_000),
            _ => self.backoff(self.retry_count, 2.0, 60.0, 0.5),
        };
        Step::Wait(Time(now.0 + wait))
    }

    fn on_wake(&mut self, now: Time) -> Step {
        // The pool's current entry stays selected unless it is benched.
        if self.target == 0 && self.cooldown_until.get(&self.key).is_some_and(|t| *t > now) {
            if let Some(k) = self.targets[0]
                .iter()
                .copied()
                .find(|k| self.cooldown_until.get(k).is_none_or(|t| *t <= now))
            {
                self.key = k;
            }
        }
        self.send()
    }
}

fn first_key(targets: &[Target]) -> KeyId {
    targets
        .first()
        .and_then(|t| t.keys.first())
        .map_or(KeyId(0), |k| k.id)
}
