//! Plays one logical call of a [`Caller`] against a schedule's server on a virtual clock,
//! and the oracle that knows the schedule.

use super::caller::{Caller, Step};
use crate::respond::Reply;
use crate::schedule::Schedule;
use crate::server::Server;
use relent::{classify, KeyId, Reason, Time};
use std::collections::BTreeMap;

/// What one call cost and how it ended.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Whether it succeeded.
    pub success: bool,
    /// Upstream sends.
    pub calls: u32,
    /// Sends that could not succeed: a dead, unentitled, spent or rate-limited key, a request
    /// the target refuses, or a send before the reset the server announced for that key.
    pub wasted: u32,
    /// Virtual time from start to the outcome.
    pub elapsed_ms: u64,
}

/// A call still running after this much virtual time is counted as failed.
const GIVE_UP_MS: u64 = 3_600_000;

/// Plays `caller` through one call against a fresh server for `schedule`.
pub fn play(caller: &mut dyn Caller, schedule: &Schedule) -> CallStats {
    let mut server = Server::new(schedule);
    let mut resets: BTreeMap<KeyId, Time> = BTreeMap::new();
    let mut stats = CallStats::default();
    let mut now = Time::ZERO;
    let mut step = caller.start(now);
    for _ in 0..1_000 {
        match step {
            Step::Done(success) => {
                stats.success = success;
                break;
            }
            Step::Wait(until) => {
                now = now.max(until);
                step = caller.on_wake(now);
            }
            Step::Send { target, key } => {
                stats.calls += 1;
                let arrival = Time(now.0 + schedule.latency_ms);
                let served = server.serve(key, target, arrival);
                let early = resets.get(&key).is_some_and(|reset| arrival < *reset);
                if served.doomed || early {
                    stats.wasted += 1;
                }
                if let Some(reset) = served.reset_at {
                    resets.insert(key, reset);
                }
                now = if served.reply == Reply::Hang {
                    Time(now.0 + caller.attempt_timeout_ms())
                } else {
                    arrival
                };
                step = caller.on_reply(now, &served.reply);
            }
        }
        if now.0 > GIVE_UP_MS {
            break;
        }
    }
    stats.elapsed_ms = now.0;
    stats
}

/// Whether a reply is a real success (a 2xx without an error inside).
pub fn is_success(reply: &Reply) -> bool {
    reason_of(reply) == Reason::Success
}

fn reason_of(reply: &Reply) -> Reason {
    match reply {
        // A stream that breaks after its first chunk never completes.
        Reply::StreamThenFail => Reason::ConnectionFailed,
        _ => reply
            .observe(|seen| classify(relent::Provider::Generic, &seen, None).reason)
            .unwrap_or(Reason::Timeout),
    }
}

/// The oracle: it knows when every transient fault ends and how every coin falls, so it
/// never sends into an overload, a flaky failure or a slow response, and it sends at the
/// first moment a send succeeds. What no policy can know without trying is whether a key is
/// dead, spent or rate limited, or whether a target refuses the request: each costs the oracle
/// one send too. Keys are tried in configured order, targets in chain order, within relent's
/// deadline.
pub fn oracle(schedule: &Schedule) -> CallStats {
    let deadline = schedule.policy.deadline_ms;
    let latency = schedule.latency_ms;
    let mut server = Server::new(schedule);
    let mut stats = CallStats::default();
    let mut now = 0u64;
    for (t, target) in schedule.targets.iter().enumerate() {
        let keys: Vec<KeyId> = target.keys.iter().map(|k| k.id).collect();
        // Discover the keys that fail for good reasons of their own, in order. A refusal that
        // is about the request or the target (not the key) rules out the whole target.
        let mut target_refuses = false;
        for key in &keys {
            let mut probe = server.clone();
            let served = probe.serve(*key, t, Time(now + latency));
            if is_success(&served.reply) {
                stats.calls += 1;
                stats.success = true;
                stats.elapsed_ms = now + latency;
                return stats;
            }
            if served.doomed {
                server.serve(*key, t, Time(now + latency));
                stats.calls += 1;
                stats.wasted += 1;
                now += latency;
                if reason_of(&served.reply).scope() != relent::classify::Scope::Key {
                    target_refuses = true;
                    break;
                }
            }
        }
        if target_refuses {
            continue;
        }
        // Then send at the first moment any key of this target succeeds. A fault decided by a
        // coin (or by a count of sends) only moves on when a send spends it, so when waiting
        // alone cannot help, the oracle spends one and looks again.
        for _ in 0..4 {
            let mut at = now;
            while at + latency < deadline {
                for key in &keys {
                    let mut probe = server.clone();
                    if is_success(&probe.serve(*key, t, Time(at + latency)).reply) {
                        server.serve(*key, t, Time(at + latency));
                        stats.calls += 1;
                        stats.success = true;
                        stats.elapsed_ms = at + latency;
                        return stats;
                    }
                }
                at += 100;
            }
            // Spend a send on the key whose coin or count it moves, a failing one that is not
            // doomed if there is such a key.
            let movable: Vec<(KeyId, bool)> = keys
                .iter()
                .filter_map(|k| {
                    let mut probe = server.clone();
                    let doomed = probe.serve(*k, t, Time(now + latency)).doomed;
                    (!probe.same_state(&server)).then_some((*k, doomed))
                })
                .collect();
            let Some((key, _)) = movable
                .iter()
                .find(|(_, doomed)| !doomed)
                .or(movable.first())
                .copied()
            else {
                break; // nothing a send could change: this target cannot succeed in time
            };
            let key = &key;
            let served = server.serve(*key, t, Time(now + latency));
            stats.calls += 1;
            stats.wasted += u32::from(served.doomed);
            now += if served.reply == Reply::Hang {
                schedule.policy.attempt_timeout_ms
            } else {
                latency
            };
        }
    }
    stats.elapsed_ms = now;
    stats
}
