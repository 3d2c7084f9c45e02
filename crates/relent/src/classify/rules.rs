//! The rules: status codes refined by what the provider wrote.
//!
//! Text signals come first because status codes lie in well-known ways: OpenAI sends credit
//! exhaustion as 429, Gemini and xAI send a bad key as 400, Anthropic and Groq send overload
//! as 429 or 498, and aggregators wrap upstream errors in their own status.

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
    "insufficient balance",
    "insufficient_balance",
    "insufficient credits",
    "insufficient_credits",
    "credit balance is too low",
    "billing_error",
    "billing details",
    "billing account",
    "billing_not_active",
    "enable billing",
    "spend limit",
    "spend_limit",
    "credit_balance_exhausted",
    "spending limit",
    "usage limits",
    "payment required",
    "servicequotaexceededexception",
    "key limit exceeded",
    "requires more credits",
    "used all available credits",
    "out of credits",
    "token quota",
    "perday",
];

const OVERLOADED: &[&str] = &[
    "overloaded",
    "capacity_exceeded",
    "capacity exceeded",
    "over capacity",
    "modelnotreadyexception",
    "serviceunavailableexception",
    "temporarily unavailable",
    "no available capacity",
];

const RATE_LIMITED: &[&str] = &[
    "rate_limit_exceeded",
    "rate_limit_error",
    "rate limit",
    "ratelimit",
    "throttlingexception",
    "too many requests",
    "resource_exhausted",
    "too many tokens",
];

const CONTEXT_OVERFLOW: &[&str] = &[
    "context_length_exceeded",
    "maximum context length",
    "context length",
    "context window",
    "context_window",
    "prompt is too long",
    "input is too long",
    "exceeds the maximum number of tokens",
    "maximum number of tokens allowed",
    "reduce the length of the messages",
    "maximum prompt length",
    "too large for model with",
    "exceeds the model's maximum",
    "input token count",
    "too many input tokens",
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
];

const MODEL_NOT_FOUND: &[&str] = &[
    "model_not_found",
    "model not found",
    "resourcenotfoundexception",
    "is not found for api version",
    "no endpoints found",
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
];

/// A family of phrases; each phrase list above is one family.
#[derive(Copy, Clone)]
enum Family {
    KeyRejected,
    Quota,
    Overloaded,
    RateLimited,
    ContextOverflow,
    ContentFilter,
    ModelNotFound,
    Permission,
    WafChallenge,
    WafBlock,
    Payload,
}

const FAMILIES: [(Family, &[&str]); 11] = [
    (Family::KeyRejected, KEY_REJECTED),
    (Family::Quota, QUOTA),
    (Family::Overloaded, OVERLOADED),
    (Family::RateLimited, RATE_LIMITED),
    (Family::ContextOverflow, CONTEXT_OVERFLOW),
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
/// is not JSON); `status` is 0 for an in-band error that carried no status of its own.
pub(crate) fn decide(
    provider: Provider,
    status: u16,
    text: &str,
    html: bool,
    fields: Option<&ErrorFields>,
) -> Reason {
    let sig = Signals::scan(text);
    if html {
        return html_page(status, sig);
    }
    if sig.has(Family::KeyRejected) {
        return Reason::KeyRejected;
    }
    if status == 429 || (status == 0 && sig.has(Family::RateLimited)) {
        return too_many_requests(provider, text, sig, fields);
    }
    if sig.has(Family::Quota) && !gemini_short_window(provider, text, fields) {
        return Reason::QuotaExhausted;
    }
    if sig.has(Family::Overloaded) || status == 529 || status == 498 {
        return Reason::Overloaded;
    }
    if sig.has(Family::ContextOverflow) && !matches!(status, 500..=599) {
        return Reason::ContextOverflow;
    }
    if sig.has(Family::ContentFilter) && !matches!(status, 500..=599) {
        return Reason::ContentFilter;
    }
    if sig.has(Family::RateLimited) && matches!(status, 400 | 403 | 0) {
        // Bedrock has sent ThrottlingException with a 400; some proxies do the same.
        return Reason::RateLimited;
    }
    if sig.has(Family::Permission) && matches!(status, 400 | 403 | 0) {
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

fn by_status(status: u16) -> Reason {
    match status {
        0 => Reason::Unknown,
        200..=299 => Reason::Success,
        400 | 405 | 415 | 422 => Reason::MalformedRequest,
        401 => Reason::KeyRejected,
        402 => Reason::QuotaExhausted,
        403 => Reason::PermissionDenied,
        404 => Reason::ModelNotFound,
        408 => Reason::Timeout,
        413 => Reason::PayloadTooLarge,
        424 => Reason::ServerError,
        429 => Reason::RateLimited,
        498 | 503 | 529 => Reason::Overloaded,
        500..=599 => Reason::ServerError,
        _ => Reason::Unknown,
    }
}

fn too_many_requests(
    provider: Provider,
    text: &str,
    sig: Signals,
    fields: Option<&ErrorFields>,
) -> Reason {
    if sig.has(Family::Overloaded) {
        return Reason::Overloaded;
    }
    // OpenRouter's envelope (`metadata.raw`) marks a wrapped upstream error whatever the
    // caller named the provider: it is often reached as an OpenAI-compatible endpoint.
    let enveloped = fields.is_some_and(|f| f.upstream_raw.is_some());
    let wrapped_upstream =
        enveloped || (provider == Provider::Openrouter && text.contains("provider returned error"));
    if wrapped_upstream {
        return Reason::UpstreamRateLimited;
    }
    if sig.has(Family::Quota) && !gemini_short_window(provider, text, fields) {
        return Reason::QuotaExhausted;
    }
    Reason::RateLimited
}

/// Gemini words a per-minute limit as "You exceeded your current quota"; it is a rate limit
/// unless the quota that ran out is a daily one.
fn gemini_short_window(provider: Provider, text: &str, fields: Option<&ErrorFields>) -> bool {
    let google = matches!(provider, Provider::Gemini | Provider::Vertex)
        || text.contains("resource_exhausted");
    let daily = text.contains("perday") || text.contains("per day");
    let billing = text.contains("billing") && !text.contains("check your plan and billing details");
    google
        && !daily
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
