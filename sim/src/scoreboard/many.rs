//! Many clients against one provider with a capacity: load amplification, synchronized
//! bursts, and metastability.
//!
//! Each logical call runs its own client (the AWS SDK's clients share one retry quota, as
//! the clients of one process do). The provider serves at most its capacity per second
//! (a sliding one-second window) and answers every other send with Anthropic's 529; during an
//! outage it answers everything with 529.

use super::caller::{Caller, Step};
use crate::respond::{self, Reply};
use relent::{Provider, Time};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// The window over which amplification and goodput are measured.
pub const WINDOW_MS: u64 = 5_000;
const LATENCY_MS: u64 = 300;

/// A multi-client load: when calls arrive and what the provider can take.
#[derive(Clone, Debug)]
pub struct Load {
    /// The family's name.
    pub name: &'static str,
    /// What it is.
    pub about: &'static str,
    /// Arrival time of each call, ms.
    pub arrivals: Vec<u64>,
    /// Requests per second the provider serves outside `reduced`.
    pub capacity: usize,
    /// A window with a reduced capacity: (from, until, capacity); 0 is an outage.
    pub reduced: Option<(u64, u64, usize)>,
    /// The window over which steady amplification is measured.
    pub steady: (u64, u64),
    /// When the trigger ends (goodput recovery is measured from here), for metastability.
    pub trigger_end: Option<u64>,
}

impl Load {
    /// 600 calls at 10/s for 60 s against 15/s, with an outage (everything 529) from 10 s to
    /// 30 s.
    pub fn many_clients() -> Load {
        Load {
            name: "many-clients-overload",
            about: "600 calls at 10/s against a provider that serves 15/s and answers 529 from 10 s to 30 s",
            arrivals: (0..600).map(|i| i * 100).collect(),
            capacity: 15,
            reduced: Some((10_000, 30_000, 0)),
            steady: (10_000, 30_000),
            trigger_end: None,
        }
    }

    /// 200 clients starting at the same instant against 15/s.
    pub fn synchronized_burst() -> Load {
        Load {
            name: "synchronized-burst",
            about: "200 calls starting at one instant against a provider that serves 15/s",
            arrivals: vec![0; 200],
            capacity: 15,
            reduced: None,
            steady: (0, 60_000),
            trigger_end: None,
        }
    }

    /// Open-loop arrivals at 70 % of a 20/s capacity for 120 s; capacity halved for 5 s.
    pub fn metastable() -> Load {
        Load {
            name: "metastable",
            about: "14 calls/s for 120 s against 20/s (70 %), capacity halved from 30 s to 35 s",
            arrivals: (0..1680).map(|i| i * 1000 / 14).collect(),
            capacity: 20,
            reduced: Some((30_000, 35_000, 10)),
            steady: (35_000, 120_000),
            trigger_end: Some(35_000),
        }
    }

    /// Every multi-client load, in report order.
    pub fn all() -> Vec<Load> {
        vec![
            Load::many_clients(),
            Load::synchronized_burst(),
            Load::metastable(),
        ]
    }

    fn capacity_at(&self, at: u64) -> usize {
        match self.reduced {
            Some((from, until, cap)) if (from..until).contains(&at) => cap,
            _ => self.capacity,
        }
    }
}

/// What a multi-client run measured.
#[derive(Clone, Debug, Default)]
pub struct ManyStats {
    /// Logical calls.
    pub calls: u64,
    /// Successes.
    pub successes: u64,
    /// Successes within 120 s of their call's start.
    pub successes_120s: u64,
    /// Upstream sends.
    pub upstream: u64,
    /// Sends answered 529.
    pub wasted: u64,
    /// Upstream sends per window divided by arrivals in it; the peak.
    pub peak_amplification: f64,
    /// Sends divided by arrivals over the load's steady window.
    pub steady_amplification: f64,
    /// Per-window amplification, for the chart.
    pub amplification: Vec<f64>,
    /// Time from the trigger's end until goodput (successes per window over arrivals per
    /// window) is back at 95 % and stays there; `None` when it never is.
    pub recovery_ms: Option<u64>,
    /// Time to outcome of each call.
    pub elapsed_ms: Vec<u64>,
}

/// Runs `load` with one client per call from `make`.
pub fn run(load: &Load, make: &mut dyn FnMut(u64) -> Box<dyn Caller>) -> ManyStats {
    let n = load.arrivals.len() as u64;
    let mut clients: Vec<Box<dyn Caller>> = (0..n).map(&mut *make).collect();
    let mut started = vec![0u64; n as usize];
    // (time, client, event): 0 start, 1 reply, 2 wake.
    let mut queue: BinaryHeap<Reverse<(u64, u64, u8)>> = load
        .arrivals
        .iter()
        .enumerate()
        .map(|(i, at)| Reverse((*at, i as u64, 0u8)))
        .collect();
    let mut pending: Vec<Option<Reply>> = vec![None; n as usize];
    let mut served: VecDeque<u64> = VecDeque::new();
    let horizon = load.arrivals.iter().copied().max().unwrap_or(0) + 240_000;
    let windows = (horizon / WINDOW_MS) as usize + 1;
    let mut sends = vec![0u64; windows];
    let mut goodput = vec![0u64; windows];
    let mut stats = ManyStats {
        calls: n,
        ..ManyStats::default()
    };
    let ok = respond::success(Provider::Anthropic);
    let overloaded = respond::fault(Provider::Anthropic, crate::FaultKind::Overloaded, 0, 0);
    let mut steps = 0;
    while let Some(Reverse((now, i, event))) = queue.pop() {
        steps += 1;
        if steps > 2_000_000 || now > horizon {
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
                let reply = if served.len() < load.capacity_at(arrival) {
                    served.push_back(arrival);
                    ok.clone()
                } else {
                    stats.wasted += 1;
                    overloaded.clone()
                };
                pending[i as usize] = Some(reply);
                queue.push(Reverse((arrival, i, 1)));
            }
            Step::Wait(until) => queue.push(Reverse((until.0.max(now), i, 2))),
            Step::Done(success) => {
                let elapsed = now - started[i as usize];
                if success {
                    stats.successes += 1;
                    stats.successes_120s += u64::from(elapsed <= 120_000);
                    if let Some(w) = goodput.get_mut((now / WINDOW_MS) as usize) {
                        *w += 1;
                    }
                }
                stats.elapsed_ms.push(elapsed);
            }
        }
    }
    // Calls still running at the horizon are counted as failed at the horizon.
    while (stats.elapsed_ms.len() as u64) < n {
        stats.elapsed_ms.push(horizon);
    }
    let arrivals_per_window = |w: usize| {
        let (from, until) = (w as u64 * WINDOW_MS, (w as u64 + 1) * WINDOW_MS);
        load.arrivals
            .iter()
            .filter(|a| (from..until).contains(*a))
            .count() as u64
    };
    stats.amplification = (0..windows)
        .map(|w| match arrivals_per_window(w) {
            0 => 0.0,
            a => sends[w] as f64 / a as f64,
        })
        .collect();
    stats.peak_amplification = stats.amplification.iter().copied().fold(0.0, f64::max);
    let (from, until) = load.steady;
    let window_range = (from / WINDOW_MS) as usize..(until / WINDOW_MS) as usize;
    let steady_sends: u64 = sends[window_range.clone()].iter().sum();
    let steady_arrivals: u64 = window_range.clone().map(arrivals_per_window).sum();
    stats.steady_amplification = if steady_arrivals == 0 {
        // A burst: every send over every call.
        stats.upstream as f64 / n.max(1) as f64
    } else {
        steady_sends as f64 / steady_arrivals as f64
    };
    if let Some(end) = load.trigger_end {
        let last = (load.arrivals.iter().copied().max().unwrap_or(0) / WINDOW_MS) as usize;
        let first = (end / WINDOW_MS) as usize;
        let good = |w: usize| {
            let a = arrivals_per_window(w);
            a == 0 || goodput[w] as f64 >= 0.95 * a as f64
        };
        stats.recovery_ms = (first..last)
            .find(|w| (*w..last).all(good))
            .map(|w| (w as u64 * WINDOW_MS).saturating_sub(end));
    }
    stats
}
