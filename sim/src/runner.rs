//! Runs one schedule: a virtual clock, the machine, the scripted server, and the invariant
//! checks after every step.

use crate::invariants::{Checker, Violation};
use crate::marks::Marks;
use crate::respond::{Reply, WALL_EPOCH_UNIX_MS};
use crate::schedule::Schedule;
use crate::server::{Served, Server};
use relent::machine::TraceEntry;
use relent::{AbortReason, Action, Event, Observation, RetryMachine, State, Time};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A run that takes more steps than this has livelocked (invariant 6).
pub const MAX_STEPS: usize = 2_000;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The call succeeded.
    Succeeded,
    /// The call was aborted.
    Aborted(AbortReason),
    /// The run did not end within [`MAX_STEPS`].
    Livelock,
    /// The schedule itself is invalid (bad pool, bad policy).
    Invalid(String),
}

impl Outcome {
    /// A short name.
    pub fn name(&self) -> String {
        match self {
            Outcome::Succeeded => "succeeded".into(),
            Outcome::Aborted(r) => format!("aborted:{r}"),
            Outcome::Livelock => "livelock".into(),
            Outcome::Invalid(_) => "invalid".into(),
        }
    }
}

/// Everything one run produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// The abort message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Sends made.
    pub attempts: u32,
    /// Sends per key label.
    pub sends_per_key: BTreeMap<String, u32>,
    /// Sends that could not succeed (the server would fail them whatever the timing).
    pub wasted_sends: u32,
    /// Virtual time from start to the outcome.
    pub virtual_elapsed_ms: u64,
    /// Invariant violations.
    pub violations: Vec<Violation>,
    /// Coverage marks reached.
    #[serde(skip)]
    pub marks: Marks,
    /// The machine's trace (when requested).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<TraceEntry>,
}

/// Options for a run.
#[derive(Copy, Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the machine's trace in the report.
    pub keep_trace: bool,
}

struct InFlight {
    arrives_at: Option<Time>,
    reply: Reply,
}

/// Runs `schedule` to its end.
pub fn run(schedule: &Schedule, options: RunOptions) -> RunReport {
    let mut machine = match RetryMachine::new(
        schedule.policy.clone(),
        schedule.targets.clone(),
        schedule.seed,
    ) {
        Ok(m) => m.record_trace(true).wall_clock_epoch(WALL_EPOCH_UNIX_MS),
        Err(e) => return invalid(e.to_string()),
    };
    let mut server = Server::new(schedule);
    let mut changes: Vec<_> = schedule.pool_changes.iter().collect();
    changes.sort_by_key(|c| c.at_ms);
    let mut next_change = 0;
    let mut checker = Checker::new(schedule);
    let mut marks = Marks::default();
    let mut now = Time::ZERO;
    let mut in_flight: Option<InFlight> = None;
    let mut stream_fails_at: Option<Time> = None;
    let mut delivered_stream = false;
    let mut wasted = 0u32;
    let mut sends_per_key: Vec<(relent::KeyId, u32)> = Vec::new();
    let mut outcome = Outcome::Livelock;
    let mut message = None;

    let _ = machine.start(now);
    let mut trace_seen = 0;
    for _step in 0..MAX_STEPS {
        // Check and carry out everything the last input produced.
        let trace = machine.trace().unwrap_or(&[]);
        for entry in &trace[trace_seen..] {
            checker.check_entry(entry, &machine, &mut marks);
        }
        trace_seen = trace.len();
        while let Some(action) = machine.poll_action() {
            checker.check_action(now, &action, &machine);
            marks.action(&action);
            match action {
                Action::Send(send) => {
                    match sends_per_key.iter_mut().find(|(k, _)| *k == send.key) {
                        Some((_, n)) => *n += 1,
                        None => sends_per_key.push((send.key, 1)),
                    }
                    let target = send.target;
                    let arrival = now + relent::Millis(schedule.latency_ms);
                    let Served {
                        reply,
                        doomed,
                        reset_at,
                    } = server.serve(send.key, target, arrival);
                    checker.note_server_reset(send.key, reset_at);
                    if doomed {
                        wasted += 1;
                    }
                    let arrives_at = (reply != Reply::Hang).then_some(arrival);
                    in_flight = Some(InFlight { arrives_at, reply });
                }
                Action::Succeeded { .. } => {
                    if delivered_stream {
                        stream_fails_at = Some(now + relent::Millis(schedule.latency_ms));
                    }
                }
                Action::Abort(abort) => {
                    message = Some(abort.message.clone());
                }
                Action::Sleep { .. } | Action::Rotate { .. } => {}
            }
        }
        match machine.state() {
            State::Succeeded => {
                outcome = Outcome::Succeeded;
                break;
            }
            State::Aborted { reason } => {
                outcome = Outcome::Aborted(reason);
                break;
            }
            State::Committed { .. } if stream_fails_at.is_none() => {
                let _ = machine.handle(now, Event::StreamEnded);
                continue;
            }
            _ => {}
        }

        // The next thing to happen in the world.
        let response_at = in_flight.as_ref().and_then(|f| f.arrives_at);
        let candidates = [
            response_at,
            machine.next_timeout(),
            changes.get(next_change).map(|c| Time(c.at_ms)),
            schedule.cancel_at_ms.map(Time).filter(|t| *t >= now),
            stream_fails_at,
        ];
        let Some(next) = candidates.iter().flatten().min().copied() else {
            checker.violation(
                now,
                6,
                "the machine waits for nothing and the world has nothing left to say",
            );
            break;
        };
        now = now.max(next);
        let result = if stream_fails_at == Some(next) {
            stream_fails_at = None;
            machine.handle(
                now,
                Event::StreamFailed(Observation::Transport(relent::TransportError::Reset)),
            )
        } else if response_at == Some(next) {
            let flight = in_flight.take().expect("a response time implies a flight");
            delivered_stream = flight.reply == Reply::StreamThenFail;
            deliver(&mut machine, now, &flight.reply)
        } else if changes
            .get(next_change)
            .is_some_and(|c| Time(c.at_ms) == next)
        {
            let change = changes[next_change].change.clone();
            next_change += 1;
            checker.note_pool_change(&change);
            marks.pool_change(&machine);
            machine.handle(now, Event::PoolChanged(change))
        } else if schedule.cancel_at_ms.map(Time) == Some(next) {
            machine.cancel(now)
        } else {
            if matches!(machine.state(), State::AwaitingResponse { .. }) {
                in_flight = None;
            }
            machine.handle_timeout(now)
        };
        if let Err(e) = result {
            checker.violation(now, 0, &format!("the runner's event was refused: {e}"));
        }
    }
    let trace = machine.trace().unwrap_or(&[]);
    for entry in &trace[trace_seen..] {
        checker.check_entry(entry, &machine, &mut marks);
    }
    let virtual_elapsed_ms = now.0;
    checker.finish(now, &outcome, &machine, &mut marks);
    let violations = checker.into_violations();
    RunReport {
        outcome,
        message,
        attempts: machine.attempts(),
        sends_per_key: sends_per_key
            .into_iter()
            .map(|(key, n)| (machine.pool().label(key).to_string(), n))
            .collect(),
        wasted_sends: wasted,
        virtual_elapsed_ms,
        violations,
        marks,
        trace: if options.keep_trace {
            machine.take_trace()
        } else {
            Vec::new()
        },
    }
}

fn invalid(error: String) -> RunReport {
    RunReport {
        outcome: Outcome::Invalid(error),
        message: None,
        attempts: 0,
        sends_per_key: BTreeMap::new(),
        wasted_sends: 0,
        virtual_elapsed_ms: 0,
        violations: Vec::new(),
        marks: Marks::default(),
        trace: Vec::new(),
    }
}

fn deliver(machine: &mut RetryMachine, now: Time, reply: &Reply) -> Result<(), relent::EventError> {
    reply
        .observe(|seen| machine.handle_response(now, seen))
        .unwrap_or(Ok(()))
}
