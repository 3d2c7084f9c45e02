//! Coverage marks: the rare paths a standard run must reach ("sometimes" properties).

use relent::{Action, Reason, RetryMachine, SleepReason, State};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The marks reached, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marks(pub BTreeSet<String>);

impl Marks {
    /// Every mark a standard run must reach.
    pub fn required() -> Vec<String> {
        let mut all: Vec<String> = Reason::ALL.iter().map(|r| format!("reason:{r}")).collect();
        for kind in ["send", "sleep", "rotate", "succeeded", "abort"] {
            all.push(format!("action:{kind}"));
        }
        for m in [
            "rotate_after:key_rejected",
            "rotate_after:quota_exhausted",
            "rotate_after:rate_limited",
            "fallback_to_another_target",
            "pool_change_during_sleep",
            "abort_at_deadline",
            "server_wait_honoured",
            "all_keys_cooling",
            "liveness_checked",
        ] {
            all.push(m.to_string());
        }
        all
    }

    /// Adds a mark.
    pub fn hit(&mut self, name: impl Into<String>) {
        self.0.insert(name.into());
    }

    /// Merges another set in.
    pub fn merge(&mut self, other: &Marks) {
        self.0.extend(other.0.iter().cloned());
    }

    /// Required marks not reached.
    pub fn missing(&self) -> Vec<String> {
        Marks::required()
            .into_iter()
            .filter(|m| !self.0.contains(m))
            .collect()
    }

    pub(crate) fn action(&mut self, action: &Action) {
        self.hit(format!("action:{}", action.kind()));
        match action {
            Action::Rotate { from, to, why } => {
                if from.target != to.target {
                    self.hit("fallback_to_another_target");
                } else if matches!(
                    why,
                    Reason::KeyRejected | Reason::QuotaExhausted | Reason::RateLimited
                ) {
                    self.hit(format!("rotate_after:{why}"));
                }
            }
            Action::Sleep {
                reason: SleepReason::ServerHint { .. },
                ..
            } => self.hit("server_wait_honoured"),
            Action::Sleep {
                reason: SleepReason::AllKeysCooling,
                ..
            } => self.hit("all_keys_cooling"),
            Action::Abort(abort) if abort.reason == relent::AbortReason::DeadlineExceeded => {
                self.hit("abort_at_deadline")
            }
            _ => {}
        }
    }

    pub(crate) fn pool_change(&mut self, machine: &RetryMachine) {
        if matches!(machine.state(), State::Sleeping { .. }) {
            self.hit("pool_change_during_sleep");
        }
    }

    pub(crate) fn reason(&mut self, reason: Reason) {
        self.hit(format!("reason:{reason}"));
    }
}
