//! tower: [`RelentLayer`], for any `tower::Service<http::Request<B>>` whose body `B` is
//! `Clone` (hyper-util's legacy client, a `tower-http` stack, …).
//!
//! Each request runs through relent: every attempt is a clone of the request moved to the
//! target relent chose (its URI under the target's base URL, the client's credentials out,
//! relent's headers and the key's credential in) and sent with a clone of the inner
//! service. The body is passed as it is: this layer cannot read a generic body, so it does
//! not rewrite the model (give every target the model the body names, or use
//! [`relent_tokio::retry`]) and refuses targets whose auth signs the body
//! ([`relent_tokio::Auth::Signed`]).
//!
//! The response's body is a [`RelentBody`]; the service's error is a [`RelentError`]. A
//! success is handed over once its body is read whole, or at its first chunk when the
//! request accepts `text/event-stream` (or as [`RelentLayer::handover`] says).

pub use crate::body::RelentBody;
use crate::body::{relent_body, transport_kind, HttpBodyReader};
use crate::RelentError;
use relent_tokio::{Attempt, AttemptResult, Auth, CallOptions, Handover, RetryState, SendAttempt};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use tower_service::Service;

/// A `tower::Layer` that runs every request through relent on a [`RetryState`].
#[derive(Clone, Debug)]
pub struct RelentLayer {
    state: RetryState,
    handover: Option<Handover>,
}

impl RelentLayer {
    /// A layer on `state` (its clones, and the client it came from, share one pool).
    pub fn new(state: RetryState) -> Self {
        RelentLayer {
            state,
            handover: None,
        }
    }

    /// Hands every success over as `handover` says, whatever the request accepts.
    pub fn handover(mut self, handover: Handover) -> Self {
        self.handover = Some(handover);
        self
    }
}

impl<S> tower_layer::Layer<S> for RelentLayer {
    type Service = RelentService<S>;

    fn layer(&self, inner: S) -> RelentService<S> {
        RelentService {
            inner,
            state: self.state.clone(),
            handover: self.handover,
        }
    }
}

/// The service [`RelentLayer`] makes around `S`.
#[derive(Clone, Debug)]
pub struct RelentService<S> {
    inner: S,
    state: RetryState,
    handover: Option<Handover>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B, RB> Service<http::Request<B>> for RelentService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Clone + Send + 'static,
    RB: http_body::Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<BoxError>,
{
    type Response = http::Response<RelentBody>;
    type Error = RelentError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, RelentError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), RelentError>> {
        // Each attempt waits for its own clone of the inner service to be ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let state = self.state.clone();
        let handover = self.handover.unwrap_or_else(|| handover_of(&request));
        let attempts = Attempts {
            request: Mutex::new(request),
            inner: Mutex::new(self.inner.clone()),
        };
        Box::pin(async move {
            match state.start(&attempts, CallOptions::new(), handover).await {
                Ok(streaming) => {
                    let mut response = http::Response::new(());
                    *response.status_mut() = http::StatusCode::from_u16(streaming.status)
                        .unwrap_or(http::StatusCode::OK);
                    for (name, value) in &streaming.headers {
                        if name.eq_ignore_ascii_case("content-length")
                            || name.eq_ignore_ascii_case("transfer-encoding")
                        {
                            continue;
                        }
                        if let (Ok(name), Ok(value)) = (
                            http::HeaderName::from_bytes(name.as_bytes()),
                            http::HeaderValue::from_str(value),
                        ) {
                            response.headers_mut().append(name, value);
                        }
                    }
                    let (parts, _) = response.into_parts();
                    Ok(http::Response::from_parts(
                        parts,
                        relent_body(streaming, state),
                    ))
                }
                Err(error) => Err(RelentError::new(error, &state)),
            }
        })
    }
}

/// At the first chunk when the request accepts server-sent events, else whole.
fn handover_of<B>(request: &http::Request<B>) -> Handover {
    let streams = request
        .headers()
        .get_all(http::header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream")));
    if streams {
        Handover::FirstChunk
    } else {
        Handover::Whole
    }
}

/// One request's attempts.
struct Attempts<B, S> {
    request: Mutex<http::Request<B>>,
    inner: Mutex<S>,
}

impl<B: Clone, S> Attempts<B, S> {
    /// A clone of the request moved to `attempt`'s target.
    fn prepare(&self, attempt: &Attempt) -> Result<http::Request<B>, String> {
        if matches!(attempt.endpoint.auth, Auth::Signed(_)) {
            return Err("the tower layer cannot sign requests (it does not read the body); use relent_tokio::retry or Client for signed targets".into());
        }
        let mut request = self
            .request
            .lock()
            .map_err(|_| "the request's lock was poisoned".to_string())?
            .clone();
        let mut url = attempt.rebase(&request.uri().to_string())?;
        let mut added = attempt.headers().clone();
        attempt.authorize(request.method().as_str(), &mut url, &mut added, &[])?;
        *request.uri_mut() = url
            .parse()
            .map_err(|_| format!("cannot parse URL {}", relent_tokio::redact_url(&url)))?;
        crate::headers::replace_credentials(request.headers_mut(), &added)?;
        Ok(request)
    }
}

impl<B, S, RB> SendAttempt for Attempts<B, S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Clone + Send + 'static,
    RB: http_body::Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<BoxError>,
{
    fn send_attempt(&self, attempt: Attempt) -> impl Future<Output = AttemptResult> + Send {
        let prepared = self.prepare(&attempt).and_then(|request| {
            let service = self
                .inner
                .lock()
                .map_err(|_| "the service's lock was poisoned".to_string())?
                .clone();
            Ok((request, service))
        });
        async move {
            let (request, mut service) = match prepared {
                Ok(prepared) => prepared,
                Err(message) => return AttemptResult::Invalid(message),
            };
            if let Err(error) = futures_util::future::poll_fn(|cx| service.poll_ready(cx)).await {
                return AttemptResult::Failed(transport_kind(&*error.into()));
            }
            match service.call(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let headers = parts
                        .headers
                        .iter()
                        .filter_map(|(k, v)| {
                            Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))
                        })
                        .collect();
                    AttemptResult::Response {
                        status: parts.status.as_u16(),
                        headers,
                        body: Box::new(HttpBodyReader(Box::pin(body))),
                    }
                }
                Err(error) => AttemptResult::Failed(transport_kind(&*error.into())),
            }
        }
    }
}
