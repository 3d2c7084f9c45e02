//! Many clients against one overloaded provider: load amplification over time.
//!
//! 600 logical calls arrive at 10 per second for 60 s. The provider serves at most 15
//! requests per second and answers everything with Anthropic's 529 between 10 s and 30 s.
//! Each call runs its own client; the AWS SDK's clients share one retry quota, as the clients
//! of one process do.

use super::caller::{Caller, Step};
use crate::respond::{self, Reply};
use relent::{Provider, Time};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Arrivals per second.
pub const RATE: u64 = 10;
/// How long calls keep arriving.
pub const ARRIVALS_MS: u64 = 60_000;
/// Requests per second the provider can serve.
pub const CAPACITY: usize = 15;
/// The outage.
pub const OUTAGE_MS: (u64, u64) = (10_000, 30_000);
/// The window over which amplification is measured.
pub const WINDOW_MS: u64 = 5_000;
const LATENCY_MS: u64 = 300;

/// What the many-clients run measured.
#[derive(Clone, Debug, Default)]
pub struct ManyStats {
    /// Logical calls.
    pub calls: u64,
    /// Successes.
    pub successes: u64,
    /// Upstream sends.
    pub upstream: u64,
    /// Upstream sends per 5-s window divided by arrivals in it; the peak.
    pub peak_amplification: f64,
    /// Per-window amplification, for the chart.
    pub amplification: Vec<f64>,
    /// Time to outcome of each call.
    pub elapsed_ms: Vec<u64>,
}

/// Runs the family with one client per call from `make`.
pub fn run(make: &mut dyn FnMut(u64) -> Box<dyn Caller>) -> ManyStats {
    let n = RATE * ARRIVALS_MS / 1000;
    let mut clients: Vec<Box<dyn Caller>> = (0..n).map(&mut *make).collect();
    let mut started = vec![0u64; n as usize];
    // (time, client, event): 0 start, 1 reply, 2 wake.
    let mut queue: BinaryHeap<Reverse<(u64, u64, u8)>> =
        (0..n).map(|i| Reverse((i * 1000 / RATE, i, 0u8))).collect();
    let mut pending: Vec<Option<Reply>> = vec![None; n as usize];
    let mut served: VecDeque<u64> = VecDeque::new();
    let windows = (ARRIVALS_MS * 4 / WINDOW_MS) as usize;
    let mut sends = vec![0u64; windows];
    let mut stats = ManyStats {
        calls: n,
        ..ManyStats::default()
    };
    let ok = respond::success(Provider::Anthropic);
    let overloaded = respond::fault(Provider::Anthropic, crate::FaultKind::Overloaded, 0, 0);
    let mut steps = 0;
    while let Some(Reverse((now, i, event))) = queue.pop() {
        steps += 1;
        if steps > 1_000_000 {
            break;
        }
        let client = &mut clients[i as usize];
        let step = match event {
            0 => {
                started[i as usize] = now;
                client.start(Time(now))
            }
            1 => {
                let reply = pending[i as usize].take().unwrap_or(Reply::Hang);
                client.on_reply(Time(now), &reply)
            }
            _ => client.on_wake(Time(now)),
        };
        match step {
            Step::Send { .. } => {
                stats.upstream += 1;
                if let Some(w) = sends.get_mut((now / WINDOW_MS) as usize) {
                    *w += 1;
                }
                let arrival = now + LATENCY_MS;
                while served.front().is_some_and(|t| *t + 1000 <= arrival) {
                    served.pop_front();
                }
                let outage = (OUTAGE_MS.0..OUTAGE_MS.1).contains(&arrival);
                let reply = if !outage && served.len() < CAPACITY {
                    served.push_back(arrival);
                    ok.clone()
                } else {
                    overloaded.clone()
                };
                pending[i as usize] = Some(reply);
                queue.push(Reverse((arrival, i, 1)));
            }
            Step::Wait(until) => queue.push(Reverse((until.0.max(now), i, 2))),
            Step::Done(success) => {
                stats.successes += u64::from(success);
                stats.elapsed_ms.push(now - started[i as usize]);
            }
        }
    }
    let per_window = RATE * WINDOW_MS / 1000;
    let arrival_windows = (ARRIVALS_MS / WINDOW_MS) as usize;
    stats.amplification = sends
        .iter()
        .take(arrival_windows)
        .map(|s| *s as f64 / per_window as f64)
        .collect();
    stats.peak_amplification = stats.amplification.iter().copied().fold(0.0, f64::max);
    stats
}
