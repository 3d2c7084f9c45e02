//! Per-call options and the header names relent sends.

use crate::secret::Headers;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Header names relent sends with every attempt.
#[derive(Clone, Debug)]
pub struct HeaderNames {
    /// The idempotency key, the same for every attempt of a call.
    pub idempotency: String,
    /// The attempt number, 1 for the first send.
    pub attempt: String,
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames {
            idempotency: "Idempotency-Key".into(),
            attempt: "X-Relent-Attempt".into(),
        }
    }
}

/// Options for one call. `Debug` redacts header values that look like credentials.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// This call's whole budget (shorter than the policy's `deadline_ms` only: a longer
    /// one is cut to the policy's).
    pub deadline: Option<Duration>,
    /// Headers for this call's attempts, after the client's and the target's.
    pub headers: Headers,
    /// Names and values recorded in the call's `tracing` span (`metadata = "k=v,…"`), for
    /// a request id or a tenant. Not sent.
    pub metadata: Vec<(String, String)>,
    /// Ends the call early (reason `cancelled`), also while a stream is being read.
    pub cancel: Option<CancellationToken>,
}

impl CallOptions {
    /// No options.
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Adds a metadata entry.
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((name.into(), value.into()));
        self
    }

    /// Sets the cancellation token.
    pub fn cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("deadline", &self.deadline)
            .field("headers", &self.headers)
            .field("metadata", &self.metadata)
            .field("cancel", &self.cancel.is_some())
            .finish()
    }
}
