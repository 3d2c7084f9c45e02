//! The [`Client`]: shared state, the calls, and the HTTP adapter the drive loop sends with.

use crate::builder::{check_headers, ClientBuilder};
use crate::drive::{drive, Adapter, Call, Mode, Progress, ProgressFn};
use crate::error::CallError;
use crate::metrics as m;
use crate::options::{CallOptions, HeaderNames};
use crate::request::Request;
use crate::response::{is_event_stream, Completion, SseScanner, Streaming};
use crate::secret::{Headers, KeyStore, Secret};
use crate::shared::{SharedPool, Synced};
use crate::target::{apply_auth, check_method, check_secret, Auth, Endpoint};
use crate::transport::{AttemptRequest, AttemptResult, Transport};
use relent::{Policy, Pool, PoolChange, RetryMachine, Target};
use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, Instrument};

/// What every clone of a client shares: the pool, the secrets, the targets, the clock.
pub(crate) struct Core {
    pub shared: Arc<SharedPool>,
    pub keys: Mutex<KeyStore>,
    pub endpoints: Vec<Endpoint>,
    pub policy: Policy,
    pub next_seed: AtomicU64,
    /// Time zero of every call's clock. Key states carry times (a cooldown's end, a last
    /// use), and they carry over between calls, so all calls must count from one epoch.
    pub epoch: Instant,
    /// The Unix time (ms) of `epoch`, for absolute reset times in responses that carry no
    /// `Date` header.
    pub epoch_unix_ms: Option<u64>,
}

/// The driver's own settings.
#[derive(Clone)]
pub(crate) struct Settings {
    pub header_names: HeaderNames,
    pub extra_headers: Headers,
    pub progress: Option<ProgressFn>,
    pub idle: Duration,
}

/// Runs calls through relent's machine over a [`Transport`].
///
/// Cloning is cheap and clones share everything that matters: the pool (what any call
/// learns reaches every running call before its next decision), the secrets and the seed
/// sequence. [`Client::seed`], [`Client::extra_headers`] and the other settings methods
/// return a client with changed settings that still shares the pool.
pub struct Client<T: Transport> {
    pub(crate) transport: Arc<T>,
    pub(crate) core: Arc<Core>,
    pub(crate) settings: Arc<Settings>,
}

impl<T: Transport> Clone for Client<T> {
    fn clone(&self) -> Self {
        Client {
            transport: self.transport.clone(),
            core: self.core.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<T: Transport> std::fmt::Debug for Client<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.core.endpoints)
            .field("extra_headers", &self.settings.extra_headers)
            .field("keys", &self.core.keys)
            .field("policy", &self.core.policy)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Client<T> {
    /// A builder: add targets with their endpoints, then keys, policy and settings.
    pub fn builder(transport: T) -> ClientBuilder<T> {
        ClientBuilder::new(transport)
    }

    /// A client for `targets` (the fallback chain) reached at `endpoints` (one per target),
    /// with secrets from `keys`. Every configuration mistake is reported here.
    pub fn new(
        transport: T,
        targets: Vec<Target>,
        endpoints: Vec<Endpoint>,
        keys: KeyStore,
        policy: Policy,
    ) -> Result<Self, CallError> {
        if targets.len() != endpoints.len() {
            return Err(CallError::config(format!(
                "{} targets but {} endpoints; give one endpoint per target",
                targets.len(),
                endpoints.len()
            )));
        }
        targets
            .into_iter()
            .zip(endpoints)
            .fold(ClientBuilder::new(transport), |b, (t, e)| b.target(t, e))
            .keys(keys)
            .policy(policy)
            .build()
    }

    fn with_settings(&self, change: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = (*self.settings).clone();
        change(&mut settings);
        Client {
            transport: self.transport.clone(),
            core: self.core.clone(),
            settings: Arc::new(settings),
        }
    }

    /// Uses other names for the idempotency and attempt headers (checked at each call).
    pub fn header_names(self, names: HeaderNames) -> Self {
        self.with_settings(|s| s.header_names = names)
    }

    /// Sends these headers with every attempt. Those whose names mark a credential
    /// ([`crate::is_sensitive_header`]) are treated as secrets. Checked at each call.
    pub fn extra_headers(self, headers: Vec<(String, String)>) -> Self {
        self.with_settings(|s| s.extra_headers = headers.into())
    }

    /// Calls `f` with every decision, so a program can show why it waits.
    pub fn on_progress(self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.with_settings(|s| s.progress = Some(Arc::new(f)))
    }

    /// The longest a response body may stay silent once its headers are in.
    pub fn body_idle_timeout(self, idle: Duration) -> Self {
        self.with_settings(|s| s.idle = idle.max(Duration::from_millis(1)))
    }

    /// Seeds the machines (each call takes the next seed, for every clone) instead of OS
    /// entropy: for tests and replays.
    pub fn seed(self, seed: u64) -> Self {
        self.core.next_seed.store(seed, Ordering::Relaxed);
        self
    }

    /// Changes the pool: at once for calls in flight (a key added while they sleep for
    /// cooling keys ends the sleep), and for every later call.
    ///
    /// Adding a key whose secret the client does not have is a configuration error (use
    /// [`Client::add_key`]), and changes nothing.
    pub fn change_pool(&self, change: PoolChange) -> Result<(), CallError> {
        if let PoolChange::Added { key, .. } = &change {
            let known = self
                .core
                .keys
                .lock()
                .map(|keys| keys.get(key.id).is_some())
                .unwrap_or(false);
            if !known {
                return Err(CallError::config(format!(
                    "no secret for key {} (\"{}\"); add keys with Client::add_key",
                    key.id, key.label
                )));
            }
        }
        self.core.shared.change(&change)
    }

    /// Adds a key with its secret to target `target`, for calls in flight and later ones.
    pub fn add_key(
        &self,
        target: usize,
        spec: relent::KeySpec,
        secret: Secret,
    ) -> Result<(), CallError> {
        check_secret(&spec.label, spec.id, &secret).map_err(CallError::config)?;
        if let Ok(mut keys) = self.core.keys.lock() {
            keys.insert(spec.id, secret);
        }
        self.change_pool(PoolChange::Added { target, key: spec })
    }

    /// The shared pool as it stands (key states carry over between calls).
    pub fn pool(&self) -> Pool {
        self.core.shared.snapshot()
    }

    /// Whether the fleet store answered its last operation: `None` without a store,
    /// `Some(false)` while the client goes on with its local pool alone.
    pub fn store_healthy(&self) -> Option<bool> {
        self.core.shared.outbox().map(|o| o.healthy())
    }

    /// Waits until what this client learned is written to its fleet store, at most
    /// `within`. True when written (false without a store, or when the store did not
    /// answer in time: the news stays queued and is written when it does).
    pub async fn flush_store(&self, within: Duration) -> bool {
        match self.core.shared.outbox() {
            Some(outbox) => outbox.flush(within).await,
            None => false,
        }
    }

    /// Makes one logical call with `body` (raw bytes, POST, JSON) and reads the whole
    /// response.
    pub async fn call(&self, body: &[u8]) -> Result<Completion, CallError> {
        self.send(Request::raw(body), CallOptions::default()).await
    }

    /// As [`Client::call`], ending early (with reason `cancelled`) when `cancel` fires.
    pub async fn call_with_cancel(
        &self,
        body: &[u8],
        cancel: CancellationToken,
    ) -> Result<Completion, CallError> {
        self.send(Request::raw(body), CallOptions::new().cancel(cancel))
            .await
    }

    /// Makes one logical call with raw `body` and hands the response over as soon as its
    /// status is a success and its first chunk carries no error.
    pub async fn call_streaming(
        &self,
        body: &[u8],
        cancel: CancellationToken,
    ) -> Result<Streaming, CallError> {
        self.send_streaming(Request::raw(body), CallOptions::new().cancel(cancel))
            .await
    }

    /// Makes one logical call with `request`, shaped for each target, and reads the whole
    /// response. The body idle timeout and the deadline bound the reading.
    pub async fn send(
        &self,
        request: Request,
        options: CallOptions,
    ) -> Result<Completion, CallError> {
        let mut streaming = self.start(&request, options, Mode::Buffered).await?;
        let mut full = streaming.first.take().unwrap_or_default();
        streaming.first = None;
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

    /// Makes one logical call with `request` and hands the response over at its first
    /// chunk. Read it with [`Streaming::next_chunk`].
    pub async fn send_streaming(
        &self,
        request: Request,
        options: CallOptions,
    ) -> Result<Streaming, CallError> {
        self.start(&request, options, Mode::Streaming).await
    }

    /// Checks what the call brings, then drives it to a committed response.
    async fn start(
        &self,
        request: &Request,
        options: CallOptions,
        mode: Mode,
    ) -> Result<Streaming, CallError> {
        let started = Instant::now();
        let result = self.start_inner(request, options, mode, started).await;
        if let Err(error) = &result {
            match error {
                CallError::Aborted(abort) => {
                    m::abort(abort);
                    m::call_ended(abort.reason.name(), started.elapsed().as_secs_f64());
                }
                CallError::Config(_) => m::call_ended("config_error", 0.0),
                _ => m::call_ended("internal_error", started.elapsed().as_secs_f64()),
            }
        }
        result
    }

    async fn start_inner(
        &self,
        request: &Request,
        options: CallOptions,
        mode: Mode,
        started: Instant,
    ) -> Result<Streaming, CallError> {
        let core = &*self.core;
        let settings = &*self.settings;
        // Everything the call brings is checked before the first send.
        check_method(request.http_method()).map_err(CallError::config)?;
        check_headers(&settings.extra_headers)?;
        check_headers(&options.headers)?;
        for name in [
            &settings.header_names.idempotency,
            &settings.header_names.attempt,
        ] {
            crate::target::check_header_name(name).map_err(CallError::config)?;
        }
        if let Some(outbox) = core.shared.outbox() {
            // A fresh client learns what the fleet knows before its first send (at most
            // one store timeout; later calls never wait for the store).
            outbox.first_read().await;
        }
        let snapshot = core.shared.snapshot();
        let mut bodies = Vec::with_capacity(core.endpoints.len());
        let mut models = Vec::with_capacity(core.endpoints.len());
        for (target, endpoint) in snapshot.targets().iter().zip(&core.endpoints) {
            let body = request
                .shape(endpoint.api, &target.model, endpoint.rewrite_model)
                .map_err(|e| {
                    CallError::config(format!(
                        "the request cannot be sent to target {} ({}): {e}",
                        target.model,
                        endpoint.api.name()
                    ))
                })?;
            bodies.push(body);
            models.push(target.model.clone());
        }

        let seed = core.next_seed.fetch_add(1, Ordering::Relaxed);
        let mut policy = core.policy.clone();
        if let Some(deadline) = options.deadline {
            policy.deadline_ms = policy
                .deadline_ms
                .min(u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX))
                .max(1);
        }
        let mut synced = Synced {
            pool: snapshot,
            overload: core.shared.overload(),
        };
        let mut machine = RetryMachine::with_pool(policy, synced.pool.clone(), seed)
            .map_err(|e| CallError::Config(e.to_string()))?
            .with_overload(synced.overload.clone());
        if let Some(unix_ms) = core.epoch_unix_ms {
            machine = machine.wall_clock_epoch(unix_ms);
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
        let adapter = HttpAdapter {
            transport: &*self.transport,
            core,
            settings,
            bodies,
            models,
            method: request.http_method(),
            content_type: request.content_type_header(),
            call_headers: &options.headers,
        };
        let call = Call {
            shared: &core.shared,
            epoch: core.epoch,
            cancel: &cancel,
            mode,
            idle: settings.idle,
            progress: settings.progress.as_ref(),
        };
        let mut guard = DropGuard { done: false };
        let result = drive(&adapter, &call, &mut machine, &mut synced)
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
}

/// Sends attempts over HTTP: the target's URL, body, headers and credential.
struct HttpAdapter<'a, T: Transport> {
    transport: &'a T,
    core: &'a Core,
    settings: &'a Settings,
    bodies: Vec<Cow<'a, [u8]>>,
    models: Vec<String>,
    method: &'a str,
    content_type: Option<&'a str>,
    call_headers: &'a Headers,
}

impl<T: Transport> Adapter for HttpAdapter<'_, T> {
    fn send_attempt(&self, send: &relent::Send) -> impl Future<Output = AttemptResult> + Send {
        let prepared = self.prepare(send);
        async move {
            match prepared {
                Ok((url, headers, body, fresh)) => {
                    self.transport
                        .send(AttemptRequest {
                            method: self.method,
                            url: &url,
                            headers,
                            body,
                            fresh_connection: fresh,
                        })
                        .await
                }
                Err(message) => AttemptResult::Invalid(message),
            }
        }
    }
}

impl<T: Transport> HttpAdapter<'_, T> {
    #[allow(clippy::type_complexity)]
    fn prepare(&self, send: &relent::Send) -> Result<(String, Headers, &[u8], bool), String> {
        let t = send.target;
        let (Some(endpoint), Some(model), Some(body)) = (
            self.core.endpoints.get(t),
            self.models.get(t),
            self.bodies.get(t),
        ) else {
            return Err(format!("no endpoint for target {t}"));
        };
        let secret = self
            .core
            .keys
            .lock()
            .ok()
            .and_then(|keys| keys.get(send.key).cloned())
            .or_else(|| matches!(endpoint.auth, Auth::None).then(|| Secret::new("")))
            .ok_or_else(|| {
                format!(
                    "no secret for key {}; add keys with Client::add_key",
                    send.key
                )
            })?;
        let mut url = endpoint.url_for(model);
        let mut headers = Headers::new();
        if let Some(content_type) = self.content_type {
            headers.push("content-type", content_type);
        }
        for (name, value) in &endpoint.headers {
            headers.push(name.clone(), value.clone());
        }
        let extra = self.settings.extra_headers.iter_marked();
        for (name, value, sensitive) in extra.chain(self.call_headers.iter_marked()) {
            if sensitive {
                headers.push_sensitive(name, value);
            } else {
                headers.push(name, value);
            }
        }
        let names = &self.settings.header_names;
        headers.push(names.idempotency.clone(), send.idempotency_key.to_string());
        headers.push(names.attempt.clone(), send.attempt.to_string());
        apply_auth(
            &endpoint.auth,
            &secret,
            self.method,
            &mut url,
            &mut headers,
            body,
        )?;
        Ok((url, headers, body, send.fresh_connection))
    }
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
