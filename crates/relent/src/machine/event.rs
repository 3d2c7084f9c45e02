//! What the driver tells the machine.

use crate::classify::classified::Seen;
use crate::classify::{Classified, Observation, TransportError};
use crate::pool::{KeyId, KeySpec};
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// An input to the machine.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// What the pending `Send` produced.
    Response(Observation<'a>),
    /// What the pending `Send` produced, classified already by the caller with
    /// [`Classified::new`] for the provider of the send's target. The machine acts on it
    /// exactly as on the [`Event::Response`] it was made from (when made with the machine's
    /// wall clock at that moment), without classifying again.
    Classified(&'a Classified),
    /// The time the machine asked for has come: the end of a sleep, or the pending attempt's
    /// `timeout_at`. Early (spurious) timeouts are ignored.
    Timeout,
    /// The pool changed from outside.
    PoolChanged(PoolChange),
    /// A committed (streamed) response ended normally.
    StreamEnded,
    /// A committed (streamed) response failed midway.
    StreamFailed(Observation<'a>),
    /// The caller gives up.
    Cancel,
}

/// A change to the pool made from outside the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum PoolChange {
    /// A new key for target `target`.
    Added {
        /// Index of the target.
        target: usize,
        /// The key.
        key: KeySpec,
    },
    /// The key is gone for good.
    Removed {
        /// The key.
        key: KeyId,
    },
    /// The key is usable again (for example after the user fixed its billing).
    Restored {
        /// The key.
        key: KeyId,
    },
    /// Someone else saw this key fail: revoked (`until` absent) or cooling until `until`.
    MarkedBad {
        /// The key.
        key: KeyId,
        /// Cooling until this time; absent means revoked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Time>,
    },
}

/// A summary of an event for the trace (bodies are never recorded: they may echo secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum EventSummary {
    /// The call started.
    Start,
    /// An HTTP response.
    Response {
        /// Its status.
        status: u16,
    },
    /// A transport failure.
    TransportError {
        /// Its kind.
        kind: TransportError,
    },
    /// A timer fired.
    Timeout,
    /// A pool change.
    PoolChanged(PoolChange),
    /// A stream ended.
    StreamEnded,
    /// A stream failed.
    StreamFailed,
    /// A cancel.
    Cancel,
}

impl EventSummary {
    pub(crate) fn of(event: &Event<'_>) -> Self {
        match event {
            Event::Response(Observation::Http(r)) => EventSummary::Response { status: r.status },
            Event::Response(Observation::Transport(kind)) => {
                EventSummary::TransportError { kind: *kind }
            }
            Event::Classified(c) => match c.seen() {
                Seen::Http { status } => EventSummary::Response { status },
                Seen::Transport(kind) => EventSummary::TransportError { kind },
            },
            Event::Timeout => EventSummary::Timeout,
            Event::PoolChanged(change) => EventSummary::PoolChanged(change.clone()),
            Event::StreamEnded => EventSummary::StreamEnded,
            Event::StreamFailed(_) => EventSummary::StreamFailed,
            Event::Cancel => EventSummary::Cancel,
        }
    }

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            EventSummary::Start => "start",
            EventSummary::Response { .. } => "response",
            EventSummary::TransportError { .. } => "transport_error",
            EventSummary::Timeout => "timeout",
            EventSummary::PoolChanged(_) => "pool_changed",
            EventSummary::StreamEnded => "stream_ended",
            EventSummary::StreamFailed => "stream_failed",
            EventSummary::Cancel => "cancel",
        }
    }
}
