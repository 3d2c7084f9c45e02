//! Why a call ended without a response.

use relent::Abort;

/// Why a call (or building a client) failed.
///
/// [`CallError::Config`] is found before the first request is sent and is never retried:
/// fix the configuration. The other variants happen at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The configuration cannot work (a bad header value, an unparseable URL, a missing or
    /// malformed secret, a transport whose builder failed, a request that cannot be shaped
    /// for one of the targets). Nothing was sent.
    Config(String),
    /// The machine gave up: the reason and an actionable message. A stream that broke after
    /// it was handed over ends here with reason `failed_after_commit`.
    Aborted(Abort),
    /// The driver itself went wrong (a poisoned lock, a machine in a state the driver does
    /// not expect). A bug: please report it.
    Internal(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Aborted(abort) => write!(f, "{}: {}", abort.reason, abort.message),
            CallError::Config(message) => write!(f, "configuration error: {message}"),
            CallError::Internal(message) => write!(f, "internal error in relent-tokio: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

impl CallError {
    /// The abort, when the machine gave up.
    pub fn abort(&self) -> Option<&Abort> {
        match self {
            CallError::Aborted(abort) => Some(abort),
            _ => None,
        }
    }

    /// Whether this is a configuration mistake (nothing was sent, and retrying cannot help).
    pub fn is_config(&self) -> bool {
        matches!(self, CallError::Config(_))
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        CallError::Config(message.into())
    }
}
