//! `RetryMachine`: the sans-IO decision core.
//!
//! # Using the machine
//!
//! The public methods fall into four groups, in the manner of `quinn-proto`:
//!
//! * **getters** (`&self`): [`RetryMachine::state`], [`RetryMachine::pool`],
//!   [`RetryMachine::next_timeout`], [`RetryMachine::attempts`], [`RetryMachine::trace`];
//! * **inputs**: [`RetryMachine::start`] once, then [`RetryMachine::handle`] with an [`Event`]
//!   (a response, a timer, a pool change, the end or failure of a stream, a cancel);
//! * **output**: [`RetryMachine::poll_action`]. After every input, drain it until it returns
//!   `None`, carrying out each [`Action`] in order;
//! * then wait for the response of the pending `Send`, or until [`RetryMachine::next_timeout`],
//!   or for a pool change, whichever comes first, and feed that in.
//!
//! Every input takes `now`; the machine reads no clock. Time that goes backwards is clamped
//! to the latest time seen. An event that does not fit the state returns an [`EventError`]
//! and changes nothing. After the call ends, every input returns [`EventError::Finished`].

mod action;
mod decide;
mod error;
mod event;
mod gate;
mod message;
mod trace;

pub use action::{Abort, AbortReason, Action, IdempotencyKey, Send, SleepReason};
pub use error::{ConfigError, EventError};
pub use event::{Event, EventSummary, PoolChange};
pub use trace::{KeySnapshot, SeenSummary, TraceEntry};

use crate::classify::{Classification, Reason};
use crate::overload::Overload;
use crate::policy::Policy;
use crate::pool::{KeyId, KeyRef, Pool, Target};
use crate::time::{Millis, Time};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Where the call stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    /// Built, not started.
    Idle,
    /// A `Send` is out; waiting for its response or its timeout.
    AwaitingResponse {
        /// The key in use.
        via: KeyRef,
        /// Its attempt number.
        attempt: u32,
        /// When it is abandoned.
        timeout_at: Time,
    },
    /// Waiting before the next send.
    Sleeping {
        /// When to wake.
        until: Time,
        /// Why.
        reason: SleepReason,
    },
    /// A success was handed to the caller; a stream may still be running.
    Committed {
        /// The key that succeeded.
        via: KeyRef,
    },
    /// Ended in success.
    Succeeded,
    /// Ended in failure.
    Aborted {
        /// Why.
        reason: AbortReason,
    },
}

impl State {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::AwaitingResponse { .. } => "awaiting_response",
            State::Sleeping { .. } => "sleeping",
            State::Committed { .. } => "committed",
            State::Succeeded => "succeeded",
            State::Aborted { .. } => "aborted",
        }
    }

    /// True once the call can produce no more sends (committed, succeeded or aborted).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            State::Committed { .. } | State::Succeeded | State::Aborted { .. }
        )
    }
}

/// Where the call stands inside the machine: [`State`], whose public view it gives, plus
/// what only the machine needs. A sleep carries the plan for the send that ends it, so no
/// plan can outlive its sleep or exist without one.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Built, not started.
    Idle,
    /// A `Send` is out.
    AwaitingResponse {
        via: KeyRef,
        attempt: u32,
        timeout_at: Time,
    },
    /// Waiting before the next send, and what that send will be.
    Sleeping {
        until: Time,
        reason: SleepReason,
        resume: Resume,
    },
    /// A success was handed to the caller.
    Committed { via: KeyRef },
    /// Ended in success.
    Succeeded,
    /// Ended in failure.
    Aborted { reason: AbortReason },
}

impl Phase {
    /// The public view.
    fn view(self) -> State {
        match self {
            Phase::Idle => State::Idle,
            Phase::AwaitingResponse {
                via,
                attempt,
                timeout_at,
            } => State::AwaitingResponse {
                via,
                attempt,
                timeout_at,
            },
            Phase::Sleeping { until, reason, .. } => State::Sleeping { until, reason },
            Phase::Committed { via } => State::Committed { via },
            Phase::Succeeded => State::Succeeded,
            Phase::Aborted { reason } => State::Aborted { reason },
        }
    }
}

/// What to do when a sleep ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Resume {
    target: usize,
    prefer: Option<KeyId>,
    connection: decide::Connection,
    from: Option<KeyRef>,
    why: Reason,
}

/// The retry and failover state machine for one logical call. See the [module
/// docs](self) for the drive loop.
///
/// A machine can be cloned (a snapshot, RNG state and trace included) and compared; equal
/// machines take the same steps from there on, given the same inputs.
///
/// Its `Debug` output shows the state, the counters, the policy, the pool and the
/// overload state; of the trace it shows only the number of entries (print
/// [`RetryMachine::trace`] for the steps), and it leaves out the RNG's state.
#[derive(Clone, PartialEq)]
pub struct RetryMachine {
    policy: Policy,
    pool: Pool,
    rng: ChaCha8Rng,
    idempotency_key: IdempotencyKey,
    wall_clock_epoch_unix_ms: Option<u64>,
    phase: Phase,
    started_at: Time,
    deadline: Time,
    last_now: Time,
    attempts: u32,
    target: usize,
    target_attempts: u32,
    transient_retries: u32,
    target_overloads: u32,
    overload_retries: u32,
    probing: bool,
    previous_delay_ms: u64,
    excluded: Vec<KeyId>,
    /// The client's retry budget and breakers (issue #14; see [`crate::overload`]).
    overload: Overload,
    /// What the pending send cost the retry budget (0 when it was free).
    charged: u32,
    last_failure: Option<(KeyRef, Classification)>,
    queue: VecDeque<Action>,
    trace: Option<Vec<TraceEntry>>,
    emitted: Vec<Action>,
}

impl std::fmt::Debug for RetryMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// The trace as its length: the entries are for [`RetryMachine::trace`].
        struct Entries(usize);
        impl std::fmt::Debug for Entries {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} entries", self.0)
            }
        }
        f.debug_struct("RetryMachine")
            .field("phase", &self.phase)
            .field("attempts", &self.attempts)
            .field("target", &self.target)
            .field("target_attempts", &self.target_attempts)
            .field("transient_retries", &self.transient_retries)
            .field("target_overloads", &self.target_overloads)
            .field("overload_retries", &self.overload_retries)
            .field("probing", &self.probing)
            .field("previous_delay_ms", &self.previous_delay_ms)
            .field("started_at", &self.started_at)
            .field("deadline", &self.deadline)
            .field("last_now", &self.last_now)
            .field("idempotency_key", &self.idempotency_key)
            .field("wall_clock_epoch_unix_ms", &self.wall_clock_epoch_unix_ms)
            .field("excluded", &self.excluded)
            .field("charged", &self.charged)
            .field("last_failure", &self.last_failure)
            .field("queue", &self.queue)
            .field("emitted", &self.emitted)
            .field("trace", &self.trace.as_ref().map(|t| Entries(t.len())))
            .field("policy", &self.policy)
            .field("pool", &self.pool)
            .field("overload", &self.overload)
            .finish_non_exhaustive()
    }
}

impl RetryMachine {
    /// A machine for one call over `targets` (the fallback chain), with jitter and the
    /// idempotency key drawn from `seed`.
    pub fn new(policy: Policy, targets: Vec<Target>, seed: u64) -> Result<Self, ConfigError> {
        Self::with_pool(policy, Pool::new(targets)?, seed)
    }

    /// A machine over an existing pool (for example one carried over from earlier calls, so
    /// revoked and cooling keys stay that way). Fails when the policy is invalid.
    pub fn with_pool(policy: Policy, pool: Pool, seed: u64) -> Result<Self, ConfigError> {
        policy.validate()?;
        Ok(Self::build(policy, pool, seed))
    }

    fn build(policy: Policy, pool: Pool, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let idempotency_key =
            IdempotencyKey((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()));
        let overload = Overload::new(&policy.overload, pool.targets().len());
        RetryMachine {
            policy,
            pool,
            rng,
            idempotency_key,
            wall_clock_epoch_unix_ms: None,
            phase: Phase::Idle,
            started_at: Time::ZERO,
            deadline: Time::MAX,
            last_now: Time::ZERO,
            attempts: 0,
            target: 0,
            target_attempts: 0,
            transient_retries: 0,
            target_overloads: 0,
            overload_retries: 0,
            probing: false,
            previous_delay_ms: 0,
            excluded: Vec::new(),
            overload,
            charged: 0,
            last_failure: None,
            queue: VecDeque::with_capacity(8),
            trace: None,
            emitted: Vec::new(),
        }
    }

    /// Records a trace of every step (off by default: recording allocates).
    pub fn record_trace(mut self, on: bool) -> Self {
        // Most calls take a handful of steps: room for six (under 1 KiB) saves regrowing.
        self.trace = on.then(|| Vec::with_capacity(6));
        self
    }

    /// Starts the call from a client's overload state (its retry budget and breakers)
    /// instead of a fresh one, as the driver keeps it beside the pool.
    pub fn with_overload(mut self, overload: Overload) -> Self {
        self.overload = overload;
        self
    }

    /// Replaces the machine's copy of the client's overload state with `shared`, so that a
    /// running call sees what concurrent calls spent and learned. Call it between inputs;
    /// it allocates nothing when the number of targets is unchanged.
    pub fn sync_overload(&mut self, shared: &Overload) {
        self.overload.clone_from(shared);
    }

    /// Tells the machine the Unix time (ms) of its epoch, so absolute reset times in
    /// responses without a `Date` header can be turned into waits.
    pub fn wall_clock_epoch(mut self, unix_ms: u64) -> Self {
        self.wall_clock_epoch_unix_ms = Some(unix_ms);
        self
    }

    // ----- getters -----

    /// The current state.
    pub fn state(&self) -> State {
        self.phase.view()
    }

    /// The pool with every key's current state.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Takes the pool back, to carry key states over to the next call.
    pub fn into_pool(self) -> Pool {
        self.pool
    }

    /// The client's overload state as this call sees it (merge it back into the client's
    /// with [`Overload::merge_call`]).
    pub fn overload(&self) -> &Overload {
        &self.overload
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Sends made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The call's idempotency key.
    pub fn idempotency_key(&self) -> IdempotencyKey {
        self.idempotency_key
    }

    /// The call's deadline (after `start`).
    pub fn deadline(&self) -> Time {
        self.deadline
    }

    /// When the machine next needs a [`Event::Timeout`]: the end of a sleep or the pending
    /// attempt's timeout.
    pub fn next_timeout(&self) -> Option<Time> {
        match self.phase {
            Phase::AwaitingResponse { timeout_at, .. } => Some(timeout_at),
            Phase::Sleeping { until, .. } => Some(until),
            _ => None,
        }
    }

    /// Keys this call will not use although their state is ready: the provider said they are
    /// not entitled to this model or region (a per-call judgement, not a key state).
    pub fn excluded_keys(&self) -> &[KeyId] {
        &self.excluded
    }

    /// The recorded trace, if recording is on.
    pub fn trace(&self) -> Option<&[TraceEntry]> {
        self.trace.as_deref()
    }

    /// Takes the entries recorded so far (empty when recording is off); recording goes on
    /// into a fresh trace.
    pub fn take_trace(&mut self) -> Vec<TraceEntry> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    // ----- output -----

    /// The next action to carry out, `None` when the machine waits for an input.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.queue.pop_front()
    }

    // ----- inputs -----

    /// Starts the call: sets the deadline and emits the first `Send` (or an `Abort` when no
    /// key can be used).
    pub fn start(&mut self, now: Time) -> Result<(), EventError> {
        match self.phase {
            Phase::Idle => {}
            Phase::Succeeded | Phase::Aborted { .. } => {
                return Err(EventError::Finished(self.state().name()))
            }
            _ => return Err(EventError::AlreadyStarted),
        }
        let now = self.clamp(now);
        self.started_at = now;
        self.deadline = now + Millis(self.policy.deadline_ms);
        match self.pick(0, now) {
            Some(key) => self.go(
                now,
                0,
                key,
                decide::Connection::Reuse,
                None,
                Reason::Success,
            ),
            None => self.no_key_ready(now, None, Reason::Success),
        }
        self.record(now, EventSummary::Start, None);
        Ok(())
    }

    /// Feeds one event in. On error, nothing changed.
    pub fn handle(&mut self, now: Time, event: Event<'_>) -> Result<(), EventError> {
        self.check_fits(&event)?;
        let now = self.clamp(now);
        let summary = self.trace.is_some().then(|| EventSummary::of(&event));
        let seen = match event {
            Event::Response(observation) => self.on_response(now, &observation),
            Event::Classified(classified) => self.on_classified(now, classified),
            Event::Timeout => self.on_timeout(now),
            Event::PoolChanged(change) => {
                self.on_pool_change(now, change)?;
                None
            }
            Event::StreamEnded => {
                self.phase = Phase::Succeeded;
                None
            }
            Event::StreamFailed(observation) => self.on_stream_failed(now, &observation),
            Event::Cancel => {
                self.abort(now, AbortReason::Cancelled, None);
                None
            }
        };
        if let Some(summary) = summary {
            self.record(now, summary, seen);
        }
        Ok(())
    }

    /// Shorthand for [`Event::Response`].
    pub fn handle_response(
        &mut self,
        now: Time,
        observation: crate::classify::Observation<'_>,
    ) -> Result<(), EventError> {
        self.handle(now, Event::Response(observation))
    }

    /// Shorthand for [`Event::Timeout`].
    pub fn handle_timeout(&mut self, now: Time) -> Result<(), EventError> {
        self.handle(now, Event::Timeout)
    }

    /// Shorthand for [`Event::PoolChanged`].
    pub fn handle_pool_change(&mut self, now: Time, change: PoolChange) -> Result<(), EventError> {
        self.handle(now, Event::PoolChanged(change))
    }

    /// Shorthand for [`Event::Cancel`].
    pub fn cancel(&mut self, now: Time) -> Result<(), EventError> {
        self.handle(now, Event::Cancel)
    }

    // ----- internals -----

    fn clamp(&mut self, now: Time) -> Time {
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn check_fits(&self, event: &Event<'_>) -> Result<(), EventError> {
        let unexpected = |event: &Event<'_>| EventError::Unexpected {
            event: EventSummary::of(event).name(),
            state: self.state().name(),
        };
        match (self.phase, event) {
            (Phase::Succeeded | Phase::Aborted { .. }, _) => {
                Err(EventError::Finished(self.state().name()))
            }
            (_, Event::PoolChanged(change)) => Ok(self.pool.check(change)?),
            (_, Event::Cancel) => Ok(()),
            (Phase::Idle, _) => Err(EventError::NotStarted),
            (Phase::AwaitingResponse { .. }, Event::Response(_) | Event::Timeout) => Ok(()),
            (Phase::AwaitingResponse { via, .. }, Event::Classified(c)) => {
                let target = self.pool.targets()[via.target].provider;
                if c.provider() == target {
                    Ok(())
                } else {
                    Err(EventError::WrongProvider {
                        classified: c.provider(),
                        target,
                    })
                }
            }
            (Phase::Sleeping { .. }, Event::Timeout) => Ok(()),
            (Phase::Committed { .. }, Event::StreamEnded | Event::StreamFailed(_)) => Ok(()),
            (_, event) => Err(unexpected(event)),
        }
    }

    fn push(&mut self, action: Action) {
        if self.trace.is_some() {
            self.emitted.push(action.clone());
        }
        self.queue.push_back(action);
    }

    fn record(&mut self, now: Time, event: EventSummary, seen: Option<SeenSummary>) {
        let Some(trace) = self.trace.as_mut() else {
            return;
        };
        // The flattened iterator cannot tell its length, so size the vector first.
        let mut keys = Vec::with_capacity(self.pool.all_keys().count());
        keys.extend(self.pool.all_keys().map(|(_, k)| KeySnapshot {
            key: k.spec.id,
            label: k.spec.label.clone(),
            state: k.state,
        }));
        trace.push(TraceEntry {
            at: now,
            event,
            seen,
            actions: std::mem::take(&mut self.emitted),
            state: self.phase.view().name().into(),
            keys,
        });
    }
}

#[cfg(test)]
mod tests;
