//! Metrics through the [`metrics`] facade: install any recorder (Prometheus,
//! OpenTelemetry) and these appear; without one they cost next to nothing.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `relent_calls_total` | counter | `outcome` (`success` or the abort reason) |
//! | `relent_call_duration_seconds` | histogram | `outcome` |
//! | `relent_sends_total` | counter | `provider`, `model`, `key` |
//! | `relent_retries_total` | counter | `provider`, `model`, `key` (sends after the first) |
//! | `relent_rotations_total` | counter | `provider`, `model`, `key` (the new key), `why` |
//! | `relent_sleeps_total` | counter | `why` (`backoff`, `server_hint`, `all_keys_cooling`) |
//! | `relent_aborts_total` | counter | `reason`, `last_failure` |
//! | `relent_key_state_changes_total` | counter | `provider`, `model`, `key`, `state` |
//!
//! `key` is the key's label, never its secret. Label values come from the configuration
//! (provider, model, key labels) or from relent's fixed vocabularies.

use metrics::{Label, SharedString};
use relent::machine::SleepReason;
use relent::{Abort, KeyRef, KeyState, Pool};

/// The labels naming a key: its provider, its model and its label. Built once per use
/// and moved into the metric's key: the provider's name is static and the key's label
/// shared, so only the model's name is copied.
fn target_labels(pool: &Pool, at: KeyRef) -> Vec<Label> {
    let (provider, model) = pool
        .targets()
        .get(at.target)
        .map_or(("", String::new()), |t| {
            (t.provider.name(), t.model.clone())
        });
    vec![
        Label::new("provider", provider),
        Label::new("model", model),
        Label::new("key", SharedString::from(pool.label(at.key))),
    ]
}

pub(crate) fn send(pool: &Pool, at: KeyRef, attempt: u32) {
    let labels = target_labels(pool, at);
    if attempt > 1 {
        metrics::counter!("relent_retries_total", labels.clone()).increment(1);
    }
    metrics::counter!("relent_sends_total", labels).increment(1);
}

pub(crate) fn rotation(pool: &Pool, to: KeyRef, why: &'static str) {
    let mut labels = target_labels(pool, to);
    labels.push(Label::new("why", why));
    metrics::counter!("relent_rotations_total", labels).increment(1);
}

pub(crate) fn sleep(reason: &SleepReason) {
    metrics::counter!("relent_sleeps_total", "why" => reason.name()).increment(1);
}

pub(crate) fn abort(abort: &Abort) {
    let last = abort.last_failure.map_or("none", |r| r.name());
    metrics::counter!("relent_aborts_total", "reason" => abort.reason.name(), "last_failure" => last)
        .increment(1);
}

pub(crate) fn call_ended(outcome: &'static str, seconds: f64) {
    metrics::counter!("relent_calls_total", "outcome" => outcome).increment(1);
    metrics::histogram!("relent_call_duration_seconds", "outcome" => outcome).record(seconds);
}

fn state_name(state: KeyState) -> &'static str {
    match state {
        KeyState::Ready => "ready",
        KeyState::CoolingDown(_) => "cooling_down",
        KeyState::Exhausted(_) => "exhausted",
        KeyState::Revoked => "revoked",
        KeyState::Removed => "removed",
    }
}

/// Counts keys whose state kind differs between `before` and `after`.
pub(crate) fn key_state_changes(before: &Pool, after: &Pool) {
    for (target, entry) in after.all_keys() {
        let old = before.state(entry.spec.id);
        if std::mem::discriminant(&old) == std::mem::discriminant(&entry.state) {
            continue;
        }
        let mut labels = target_labels(
            after,
            KeyRef {
                target,
                key: entry.spec.id,
            },
        );
        labels.push(Label::new("state", state_name(entry.state)));
        metrics::counter!("relent_key_state_changes_total", labels).increment(1);
    }
}
