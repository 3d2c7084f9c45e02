#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! relent-redis: a Redis [`Store`] for relent-tokio, so that a fleet of processes (workers,
//! pods) sharing API keys shares what they learn about them, and one retry budget.
//!
//! A key one process sees revoked is not sent by the others; a rate-limit cooldown one
//! process is told about is honoured by all. The driver keeps its own pool in every
//! process and stays correct without Redis: the store only carries news between pools.
//! `docs/FLEET.md` in the repository describes running a fleet; in short:
//!
//! - **What is stored**: one hash per key id under `relent:{<namespace>}:key:<id>`, with
//!   the fields `revoked`, `removed`, `restored_at` (Redis server time, ms), `cooling` and
//!   `exhausted` (the wait's end, Redis server time, ms) and `restores` (a count). No
//!   secret, no label, no request: key ids and times only. Every hash has a TTL (the wait's
//!   end, or [`RedisStoreConfig::memory`] for a revocation, removal or restore).
//! - **Merges** are Lua scripts, so they are atomic and monotone: a later wait wins over an
//!   earlier one, a revocation stays until a restore, and news seen before the key's last
//!   restore is dropped.
//! - **Time**: waits cross hosts as durations and are stored in Redis server time
//!   (`TIME`), so a host whose clock is off neither shortens nor lengthens them.
//! - **News** reaches the other processes at once through pub/sub on
//!   `relent:{<namespace>}:changed`; each process also re-reads at a bounded period.
//! - **Faults**: the driver bounds each operation by its store timeout and goes on with
//!   its local pool while Redis is down or slow; when Redis answers again it writes what it
//!   learned meanwhile. Each process keeps a marker key (`relent:{<namespace>}:alive:<id>`)
//!   whose disappearance tells it that Redis forgot its news (a restart without
//!   persistence), so it writes it again.
//! - **The retry budget** is shared too: `relent:{<namespace>}:budget` holds the fleet's
//!   token bucket (milli-tokens, settled in Redis server time with the writers' policy),
//!   and `relent:{<namespace>}:budget:client:<id>` the counters last applied for each
//!   client, so a report sent twice counts once. Each process decides from its local copy
//!   and adopts the fleet's balance at each exchange; the overspend is bounded by what the
//!   processes spend within one propagation delay, and is kept as a debt (down to minus
//!   the capacity) that the refill pays back (`docs/FLEET.md`). Breakers stay per process.
//! - **Credentials** (an ACL user and password, TLS with `rediss://` and the `tls`
//!   feature) come in the URL; the URL's password never appears in `Debug` output or in
//!   errors.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use relent_redis::{RedisStore, RedisStoreConfig};
//! let store = RedisStore::new(RedisStoreConfig::new("redis://127.0.0.1:6379", "prod-eu"))?;
//! // relent_tokio::Client::builder(transport).store(store) ... .build()?
//! # Ok(()) }
//! ```

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use relent::KeyId;
use relent_tokio::store::{
    BudgetReport, BudgetView, KeyReport, KeyView, ReadOutcome, ReportKind, Store, StoreError,
    StoreFuture,
};
use relent_tokio::CancellationToken;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How to reach Redis and where in it to keep a fleet's key health.
#[derive(Clone)]
pub struct RedisStoreConfig {
    url: String,
    namespace: String,
    memory: Duration,
    connect_timeout: Duration,
}

impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &relent_tokio::redact_url(&self.url))
            .field("namespace", &self.namespace)
            .field("memory", &self.memory)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl RedisStoreConfig {
    /// Redis at `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS
    /// with the `tls` feature), keys under `namespace` (one per deployment: processes
    /// share key health only within a namespace; letters, digits, `.`, `_`, `-`).
    pub fn new(url: impl Into<String>, namespace: impl Into<String>) -> Self {
        RedisStoreConfig {
            url: url.into(),
            namespace: namespace.into(),
            memory: Duration::from_secs(24 * 3600),
            connect_timeout: Duration::from_millis(500),
        }
    }

    /// How long Redis remembers a revocation, a removal or a restore after it was last
    /// written (default 24 h). Processes that knew it keep it in their own pools.
    pub fn memory(mut self, memory: Duration) -> Self {
        self.memory = memory.max(Duration::from_secs(1));
        self
    }

    /// The longest one attempt to connect may take (default 500 ms). The driver's store
    /// timeout bounds every operation in any case.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }
}

/// A configuration that cannot work. Its message never holds the URL's password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Key health in Redis, shared by every process that uses the same namespace. Give it to
/// [`relent_tokio::ClientBuilder::store`].
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// Cleared while an operation runs: an operation that failed, or was dropped by the
    /// driver's timeout, leaves it cleared, and the next one starts on a new connection.
    clean: std::sync::atomic::AtomicBool,
    keys: Keys,
    memory_ms: u64,
    connect_timeout: Duration,
    /// Redacted out of error messages.
    password: Option<String>,
    changes: Arc<Notify>,
    stop: CancellationToken,
}

/// The names this store uses in Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Keys {
    /// `relent:{<namespace>}`: the braces make every name of a namespace hash to one slot,
    /// so the scripts also run on a Redis Cluster.
    prefix: String,
    /// This process's marker.
    alive: String,
}

impl Keys {
    fn key(&self, id: KeyId) -> String {
        format!("{}:key:{}", self.prefix, id.0)
    }

    fn channel(&self) -> String {
        format!("{}:changed", self.prefix)
    }

    fn budget(&self) -> String {
        format!("{}:budget", self.prefix)
    }

    fn budget_client(&self, client: u64) -> String {
        format!("{}:budget:client:{client:016x}", self.prefix)
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.inner.client.get_connection_info();
        f.debug_struct("RedisStore")
            .field("addr", &info.addr.to_string())
            .field("user", &info.redis.username)
            .field(
                "password",
                &info.redis.password.as_ref().map(|_| "[redacted]"),
            )
            .field("prefix", &self.inner.keys.prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        self.inner.stop.cancel();
    }
}

/// How long the marker of a process lives without a read refreshing it.
const ALIVE_MS: u64 = 60_000;

/// How long a client's budget record lives without a write refreshing it (a live client
/// writes at least every re-read period; a record Redis forgot costs nothing, see
/// [`BudgetReport`]).
const BUDGET_CLIENT_MS: u64 = 60_000;

impl RedisStore {
    /// A store for `config`. Connects lazily: Redis may be down now (the driver goes on
    /// with its local pool and writes its news once Redis answers). Must be called inside
    /// a tokio runtime, which runs the pub/sub listener.
    pub fn new(config: RedisStoreConfig) -> Result<Self, ConfigError> {
        let ns = &config.namespace;
        if ns.is_empty()
            || ns.len() > 64
            || !ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(ConfigError(format!(
                "namespace {ns:?}: use 1 to 64 letters, digits, '.', '_' or '-'"
            )));
        }
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            ConfigError(format!(
                "redis URL {}: {}",
                relent_tokio::redact_url(&config.url),
                scrub(&e.to_string(), password_of(&config.url).as_deref())
            ))
        })?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            ConfigError("RedisStore::new must be called inside a tokio runtime".into())
        })?;
        let instance = getrandom::u64().unwrap_or_else(|_| {
            u64::from(std::process::id()) << 32 | u64::from(std::process::id())
        });
        let prefix = format!("relent:{{{ns}}}");
        let inner = Arc::new(Inner {
            password: client.get_connection_info().redis.password.clone(),
            client,
            connection: tokio::sync::Mutex::new(None),
            clean: std::sync::atomic::AtomicBool::new(true),
            keys: Keys {
                alive: format!("{prefix}:alive:{instance:016x}"),
                prefix,
            },
            memory_ms: config.memory.as_millis() as u64,
            connect_timeout: config.connect_timeout,
            changes: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
        });
        handle.spawn(listen(Arc::downgrade(&inner)));
        Ok(RedisStore { inner })
    }

    /// Redis's own clock (`TIME`), in ms since the Unix epoch: the clock every stored time
    /// is in.
    pub async fn server_time_ms(&self) -> Result<u64, StoreError> {
        let mut con = self.inner.connection().await?;
        let (secs, micros): (u64, u64) = redis::cmd("TIME")
            .query_async(&mut con)
            .await
            .map_err(|e| self.inner.error(e))?;
        self.inner.done();
        Ok(secs * 1000 + micros / 1000)
    }

    /// The Redis name of the hash that holds key `id`'s health.
    pub fn key_name(&self, id: KeyId) -> String {
        self.inner.keys.key(id)
    }

    /// The Redis name of the hash that holds the fleet's retry budget (fields `milli`,
    /// `as_of`, and the counters `spent` and `earned`, all in milli-tokens or Redis ms).
    pub fn budget_key_name(&self) -> String {
        self.inner.keys.budget()
    }
}

impl Inner {
    /// The connection, made (once, and again after it was lost) on demand.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.connection.lock().await;
        if !self.clean.swap(false, std::sync::atomic::Ordering::AcqRel) {
            *slot = None;
        }
        if let Some(con) = slot.as_ref() {
            return Ok(con.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(self.connect_timeout)
            .set_number_of_retries(1)
            .set_max_delay(200);
        let con = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| self.error(e))?;
        *slot = Some(con.clone());
        Ok(con)
    }

    /// Marks the last operation as finished well.
    fn done(&self) {
        self.clean.store(true, std::sync::atomic::Ordering::Release);
    }

    fn error(&self, e: redis::RedisError) -> StoreError {
        StoreError::new(format!(
            "redis: {}",
            scrub(&e.to_string(), self.password.as_deref())
        ))
    }
}

/// The password of a URL, if any (only to scrub it from messages).
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let user = &authority[..authority.rfind('@')?];
    Some(user.split_once(':').map_or(user, |(_, p)| p).to_string()).filter(|p| !p.is_empty())
}

fn scrub(message: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => message.replace(p, "[redacted]"),
        _ => message.to_string(),
    }
}

/// Merges reports. KEYS: one hash per report. ARGV: the channel, the memory TTL (ms), then
/// per report its kind, its wait (ms) and how long ago it was seen (ms). Returns how many
/// reports changed something; publishes on the channel when any did.
const WRITE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local channel = ARGV[1]
local memory = tonumber(ARGV[2])
local changed = 0
for i, key in ipairs(KEYS) do
  local kind = ARGV[3 * i]
  local wait = tonumber(ARGV[3 * i + 1])
  local seen = now - tonumber(ARGV[3 * i + 2])
  local restored_at = tonumber(redis.call('HGET', key, 'restored_at') or '0')
  local hold = 0
  if kind == 'restored' then
    redis.call('HDEL', key, 'revoked', 'cooling', 'exhausted')
    redis.call('HINCRBY', key, 'restores', 1)
    redis.call('HSET', key, 'restored_at', math.max(now, restored_at + 1))
    changed = changed + 1
    hold = memory
  elseif seen < restored_at then
    -- Seen before the key's last restore: older news.
  elseif kind == 'revoked' or kind == 'removed' then
    changed = changed + redis.call('HSETNX', key, kind, now)
    hold = memory
  elseif kind == 'cooling' or kind == 'exhausted' then
    local untl = now + wait
    local current = tonumber(redis.call('HGET', key, kind) or '0')
    if untl > current then
      redis.call('HSET', key, kind, untl)
      changed = changed + 1
    end
    hold = untl - now
  end
  if hold > 0 and redis.call('PTTL', key) < hold then
    redis.call('PEXPIRE', key, hold)
  end
end
if changed > 0 then
  redis.call('PUBLISH', channel, changed)
end
return changed
"#;

/// Reads keys. KEYS: one hash per key, then this process's marker. ARGV: the marker's TTL
/// (ms). Returns whether the marker was there, then per key: revoked, removed (0 or 1),
/// the wait left (ms, 0 for none), the restore count.
const READ: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS - 1
local marker = KEYS[n + 1]
local out = { redis.call('EXISTS', marker) }
redis.call('SET', marker, now, 'PX', tonumber(ARGV[1]))
for i = 1, n do
  local v = redis.call('HMGET', KEYS[i], 'revoked', 'removed', 'cooling', 'exhausted', 'restores')
  local wait = 0
  for j = 3, 4 do
    if v[j] then
      local left = tonumber(v[j]) - now
      if left > wait then wait = left end
    end
  end
  out[#out + 1] = v[1] and 1 or 0
  out[#out + 1] = v[2] and 1 or 0
  out[#out + 1] = wait
  out[#out + 1] = tonumber(v[5] or '0')
end
return out
"#;

/// Applies a client's budget counters to the fleet's retry budget, a token bucket in
/// milli-tokens settled in Redis server time. KEYS: the budget hash, the client's record.
/// ARGV: capacity (milli-tokens), refill (milli-tokens per ms, which is tokens per
/// second), the client's spent and earned counters, the acknowledged ones, the budget's
/// TTL (ms), the record's TTL (ms), the channel. Returns the balance (milli-tokens, at
/// least minus the capacity: a debt of what processes spent before hearing that others
/// had, paid back by the refill and earnings); publishes on the channel when the fleet
/// spent more.
///
/// A missing budget is a full one (as a fresh process's is). A missing record (a new
/// client, or one Redis forgot) counts from the acknowledged counters. Only growth counts,
/// so a write sent twice is applied once.
const BUDGET: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'milli', 'as_of')
local milli = tonumber(b[1] or ARGV[1])
local as_of = tonumber(b[2] or now)
if now > as_of then
  milli = milli + (now - as_of) * rate
  as_of = now
end
if milli > cap then milli = cap end
local c = redis.call('HMGET', KEYS[2], 'spent', 'earned')
local last_spent = tonumber(c[1] or ARGV[5])
local last_earned = tonumber(c[2] or ARGV[6])
local spent = tonumber(ARGV[3])
local earned = tonumber(ARGV[4])
local dspent = math.max(0, spent - last_spent)
local dearned = math.max(0, earned - last_earned)
milli = milli + dearned - dspent
if milli > cap then milli = cap end
if milli < -cap then milli = -cap end
local function int(x) return string.format('%.0f', x) end
redis.call('HSET', KEYS[1], 'milli', int(milli), 'as_of', int(as_of))
if dspent > 0 then redis.call('HINCRBY', KEYS[1], 'spent', int(dspent)) end
if dearned > 0 then redis.call('HINCRBY', KEYS[1], 'earned', int(dearned)) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7]))
redis.call('HSET', KEYS[2], 'spent', int(math.max(spent, last_spent)),
  'earned', int(math.max(earned, last_earned)))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[8]))
if dspent > 0 then
  redis.call('PUBLISH', ARGV[9], 'budget')
end
return milli
"#;

struct Scripts {
    write: redis::Script,
    read: redis::Script,
    budget: redis::Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        write: redis::Script::new(WRITE),
        read: redis::Script::new(READ),
        budget: redis::Script::new(BUDGET),
    })
}

fn kind_args(kind: ReportKind) -> (&'static str, u64) {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2);
    match kind {
        ReportKind::CoolingFor(d) => ("cooling", ms(d)),
        ReportKind::ExhaustedFor(d) => ("exhausted", ms(d)),
        ReportKind::Revoked => ("revoked", 0),
        ReportKind::Restored => ("restored", 0),
        ReportKind::Removed => ("removed", 0),
        // A kind this store does not know yet is not written.
        _ => ("unknown", 0),
    }
}

impl Store for RedisStore {
    fn write<'a>(&'a self, reports: &'a [KeyReport]) -> StoreFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let mut con = inner.connection().await?;
            let mut invocation = scripts().write.prepare_invoke();
            invocation.arg(inner.keys.channel()).arg(inner.memory_ms);
            for report in reports {
                let (kind, wait) = kind_args(report.kind);
                invocation
                    .key(inner.keys.key(report.key))
                    .arg(kind)
                    .arg(wait)
                    .arg(u64::try_from(report.seen_ago.as_millis()).unwrap_or(u64::MAX / 2));
            }
            let _changed: u64 = invocation
                .invoke_async(&mut con)
                .await
                .map_err(|e| inner.error(e))?;
            inner.done();
            Ok(())
        })
    }

    fn read<'a>(&'a self, keys: &'a [KeyId]) -> StoreFuture<'a, Result<ReadOutcome, StoreError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let mut con = inner.connection().await?;
            let mut invocation = scripts().read.prepare_invoke();
            for key in keys {
                invocation.key(inner.keys.key(*key));
            }
            invocation.key(&inner.keys.alive).arg(ALIVE_MS);
            let values: Vec<i64> = invocation
                .invoke_async(&mut con)
                .await
                .map_err(|e| inner.error(e))?;
            let Some((&alive, rest)) = values.split_first() else {
                return Err(StoreError::new("redis: an empty answer to a read"));
            };
            if rest.len() != keys.len() * 4 {
                return Err(StoreError::new("redis: a read answered for other keys"));
            }
            inner.done();
            let views = keys
                .iter()
                .zip(rest.chunks(4))
                .map(|(key, v)| {
                    let mut view = KeyView::new(*key);
                    view.revoked = v[0] == 1;
                    view.removed = v[1] == 1;
                    view.wait = (v[2] > 0).then(|| Duration::from_millis(v[2] as u64));
                    view.restores = v[3].max(0) as u64;
                    view
                })
                .collect();
            Ok(ReadOutcome::new(views, alive == 0))
        })
    }

    fn changes(&self) -> Arc<Notify> {
        self.inner.changes.clone()
    }

    fn exchange_budget<'a>(
        &'a self,
        report: &'a BudgetReport,
    ) -> StoreFuture<'a, Result<Option<BudgetView>, StoreError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let mut con = inner.connection().await?;
            let policy = &report.policy;
            let milli: i64 = scripts()
                .budget
                .key(inner.keys.budget())
                .key(inner.keys.budget_client(report.client))
                .arg(u64::from(policy.capacity) * 1_000)
                .arg(policy.refill_per_sec)
                .arg(report.spent_milli)
                .arg(report.earned_milli)
                .arg(report.acked_spent_milli)
                .arg(report.acked_earned_milli)
                .arg(inner.memory_ms)
                .arg(BUDGET_CLIENT_MS)
                .arg(inner.keys.channel())
                .invoke_async(&mut con)
                .await
                .map_err(|e| inner.error(e))?;
            inner.done();
            Ok(Some(BudgetView::new(milli)))
        })
    }
}

/// Listens on the namespace's channel and signals every message; after a lost connection
/// (Redis restarted, say) it signals too, since news may have been missed, and reconnects.
async fn listen(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let stop = strong.stop.clone();
        let changes = strong.changes.clone();
        let client = strong.client.clone();
        let channel = strong.keys.channel();
        let timeout = strong.connect_timeout;
        drop(strong);
        let session = async {
            let connect = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            if let Ok(Ok(pubsub)) = tokio::time::timeout(timeout, connect).await {
                // Subscribed: anything missed before now is caught by a read.
                changes.notify_one();
                let mut messages = pubsub.into_on_message();
                while messages.next().await.is_some() {
                    changes.notify_one();
                }
                changes.notify_one();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = session => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_password_is_found_and_scrubbed() {
        let url = "redis://fleet:s3cr3t-pw@10.0.0.5:6380/2";
        assert_eq!(password_of(url).as_deref(), Some("s3cr3t-pw"));
        assert_eq!(password_of("redis://:pw@h/0").as_deref(), Some("pw"));
        assert_eq!(password_of("redis://h:6379"), None);
        assert_eq!(
            scrub("auth failed for s3cr3t-pw", Some("s3cr3t-pw")),
            "auth failed for [redacted]"
        );
        let config = RedisStoreConfig::new(url, "prod");
        assert!(!format!("{config:?}").contains("s3cr3t-pw"));
    }

    #[tokio::test]
    async fn a_namespace_that_would_break_the_key_layout_is_refused() {
        for ns in ["", "a}b", "a:b", "with space", &"x".repeat(65)] {
            let error = RedisStore::new(RedisStoreConfig::new("redis://127.0.0.1:1", ns))
                .err()
                .unwrap_or_else(|| panic!("{ns:?} was accepted"));
            assert!(error.to_string().contains("namespace"), "{error}");
        }
        let store = RedisStore::new(RedisStoreConfig::new(
            "redis://:pw-123@127.0.0.1:1",
            "ok.ns-1_",
        ))
        .unwrap();
        assert_eq!(store.key_name(KeyId(7)), "relent:{ok.ns-1_}:key:7");
        assert!(!format!("{store:?}").contains("pw-123"));
    }
}
