//! Building a [`Client`]: every configuration mistake is found here (or, for what a call
//! brings, before its first send), never retried as a network fault.

use crate::client::{Client, Core, Settings};
use crate::drive::{Progress, ProgressFn};
use crate::error::CallError;
use crate::options::HeaderNames;
use crate::secret::{Headers, KeyStore};
use crate::shared::SharedPool;
use crate::store::{spawn_link, Outbox, Store, StoreOptions};
use crate::target::{
    check_endpoint, check_header_name, check_header_value, check_secret, Auth, Endpoint,
};
use crate::transport::Transport;
use relent::{Policy, Pool, Target};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The body idle timeout unless set: the longest a response body may stay silent once its
/// headers are in.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds a [`Client`]: targets in fallback order, each with its [`Endpoint`], the
/// secrets, the policy and the driver's settings.
pub struct ClientBuilder<T: Transport> {
    transport: T,
    targets: Vec<(Target, Endpoint)>,
    keys: KeyStore,
    policy: Policy,
    seed: Option<u64>,
    settings: Settings,
    store: Option<(Arc<dyn Store>, StoreOptions)>,
}

impl<T: Transport> std::fmt::Debug for ClientBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("targets", &self.targets)
            .field("keys", &self.keys)
            .field("policy", &self.policy)
            .field("seed", &self.seed)
            .field("store", &self.store.as_ref().map(|(_, options)| options))
            .finish_non_exhaustive()
    }
}

impl<T: Transport> ClientBuilder<T> {
    pub(crate) fn new(transport: T) -> Self {
        ClientBuilder {
            transport,
            targets: Vec::new(),
            keys: KeyStore::new(),
            policy: Policy::default(),
            seed: None,
            settings: Settings {
                header_names: HeaderNames::default(),
                extra_headers: Headers::new(),
                progress: None,
                idle: DEFAULT_BODY_IDLE_TIMEOUT,
            },
            store: None,
        }
    }

    /// Shares key health with other processes through `store` (see [`crate::store`]):
    /// revocations, removals, restores and waits this client learns are written to it, and
    /// what the others wrote reaches this client's calls. A store that shares budgets
    /// (the Redis one does) also makes the retry budget the fleet's. Without it the pool
    /// and the budget stay in this process. [`ClientBuilder::build`] must then run inside a tokio runtime, which runs
    /// the store's link task.
    pub fn store(mut self, store: impl Store) -> Self {
        let options = self.store.take().map(|(_, o)| o).unwrap_or_default();
        self.store = Some((Arc::new(store), options));
        self
    }

    /// How the link to the store behaves (timeouts, re-read period); only with
    /// [`ClientBuilder::store`].
    pub fn store_options(mut self, options: StoreOptions) -> Self {
        if let Some((_, o)) = self.store.as_mut() {
            *o = options;
        }
        self
    }

    /// Adds a target (after those already added: the fallback chain runs in this order).
    pub fn target(mut self, target: Target, endpoint: Endpoint) -> Self {
        self.targets.push((target, endpoint));
        self
    }

    /// The secrets, by key id.
    pub fn keys(mut self, keys: KeyStore) -> Self {
        self.keys = keys;
        self
    }

    /// The policy (limits, timeouts, backoff).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Seeds the machines (each call takes the next seed) instead of OS entropy: for tests
    /// and replays only, since two clients with one seed send the same idempotency keys.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Uses other names for the idempotency and attempt headers.
    pub fn header_names(mut self, names: HeaderNames) -> Self {
        self.settings.header_names = names;
        self
    }

    /// Adds a header sent with every attempt to every target.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.extra_headers.push(name, value);
        self
    }

    /// Calls `f` with every decision, so a program can show why it waits.
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.settings.progress = Some(Arc::new(f) as ProgressFn);
        self
    }

    /// The longest a response body may stay silent once its headers are in (default
    /// [`DEFAULT_BODY_IDLE_TIMEOUT`]); the call's deadline bounds it too.
    pub fn body_idle_timeout(mut self, idle: Duration) -> Self {
        self.settings.idle = idle;
        self
    }

    /// Checks everything and builds the client.
    pub fn build(self) -> Result<Client<T>, CallError> {
        let config = CallError::config;
        self.transport.check().map_err(config)?;
        self.policy.validate().map_err(|e| config(e.to_string()))?;
        if self.policy.restart_after_commit {
            return Err(config(
                "restart_after_commit is not supported by this driver: a committed stream that fails is reported to the caller, who decides whether to call again".to_string(),
            ));
        }
        if self.settings.idle.is_zero() {
            return Err(config(
                "the body idle timeout must be greater than zero".to_string(),
            ));
        }
        check_headers(&self.settings.extra_headers)?;
        for name in [
            &self.settings.header_names.idempotency,
            &self.settings.header_names.attempt,
        ] {
            check_header_name(name).map_err(config)?;
        }
        let (targets, endpoints): (Vec<Target>, Vec<Endpoint>) = self.targets.into_iter().unzip();
        for (target, endpoint) in targets.iter().zip(&endpoints) {
            check_endpoint(endpoint, &target.model).map_err(|e| {
                config(format!(
                    "target {} ({}): {e}",
                    target.model,
                    target.provider.name()
                ))
            })?;
        }
        let pool = Pool::new(targets).map_err(|e| config(e.to_string()))?;
        // The retry budget and breakers every call of this client (and its clones) share.
        let overload = relent::Overload::new(&self.policy.overload, pool.targets().len());
        for (t, key) in pool.all_keys() {
            let unauthenticated = endpoints
                .get(t)
                .is_some_and(|e| matches!(e.auth, Auth::None));
            let Some(secret) = self.keys.get(key.spec.id) else {
                if unauthenticated {
                    // Nothing is sent for such a key: it needs no secret.
                    continue;
                }
                return Err(config(format!(
                    "no secret for key {} (\"{}\")",
                    key.spec.id, key.spec.label
                )));
            };
            check_secret(&key.spec.label, key.spec.id, secret).map_err(config)?;
        }
        let seed = match self.seed {
            Some(seed) => seed,
            None => entropy_seed(),
        };
        let epoch = Instant::now();
        let shared = match self.store {
            None => Arc::new(SharedPool::new(pool, overload)),
            Some((store, options)) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(config(
                        "a client with a store must be built inside a tokio runtime, which runs the store's link".to_string(),
                    ));
                }
                let outbox = Arc::new(Outbox::new(options, epoch));
                let shared = Arc::new(SharedPool::with_outbox(
                    pool,
                    overload,
                    self.policy.overload.budget,
                    outbox,
                ));
                spawn_link(&shared, store);
                shared
            }
        };
        Ok(Client {
            transport: Arc::new(self.transport),
            core: Arc::new(Core {
                shared,
                keys: Mutex::new(self.keys),
                endpoints,
                policy: self.policy,
                next_seed: AtomicU64::new(seed),
                epoch,
                epoch_unix_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_millis() as u64),
            }),
            settings: Arc::new(self.settings),
        })
    }
}

/// Checks headers: names are tokens, values carry no line break or control character.
/// The error never quotes a credential's value.
pub(crate) fn check_headers(headers: &Headers) -> Result<(), CallError> {
    for (name, value) in headers.iter() {
        check_header_name(name).map_err(CallError::config)?;
        check_header_value(name, value).map_err(CallError::config)?;
    }
    Ok(())
}

/// A seed from the operating system's entropy. Should that fail (no entropy source in
/// some sandboxes), the time and the process id, mixed, with a warning.
pub(crate) fn entropy_seed() -> u64 {
    match getrandom::u64() {
        Ok(seed) => seed,
        Err(error) => {
            tracing::warn!(%error, "relent: no OS entropy; seeding from the time and process id");
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            splitmix(nanos ^ (u64::from(std::process::id()) << 32))
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
