//! Errors for events that do not fit.

use crate::classify::Provider;
use crate::policy::PolicyError;
use crate::pool::PoolError;

/// An event the machine refused. The machine is unchanged after returning one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The call has ended; nothing more can happen.
    #[error("the call has already ended ({0}); start a new machine for a new call")]
    Finished(&'static str),
    /// `start` was not called yet.
    #[error("the machine has not been started; call start(now) first")]
    NotStarted,
    /// `start` was called twice.
    #[error("the machine was already started")]
    AlreadyStarted,
    /// The event does not fit the state.
    #[error("event `{event}` does not fit state `{state}`")]
    Unexpected {
        /// The event's name.
        event: &'static str,
        /// The state's name.
        state: &'static str,
    },
    /// A pool change that cannot be applied.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// An [`crate::Event::Classified`] made for another provider than the one the pending
    /// send went to.
    #[error(
        "the response was classified as `{classified}`'s, but the send went to a `{target}` target"
    )]
    WrongProvider {
        /// The provider it was classified for.
        classified: Provider,
        /// The provider of the send's target.
        target: Provider,
    },
}

/// A machine that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The policy is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The pool is invalid.
    #[error(transparent)]
    Pool(#[from] PoolError),
}
