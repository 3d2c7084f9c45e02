//! The machine's record of what it saw and did, for snapshots, replay and the simulator.

use super::action::Action;
use super::event::EventSummary;
use crate::classify::{HintSource, Reason};
use crate::pool::{KeyId, KeyState};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// The classification of a response, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenSummary {
    /// The reason.
    pub reason: Reason,
    /// The provider's code, redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The server's wait hint in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// Where the hint came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_source: Option<HintSource>,
}

/// A key's state at a moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySnapshot {
    /// The key.
    pub key: KeyId,
    /// Its label.
    pub label: Arc<str>,
    /// Its state.
    #[serde(flatten)]
    pub state: KeyState,
}

/// One step: an event and everything it caused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    /// When (after clamping time that went backwards).
    pub at: Time,
    /// What came in.
    #[serde(flatten)]
    pub event: EventSummary,
    /// How a response was classified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<SeenSummary>,
    /// What the machine asked for.
    pub actions: Vec<Action>,
    /// The state afterwards (its name).
    pub state: Cow<'static, str>,
    /// Every key's state afterwards.
    pub keys: Vec<KeySnapshot>,
}
