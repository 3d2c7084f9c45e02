//! Realistic response bytes for each fault, in each provider's own shape, so that every
//! simulated call also exercises the classifier.

use crate::schedule::{FaultKind, HintFormat};
use relent::classify::providers::Wire;
use relent::{HttpResponse, Observation, Provider, TransportError};
use serde_json::json;
use std::sync::Arc;

/// What the simulated server does with one send. Cloning is cheap: headers and body are
/// shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP response.
    Http {
        /// Status.
        status: u16,
        /// Headers.
        headers: Arc<[(String, String)]>,
        /// Body.
        body: Arc<[u8]>,
    },
    /// A transport failure.
    Transport(TransportError),
    /// No answer before the attempt's timeout.
    Hang,
    /// A 200 whose stream then fails.
    StreamThenFail,
}

impl Reply {
    /// Calls `f` with the reply as the machine's observation. A hang has none (the attempt
    /// times out instead); a stream that fails midway is observed as its successful start.
    pub fn observe<R>(&self, f: impl FnOnce(Observation<'_>) -> R) -> Option<R> {
        match self {
            Reply::Http {
                status,
                headers,
                body,
            } => {
                // The few headers a simulated reply has fit on the stack.
                const ON_STACK: usize = 8;
                let mut stack = [("", ""); ON_STACK];
                let heap: Vec<(&str, &str)>;
                let pairs = if headers.len() <= ON_STACK {
                    for (slot, (k, v)) in stack.iter_mut().zip(headers.iter()) {
                        *slot = (k.as_str(), v.as_str());
                    }
                    &stack[..headers.len()]
                } else {
                    heap = headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    &heap[..]
                };
                Some(f(Observation::Http(HttpResponse {
                    status: *status,
                    headers: pairs,
                    body,
                })))
            }
            Reply::StreamThenFail => Some(f(Observation::Http(HttpResponse {
                status: 200,
                headers: &[],
                body: STREAM_START,
            }))),
            Reply::Transport(kind) => Some(f(Observation::Transport(*kind))),
            Reply::Hang => None,
        }
    }
}

/// The first event of a stream that later fails.
pub const STREAM_START: &[u8] = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n";

/// The wall clock of the simulated world at virtual time zero (a whole second, in 2026).
pub const WALL_EPOCH_UNIX_MS: u64 = 1_790_000_000_000;

thread_local! {
    /// Replies that do not depend on the time, built once per thread: building JSON is most
    /// of what a simulated server does, and the same few hundred bodies repeat.
    static CACHE: std::cell::RefCell<rustc_hash::FxHashMap<(Provider, Option<FaultKind>), Reply>> = Default::default();
}

fn cached(provider: Provider, kind: Option<FaultKind>, build: impl FnOnce() -> Reply) -> Reply {
    let key = (provider, kind);
    if let Some(reply) = CACHE.with(|cache| cache.borrow().get(&key).cloned()) {
        return reply;
    }
    let reply = build();
    CACHE.with(|cache| cache.borrow_mut().insert(key, reply.clone()));
    reply
}

/// A successful completion.
pub fn success(provider: Provider) -> Reply {
    cached(provider, None, || build_success(provider))
}

/// The reply for `kind` from `provider` at virtual time `now_ms`; `reset_after_ms` is how
/// long until the fault's window ends (what an honest server's hint says).
pub fn fault(provider: Provider, kind: FaultKind, now_ms: u64, reset_after_ms: u64) -> Reply {
    // The body names the time only in a rate limit's message and in Gemini's RetryInfo;
    // every other body is built once per thread, and time-dependent headers go on top.
    let google = provider.spec().wire == Wire::Google;
    let timed_body = match kind {
        FaultKind::RateLimited { hint } | FaultKind::RateLimitedNoRetry { hint } => {
            hint == HintFormat::Message || (hint == HintFormat::RetryInfo && google)
        }
        FaultKind::QuotaExhausted { reset: true } => google,
        _ => false,
    };
    let mut reply = if timed_body {
        build_fault(provider, kind, reset_after_ms)
    } else {
        let timeless = match kind {
            FaultKind::QuotaExhausted { .. } => FaultKind::QuotaExhausted { reset: false },
            other => other,
        };
        cached(provider, Some(timeless), || {
            build_fault(provider, kind, reset_after_ms)
        })
    };
    match kind {
        FaultKind::QuotaExhausted { reset: true } if !google => {
            let secs = reset_after_ms.div_ceil(1000);
            add_headers(&mut reply, vec![("retry-after", secs.to_string())]);
        }
        FaultKind::RateLimited { hint } => {
            rate_limit_headers(&mut reply, provider, hint, now_ms, reset_after_ms);
        }
        FaultKind::RetryableBadRequest => {
            add_headers(&mut reply, vec![("x-should-retry", "true".into())]);
        }
        FaultKind::ServerErrorWithWait { secs, no_retry } => {
            add_headers(&mut reply, vec![("retry-after", secs.to_string())]);
            if no_retry {
                add_headers(&mut reply, vec![("x-should-retry", "false".into())]);
            }
        }
        FaultKind::RateLimitedNoRetry { hint } => {
            rate_limit_headers(&mut reply, provider, hint, now_ms, reset_after_ms);
            add_headers(&mut reply, vec![("x-should-retry", "false".into())]);
        }
        _ => {}
    }
    reply
}

fn build_success(provider: Provider) -> Reply {
    let body = match provider.spec().wire {
        Wire::Anthropic => {
            json!({"id":"msg_01","type":"message","role":"assistant","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn"})
        }
        Wire::Google => {
            json!({"candidates":[{"content":{"parts":[{"text":"Hello!"}],"role":"model"},"finishReason":"STOP"}]})
        }
        _ => {
            json!({"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}]})
        }
    };
    http(
        200,
        vec![
            ("content-type", "application/json".into()),
            ("x-ratelimit-remaining-requests", "99".into()),
            ("x-ratelimit-reset-requests", "1s".into()),
        ],
        body.to_string(),
    )
}

/// The reply for `kind` before any time-dependent header (see [`fault`]).
fn build_fault(provider: Provider, kind: FaultKind, reset_after_ms: u64) -> Reply {
    use FaultKind as K;
    let p = provider;
    match kind {
        K::KeyRejected => key_rejected(p),
        K::PermissionDenied => match p {
            Provider::Anthropic => error(p, 403, "permission_error", "permission_error", "Your API key does not have permission to use the specified resource."),
            Provider::Bedrock => error(p, 403, "AccessDeniedException", "", "You don't have access to the model with the specified model ID."),
            Provider::Gemini | Provider::Vertex => error(p, 403, "PERMISSION_DENIED", "", "Permission denied on resource project (or it may not exist)."),
            _ => error(p, 403, "invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported"),
        },
        K::QuotaExhausted { reset } => quota(p, reset.then_some(reset_after_ms)),
        K::RateLimited { hint } | K::RateLimitedNoRetry { hint } => {
            rate_limited_body(p, hint, reset_after_ms)
        }
        K::UpstreamRateLimited => http(
            429,
            json_ct(),
            json!({"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"{\"error\":{\"message\":\"Rate limit exceeded\",\"type\":\"rate_limit_error\"}}","provider_name":"Upstream"}}}).to_string(),
        ),
        K::Overloaded => match p {
            Provider::Anthropic => error(p, 529, "overloaded_error", "", "Overloaded"),
            Provider::Groq => error(p, 498, "capacity_exceeded", "capacity_exceeded", "The model is currently over capacity. Please try again."),
            Provider::Gemini | Provider::Vertex => error(p, 503, "UNAVAILABLE", "", "The model is overloaded. Please try again later."),
            Provider::Bedrock => error(p, 503, "ServiceUnavailableException", "", "Service temporarily unavailable, please try again."),
            Provider::Deepseek => error(p, 503, "server_overloaded", "", "Server Overloaded"),
            _ => error(p, 503, "server_error", "", "The engine is currently overloaded, please try again later"),
        },
        K::ServerError | K::ServerErrorWithWait { .. } => server_error(p),
        K::Slow => Reply::Hang,
        K::Reset => Reply::Transport(TransportError::Reset),
        K::GarbageHeaders => {
            let mut reply = server_error(p);
            let garbage = [
                ("retry-after", "soon"),
                ("Retry-After-Ms", "-5"),
                ("x-ratelimit-reset-requests", "1x"),
                ("anthropic-ratelimit-requests-reset", "yesterday"),
                ("date", "not a date"),
            ];
            add_headers(
                &mut reply,
                garbage.map(|(k, v)| (k, v.to_string())).to_vec(),
            );
            reply
        }
        K::ErrorIn200 => http(
            200,
            vec![("content-type", "text/event-stream".into())],
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".to_string(),
        ),
        K::StreamFailsMidway => Reply::StreamThenFail,
        K::ContextOverflow => match p {
            Provider::Anthropic => error(p, 400, "invalid_request_error", "", "prompt is too long: 215000 tokens > 200000 maximum"),
            Provider::Gemini | Provider::Vertex => error(p, 400, "INVALID_ARGUMENT", "", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."),
            Provider::Bedrock => error(p, 400, "ValidationException", "", "Input is too long for requested model."),
            Provider::Mistral => error(p, 400, "invalid_request_message_order", "3051", "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length"),
            _ => error(p, 400, "invalid_request_error", "context_length_exceeded", "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages."),
        },
        K::PayloadTooLarge => match p {
            Provider::Anthropic => error(p, 413, "request_too_large", "", "Request exceeds the maximum allowed number of bytes."),
            _ => http(413, vec![("content-type", "text/plain".into())], "Request Entity Too Large".into()),
        },
        K::ContentFilter => match p {
            Provider::Azure => http(
                400,
                json_ct(),
                json!({"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}).to_string(),
            ),
            Provider::Gemini | Provider::Vertex => error(p, 400, "INVALID_ARGUMENT", "", "The request was blocked due to safety settings (PROHIBITED_CONTENT)."),
            _ => error(p, 400, "invalid_request_error", "content_policy_violation", "Your request was rejected as a result of our safety system."),
        },
        K::ModelNotFound => match p {
            Provider::Anthropic => error(p, 404, "not_found_error", "", "model: claude-nonexistent"),
            Provider::Gemini | Provider::Vertex => error(p, 404, "NOT_FOUND", "", "models/gemini-9 is not found for API version v1beta, or is not supported for generateContent."),
            Provider::Bedrock => error(p, 404, "ResourceNotFoundException", "", "Could not resolve the foundation model from the provided model identifier."),
            _ => error(p, 404, "invalid_request_error", "model_not_found", "The model `gpt-9` does not exist or you do not have access to it."),
        },
        K::MalformedRequest | K::RetryableBadRequest => match p {
            Provider::Deepseek => error(p, 422, "invalid_request_error", "invalid_parameters", "Invalid Parameters"),
            Provider::Bedrock => error(p, 400, "ValidationException", "", "Malformed input request: #: required key [messages] not found"),
            _ => error(p, 400, "invalid_request_error", "", "messages: at least one message is required"),
        },
        K::WafChallenge => http(
            403,
            vec![("content-type", "text/html; charset=UTF-8".into()), ("cf-ray", "8f1c2a3b4c5d6e7f-FRA".into())],
            "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><noscript>Enable JavaScript and cookies to continue</noscript><script src=\"/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1\"></script></body></html>".into(),
        ),
        K::TlsCertificate => Reply::Transport(TransportError::TlsCertificate),
        K::Unrecognised => http(418, vec![("content-type", "text/plain".into())], "I'm a teapot".into()),
    }
}

fn key_rejected(p: Provider) -> Reply {
    match p {
        Provider::Anthropic => error(p, 401, "authentication_error", "", "invalid x-api-key"),
        Provider::Gemini | Provider::Vertex => http(
            400,
            json_ct(),
            json!({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}).to_string(),
        ),
        Provider::Xai => http(400, json_ct(), json!({"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***ef. You can obtain an API key from https://console.x.ai."}).to_string()),
        Provider::Bedrock => error(p, 403, "UnrecognizedClientException", "", "The security token included in the request is invalid."),
        Provider::Deepseek => error(p, 401, "authentication_error", "invalid_request_error", "Authentication Fails, Your api key: ****abcd is invalid"),
        Provider::Openrouter => http(401, json_ct(), json!({"error":{"message":"No auth credentials found","code":401}}).to_string()),
        _ => error(p, 401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-proj-********************abcd. You can find your API key at https://platform.openai.com/account/api-keys."),
    }
}

/// A spent quota. With `reset_ms`, Gemini states when the quota itself refills (a
/// `RetryInfo` beside the `QuotaFailure`); other providers get a `retry-after` header on top
/// (see [`fault`]), which describes no quota and must be ignored.
fn quota(p: Provider, reset_ms: Option<u64>) -> Reply {
    match p {
        Provider::Anthropic => error(p, 400, "invalid_request_error", "", "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."),
        Provider::Deepseek => error(p, 402, "unknown_error", "invalid_request_error", "Insufficient Balance"),
        Provider::Openrouter => http(402, json_ct(), json!({"error":{"message":"Insufficient credits. Add more using https://openrouter.ai/credits","code":402}}).to_string()),
        Provider::Gemini | Provider::Vertex => http(
            429,
            json_ct(),
            {
                let mut details = vec![
                    json!({"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}),
                ];
                if let Some(ms) = reset_ms {
                    details.push(json!({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":format!("{}.{:03}s", ms / 1000, ms % 1000)}));
                }
                json!({"error":{"code":429,"message":format!("{} You exceeded your current quota, please check your plan and billing details.", crate::canary::planted(p as usize)),"status":"RESOURCE_EXHAUSTED","details":details}}).to_string()
            },
        ),
        Provider::Bedrock => error(p, 400, "ServiceQuotaExceededException", "", "Your request exceeded the service quota for your account."),
        _ => error(p, 429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota, please check your plan and billing details."),
    }
}

fn server_error(p: Provider) -> Reply {
    match p {
        Provider::Anthropic => error(p, 500, "api_error", "", "Internal server error"),
        Provider::Gemini | Provider::Vertex => error(p, 500, "INTERNAL", "", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
        Provider::Bedrock => error(p, 500, "InternalServerException", "", "The server encountered an internal error."),
        // An echoed credential in the code field (a misconfigured proxy): codes flow into
        // traces and abort messages, so the canary must not survive there either.
        _ => error(p, 500, "server_error", crate::canary::CANARIES[3], "The server had an error while processing your request. Sorry about that!"),
    }
}

/// A 429 as `p` words it; the time appears only with the `Message` hint and Gemini's
/// `RetryInfo`.
fn rate_limited_body(p: Provider, hint: HintFormat, reset_ms: u64) -> Reply {
    let say_when = hint == HintFormat::Message;
    let message = if say_when {
        format!(
            "Rate limit reached for requests. Please try again in {}.{:03}s.",
            reset_ms / 1000,
            reset_ms % 1000
        )
    } else {
        "Rate limit reached for requests. Please slow down.".to_string()
    };
    match p {
        Provider::Anthropic => error(p, 429, "rate_limit_error", "", &message),
        Provider::Gemini | Provider::Vertex => {
            let mut details = vec![
                json!({"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]}),
            ];
            if hint == HintFormat::RetryInfo {
                details.push(json!({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":format!("{}.{:03}s", reset_ms / 1000, reset_ms % 1000)}));
            }
            http(429, json_ct(), json!({"error":{"code":429,"message":format!("Resource has been exhausted (e.g. check quota). {}", if say_when { &message } else { "" }),"status":"RESOURCE_EXHAUSTED","details":details}}).to_string())
        }
        Provider::Bedrock => error(p, 429, "ThrottlingException", "", &message),
        _ => error(p, 429, "requests", "rate_limit_exceeded", &message),
    }
}

/// Adds the wait headers of a 429 with the `hint` format.
fn rate_limit_headers(
    reply: &mut Reply,
    p: Provider,
    hint: HintFormat,
    now_ms: u64,
    reset_ms: u64,
) {
    let secs = reset_ms.div_ceil(1000);
    let now_wall = WALL_EPOCH_UNIX_MS + now_ms;
    let date_secs = now_wall / 1000;
    let fraction = || format!("{}.{:03}s", reset_ms / 1000, reset_ms % 1000);
    let extra: Vec<(&str, String)> = match hint {
        HintFormat::None | HintFormat::Message => return,
        HintFormat::Absurd => vec![("retry-after", "99999999".into())],
        HintFormat::RetryInfo if p.spec().wire == Wire::Google => return,
        HintFormat::RetryInfo | HintFormat::RetryAfterSeconds => {
            vec![("retry-after", secs.to_string())]
        }
        HintFormat::RetryAfterMs => vec![("retry-after-ms", reset_ms.to_string())],
        HintFormat::RetryAfterDate => vec![
            ("date", http_date(date_secs)),
            (
                "retry-after",
                http_date((now_wall + reset_ms).div_ceil(1000)),
            ),
        ],
        HintFormat::ResetHeaders => vec![
            ("x-ratelimit-remaining-requests", "0".into()),
            ("x-ratelimit-reset-requests", fraction()),
            ("x-ratelimit-remaining-tokens", "5000".into()),
            ("x-ratelimit-reset-tokens", "120ms".into()),
        ],
        HintFormat::ResetHeadersAndRetryAfter => vec![
            ("x-ratelimit-remaining-requests", "0".into()),
            ("x-ratelimit-reset-requests", fraction()),
            ("x-ratelimit-remaining-tokens", "5000".into()),
            ("x-ratelimit-reset-tokens", "120ms".into()),
            ("retry-after", secs.to_string()),
        ],
        HintFormat::AnthropicReset => vec![
            ("date", http_date(date_secs)),
            ("anthropic-ratelimit-requests-remaining", "0".into()),
            (
                "anthropic-ratelimit-requests-reset",
                rfc3339((now_wall + reset_ms).div_ceil(1000)),
            ),
        ],
    };
    add_headers(reply, extra);
}

/// How coarse the reset a reply announces is, as a reader must take it: a reset given as an
/// HTTP-date or RFC 3339 time is measured from a `Date` header with whole seconds, so a
/// correct reader may wait up to a second past the true reset.
pub fn reset_resolution_ms(kind: FaultKind) -> u64 {
    let hint = match kind {
        FaultKind::RateLimited { hint } | FaultKind::RateLimitedNoRetry { hint } => hint,
        _ => return 0,
    };
    match hint {
        HintFormat::RetryAfterDate | HintFormat::AnthropicReset => 1_000,
        // Every other hint states the wait to the millisecond, decimal seconds ("try again
        // in 6.500s", RetryInfo's "6.500s", `x-ratelimit-reset-requests: 6.5s`) included,
        // and the machine must read it exactly.
        _ => 0,
    }
}

/// The server's wait as an honest server would state it: the virtual time at which the
/// hinted wait ends, or `None` when the reply gives no hint. Used by the invariant checker
/// ("never send before the server's reset").
pub fn hinted_reset_ms(
    kind: FaultKind,
    provider: Provider,
    now_ms: u64,
    reset_after_ms: u64,
) -> Option<u64> {
    let now_wall = WALL_EPOCH_UNIX_MS + now_ms;
    let at_second = |unix_ms: u64| unix_ms.div_ceil(1000) * 1000 - WALL_EPOCH_UNIX_MS;
    match kind {
        // Only Gemini's RetryInfo states the quota's own reset; a `retry-after` on a spent
        // quota announces nothing about it.
        FaultKind::QuotaExhausted { reset: true } if provider.spec().wire == Wire::Google => {
            Some(now_ms + reset_after_ms)
        }
        FaultKind::RateLimited { hint } | FaultKind::RateLimitedNoRetry { hint } => match hint {
            HintFormat::None => None,
            HintFormat::Absurd => Some(now_ms + 99_999_999_000),
            HintFormat::RetryAfterSeconds | HintFormat::ResetHeadersAndRetryAfter => {
                Some(now_ms + reset_after_ms.div_ceil(1000) * 1000)
            }
            HintFormat::RetryInfo if provider.spec().wire != Wire::Google => {
                Some(now_ms + reset_after_ms.div_ceil(1000) * 1000)
            }
            HintFormat::RetryAfterMs
            | HintFormat::ResetHeaders
            | HintFormat::RetryInfo
            | HintFormat::Message => Some(now_ms + reset_after_ms),
            HintFormat::RetryAfterDate | HintFormat::AnthropicReset => {
                Some(at_second(now_wall + reset_after_ms))
            }
        },
        _ => None,
    }
}

/// An error reply in `p`'s shape. Every message carries one secret canary (chosen by the
/// reply, so the swarm meets every shape) in front of the provider's words, as proxies and
/// client logs put request context there; see [`crate::canary`].
fn error(p: Provider, status: u16, kind: &str, code: &str, message: &str) -> Reply {
    let which = usize::from(status) + kind.len() + code.len() + p as usize;
    let message = &format!("{} {message}", crate::canary::planted(which));
    let code_value = if code.is_empty() {
        serde_json::Value::Null
    } else {
        json!(code)
    };
    // The shape comes from the provider table; xAI writes its own shape only for a rejected
    // key (see `key_rejected`) and OpenAI's for the rest.
    match p.spec().wire {
        Wire::Anthropic => http(
            status,
            json_ct(),
            json!({"type":"error","error":{"type":kind,"message":message}}).to_string(),
        ),
        Wire::Google => http(
            status,
            json_ct(),
            json!({"error":{"code":status,"message":message,"status":kind}}).to_string(),
        ),
        Wire::Aws => http(
            status,
            vec![
                ("content-type", "application/json".into()),
                (
                    "x-amzn-errortype",
                    format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
                ),
            ],
            json!({"message":message}).to_string(),
        ),
        Wire::Mistral => http(
            status,
            json_ct(),
            json!({"object":"error","message":message,"type":kind,"param":null,"code":code_value})
                .to_string(),
        ),
        Wire::Openai | Wire::Xai => http(
            status,
            json_ct(),
            json!({"error":{"message":message,"type":kind,"param":null,"code":code_value}})
                .to_string(),
        ),
    }
}

fn json_ct() -> Vec<(&'static str, String)> {
    vec![("content-type", "application/json".into())]
}

fn http(status: u16, headers: Vec<(&str, String)>, body: String) -> Reply {
    Reply::Http {
        status,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        body: body.into_bytes().into(),
    }
}

/// Appends headers to a reply (the shared list is copied once).
pub fn add_headers(reply: &mut Reply, extra: Vec<(&str, String)>) {
    if let Reply::Http { headers, .. } = reply {
        let all = headers
            .iter()
            .cloned()
            .chain(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        *headers = all.collect();
    }
}

/// Unix seconds as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let (y, m, d) = civil_from_days(days);
    let s = unix_secs % 86_400;
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days(unix_secs / 86_400);
    let s = unix_secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_the_classifier_parsers() {
        let secs = 1_790_000_123;
        assert_eq!(
            relent::classify::hints::http_date_unix_ms(&http_date(secs)),
            Some(secs * 1000)
        );
        assert_eq!(
            relent::classify::hints::rfc3339_unix_ms(&rfc3339(secs)),
            Some(secs * 1000)
        );
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
