//! The classifier's vocabulary: what was seen, and what it means.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Which API produced a response. It tunes a few rules (Gemini's per-minute "quota",
/// OpenRouter's wrapped upstream errors); everything else is recognised from the bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// OpenAI's API.
    #[serde(alias = "open_ai")]
    Openai,
    /// Azure OpenAI.
    Azure,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google Gemini API.
    Gemini,
    /// Google Vertex AI.
    Vertex,
    /// AWS Bedrock.
    Bedrock,
    /// DeepSeek.
    Deepseek,
    /// Mistral.
    Mistral,
    /// Groq.
    Groq,
    /// xAI.
    Xai,
    /// OpenRouter (an aggregator in front of other providers).
    Openrouter,
    /// Any other OpenAI-compatible endpoint.
    #[default]
    #[serde(alias = "openai_compatible")]
    Generic,
}

impl Provider {
    /// Every provider, in declaration order.
    pub const ALL: [Provider; 12] = [
        Provider::Openai,
        Provider::Azure,
        Provider::Anthropic,
        Provider::Gemini,
        Provider::Vertex,
        Provider::Bedrock,
        Provider::Deepseek,
        Provider::Mistral,
        Provider::Groq,
        Provider::Xai,
        Provider::Openrouter,
        Provider::Generic,
    ];

    /// The lowercase name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider name that relent does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProvider(pub String);

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown provider {:?}; expected one of ", self.0)?;
        for (i, spec) in super::providers::SPECS.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(spec.name)?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownProvider {}

impl FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        super::providers::SPECS
            .iter()
            .find(|spec| spec.name == lower || spec.aliases.contains(&lower.as_str()))
            .map(|spec| spec.provider)
            .ok_or_else(|| UnknownProvider(s.to_string()))
    }
}

/// What went wrong below HTTP, as the transport reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportError {
    /// No response before the attempt's timeout.
    Timeout,
    /// The connection was refused.
    ConnectRefused,
    /// The host name did not resolve.
    Dns,
    /// The connection was reset or closed mid-request.
    Reset,
    /// The TLS handshake failed for a reason other than the certificate.
    TlsHandshake,
    /// The server's certificate failed verification.
    TlsCertificate,
    /// Anything else the transport could not describe.
    Other,
}

/// One HTTP response as the transport saw it. Header names are matched case-insensitively;
/// duplicates are allowed (the first usable value wins).
#[derive(Copy, Clone, Debug)]
pub struct HttpResponse<'a> {
    /// The status code.
    pub status: u16,
    /// Header name and value pairs.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body bytes received so far (only a bounded prefix is scanned).
    pub body: &'a [u8],
}

/// What one attempt produced: an HTTP response or a transport failure.
#[derive(Copy, Clone, Debug)]
pub enum Observation<'a> {
    /// The server answered.
    Http(HttpResponse<'a>),
    /// The transport failed.
    Transport(TransportError),
}

/// What happened, in relent's closed vocabulary.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A success status with no error inside the body.
    Success,
    /// The key is invalid, expired or revoked.
    KeyRejected,
    /// The key is valid but not allowed to do this (entitlement, region, model access).
    PermissionDenied,
    /// The account's credit or quota is spent (not a short rate-limit window).
    QuotaExhausted,
    /// The key hit a rate-limit window.
    RateLimited,
    /// An aggregator's upstream provider was rate limited; the key itself is fine.
    UpstreamRateLimited,
    /// The provider (or model) is overloaded for everyone.
    Overloaded,
    /// The provider failed internally.
    ServerError,
    /// No answer in time (client- or server-side).
    Timeout,
    /// Connecting failed or the connection dropped.
    ConnectionFailed,
    /// The server's TLS certificate failed verification.
    TlsCertificate,
    /// The request does not fit the model's context window.
    ContextOverflow,
    /// The request body is too large.
    PayloadTooLarge,
    /// The provider's content filter refused the request.
    ContentFilter,
    /// The model does not exist (or is not visible to this key).
    ModelNotFound,
    /// The request itself is invalid.
    MalformedRequest,
    /// A WAF or CDN challenge page answered instead of the API.
    BlockedByWaf,
    /// Nothing recognisable.
    Unknown,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: [Reason; 18] = [
        Reason::Success,
        Reason::KeyRejected,
        Reason::PermissionDenied,
        Reason::QuotaExhausted,
        Reason::RateLimited,
        Reason::UpstreamRateLimited,
        Reason::Overloaded,
        Reason::ServerError,
        Reason::Timeout,
        Reason::ConnectionFailed,
        Reason::TlsCertificate,
        Reason::ContextOverflow,
        Reason::PayloadTooLarge,
        Reason::ContentFilter,
        Reason::ModelNotFound,
        Reason::MalformedRequest,
        Reason::BlockedByWaf,
        Reason::Unknown,
    ];

    /// The snake_case name used in JSON and traces.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Success => "success",
            Reason::KeyRejected => "key_rejected",
            Reason::PermissionDenied => "permission_denied",
            Reason::QuotaExhausted => "quota_exhausted",
            Reason::RateLimited => "rate_limited",
            Reason::UpstreamRateLimited => "upstream_rate_limited",
            Reason::Overloaded => "overloaded",
            Reason::ServerError => "server_error",
            Reason::Timeout => "timeout",
            Reason::ConnectionFailed => "connection_failed",
            Reason::TlsCertificate => "tls_certificate",
            Reason::ContextOverflow => "context_overflow",
            Reason::PayloadTooLarge => "payload_too_large",
            Reason::ContentFilter => "content_filter",
            Reason::ModelNotFound => "model_not_found",
            Reason::MalformedRequest => "malformed_request",
            Reason::BlockedByWaf => "blocked_by_waf",
            Reason::Unknown => "unknown",
        }
    }

    /// Whose fault it is.
    pub fn scope(self) -> Scope {
        match self {
            Reason::Success => Scope::None,
            Reason::KeyRejected
            | Reason::PermissionDenied
            | Reason::QuotaExhausted
            | Reason::RateLimited => Scope::Key,
            Reason::ModelNotFound => Scope::Model,
            Reason::ContextOverflow
            | Reason::PayloadTooLarge
            | Reason::ContentFilter
            | Reason::MalformedRequest => Scope::Request,
            Reason::UpstreamRateLimited
            | Reason::Overloaded
            | Reason::ServerError
            | Reason::Timeout
            | Reason::ConnectionFailed
            | Reason::TlsCertificate
            | Reason::BlockedByWaf
            | Reason::Unknown => Scope::Provider,
        }
    }

    /// What the retry machine does about this reason: the behaviour table of the design
    /// brief, in one place. [`Reason::recovery`] is derived from it, and the machine's
    /// decisions dispatch on it.
    pub fn rule(self) -> Rule {
        match self {
            Reason::Success => Rule::Done,
            Reason::KeyRejected => Rule::RejectKey,
            Reason::QuotaExhausted => Rule::BenchKey(Bench::Exhausted),
            Reason::RateLimited => Rule::BenchKey(Bench::Cooling),
            Reason::PermissionDenied => Rule::ExcludeKey,
            Reason::UpstreamRateLimited => Rule::FallbackThenRetry,
            Reason::Overloaded | Reason::ServerError | Reason::Unknown => Rule::RetrySame {
                fresh_connection: false,
            },
            Reason::Timeout | Reason::ConnectionFailed => Rule::RetrySame {
                fresh_connection: true,
            },
            Reason::TlsCertificate | Reason::BlockedByWaf | Reason::ModelNotFound => {
                Rule::Fallback {
                    larger_context: false,
                    shrink_request: false,
                }
            }
            Reason::ContextOverflow => Rule::Fallback {
                larger_context: true,
                shrink_request: true,
            },
            // Too many bytes, not too many tokens: any other target may take them.
            Reason::PayloadTooLarge => Rule::Fallback {
                larger_context: false,
                shrink_request: true,
            },
            Reason::ContentFilter => Rule::FallbackIfAllowed,
            Reason::MalformedRequest => Rule::Abort,
        }
    }

    /// What could help, following the behaviour table of the design brief (derived from
    /// [`Reason::rule`]).
    pub fn recovery(self) -> Recovery {
        let r = |retry_same_key, rotate_key, fallback, shrink_request| Recovery {
            retry_same_key,
            rotate_key,
            fallback,
            shrink_request,
        };
        match self.rule() {
            Rule::Done | Rule::Abort => r(false, false, false, false),
            Rule::RejectKey | Rule::BenchKey(Bench::Exhausted) | Rule::ExcludeKey => {
                r(false, true, true, false)
            }
            Rule::BenchKey(Bench::Cooling) => r(true, true, true, false),
            Rule::FallbackThenRetry | Rule::RetrySame { .. } => r(true, false, true, false),
            Rule::Fallback { shrink_request, .. } => r(false, false, true, shrink_request),
            Rule::FallbackIfAllowed => r(false, false, true, false),
        }
    }

    /// True for faults that waiting and sending the same request again can fix.
    pub fn is_transient(self) -> bool {
        self.recovery().retry_same_key
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whose fault a failure is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// No fault (a success).
    None,
    /// The request must change.
    Request,
    /// This key (credential) is at fault.
    Key,
    /// This model is at fault.
    Model,
    /// The provider (or the path to it) is at fault for everyone.
    Provider,
}

/// What the retry machine does about a failure (see [`Reason::rule`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// A success: nothing to recover from.
    Done,
    /// The key was rejected: revoke it (or, when it is the only usable key, one immediate
    /// retry on a fresh connection) and rotate or fall back.
    RejectKey,
    /// The key is held back (cooling or exhausted) and the call rotates, waits or falls back.
    BenchKey(Bench),
    /// The key may not be used for this target in this call: rotate or fall back.
    ExcludeKey,
    /// An aggregator's upstream is limited: another target first, else wait and retry.
    FallbackThenRetry,
    /// A provider-wide, transient fault: wait and send the same request again.
    RetrySame {
        /// Whether the next send needs a new connection.
        fresh_connection: bool,
    },
    /// The request cannot succeed on this target: another target, else abort.
    Fallback {
        /// Only a target with a larger known context window can help.
        larger_context: bool,
        /// A smaller request could succeed here.
        shrink_request: bool,
    },
    /// A content-filter refusal: another target only when the policy allows it.
    FallbackIfAllowed,
    /// The request is invalid: abort (unless the server says to retry).
    Abort,
}

/// How a key is held back after a key-scoped fault.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Bench {
    /// Rate limited: until the server's reset, or one backoff delay (escalating when the key
    /// keeps drawing rate limits with no hint: `Policy::key_cooldown`).
    Cooling,
    /// Out of credit or quota: until the quota's own reset, or the policy's long TTL.
    Exhausted,
}

/// What would help.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Recovery {
    /// Sending again with the same key can succeed (after a wait).
    pub retry_same_key: bool,
    /// Another key of the same target can succeed.
    pub rotate_key: bool,
    /// Another target (provider or model) can succeed.
    pub fallback: bool,
    /// A smaller request can succeed.
    pub shrink_request: bool,
}

/// Where a server wait hint came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintSource {
    /// `retry-after-ms`, `x-ms-retry-after-ms` or `x-amz-retry-after` (AWS, milliseconds).
    RetryAfterMs,
    /// `retry-after` in seconds.
    RetryAfterSeconds,
    /// `retry-after` as an HTTP-date.
    RetryAfterDate,
    /// `grpc-retry-pushback-ms`.
    GrpcPushback,
    /// Gemini's `google.rpc.RetryInfo.retryDelay` in the body.
    RetryInfo,
    /// `anthropic-ratelimit-*-reset` (RFC 3339).
    AnthropicReset,
    /// `x-ratelimit-reset-requests` / `-tokens` (Go durations).
    RateLimitReset,
    /// OpenRouter's `metadata.headers.X-RateLimit-Reset` (epoch milliseconds).
    OpenrouterReset,
    /// A phrase in the message ("try again in 5.289s").
    Message,
}

impl HintSource {
    /// Whether the hint named an absolute time (an HTTP-date, an RFC 3339 or epoch reset),
    /// which becomes a wait only against a clock: the one part of a classification that
    /// depends on the wall clock it was made with.
    pub fn is_absolute(self) -> bool {
        matches!(
            self,
            HintSource::RetryAfterDate | HintSource::AnthropicReset | HintSource::OpenrouterReset
        )
    }
}

/// The server's word on when to come back.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WaitHint {
    /// How long to wait from the moment of the response, in milliseconds.
    pub after_ms: u64,
    /// Which header or field said so.
    pub source: HintSource,
    /// True when the server asked for more than [`super::hints::MAX_HINT_MS`] and was clamped.
    pub clamped: bool,
}

/// The classifier's verdict on one response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// What happened.
    pub reason: Reason,
    /// Whose fault it is.
    pub scope: Scope,
    /// What would help.
    pub recovery: Recovery,
    /// When the server says to come back, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitHint>,
    /// The server's explicit word on retrying (`x-should-retry`, or a garbled
    /// `grpc-retry-pushback-ms`, which means "do not retry").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_retry: Option<bool>,
    /// The provider's own error code or type, redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A short, redacted message for humans (may be empty for successes). Borrowed for the
    /// fixed texts of transport failures, so the common retry path does not allocate.
    pub message: Cow<'static, str>,
}

impl Classification {
    /// A classification with the given reason and the reason's default scope and recovery.
    pub fn of(reason: Reason) -> Self {
        Classification {
            reason,
            scope: reason.scope(),
            recovery: reason.recovery(),
            wait: None,
            server_retry: None,
            code: None,
            message: Cow::Borrowed(""),
        }
    }
}
