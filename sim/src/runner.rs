//! Runs one world: a virtual clock, one client's calls (one by default; several, in
//! sequence or overlapping, when the schedule says so), the scripted server, and the
//! invariant checks after every step.
//!
//! Calls of one client share what they learn the way the tokio driver shares it: each call
//! starts from the client's pool, and after every step the call's pool is merged back with
//! [`relent::Pool::merge_call`]; pool changes from outside reach the client's pool and every
//! running call at once.

use crate::invariants::{Checker, ClientModel, Input, Truth, Violation};
use crate::marks::{Marks, Named};
use crate::respond::{Reply, WALL_EPOCH_UNIX_MS};
use crate::schedule::Schedule;
use crate::server::{Served, Server};
use crate::surface;
use crate::verdicts;
use relent::machine::{KeySnapshot, TraceEntry};
use relent::{
    AbortReason, Action, Event, Observation, Overload, Pool, PoolChange, RetryMachine, State, Time,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A run that takes more steps than this (per call) has livelocked (invariant 6).
pub const MAX_STEPS: usize = 2_000;

/// How a call ended.
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
        let (a, b) = self.name_parts();
        [a, b].concat()
    }

    /// The short name in two pieces, to be joined (no allocation, for tallies).
    pub fn name_parts(&self) -> (&'static str, &'static str) {
        match self {
            Outcome::Succeeded => ("succeeded", ""),
            Outcome::Aborted(r) => ("aborted:", r.name()),
            Outcome::Livelock => ("livelock", ""),
            Outcome::Invalid(_) => ("invalid", ""),
        }
    }
}

/// Everything one run produced. For a world of several calls, `outcome`, `message` and
/// `virtual_elapsed_ms` describe the first call, `later_outcomes` the others, and the counts
/// and the trace cover every call (traces one after another, in call order).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// How the (first) call ended.
    pub outcome: Outcome,
    /// Its abort message, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How every later call ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub later_outcomes: Vec<Outcome>,
    /// Sends made.
    pub attempts: u32,
    /// Sends per key label.
    pub sends_per_key: BTreeMap<String, u32>,
    /// Sends that could not succeed (the server would fail them whatever the timing).
    pub wasted_sends: u32,
    /// Virtual time from start to the (first) call's outcome.
    pub virtual_elapsed_ms: u64,
    /// Invariant violations.
    pub violations: Vec<Violation>,
    /// Coverage marks reached.
    #[serde(skip)]
    pub marks: Marks,
    /// The machines' traces (when requested).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<TraceEntry>,
    /// A hash of every action every call emitted, with its time, in order: two runs of one
    /// world agree on it exactly when they took the same steps (invariant 7, across
    /// processes too).
    #[serde(default)]
    pub digest: u64,
}

/// Options for a run.
#[derive(Copy, Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the machine's trace in the report.
    pub keep_trace: bool,
    /// Also search every trace's JSON and every machine's `Debug` output for secret
    /// canaries (slower; the swarm does it on the worlds it checks for determinism).
    pub deep_secret_scan: bool,
    /// Hand the machine every reply's bytes to classify itself, instead of the kept verdict
    /// on the same bytes ([`crate::verdicts`]). The swarm's second run of each world it
    /// checks for determinism does, so the two paths must take the same steps.
    pub raw_responses: bool,
}

struct InFlight {
    arrives_at: Option<Time>,
    /// The provider of the target the send went to.
    provider: relent::Provider,
    reply: Reply,
    truth: Truth,
}

/// One call of the client.
struct Call {
    start: Time,
    machine: RetryMachine,
    /// The pool as this call last shared it with the client.
    synced: Pool,
    /// The overload state as this call last shared it with the client.
    synced_overload: Overload,
    checker: Checker,
    in_flight: Option<InFlight>,
    stream_fails_at: Option<Time>,
    delivered_stream: bool,
    outcome: Option<Outcome>,
    message: Option<String>,
    ended_at: Time,
    trace_seen: usize,
    steps: usize,
    /// Whether this world also drives the machine's surface (invariant 31): stray events,
    /// early timers, the names and getters checked against their ground truth.
    surface: bool,
}

/// What happens next in the world.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Next {
    /// A pool change (index into the sorted changes).
    Change(usize),
    /// The pool change armed by a re-probe (`TimedChange::on_reprobe`).
    Armed,
    /// The caller cancels every running call.
    Cancel,
    /// Call `i` gets the answer to its send.
    Answer(usize),
    /// Call `i`'s stream fails.
    StreamFails(usize),
    /// Call `i`'s timer fires.
    Timer(usize),
    /// Call `i` starts.
    Start(usize),
}

/// Runs `schedule` to its end.
pub fn run(schedule: &Schedule, options: RunOptions) -> RunReport {
    if let Err(e) = schedule.policy.validate() {
        return invalid(e.to_string());
    }
    let mut client = match Pool::new(schedule.targets.clone()) {
        Ok(pool) => pool,
        Err(e) => return invalid(e.to_string()),
    };
    let mut model = ClientModel::with_policy(&schedule.targets, &schedule.policy);
    // The client's retry budget and breakers (issue #14), kept like its pool.
    let mut overload = Overload::new(&schedule.policy.overload, schedule.targets.len());
    let starts = schedule.call_starts();
    // Only a world of several calls needs the client's pool kept up to date.
    let shared = starts.len() > 1;
    let mut server = Server::new(schedule);
    let mut changes: Vec<_> = schedule
        .pool_changes
        .iter()
        .filter(|c| !c.on_reprobe)
        .collect();
    changes.sort_by_key(|c| c.at_ms);
    // Changes that wait for a re-probe of their key, and the one such a re-probe armed.
    let mut on_reprobe: Vec<_> = schedule
        .pool_changes
        .iter()
        .filter(|c| c.on_reprobe)
        .collect();
    let mut armed: Option<(Time, PoolChange)> = None;
    let mut next_change = 0;
    let mut cancelled = false;
    let mut marks = Marks::default();
    let mut calls: Vec<Call> = Vec::with_capacity(starts.len());
    let mut now = Time::ZERO;
    let mut wasted = 0u32;
    let mut sends_per_key: Vec<(relent::KeyId, u32)> = Vec::new();
    let mut world_violations = Vec::new();
    let mut digest = FNV_OFFSET;
    // Liveness after healing is owed only where a healthy answer can come back at all: one
    // that takes longer than an attempt may wait is never seen (answers come before timers
    // at the same instant, so an answer exactly at the timeout is seen).
    let heal = schedule
        .heal_at_ms
        .map(Time)
        .filter(|_| schedule.latency_ms <= schedule.policy.attempt_timeout_ms);
    let last_change = schedule.pool_changes.iter().map(|c| Time(c.at_ms)).max();
    let settle_ms = schedule.policy.attempt_timeout_ms + schedule.latency_ms;
    // One world in eight also drives the machine's surface (invariant 31).
    let surface = (schedule.seed ^ 0x5eed_0031).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 61 == 0;

    loop {
        // Carry out everything the last input produced, call by call.
        for (i, call) in calls.iter_mut().enumerate() {
            if call.outcome.is_some() {
                continue;
            }
            while let Some(action) = call.machine.poll_action() {
                marks.action(&action);
                digest = digest_action(digest, i, now, &action);
                match action {
                    Action::Send(send) => {
                        // A send with a key the pool still holds revoked is a re-probe.
                        if call.machine.pool().state(send.key) == relent::KeyState::Revoked {
                            marks.hit(Named::RevokedKeyReprobed);
                            // A change waiting for this re-probe lands while it is out.
                            let waiting = on_reprobe.iter().position(|c| {
                                c.at_ms <= now.0 && changed_key(&c.change) == Some(send.key)
                            });
                            if let (None, Some(p)) = (&armed, waiting) {
                                let c = on_reprobe.swap_remove(p);
                                let at = now + relent::Millis(schedule.latency_ms / 2);
                                armed = Some((at, c.change.clone()));
                            }
                        }
                        match sends_per_key.iter_mut().find(|(k, _)| *k == send.key) {
                            Some((_, n)) => *n += 1,
                            None => sends_per_key.push((send.key, 1)),
                        }
                        let arrival = now + relent::Millis(schedule.latency_ms);
                        let Served {
                            provider,
                            reply,
                            doomed,
                            reset_at,
                            truth,
                            says_retry,
                            says_no_retry,
                            stated_wait_ms,
                            reset_slack_ms,
                        } = server.serve(send.key, send.target, arrival);
                        if doomed {
                            wasted += 1;
                        }
                        let arrives_at = (reply != Reply::Hang).then_some(arrival);
                        let truth = Truth {
                            reason: truth,
                            reset_at,
                            says_no_retry,
                            says_retry,
                            stated_wait_ms,
                            reset_slack_ms,
                        };
                        call.in_flight = Some(InFlight {
                            arrives_at,
                            provider,
                            reply,
                            truth,
                        });
                    }
                    Action::Succeeded { .. } => {
                        if call.delivered_stream {
                            call.stream_fails_at = Some(now + relent::Millis(schedule.latency_ms));
                        }
                    }
                    Action::Abort(abort) => call.message = Some(abort.message.clone()),
                    Action::Sleep { .. } | Action::Rotate { .. } => {}
                }
            }
            // What this step taught the call, the client learns at once.
            if shared && call.synced != *call.machine.pool() {
                client.merge_call(&call.synced, call.machine.pool());
                call.synced.clone_from(call.machine.pool());
            }
            if shared && model.learn(&mut call.checker) {
                marks.hit(Named::ALiftMetARejectionInTheMerge);
            }

            let ended = match call.machine.state() {
                State::Succeeded => Some(Outcome::Succeeded),
                State::Aborted { reason } => Some(Outcome::Aborted(reason)),
                State::Committed { .. } if call.stream_fails_at.is_none() => {
                    let result = call.machine.handle(now, Event::StreamEnded);
                    step(call, Input::StreamEnded, result);
                    Some(Outcome::Succeeded)
                }
                _ if call.steps >= MAX_STEPS => Some(Outcome::Livelock),
                _ => None,
            };
            if let Some(outcome) = ended {
                finish_call(
                    call,
                    i,
                    outcome,
                    now,
                    heal,
                    last_change,
                    settle_ms,
                    &mut marks,
                );
            }
        }
        if calls.len() == starts.len() && calls.iter().all(|c| c.outcome.is_some()) {
            break;
        }

        // The next thing to happen in the world: earliest time first, then the order of
        // `Next` (outside changes before answers, answers before timers).
        let mut best: Option<(Time, Next)> = None;
        let mut consider = |at: Option<Time>, what: Next| {
            if let Some(at) = at {
                if best.is_none_or(|b| (at, what) < b) {
                    best = Some((at, what));
                }
            }
        };
        consider(
            changes.get(next_change).map(|c| Time(c.at_ms)),
            Next::Change(next_change),
        );
        consider(armed.as_ref().map(|(at, _)| *at), Next::Armed);
        if !cancelled {
            consider(
                schedule.cancel_at_ms.map(Time).map(|t| t.max(now)),
                Next::Cancel,
            );
        }
        for (i, call) in calls.iter().enumerate() {
            if call.outcome.is_some() {
                continue;
            }
            consider(
                call.in_flight.as_ref().and_then(|f| f.arrives_at),
                Next::Answer(i),
            );
            consider(call.stream_fails_at, Next::StreamFails(i));
            consider(call.machine.next_timeout(), Next::Timer(i));
        }
        if let Some(start) = starts.get(calls.len()) {
            consider(Some(Time(*start)), Next::Start(calls.len()));
        }
        let Some((at, next)) = best else {
            world_violations.push(Violation {
                invariant: 6,
                at_ms: now.0,
                detail: "the machine waits for nothing and the world has nothing left to say"
                    .into(),
            });
            break;
        };
        now = now.max(at);
        match next {
            Next::Start(i) => {
                let seed = schedule
                    .seed
                    .wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                // The policy was validated before the first call.
                let Ok(machine) =
                    RetryMachine::with_pool(schedule.policy.clone(), client.clone(), seed)
                else {
                    unreachable!("the policy was validated before the run")
                };
                let mut machine = machine
                    .with_overload(overload.clone())
                    .record_trace(true)
                    .wall_clock_epoch(WALL_EPOCH_UNIX_MS);
                let mut checker = Checker::new(&schedule.policy, &model);
                if i > 0 {
                    let running = calls.iter().any(|c| c.outcome.is_none());
                    if running {
                        marks.hit(Named::ConcurrentCalls);
                    }
                    if model.keys.iter().any(|k| k.revoked || k.free_by > now) {
                        marks.hit(Named::LaterCallInheritedKeyState);
                    }
                }
                let result = machine.start(now);
                if let Err(e) = &result {
                    checker.violation(now, 0, format!("start refused: {e}"));
                }
                let mut call = Call {
                    start: now,
                    synced: client.clone(),
                    synced_overload: overload.clone(),
                    machine,
                    checker,
                    in_flight: None,
                    stream_fails_at: None,
                    delivered_stream: false,
                    outcome: None,
                    message: None,
                    ended_at: now,
                    trace_seen: 0,
                    steps: 0,
                    surface,
                };
                step(&mut call, Input::Start, result);
                share(&mut call, &mut overload, &mut model, &mut marks);
                calls.push(call);
            }
            Next::Change(_) | Next::Armed => {
                let change = match next {
                    Next::Change(index) => {
                        next_change += 1;
                        changes[index].change.clone()
                    }
                    _ => match armed.take() {
                        Some((_, change)) => {
                            marks.hit(Named::OutsideMarkDuringAReprobe);
                            change
                        }
                        None => continue,
                    },
                };
                let change = &change;
                if let Err(e) = client.apply(change) {
                    world_violations.push(Violation {
                        invariant: 0,
                        at_ms: now.0,
                        detail: format!("the client's pool refused a change: {e}"),
                    });
                }
                model.pool_change(change);
                for call in calls.iter_mut().filter(|c| c.outcome.is_none()) {
                    if matches!(call.machine.state(), State::Sleeping { .. }) {
                        marks.hit(Named::PoolChangeDuringSleep);
                    }
                    sync(call, &overload, &model);
                    if call.surface && matches!(call.machine.state(), State::Sleeping { .. }) {
                        strays_while_sleeping(call, now);
                    }
                    let result = call.machine.handle_pool_change(now, change.clone());
                    // The client's pool has the change already; the call's own view moves on
                    // with it, so the merge after this step carries only what the call did.
                    if let Ok(()) = result {
                        let _ = call.synced.apply(change);
                    }
                    step(call, Input::Pool(change), result);
                    share(call, &mut overload, &mut model, &mut marks);
                }
            }
            Next::Cancel => {
                cancelled = true;
                for call in calls.iter_mut().filter(|c| c.outcome.is_none()) {
                    sync(call, &overload, &model);
                    let result = call.machine.cancel(now);
                    step(call, Input::Cancel, result);
                    share(call, &mut overload, &mut model, &mut marks);
                }
            }
            Next::Answer(i) => {
                let call = &mut calls[i];
                sync(call, &overload, &model);
                let flight = call
                    .in_flight
                    .take()
                    .expect("an answer time implies a flight");
                call.delivered_stream = flight.reply == Reply::StreamThenFail;
                if call.surface {
                    early_timer(call, now);
                }
                let machine = &mut call.machine;
                let result = if options.raw_responses {
                    None
                } else {
                    let clock = WALL_EPOCH_UNIX_MS + now.0;
                    verdicts::with_verdict(&flight.reply, flight.provider, clock, |verdict| {
                        machine.handle(now, Event::Classified(verdict))
                    })
                }
                .or_else(|| {
                    flight
                        .reply
                        .observe(|seen| machine.handle_response(now, seen))
                })
                .unwrap_or(Ok(()));
                step(call, Input::Answer(flight.truth), result);
                share(call, &mut overload, &mut model, &mut marks);
            }
            Next::StreamFails(i) => {
                let call = &mut calls[i];
                sync(call, &overload, &model);
                call.stream_fails_at = None;
                if schedule.policy.restart_after_commit {
                    marks.hit(Named::RestartAfterCommit);
                }
                // A driver may also report a broken stream with the response it began with
                // (a 200 with nothing wrong in it): still a dropped connection.
                let observation = if call.surface && call.steps % 2 == 0 {
                    Observation::Http(relent::HttpResponse {
                        status: 200,
                        headers: &[],
                        body: b"",
                    })
                } else {
                    Observation::Transport(relent::TransportError::Reset)
                };
                let result = call.machine.handle(now, Event::StreamFailed(observation));
                step(call, Input::StreamFailed, result);
                share(call, &mut overload, &mut model, &mut marks);
            }
            Next::Timer(i) => {
                let call = &mut calls[i];
                sync(call, &overload, &model);
                let input = match call.machine.state() {
                    State::AwaitingResponse { .. } => {
                        // Whatever the server was going to say, the machine sees a timeout.
                        call.in_flight = None;
                        Input::Answer(Truth::of(relent::Reason::Timeout))
                    }
                    _ => Input::Wake,
                };
                let result = call.machine.handle_timeout(now);
                step(call, input, result);
                share(call, &mut overload, &mut model, &mut marks);
            }
        }
    }

    let mut violations = world_violations;
    // Invariant 17: no two calls of the client share an idempotency key.
    let mut keys: Vec<relent::machine::IdempotencyKey> = calls
        .iter()
        .filter_map(|c| c.checker.idempotency_key())
        .collect();
    keys.sort_unstable_by_key(|k| k.0);
    if keys.windows(2).any(|w| w[0] == w[1]) {
        violations.push(Violation {
            invariant: 17,
            at_ms: now.0,
            detail: "two calls of one client sent the same idempotency key".into(),
        });
    }
    let mut trace = Vec::new();
    for call in &mut calls {
        if options.deep_secret_scan {
            // The machine's `Debug` shows its trace as a count of entries; the trace's JSON
            // holds every string the entries' derived `Debug` would (serde skips only
            // empty options), so the two scans between them see all the machine holds.
            let json =
                serde_json::to_string(call.machine.trace().unwrap_or(&[])).unwrap_or_default();
            call.checker.scan("the trace's JSON", &json);
            let debug = format!("{:?}", call.machine);
            call.checker.scan("the machine's Debug output", &debug);
            if let Some(message) = &call.message {
                let debug = format!("{message:?}");
                call.checker
                    .scan("the abort message's Debug output", &debug);
            }
        }
        // Taking the trace hands over every entry the steps saw (invariant 31).
        let taken = call.machine.take_trace();
        if taken.len() != call.trace_seen || call.machine.trace().is_some_and(|t| !t.is_empty()) {
            call.checker.violation(
                call.ended_at,
                31,
                format!(
                    "take_trace() handed over {} entries of the {} recorded",
                    taken.len(),
                    call.trace_seen
                ),
            );
        }
        violations.extend(call.checker.violations().iter().cloned());
        if options.keep_trace {
            trace.extend(taken);
        }
    }
    let first = calls.first();
    RunReport {
        outcome: first
            .and_then(|c| c.outcome.clone())
            .unwrap_or(Outcome::Livelock),
        message: first.and_then(|c| c.message.clone()),
        later_outcomes: calls
            .iter()
            .skip(1)
            .map(|c| c.outcome.clone().unwrap_or(Outcome::Livelock))
            .collect(),
        attempts: calls.iter().map(|c| c.machine.attempts()).sum(),
        sends_per_key: sends_per_key
            .into_iter()
            .map(|(key, n)| (client.label(key).to_string(), n))
            .collect(),
        wasted_sends: wasted,
        virtual_elapsed_ms: first.map_or(0, |c| c.ended_at.0),
        violations,
        marks,
        trace,
        digest,
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fold(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(0x0100_0000_01b3)
}

/// Folds one action of call `call` at `now` into the run's digest.
fn digest_action(h: u64, call: usize, now: Time, action: &Action) -> u64 {
    let h = fold(fold(h, call as u64), now.0);
    match action {
        Action::Send(s) => [
            1,
            s.target as u64,
            u64::from(s.key.0),
            u64::from(s.attempt),
            u64::from(s.fresh_connection),
            s.timeout_at.0,
            s.idempotency_key.0 as u64,
        ]
        .into_iter()
        .fold(h, fold),
        Action::Sleep { until, reason } => {
            let why = match reason {
                relent::SleepReason::Backoff { after } => *after as u64,
                relent::SleepReason::ServerHint { after, .. } => 100 + *after as u64,
                relent::SleepReason::AllKeysCooling => 200,
                relent::SleepReason::RetryBudget { after } => 300 + *after as u64,
                other => 400 + other.after().map_or(0, |a| a as u64),
            };
            [2, until.0, why].into_iter().fold(h, fold)
        }
        Action::Rotate { from, to, why } => [
            3,
            from.map_or(u64::MAX, |f| f.target as u64),
            from.map_or(u64::MAX, |f| u64::from(f.key.0)),
            to.target as u64,
            u64::from(to.key.0),
            *why as u64,
        ]
        .into_iter()
        .fold(h, fold),
        Action::Succeeded { via, attempts } => [
            4,
            via.target as u64,
            u64::from(via.key.0),
            u64::from(*attempts),
        ]
        .into_iter()
        .fold(h, fold),
        Action::Abort(abort) => abort
            .message
            .bytes()
            .map(u64::from)
            .chain([
                5,
                u64::from(abort.attempts),
                abort.retry_at.map_or(u64::MAX, |t| t.0),
            ])
            .chain(abort.reason.name().bytes().map(u64::from))
            .fold(h, fold),
    }
}

/// Hands a call the client's retry budget and breakers before an input, as a driver does
/// (machine and checker alike).
fn sync(call: &mut Call, overload: &Overload, model: &ClientModel) {
    if call.synced_overload != *overload {
        call.machine.sync_overload(overload);
        call.synced_overload.clone_from(overload);
    }
    call.checker.sync_overload(model);
}

/// After a call's step: what it did to the budget and breakers reaches the client (the
/// machine's by [`Overload::merge_call`], the checker's model as it is, since the call
/// started the step from the client's).
fn share(call: &mut Call, overload: &mut Overload, model: &mut ClientModel, marks: &mut Marks) {
    if call.synced_overload != *call.machine.overload() {
        breaker_marks(&call.synced_overload, call.machine.overload(), marks);
        overload.merge_call(&call.synced_overload, call.machine.overload());
        call.synced_overload.clone_from(overload);
    }
    model.take_overload(&call.checker);
}

/// Marks the breaker changes between two overload states (issue #14).
fn breaker_marks(before: &Overload, after: &Overload, marks: &mut Marks) {
    use relent::overload::BreakerState;
    for (t, b) in after.breakers.iter().enumerate() {
        let was = before.breaker(t).state;
        match (was, b.state) {
            (BreakerState::Open { .. }, BreakerState::Open { .. }) => {}
            (_, BreakerState::Open { .. }) => marks.hit(Named::BreakerOpened),
            (BreakerState::HalfOpen { .. }, BreakerState::Closed) => {
                marks.hit(Named::BreakerClosed)
            }
            (BreakerState::Open { .. }, BreakerState::HalfOpen { .. }) => {
                marks.hit(Named::BreakerHalfOpened)
            }
            _ => {}
        }
    }
}

/// Feeds the checker the step the machine just took (or records that it refused the input).
fn step(call: &mut Call, input: Input<'_>, result: Result<(), relent::EventError>) {
    call.steps += 1;
    if let Err(e) = result {
        let now = call
            .machine
            .trace()
            .and_then(|t| t.last())
            .map_or(call.start, |e| e.at);
        call.checker
            .violation(now, 0, format!("the runner's event was refused: {e}"));
        return;
    }
    let trace = call.machine.trace().unwrap_or(&[]);
    let Some(entry) = trace.get(call.trace_seen) else {
        call.checker.violation(
            call.start,
            31,
            "the machine accepted an event and recorded nothing for it",
        );
        return;
    };
    if trace.len() != call.trace_seen + 1 {
        call.checker.violation(
            entry.at,
            31,
            format!(
                "one event recorded {} trace entries",
                trace.len() - call.trace_seen
            ),
        );
    }
    // The key states before this step are those the previous entry recorded.
    let before = previous_keys(trace, call.trace_seen);
    let state_before = call
        .trace_seen
        .checked_sub(1)
        .and_then(|i| trace.get(i))
        .map_or("idle", |e| &*e.state);
    let expected = surface::expected_state(entry, state_before);
    let mut problems: Vec<String> = Vec::new();
    let terminal = matches!(expected, "committed" | "succeeded" | "aborted");
    if call.machine.state().is_terminal() != terminal {
        problems.push(format!(
            "the state `{expected}` says is_terminal() = {}",
            call.machine.state().is_terminal()
        ));
    }
    if entry.state != expected || call.machine.state().name() != expected {
        problems.push(format!(
            "after this step the state is `{}` (the trace says `{}`), where its actions leave `{expected}`",
            call.machine.state().name(),
            entry.state
        ));
    }
    if call.surface {
        problems.extend(entry.actions.iter().filter_map(surface::action_names));
    }
    call.trace_seen = trace.len();
    call.checker.step(input, entry, before);
    for problem in problems {
        call.checker.violation(entry.at, 31, problem);
    }
}

/// A timer that fires before anything is due (invariant 31 and the checker's `Idle`).
fn early_timer(call: &mut Call, now: Time) {
    if call.machine.next_timeout().is_some_and(|t| t > now) {
        let result = call.machine.handle_timeout(now);
        step(call, Input::Idle, result);
    }
}

/// While the call sleeps: a timer that fires early, then an answer that cannot belong to
/// it (no request is out), which the machine must refuse without changing.
fn strays_while_sleeping(call: &mut Call, now: Time) {
    early_timer(call, now);
    let before = call.machine.trace().map_or(0, <[_]>::len);
    let result = call.machine.handle_response(now, stray_answer());
    let after = call.machine.trace().map_or(0, <[_]>::len);
    let acted = call.machine.poll_action().is_some();
    let problem = surface::refused(
        "an answer while no request was out",
        result,
        |e| {
            matches!(
                e,
                relent::EventError::Unexpected {
                    state: "sleeping",
                    event: "transport_error"
                }
            )
        },
        (before, after),
        acted,
    );
    if let Some(problem) = problem {
        call.checker.violation(now, 31, problem);
    }
}

/// After the call ended: its getters against the model, then a late answer and a second
/// start, which the machine must refuse as finished without changing.
fn after_the_end(call: &mut Call, now: Time) {
    let problem = surface::getters(
        &call.machine,
        call.checker.policy(),
        call.checker.sends(),
        call.checker.started().then(|| call.checker.deadline()),
        call.checker.excluded(),
    );
    if let Some(problem) = problem {
        call.checker.violation(now, 31, problem);
    }
    let finished = |e: &relent::EventError| matches!(e, relent::EventError::Finished(_));
    let before = call.machine.trace().map_or(0, <[_]>::len);
    let late = call.machine.handle_response(now, stray_answer());
    let again = call.machine.start(now);
    let after = call.machine.trace().map_or(0, <[_]>::len);
    let acted = call.machine.poll_action().is_some();
    for (what, result) in [
        ("an answer after the call ended", late),
        ("a second start after the call ended", again),
    ] {
        if let Some(problem) = surface::refused(what, result, finished, (before, after), acted) {
            call.checker.violation(now, 31, problem);
        }
    }
}

/// An answer the machine cannot be waiting for.
fn stray_answer() -> Observation<'static> {
    Observation::Transport(relent::TransportError::Reset)
}

/// The key states recorded by the trace entry before entry `index` (none before the first).
pub(crate) fn previous_keys(trace: &[TraceEntry], index: usize) -> &[KeySnapshot] {
    index
        .checked_sub(1)
        .and_then(|i| trace.get(i))
        .map_or(&[], |e| &e.keys)
}

#[allow(clippy::too_many_arguments)]
fn finish_call(
    call: &mut Call,
    index: usize,
    outcome: Outcome,
    now: Time,
    heal: Option<Time>,
    last_change: Option<Time>,
    settle_ms: u64,
    marks: &mut Marks,
) {
    if let Some(trace) = call.machine.trace() {
        for entry in trace {
            if let Some(seen) = &entry.seen {
                marks.reason(seen.reason);
            }
        }
    }
    if outcome == Outcome::Livelock {
        call.checker
            .violation(now, 6, "the call did not end within the step bound");
    }
    let aborted = match &outcome {
        Outcome::Aborted(reason) => Some(*reason),
        _ => None,
    };
    if call.surface && outcome != Outcome::Livelock {
        after_the_end(call, now);
    }
    let live_checked = call
        .checker
        .finish(now, aborted, heal, last_change, settle_ms);
    if live_checked {
        marks.hit(Named::LivenessChecked);
    }
    let (escalated, across_calls, after_reset) = call.checker.escalated();
    if after_reset {
        marks.hit(Named::KeyCooldownRestartedAfterSuccess);
    }
    if escalated {
        marks.hit(Named::KeyCooldownEscalated);
    }
    if across_calls {
        marks.hit(Named::KeyCooldownEscalatedAcrossCalls);
    }
    let (loss_ended_sleep, loss_kept_sleep) = call.checker.sleep_after_loss();
    if loss_ended_sleep {
        marks.hit(Named::SleepEndedWhenItsKeysWereLost);
    }
    if loss_kept_sleep {
        marks.hit(Named::SleepWentOnAfterAKeyWasLost);
    }
    if call.checker.retried_when_told() {
        marks.hit(Named::RetriedWhenTheServerSaidSo);
    }
    if call.checker.guard_held() {
        marks.hit(Named::EjectionGuardHeld);
    }
    let spread = call.checker.spread();
    if spread.backoff_top {
        marks.hit(Named::BackoffDrewItsTop);
    }
    if spread.equal_top_eighth {
        marks.hit(Named::EqualJitterBackoffInTopEighth);
    }
    if spread.cooldown_upper_half {
        marks.hit(Named::KeyCooldownJitterInUpperHalf);
    }
    if index > 0 && outcome == Outcome::Succeeded {
        marks.hit(Named::LaterCallSucceeded);
    }
    call.ended_at = now;
    call.outcome = Some(outcome);
}

fn invalid(error: String) -> RunReport {
    RunReport {
        outcome: Outcome::Invalid(error),
        message: None,
        later_outcomes: Vec::new(),
        attempts: 0,
        sends_per_key: BTreeMap::new(),
        wasted_sends: 0,
        virtual_elapsed_ms: 0,
        violations: Vec::new(),
        marks: Marks::default(),
        trace: Vec::new(),
        digest: 0,
    }
}

/// The key a pool change names (`None` for an added key).
fn changed_key(change: &PoolChange) -> Option<relent::KeyId> {
    match change {
        PoolChange::Removed { key } | PoolChange::Restored { key } => Some(*key),
        PoolChange::MarkedBad { key, .. } => Some(*key),
        PoolChange::Added { .. } => None,
    }
}
