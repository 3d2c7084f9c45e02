//! Running relent inside another client: the one drive loop, open to any way of sending.
//!
//! [`Client`] sends with a [`Transport`] and builds each request itself. Programs that
//! already have a client (async-openai, reqwest-middleware, a tower stack, genai) keep
//! building their requests and let relent decide *where* and *whether* each attempt goes:
//!
//! - [`SendAttempt`]: how to send one [`Attempt`] (a target, its key's secret, the call's
//!   idempotency key) and return once the status and headers are in. Everything else —
//!   the machine, sleeping, rotating, giving up, timeouts, cancellation, shared learning,
//!   `tracing`, metrics — is the same loop [`Client`] runs.
//! - [`RetryState`]: what every call shares (the pool, the secrets, the targets, the
//!   policy, the clock). Take it from a client ([`Client::retry_state`]: the client's calls
//!   and the adapter's calls then learn from each other) or build one without a transport
//!   ([`RetryState::builder`]).
//! - [`retry`]: the shortest way in, a closure that makes one attempt with any client and
//!   returns an [`Answer`] (status, headers, body) or a [`TransportError`].
//!
//! ```
//! use relent::{KeyId, KeySpec, Provider, Target, TransportError};
//! use relent_tokio::{retry, Answer, Endpoint, KeyStore, RetryState, Secret};
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # rt.block_on(async {
//! let mut keys = KeyStore::new();
//! keys.insert(KeyId(1), Secret::new("sk-dead"));
//! keys.insert(KeyId(2), Secret::new("sk-good"));
//! let state = RetryState::builder()
//!     .target(
//!         Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")]),
//!         Endpoint::openai("https://api.openai.com/v1"),
//!     )
//!     .keys(keys)
//!     .build_state()
//!     .unwrap();
//!
//! // Any client goes here; this one answers without a network: the first key is dead.
//! let done = retry(&state, |attempt| async move {
//!     if attempt.secret.expose() == "sk-dead" {
//!         let body = br#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#;
//!         return Ok::<_, TransportError>(Answer::new(401, vec![], body.to_vec()));
//!     }
//!     Ok(Answer::new(200, vec![], br#"{"choices":[]}"#.to_vec()))
//! })
//! .await
//! .unwrap();
//! assert_eq!((done.status, done.attempts, done.via.key), (200, 2, KeyId(2)));
//! # });
//! ```

use crate::builder::{check_headers, ClientBuilder};
use crate::client::{Client, Core, Settings};
use crate::drive::{drive, Adapter, Call, Mode};
use crate::error::CallError;
use crate::metrics as m;
use crate::options::CallOptions;
use crate::response::{is_event_stream, Completion, SseScanner, Streaming};
use crate::secret::{is_sensitive_header, Headers, Secret};
use crate::shared::Synced;
use crate::target::{apply_auth, check_header_name, Endpoint};
use crate::transport::{AttemptRequest, AttemptResult, BodyReader, NextChunk, Transport};
use relent::{KeyId, Pool, PoolChange, RetryMachine, TransportError};
use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, info_span, Instrument};

/// What every call of a client shares, without the transport: the pool (what one call
/// learns reaches the others before their next decision), the secrets, the targets and
/// their [`Endpoint`]s, the policy, the seed sequence, the clock and the driver's
/// settings. Cloning is cheap and clones share all of it.
///
/// Adapters run calls on it with [`RetryState::send`], [`RetryState::start`] or
/// [`retry`]. Its `Debug` shows no secret.
#[derive(Clone)]
pub struct RetryState {
    core: Arc<Core>,
    settings: Arc<Settings>,
}

impl std::fmt::Debug for RetryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryState")
            .field("endpoints", &self.core.endpoints)
            .field("keys", &self.core.keys)
            .field("policy", &self.core.policy)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Client<T> {
    /// The state this client's calls share, for adapters: calls made through an adapter
    /// and calls made with this client (and its clones) learn from each other.
    pub fn retry_state(&self) -> RetryState {
        RetryState {
            core: self.core.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<T: Transport> ClientBuilder<T> {
    /// Checks everything, as [`ClientBuilder::build`], and returns only the shared state,
    /// for adapters.
    pub fn build_state(self) -> Result<RetryState, CallError> {
        self.build().map(|client| client.retry_state())
    }
}

/// The transport of a [`RetryState`] built without one: it sends nothing. A [`Client`] on
/// it refuses every call with a configuration error; use adapters instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTransport;

impl Transport for NoTransport {
    fn send(&self, _request: AttemptRequest<'_>) -> impl Future<Output = AttemptResult> + Send {
        std::future::ready(AttemptResult::Invalid(
            "this client has no transport; send through an adapter (relent_tokio::retry)".into(),
        ))
    }
}

impl RetryState {
    /// A builder for state used only through adapters: targets with their endpoints (an
    /// endpoint's URL is where that target's attempts go; adapters that rebase a client's
    /// URLs take it as the target's base URL), keys, policy, settings. Finish it with
    /// [`ClientBuilder::build_state`].
    pub fn builder() -> ClientBuilder<NoTransport> {
        ClientBuilder::new(NoTransport)
    }

    fn client(&self) -> Client<NoTransport> {
        Client {
            transport: Arc::new(NoTransport),
            core: self.core.clone(),
            settings: self.settings.clone(),
        }
    }

    /// The shared pool as it stands.
    pub fn pool(&self) -> Pool {
        self.core.shared.snapshot()
    }

    /// Changes the pool for calls in flight and later ones (see [`Client::change_pool`]).
    pub fn change_pool(&self, change: PoolChange) -> Result<(), CallError> {
        self.client().change_pool(change)
    }

    /// Adds a key with its secret to target `target` (see [`Client::add_key`]).
    pub fn add_key(
        &self,
        target: usize,
        spec: relent::KeySpec,
        secret: Secret,
    ) -> Result<(), CallError> {
        self.client().add_key(target, spec, secret)
    }

    /// The targets' endpoints, in fallback order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.core.endpoints
    }

    /// How long from now until `at`, a time on this state's clock (an
    /// [`relent::Abort::retry_at`]); zero when it has passed.
    pub fn until(&self, at: relent::Time) -> Duration {
        let when = self.core.epoch + Duration::from_millis(at.0.min(u64::MAX / 4));
        when.saturating_duration_since(Instant::now())
    }

    /// Runs one logical call, sending each attempt with `adapter`, and hands the response
    /// over as [`Handover`] says. The loop is [`Client`]'s: the same checks, timeouts,
    /// cancellation, shared learning, `tracing`, progress and metrics.
    pub async fn start<A: SendAttempt>(
        &self,
        adapter: &A,
        options: CallOptions,
        handover: Handover,
    ) -> Result<Streaming, CallError> {
        let started = Instant::now();
        let mode = match handover {
            Handover::Whole => Mode::Buffered,
            Handover::FirstChunk => Mode::Streaming,
        };
        let models = self.core.shared.models();
        let bases = models
            .iter()
            .zip(&self.core.endpoints)
            .map(|(model, endpoint)| endpoint.url_for(model))
            .collect();
        let adapted = Adapted {
            adapter,
            core: &self.core,
            settings: &self.settings,
            call_headers: &options.headers,
            models,
            bases,
        };
        let result = run(
            &self.core,
            &self.settings,
            &adapted,
            &options,
            mode,
            started,
        )
        .await;
        record_failure(&result, started);
        result
    }

    /// Runs one logical call, sending each attempt with `adapter`, and reads the whole
    /// response.
    pub async fn send<A: SendAttempt>(
        &self,
        adapter: &A,
        options: CallOptions,
    ) -> Result<Completion, CallError> {
        collect(self.start(adapter, options, Handover::Whole).await?).await
    }
}

/// When a success is handed over.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handover {
    /// Once the whole body is read (an error inside a 200 body is then classified, and
    /// retried, like any other).
    Whole,
    /// At the first chunk: for streams, which are committed from then on.
    FirstChunk,
}

/// One attempt the machine asked for: where it goes, with which key, and what relent
/// sends with it. Its `Debug` shows no secret.
#[derive(Clone)]
#[non_exhaustive]
pub struct Attempt {
    /// The target's index in the fallback chain.
    pub target: usize,
    /// The target's model.
    pub model: String,
    /// The target's endpoint (URL or base URL, API, auth style, headers).
    pub endpoint: Endpoint,
    /// The key to use.
    pub key: KeyId,
    /// The key's secret (empty for a target without auth).
    pub secret: Secret,
    /// The call's idempotency key, the same for every attempt.
    pub idempotency_key: String,
    /// 1 for the call's first send, counting every send.
    pub number: u32,
    /// Open a new connection instead of reusing a pooled one, if the client can.
    pub fresh_connection: bool,
    /// Headers relent adds: the target's, the client's, the call's, the idempotency key and
    /// the attempt number.
    headers: Headers,
    /// Every target's URL, in fallback order, for [`Attempt::rebase`].
    bases: Arc<[String]>,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("target", &self.target)
            .field("model", &self.model)
            .field("endpoint", &self.endpoint)
            .field("key", &self.key)
            .field("secret", &self.secret)
            .field("idempotency_key", &self.idempotency_key)
            .field("number", &self.number)
            .field("fresh_connection", &self.fresh_connection)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Attempt {
    /// The headers relent sends with this attempt, credential not included: the target's
    /// headers, the client's and the call's extra headers, the idempotency key and the
    /// attempt number (under the client's [`crate::HeaderNames`]).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Adds this attempt's credential, as the target's [`Auth`](crate::Auth) says: a header, a query
    /// parameter (`url` changes), or a signature over `method`, `url`, `headers` and
    /// `body`. Remove the client's own credential first ([`is_credential_header`]). An
    /// error is a configuration error whose text quotes no secret.
    pub fn authorize(
        &self,
        method: &str,
        url: &mut String,
        headers: &mut Headers,
        body: &[u8],
    ) -> Result<(), String> {
        apply_auth(
            &self.endpoint.auth,
            &self.secret,
            method,
            url,
            headers,
            body,
        )
    }

    /// `body` with its top-level JSON `"model"` set to this target's model (when the
    /// endpoint rewrites models, the default); unchanged when it has none.
    pub fn shape_body<'b>(&self, body: &'b [u8]) -> Cow<'b, [u8]> {
        crate::request::rewrite(body, &self.model, self.endpoint.rewrite_model)
    }

    /// `url`, built by a client against one target's base URL, moved to this attempt's
    /// target: the longest target URL that `url` starts with (at a path boundary) is
    /// replaced by this target's. A URL under no target's URL is an error, so a key is
    /// never sent to a host that is not its target's.
    pub fn rebase(&self, url: &str) -> Result<String, String> {
        let under = |base: &str| {
            let base = base.trim_end_matches('/');
            url.strip_prefix(base)
                .filter(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
                .map(|rest| (base.len(), rest))
        };
        let Some((_, rest)) = self.bases.iter().filter_map(|b| under(b)).max() else {
            return Err(format!(
                "the request URL {} is under none of the targets' URLs; give each target its base URL (for example https://api.openai.com/v1)",
                crate::redact_url(url)
            ));
        };
        let own = self
            .bases
            .get(self.target)
            .map_or("", |b| b.trim_end_matches('/'));
        Ok(format!("{own}{rest}"))
    }
}

/// Whether a header set by the client must go before relent adds the target's
/// credential: every header whose name marks a credential ([`is_sensitive_header`]:
/// `authorization`, `x-api-key`, `api-key`, …). Dropping them keeps the client's own key
/// (a placeholder, or one for another provider) from reaching a fallback target.
pub fn is_credential_header(name: &str) -> bool {
    is_sensitive_header(name)
}

/// How to send one attempt: all an adapter provides. Return once the status and headers
/// are in, with an [`AttemptResult::Response`] whose body the loop reads as it needs; a
/// failure below HTTP is [`AttemptResult::Failed`] with its [`TransportError`] kind. Send
/// exactly once: never retry inside, so retries never stack.
pub trait SendAttempt: Sync {
    /// Sends `attempt`.
    fn send_attempt(&self, attempt: Attempt) -> impl Future<Output = AttemptResult> + Send;
}

/// A whole answer, for [`retry`]: status, headers and body.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The headers (`Retry-After` and the rate-limit headers are read from here).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// An answer.
    pub fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        Answer {
            status,
            headers,
            body,
        }
    }
}

/// Runs one logical call through relent, making each attempt with `attempt_fn`, which
/// gets the [`Attempt`] (target, model, key secret, idempotency key) and returns the
/// [`Answer`] or the [`TransportError`] kind of its failure. Returns the whole successful
/// response or why the call gave up.
pub async fn retry<F, Fut>(state: &RetryState, attempt_fn: F) -> Result<Completion, CallError>
where
    F: Fn(Attempt) -> Fut + Sync,
    Fut: Future<Output = Result<Answer, TransportError>> + Send,
{
    retry_with(state, CallOptions::default(), attempt_fn).await
}

/// As [`retry`], with options (deadline, cancellation, headers, metadata).
pub async fn retry_with<F, Fut>(
    state: &RetryState,
    options: CallOptions,
    attempt_fn: F,
) -> Result<Completion, CallError>
where
    F: Fn(Attempt) -> Fut + Sync,
    Fut: Future<Output = Result<Answer, TransportError>> + Send,
{
    state.send(&Closure(attempt_fn), options).await
}

struct Closure<F>(F);

impl<F, Fut> SendAttempt for Closure<F>
where
    F: Fn(Attempt) -> Fut + Sync,
    Fut: Future<Output = Result<Answer, TransportError>> + Send,
{
    fn send_attempt(&self, attempt: Attempt) -> impl Future<Output = AttemptResult> + Send {
        let answer = (self.0)(attempt);
        async move {
            match answer.await {
                Ok(answer) => AttemptResult::Response {
                    status: answer.status,
                    headers: answer.headers,
                    body: Box::new(Whole(Some(answer.body))),
                },
                Err(kind) => AttemptResult::Failed(kind),
            }
        }
    }
}

/// A body read whole already.
struct Whole(Option<Vec<u8>>);

impl BodyReader for Whole {
    fn next_chunk(&mut self) -> NextChunk<'_> {
        let chunk = self.0.take().filter(|b| !b.is_empty());
        Box::pin(std::future::ready(Ok(chunk)))
    }
}

/// A public adapter seen by the loop: resolves the machine's `Send` into an [`Attempt`].
struct Adapted<'a, A> {
    adapter: &'a A,
    core: &'a Core,
    settings: &'a Settings,
    call_headers: &'a Headers,
    /// Every target's model, in fallback order.
    models: Vec<String>,
    bases: Arc<[String]>,
}

impl<A: SendAttempt> Adapter for Adapted<'_, A> {
    fn send_attempt(&self, send: &relent::Send) -> impl Future<Output = AttemptResult> + Send {
        let attempt = self.attempt(send);
        async move {
            match attempt {
                Ok(attempt) => self.adapter.send_attempt(attempt).await,
                Err(message) => AttemptResult::Invalid(message),
            }
        }
    }
}

impl<A> Adapted<'_, A> {
    fn attempt(&self, send: &relent::Send) -> Result<Attempt, String> {
        let t = send.target;
        let endpoint = self
            .core
            .endpoints
            .get(t)
            .ok_or_else(|| format!("no endpoint for target {t}"))?;
        let secret = self
            .core
            .secret_for(send.key, endpoint, "RetryState::add_key")?;
        let model = self.models.get(t).cloned().unwrap_or_default();
        let mut headers = Headers::new();
        push_attempt_headers(
            &mut headers,
            endpoint,
            self.settings,
            self.call_headers,
            send,
        );
        Ok(Attempt {
            target: t,
            model,
            endpoint: endpoint.clone(),
            key: send.key,
            secret,
            idempotency_key: send.idempotency_key.to_string(),
            number: send.attempt,
            fresh_connection: send.fresh_connection,
            headers,
            bases: self.bases.clone(),
        })
    }
}

/// Adds what every attempt carries besides its credential, in this order: the target's
/// own headers, the client's and the call's extra headers (sensitive ones stay marked),
/// then the idempotency key and the attempt number under the configured names. The
/// `Client` and every adapter build their attempts with it.
pub(crate) fn push_attempt_headers(
    headers: &mut Headers,
    endpoint: &Endpoint,
    settings: &Settings,
    call_headers: &Headers,
    send: &relent::Send,
) {
    for (name, value) in &endpoint.headers {
        headers.push(name.clone(), value.clone());
    }
    let extra = settings.extra_headers.iter_marked();
    for (name, value, sensitive) in extra.chain(call_headers.iter_marked()) {
        if sensitive {
            headers.push_sensitive(name, value);
        } else {
            headers.push(name, value);
        }
    }
    let names = &settings.header_names;
    headers.push(names.idempotency.clone(), send.idempotency_key.to_string());
    headers.push(names.attempt.clone(), send.attempt.to_string());
}

/// Drives one call with `adapter` to a committed response: the setup every call shares
/// (checks, seed, deadline, machine, span), then the loop in [`crate::drive`].
pub(crate) async fn run<A: Adapter>(
    core: &Arc<Core>,
    settings: &Settings,
    adapter: &A,
    options: &CallOptions,
    mode: Mode,
    started: Instant,
) -> Result<Streaming, CallError> {
    // Everything the call brings is checked before the first send.
    check_headers(&settings.extra_headers)?;
    check_headers(&options.headers)?;
    for name in [
        &settings.header_names.idempotency,
        &settings.header_names.attempt,
    ] {
        check_header_name(name).map_err(CallError::config)?;
    }
    let seed = core.next_seed.fetch_add(1, Ordering::Relaxed);
    let mut policy = core.policy.clone();
    if let Some(deadline) = options.deadline {
        policy.deadline_ms = policy
            .deadline_ms
            .min(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX))
            .max(1);
    }
    if let Some(outbox) = core.shared.outbox() {
        // A fresh client learns what the fleet knows before its first send (at most one
        // store timeout; later calls never wait for the store).
        outbox.first_read().await;
    }
    // The call starts from the client's pool, retry budget and breakers.
    let mut synced = Synced {
        pool: core.shared.snapshot(),
        overload: core.shared.overload(),
    };
    // Boxed: the machine goes on to the response handed to the caller, which moves about.
    let mut machine = Box::new(
        RetryMachine::with_pool(policy, synced.pool.clone(), seed)
            .map_err(|e| CallError::Config(e.to_string()))?
            .with_overload(synced.overload.clone()),
    );
    if let Some(unix_ms) = core.epoch_unix_ms {
        *machine = machine.wall_clock_epoch(unix_ms);
    }
    let metadata: String = options
        .metadata
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let span = info_span!(
        "relent.call",
        seed,
        idempotency_key = %machine.idempotency_key(),
        metadata = %relent::classify::redact::redact(&metadata),
    );
    let cancel = options.cancel.clone().unwrap_or_default();
    let call = Call {
        shared: &core.shared,
        epoch: core.epoch,
        cancel: &cancel,
        mode,
        idle: settings.idle,
        progress: settings.progress.as_ref(),
    };
    let mut guard = DropGuard { done: false };
    let result = drive(adapter, &call, &mut machine, &mut synced)
        .instrument(span)
        .await;
    guard.done = true;
    core.shared.sync(&mut machine, &mut synced, call.now());
    let committed = result?;
    let api = core.endpoints[committed.via.target].api;
    let sse = is_event_stream(&committed.headers).then(SseScanner::default);
    Ok(Streaming {
        status: committed.status,
        headers: committed.headers,
        via: committed.via,
        api,
        attempts: committed.attempts,
        seed,
        first: Some(committed.first),
        reader: committed.reader,
        machine,
        synced,
        shared: core.shared.clone(),
        epoch: core.epoch,
        started,
        idle: settings.idle,
        cancel,
        sse,
        pending_error: None,
        done: false,
    })
}

/// Counts a call that ended before a response was handed over.
pub(crate) fn record_failure(result: &Result<Streaming, CallError>, started: Instant) {
    if let Err(error) = result {
        match error {
            CallError::Aborted(abort) => {
                m::abort(abort);
                m::call_ended(abort.reason.name(), started.elapsed().as_secs_f64());
            }
            CallError::Config(_) => m::call_ended("config_error", 0.0),
            _ => m::call_ended("internal_error", started.elapsed().as_secs_f64()),
        }
    }
}

/// Reads a committed response to its end.
pub(crate) async fn collect(mut streaming: Streaming) -> Result<Completion, CallError> {
    let mut full = streaming.first.take().unwrap_or_default();
    // Scan what was read whole, then read (nothing, normally) to the end.
    if let Some(scanner) = streaming.sse.as_mut() {
        if let Some((before, data)) = scanner.feed(&full) {
            full.truncate(before);
            streaming.pending_error = Some(data);
        }
    }
    while let Some(chunk) = streaming.next_chunk().await? {
        full.extend_from_slice(&chunk);
    }
    Ok(Completion {
        status: streaming.status,
        headers: std::mem::take(&mut streaming.headers),
        body: full,
        via: streaming.via,
        api: streaming.api,
        attempts: streaming.attempts,
        seed: streaming.seed,
    })
}

/// Logs a call whose future was dropped before it ended.
struct DropGuard {
    done: bool,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.done {
            info!("relent: call dropped by the caller before it ended");
        }
    }
}
