#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! relent-tokio: runs relent's sans-IO [`relent::RetryMachine`] under tokio.
//!
//! The [`Client`] carries out the machine's actions: it sends with a [`Transport`] (a
//! reqwest one is provided), sleeps with tokio time, applies pool changes at once, honours
//! cancellation, and reports every decision as a `tracing` event and to an optional progress
//! callback, so a program can say why it waits instead of looking hung. Secrets live only in
//! the [`KeyStore`]; the core sees key ids and labels.
//!
//! One client serves any number of concurrent calls. Key states carry over between them:
//! every call counts time from the client's epoch and merges what it learns (a revoked key,
//! a cooldown) into the client's pool after every step, so other calls know at once and a
//! call dropped by its caller loses nothing. [`ReqwestTransport::with_builder`] takes extra
//! root certificates, a proxy and other client settings.
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
mod target;
mod transport;

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
