#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! relent-adapters: relent's key pool, failover and per-class retry policy inside the
//! client a program already uses.
//!
//! | client | seam | here | feature |
//! |---|---|---|---|
//! | async-openai ≥ 0.43 | `Client::with_http_service` | `openai::OpenAiService` | `async-openai` |
//! | reqwest-middleware 0.5 (and clients on it) | `ClientBuilder::with` | `middleware::RelentMiddleware` | `reqwest-middleware` |
//! | any `tower::Service<http::Request<B>>` | `tower::Layer` | `layer::RelentLayer` | `tower` |
//! | anything else (genai: this crate's `genai` example) | a closure | [`relent_tokio::retry`] | none |
//!
//! Every adapter runs relent-tokio's one drive loop ([`relent_tokio::RetryState::start`]
//! with a [`relent_tokio::SendAttempt`] of its own): it says only how one attempt is sent,
//! so shared learning (one pool for every call on a [`relent_tokio::RetryState`] and the
//! client it came from), per-target requests, timeouts, `tracing` and metrics are the
//! driver's. Each attempt goes to the target relent chose, with that key's credential in
//! place of the client's own (every credential-looking header the client set is dropped
//! first: [`relent_tokio::is_credential_header`]), relent's idempotency and attempt
//! headers, and, for the reqwest-based seams, the target's model in the JSON body.
//!
//! **URLs.** Give each target its *base URL* as its endpoint (`https://api.openai.com/v1`);
//! the client builds URLs under one of them, and an attempt to another target moves the
//! URL under that target's base ([`relent_tokio::Attempt::rebase`]). A URL under none of
//! them is refused before anything is sent, so a key never reaches a host that is not its
//! target's.
//!
//! **Errors.** A call relent gave up on fails with a [`RelentError`]: the
//! [`relent::Abort`] (reason, message, last failure) and how long until a retry could
//! succeed, when known. Each adapter hands it over in its client's own error type (see
//! each module).
//!
//! Each seam's module exists only with its feature (the documentation on docs.rs is built
//! with all of them).
//!
//! Turn the client's own retries off (see `docs/ADAPTERS.md`): relent retries, and two
//! retry layers multiply each other's attempts.

use relent_tokio::{CallError, RetryState};
use std::time::Duration;

#[cfg(feature = "http")]
mod body;
#[cfg(feature = "http")]
mod headers;
#[cfg(feature = "tower")]
pub mod layer;
#[cfg(feature = "reqwest-middleware")]
pub mod middleware;
#[cfg(feature = "async-openai")]
pub mod openai;
#[cfg(feature = "reqwest")]
mod reqwest_parts;

/// Why a call made through an adapter failed: relent gave up (an [`relent::Abort`]), the
/// configuration cannot work, or the driver went wrong. Its texts never quote a secret.
#[derive(Debug, Clone)]
pub struct RelentError {
    error: CallError,
    retry_after: Option<Duration>,
}

impl RelentError {
    /// The error of a call on `state`, with the time until a retry could succeed read from
    /// the abort's `retry_at` now.
    pub fn new(error: CallError, state: &RetryState) -> Self {
        let retry_after = error
            .abort()
            .and_then(|abort| abort.retry_at)
            .map(|at| state.until(at));
        RelentError { error, retry_after }
    }

    /// The driver's error.
    pub fn call_error(&self) -> &CallError {
        &self.error
    }

    /// The abort, when relent gave up (reason, message, last failure, attempts).
    pub fn abort(&self) -> Option<&relent::Abort> {
        self.error.abort()
    }

    /// Why relent gave up, when it did.
    pub fn reason(&self) -> Option<relent::AbortReason> {
        self.abort().map(|abort| abort.reason)
    }

    /// How long after the failure a retry could first succeed, when the provider said so
    /// (a rate limit's reset, a quota's refill).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl std::fmt::Display for RelentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "relent: {}", self.error)?;
        if let Some(wait) = self.retry_after {
            write!(f, " (a retry could succeed in {} ms)", wait.as_millis())?;
        }
        Ok(())
    }
}

impl std::error::Error for RelentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Finds a [`RelentError`] in an error's source chain (the error itself included), for
/// clients that wrap their middleware's errors.
pub fn find_relent_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a RelentError> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<RelentError>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// Whether a JSON body asks for a stream (`"stream": true`): such a call is handed over at
/// its first chunk, any other once its whole body is read.
#[cfg(feature = "reqwest")]
pub(crate) fn handover_for(body: Option<&[u8]>) -> relent_tokio::Handover {
    let streams = body
        .filter(|b| b.windows(8).any(|w| w == b"\"stream\""))
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .is_some_and(|v| v.get("stream") == Some(&serde_json::Value::Bool(true)));
    if streams {
        relent_tokio::Handover::FirstChunk
    } else {
        relent_tokio::Handover::Whole
    }
}
