//! reqwest-middleware: [`RelentMiddleware`], for `reqwest_middleware::ClientBuilder::with`
//! (and the clients built on reqwest-middleware).
//!
//! Each request runs through relent: every attempt is a copy of the request moved to the
//! target relent chose (base URL, model, the key's credential) and sent down the rest of
//! the middleware chain. Put it last (nearest the network) and leave other retry
//! middleware out, so retries never stack.
//!
//! A request whose body cannot be cloned (a stream) is sent once: with the key relent
//! picks, and relent learns from its answer, but it is never retried; when relent would
//! have retried, the call fails with a configuration [`RelentError`] that says so.
//!
//! A call relent gave up on fails with `reqwest_middleware::Error::Middleware` holding a
//! [`RelentError`] (find it with [`relent_error`]).

use crate::reqwest_parts::{attempt_result, into_response, reqwest_kind, retarget};
use crate::{find_relent_error, handover_for, RelentError};
use http::Extensions;
use relent_tokio::{Attempt, AttemptResult, CallOptions, RetryState, SendAttempt};
use reqwest_middleware::{Middleware, Next};
use std::future::Future;
use std::sync::Mutex;

/// Middleware that runs every request through relent on a [`RetryState`].
#[derive(Clone, Debug)]
pub struct RelentMiddleware {
    state: RetryState,
}

impl RelentMiddleware {
    /// Middleware on `state` (clones of the state, and the client it came from, share one
    /// pool with it).
    pub fn new(state: RetryState) -> Self {
        RelentMiddleware { state }
    }
}

/// The [`RelentError`] in a reqwest-middleware error, if relent made it.
pub fn relent_error(error: &reqwest_middleware::Error) -> Option<&RelentError> {
    match error {
        reqwest_middleware::Error::Middleware(inner) => find_relent_error(inner.as_ref()),
        reqwest_middleware::Error::Reqwest(inner) => find_relent_error(inner),
    }
}

/// Said by a second attempt of a request that cannot be cloned.
const NOT_RETRIED: &str = "the request's body cannot be cloned (a stream), so it was sent once and is not retried; relent would have tried again";

#[async_trait::async_trait]
impl Middleware for RelentMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let handover = handover_for(request.body().and_then(reqwest::Body::as_bytes));
        let attempts = Attempts {
            cloneable: request.try_clone().is_some(),
            request: Mutex::new(Some(request)),
            next,
            extensions: tokio::sync::Mutex::new(extensions),
        };
        match self
            .state
            .start(&attempts, CallOptions::new(), handover)
            .await
        {
            Ok(streaming) => Ok(into_response(streaming, self.state.clone())),
            Err(error) => Err(reqwest_middleware::Error::middleware(RelentError::new(
                error,
                &self.state,
            ))),
        }
    }
}

/// One request's attempts, each sent down the rest of the chain.
struct Attempts<'a> {
    /// The request as the client made it; taken by the one attempt of a request that
    /// cannot be cloned.
    request: Mutex<Option<reqwest::Request>>,
    cloneable: bool,
    next: Next<'a>,
    extensions: tokio::sync::Mutex<&'a mut Extensions>,
}

impl Attempts<'_> {
    fn copy(&self) -> Result<reqwest::Request, String> {
        let mut held = self
            .request
            .lock()
            .map_err(|_| "the request's lock was poisoned".to_string())?;
        let copy = if self.cloneable {
            held.as_ref().and_then(reqwest::Request::try_clone)
        } else {
            held.take()
        };
        copy.ok_or_else(|| NOT_RETRIED.to_string())
    }
}

impl SendAttempt for Attempts<'_> {
    fn send_attempt(&self, attempt: Attempt) -> impl Future<Output = AttemptResult> + Send {
        let request = self.copy().and_then(|mut request| {
            retarget(&mut request, &attempt)?;
            Ok(request)
        });
        async move {
            let request = match request {
                Ok(request) => request,
                Err(message) => return AttemptResult::Invalid(message),
            };
            let mut extensions = self.extensions.lock().await;
            match self.next.clone().run(request, &mut extensions).await {
                Ok(response) => attempt_result(Ok(response)),
                Err(reqwest_middleware::Error::Reqwest(error)) => {
                    AttemptResult::Failed(reqwest_kind(&error))
                }
                Err(reqwest_middleware::Error::Middleware(error)) => {
                    AttemptResult::Failed(crate::body::transport_kind(error.as_ref()))
                }
            }
        }
    }
}
