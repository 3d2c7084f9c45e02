//! async-openai: [`OpenAiService`], the HTTP service of an async-openai `Client`.
//!
//! async-openai (0.43, feature `middleware`) sends every request through a
//! `tower::Service<HttpRequestFactory>` given to `Client::with_http_service`, in place of
//! its default stack and the retry layer in it (docs:
//! <https://docs.rs/async-openai/0.43.0/async_openai/middleware/index.html>). The factory
//! rebuilds the request for each attempt, and streams take the same path.
//!
//! [`OpenAiService`] runs each call through relent: every attempt is the factory's request
//! moved to the target relent chose (base URL, model, the key's credential), sent with
//! reqwest; relent classifies the answer and sleeps, rotates or gives up. A call relent
//! gave up on fails with `OpenAIError::Boxed` holding a [`RelentError`] (find it with
//! [`relent_error`]). A streamed chat (`"stream": true`) is handed over at its first chunk;
//! a failure after that reaches async-openai's stream as an error whose text is the
//! [`RelentError`]'s (reason `failed_after_commit`).
//!
//! Configure the async-openai client with the first target's base URL
//! (`OpenAIConfig::with_api_base`) and any placeholder key: the placeholder is dropped
//! from every attempt.
//!
//! ```no_run
//! use async_openai::{config::OpenAIConfig, Client};
//! use relent::{KeyId, KeySpec, Provider, Target};
//! use relent_adapters::openai::OpenAiService;
//! use relent_tokio::{Endpoint, KeyStore, RetryState, Secret};
//!
//! let mut keys = KeyStore::new();
//! keys.insert(KeyId(1), Secret::new("sk-one"));
//! keys.insert(KeyId(2), Secret::new("sk-two"));
//! let state = RetryState::builder()
//!     .target(
//!         Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")]),
//!         Endpoint::openai("https://api.openai.com/v1"),
//!     )
//!     .keys(keys)
//!     .build_state()
//!     .unwrap();
//! let config = OpenAIConfig::new()
//!     .with_api_base("https://api.openai.com/v1")
//!     .with_api_key("relent-sets-the-key");
//! let client = Client::with_config(config).with_http_service(OpenAiService::new(state));
//! ```

use crate::reqwest_parts::{attempt_result, into_response, retarget};
use crate::{find_relent_error, handover_for, RelentError};
use ::async_openai::error::OpenAIError;
use ::async_openai::middleware::HttpRequestFactory;
use relent_tokio::{Attempt, AttemptResult, CallOptions, RetryState, SendAttempt};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

type MakeClient = Arc<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>;

/// The HTTP service for async-openai's `Client::with_http_service`: each call runs through
/// relent on a [`RetryState`]. Cloning is cheap; clones (and the client the state came
/// from) share one pool.
#[derive(Clone)]
pub struct OpenAiService {
    state: RetryState,
    make_client: MakeClient,
    pooled: Result<reqwest::Client, String>,
}

impl std::fmt::Debug for OpenAiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiService")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl OpenAiService {
    /// A service on `state`, sending with a reqwest client of default settings (turn on a
    /// TLS feature of async-openai or reqwest for `https` targets).
    pub fn new(state: RetryState) -> Self {
        Self::with_client_builder(state, reqwest::Client::builder)
    }

    /// A service whose reqwest clients start from `make()` (a proxy, root certificates,
    /// a connect timeout). It is called again for an attempt relent wants on a fresh
    /// connection. Redirects are turned off on top of it; a builder that fails makes
    /// every call a configuration error.
    pub fn with_client_builder(
        state: RetryState,
        make: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Self {
        let make_client: MakeClient = Arc::new(make);
        let pooled = build(&make_client);
        OpenAiService {
            state,
            make_client,
            pooled,
        }
    }

    /// The state the calls run on.
    pub fn state(&self) -> &RetryState {
        &self.state
    }
}

fn build(make: &MakeClient) -> Result<reqwest::Client, String> {
    make()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            format!(
                "the HTTP client cannot be built: {}",
                relent::classify::redact::redact(&e.to_string())
            )
        })
}

/// The [`RelentError`] an async-openai error carries: in `OpenAIError::Boxed` (the call
/// gave up before a response) or in a `reqwest` body error. A streamed chat's failure
/// after its first chunk reaches async-openai's stream as text only
/// (`OpenAIError::StreamError`), which starts with `relent:`.
pub fn relent_error(error: &OpenAIError) -> Option<&RelentError> {
    match error {
        OpenAIError::Boxed(inner) => find_relent_error(inner.as_ref()),
        OpenAIError::Reqwest(inner) => find_relent_error(inner),
        _ => None,
    }
}

impl tower_service::Service<HttpRequestFactory> for OpenAiService {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            // One build to see whether the call streams; each attempt builds its own.
            let probe = factory.build().await?;
            let handover = handover_for(probe.body().and_then(reqwest::Body::as_bytes));
            drop(probe);
            let attempts = Attempts {
                factory,
                make_client: &this.make_client,
                pooled: &this.pooled,
            };
            match this
                .state
                .start(&attempts, CallOptions::new(), handover)
                .await
            {
                Ok(streaming) => Ok(into_response(streaming, this.state.clone())),
                Err(error) => Err(OpenAIError::Boxed(Box::new(RelentError::new(
                    error,
                    &this.state,
                )))),
            }
        })
    }
}

/// One call's attempts: the factory's request, moved to each attempt's target.
struct Attempts<'a> {
    factory: HttpRequestFactory,
    make_client: &'a MakeClient,
    pooled: &'a Result<reqwest::Client, String>,
}

impl SendAttempt for Attempts<'_> {
    async fn send_attempt(&self, attempt: Attempt) -> AttemptResult {
        {
            let mut request = match self.factory.build().await {
                Ok(request) => request,
                Err(error) => {
                    return AttemptResult::Invalid(format!(
                        "async-openai could not build the request: {}",
                        relent::classify::redact::redact(&error.to_string())
                    ))
                }
            };
            if let Err(message) = retarget(&mut request, &attempt) {
                return AttemptResult::Invalid(message);
            }
            let client = if attempt.fresh_connection {
                build(self.make_client)
            } else {
                self.pooled.clone()
            };
            match client {
                Ok(client) => attempt_result(client.execute(request).await),
                Err(message) => AttemptResult::Invalid(message),
            }
        }
    }
}
