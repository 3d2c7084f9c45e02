//! The client's pool, shared by every running call.
//!
//! One `Mutex<Pool>` and a version counter on a `watch` channel. Before each decision a
//! call *syncs*: under the lock it merges what it learned since its last sync into the
//! shared pool ([`Pool::merge_call`], so no call undoes another's revocation) and reads
//! back what the others learned, which it feeds its machine as pool changes. A `watch`
//! channel keeps only the latest version, so a call that was busy never misses a change:
//! it compares states, not messages. There is nothing to lag behind or drop.
//!
//! The client's overload state (retry budget and breakers, [`Overload`]) is shared the
//! same way: each sync folds the call's spending and breaker changes into the client's
//! ([`Overload::merge_call`]) and hands the machine the result
//! ([`RetryMachine::sync_overload`]), so concurrent calls draw on one budget.
//!
//! With a fleet store ([`crate::store`]), what the shared pool learns also goes to an
//! outbox the store's link writes out, and what the link reads comes in through
//! [`SharedPool::absorb`], like an outside change. The budget's part: every sync adds the
//! call's net budget change (without refill) to two counters, spent and earned, that the
//! link reports to the store; the fleet balance the store answers replaces the client's
//! balance, plus what the client's calls did since the counters were read
//! ([`SharedPool::adopt_budget`]).

use crate::error::CallError;
use crate::metrics as m;
use crate::store::Outbox;
use relent::overload::RetryBudget;
use relent::{BudgetPolicy, KeyState, Overload, Pool, PoolChange, RetryMachine, Time};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub(crate) struct SharedPool {
    pool: Mutex<Pool>,
    overload: Mutex<Ledger>,
    version: watch::Sender<u64>,
    /// What goes to the fleet store, when there is one.
    outbox: Option<Arc<Outbox>>,
    /// The budget's policy, reported to the fleet store.
    budget_policy: BudgetPolicy,
}

/// The client's overload state and the budget counters a fleet store is told.
struct Ledger {
    state: Overload,
    /// Milli-tokens the client's calls spent, ever (net per sync, refill left out).
    spent: u64,
    /// Milli-tokens the client's calls earned, ever.
    earned: u64,
}

/// What one call last took from the shared state: the base its next merge starts from.
pub(crate) struct Synced {
    pub(crate) pool: Pool,
    pub(crate) overload: Overload,
}

impl SharedPool {
    pub(crate) fn new(pool: Pool, overload: Overload) -> Self {
        SharedPool {
            pool: Mutex::new(pool),
            overload: Mutex::new(Ledger {
                state: overload,
                spent: 0,
                earned: 0,
            }),
            version: watch::Sender::new(0),
            outbox: None,
            budget_policy: BudgetPolicy::default(),
        }
    }

    /// A shared pool whose news also goes to a fleet store's link through `outbox`.
    pub(crate) fn with_outbox(
        pool: Pool,
        overload: Overload,
        budget_policy: BudgetPolicy,
        outbox: Arc<Outbox>,
    ) -> Self {
        SharedPool {
            outbox: Some(outbox),
            budget_policy,
            ..SharedPool::new(pool, overload)
        }
    }

    /// The budget's policy (what a fleet store is told).
    pub(crate) fn budget_policy(&self) -> BudgetPolicy {
        self.budget_policy
    }

    pub(crate) fn outbox(&self) -> Option<&Arc<Outbox>> {
        self.outbox.as_ref()
    }

    /// Applies changes a fleet store reported (not written back to it) and tells every
    /// running call. `changes` computes them from the pool, under the lock.
    pub(crate) fn absorb(&self, changes: impl FnOnce(&Pool) -> Vec<PoolChange>) {
        let changed = {
            let mut pool = self.lock();
            let before = pool.clone();
            for change in changes(&pool) {
                let _ = pool.apply(&change);
            }
            m::key_state_changes(&before, &pool);
            *pool != before
        };
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// The client's retry budget and breakers now.
    pub(crate) fn overload(&self) -> Overload {
        self.ledger().state.clone()
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.overload.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The budget counters (spent, earned) now, for a report to the fleet store.
    pub(crate) fn budget_counters(&self) -> (u64, u64) {
        let ledger = self.ledger();
        (ledger.spent, ledger.earned)
    }

    /// Takes the fleet's balance, `fleet_milli`, which counts this client's spending up to
    /// the counters `reported` (spent, earned): the client's balance becomes the fleet's
    /// plus what its calls did since, as of `now`.
    /// A negative balance is the fleet's debt ([`RetryBudget::adopt`]).
    pub(crate) fn adopt_budget(&self, reported: (u64, u64), fleet_milli: i64, now: Time) {
        let mut ledger = self.ledger();
        let since = i128::from(ledger.earned)
            - i128::from(reported.1)
            - (i128::from(ledger.spent) - i128::from(reported.0));
        let milli = i128::from(fleet_milli) + since;
        let milli = i64::try_from(milli).unwrap_or(if milli < 0 { i64::MIN } else { i64::MAX });
        ledger.state.budget.adopt(now, milli);
    }

    /// Folds the call's overload changes since `synced` into the client's and hands the
    /// machine the client's state.
    fn sync_overload(&self, machine: &mut RetryMachine, synced: &mut Overload) {
        let mut ledger = self.ledger();
        if *synced != *machine.overload() {
            let change = RetryBudget::call_change(&synced.budget, &machine.overload().budget);
            ledger.state.merge_call(synced, machine.overload());
            if change != 0 {
                let amount = change.unsigned_abs();
                if change < 0 {
                    ledger.spent = ledger.spent.saturating_add(amount);
                } else {
                    ledger.earned = ledger.earned.saturating_add(amount);
                }
                if let Some(outbox) = &self.outbox {
                    outbox.note_budget();
                }
            }
        }
        if ledger.state != *machine.overload() {
            machine.sync_overload(&ledger.state);
        }
        synced.clone_from(&ledger.state);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        // A panic elsewhere while holding the lock cannot leave a pool half-merged in a way
        // that matters more than losing it: keep going with what is there.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn snapshot(&self) -> Pool {
        self.lock().clone()
    }

    /// Every target's model name, in fallback order (without copying the pool).
    pub(crate) fn models(&self) -> Vec<String> {
        self.lock()
            .targets()
            .iter()
            .map(|t| t.model.clone())
            .collect()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Applies a change made from outside and tells every running call.
    pub(crate) fn change(&self, change: &PoolChange) -> Result<(), CallError> {
        {
            let mut pool = self.lock();
            let before = pool.clone();
            pool.apply(change)
                .map_err(|e| CallError::config(e.to_string()))?;
            m::key_state_changes(&before, &pool);
            if let Some(outbox) = &self.outbox {
                outbox.note(&before, &pool);
            }
        }
        self.version.send_modify(|v| *v += 1);
        Ok(())
    }

    /// Pushes what the call learned since `synced` and pulls what the others learned into
    /// `machine`; `synced` moves on to what the shared state now knows of this call.
    pub(crate) fn sync(&self, machine: &mut RetryMachine, synced: &mut Synced, now: Time) {
        self.sync_overload(machine, &mut synced.overload);
        let synced = &mut synced.pool;
        if machine.state().is_terminal() && synced == machine.pool() {
            return;
        }
        let learned = synced != machine.pool();
        let changes = {
            let mut shared = self.lock();
            if learned {
                m::key_state_changes(synced, machine.pool());
                let before = self.outbox.is_some().then(|| shared.clone());
                shared.merge_call(synced, machine.pool());
                if let (Some(outbox), Some(before)) = (&self.outbox, before) {
                    outbox.note(&before, &shared);
                }
            }
            differences(&shared, machine.pool())
        };
        synced.clone_from(machine.pool());
        for change in changes {
            // The same change on `synced`, so the next push carries only the call's own.
            if machine.handle_pool_change(now, change.clone()).is_ok() {
                let _ = synced.apply(&change);
            }
        }
        if learned {
            self.version.send_modify(|v| *v += 1);
        }
    }
}

/// The pool changes that bring `mine` to the key states of `shared`.
fn differences(shared: &Pool, mine: &Pool) -> Vec<PoolChange> {
    let mut changes = Vec::new();
    for (target, entry) in shared.all_keys() {
        let id = entry.spec.id;
        let theirs = entry.state;
        let ours = match mine.find(id) {
            Some((_, k)) => k.state,
            None => {
                if theirs == KeyState::Removed {
                    continue;
                }
                changes.push(PoolChange::Added {
                    target,
                    key: entry.spec.clone(),
                });
                KeyState::Ready
            }
        };
        if theirs == ours || ours == KeyState::Removed {
            continue;
        }
        if theirs == KeyState::Removed {
            changes.push(PoolChange::Removed { key: id });
            continue;
        }
        let bad = |state: KeyState| PoolChange::MarkedBad {
            key: id,
            until: state.ready_at(),
        };
        // `None` is "never usable": later than any time.
        let later = |x: Option<Time>, y: Option<Time>| match (x, y) {
            (None, Some(_)) => true,
            (Some(x), Some(y)) => x > y,
            _ => false,
        };
        let (a, b) = (theirs.ready_at(), ours.ready_at());
        if later(a, b) {
            // Theirs is usable later (or never): mark ours as bad as theirs.
            changes.push(bad(theirs));
        } else if later(b, a) {
            // Theirs is usable sooner: someone restored it, or it recovered elsewhere.
            changes.push(PoolChange::Restored { key: id });
            if theirs != KeyState::Ready {
                changes.push(bad(theirs));
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use relent::{KeySpec, OverloadPolicy, Provider, Target};

    #[test]
    fn the_fleets_balance_is_adopted_with_what_the_calls_did_since_the_report() {
        let pool = Pool::new(vec![Target::new(
            Provider::Openai,
            "gpt-4o",
            vec![KeySpec::new(1, "a")],
        )])
        .unwrap();
        let policy = OverloadPolicy {
            budget: BudgetPolicy {
                capacity: 10,
                refill_per_sec: 0,
                ..BudgetPolicy::default()
            },
            ..OverloadPolicy::default()
        };
        let shared = SharedPool::new(pool, Overload::new(&policy, 1));
        {
            let mut ledger = shared.ledger();
            ledger.spent = 7_000; // 5 tokens reported, 2 more spent since
            ledger.earned = 1_000; // and 1 earned since
        }
        // The fleet has 4 tokens once it counted the 5: this client holds 4 - 2 + 1.
        shared.adopt_budget((5_000, 0), 4_000, Time(10));
        assert_eq!(shared.overload().budget.milli(), 3_000);
        // A fleet in debt: the client holds nothing.
        shared.adopt_budget((7_000, 1_000), -2_000, Time(20));
        assert_eq!(shared.overload().budget.milli(), 0);
        assert_eq!(shared.budget_counters(), (7_000, 1_000));
    }
}
