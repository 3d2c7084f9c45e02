//! The store seam: how a client shares key health with other processes.
//!
//! Without a store (the default) a client's pool lives in its process only: every call of
//! the client (and of its clones) shares it, nothing else does. With a [`Store`] (for example
//! the Redis one of the `relent-redis` crate), a background task of the client, the *link*,
//! carries what the pool learns out to the store and what the store knows back into the
//! pool, as pool changes, the way an outside change arrives:
//!
//! - **Out**: when the shared pool's state of a key gets worse (revoked, removed, cooling or
//!   exhausted until later) or comes back (a restore, a re-probe that worked), the key goes
//!   in an outbox and the link writes it as a [`KeyReport`]. Writing never holds up a call:
//!   a call only puts a key in the outbox.
//! - **In**: the link reads the store's [`KeyView`]s when the store says something changed
//!   ([`Store::changes`]), and at least every [`StoreOptions::reread_every`] in any case,
//!   and applies them to the shared pool, which wakes every running call.
//! - **Time**: no clock crosses a process boundary. Reports carry durations (how long a key
//!   must wait, how long ago something was seen) and views carry durations (how long a key
//!   still waits); the store turns them into its own time. A host whose clock is off by an
//!   hour reads and writes the same waits as any other.
//! - **Faults**: every store operation is bounded by [`StoreOptions::op_timeout`]. A store
//!   that fails or is slow leaves the client on its own pool (as without a store); what the
//!   outbox held stays there, and once the store answers again the link writes everything
//!   the pool knows (a *resync*), then reads.
//!
//! - **Budget**: with a store that shares budgets ([`Store::exchange_budget`]), the client's
//!   retry budget becomes the fleet's. Calls keep deciding from the client's local budget;
//!   the link reports what they spent and earned as monotone counters ([`BudgetReport`])
//!   whenever the budget changed and on every read, and the client adopts the fleet's
//!   balance the store answers, plus what its calls did since. A store that fails leaves
//!   the client on its local budget; the counters are reported once it answers again.
//!   Breakers stay per process.
//!
//! What goes to a store is key ids, waits and budget counters only: no secret, no label,
//! no request.

use crate::shared::SharedPool;
use relent::{BudgetPolicy, KeyId, KeyState, Pool, PoolChange, Time};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A boxed future a [`Store`] returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one process tells the others about one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyReport {
    /// The key.
    pub key: KeyId,
    /// What happened to it.
    pub kind: ReportKind,
    /// How long before the write it was seen. A store ignores a report seen before the
    /// key's last restore: the restore is newer news.
    pub seen_ago: Duration,
}

/// What happened to a key.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportKind {
    /// Rate limited: usable again after this long.
    CoolingFor(Duration),
    /// Out of credit or quota: usable again after this long.
    ExhaustedFor(Duration),
    /// Rejected by the provider: unusable until restored.
    Revoked,
    /// Usable again (a restore, or a re-probe that worked): lifts a revocation and waits.
    Restored,
    /// Taken out of the pool for good.
    Removed,
}

/// What the store knows of one key, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyView {
    /// The key.
    pub key: KeyId,
    /// Revoked by some process, and not restored since.
    pub revoked: bool,
    /// Removed by some process.
    pub removed: bool,
    /// How long the key still waits (the later of a cooldown and an exhaustion), if at all.
    pub wait: Option<Duration>,
    /// How many times the key was restored, as the store counts: when this grows, the key
    /// was restored by some process since the last read.
    pub restores: u64,
}

impl KeyView {
    /// A key the store knows nothing bad about.
    pub fn new(key: KeyId) -> Self {
        KeyView {
            key,
            revoked: false,
            removed: false,
            wait: None,
            restores: 0,
        }
    }
}

/// The result of a read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOutcome {
    /// The keys asked for, in any order (a key left out is one the store knows nothing of).
    pub keys: Vec<KeyView>,
    /// The store has forgotten what this process wrote (it restarted empty, or its data
    /// expired): the link writes everything its pool knows again.
    pub forgot_us: bool,
}

impl ReadOutcome {
    /// An outcome with these views.
    pub fn new(keys: Vec<KeyView>, forgot_us: bool) -> Self {
        ReadOutcome { keys, forgot_us }
    }
}

/// A store operation that did not succeed. The message never holds a secret (a store
/// implementation must redact credentials from it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// An error with this message (which must not hold a credential).
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

/// What one client tells a fleet store about its retry budget: everything it spent and
/// earned since it started, as two counters that only grow, and how much of them the
/// store last acknowledged.
///
/// Counters rather than deltas make a write idempotent: a store keeps, per client, the
/// counters it last applied and adds only what grew since, so a write that timed out and
/// is sent again is not counted twice. A store that has forgotten the client (it
/// restarted empty, or its record expired) applies what grew since the acknowledged
/// counters instead, so it neither recounts what it had applied before forgetting nor
/// loses what it had not.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetReport {
    /// This client's id in the store (random per client and process run).
    pub client: u64,
    /// Milli-tokens the client's calls spent on retries, ever.
    pub spent_milli: u64,
    /// Milli-tokens the client's calls earned with successes, ever.
    pub earned_milli: u64,
    /// `spent_milli` as of the last write the store answered.
    pub acked_spent_milli: u64,
    /// `earned_milli` as of the last write the store answered.
    pub acked_earned_milli: u64,
    /// The client's budget policy: the store's bucket holds at most its capacity and
    /// refills at its rate, in the store's time. Processes sharing a budget should share
    /// one policy; the writer's applies to its write.
    pub policy: BudgetPolicy,
}

impl BudgetReport {
    /// A report for client `client` with budget policy `policy` and all counters at zero.
    pub fn new(client: u64, policy: BudgetPolicy) -> Self {
        BudgetReport {
            client,
            spent_milli: 0,
            earned_milli: 0,
            acked_spent_milli: 0,
            acked_earned_milli: 0,
            policy,
        }
    }
}

/// What a fleet store answers a [`BudgetReport`]: the fleet's balance once the report is
/// applied and the bucket settled to the store's now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetView {
    /// Milli-tokens left in the fleet's budget. Negative: a debt (the fleet spent more than
    /// it had, each process on what it had not yet heard of), which the refill and
    /// earnings pay back before anyone retries again.
    pub milli: i64,
}

impl BudgetView {
    /// A view of this balance.
    pub fn new(milli: i64) -> Self {
        BudgetView { milli }
    }
}

/// A place several processes share key health through.
///
/// Implementations do the I/O only; the client's link decides what to write and when,
/// bounds every operation by [`StoreOptions::op_timeout`] and survives any error.
/// Writes must merge monotonically: a later wait wins over an earlier one, a revocation
/// stays until a restore, a report seen before the last restore is ignored.
pub trait Store: Send + Sync + 'static {
    /// Writes these reports (in order) and tells the other processes.
    fn write<'a>(&'a self, reports: &'a [KeyReport]) -> StoreFuture<'a, Result<(), StoreError>>;

    /// Reads what the store knows of these keys.
    fn read<'a>(&'a self, keys: &'a [KeyId]) -> StoreFuture<'a, Result<ReadOutcome, StoreError>>;

    /// Signalled when another process may have changed something (or when the store
    /// reconnected and may have missed news): the link reads soon after. A store without
    /// notifications returns a `Notify` that never fires; the periodic re-read still runs.
    fn changes(&self) -> Arc<Notify>;

    /// Applies a client's retry-budget counters to the fleet's shared budget and returns
    /// the fleet's balance, or `None` when this store does not share budgets (the default:
    /// each process then keeps its own budget, as without a store). The link calls it when
    /// the client's budget changed and on every read; calls never wait for it.
    fn exchange_budget<'a>(
        &'a self,
        report: &'a BudgetReport,
    ) -> StoreFuture<'a, Result<Option<BudgetView>, StoreError>> {
        let _ = report;
        Box::pin(async { Ok(None) })
    }
}

/// How a client's link to its [`Store`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// The longest one store operation may take before the link gives up on it and goes on
    /// with the local pool. Also the longest a client's first call waits for the first
    /// read. Default 200 ms.
    pub op_timeout: Duration,
    /// The link reads the store at least this often, even with no notification (the
    /// fallback for a missed one, and the retry period while the store is down).
    /// Default 1 s.
    pub reread_every: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            op_timeout: Duration::from_millis(200),
            reread_every: Duration::from_secs(1),
        }
    }
}

impl StoreOptions {
    /// The default options.
    pub fn new() -> Self {
        StoreOptions::default()
    }

    /// Sets [`StoreOptions::op_timeout`] (at least 1 ms).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets [`StoreOptions::reread_every`] (at least 10 ms).
    pub fn reread_every(mut self, every: Duration) -> Self {
        self.reread_every = every.max(Duration::from_millis(10));
        self
    }
}

/// One key's news waiting to be written: a restore (written first), then the worst state
/// learned since, with when it was first seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Pending {
    restored: bool,
    bad: Option<(KeyState, Instant)>,
}

/// What the shared pool hands its link: the outbox and the link's health.
pub(crate) struct Outbox {
    pending: Mutex<BTreeMap<KeyId, Pending>>,
    /// Wakes the link: there is something to write.
    wake: Notify,
    /// The link finished its first read (or gave up on it).
    first_read: AtomicBool,
    first_read_done: Notify,
    /// The last store operation succeeded.
    healthy: AtomicBool,
    /// The link has taken news from the outbox and not yet written it.
    writing: AtomicBool,
    /// The client's retry budget changed since the link last reported it.
    budget_changed: AtomicBool,
    pub(crate) options: StoreOptions,
    /// The client's epoch: `Time` values count from here.
    epoch: Instant,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("options", &self.options)
            .field("healthy", &self.healthy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Outbox {
    pub(crate) fn new(options: StoreOptions, epoch: Instant) -> Self {
        Outbox {
            pending: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            first_read: AtomicBool::new(false),
            first_read_done: Notify::new(),
            healthy: AtomicBool::new(false),
            writing: AtomicBool::new(false),
            budget_changed: AtomicBool::new(false),
            options,
            epoch,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<KeyId, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes what changed between two states of the shared pool (under its lock).
    pub(crate) fn note(&self, before: &Pool, after: &Pool) {
        let mut noted = false;
        let mut pending = self.lock();
        for (_, entry) in after.all_keys() {
            let old = before.state(entry.spec.id);
            let new = entry.state;
            if old == new {
                continue;
            }
            let slot = pending.entry(entry.spec.id).or_default();
            if worse(new, old) {
                slot.bad = Some(match slot.bad {
                    Some((state, at)) => (state.worse(new), at),
                    None => (new, Instant::now()),
                });
                noted = true;
            } else if new == KeyState::Ready && old != KeyState::Removed {
                // A restore: what was learned before it is older news.
                slot.restored = true;
                slot.bad = None;
                noted = true;
            }
        }
        drop(pending);
        if noted {
            self.wake.notify_one();
        }
    }

    /// Notes that a call spent or earned budget (under the shared budget's lock).
    pub(crate) fn note_budget(&self) {
        if !self.budget_changed.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    fn take(&self) -> BTreeMap<KeyId, Pending> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back what could not be written, under anything noted meanwhile.
    fn put_back(&self, taken: BTreeMap<KeyId, Pending>) {
        let mut pending = self.lock();
        for (key, old) in taken {
            let slot = pending.entry(key).or_default();
            if slot.restored {
                continue; // a newer restore makes the older news moot
            }
            slot.restored = old.restored;
            slot.bad = match (old.bad, slot.bad) {
                (Some((a, at)), Some((b, _))) => Some((a.worse(b), at)),
                (a, b) => a.or(b),
            };
        }
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty() && !self.budget_changed.load(Ordering::Acquire)
    }

    fn now(&self) -> Time {
        Time(self.epoch.elapsed().as_millis() as u64)
    }

    /// Waits (at most the op timeout) for the link's first read.
    pub(crate) async fn first_read(&self) {
        if self.first_read.load(Ordering::Acquire) {
            return;
        }
        let wait = self.first_read_done.notified();
        tokio::pin!(wait);
        wait.as_mut().enable();
        if self.first_read.load(Ordering::Acquire) {
            return;
        }
        let _ = tokio::time::timeout(self.options.op_timeout, wait).await;
    }

    fn mark_first_read(&self) {
        if !self.first_read.swap(true, Ordering::AcqRel) {
            self.first_read_done.notify_waiters();
        }
    }

    pub(crate) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Asks the link to write now; true once the outbox is empty and the store answered,
    /// false if that did not happen within `within`.
    pub(crate) async fn flush(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            if self.is_empty() && self.healthy() && !self.writing.load(Ordering::Acquire) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Whether `new` keeps a key out of use longer than `old`.
fn worse(new: KeyState, old: KeyState) -> bool {
    match (new.ready_at(), old.ready_at()) {
        (None, Some(_)) => true,
        (None, None) => new == KeyState::Removed && old != KeyState::Removed,
        (Some(a), Some(b)) => a > b,
        (Some(_), None) => false,
    }
}

/// The report for a state learned at `seen`, written at `now` (local times, same epoch).
/// `None` when there is nothing to say (a wait already over).
pub(crate) fn report_for(key: KeyId, state: KeyState, seen: Time, now: Time) -> Option<KeyReport> {
    let left = |until: Time| Duration::from_millis(until.since(now).0);
    let kind = match state {
        KeyState::Ready => return None,
        KeyState::Revoked => ReportKind::Revoked,
        KeyState::Removed => ReportKind::Removed,
        KeyState::CoolingDown(until) if until > now => ReportKind::CoolingFor(left(until)),
        KeyState::Exhausted(until) if until > now => ReportKind::ExhaustedFor(left(until)),
        KeyState::CoolingDown(_) | KeyState::Exhausted(_) => return None,
    };
    Some(KeyReport {
        key,
        kind,
        seen_ago: Duration::from_millis(now.since(seen).0),
    })
}

/// The pool changes that bring `pool` up to what the store knows (`view`), read at local
/// time `now`. `restored` says the key was restored elsewhere since the last read.
pub(crate) fn changes_for(
    pool: &Pool,
    view: &KeyView,
    restored: bool,
    now: Time,
) -> Vec<PoolChange> {
    let key = view.key;
    let mut state = pool.state(key);
    if state == KeyState::Removed {
        return Vec::new();
    }
    if view.removed {
        return vec![PoolChange::Removed { key }];
    }
    let mut changes = Vec::new();
    if restored && state != KeyState::Ready {
        changes.push(PoolChange::Restored { key });
        state = KeyState::Ready;
    }
    if view.revoked {
        if state != KeyState::Revoked {
            changes.push(PoolChange::MarkedBad { key, until: None });
        }
    } else if let Some(wait) = view.wait {
        let until = now + relent::Millis(wait.as_millis() as u64);
        // A wait the pool already has (give or take the read's own latency) is not news.
        let known = state.ready_at().is_none_or(|t| t + SLACK >= until);
        if !known {
            changes.push(PoolChange::MarkedBad {
                key,
                until: Some(until),
            });
        }
    }
    changes
}

/// How much later than a known wait a read one must be to count as news: reads of one
/// wait differ by the store's latency.
const SLACK: relent::Millis = relent::Millis(25);

/// Starts the link task for `shared` (in the current tokio runtime). It ends when the
/// client and all its clones are dropped.
pub(crate) fn spawn_link(shared: &Arc<SharedPool>, store: Arc<dyn Store>) {
    let weak = Arc::downgrade(shared);
    tokio::spawn(run_link(weak, store));
}

async fn run_link(weak: Weak<SharedPool>, store: Arc<dyn Store>) {
    let Some(outbox) = weak.upgrade().and_then(|s| s.outbox().cloned()) else {
        return;
    };
    let options = outbox.options.clone();
    let changes = store.changes();
    let mut tick = tokio::time::interval(options.reread_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut link = Link {
        store,
        outbox: outbox.clone(),
        restores: HashMap::new(),
        budget: BudgetLink {
            client: crate::builder::entropy_seed(),
            acked: (0, 0),
            shared: true,
        },
        // Nothing is known of the store yet: the first round writes everything and reads.
        resync: true,
        baseline: true,
    };
    let mut read_due = true;
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        link.round(&shared, read_due).await;
        drop(shared);
        read_due = tokio::select! {
            _ = outbox.wake.notified() => false,
            _ = changes.notified() => true,
            _ = tick.tick() => true,
        };
    }
}

/// The link's side of the shared retry budget.
struct BudgetLink {
    /// This client's id in the store.
    client: u64,
    /// The budget counters (spent, earned) the store last answered for.
    acked: (u64, u64),
    /// The store shares budgets (it has not answered `None`).
    shared: bool,
}

struct Link {
    store: Arc<dyn Store>,
    outbox: Arc<Outbox>,
    /// The restore count of each key at the last read.
    restores: HashMap<KeyId, u64>,
    budget: BudgetLink,
    /// The next successful round writes all the pool knows (the store was down, or forgot).
    resync: bool,
    /// The next read sets the restore counts without applying them.
    baseline: bool,
}

impl Link {
    async fn round(&mut self, shared: &SharedPool, read_due: bool) {
        // Write: the outbox, or (after a fault) everything the pool knows as well.
        self.outbox.writing.store(true, Ordering::Release);
        let written = self.write(shared).await;
        self.outbox.writing.store(false, Ordering::Release);
        if !written {
            self.fault();
            return;
        }
        let budget_due = self.outbox.budget_changed.load(Ordering::Acquire);
        if budget_due || read_due || self.resync {
            self.outbox.writing.store(true, Ordering::Release);
            let exchanged = self.exchange_budget(shared).await;
            self.outbox.writing.store(false, Ordering::Release);
            if !exchanged {
                self.fault();
                return;
            }
        }
        if read_due || self.resync {
            self.read(shared).await;
        }
    }

    /// Reports the client's budget counters and adopts the fleet's balance; false if the
    /// store failed (the client goes on with its own budget, and the counters are sent
    /// again next time).
    async fn exchange_budget(&mut self, shared: &SharedPool) -> bool {
        // Taken before the counters are read: a change noted meanwhile sets it again.
        self.outbox.budget_changed.store(false, Ordering::Release);
        if !self.budget.shared {
            return true;
        }
        let counters = shared.budget_counters();
        let report = BudgetReport {
            client: self.budget.client,
            spent_milli: counters.0,
            earned_milli: counters.1,
            acked_spent_milli: self.budget.acked.0,
            acked_earned_milli: self.budget.acked.1,
            policy: shared.budget_policy(),
        };
        let timeout = self.outbox.options.op_timeout;
        match tokio::time::timeout(timeout, self.store.exchange_budget(&report)).await {
            Ok(Ok(Some(view))) => {
                self.budget.acked = counters;
                shared.adopt_budget(counters, view.milli, self.outbox.now());
                self.outbox.healthy.store(true, Ordering::Relaxed);
                true
            }
            Ok(Ok(None)) => {
                self.budget.shared = false;
                true
            }
            _ => {
                self.outbox.budget_changed.store(true, Ordering::Release);
                false
            }
        }
    }

    /// Writes the outbox (and, resyncing, all the pool knows); false if the store failed.
    async fn write(&mut self, shared: &SharedPool) -> bool {
        let timeout = self.outbox.options.op_timeout;
        let taken = self.outbox.take();
        let now = self.outbox.now();
        let seen_at =
            |at: Instant| Time(at.saturating_duration_since(self.outbox.epoch).as_millis() as u64);
        let mut reports = Vec::new();
        for (key, pending) in &taken {
            if pending.restored {
                reports.push(KeyReport {
                    key: *key,
                    kind: ReportKind::Restored,
                    seen_ago: Duration::ZERO,
                });
            }
            if let Some((state, at)) = pending.bad {
                reports.extend(report_for(*key, state, seen_at(at), now));
            }
        }
        if self.resync {
            let pool = shared.snapshot();
            for (_, entry) in pool.all_keys() {
                let id = entry.spec.id;
                if taken.get(&id).is_some_and(|p| p.bad.is_some()) {
                    continue;
                }
                reports.extend(report_for(id, entry.state, now, now));
            }
        }
        if !reports.is_empty() {
            let ok = matches!(
                tokio::time::timeout(timeout, self.store.write(&reports)).await,
                Ok(Ok(()))
            );
            if !ok {
                self.outbox.put_back(taken);
                return false;
            }
            self.outbox.healthy.store(true, Ordering::Relaxed);
        }
        true
    }

    /// Reads what the store knows and applies it to the pool.
    async fn read(&mut self, shared: &SharedPool) {
        let timeout = self.outbox.options.op_timeout;
        let keys: Vec<KeyId> = shared
            .snapshot()
            .all_keys()
            .map(|(_, k)| k.spec.id)
            .collect();
        let outcome = match tokio::time::timeout(timeout, self.store.read(&keys)).await {
            Ok(Ok(outcome)) => outcome,
            _ => {
                self.fault();
                return;
            }
        };
        self.outbox.healthy.store(true, Ordering::Relaxed);
        self.resync = false;
        if outcome.forgot_us {
            // Write everything again on the next round, which comes at once.
            self.resync = true;
            self.baseline = true;
            self.outbox.wake.notify_one();
        }
        let baseline = std::mem::take(&mut self.baseline);
        let now = self.outbox.now();
        shared.absorb(|pool| {
            let mut changes = Vec::new();
            for view in &outcome.keys {
                let seen = self.restores.insert(view.key, view.restores);
                let restored = !baseline && seen.is_some_and(|s| view.restores > s);
                changes.extend(changes_for(pool, view, restored, now));
            }
            changes
        });
        self.outbox.mark_first_read();
    }

    fn fault(&mut self) {
        if self.outbox.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "relent: the key-health store did not answer; going on with the local pool"
            );
        }
        self.resync = true;
        self.baseline = true;
        // A client's first call waits for the first read no longer than one timeout.
        self.outbox.mark_first_read();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relent::{KeySpec, Provider, Target};

    fn pool() -> Pool {
        Pool::new(vec![Target::new(
            Provider::Openai,
            "gpt-4o",
            vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")],
        )])
        .unwrap()
    }

    #[test]
    fn a_wait_crosses_hosts_as_a_duration_whatever_their_clocks() {
        // Host A's clock reads an hour past its epoch; host B's only 5 ms.
        let a_now = Time(3_600_000);
        let b_now = Time(5);
        let report = report_for(
            KeyId(1),
            KeyState::CoolingDown(a_now + relent::Millis(3_000)),
            a_now,
            a_now,
        )
        .unwrap();
        assert_eq!(report.kind, ReportKind::CoolingFor(Duration::from_secs(3)));
        // The store hands B the same three seconds; B waits until its own now + 3 s.
        let mut view = KeyView::new(KeyId(1));
        view.wait = Some(Duration::from_secs(3));
        let changes = changes_for(&pool(), &view, false, b_now);
        assert_eq!(
            changes,
            [PoolChange::MarkedBad {
                key: KeyId(1),
                until: Some(Time(3_005)),
            }]
        );
    }

    #[test]
    fn a_restore_elsewhere_lifts_a_revocation_and_a_known_wait_is_not_news() {
        let mut pool = pool();
        pool.apply(&PoolChange::MarkedBad {
            key: KeyId(1),
            until: None,
        })
        .unwrap();
        let view = KeyView::new(KeyId(1));
        assert!(changes_for(&pool, &view, false, Time(0)).is_empty());
        assert_eq!(
            changes_for(&pool, &view, true, Time(0)),
            [PoolChange::Restored { key: KeyId(1) }]
        );
        let mut pool = self::pool();
        pool.apply(&PoolChange::MarkedBad {
            key: KeyId(2),
            until: Some(Time(10_000)),
        })
        .unwrap();
        let mut view = KeyView::new(KeyId(2));
        view.wait = Some(Duration::from_millis(9_990)); // read at 20 ms: until 10_010
        assert!(changes_for(&pool, &view, false, Time(20)).is_empty());
        view.wait = Some(Duration::from_millis(12_000));
        assert_eq!(changes_for(&pool, &view, false, Time(20)).len(), 1);
    }

    #[test]
    fn the_outbox_keeps_the_worst_news_and_a_restore_clears_older_news() {
        let outbox = Outbox::new(StoreOptions::default(), Instant::now());
        let before = pool();
        let mut after = before.clone();
        after
            .apply(&PoolChange::MarkedBad {
                key: KeyId(1),
                until: Some(Time(5_000)),
            })
            .unwrap();
        outbox.note(&before, &after);
        let mut revoked = after.clone();
        revoked
            .apply(&PoolChange::MarkedBad {
                key: KeyId(1),
                until: None,
            })
            .unwrap();
        outbox.note(&after, &revoked);
        let taken = outbox.take();
        assert_eq!(taken[&KeyId(1)].bad.map(|b| b.0), Some(KeyState::Revoked));
        assert!(!taken[&KeyId(1)].restored);
        // Put back under a restore noted meanwhile: the restore wins.
        let mut restored = revoked.clone();
        restored
            .apply(&PoolChange::Restored { key: KeyId(1) })
            .unwrap();
        outbox.note(&revoked, &restored);
        outbox.put_back(taken);
        let again = outbox.take();
        assert!(again[&KeyId(1)].restored);
        assert_eq!(again[&KeyId(1)].bad, None);
    }
}
