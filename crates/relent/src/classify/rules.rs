//! The rules: the status class first, then what the provider wrote.
//!
//! Text refines a status where status codes lie in well-known ways (OpenAI sends credit
//! exhaustion as 429, Gemini and xAI send a bad key as 400, Anthropic and Groq send overload as
//! 429 or 498, aggregators wrap upstream errors in their own status), but it never turns a
//! server error (5xx) into a verdict about the key: a 5xx body that mentions authentication,
//! billing or permission is still the server's problem. AWS-style error codes decide whatever
//! the status. See `docs/CLASSIFIER.md` for the order and its sources.

use super::body::ErrorFields;
use super::{Provider, Reason};
use aho_corasick::{AhoCorasick, AhoCorasickKind};
use std::sync::OnceLock;

const KEY_REJECTED: &[&str] = &[
    "invalid_api_key",
    "incorrect api key",
    "api key not valid",
    "api_key_invalid",
    "api key expired",
    "api_key_expired",
    "invalid api key",
    "api key is invalid",
    "invalid x-api-key",
    "authentication_error",
    "authentication fails",
    "authentication failed",
    "invalid_authentication",
    "invalid authentication",
    "invalid credentials",
    "no auth credentials found",
    "unrecognizedclientexception",
    "security token included in the request is invalid",
    "invalidsignatureexception",
    "expiredtokenexception",
    "api key was reported as leaked",
    "api key has been revoked",
    "key has been disabled",
];

const QUOTA: &[&str] = &[
    "insufficient_quota",
    "exceeded your current quota",
    "exceeded current quota",
    "exceeded_current_quota",
    "insufficient balance",
    "insufficient_balance",
    "insufficient account balance",
    "insufficient credits",
    "insufficient_credits",
    "credit balance is too low",
    "can only afford",
    "billing_error",
    "billing details",
    "billing account",
    "billing_not_active",
    "enable billing",
    "spend limit",
    "spend_limit",
    "credit_balance_exhausted",
    "spending limit",
    "usage limit",
    "payment required",
    "servicequotaexceededexception",
    "key limit exceeded",
    "monthly limit",
    "requires more credits",
    "used all available credits",
    "out of credits",
    "have any credits",
    "credit limit",
    "credit_limit",
    "token quota",
    "free quota",
    "free_quota",
    "perday",
    "daily request",
    "no resource package",
    "daily free allocation",
    "arrearage",
    "overdue-payment",
    "account is in good standing",
    // Chinese: "insufficient balance", "please recharge", "in arrears".
    "余额不足",
    "请充值",
    "欠费",
];

/// A short usage window: quota words next to one of these describe a limit that lifts within
/// hours (a plan's five-hour window), so waiting or another key helps, as for a rate limit.
const SHORT_WINDOW: &[&str] = &[
    "5-hour",
    "5 hour",
    "/ 5h",
    "per hour",
    "hourly",
    "rolling window",
    // Chinese: "5 hours".
    "5 小时",
];

const OVERLOADED: &[&str] = &[
    "overloaded",
    "capacity_exceeded",
    "capacity exceeded",
    "over capacity",
    "out of capacity",
    "modelnotreadyexception",
    "serviceunavailableexception",
    "temporarily unavailable",
    "no available capacity",
    "high demand",
    "server busy",
    "server is busy",
    "no slots available",
    "maximum pending requests",
    "more system memory",
    "out of memory",
    "not enough memory",
    "insufficient memory",
    "utilization is high",
    "is currently loading",
    "no more data centers",
    // Chinese: "traffic too high", "busy", "overloaded".
    "访问量过大",
    "繁忙",
    "过载",
];

const RATE_LIMITED: &[&str] = &[
    "rate_limit_exceeded",
    "rate_limit_error",
    "rate_limit_reached",
    "rate limit",
    "ratelimit",
    "throttlingexception",
    "too many requests",
    "resource_exhausted",
    "too many tokens",
    "qps",
    "request rate is too high",
    "max organization concurrency",
    // Chinese: "rate limit", "request frequency".
    "速率限制",
    "请求频率",
];

/// Context overflow said plainly enough to trust on any status: some local servers answer it
/// with a 500 (llama.cpp before PR 16486, proxies in front of Anthropic).
const CONTEXT_STRONG: &[&str] = &[
    "context_length_exceeded",
    "maximum context length",
    "exceeds the available context size",
    "context size has been exceeded",
    "exceed_context_size",
    "prompt is too long",
    // Chinese: "the input is over-long".
    "输入内容超长",
];

const CONTEXT_OVERFLOW: &[&str] = &[
    "context length",
    "context window",
    "context_window",
    "context limit",
    "context size",
    "input is too long",
    "prompt too long",
    "prompt exceeds",
    "tokens too long",
    "tokens_too_long",
    "exceeds the maximum number of tokens",
    "maximum number of tokens allowed",
    "reduce the length of the messages",
    "maximum prompt length",
    "too large for model with",
    "exceeds the model's maximum",
    "input token count",
    "too many input tokens",
    "input length",
    "maximum allowed length",
    "n_keep",
    "cannot truncate prompt",
    "`inputs` tokens",
    "`inputs` must have less than",
    // Chinese: "over-long".
    "超长",
];

/// A complaint about the `max_tokens` parameter: a malformed request even when it names the
/// context window ("max_tokens must be less than or equal to 16384, … the context_window").
const MAX_TOKENS_PARAM: &[&str] = &[
    "max_tokens must be",
    "valid range of max_tokens",
    "maximum tokens you requested exceeds the model limit",
    "maximum allowed number of output tokens",
];

const CONTENT_FILTER: &[&str] = &[
    "content_filter",
    "content filtering",
    "content_policy_violation",
    "responsibleaipolicyviolation",
    "content management policy",
    "content policy",
    "safety system",
    "usage policies",
    "flagged by",
    "flagged for",
    "prohibited_content",
    "blocked due to safety",
    "safety settings",
    "moderation",
    "inappropriate content",
    "data_inspection_failed",
    "new_sensitive",
    // Chinese: "sensitive content".
    "敏感内容",
];

const MODEL_NOT_FOUND: &[&str] = &[
    "model_not_found",
    "model not found",
    "resourcenotfoundexception",
    "is not found for api version",
    "no endpoints found",
    "no endpoints available",
    "try pulling it first",
    "deploymentnotfound",
    "does not exist",
    "unknown model",
    "invalid model",
    "is not a valid model",
    "no such model",
    "model_not_available",
];

const PERMISSION: &[&str] = &[
    "permission_error",
    "permission_denied",
    "accessdeniedexception",
    "unsupported_country_region_territory",
    "region, or territory not supported",
    "do not have access",
    "don't have access",
    "does not have access",
    "not allowed to",
    "no permission to use",
];

/// Markers of a challenge page, whatever the status.
const WAF_CHALLENGE: &[&str] = &[
    "cdn-cgi/challenge-platform",
    "enable javascript and cookies",
    "attention required",
    "just a moment",
    "captcha",
    "_incapsula_resource",
];

/// Markers of a blocking intermediary, trusted only on a 403 or 429 (a Cloudflare-branded
/// 502 page is a real upstream failure, not a block).
const WAF_BLOCK: &[&str] = &[
    "cloudflare",
    "access denied",
    "request blocked",
    "incapsula",
    "the request could not be satisfied",
    "web application firewall",
];

const PAYLOAD: &[&str] = &[
    "request_too_large",
    "payload too large",
    "request entity too large",
    "body too large",
    "request too large",
];

/// A family of phrases; each phrase list above is one family.
#[derive(Copy, Clone)]
enum Family {
    KeyRejected,
    Quota,
    ShortWindow,
    Overloaded,
    RateLimited,
    ContextStrong,
    ContextOverflow,
    MaxTokensParam,
    ContentFilter,
    ModelNotFound,
    Permission,
    WafChallenge,
    WafBlock,
    Payload,
}

const FAMILIES: [(Family, &[&str]); 14] = [
    (Family::KeyRejected, KEY_REJECTED),
    (Family::Quota, QUOTA),
    (Family::ShortWindow, SHORT_WINDOW),
    (Family::Overloaded, OVERLOADED),
    (Family::RateLimited, RATE_LIMITED),
    (Family::ContextStrong, CONTEXT_STRONG),
    (Family::ContextOverflow, CONTEXT_OVERFLOW),
    (Family::MaxTokensParam, MAX_TOKENS_PARAM),
    (Family::ContentFilter, CONTENT_FILTER),
    (Family::ModelNotFound, MODEL_NOT_FOUND),
    (Family::Permission, PERMISSION),
    (Family::WafChallenge, WAF_CHALLENGE),
    (Family::WafBlock, WAF_BLOCK),
    (Family::Payload, PAYLOAD),
];

/// Which families of phrases occur in a text: found in one pass over it.
#[derive(Copy, Clone, Default)]
pub(crate) struct Signals(u16);

impl Signals {
    /// Scans lowercase `text` once for every phrase of every family.
    pub(crate) fn scan(text: &str) -> Signals {
        static MATCHER: OnceLock<(AhoCorasick, Vec<Family>)> = OnceLock::new();
        let (matcher, family_of) = MATCHER.get_or_init(|| {
            let mut phrases = Vec::new();
            let mut families = Vec::new();
            for (family, list) in FAMILIES {
                for phrase in list {
                    phrases.push(*phrase);
                    families.push(family);
                }
            }
            // A full DFA: a few hundred phrases make a table of well under a megabyte, and
            // a scan is then one table lookup per byte.
            let matcher = AhoCorasick::builder()
                .kind(Some(AhoCorasickKind::DFA))
                .build(&phrases)
                .expect("the phrase lists are valid patterns");
            (matcher, families)
        });
        let mut bits = 0u16;
        for m in matcher.find_overlapping_iter(text) {
            bits |= 1 << family_of[m.pattern().as_usize()] as u16;
        }
        Signals(bits)
    }

    fn has(self, family: Family) -> bool {
        self.0 & (1 << family as u16) != 0
    }
}

/// Decides the reason. `text` is the lowercase search text (error fields, or the body when it
/// is not JSON); `status` is 0 for an in-band error that carried no status of its own;
/// `aws_code` is an AWS-style error code (`x-amzn-errortype`, an event-stream
/// `:exception-type`, or a body's `__type`), already stripped of its namespace.
pub(crate) fn decide(
    provider: Provider,
    status: u16,
    text: &str,
    html: bool,
    fields: Option<&ErrorFields>,
    aws_code: Option<&str>,
) -> Reason {
    let sig = Signals::scan(text);
    if html {
        return html_page(status, sig);
    }
    // Redirects and proxy authentication come from the path to the API, not from the API.
    if matches!(status, 300..=399 | 407) {
        return by_status(status);
    }
    let server = matches!(status, 500..=599);
    if let Some(reason) = aws_code.and_then(aws_reason) {
        return match reason {
            // Status first: a 5xx never changes key state.
            Reason::KeyRejected | Reason::PermissionDenied | Reason::QuotaExhausted if server => {
                by_status(status)
            }
            Reason::ServerError if sig.has(Family::Overloaded) => Reason::Overloaded,
            other => other,
        };
    }
    if sig.has(Family::KeyRejected) && !server {
        // An aggregator's wrapped upstream auth failure is the upstream's problem: the
        // aggregator's own key is fine, and another route or target can succeed.
        if wrapped_upstream(provider, text, fields) {
            return Reason::ServerError;
        }
        return Reason::KeyRejected;
    }
    let quota = (sig.has(Family::Quota) || google_daily_quota(provider, text))
        && !server
        && !gemini_short_window(provider, text, fields);
    if quota && sig.has(Family::ShortWindow) {
        return Reason::RateLimited;
    }
    if status == 429 || (status == 0 && sig.has(Family::RateLimited)) {
        return too_many_requests(provider, text, sig, quota, fields);
    }
    if quota {
        return Reason::QuotaExhausted;
    }
    if sig.has(Family::Overloaded) || status == 529 || status == 498 {
        return Reason::Overloaded;
    }
    let weak_context =
        sig.has(Family::ContextOverflow) && !server && !sig.has(Family::MaxTokensParam);
    if sig.has(Family::ContextStrong) || weak_context {
        return Reason::ContextOverflow;
    }
    if sig.has(Family::ContentFilter) && !server {
        return Reason::ContentFilter;
    }
    if sig.has(Family::RateLimited) && matches!(status, 400 | 403 | 0) {
        // Bedrock has sent ThrottlingException with a 400; some proxies do the same.
        return Reason::RateLimited;
    }
    if sig.has(Family::Permission) && matches!(status, 400 | 401 | 403 | 0) {
        return Reason::PermissionDenied;
    }
    if sig.has(Family::ModelNotFound) && matches!(status, 400 | 403 | 404 | 0) {
        return Reason::ModelNotFound;
    }
    if sig.has(Family::Payload) {
        return Reason::PayloadTooLarge;
    }
    by_status(status)
}

/// The reason an AWS-style error code names, whatever the status it came with (SageMaker
/// throttles with a 400; Bedrock's event stream reports `serviceUnavailableException` as a
/// 400). Codes that say nothing decisive (`ValidationException`) give `None`, and the text
/// decides. The throttling codes are the AWS SDKs' list (smithy-rs `AwsErrorRetryPolicy`).
pub(crate) fn aws_reason(code: &str) -> Option<Reason> {
    const TABLE: &[(&str, Reason)] = &[
        ("Throttling", Reason::RateLimited),
        ("ThrottlingException", Reason::RateLimited),
        ("ThrottledException", Reason::RateLimited),
        ("RequestThrottledException", Reason::RateLimited),
        ("TooManyRequestsException", Reason::RateLimited),
        (
            "ProvisionedThroughputExceededException",
            Reason::RateLimited,
        ),
        ("RequestLimitExceeded", Reason::RateLimited),
        ("BandwidthLimitExceeded", Reason::RateLimited),
        ("LimitExceededException", Reason::RateLimited),
        ("RequestThrottled", Reason::RateLimited),
        ("SlowDown", Reason::RateLimited),
        ("EC2ThrottledException", Reason::RateLimited),
        ("ServiceQuotaExceededException", Reason::QuotaExhausted),
        ("ServiceUnavailableException", Reason::Overloaded),
        ("ServiceUnavailable", Reason::Overloaded),
        ("ModelNotReadyException", Reason::Overloaded),
        ("ModelTimeoutException", Reason::Timeout),
        ("RequestTimeout", Reason::Timeout),
        ("RequestTimeoutException", Reason::Timeout),
        ("InternalServerException", Reason::ServerError),
        ("InternalFailure", Reason::ServerError),
        ("ModelErrorException", Reason::ServerError),
        ("ModelStreamErrorException", Reason::ServerError),
        ("ModelError", Reason::ServerError),
        ("UnrecognizedClientException", Reason::KeyRejected),
        ("InvalidSignatureException", Reason::KeyRejected),
        ("ExpiredTokenException", Reason::KeyRejected),
        ("IncompleteSignature", Reason::KeyRejected),
        ("MissingAuthenticationToken", Reason::KeyRejected),
        ("InvalidClientTokenId", Reason::KeyRejected),
        ("AccessDeniedException", Reason::PermissionDenied),
        ("ResourceNotFoundException", Reason::ModelNotFound),
    ];
    let code = code.trim();
    TABLE
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(code))
        .map(|(_, reason)| *reason)
}

fn by_status(status: u16) -> Reason {
    match status {
        0 => Reason::Unknown,
        200..=299 => Reason::Success,
        400 | 405 | 415 | 422 => Reason::MalformedRequest,
        401 => Reason::KeyRejected,
        402 => Reason::QuotaExhausted,
        403 => Reason::PermissionDenied,
        404 => Reason::ModelNotFound,
        // A proxy between relent and the API wants credentials: the path failed, not the key.
        407 => Reason::ConnectionFailed,
        408 => Reason::Timeout,
        413 => Reason::PayloadTooLarge,
        424 => Reason::ServerError,
        429 => Reason::RateLimited,
        498 | 503 | 529 => Reason::Overloaded,
        500..=599 => Reason::ServerError,
        _ => Reason::Unknown,
    }
}

/// An aggregator passing on its upstream's answer: OpenRouter's "Provider returned error" with
/// the upstream's body in `metadata.raw`, or a gateway's "Error from provider (Name): …".
fn wrapped_upstream(provider: Provider, text: &str, fields: Option<&ErrorFields>) -> bool {
    let openrouter = provider == Provider::Openrouter
        && (text.contains("provider returned error")
            || fields.is_some_and(|f| f.upstream_raw.is_some()));
    openrouter || text.contains("error from provider (")
}

fn too_many_requests(
    provider: Provider,
    text: &str,
    sig: Signals,
    quota: bool,
    fields: Option<&ErrorFields>,
) -> Reason {
    if sig.has(Family::Overloaded) {
        return Reason::Overloaded;
    }
    if wrapped_upstream(provider, text, fields) {
        return Reason::UpstreamRateLimited;
    }
    if quota {
        return Reason::QuotaExhausted;
    }
    // "Request too large … Limit 30000, Requested 30601": the request alone exceeds the
    // window, so no wait can help; a smaller request or another target can.
    if sig.has(Family::Payload) {
        return Reason::PayloadTooLarge;
    }
    // Vertex's shared capacity: "Resource exhausted. Please try again later." names no quota
    // of the caller's, so no key of theirs is at fault.
    if text.contains("resource exhausted") && !text.contains("quota") {
        return Reason::Overloaded;
    }
    Reason::RateLimited
}

/// Google words a spent daily quota as "Quota exceeded … per day": it lifts tomorrow, not in a
/// minute (other providers' "tokens per day" rate limits name a wait of minutes instead).
fn google_daily_quota(provider: Provider, text: &str) -> bool {
    let google = matches!(provider, Provider::Gemini | Provider::Vertex)
        || text.contains("resource_exhausted");
    google && text.contains("quota") && (text.contains("per day") || text.contains("perday"))
}

/// Gemini words a per-minute limit as "You exceeded your current quota"; it is a rate limit
/// unless the quota that ran out is a daily one, the key has none at all for the model
/// ("limit: 0", "doesn't have a free quota tier"), or billing is the problem.
fn gemini_short_window(provider: Provider, text: &str, fields: Option<&ErrorFields>) -> bool {
    let google = matches!(provider, Provider::Gemini | Provider::Vertex)
        || text.contains("resource_exhausted");
    let daily = text.contains("perday") || text.contains("per day");
    let none_at_all = text.contains("limit: 0") || text.contains("free quota tier");
    let billing = text.contains("billing") && !text.contains("check your plan and billing details");
    google
        && !daily
        && !none_at_all
        && !billing
        && (fields.is_some_and(|f| f.retry_delay_ms.is_some())
            || text.contains("perminute")
            || text.contains("resource_exhausted"))
}

fn html_page(status: u16, sig: Signals) -> Reason {
    if sig.has(Family::WafChallenge)
        || status == 403
        || (status == 429 && sig.has(Family::WafBlock))
    {
        return Reason::BlockedByWaf;
    }
    match by_status(status) {
        // An HTML 401/404 comes from a proxy or a wrong URL, not from the API's key check.
        Reason::KeyRejected
        | Reason::ModelNotFound
        | Reason::MalformedRequest
        | Reason::PermissionDenied => Reason::Unknown,
        other => other,
    }
}
