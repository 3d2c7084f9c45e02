#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! relent-sim: deterministic simulation testing for relent's `RetryMachine`.

pub mod canary;
pub mod fuzz;
pub mod generate;
pub mod invariants;
pub mod marks;
pub mod overload_model;
pub mod respond;
pub mod runner;
pub mod scenarios;
pub mod schedule;
pub mod scoreboard;
pub mod server;
pub mod shrink;
#[cfg(feature = "stub")]
pub mod stub;
pub mod surface;
pub mod swarm;
pub mod table;
pub mod verdicts;

pub use runner::{run, Outcome, RunOptions, RunReport};
pub use schedule::{Fault, FaultKind, FaultScope, HintFormat, Schedule, TimedChange};
