//! Plays one logical call of a [`Caller`] against a schedule's server on a virtual clock,
//! and the oracle that knows the schedule.

use super::caller::{Caller, Step};
use crate::respond::Reply;
use crate::schedule::Schedule;
use crate::server::Server;
use relent::{classify, KeyId, Reason, Time};

/// What one call cost and how it ended.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Whether it succeeded (at any time before the simulator gives up, [`GIVE_UP_MS`]).
    pub success: bool,
    /// Upstream sends.
    pub calls: u32,
    /// Sends that could not succeed given the ground truth: every send whose reply was not a
    /// real success (a dead, spent or rate-limited key, a refused request, and also a send
    /// into an overload, a server error, a reset or a hang).
    pub wasted: u32,
    /// Virtual time from start to the outcome.
    pub elapsed_ms: u64,
}

impl CallStats {
    /// Whether the call succeeded within `deadline_ms` of its start.
    pub fn success_within(&self, deadline_ms: u64) -> bool {
        self.success && self.elapsed_ms <= deadline_ms
    }
}

/// The attempt timeout every baseline gets (relent's default).
pub const BASELINE_TIMEOUT_MS: u64 = 60_000;

/// A call still running after this much virtual time is counted as failed.
pub const GIVE_UP_MS: u64 = 3_600_000;

/// Plays `caller` through one call against a fresh server for `schedule`.
pub fn play(caller: &mut dyn Caller, schedule: &Schedule) -> CallStats {
    play_on(caller, &mut Server::new(schedule), schedule, Time::ZERO)
}

/// Plays `calls` calls in a row over one client, its state carried from call to call (see
/// [`Caller::next_call`]); call `i` starts at `i · gap_ms` or when call `i − 1` ends,
/// whichever is later, against one server whose clock runs on. `make(i)` makes a fresh
/// client for a policy that keeps nothing between calls.
pub fn play_sequence(
    make: &mut dyn FnMut(u64) -> Box<dyn Caller>,
    schedule: &Schedule,
    calls: u32,
    gap_ms: u64,
) -> Vec<CallStats> {
    let mut server = Server::new(schedule);
    let mut client = make(0);
    let mut now = 0;
    let mut out = Vec::with_capacity(calls as usize);
    for i in 0..calls {
        if i > 0 && !client.next_call() {
            client = make(u64::from(i));
        }
        let start = now.max(u64::from(i) * gap_ms);
        let stats = play_on(client.as_mut(), &mut server, schedule, Time(start));
        now = start + stats.elapsed_ms;
        out.push(stats);
    }
    out
}

/// Plays one call starting at `start` against `server`; times in the result are relative
/// to `start`.
fn play_on(
    caller: &mut dyn Caller,
    server: &mut Server<'_>,
    schedule: &Schedule,
    start: Time,
) -> CallStats {
    let mut stats = CallStats::default();
    let mut now = start;
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
                if !is_success(&served.reply) {
                    stats.wasted += 1;
                }
                now = if served.reply == Reply::Hang {
                    Time(now.0 + caller.attempt_timeout_ms())
                } else {
                    arrival
                };
                step = caller.on_reply(now, &served.reply);
            }
        }
        if now.0 - start.0 > GIVE_UP_MS {
            break;
        }
    }
    // A call still waiting at the simulator's horizon is reported at the horizon.
    stats.elapsed_ms = (now.0 - start.0).min(GIVE_UP_MS);
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

/// The oracle: a per-call lower bound that knows the ground truth (every fault's window,
/// every coin the server will flip and every count it keeps) and holds the world's limits:
/// the deadline it is given (a success must arrive by it), `max_attempts` and
/// `max_attempts_per_target` of the world's policy (the one relent plays with), and a hang
/// costs it the shorter of that policy's attempt timeout and the baselines' 60 s.
///
/// A *schedule* is a sequence of sends (target, key, send time). Over every schedule that
/// ends in a success within `deadline_ms`, the oracle reports the fewest sends
/// ([`CallStats::calls`], so `wasted` = that − 1) and, separately, the earliest success
/// ([`CallStats::elapsed_ms`]); each is a bound no policy can beat, though the two may come
/// from different schedules. When no schedule succeeds, it makes no send and fails at time 0
/// (it knows). Nothing else is capped.
///
/// It is exact because the server is a function of its state (coin stream and per-fault
/// counts) and the arrival time, and is constant in time between fault boundaries; waiting is
/// free, so for each reachable server state only the earliest time matters; and a send that
/// neither succeeds nor changes the state can be dropped from any schedule. The search is
/// breadth-first in the number of sends, over sends at the current time or at a fault
/// boundary, deduplicating states.
pub fn oracle(schedule: &Schedule, deadline_ms: u64) -> CallStats {
    let policy = &schedule.policy;
    let latency = schedule.latency_ms;
    let mut boundaries: Vec<u64> = schedule
        .faults
        .iter()
        .flat_map(|f| [Some(f.from_ms), f.until_ms])
        .chain([schedule.heal_at_ms])
        .flatten()
        .collect();
    boundaries.sort_unstable();
    boundaries.dedup();
    let sends: Vec<(usize, KeyId)> = schedule
        .targets
        .iter()
        .enumerate()
        .flat_map(|(t, target)| target.keys.iter().map(move |k| (t, k.id)))
        .collect();
    struct Node<'a> {
        server: Server<'a>,
        at: u64,
        per_target: Vec<u32>,
    }
    let mut frontier = vec![Node {
        server: Server::new(schedule),
        at: 0,
        per_target: vec![0; schedule.targets.len()],
    }];
    let mut fewest: Option<u32> = None;
    let mut earliest: Option<u64> = None;
    for depth in 1..=policy.max_attempts {
        // Every later success arrives at least one latency after the earliest node.
        let floor = frontier.iter().map(|n| n.at).min();
        match (floor, earliest) {
            (None, _) => break,
            (Some(f), Some(e)) if f + latency >= e => break,
            _ => {}
        }
        let mut next: Vec<Node> = Vec::new();
        for node in &frontier {
            for &(t, key) in &sends {
                if node.per_target[t] >= policy.max_attempts_per_target {
                    continue;
                }
                let arrivals = std::iter::once(node.at + latency).chain(
                    boundaries
                        .iter()
                        .copied()
                        .filter(|b| *b > node.at + latency),
                );
                for arrival in arrivals {
                    if arrival > deadline_ms {
                        break;
                    }
                    let mut probe = node.server.clone();
                    let served = probe.serve(key, t, Time(arrival));
                    if is_success(&served.reply) {
                        fewest.get_or_insert(depth);
                        earliest = Some(earliest.map_or(arrival, |e| e.min(arrival)));
                        break; // a later arrival with the same key is no better
                    }
                    if probe.same_state(&node.server) {
                        continue;
                    }
                    let done = if served.reply == Reply::Hang {
                        // The shortest attempt timeout any contender has.
                        arrival - latency + policy.attempt_timeout_ms.min(BASELINE_TIMEOUT_MS)
                    } else {
                        arrival
                    };
                    let mut per_target = node.per_target.clone();
                    per_target[t] += 1;
                    match next
                        .iter_mut()
                        .find(|n| n.per_target == per_target && n.server.same_state(&probe))
                    {
                        Some(n) => n.at = n.at.min(done),
                        None => next.push(Node {
                            server: probe,
                            at: done,
                            per_target,
                        }),
                    }
                }
            }
        }
        frontier = next;
    }
    match (fewest, earliest) {
        (Some(calls), Some(at)) => CallStats {
            success: true,
            calls,
            wasted: calls - 1,
            elapsed_ms: at,
        },
        _ => CallStats::default(),
    }
}
