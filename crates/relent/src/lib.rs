#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! relent: the retry and failover core for programs that call LLM APIs.
//!
//! ```text
//!             events in                                   actions out
//!   start(now) ─────────┐                          ┌──▶ Send { key, attempt, timeout_at, … }
//!   Response(status,    │    ┌──────────────────┐  ├──▶ Sleep { until, reason }
//!     headers, body) ───┼──▶ │   RetryMachine   │ ─┼──▶ Rotate { from, to, why }
//!   Timeout ────────────┤    │ classifier, pool │  ├──▶ Succeeded { via, attempts }
//!   PoolChanged ────────┤    │ backoff, policy  │  └──▶ Abort { reason, message, retry_at }
//!   Cancel ─────────────┘    └──────────────────┘
//! ```
//!
//! [`RetryMachine`] is a sans-IO state machine: it does no I/O, reads no clock and owns a
//! seeded ChaCha RNG, so one seed and one sequence of events always give the same actions.
//! The driver (tokio, a blocking loop, a simulator) carries out the actions and feeds back
//! what happened. Around the machine:
//!
//! * [`classify`](mod@classify): what a response means (dead key, spent credit, rate limit, overload, …),
//!   whose fault it is, what would help and when the server says to come back;
//! * [`pool`]: key identities and states (ready, cooling, exhausted, revoked) and the
//!   fallback chain of targets; the secret itself never enters relent's core;
//! * [`backoff`] and [`policy`]: delays, limits and their documented defaults.
//!
//! # The drive loop
//!
//! After every input, drain [`RetryMachine::poll_action`] until it returns `None`, then wait
//! for the pending response, the next timeout, or a pool change.
//!
//! ```
//! use relent::{Action, HttpResponse, KeySpec, Observation, Policy, Provider, RetryMachine, Target, Time};
//!
//! // One target with one key whose secret has expired. The transport here is a closure
//! // that always answers 401; a real driver would send an HTTP request.
//! let target = Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "prod")]);
//! let mut machine = RetryMachine::new(Policy::default(), vec![target], 7).unwrap();
//! let body = br#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#;
//! let transport = |_key| Observation::Http(HttpResponse { status: 401, headers: &[], body });
//!
//! let mut now = Time(0);
//! machine.start(now).unwrap();
//! let outcome = loop {
//!     let Some(action) = machine.poll_action() else {
//!         // Nothing left to do now: wait for the timer the machine asked for.
//!         now = machine.next_timeout().expect("a waiting machine has a timer");
//!         machine.handle_timeout(now).unwrap();
//!         continue;
//!     };
//!     match action {
//!         Action::Send(send) => {
//!             now = Time(now.0 + 120); // the request took 120 ms
//!             machine.handle_response(now, transport(send.key)).unwrap();
//!         }
//!         Action::Sleep { .. } => {} // the next poll returns None and we wait above
//!         Action::Rotate { .. } => {} // informational
//!         done @ (Action::Succeeded { .. } | Action::Abort(_)) => break done,
//!     }
//! };
//! let Action::Abort(abort) = outcome else { unreachable!() };
//! assert_eq!(abort.reason.name(), "auth_permanent");
//! assert_eq!(machine.attempts(), 2); // one retry on a fresh connection, no backoff sleep
//! assert!(abort.message.contains("\"prod\""));
//! ```

// The README's example is compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctest;

pub mod backoff;
pub mod classify;
pub mod machine;
pub mod overload;
pub mod policy;
pub mod pool;
pub mod time;

pub use backoff::{Backoff, Jitter};
pub use classify::{
    classify, Classification, Classified, HttpResponse, Observation, Provider, Reason,
    TransportError, VerdictCache,
};
pub use machine::{
    Abort, AbortReason, Action, Event, EventError, PoolChange, RetryMachine, Send, SleepReason,
    State,
};
pub use overload::{BreakerPolicy, BudgetPolicy, Overload, OverloadPolicy};
pub use policy::{KeyCooldown, Policy};
pub use pool::{KeyId, KeyRef, KeySpec, KeyState, Pool, Selection, Target};
pub use time::{Millis, Time};
