//! The credential pool: key identities and their state, grouped by target.
//!
//! The pool never holds a secret. A key is an opaque [`KeyId`] plus a human label; the driver
//! maps ids to secrets at the moment it sends. Targets form a fallback chain: target 0 is
//! preferred, and the machine moves down the chain, never back up, within one call.

use crate::classify::Provider;
use crate::machine::PoolChange;
use crate::time::{Millis, Time};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// A key's identity. Unique across all targets of a pool.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "k{}", self.0)
    }
}

/// A key as configured: its id and a label that is safe to print.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySpec {
    /// The key's identity.
    pub id: KeyId,
    /// A human name ("prod-1", "alice's key"); never the secret. Shared, so that traces
    /// and reports can name the key without copying the text.
    pub label: Arc<str>,
}

impl KeySpec {
    /// A key with the given id and label.
    pub fn new(id: u32, label: impl Into<Arc<str>>) -> Self {
        KeySpec {
            id: KeyId(id),
            label: label.into(),
        }
    }
}

/// One provider and model, with the keys that may call it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Which API this is.
    pub provider: Provider,
    /// The model name.
    pub model: String,
    /// The model's context window in tokens, if known; used to pick a larger-context fallback
    /// after a context overflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u32>,
    /// The keys, in priority order.
    pub keys: Vec<KeySpec>,
}

impl Target {
    /// A target with no context size and the given keys.
    pub fn new(provider: Provider, model: impl Into<String>, keys: Vec<KeySpec>) -> Self {
        Target {
            provider,
            model: model.into(),
            context_tokens: None,
            keys,
        }
    }
}

/// Where a key stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "until")]
pub enum KeyState {
    /// Usable now.
    Ready,
    /// Rate limited: usable again at the given time.
    CoolingDown(Time),
    /// Out of credit or quota: usable again at the given time (the server's reset, or a
    /// long default).
    Exhausted(Time),
    /// Rejected by the provider; unusable until the pool restores it.
    Revoked,
    /// Taken out of the pool; never used again.
    Removed,
}

impl KeyState {
    /// True when a request may be sent with this key at `now`.
    pub fn usable_at(self, now: Time) -> bool {
        match self {
            KeyState::Ready => true,
            KeyState::CoolingDown(until) | KeyState::Exhausted(until) => now >= until,
            KeyState::Revoked | KeyState::Removed => false,
        }
    }

    /// The more restrictive of two states: the one usable later (never usable beats any
    /// time). Outside reports combine with this, so they can never shorten a reset the
    /// server gave or undo a revocation (only a restore does that).
    pub fn worse(self, other: KeyState) -> KeyState {
        match (self.ready_at(), other.ready_at()) {
            (None, _) => self,
            (_, None) => other,
            (Some(a), Some(b)) if a >= b => self,
            _ => other,
        }
    }

    /// The earliest time the key could be used, `None` if never.
    pub fn ready_at(self) -> Option<Time> {
        match self {
            KeyState::Ready => Some(Time::ZERO),
            KeyState::CoolingDown(until) | KeyState::Exhausted(until) => Some(until),
            KeyState::Revoked | KeyState::Removed => None,
        }
    }
}

/// How to choose among ready keys of a target.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The first ready key in configured order (fill-first).
    #[default]
    Priority,
    /// The next ready key after the one used last.
    RoundRobin,
    /// The ready key used longest ago (never-used keys first).
    LeastRecentlyUsed,
}

/// A key's runtime record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Identity and label.
    pub spec: KeySpec,
    /// Current state.
    pub state: KeyState,
    /// When it was last used for a send.
    pub last_used: Option<Time>,
    /// Consecutive rejections (reset by an answer only an accepted key gets: a success, a
    /// rate limit, a spent quota; and by a lift or a restore).
    pub rejections: u8,
    /// Rate limits in a row with no usable server hint (reset by a success or a restore; a
    /// hinted rate limit leaves it as it is): the next such cooldown's escalation
    /// (`Policy::key_cooldown`). Kept at zero while escalation is off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cooldowns: u8,
    /// When the provider's rejection revoked the key (`None` for a key that is not revoked,
    /// or that an outside `MarkedBad` revoked for good). A policy may probe such a key again
    /// after a long time (`Policy::revoked_reprobe_after_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Time>,
    /// When the provider last rejected the key (cleared by a restore). A re-probe that is
    /// rejected again leaves the key revoked, as it was, so the state alone cannot show
    /// [`Pool::merge_call`] that the call learned something; this time does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_at: Option<Time>,
    /// When a re-probe's answer last lifted the key's revocation. [`Pool::merge_call`]
    /// weighs it against `rejected_at`: of a lift and a rejection that concurrent calls
    /// saw, the later stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_at: Option<Time>,
    /// A wait (cooling or exhausted) that another call learned for the key while this pool
    /// held it revoked: kept by [`Pool::merge_call`] so that a call whose re-probe lifts the
    /// revocation without knowing of the wait does not lose it. `None` unless revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<KeyState>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// A key's place in the pool: its target index and id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRef {
    /// Index of the target in the fallback chain.
    pub target: usize,
    /// The key.
    pub key: KeyId,
}

/// Targets and their keys' states.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Shared by a pool's copies: they differ in their keys' states, and the targets change
    /// only when a key is added (copied then, on write).
    targets: Arc<Vec<Target>>,
    keys: Vec<Vec<KeyEntry>>,
    cursors: Vec<usize>,
}

impl Clone for Pool {
    fn clone(&self) -> Self {
        Pool {
            targets: Arc::clone(&self.targets),
            keys: self.keys.clone(),
            cursors: self.cursors.clone(),
        }
    }

    // Reuses every buffer of `self`: a driver refreshes its copy of a running call's pool
    // after every step, and a copy of the same shape then allocates nothing.
    fn clone_from(&mut self, source: &Self) {
        // Destructured whole, so a new field cannot be forgotten here.
        let Pool {
            targets,
            keys,
            cursors,
        } = source;
        self.targets = Arc::clone(targets);
        self.keys.clone_from(keys);
        self.cursors.clone_from(cursors);
    }
}

/// A pool configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// No targets at all.
    #[error("the pool has no targets; configure at least one provider and model")]
    NoTargets,
    /// Two keys share an id.
    #[error("key id {0} appears twice; key ids must be unique across all targets")]
    DuplicateKey(KeyId),
    /// A change named a key the pool does not have.
    #[error("no key with id {0} in the pool")]
    UnknownKey(KeyId),
    /// A change named a target the pool does not have.
    #[error("no target with index {0}; the pool has {1} targets")]
    UnknownTarget(usize, usize),
}

impl Pool {
    /// A pool with every key ready.
    pub fn new(targets: Vec<Target>) -> Result<Self, PoolError> {
        if targets.is_empty() {
            return Err(PoolError::NoTargets);
        }
        let mut seen: Vec<KeyId> = Vec::new();
        for key in targets.iter().flat_map(|t| &t.keys) {
            if seen.contains(&key.id) {
                return Err(PoolError::DuplicateKey(key.id));
            }
            seen.push(key.id);
        }
        let keys = targets
            .iter()
            .map(|t| {
                t.keys
                    .iter()
                    .map(|spec| KeyEntry {
                        spec: spec.clone(),
                        state: KeyState::Ready,
                        last_used: None,
                        rejections: 0,
                        cooldowns: 0,
                        revoked_at: None,
                        rejected_at: None,
                        lifted_at: None,
                        held: None,
                    })
                    .collect()
            })
            .collect();
        let cursors = vec![0; targets.len()];
        Ok(Pool {
            targets: Arc::new(targets),
            keys,
            cursors,
        })
    }

    /// The targets, in fallback order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The keys of target `t`.
    pub fn keys(&self, t: usize) -> &[KeyEntry] {
        self.keys.get(t).map_or(&[], Vec::as_slice)
    }

    /// Every key with its target index.
    pub fn all_keys(&self) -> impl Iterator<Item = (usize, &KeyEntry)> {
        self.keys
            .iter()
            .enumerate()
            .flat_map(|(t, ks)| ks.iter().map(move |k| (t, k)))
    }

    /// Finds a key by id.
    pub fn find(&self, id: KeyId) -> Option<(KeyRef, &KeyEntry)> {
        self.all_keys()
            .find(|(_, k)| k.spec.id == id)
            .map(|(t, k)| (KeyRef { target: t, key: id }, k))
    }

    pub(crate) fn entry_mut(&mut self, id: KeyId) -> Option<&mut KeyEntry> {
        self.keys
            .iter_mut()
            .flat_map(|ks| ks.iter_mut())
            .find(|k| k.spec.id == id)
    }

    /// The state of a key (`Removed` for an unknown id).
    pub fn state(&self, id: KeyId) -> KeyState {
        self.find(id).map_or(KeyState::Removed, |(_, k)| k.state)
    }

    /// A key's label, or its id when unknown.
    pub fn label(&self, id: KeyId) -> Arc<str> {
        self.find(id)
            .map_or_else(|| id.to_string().into(), |(_, k)| k.spec.label.clone())
    }

    pub(crate) fn set_state(&mut self, id: KeyId, state: KeyState) {
        if let Some(k) = self.entry_mut(id) {
            // Removed is final; nothing brings a removed key back.
            if k.state != KeyState::Removed {
                k.state = state;
            }
        }
    }

    /// Chooses a usable key of target `t` at `now`, skipping `excluded`.
    pub fn pick(
        &self,
        t: usize,
        now: Time,
        selection: Selection,
        excluded: &[KeyId],
    ) -> Option<KeyId> {
        let keys = self.keys.get(t)?;
        let usable = |k: &&KeyEntry| k.state.usable_at(now) && !excluded.contains(&k.spec.id);
        match selection {
            Selection::Priority => keys.iter().find(usable).map(|k| k.spec.id),
            Selection::RoundRobin => {
                let n = keys.len();
                let start = self.cursors.get(t).copied().unwrap_or(0);
                (0..n)
                    .map(|i| &keys[(start + i) % n])
                    .find(|k| usable(k))
                    .map(|k| k.spec.id)
            }
            Selection::LeastRecentlyUsed => keys
                .iter()
                .filter(usable)
                .min_by_key(|k| k.last_used.map_or(0, |t| t.0 + 1))
                .map(|k| k.spec.id),
        }
    }

    /// Revokes `key` after the provider rejected it at `now` (a later re-probe may lift it).
    pub(crate) fn revoke(&mut self, key: KeyId, now: Time) {
        if let Some(entry) = self.entry_mut(key) {
            match entry.state {
                KeyState::Removed => {}
                // Already revoked: an outside revocation stays for good, a provider's is
                // re-armed from now.
                KeyState::Revoked => {
                    if let Some(at) = entry.revoked_at {
                        entry.revoked_at = Some(at.max(now));
                    }
                }
                // A wait the key was already under (a reset, an outside mark) still holds:
                // the re-probe period counts from its end.
                state => {
                    let floor = state.ready_at().map_or(now, |t| t.max(now));
                    entry.state = KeyState::Revoked;
                    entry.revoked_at = Some(floor);
                }
            }
        }
    }

    /// A wait learned for a key that is revoked (a 429 or quota answer that arrived after the
    /// revocation) postpones its re-probe: the period counts from the wait's end.
    pub(crate) fn postpone_reprobe(&mut self, key: KeyId, until: Time) {
        if let Some(entry) = self.entry_mut(key) {
            if entry.state == KeyState::Revoked {
                entry.revoked_at = entry.revoked_at.map(|at| at.max(until));
            }
        }
    }

    /// Whether `key` was revoked by the provider at least `after` before `now`, so that it
    /// may be probed again.
    pub fn reprobe_due(&self, key: KeyId, now: Time, after: Millis) -> bool {
        self.find(key).is_some_and(|(_, k)| {
            k.state == KeyState::Revoked && k.revoked_at.is_some_and(|at| at + after <= now)
        })
    }

    /// The key of target `t` (not excluded) revoked longest ago by the provider, if that was
    /// at least `after` before `now`: the one to probe when nothing else can be used.
    pub fn reprobe_candidate(
        &self,
        t: usize,
        now: Time,
        after: Millis,
        excluded: &[KeyId],
    ) -> Option<KeyId> {
        self.keys
            .get(t)?
            .iter()
            .filter(|k| !excluded.contains(&k.spec.id) && k.state == KeyState::Revoked)
            .filter_map(|k| k.revoked_at.map(|at| (at, k.spec.id)))
            .filter(|(at, _)| *at + after <= now)
            .min()
            .map(|(_, id)| id)
    }

    /// The earliest time any key of target `t` (not excluded) becomes usable.
    pub fn earliest_ready(&self, t: usize, excluded: &[KeyId]) -> Option<Time> {
        self.keys
            .get(t)?
            .iter()
            .filter(|k| !excluded.contains(&k.spec.id))
            .filter_map(|k| k.state.ready_at())
            .min()
    }

    /// For the ejection guard (`Policy::max_ejection_percent`): how many keys of target `t`
    /// other than `except` (and not excluded) cool at `now` after a rate limit (their state
    /// is `CoolingDown` until a later time: a cooldown the machine picked, a server's reset,
    /// or an outside `MarkedBad` with an end), and how many keys of `t` (not excluded, `except`
    /// included) could take a request at all: usable now or cooling. Revoked, removed and
    /// exhausted keys are benched for their own faults and count in neither.
    pub fn cooling_keys(
        &self,
        t: usize,
        except: KeyId,
        now: Time,
        excluded: &[KeyId],
    ) -> (usize, usize) {
        let (mut cooling, mut eligible) = (0, 0);
        for k in self.keys(t) {
            if excluded.contains(&k.spec.id) {
                continue;
            }
            let cools = matches!(k.state, KeyState::CoolingDown(until) if until > now);
            if cools || k.state.usable_at(now) {
                eligible += 1;
            }
            if cools && k.spec.id != except {
                cooling += 1;
            }
        }
        (cooling, eligible)
    }

    pub(crate) fn note_used(&mut self, r: KeyRef, now: Time) {
        if let Some(keys) = self.keys.get(r.target) {
            if let Some(i) = keys.iter().position(|k| k.spec.id == r.key) {
                self.cursors[r.target] = (i + 1) % keys.len();
            }
        }
        if let Some(k) = self.entry_mut(r.key) {
            k.last_used = Some(now);
        }
    }

    /// Whether `change` can be applied: its target and key exist, an added key is new.
    pub fn check(&self, change: &PoolChange) -> Result<(), PoolError> {
        match change {
            PoolChange::Added { target, key } => {
                if *target >= self.targets.len() {
                    return Err(PoolError::UnknownTarget(*target, self.targets.len()));
                }
                match self.find(key.id) {
                    Some(_) => Err(PoolError::DuplicateKey(key.id)),
                    None => Ok(()),
                }
            }
            PoolChange::Removed { key }
            | PoolChange::Restored { key }
            | PoolChange::MarkedBad { key, .. } => self
                .find(*key)
                .map(|_| ())
                .ok_or(PoolError::UnknownKey(*key)),
        }
    }

    /// Applies a change made from outside, after [`Pool::check`]; on error nothing changed.
    /// Returns the key that may have become usable (an added or restored one).
    ///
    /// An outside `MarkedBad` can only make a key wait longer: it never shortens a reset the
    /// server gave, and never undoes a revocation (only `Restored` does).
    pub fn apply(&mut self, change: &PoolChange) -> Result<Option<KeyId>, PoolError> {
        self.check(change)?;
        Ok(match change {
            PoolChange::Added { target, key } => {
                Arc::make_mut(&mut self.targets)[*target]
                    .keys
                    .push(key.clone());
                self.keys[*target].push(KeyEntry {
                    spec: key.clone(),
                    state: KeyState::Ready,
                    last_used: None,
                    rejections: 0,
                    cooldowns: 0,
                    revoked_at: None,
                    rejected_at: None,
                    lifted_at: None,
                    held: None,
                });
                Some(key.id)
            }
            PoolChange::Removed { key } => {
                self.set_state(*key, KeyState::Removed);
                None
            }
            PoolChange::Restored { key } => {
                self.set_state(*key, KeyState::Ready);
                if let Some(entry) = self.entry_mut(*key) {
                    entry.rejections = 0;
                    entry.cooldowns = 0;
                    entry.revoked_at = None;
                    entry.rejected_at = None;
                    entry.lifted_at = None;
                    entry.held = None;
                }
                Some(*key)
            }
            PoolChange::MarkedBad { key, until } => {
                let reported = until.map_or(KeyState::Revoked, KeyState::CoolingDown);
                self.set_state(*key, self.state(*key).worse(reported));
                if let Some(entry) = self.entry_mut(*key) {
                    entry.revoked_at = match until {
                        // An outside revocation is for good: it is never probed again.
                        None => None,
                        // An outside wait on a revoked key postpones its re-probe: the
                        // re-probe period counts from the wait's end.
                        Some(t) => entry.revoked_at.map(|at| at.max(*t)),
                    };
                }
                None
            }
        })
    }

    /// Folds what one call learned into this pool, which concurrent calls may have changed
    /// meanwhile: `before` is the pool the call started from, `after` the pool it ended
    /// with. A key state the call changed replaces this pool's when no one else changed it
    /// since; otherwise the more restrictive of the two stays, so a revocation is never
    /// lost to a concurrent call that still saw the key ready. Two exceptions follow what
    /// the provider said last: of a re-probe's lift and a rejection seen by concurrent
    /// calls, the later stands, with its count of rejections in a row (a re-probe rejected
    /// again counts as a change, though the key was revoked before and after), and a wait (a reset, a spent quota) that lost to
    /// a revocation is kept and still holds when a re-probe lifts it. Rejection counts merge the
    /// same way, last use takes the later time, and selection cursors the call moved are
    /// taken from it. Counts of hint-less cooldowns in a row merge like rejection counts.
    /// Keys this pool does not have are left alone.
    pub fn merge_call(&mut self, before: &Pool, after: &Pool) {
        for (_, learned) in after.all_keys() {
            let id = learned.spec.id;
            let started = before.find(id).map(|(_, k)| k);
            let Some(shared) = self.entry_mut(id) else {
                continue;
            };
            let (shared_before, shared_at) = (shared.state, shared.revoked_at);
            // Of a lift and a rejection that concurrent calls saw, the later stands, and with
            // it that side's count of rejections in a row: `Some(true)` when the call's
            // lift stands, `Some(false)` when the client's lift stands against the call's
            // rejection.
            let mut lift_decides = None;
            // A rejection the call saw is news even when the key was revoked before it and
            // after (a re-probe rejected again), and news another call may have made too.
            let rejected_anew = learned.state == KeyState::Revoked
                && started.map(|k| k.rejected_at) != Some(learned.rejected_at);
            if started.map(|k| k.state) != Some(learned.state) || rejected_anew {
                let untouched = started.map(|k| (k.state, k.rejected_at))
                    == Some((shared.state, shared.rejected_at));
                // The call's re-probe lifted a revocation the client still holds, and no one
                // has rejected the key since the call started: the lift stands (a re-armed
                // re-probe time says nothing against the key), and a wait another call
                // learned meanwhile still holds.
                let lift_stands = |lift: &KeyEntry, rejection: &KeyEntry| {
                    lift.lifted_at
                        .is_some_and(|l| rejection.rejected_at.is_none_or(|r| r <= l))
                };
                let lifted = started.is_some_and(|k| {
                    k.state == KeyState::Revoked
                        && (k.rejected_at == shared.rejected_at || lift_stands(learned, shared))
                }) && shared.state == KeyState::Revoked
                    // (An outside revocation, for good, has no time: no re-probe lifts it.)
                    && shared.revoked_at.is_some()
                    && learned.state.ready_at().is_some();
                // The mirror: the call's rejection came no later than another call's lift.
                let lift_kept = rejected_anew
                    && shared.state.ready_at().is_some()
                    && started.is_some_and(|k| k.lifted_at != shared.lifted_at)
                    && lift_stands(shared, learned);
                lift_decides = if lifted {
                    Some(true)
                } else if lift_kept {
                    Some(false)
                } else {
                    None
                };
                let state =
                    if shared.state == KeyState::Removed || learned.state == KeyState::Removed {
                        KeyState::Removed
                    } else if lifted {
                        shared
                            .held
                            .map_or(learned.state, |w| learned.state.worse(w))
                    } else if lift_kept {
                        shared.state
                    } else if untouched {
                        learned.state
                    } else {
                        shared.state.worse(learned.state)
                    };
                // A wait that loses to a revocation is kept for a later lift.
                if state == KeyState::Revoked {
                    let wait = [shared.state, learned.state]
                        .into_iter()
                        .chain(shared.held)
                        .filter(|s| s.ready_at().is_some_and(|t| t > Time::ZERO))
                        .reduce(KeyState::worse);
                    shared.held = wait;
                }
                shared.state = state;
            }
            if shared.state != KeyState::Revoked {
                shared.held = None;
            }
            // When a revocation started (or was re-armed after a failed re-probe): among the
            // revocations that stand, one from outside (no time: for good) wins, else the
            // later time.
            let shared_revoked = (shared_before == KeyState::Revoked).then_some(shared_at);
            let learned_revoked = (learned.state == KeyState::Revoked
                && started.map(|k| k.revoked_at) != Some(learned.revoked_at))
            .then_some(learned.revoked_at);
            shared.revoked_at = if shared.state != KeyState::Revoked {
                None
            } else {
                let at = match (shared_revoked, learned_revoked) {
                    (Some(a), Some(b)) => a.zip(b).map(|(a, b)| a.max(b)),
                    (Some(a), None) => a,
                    (None, Some(b)) => b,
                    (None, None) => learned.revoked_at,
                };
                // A wait either side knew of (a reset, an outside mark) still holds: the
                // re-probe period counts from its end.
                let wait = [shared_before, learned.state]
                    .iter()
                    .filter(|s| **s != KeyState::Revoked)
                    .filter_map(|s| s.ready_at())
                    .max();
                at.map(|at| wait.map_or(at, |w| at.max(w)))
            };
            if lift_decides == Some(true) {
                shared.rejections = learned.rejections;
            } else if lift_decides == Some(false) {
                // The client's lift came later: its count stands.
            } else if started.map(|k| k.rejections) != Some(learned.rejections) {
                let untouched = started.map(|k| k.rejections) == Some(shared.rejections);
                shared.rejections = if untouched {
                    learned.rejections
                } else {
                    shared.rejections.max(learned.rejections)
                };
            }
            if started.map(|k| k.cooldowns) != Some(learned.cooldowns) {
                let untouched = started.map(|k| k.cooldowns) == Some(shared.cooldowns);
                shared.cooldowns = if untouched {
                    learned.cooldowns
                } else {
                    shared.cooldowns.max(learned.cooldowns)
                };
            }
            shared.last_used = shared.last_used.max(learned.last_used);
            shared.rejected_at = shared.rejected_at.max(learned.rejected_at);
            shared.lifted_at = shared.lifted_at.max(learned.lifted_at);
        }
        for (t, cursor) in after.cursors.iter().enumerate() {
            if before.cursors.get(t) != Some(cursor) {
                if let Some(shared) = self.cursors.get_mut(t) {
                    *shared = *cursor;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        Pool::new(vec![Target::new(
            Provider::Openai,
            "gpt-4o",
            vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")],
        )])
        .unwrap()
    }

    #[test]
    fn clone_from_copies_any_pool_into_any_other() {
        let mut big = Pool::new(vec![
            Target::new(Provider::Anthropic, "claude", vec![KeySpec::new(7, "x")]),
            Target::new(
                Provider::Openai,
                "gpt-4o-mini",
                vec![KeySpec::new(8, "y"), KeySpec::new(9, "z")],
            ),
        ])
        .unwrap();
        big.set_state(KeyId(8), KeyState::CoolingDown(Time(5)));
        big.note_used(
            KeyRef {
                target: 1,
                key: KeyId(9),
            },
            Time(3),
        );
        let small = pool();
        let mut copy = big.clone();
        copy.clone_from(&small);
        assert_eq!(copy, small);
        let mut copy = small.clone();
        copy.clone_from(&big);
        assert_eq!(copy, big);
        assert_eq!(big.clone(), big);
    }

    #[test]
    fn cooling_keys_count_rate_limits_not_own_faults() {
        let mut pool = Pool::new(vec![Target::new(
            Provider::Openai,
            "gpt-4o",
            (1..=5).map(|i| KeySpec::new(i, format!("k{i}"))).collect(),
        )])
        .unwrap();
        let now = Time(1_000);
        pool.set_state(KeyId(2), KeyState::CoolingDown(Time(5_000)));
        // A cooldown that is over is no cooldown.
        pool.set_state(KeyId(3), KeyState::CoolingDown(Time(500)));
        pool.set_state(KeyId(4), KeyState::Exhausted(Time(9_000)));
        pool.set_state(KeyId(5), KeyState::Revoked);
        assert_eq!(pool.cooling_keys(0, KeyId(1), now, &[]), (1, 3));
        // The key that answered is counted as a key, never as cooling.
        assert_eq!(pool.cooling_keys(0, KeyId(2), now, &[]), (0, 3));
        // Excluded keys count in neither.
        assert_eq!(pool.cooling_keys(0, KeyId(1), now, &[KeyId(2)]), (0, 2));
        assert_eq!(pool.cooling_keys(1, KeyId(1), now, &[]), (0, 0));
    }

    #[test]
    fn a_concurrent_call_does_not_undo_a_revocation() {
        let before = pool();
        let mut shared = before.clone();
        // Call A revokes key 1 and finishes first.
        let mut a = before.clone();
        a.set_state(KeyId(1), KeyState::Revoked);
        shared.merge_call(&before, &a);
        // Call B, started from the same pool, used key 2 and saw key 1 as ready.
        let mut b = before.clone();
        b.entry_mut(KeyId(2)).unwrap().last_used = Some(Time(5));
        shared.merge_call(&before, &b);
        assert_eq!(shared.state(KeyId(1)), KeyState::Revoked);
        assert_eq!(shared.find(KeyId(2)).unwrap().1.last_used, Some(Time(5)));
    }

    #[test]
    fn conflicting_changes_keep_the_more_restrictive_state() {
        let before = pool();
        let mut shared = before.clone();
        shared.set_state(KeyId(1), KeyState::CoolingDown(Time(10_000)));
        let mut call = before.clone();
        call.set_state(KeyId(1), KeyState::CoolingDown(Time(4_000)));
        shared.merge_call(&before, &call);
        assert_eq!(shared.state(KeyId(1)), KeyState::CoolingDown(Time(10_000)));

        let mut call = before.clone();
        call.set_state(KeyId(1), KeyState::Removed);
        shared.merge_call(&before, &call);
        assert_eq!(shared.state(KeyId(1)), KeyState::Removed);
    }

    /// What a call's pool holds after the provider rejected `key` at `at` (as the machine
    /// records a rejection: counted, timed, revoked or re-armed).
    fn rejected(pool: &mut Pool, key: u32, at: u64) {
        let entry = pool.entry_mut(KeyId(key)).unwrap();
        entry.rejections += 1;
        entry.rejected_at = Some(Time(at));
        pool.revoke(KeyId(key), Time(at));
    }

    /// What a call's pool holds after a re-probe of revoked `key`, answered at `at` by a
    /// fault only an accepted key gets, lifted the revocation to `state`.
    fn lifted(pool: &mut Pool, key: u32, at: u64, state: KeyState) {
        let entry = pool.entry_mut(KeyId(key)).unwrap();
        entry.state = state;
        entry.revoked_at = None;
        entry.rejections = 0;
        entry.lifted_at = Some(Time(at));
    }

    /// A pool whose key 1 the provider rejected at 100 ms.
    fn key_1_revoked() -> Pool {
        let mut before = pool();
        rejected(&mut before, 1, 100);
        before
    }

    #[test]
    fn a_reprobe_rejected_after_another_calls_lift_leaves_the_key_revoked() {
        let before = key_1_revoked();
        let mut shared = before.clone();
        // Call A's re-probe is answered 429 at 20 s: the key is accepted again.
        let mut a = before.clone();
        lifted(&mut a, 1, 20_000, KeyState::CoolingDown(Time(25_000)));
        shared.merge_call(&before, &a);
        assert_eq!(shared.state(KeyId(1)), KeyState::CoolingDown(Time(25_000)));
        // Call B, started before that, re-probes too and is rejected at 21 s. Its pool held
        // the key revoked before and after, but the rejection is the latest word.
        let mut b = before.clone();
        rejected(&mut b, 1, 21_000);
        shared.merge_call(&before, &b);
        assert_eq!(shared.state(KeyId(1)), KeyState::Revoked);
        assert_eq!(
            shared.find(KeyId(1)).unwrap().1.rejected_at,
            Some(Time(21_000))
        );
        // It is probed again a whole period after the later of that rejection and the end of
        // the wait A's 429 announced (25 s), not earlier.
        assert!(!shared.reprobe_due(KeyId(1), Time(44_999), Millis(20_000)));
        assert!(shared.reprobe_due(KeyId(1), Time(45_000), Millis(20_000)));
    }

    #[test]
    fn a_reprobe_that_fails_otherwise_does_not_undo_another_calls_lift() {
        let before = key_1_revoked();
        let mut a = before.clone();
        lifted(&mut a, 1, 20_000, KeyState::CoolingDown(Time(25_000)));
        // Call B's re-probe is answered 500 at 21 s: nothing against the key, so its pool
        // only re-arms the re-probe (as `end_probe` does).
        let mut b = before.clone();
        b.entry_mut(KeyId(1)).unwrap().revoked_at = Some(Time(21_000));
        // In either order of merging, the lift stands.
        for order in [[&a, &b], [&b, &a]] {
            let mut shared = before.clone();
            for call in order {
                shared.merge_call(&before, call);
            }
            assert_eq!(shared.state(KeyId(1)), KeyState::CoolingDown(Time(25_000)));
        }
    }

    #[test]
    fn of_a_lift_and_a_rejection_in_concurrent_calls_the_later_stands() {
        let before = key_1_revoked();
        for (rejected_ms, lifted_ms, lift_first) in [
            (41_000, 45_000, false),
            (41_000, 45_000, true),
            (46_000, 45_000, false),
            (46_000, 45_000, true),
            (45_000, 45_000, true),
        ] {
            let mut r = before.clone();
            rejected(&mut r, 1, rejected_ms);
            let mut l = before.clone();
            lifted(&mut l, 1, lifted_ms, KeyState::Ready);
            let mut shared = before.clone();
            let order = if lift_first { [&l, &r] } else { [&r, &l] };
            for call in order {
                shared.merge_call(&before, call);
            }
            // The side that stands brings its count of rejections in a row: none after a
            // lift, the rejection's second (one before the calls started, one in `r`).
            let (expected, rejections_in_a_row) = if lifted_ms >= rejected_ms {
                (KeyState::Ready, 0)
            } else {
                (KeyState::Revoked, 2)
            };
            let case = format!(
                "rejected at {rejected_ms}, lifted at {lifted_ms}, lift merged first: {lift_first}"
            );
            assert_eq!(shared.state(KeyId(1)), expected, "{case}");
            let entry = shared.find(KeyId(1)).unwrap().1;
            assert_eq!(entry.rejections, rejections_in_a_row, "{case}");
        }
    }

    #[test]
    fn a_lift_keeps_a_wait_another_call_learned_while_the_key_was_revoked() {
        let before = pool();
        let mut shared = before.clone();
        // Call B sees key 1 rejected at 7 s; call A, started with it, sees its quota spent
        // at 17 s (exhausted for an hour). The revocation wins, the hour is kept.
        let mut b = before.clone();
        rejected(&mut b, 1, 7_000);
        shared.merge_call(&before, &b);
        let mut a = before.clone();
        a.set_state(KeyId(1), KeyState::Exhausted(Time(3_617_000)));
        shared.merge_call(&before, &a);
        assert_eq!(shared.state(KeyId(1)), KeyState::Revoked);
        // Call B (which never heard of the quota) re-probes at 24 s and is told 429: the key
        // is accepted, but its quota is still spent.
        let b_before = b.clone();
        lifted(&mut b, 1, 24_000, KeyState::CoolingDown(Time(29_000)));
        shared.merge_call(&b_before, &b);
        assert_eq!(shared.state(KeyId(1)), KeyState::Exhausted(Time(3_617_000)));
        assert_eq!(shared.find(KeyId(1)).unwrap().1.held, None);
    }

    #[test]
    fn hint_less_cooldown_counts_merge_like_rejections() {
        let mut before = pool();
        before.entry_mut(KeyId(1)).unwrap().cooldowns = 2;
        // A call that reset the count (a success) while no one else touched it: taken.
        let mut shared = before.clone();
        let mut call = before.clone();
        call.entry_mut(KeyId(1)).unwrap().cooldowns = 0;
        shared.merge_call(&before, &call);
        assert_eq!(shared.find(KeyId(1)).unwrap().1.cooldowns, 0);
        // Two calls that both changed it: the larger count stays.
        let mut shared = before.clone();
        shared.entry_mut(KeyId(1)).unwrap().cooldowns = 4;
        shared.merge_call(&before, &call);
        assert_eq!(shared.find(KeyId(1)).unwrap().1.cooldowns, 4);
        // A call that left it alone does not undo another's change.
        let mut shared = before.clone();
        shared.entry_mut(KeyId(1)).unwrap().cooldowns = 3;
        let mut call = before.clone();
        call.entry_mut(KeyId(2)).unwrap().last_used = Some(Time(9));
        shared.merge_call(&before, &call);
        assert_eq!(shared.find(KeyId(1)).unwrap().1.cooldowns, 3);
    }

    #[test]
    fn a_change_no_one_else_made_is_taken_as_it_is() {
        let mut before = pool();
        before.set_state(KeyId(1), KeyState::Exhausted(Time(3_600_000)));
        let mut shared = before.clone();
        // The call was told the key is good again and used it successfully.
        let mut call = before.clone();
        call.apply(&PoolChange::Restored { key: KeyId(1) }).unwrap();
        shared.merge_call(&before, &call);
        assert_eq!(shared.state(KeyId(1)), KeyState::Ready);
        // A restore applied to the shared pool while the call ran is not undone by a call
        // that changed nothing about the key.
        let mut shared = before.clone();
        shared
            .apply(&PoolChange::Restored { key: KeyId(1) })
            .unwrap();
        shared.merge_call(&before, &before.clone());
        assert_eq!(shared.state(KeyId(1)), KeyState::Ready);
    }
}
