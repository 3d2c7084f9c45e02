//! The fleet family (issue #19): several processes, each its own client with its own pool
//! and retry budget, sharing the same keys, with or without a shared key-health store.
//!
//! A world has [`PROCESSES`] processes and [`KEYS`] keys of one target. Calls arrive over
//! [`SPAN_MS`] at random times, each in a random process. The first key (the one every
//! process sends with first: relent's default selection is fill-first) is rejected from a
//! time in the middle of the run on; the second key, where traffic goes next, is rate limited
//! (429 with `retry-after`) for a while some seconds later.
//!
//! Calls of one process share its pool and overload state the way the tokio driver's
//! `SharedPool` does: before each decision a call merges what it learned into the process's
//! pool ([`relent::Pool::merge_call`]) and takes back what the others learned as pool
//! changes; a change wakes the process's sleeping calls.
//!
//! The store is modelled on `crates/relent-tokio/src/store.rs` (the link) and `relent-redis`
//! (the merges), in virtual time ([`StoreModel`]):
//!
//! - **Out**: when a process's pool gets worse for a key (revoked, cooling or exhausted until
//!   later), the key goes in the process's outbox; the link writes it, landing after
//!   `write_ms`. The store keeps per key: revoked (until a restore), and the latest wait's
//!   end; a wait lands `write_ms` late (it travels as a duration).
//! - **In**: a write that lands is published; every process reads the store `pubsub_ms`
//!   later, the read landing `read_ms` after that, and at least every `reread_ms` (each
//!   process's tick has its own phase). A read applies what the pool does not know yet as
//!   pool changes (`changes_for` of store.rs): a revocation as an outside `MarkedBad` with no
//!   end, which the process never re-probes; a wait 25 ms or more past the one the pool has.
//!   What a read brings in is not written back.
//! - **Outage**: an operation that lands while the store is down fails; the outbox keeps
//!   its news and the link owes a resync. The first tick that finds the store up again
//!   writes everything the process's pool knows (revocations and running waits), then reads.
//!
//! Not modelled (nothing in these worlds exercises it): restores and removals (no key is
//! re-probed within the run: `revoked_reprobe_after_ms` is an hour), a new client's first
//! read (every process starts at 0 with an empty store), the link doing one round at a time
//! (here writes and reads overlap), operation timeouts (an operation in an outage fails at
//! once), and the pub/sub listener's reconnection (a read is always due at the next tick).

use super::caller::unit;
use super::play::is_success;
use crate::respond::{Reply, WALL_EPOCH_UNIX_MS};
use crate::schedule::{Fault, FaultKind, FaultScope, HintFormat, Schedule};
use crate::server::Server;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use relent::{
    Action, KeyId, KeySpec, KeyState, Overload, Policy, Pool, PoolChange, Provider, RetryMachine,
    State, Target, Time,
};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write;

/// Processes in a fleet world.
pub const PROCESSES: usize = 8;
/// Keys the processes share.
pub const KEYS: u32 = 4;
/// Calls per world, fleet-wide.
pub const CALLS: usize = 240;
/// The calls arrive over this long.
pub const SPAN_MS: u64 = 60_000;
/// Every response takes this long.
pub const LATENCY_MS: u64 = 300;

/// The store's timing, in virtual milliseconds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreModel {
    /// A write lands this long after the news is noted.
    pub write_ms: u64,
    /// The change notice reaches every process this long after a write lands.
    pub pubsub_ms: u64,
    /// A read lands this long after it starts.
    pub read_ms: u64,
    /// Every process reads at least this often (`StoreOptions::reread_every`, 1 s).
    pub reread_ms: u64,
}

impl Default for StoreModel {
    /// A Redis one network round trip away: 1 ms per operation and for pub/sub delivery
    /// (`docs/BENCHMARKS.md` measures about 0.2 ms per operation on loopback), re-read 1 s.
    fn default() -> Self {
        StoreModel {
            write_ms: 1,
            pubsub_ms: 1,
            read_ms: 1,
            reread_ms: 1_000,
        }
    }
}

/// How the processes share what they learn.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// No store: each process learns alone.
    Alone,
    /// The store, with pub/sub.
    Store,
    /// The store with pub/sub lost: news arrives by the periodic re-read only.
    RereadOnly,
    /// The store, down during the world's outage window.
    Outage,
}

impl Sharing {
    /// Every mode, in report order.
    pub const ALL: [Sharing; 4] = [
        Sharing::Alone,
        Sharing::Store,
        Sharing::RereadOnly,
        Sharing::Outage,
    ];

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Sharing::Alone => "relent, no store",
            Sharing::Store => "relent, store (pub/sub)",
            Sharing::RereadOnly => "relent, store (re-read only)",
            Sharing::Outage => "relent, store down mid-run",
        }
    }
}

/// One fleet world.
#[derive(Clone, Debug)]
pub struct FleetWorld {
    /// The provider's faults, targets, policy and latency (one server for the whole fleet).
    pub schedule: Schedule,
    /// The key that dies.
    pub dead: KeyId,
    /// When it dies (sends arriving from then on are rejected).
    pub dies_at_ms: u64,
    /// The rate-limited key.
    pub limited: KeyId,
    /// Its limit's window, [from, until).
    pub limit_ms: (u64, u64),
    /// The store's outage window in [`Sharing::Outage`], [from, until).
    pub outage_ms: (u64, u64),
    /// Each call's arrival time and process, by arrival.
    pub arrivals: Vec<(u64, usize)>,
}

/// The fleet world of `seed`.
pub fn world(seed: u64) -> FleetWorld {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xf1ee_7000_0000_0000);
    let provider = [Provider::Openai, Provider::Anthropic][(rng.next_u64() % 2) as usize];
    let dies_at_ms = 10_000 + rng.next_u64() % 10_000;
    let limit_from = dies_at_ms + 5_000 + rng.next_u64() % 10_000;
    let limit_ms = (limit_from, limit_from + 10_000 + rng.next_u64() % 20_000);
    let (dead, limited) = (KeyId(1), KeyId(2));
    let mut arrivals: Vec<(u64, usize)> = (0..CALLS)
        .map(|_| {
            let at = (unit(&mut rng) * SPAN_MS as f64) as u64;
            (at, (rng.next_u64() % PROCESSES as u64) as usize)
        })
        .collect();
    arrivals.sort_unstable();
    let keys = (1..=KEYS)
        .map(|i| KeySpec::new(i, format!("key-{i}")))
        .collect();
    let schedule = Schedule {
        name: None,
        seed,
        policy: Policy::default(),
        targets: vec![Target::new(provider, "model", keys)],
        faults: vec![
            Fault {
                scope: FaultScope::Key(dead),
                from_ms: dies_at_ms,
                until_ms: None,
                first_sends: None,
                probability: 1.0,
                kind: FaultKind::KeyRejected,
            },
            Fault {
                scope: FaultScope::Key(limited),
                from_ms: limit_ms.0,
                until_ms: Some(limit_ms.1),
                first_sends: None,
                probability: 1.0,
                kind: FaultKind::RateLimited {
                    hint: HintFormat::RetryAfterSeconds,
                },
            },
        ],
        pool_changes: Vec::new(),
        cancel_at_ms: None,
        latency_ms: LATENCY_MS,
        heal_at_ms: None,
        calls: Vec::new(),
    };
    FleetWorld {
        schedule,
        dead,
        dies_at_ms,
        limited,
        limit_ms,
        outage_ms: (dies_at_ms - 5_000, dies_at_ms + 3_000),
        arrivals,
    }
}

/// One call of a fleet run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Its process.
    pub process: usize,
    /// When it started.
    pub start_ms: u64,
    /// When it ended (the horizon if it never did).
    pub end_ms: u64,
    /// Whether it succeeded.
    pub success: bool,
}

/// One upstream send of a fleet run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SendRecord {
    /// When it was sent.
    pub sent_ms: u64,
    /// Its process.
    pub process: usize,
    /// Its call (index in [`FleetRun::calls`]).
    pub call: usize,
    /// Its key.
    pub key: KeyId,
    /// Whether its reply was a real success.
    pub success: bool,
}

/// What a fleet run did.
#[derive(Clone, Debug, Default)]
pub struct FleetRun {
    /// Every call, in arrival order.
    pub calls: Vec<CallRecord>,
    /// Every send, in time order.
    pub sends: Vec<SendRecord>,
}

impl FleetRun {
    /// Sends to `world`'s dead key that reached it after its death (each rejected).
    pub fn dead_key_sends<'a>(
        &'a self,
        world: &'a FleetWorld,
    ) -> impl Iterator<Item = &'a SendRecord> + 'a {
        self.sends.iter().filter(move |s| {
            s.key == world.dead && s.sent_ms + world.schedule.latency_ms >= world.dies_at_ms
        })
    }

    /// Sends to `world`'s rate-limited key that reached it during its limit.
    pub fn limited_key_sends(&self, world: &FleetWorld) -> usize {
        let (from, until) = world.limit_ms;
        self.sends
            .iter()
            .filter(|s| {
                let at = s.sent_ms + world.schedule.latency_ms;
                s.key == world.limited && (from..until).contains(&at)
            })
            .count()
    }
}

/// When news a process got at `learned_ms` is in every process's pool at the latest, as
/// the store model allows (`None`: never, without a store).
pub fn news_everywhere_by(
    sharing: Sharing,
    store: &StoreModel,
    world: &FleetWorld,
    learned_ms: u64,
) -> Option<u64> {
    let pubsub = learned_ms + store.write_ms + store.pubsub_ms + store.read_ms;
    match sharing {
        Sharing::Alone => None,
        Sharing::Store => Some(pubsub),
        // The write lands, then each process reads at its next tick.
        Sharing::RereadOnly => Some(learned_ms + store.write_ms + store.reread_ms + store.read_ms),
        Sharing::Outage => {
            let (from, until) = world.outage_ms;
            if pubsub < from || learned_ms >= until {
                Some(pubsub)
            } else {
                // The first tick after the outage resyncs (write all, then read); the write
                // is published to the others.
                Some(until + store.reread_ms + store.write_ms + store.pubsub_ms + store.read_ms)
            }
        }
    }
}

// ----- the store model -----

/// What the store knows of a key.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct StoredKey {
    revoked: bool,
    /// The end of the latest wait (cooling or exhausted), virtual time.
    wait_until: Option<u64>,
}

/// A key's news in an outbox: the worst state learned since the last write.
type Outbox = BTreeMap<KeyId, KeyState>;

/// Whether `new` keeps a key out of use longer than `old` (store.rs `worse`).
fn worse(new: KeyState, old: KeyState) -> bool {
    match (new.ready_at(), old.ready_at()) {
        (None, Some(_)) => true,
        (None, None) => new == KeyState::Removed && old != KeyState::Removed,
        (Some(a), Some(b)) => a > b,
        (Some(_), None) => false,
    }
}

/// Notes what got worse between two states of a process's pool (store.rs `Outbox::note`,
/// without restores); true when something was noted.
fn note(outbox: &mut Outbox, before: &Pool, after: &Pool) -> bool {
    let mut noted = false;
    for (_, entry) in after.all_keys() {
        let (old, new) = (before.state(entry.spec.id), entry.state);
        if old != new && worse(new, old) {
            let slot = outbox.entry(entry.spec.id).or_insert(new);
            *slot = slot.worse(new);
            noted = true;
        }
    }
    noted
}

/// Merges a state written at `now` into the store (the Redis merge script: a revocation
/// stays, the later wait wins); true when the store changed. A wait travels as a duration
/// and is added to the store's clock when the write lands, `latency` after it was computed.
fn merge(stored: &mut StoredKey, state: KeyState, now: u64, latency: u64) -> bool {
    let before = *stored;
    match state {
        KeyState::Revoked | KeyState::Removed => stored.revoked = true,
        KeyState::CoolingDown(until) | KeyState::Exhausted(until) if until.0 + latency > now => {
            let end = until.0 + latency;
            stored.wait_until = Some(stored.wait_until.map_or(end, |w| w.max(end)));
        }
        _ => {}
    }
    *stored != before
}

/// How much later than a known wait a read one must be to count as news (store.rs `SLACK`).
const SLACK_MS: u64 = 25;

/// The pool changes that bring `pool` up to what the store knows of `key`, read at `now`
/// (store.rs `changes_for`, without restores and removals).
fn changes_for(pool: &Pool, key: KeyId, stored: &StoredKey, now: u64) -> Option<PoolChange> {
    let state = pool.state(key);
    if state == KeyState::Removed {
        return None;
    }
    if stored.revoked {
        return (state != KeyState::Revoked).then_some(PoolChange::MarkedBad { key, until: None });
    }
    let until = stored.wait_until.filter(|u| *u > now)?;
    let known = state.ready_at().is_none_or(|t| t.0 + SLACK_MS >= until);
    (!known).then_some(PoolChange::MarkedBad {
        key,
        until: Some(Time(until)),
    })
}

/// The pool changes that bring `mine` to the key states of `shared` (relent-tokio's
/// `shared.rs` `differences`, for a pool whose keys never change).
fn differences(shared: &Pool, mine: &Pool) -> Vec<PoolChange> {
    let mut changes = Vec::new();
    for (_, entry) in shared.all_keys() {
        let id = entry.spec.id;
        let (theirs, ours) = (entry.state, mine.state(id));
        if theirs == ours || ours == KeyState::Removed {
            continue;
        }
        if theirs == KeyState::Removed {
            changes.push(PoolChange::Removed { key: id });
            continue;
        }
        let bad = PoolChange::MarkedBad {
            key: id,
            until: theirs.ready_at(),
        };
        let later = |x: Option<Time>, y: Option<Time>| match (x, y) {
            (None, Some(_)) => true,
            (Some(x), Some(y)) => x > y,
            _ => false,
        };
        let (a, b) = (theirs.ready_at(), ours.ready_at());
        if later(a, b) {
            changes.push(bad);
        } else if later(b, a) {
            changes.push(PoolChange::Restored { key: id });
            if theirs != KeyState::Ready {
                changes.push(bad);
            }
        }
    }
    changes
}

// ----- the run -----

struct Process {
    pool: Pool,
    overload: Overload,
    outbox: Outbox,
    /// A write is on its way.
    writing: bool,
    /// The link owes the store everything its pool knows (after a failed operation).
    resync: bool,
    /// Calls of this process still running.
    running: Vec<usize>,
}

struct Running {
    machine: RetryMachine,
    synced_pool: Pool,
    synced_overload: Overload,
    process: usize,
    reply: Option<Reply>,
    done: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Start(usize),
    Reply(usize),
    Wake(usize),
    Poke(usize),
    WriteLands { process: usize, then_read: bool },
    ReadLands(usize),
    Tick(usize),
}

struct Sim<'a> {
    world: &'a FleetWorld,
    sharing: Sharing,
    store_model: StoreModel,
    server: Server<'a>,
    procs: Vec<Process>,
    calls: Vec<Running>,
    store: BTreeMap<KeyId, StoredKey>,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    run: FleetRun,
}

/// Plays `world` with `sharing` and the store's timing `store`.
pub fn play_fleet(world: &FleetWorld, sharing: Sharing, store: &StoreModel) -> FleetRun {
    let schedule = &world.schedule;
    let pool = Pool::new(schedule.targets.clone()).expect("valid targets");
    let overload = Overload::new(&schedule.policy.overload, schedule.targets.len());
    let mut sim = Sim {
        world,
        sharing,
        store_model: *store,
        server: Server::new(schedule),
        procs: (0..PROCESSES)
            .map(|_| Process {
                pool: pool.clone(),
                overload: overload.clone(),
                outbox: Outbox::new(),
                writing: false,
                resync: false,
                running: Vec::new(),
            })
            .collect(),
        calls: Vec::new(),
        store: BTreeMap::new(),
        queue: BinaryHeap::new(),
        seq: 0,
        run: FleetRun::default(),
    };
    for (i, (at, process)) in world.arrivals.iter().enumerate() {
        sim.push(*at, Ev::Start(i));
        sim.run.calls.push(CallRecord {
            process: *process,
            start_ms: *at,
            end_ms: 0,
            success: false,
        });
    }
    if sharing != Sharing::Alone {
        // Each link's re-read tick has its own phase (its client was built at its own time).
        let mut rng = ChaCha8Rng::seed_from_u64(schedule.seed ^ 0x71c4_0000_0000_0000);
        for p in 0..PROCESSES {
            let phase = rng.next_u64() % store.reread_ms.max(1);
            sim.push(phase, Ev::Tick(p));
        }
    }
    let horizon = world.arrivals.last().map_or(0, |a| a.0) + super::play::GIVE_UP_MS;
    let mut finished = 0;
    while let Some(Reverse((now, _, ev))) = sim.queue.pop() {
        if now > horizon {
            break;
        }
        match ev {
            Ev::Start(i) => sim.start(i, now),
            Ev::Reply(i) => sim.reply(i, now),
            Ev::Wake(i) => sim.wake(i, now, false),
            Ev::Poke(i) => sim.wake(i, now, true),
            Ev::WriteLands { process, then_read } => sim.write_lands(process, then_read, now),
            Ev::ReadLands(p) => sim.read_lands(p, now),
            Ev::Tick(p) => {
                if finished < world.arrivals.len() {
                    sim.tick(p, now);
                }
            }
        }
        finished = sim.calls.iter().filter(|c| c.done).count();
        if finished == world.arrivals.len() {
            break;
        }
    }
    for (i, call) in sim.calls.iter().enumerate() {
        if !call.done {
            sim.run.calls[i].end_ms = horizon;
        }
    }
    sim.run
}

impl Sim<'_> {
    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    fn store_up(&self, now: u64) -> bool {
        match self.sharing {
            Sharing::Alone => false,
            Sharing::Store | Sharing::RereadOnly => true,
            Sharing::Outage => !(self.world.outage_ms.0..self.world.outage_ms.1).contains(&now),
        }
    }

    fn start(&mut self, i: usize, now: u64) {
        let process = self.run.calls[i].process;
        let schedule = &self.world.schedule;
        let proc = &self.procs[process];
        let seed = schedule.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let machine = RetryMachine::with_pool(schedule.policy.clone(), proc.pool.clone(), seed)
            .expect("a valid policy")
            .with_overload(proc.overload.clone())
            .wall_clock_epoch(WALL_EPOCH_UNIX_MS);
        self.calls.push(Running {
            machine,
            synced_pool: proc.pool.clone(),
            synced_overload: proc.overload.clone(),
            process,
            reply: None,
            done: false,
        });
        debug_assert_eq!(self.calls.len(), i + 1, "calls start in arrival order");
        self.procs[process].running.push(i);
        let _ = self.calls[i].machine.start(Time(now));
        self.drive(i, now);
    }

    fn reply(&mut self, i: usize, now: u64) {
        self.sync(i, now);
        let call = &mut self.calls[i];
        let Some(reply) = call.reply.take() else {
            return;
        };
        let _ = match reply {
            Reply::Hang => call.machine.handle_timeout(Time(now)),
            _ => reply
                .observe(|seen| call.machine.handle_response(Time(now), seen))
                .unwrap_or(Ok(())),
        };
        self.drive(i, now);
    }

    /// A sleep's end (`poke` false) or a change of the process's pool (`poke` true).
    fn wake(&mut self, i: usize, now: u64, poke: bool) {
        let call = &self.calls[i];
        let State::Sleeping { until, .. } = call.machine.state() else {
            return;
        };
        if call.done {
            return;
        }
        if !poke {
            if until.0 > now {
                return; // a stale timer: the call sleeps on something newer
            }
            self.sync(i, now);
            let _ = self.calls[i].machine.handle_timeout(Time(now.max(until.0)));
        }
        self.drive(i, now);
    }

    /// The driver's loop (relent-tokio `drive.rs`): sync, then act until the call waits.
    fn drive(&mut self, i: usize, now: u64) {
        loop {
            if self.calls[i].done {
                return;
            }
            self.sync(i, now);
            let Some(action) = self.calls[i].machine.poll_action() else {
                match self.calls[i].machine.state() {
                    State::Sleeping { until, .. } => self.push(until.0.max(now), Ev::Wake(i)),
                    State::Succeeded => self.finish(i, now, true),
                    State::Aborted { .. } => self.finish(i, now, false),
                    _ => {}
                }
                return;
            };
            match action {
                Action::Send(send) => {
                    let arrival = Time(now + self.world.schedule.latency_ms);
                    let served = self.server.serve(send.key, send.target, arrival);
                    let success = is_success(&served.reply);
                    self.run.sends.push(SendRecord {
                        sent_ms: now,
                        process: self.calls[i].process,
                        call: i,
                        key: send.key,
                        success,
                    });
                    let at = if served.reply == Reply::Hang {
                        send.timeout_at.0
                    } else {
                        arrival.0
                    };
                    self.calls[i].reply = Some(served.reply);
                    self.push(at, Ev::Reply(i));
                    return;
                }
                Action::Succeeded { .. } => {
                    // Nothing streams here: the call ends with its first success.
                    self.finish(i, now, true);
                    return;
                }
                Action::Abort(_) => {
                    self.finish(i, now, false);
                    return;
                }
                Action::Sleep { .. } | Action::Rotate { .. } => {}
            }
        }
    }

    fn finish(&mut self, i: usize, now: u64, success: bool) {
        self.sync(i, now);
        let call = &mut self.calls[i];
        call.done = true;
        let record = &mut self.run.calls[i];
        record.end_ms = now;
        record.success = success;
        let process = call.process;
        self.procs[process].running.retain(|c| *c != i);
    }

    /// relent-tokio `SharedPool::sync`: pushes what call `i` learned into its process and
    /// pulls what the process knows into the call.
    fn sync(&mut self, i: usize, now: u64) {
        let call = &mut self.calls[i];
        let proc = &mut self.procs[call.process];
        if call.synced_overload != *call.machine.overload() {
            proc.overload
                .merge_call(&call.synced_overload, call.machine.overload());
        }
        if proc.overload != *call.machine.overload() {
            call.machine.sync_overload(&proc.overload);
        }
        call.synced_overload.clone_from(&proc.overload);
        let mut changed = false;
        let mut noted = false;
        if call.synced_pool != *call.machine.pool() {
            let before = proc.pool.clone();
            proc.pool.merge_call(&call.synced_pool, call.machine.pool());
            changed = proc.pool != before;
            if self.sharing != Sharing::Alone {
                noted = note(&mut proc.outbox, &before, &proc.pool);
            }
        }
        let changes = differences(&proc.pool, call.machine.pool());
        call.synced_pool.clone_from(call.machine.pool());
        for change in changes {
            if call
                .machine
                .handle_pool_change(Time(now), change.clone())
                .is_ok()
            {
                let _ = call.synced_pool.apply(&change);
            }
        }
        let process = call.process;
        if changed {
            self.poke(process, Some(i), now);
        }
        if noted && !self.procs[process].writing {
            self.procs[process].writing = true;
            let at = now + self.store_model.write_ms;
            self.push(
                at,
                Ev::WriteLands {
                    process,
                    then_read: false,
                },
            );
        }
    }

    /// Wakes the sleeping calls of `process` (but `except`): its pool changed.
    fn poke(&mut self, process: usize, except: Option<usize>, now: u64) {
        let sleeping: Vec<usize> = self.procs[process]
            .running
            .iter()
            .copied()
            .filter(|c| Some(*c) != except)
            .filter(|c| matches!(self.calls[*c].machine.state(), State::Sleeping { .. }))
            .collect();
        for c in sleeping {
            self.push(now, Ev::Poke(c));
        }
    }

    /// The link's round at a tick: write (the outbox, and everything when resyncing), then
    /// read.
    fn tick(&mut self, p: usize, now: u64) {
        let proc = &mut self.procs[p];
        if proc.resync || !proc.outbox.is_empty() {
            proc.writing = true;
            let at = now + self.store_model.write_ms;
            self.push(
                at,
                Ev::WriteLands {
                    process: p,
                    then_read: true,
                },
            );
        } else {
            let at = now + self.store_model.read_ms;
            self.push(at, Ev::ReadLands(p));
        }
        let next = now + self.store_model.reread_ms;
        self.push(next, Ev::Tick(p));
    }

    fn write_lands(&mut self, p: usize, then_read: bool, now: u64) {
        let up = self.store_up(now);
        let write_ms = self.store_model.write_ms;
        let proc = &mut self.procs[p];
        proc.writing = false;
        if !up {
            // The outbox keeps its news; the next successful round writes everything.
            proc.resync = true;
            return;
        }
        let mut reports: Vec<(KeyId, KeyState)> =
            std::mem::take(&mut proc.outbox).into_iter().collect();
        if proc.resync {
            for (_, entry) in proc.pool.all_keys() {
                if !reports.iter().any(|(k, _)| *k == entry.spec.id) {
                    reports.push((entry.spec.id, entry.state));
                }
            }
        }
        let resync = proc.resync;
        let mut changed = false;
        for (key, state) in reports {
            changed |= merge(self.store.entry(key).or_default(), state, now, write_ms);
        }
        if changed && self.sharing != Sharing::RereadOnly {
            let at = now + self.store_model.pubsub_ms + self.store_model.read_ms;
            for q in 0..PROCESSES {
                self.push(at, Ev::ReadLands(q));
            }
        }
        if then_read || resync {
            let at = now + self.store_model.read_ms;
            self.push(at, Ev::ReadLands(p));
        }
    }

    fn read_lands(&mut self, p: usize, now: u64) {
        if !self.store_up(now) {
            self.procs[p].resync = true;
            return;
        }
        let proc = &mut self.procs[p];
        proc.resync = false;
        let before = proc.pool.clone();
        for (key, stored) in &self.store {
            if let Some(change) = changes_for(&proc.pool, *key, stored, now) {
                let _ = proc.pool.apply(&change);
            }
        }
        if proc.pool != before {
            self.poke(p, None, now);
        }
    }
}

// ----- the report -----

/// One mode's results over a family's worlds.
#[derive(Clone, Debug, Serialize)]
pub struct FleetRow {
    /// The mode.
    pub sharing: Sharing,
    /// Logical calls, fleet-wide, over every world.
    pub calls: u64,
    /// Calls that succeeded within 120 s of their start.
    pub successes: u64,
    /// Upstream sends per call.
    pub upstream_per_call: f64,
    /// Wasted sends (every send whose reply was not a success) per call.
    pub wasted_per_call: f64,
    /// Sends that reached the dead key after its death, per world (mean).
    pub dead_key_sends: f64,
    /// The most in one world.
    pub dead_key_sends_max: u64,
    /// Sends that reached the rate-limited key during its limit, per world (mean).
    pub limited_key_sends: f64,
    /// Time to outcome, median (ms).
    pub p50_ms: u64,
    /// 99th percentile.
    pub p99_ms: u64,
}

/// The fleet family's report.
#[derive(Clone, Debug, Serialize)]
pub struct FleetReport {
    /// The family's name.
    pub family: String,
    /// What it is.
    pub about: String,
    /// Worlds.
    pub seeds: u64,
    /// The store's timing.
    pub store: StoreModel,
    /// One row per mode.
    pub rows: Vec<FleetRow>,
}

impl FleetReport {
    /// The row of `sharing`.
    pub fn row(&self, sharing: Sharing) -> Option<&FleetRow> {
        self.rows.iter().find(|r| r.sharing == sharing)
    }
}

/// The summary of `runs` (one per world) in `sharing` mode.
pub fn fleet_row(sharing: Sharing, worlds: &[FleetWorld], runs: &[FleetRun]) -> FleetRow {
    let calls: Vec<&CallRecord> = runs.iter().flat_map(|r| &r.calls).collect();
    let n = calls.len().max(1) as f64;
    let sends: Vec<&SendRecord> = runs.iter().flat_map(|r| &r.sends).collect();
    let dead: Vec<u64> = worlds
        .iter()
        .zip(runs)
        .map(|(w, r)| r.dead_key_sends(w).count() as u64)
        .collect();
    let limited: usize = worlds
        .iter()
        .zip(runs)
        .map(|(w, r)| r.limited_key_sends(w))
        .sum();
    let mut times: Vec<u64> = calls.iter().map(|c| c.end_ms - c.start_ms).collect();
    times.sort_unstable();
    let worlds_n = worlds.len().max(1) as f64;
    FleetRow {
        sharing,
        calls: calls.len() as u64,
        successes: calls
            .iter()
            .filter(|c| c.success && c.end_ms - c.start_ms <= super::COMMON_DEADLINE_MS)
            .count() as u64,
        upstream_per_call: sends.len() as f64 / n,
        wasted_per_call: sends.iter().filter(|s| !s.success).count() as f64 / n,
        dead_key_sends: dead.iter().sum::<u64>() as f64 / worlds_n,
        dead_key_sends_max: dead.iter().copied().max().unwrap_or(0),
        limited_key_sends: limited as f64 / worlds_n,
        p50_ms: super::percentile(&times, 0.5),
        p99_ms: super::percentile(&times, 0.99),
    }
}

/// Runs the fleet family over `seeds` worlds in every mode, with the default store timing.
pub fn run_fleet(seeds: u64) -> FleetReport {
    let store = StoreModel::default();
    let worlds: Vec<FleetWorld> = (0..seeds).map(world).collect();
    let rows = Sharing::ALL
        .iter()
        .map(|sharing| {
            let runs: Vec<FleetRun> = worlds
                .iter()
                .map(|w| play_fleet(w, *sharing, &store))
                .collect();
            fleet_row(*sharing, &worlds, &runs)
        })
        .collect();
    FleetReport {
        family: "fleet-8-processes".into(),
        about: format!(
            "{PROCESSES} processes, {KEYS} keys; {CALLS} calls over {} s in random processes; key 1 (first in order) rejected from 10-20 s on, key 2 rate limited (retry-after) for 10-30 s from 5-15 s after that; the store's outage runs from 5 s before the death to 3 s after",
            SPAN_MS / 1000
        ),
        seeds,
        store,
        rows,
    }
}

/// The fleet report as a markdown table.
pub fn render_fleet_table(report: &FleetReport) -> String {
    let mut out = String::new();
    let s = &report.store;
    let _ = writeln!(
        out,
        "### {} — {}\n\n{} worlds; store: write {} ms, pub/sub {} ms, read {} ms, re-read every {} ms.\n",
        report.family, report.about, report.seeds, s.write_ms, s.pubsub_ms, s.read_ms, s.reread_ms
    );
    let _ = writeln!(
        out,
        "| mode | success ≤120s | calls/call | wasted/call | dead-key sends/world | max | sends into the rate limit/world | p50 | p99 |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &report.rows {
        let _ = writeln!(
            out,
            "| {} | {:.1}% | {:.3} | {:.3} | {:.2} | {} | {:.2} | {} | {} |",
            r.sharing.name(),
            100.0 * r.successes as f64 / r.calls.max(1) as f64,
            r.upstream_per_call,
            r.wasted_per_call,
            r.dead_key_sends,
            r.dead_key_sends_max,
            r.limited_key_sends,
            relent::Millis(r.p50_ms),
            relent::Millis(r.p99_ms),
        );
    }
    out
}
