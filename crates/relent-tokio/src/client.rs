//! The [`Client`]: shared state, the calls, and the HTTP adapter the drive loop sends with.

use crate::adapter::{collect, push_attempt_headers, record_failure, run};
use crate::builder::ClientBuilder;
use crate::drive::{Adapter, Mode, Progress, ProgressFn};
use crate::error::CallError;
use crate::options::{CallOptions, HeaderNames};
use crate::request::Request;
use crate::response::{Completion, Streaming};
use crate::secret::{Headers, KeyStore, Secret};
use crate::shared::SharedPool;
use crate::target::{apply_auth, check_method, check_secret, Auth, Endpoint};
use crate::transport::{AttemptRequest, AttemptResult, Transport};
use relent::{Policy, Pool, PoolChange, Target};
use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

impl Core {
    /// The secret to send with `key` to `endpoint`: the key store's, or none needed when
    /// the endpoint takes no auth. The error names `add_key`, the method that adds one.
    pub(crate) fn secret_for(
        &self,
        key: relent::KeyId,
        endpoint: &Endpoint,
        add_key: &str,
    ) -> Result<Secret, String> {
        self.keys
            .lock()
            .ok()
            .and_then(|keys| keys.get(key).cloned())
            .or_else(|| matches!(endpoint.auth, Auth::None).then(|| Secret::new("")))
            .ok_or_else(|| format!("no secret for key {key}; add keys with {add_key}"))
    }
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

    /// The client's retry budget now (whole tokens, as last settled): shared by all its
    /// calls, and, with a fleet store that shares budgets, the fleet's balance as last
    /// read plus what this client did since.
    pub fn retry_budget(&self) -> u32 {
        self.core.shared.overload().budget.balance()
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
        collect(self.start(&request, options, Mode::Buffered).await?).await
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

    /// Checks what the call brings, then drives it to a committed response (the loop and
    /// its setup are shared with every adapter: [`crate::adapter`]).
    async fn start(
        &self,
        request: &Request,
        options: CallOptions,
        mode: Mode,
    ) -> Result<Streaming, CallError> {
        let started = Instant::now();
        let result = match self.http_adapter(request, &options) {
            Ok(adapter) => {
                run(
                    &self.core,
                    &self.settings,
                    &adapter,
                    &options,
                    mode,
                    started,
                )
                .await
            }
            Err(error) => Err(error),
        };
        record_failure(&result, started);
        result
    }

    /// The HTTP adapter for one call: the request checked and shaped for every target.
    fn http_adapter<'a>(
        &'a self,
        request: &'a Request,
        options: &'a CallOptions,
    ) -> Result<HttpAdapter<'a, T>, CallError> {
        let core = &*self.core;
        check_method(request.http_method()).map_err(CallError::config)?;
        let models = core.shared.models();
        let mut bodies = Vec::with_capacity(core.endpoints.len());
        for (model, endpoint) in models.iter().zip(&core.endpoints) {
            let body = request
                .shape(endpoint.api, model, endpoint.rewrite_model)
                .map_err(|e| {
                    CallError::config(format!(
                        "the request cannot be sent to target {model} ({}): {e}",
                        endpoint.api.name()
                    ))
                })?;
            bodies.push(body);
        }
        Ok(HttpAdapter {
            transport: &*self.transport,
            core,
            settings: &self.settings,
            bodies,
            models,
            method: request.http_method(),
            content_type: request.content_type_header(),
            call_headers: &options.headers,
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
            .secret_for(send.key, endpoint, "Client::add_key")?;
        let mut url = endpoint.url_for(model);
        let mut headers = Headers::new();
        if let Some(content_type) = self.content_type {
            headers.push("content-type", content_type);
        }
        push_attempt_headers(
            &mut headers,
            endpoint,
            self.settings,
            self.call_headers,
            send,
        );
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
