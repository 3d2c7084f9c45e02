//! The driver: carries out the machine's actions with tokio time and a [`Transport`].

use crate::secret::{redact_url, Headers, KeyStore};
use crate::transport::{AttemptRequest, AttemptResult, BodyReader, Transport};
use relent::machine::SleepReason;
use relent::{
    Abort, Action, Event, HttpResponse, KeyRef, Observation, Policy, Pool, PoolChange,
    RetryMachine, State, Target, Time, TransportError,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

/// The most of an error body read for classification.
const ERROR_BODY_LIMIT: usize = relent::classify::BODY_SCAN_LIMIT;

/// Which request shape a target speaks (it decides how the key is sent).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI-compatible: `Authorization: Bearer <key>`.
    OpenAiCompatible,
    /// Anthropic Messages: `x-api-key: <key>` and `anthropic-version`.
    AnthropicMessages,
}

/// Where a target is reached. Its `Debug` redacts keys in the URL (`?key=…`, a password in
/// the user part).
#[derive(Clone)]
pub struct Endpoint {
    /// The full URL requests are posted to.
    pub url: String,
    /// The request shape.
    pub api: Api,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &redact_url(&self.url))
            .field("api", &self.api)
            .finish()
    }
}

/// What the driver reports as a call progresses (also sent as `tracing` events).
#[derive(Clone, Debug)]
pub struct Progress {
    /// Milliseconds since the call started.
    pub at: Time,
    /// The machine's decision.
    pub action: Action,
    /// The label of the key the decision is about, if any.
    pub key_label: Option<String>,
}

type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Why a call ended without a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The machine gave up: the reason and an actionable message.
    Aborted(Abort),
    /// The configuration cannot work.
    Config(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Aborted(abort) => write!(f, "{}: {}", abort.reason, abort.message),
            CallError::Config(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CallError {}

impl CallError {
    /// The abort, when the machine gave up.
    pub fn abort(&self) -> Option<&Abort> {
        match self {
            CallError::Aborted(abort) => Some(abort),
            CallError::Config(_) => None,
        }
    }
}

/// A successful, fully read response. Its `Debug` shows header values through
/// [`Headers`]' redaction and the body's length, not the body.
#[derive(Clone)]
pub struct Completion {
    /// Its status.
    pub status: u16,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
    /// The key that answered.
    pub via: KeyRef,
    /// Sends made.
    pub attempts: u32,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Headers = self.headers.iter().cloned().collect();
        f.debug_struct("Completion")
            .field("status", &self.status)
            .field("headers", &headers)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("via", &self.via)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// A successful response whose body is still streaming. Once handed over it is committed: a
/// failure later is reported by [`Streaming::next_chunk`], never retried behind the caller's
/// back.
pub struct Streaming {
    /// Its status.
    pub status: u16,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// The key that answered.
    pub via: KeyRef,
    /// Sends made.
    pub attempts: u32,
    first: Option<Vec<u8>>,
    reader: Box<dyn BodyReader>,
    machine: RetryMachine,
    start: Instant,
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("status", &self.status)
            .field("via", &self.via)
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl Streaming {
    /// The next chunk of the body, `Ok(None)` at its end. A broken stream yields
    /// `CallError::Aborted` with reason `failed_after_commit`.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        let now = Time(self.start.elapsed().as_millis() as u64);
        match self.reader.next_chunk().await {
            Ok(Some(chunk)) => Ok(Some(chunk)),
            Ok(None) => {
                let _ = self.machine.handle(now, Event::StreamEnded);
                Ok(None)
            }
            Err(kind) => {
                let _ = self
                    .machine
                    .handle(now, Event::StreamFailed(Observation::Transport(kind)));
                while let Some(action) = self.machine.poll_action() {
                    if let Action::Abort(abort) = action {
                        warn!(reason = %abort.reason, message = %abort.message, "relent: stream failed after commit");
                        return Err(CallError::Aborted(abort));
                    }
                }
                Err(CallError::Config("the stream failed".into()))
            }
        }
    }
}

/// Header names relent sends with every attempt.
#[derive(Clone, Debug)]
pub struct HeaderNames {
    /// The idempotency key, the same for every attempt of a call.
    pub idempotency: String,
    /// The attempt number, 1 for the first send.
    pub attempt: String,
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames {
            idempotency: "Idempotency-Key".into(),
            attempt: "X-Relent-Attempt".into(),
        }
    }
}

/// Runs calls through relent's machine over a [`Transport`].
pub struct Client<T: Transport> {
    transport: T,
    endpoints: Vec<Endpoint>,
    keys: Mutex<KeyStore>,
    policy: Policy,
    pool: Mutex<Pool>,
    changes: broadcast::Sender<PoolChange>,
    header_names: HeaderNames,
    extra_headers: Headers,
    progress: Option<ProgressFn>,
    next_seed: AtomicU64,
    /// Time zero of every call's clock. Key states carry times (a cooldown's end, a last
    /// use), and they carry over between calls, so all calls must count from one epoch.
    epoch: Instant,
    /// The Unix time (ms) of `epoch`, for absolute reset times in responses that carry no
    /// `Date` header.
    epoch_unix_ms: Option<u64>,
}

impl<T: Transport> std::fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints)
            .field("extra_headers", &self.extra_headers)
            .field("keys", &self.keys)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Client<T> {
    /// A client for `targets` (the fallback chain) reached at `endpoints` (one per target),
    /// with secrets from `keys`.
    pub fn new(
        transport: T,
        targets: Vec<Target>,
        endpoints: Vec<Endpoint>,
        keys: KeyStore,
        policy: Policy,
    ) -> Result<Self, CallError> {
        if targets.len() != endpoints.len() {
            return Err(CallError::Config(format!(
                "{} targets but {} endpoints; give one endpoint per target",
                targets.len(),
                endpoints.len()
            )));
        }
        policy
            .validate()
            .map_err(|e| CallError::Config(e.to_string()))?;
        if policy.restart_after_commit {
            return Err(CallError::Config(
                "restart_after_commit is not supported by this driver: a committed stream that fails is reported to the caller, who decides whether to call again".into(),
            ));
        }
        let pool = Pool::new(targets).map_err(|e| CallError::Config(e.to_string()))?;
        for (_, key) in pool.all_keys() {
            if keys.get(key.spec.id).is_none() {
                return Err(CallError::Config(format!(
                    "no secret for key {} (\"{}\")",
                    key.spec.id, key.spec.label
                )));
            }
        }
        let (changes, _) = broadcast::channel(64);
        Ok(Client {
            transport,
            endpoints,
            keys: Mutex::new(keys),
            policy,
            pool: Mutex::new(pool),
            changes,
            header_names: HeaderNames::default(),
            extra_headers: Headers::new(),
            progress: None,
            next_seed: AtomicU64::new(0x5eed),
            epoch: Instant::now(),
            epoch_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_millis() as u64),
        })
    }

    /// Uses other names for the idempotency and attempt headers.
    pub fn header_names(mut self, names: HeaderNames) -> Self {
        self.header_names = names;
        self
    }

    /// Sends these headers with every attempt (for example `content-type`). Those whose
    /// names mark a credential ([`crate::is_sensitive_header`]) are treated as secrets.
    pub fn extra_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.extra_headers = headers.into();
        self
    }

    /// Calls `f` with every decision, so a program can show why it waits.
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Seeds the machines' jitter (each call takes the next seed).
    pub fn seed(self, seed: u64) -> Self {
        self.next_seed.store(seed, Ordering::Relaxed);
        self
    }

    /// Changes the pool: at once for calls in flight (a key added while they sleep for
    /// cooling keys ends the sleep), and for every later call.
    pub fn change_pool(&self, change: PoolChange) -> Result<(), CallError> {
        {
            let mut pool = self
                .pool
                .lock()
                .map_err(|_| CallError::Config("pool lock poisoned".into()))?;
            pool.apply(&change)
                .map_err(|e| CallError::Config(e.to_string()))?;
        }
        let _ = self.changes.send(change);
        Ok(())
    }

    /// Adds a key with its secret to target `target`, for calls in flight and later ones.
    pub fn add_key(
        &self,
        target: usize,
        spec: relent::KeySpec,
        secret: crate::Secret,
    ) -> Result<(), CallError> {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(spec.id, secret);
        }
        self.change_pool(PoolChange::Added { target, key: spec })
    }

    /// The pool as the last call left it (key states carry over between calls).
    pub fn pool(&self) -> Pool {
        self.pool
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Makes one logical call with `body` and reads the whole response.
    pub async fn call(&self, body: &[u8]) -> Result<Completion, CallError> {
        self.call_with_cancel(body, CancellationToken::new()).await
    }

    /// As [`Client::call`], ending early (with reason `cancelled`) when `cancel` fires.
    pub async fn call_with_cancel(
        &self,
        body: &[u8],
        cancel: CancellationToken,
    ) -> Result<Completion, CallError> {
        let mut streaming = self.drive(body, cancel, Mode::Buffered).await?;
        let mut full = streaming.first.take().unwrap_or_default();
        while let Some(chunk) = streaming.next_chunk().await? {
            full.extend_from_slice(&chunk);
        }
        Ok(Completion {
            status: streaming.status,
            headers: streaming.headers,
            body: full,
            via: streaming.via,
            attempts: streaming.attempts,
        })
    }

    /// Makes one logical call and hands the response over as soon as its status is a success
    /// and its first chunk carries no error.
    pub async fn call_streaming(
        &self,
        body: &[u8],
        cancel: CancellationToken,
    ) -> Result<Streaming, CallError> {
        self.drive(body, cancel, Mode::Streaming).await
    }

    fn report(&self, machine: &RetryMachine, now: Time, action: &Action) {
        let key = match action {
            Action::Send(s) => Some(s.key),
            Action::Rotate { to, .. } => Some(to.key),
            Action::Succeeded { via, .. } => Some(via.key),
            _ => None,
        };
        let key_label = key.map(|k| machine.pool().label(k));
        let label = key_label.as_deref().unwrap_or("-");
        match action {
            Action::Send(s) => debug!(
                attempt = s.attempt,
                target = s.target,
                key = label,
                fresh = s.fresh_connection,
                "relent: send"
            ),
            Action::Sleep { until, reason } => {
                let wait_ms = until.0.saturating_sub(now.0);
                let why = match reason {
                    SleepReason::Backoff { after } => format!("backoff after {after}"),
                    SleepReason::ServerHint { after, source } => {
                        format!("server asked to wait ({source:?}) after {after}")
                    }
                    SleepReason::AllKeysCooling => "every key is cooling down".to_string(),
                };
                info!(wait_ms, why = %why, "relent: waiting");
            }
            Action::Rotate { from, to, why } => {
                let from = from.map_or_else(|| "none".to_string(), |f| f.key.to_string());
                info!(from = %from, to = label, to_target = to.target, why = %why, "relent: rotating")
            }
            Action::Succeeded { attempts, .. } => debug!(attempts, key = label, "relent: success"),
            Action::Abort(abort) => {
                warn!(reason = %abort.reason, message = %abort.message, "relent: giving up")
            }
        }
        if let Some(progress) = &self.progress {
            progress(&Progress {
                at: now,
                action: action.clone(),
                key_label: key_label.as_deref().map(str::to_string),
            });
        }
    }

    async fn drive(
        &self,
        body: &[u8],
        cancel: CancellationToken,
        mode: Mode,
    ) -> Result<Streaming, CallError> {
        let seed = self.next_seed.fetch_add(1, Ordering::Relaxed);
        // The pool as this call last shared it: what it learns is merged into the client's
        // pool as it goes, so concurrent and later calls know at once, and nothing is lost
        // when the caller drops the call.
        let mut synced = self.pool();
        let mut machine = RetryMachine::with_pool(self.policy.clone(), synced.clone(), seed)
            .map_err(|e| CallError::Config(e.to_string()))?;
        if let Some(unix_ms) = self.epoch_unix_ms {
            machine = machine.wall_clock_epoch(unix_ms);
        }
        let span = info_span!("relent.call", idempotency_key = %machine.idempotency_key());
        let mut guard = DropGuard { done: false };
        let result = self
            .drive_machine(&mut machine, &mut synced, body, cancel, mode)
            .instrument(span)
            .await;
        guard.done = true;
        self.share_pool(&mut synced, machine.pool());
        result.map(|c| Streaming {
            status: c.status,
            headers: c.headers,
            via: c.via,
            attempts: c.attempts,
            first: Some(c.first),
            reader: c.reader,
            machine,
            start: c.start,
        })
    }

    /// Merges what a call learned since `synced` into the client's pool (concurrent calls
    /// may have changed it meanwhile), and moves `synced` on.
    fn share_pool(&self, synced: &mut Pool, current: &Pool) {
        if synced == current {
            return;
        }
        if let Ok(mut shared) = self.pool.lock() {
            shared.merge_call(synced, current);
        }
        synced.clone_from(current);
    }

    async fn drive_machine(
        &self,
        machine: &mut RetryMachine,
        synced: &mut Pool,
        body: &[u8],
        cancel: CancellationToken,
        mode: Mode,
    ) -> Result<Committed, CallError> {
        let start = self.epoch;
        let now = || Time(start.elapsed().as_millis() as u64);
        let at = |t: Time| start + Duration::from_millis(t.0);
        let mut changes = self.changes.subscribe();
        machine
            .start(now())
            .map_err(|e| CallError::Config(e.to_string()))?;
        // The response currently being classified, kept so a success can be handed over.
        let mut last: Option<Received> = None;
        loop {
            self.share_pool(synced, machine.pool());
            let Some(action) = machine.poll_action() else {
                // Waiting: a sleep (the only state with no send in flight and no end).
                match machine.state() {
                    State::Sleeping { until, .. } => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(at(until)) => { let _ = machine.handle_timeout(now().max(until)); }
                            change = changes.recv() => if let Ok(change) = change { let _ = machine.handle_pool_change(now(), change); },
                            _ = cancel.cancelled() => { let _ = machine.cancel(now()); }
                        }
                    }
                    other => {
                        return Err(CallError::Config(format!(
                            "the machine waits in state {} with nothing to do",
                            other.name()
                        )))
                    }
                }
                continue;
            };
            let t = now();
            self.report(machine, t, &action);
            match action {
                Action::Send(send) => {
                    let secret = self
                        .keys
                        .lock()
                        .ok()
                        .and_then(|keys| keys.get(send.key).cloned());
                    let Some(secret) = secret else {
                        // The key cannot authenticate: tell the machine so, as the provider
                        // would (it revokes the key and moves on at once).
                        warn!(key = %send.key, "relent: no secret for this key; treating it as rejected");
                        let body = br#"{"error":{"message":"no secret is configured for this key","code":"invalid_api_key"}}"#;
                        let _ = machine.handle_pool_change(
                            t,
                            PoolChange::MarkedBad {
                                key: send.key,
                                until: None,
                            },
                        );
                        let _ = machine.handle_response(
                            t,
                            Observation::Http(HttpResponse {
                                status: 401,
                                headers: &[],
                                body,
                            }),
                        );
                        continue;
                    };
                    let endpoint = &self.endpoints[send.target];
                    let mut headers = self.extra_headers.clone();
                    match endpoint.api {
                        Api::OpenAiCompatible => headers
                            .push_sensitive("authorization", format!("Bearer {}", secret.expose())),
                        Api::AnthropicMessages => {
                            headers.push_sensitive("x-api-key", secret.expose());
                            headers.push("anthropic-version", "2023-06-01");
                        }
                    }
                    headers.push(
                        self.header_names.idempotency.clone(),
                        send.idempotency_key.to_string(),
                    );
                    headers.push(self.header_names.attempt.clone(), send.attempt.to_string());
                    let request = AttemptRequest {
                        url: &endpoint.url,
                        headers,
                        body,
                        fresh_connection: send.fresh_connection,
                    };
                    let attempt = self.attempt(request, mode);
                    tokio::pin!(attempt);
                    let deadline = at(send.timeout_at);
                    let outcome = loop {
                        tokio::select! {
                            result = &mut attempt => break Some(result),
                            _ = tokio::time::sleep_until(deadline) => break None,
                            change = changes.recv() => if let Ok(change) = change { let _ = machine.handle_pool_change(now(), change); },
                            _ = cancel.cancelled() => { let _ = machine.cancel(now()); break Some(Outcome::Cancelled) }
                        }
                    };
                    match outcome {
                        None => {
                            let _ = machine.handle_timeout(now().max(send.timeout_at));
                        }
                        Some(Outcome::Cancelled) => {}
                        Some(Outcome::Failed(kind)) => {
                            let _ = machine.handle_response(now(), Observation::Transport(kind));
                        }
                        Some(Outcome::Response {
                            status,
                            headers,
                            prefix,
                            reader,
                        }) => {
                            let pairs: Vec<(&str, &str)> = headers
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str()))
                                .collect();
                            let _ = machine.handle_response(
                                now(),
                                Observation::Http(HttpResponse {
                                    status,
                                    headers: &pairs,
                                    body: &prefix,
                                }),
                            );
                            last = Some((status, headers, prefix, reader));
                        }
                    }
                }
                Action::Succeeded { via, attempts } => {
                    let Some((status, headers, prefix, reader)) = last.take() else {
                        return Err(CallError::Config("success without a response".into()));
                    };
                    return Ok(Committed {
                        status,
                        headers,
                        via,
                        attempts,
                        first: prefix,
                        reader,
                        start,
                    });
                }
                Action::Abort(abort) => return Err(CallError::Aborted(abort)),
                Action::Sleep { .. } | Action::Rotate { .. } => {}
            }
        }
    }

    /// Sends one attempt and reads what classification needs: for an error, up to the scan
    /// bound; for a success, the first chunk (streaming) or everything (buffered).
    async fn attempt(&self, request: AttemptRequest<'_>, mode: Mode) -> Outcome {
        match self.transport.send(request).await {
            AttemptResult::Failed(kind) => Outcome::Failed(kind),
            AttemptResult::Response {
                status,
                headers,
                mut body,
            } => {
                let success = (200..300).contains(&status);
                let mut prefix = Vec::new();
                loop {
                    match body.next_chunk().await {
                        Ok(Some(chunk)) => {
                            prefix.extend_from_slice(&chunk);
                            let enough = if success {
                                mode == Mode::Streaming
                            } else {
                                prefix.len() >= ERROR_BODY_LIMIT
                            };
                            if enough {
                                break;
                            }
                        }
                        Ok(None) => break,
                        // A success whose body breaks before it was handed over is not committed.
                        Err(kind) => return Outcome::Failed(kind),
                    }
                }
                Outcome::Response {
                    status,
                    headers,
                    prefix,
                    reader: body,
                }
            }
        }
    }
}

/// A success handed over: everything [`Streaming`] holds but the machine.
struct Committed {
    status: u16,
    headers: Vec<(String, String)>,
    via: KeyRef,
    attempts: u32,
    first: Vec<u8>,
    reader: Box<dyn BodyReader>,
    start: Instant,
}

/// A response being classified: status, headers, the body read so far, and the rest.
type Received = (u16, Vec<(String, String)>, Vec<u8>, Box<dyn BodyReader>);

#[derive(Copy, Clone, PartialEq, Eq)]
enum Mode {
    Buffered,
    Streaming,
}

enum Outcome {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        prefix: Vec<u8>,
        reader: Box<dyn BodyReader>,
    },
    Failed(TransportError),
    Cancelled,
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
