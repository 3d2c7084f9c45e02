#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! relent: the retry and failover core for programs that call LLM APIs.

pub mod backoff;
pub mod classify;
pub mod machine;
pub mod policy;
pub mod pool;
pub mod time;

pub use backoff::{Backoff, Jitter};
pub use classify::{
    classify, Classification, HttpResponse, Observation, Provider, Reason, TransportError,
};
pub use machine::{
    Abort, AbortReason, Action, Event, EventError, PoolChange, RetryMachine, Send, SleepReason,
    State,
};
pub use policy::Policy;
pub use pool::{KeyId, KeyRef, KeySpec, KeyState, Pool, Selection, Target};
pub use time::{Millis, Time};
