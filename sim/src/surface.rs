//! Invariant 31: the machine's surface agrees with what it did.
//!
//! A driver reads more than the actions: the state's name and whether it is terminal, the
//! number of sends, the deadline, the keys excluded from the call, the names that metrics
//! and logs print, the idempotency key's text, and the errors of events that do not fit.
//! Each is checked here against something the machine does not compute the same way:
//!
//! - the state a step leaves follows from the step's last action (`send` → awaiting a
//!   response, `sleep` → sleeping, `succeeded` → committed, `abort` → aborted), or from the
//!   event (a stream's end → succeeded), or else it is the state before;
//! - `attempts()` is the number of `Send` actions, `deadline()` the start plus the policy's
//!   `deadline_ms`, `policy()` the policy the machine was built with, `excluded_keys()` the
//!   keys that answered "not entitled" in this call (the checker's own list);
//! - the names of actions, sleep reasons and abort reasons are those their JSON carries
//!   (serde's derive, not the hand-written `name` methods), and `SleepReason::after` is the
//!   fault the JSON names;
//! - an idempotency key prints as `relent-` and its 128 bits in 32 lower-case hex digits
//!   (formatted here with `format!`), and both halves of it are drawn (a key whose top 64
//!   bits are all zero has a chance of 2^-64);
//! - an event the machine refuses changes nothing: no trace entry, no action; one it
//!   accepts records exactly one trace entry.

use relent::machine::{Action, IdempotencyKey, TraceEntry};
use relent::{EventError, RetryMachine};

/// The state name a step leaves, from its actions, its event and the state before.
pub fn expected_state<'a>(entry: &TraceEntry, before: &'a str) -> &'a str {
    match entry.actions.last() {
        Some(Action::Send(_)) => "awaiting_response",
        Some(Action::Sleep { .. }) => "sleeping",
        Some(Action::Succeeded { .. }) => "committed",
        Some(Action::Abort(_)) => "aborted",
        Some(Action::Rotate { .. }) => "a rotation with no send after it",
        None if entry.event.name() == "stream_ended" => "succeeded",
        None => before,
    }
}

/// What an action's names depend on: its kind and its sleep or abort reason. Two actions
/// alike in these carry the same names and the same JSON tags, so [`action_names`] judges
/// each such pair once per thread.
#[derive(Clone, Copy, PartialEq)]
struct Names {
    kind: &'static str,
    sleep: Option<relent::machine::SleepReason>,
    abort: Option<relent::AbortReason>,
}

thread_local! {
    /// The [`Names`] judged so far on this thread, with their verdict.
    static JUDGED: std::cell::RefCell<Vec<(Names, Option<String>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// What is wrong with the names one action carries, judged against its JSON. A send's
/// idempotency key is judged every time; the names, once per distinct kind and reason (serialising
/// every action of every world would cost more than the world).
pub fn action_names(action: &Action) -> Option<String> {
    if let Action::Send(send) = action {
        if let Some(problem) = idempotency_text(send.idempotency_key) {
            return Some(problem);
        }
    }
    let names = Names {
        kind: action.kind(),
        sleep: match action {
            Action::Sleep { reason, .. } => Some(*reason),
            _ => None,
        },
        abort: match action {
            Action::Abort(abort) => Some(abort.reason),
            _ => None,
        },
    };
    if let Some(verdict) = JUDGED.with_borrow(|judged| {
        judged
            .iter()
            .find(|(seen, _)| *seen == names)
            .map(|(_, verdict)| verdict.clone())
    }) {
        return verdict;
    }
    let verdict = names_against_json(action);
    JUDGED.with_borrow_mut(|judged| judged.push((names, verdict.clone())));
    verdict
}

/// [`action_names`] without the memo (and without the idempotency key).
fn names_against_json(action: &Action) -> Option<String> {
    let json = serde_json::to_value(action).ok()?;
    let tag = json.get("action").and_then(|t| t.as_str()).unwrap_or("");
    if action.kind() != tag {
        return Some(format!(
            "an action named `{}` whose JSON says `{tag}`",
            action.kind()
        ));
    }
    match action {
        Action::Sleep { reason, .. } => {
            let json = serde_json::to_value(reason).ok()?;
            let kind = json.get("kind").and_then(|t| t.as_str()).unwrap_or("");
            if reason.name() != kind {
                return Some(format!(
                    "a sleep reason named `{}` whose JSON says `{kind}`",
                    reason.name()
                ));
            }
            let after = json
                .get("after")
                .map(|a| serde_json::from_value::<relent::Reason>(a.clone()).ok());
            if reason.after() != after.flatten() {
                return Some(format!(
                    "a sleep reason `{kind}` whose `after()` is {:?}, where its JSON says {:?}",
                    reason.after(),
                    json.get("after")
                ));
            }
        }
        Action::Abort(abort) => {
            let json = serde_json::to_value(abort.reason).ok()?;
            let name = json.as_str().unwrap_or("");
            if abort.reason.name() != name || abort.reason.to_string() != name {
                return Some(format!(
                    "an abort reason named `{}` and shown as `{}` whose JSON says `{name}`",
                    abort.reason.name(),
                    abort.reason
                ));
            }
        }
        _ => {}
    }
    None
}

/// What is wrong with an idempotency key's text, or with how much of it was drawn.
pub fn idempotency_text(key: IdempotencyKey) -> Option<String> {
    let expected = format!("relent-{:032x}", key.0);
    let shown = key.to_string();
    if shown != expected {
        return Some(format!(
            "idempotency key {:#x} is shown as {shown:?}, not {expected:?}",
            key.0
        ));
    }
    if key.0 >> 64 == 0 {
        return Some(format!(
            "idempotency key {expected} has its top 64 bits all zero: half of it was not drawn"
        ));
    }
    None
}

/// What is wrong with the machine's getters at the end of a call: `sends` Send actions
/// seen, `deadline` the model's, `excluded` the keys the model saw refused as not entitled.
pub fn getters(
    machine: &RetryMachine,
    policy: &relent::Policy,
    sends: u32,
    deadline: Option<relent::Time>,
    excluded: &[relent::KeyId],
) -> Option<String> {
    if machine.attempts() != sends {
        return Some(format!(
            "attempts() says {} after {sends} sends",
            machine.attempts()
        ));
    }
    if let Some(deadline) = deadline.filter(|d| machine.deadline() != *d) {
        return Some(format!(
            "deadline() says {}, not {deadline}, the start plus deadline_ms",
            machine.deadline()
        ));
    }
    if machine.policy() != policy {
        return Some("policy() is not the policy the machine was built with".into());
    }
    let mut theirs = machine.excluded_keys().to_vec();
    let mut ours = excluded.to_vec();
    theirs.sort_unstable();
    theirs.dedup();
    ours.sort_unstable();
    ours.dedup();
    if theirs != ours {
        return Some(format!(
            "excluded_keys() says {theirs:?}, where the keys refused as not entitled are {ours:?}"
        ));
    }
    if !machine.state().is_terminal() {
        return Some(format!(
            "the call has ended but its state `{}` says it is not terminal",
            machine.state().name()
        ));
    }
    None
}

/// What is wrong with how the machine took an event it should refuse: `result` its answer,
/// `entries` the trace's length before and after, `acted` whether it queued an action.
pub fn refused(
    what: &str,
    result: Result<(), EventError>,
    expected: fn(&EventError) -> bool,
    entries: (usize, usize),
    acted: bool,
) -> Option<String> {
    match result {
        Ok(()) => Some(format!("{what} was accepted")),
        Err(e) if !expected(&e) => Some(format!("{what} was refused with the wrong error: {e}")),
        Err(_) if entries.0 != entries.1 || acted => {
            Some(format!("{what} was refused, but the machine changed"))
        }
        Err(_) => None,
    }
}
