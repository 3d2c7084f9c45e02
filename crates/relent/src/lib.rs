#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! relent: the retry and failover core for programs that call LLM APIs.

pub mod classify;
pub mod time;
