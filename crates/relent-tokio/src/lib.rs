#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! relent-tokio: runs relent's sans-IO [`relent::RetryMachine`] under tokio.
//!
//! The [`Client`] carries out the machine's actions: it sends with a [`Transport`] (a
//! reqwest one is provided), sleeps with tokio time, honours cancellation, and reports every
//! decision as a `tracing` event, to an optional progress callback and as [`metrics`].
//! Secrets live only in the [`KeyStore`]; the core sees key ids and labels.
//!
//! - **Targets**: each has an [`Endpoint`] (URL, [`Api`], [`Auth`] style, headers). A
//!   [`Request`] is described once (typed [`ChatRequest`] or [`MessagesRequest`], or raw
//!   bytes, any method) and shaped per target: its model, and a conversion between the
//!   OpenAI-compatible and Anthropic Messages shapes for plain text (anything else is
//!   refused before the first send; see [`request`]).
//! - **Errors**: configuration mistakes are [`CallError::Config`], found by
//!   [`ClientBuilder::build`] or before a call's first send, never retried.
//! - **Randomness**: seeds come from OS entropy unless [`ClientBuilder::seed`] is given; each
//!   call's seed is in its `relent.call` span.
//! - **Shared learning**: a client (and its clones: `Client` is a cheap `Clone`) has one pool;
//!   every call merges what it learns and reads what the others learned before each
//!   decision, so no call sends with a key another has just revoked.
//! - **Timeouts**: the attempt timeout runs until the headers; then a body idle timeout and
//!   the call's deadline. Streams ([`Streaming`]) honour cancellation and report a
//!   server-sent error event as `failed_after_commit`.
//! - **Fleets**: [`ClientBuilder::store`] shares key health (revocations, cooldowns) and,
//!   with a store that supports it, the retry budget with other processes through a
//!   [`store::Store`], such as the Redis one of `relent-redis`; the in-process pool and
//!   budget stay the default (`docs/FLEET.md`).
//! - **Configuration files**: [`Config`], [`Client::from_config_file`] (`docs/CONFIG.md`).
//! - **Adapters**: [`adapter`] runs the same loop inside another client ([`retry`] with a
//!   closure, or a [`SendAttempt`] of one's own); see the `relent-adapters` crate for
//!   async-openai, reqwest-middleware and tower.
//!
//! ```
//! use relent::{KeySpec, Policy, Provider, Target};
//! use relent_tokio::{Api, Client, Endpoint, KeyStore, ReqwestTransport, Secret};
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! // A local stub provider whose first key is dead (see relent-sim's `stub` feature).
//! let schedule: relent_sim::Schedule = serde_json::from_str(r#"{
//!     "targets": [{"provider": "openai", "model": "gpt-4o",
//!                  "keys": [{"id": 1, "label": "old"}, {"id": 2, "label": "new"}]}],
//!     "faults": [{"scope": {"key": 1}, "kind": {"type": "key_rejected"}}],
//!     "latency_ms": 5
//! }"#).unwrap();
//! let stub = relent_sim::stub::Stub::start(schedule.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
//!
//! let mut keys = KeyStore::new();
//! keys.insert(relent::KeyId(1), Secret::new("stub-1"));
//! keys.insert(relent::KeyId(2), Secret::new("stub-2"));
//! let endpoint = Endpoint::new(format!("{}/v1/chat/completions", stub.base_url()), Api::OpenAiCompatible);
//! let client = Client::new(ReqwestTransport::new(), schedule.targets, vec![endpoint], keys, Policy::default()).unwrap();
//!
//! let done = client.call(br#"{"model": "gpt-4o", "messages": []}"#).await.unwrap();
//! assert_eq!(done.status, 200);
//! assert_eq!(done.attempts, 2); // the dead key once, then the next key at once
//! # });
//! ```

pub mod adapter;
mod builder;
mod client;
#[cfg(feature = "reqwest")]
mod config;
mod drive;
mod error;
pub mod metrics;
mod options;
pub mod request;
mod response;
mod secret;
mod shared;
pub mod store;
mod target;
mod transport;

pub use adapter::{
    is_credential_header, retry, retry_with, Answer, Attempt, Handover, NoTransport, RetryState,
    SendAttempt,
};
pub use builder::{ClientBuilder, DEFAULT_BODY_IDLE_TIMEOUT};
pub use client::Client;
#[cfg(feature = "reqwest")]
pub use config::{Config, KeyConfig, TargetConfig};
pub use drive::Progress;
pub use error::CallError;
pub use options::{CallOptions, HeaderNames};
pub use request::{ChatRequest, Message, MessagesRequest, Request};
pub use response::{Completion, Streaming};
pub use secret::{is_sensitive_header, redact_url, Headers, KeyStore, MissingVar, Secret};
pub use target::{Api, Auth, Endpoint, SignRequest, Signer, ANTHROPIC_VERSION};
pub use tokio_util::sync::CancellationToken;
#[cfg(feature = "reqwest")]
pub use transport::ReqwestTransport;
pub use transport::{AttemptRequest, AttemptResult, BodyReader, NextChunk, Transport};
