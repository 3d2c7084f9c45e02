//! Many seeds at once: run, check, and summarise.

use crate::generate::generate;
use crate::invariants::Violation;
use crate::marks::Marks;
use crate::runner::{run, Outcome, RunOptions};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// One seed that broke an invariant.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What broke.
    pub violations: Vec<Violation>,
    /// The command that replays it.
    pub reproduce: String,
}

/// The summary of a multi-seed run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Worlds run.
    pub worlds: u64,
    /// Failing seeds (at most 100 kept).
    pub failures: Vec<Failure>,
    /// Total failing seeds.
    pub failing_seeds: u64,
    /// Marks reached.
    pub marks: Marks,
    /// Required marks not reached.
    pub missing_marks: Vec<String>,
    /// Outcomes by name.
    pub outcomes: BTreeMap<String, u64>,
    /// Sends per call: count of calls with that many sends.
    pub attempts: BTreeMap<u32, u64>,
    /// Virtual time to outcome, percentiles in ms (p50, p90, p99, max).
    pub virtual_ms: [u64; 4],
    /// Worlds whose single-key-dead check ran (exactly one usable key and a key fault).
    pub single_dead_key_worlds: u64,
    /// Seeds checked twice for determinism.
    pub determinism_checked: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// A digest of every world's steps (see [`crate::RunReport::digest`]), combined so that
    /// the order the threads finish in does not matter: the same seeds give the same digest
    /// in any process, with any number of jobs.
    #[serde(serialize_with = "hex")]
    pub digest: u64,
}

fn hex<S: serde::Serializer>(digest: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{digest:016x}"))
}

/// Mixes a world's digest with its seed (splitmix64's finaliser).
fn mix(seed: u64, digest: u64) -> u64 {
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ digest;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs seeds `start..start + count` on `jobs` threads. Every `determinism_every`-th seed is
/// run twice and the traces compared (invariant 7). `progress` is called with the number of
/// worlds done so far, from one thread, now and then.
pub fn run_seeds(
    start: u64,
    count: u64,
    jobs: usize,
    determinism_every: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Summary {
    let begun = std::time::Instant::now();
    let done = AtomicU64::new(0);
    let jobs = jobs.max(1) as u64;
    let parts: Vec<Summary> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|j| {
                let done = &done;
                scope.spawn(move || {
                    let mut part = Summary::default();
                    let mut times = Vec::new();
                    let mut seed = start + j;
                    while seed < start + count {
                        one_seed(seed, determinism_every, &mut part, &mut times);
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if j == 0 && n % 4096 == 0 {
                            progress(n);
                        }
                        seed += jobs;
                    }
                    (part, times)
                })
            })
            .collect();
        let mut all_times = Vec::new();
        let mut parts = Vec::new();
        for h in handles {
            let (part, times) = h.join().expect("a simulation thread panicked");
            all_times.extend(times);
            parts.push(part);
        }
        all_times.sort_unstable();
        let pct = |p: f64| {
            all_times
                .get(((all_times.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        let mut first = Summary {
            virtual_ms: [
                pct(0.5),
                pct(0.9),
                pct(0.99),
                all_times.last().copied().unwrap_or(0),
            ],
            ..Summary::default()
        };
        for p in parts {
            merge(&mut first, p);
        }
        vec![first]
    });
    let mut summary = parts.into_iter().next().unwrap_or_default();
    summary.failures.sort_by_key(|f| f.seed);
    summary.failures.truncate(100);
    summary.missing_marks = summary.marks.missing();
    summary.seconds = begun.elapsed().as_secs_f64();
    summary
}

fn one_seed(seed: u64, determinism_every: u64, part: &mut Summary, times: &mut Vec<u64>) {
    let schedule = generate(seed);
    let check_determinism = determinism_every > 0 && seed % determinism_every == 0;
    // The worlds checked for determinism also get the full secret scan (every trace's JSON
    // and every machine's `Debug` output), which costs more than the world itself.
    let report = run(
        &schedule,
        RunOptions {
            keep_trace: check_determinism,
            deep_secret_scan: check_determinism,
            raw_responses: false,
        },
    );
    let mut violations = report.violations.clone();
    if check_determinism {
        part.determinism_checked += 1;
        // The second run hands the machine the replies' bytes where the first handed it
        // kept verdicts (`crate::verdicts`): the same world, so the same steps.
        let again = run(
            &schedule,
            RunOptions {
                keep_trace: true,
                raw_responses: true,
                ..RunOptions::default()
            },
        );
        // Entry-by-entry equality: equal traces serialise to the same bytes (invariant 7
        // asks for byte-identical traces), and comparing is stronger than comparing hashes
        // and cheaper than serialising both.
        if report.trace != again.trace || report.digest != again.digest {
            violations.push(Violation {
                invariant: 7,
                at_ms: 0,
                detail: "the same seed produced a different trace (the second run classified \
                         the raw replies, the first used kept verdicts)"
                    .into(),
            });
        }
    }
    if is_single_dead_key(&schedule) {
        part.single_dead_key_worlds += 1;
        if report.outcome != Outcome::Aborted(relent::AbortReason::AuthPermanent)
            || report.attempts > 2
        {
            violations.push(Violation {
                invariant: 1,
                at_ms: report.virtual_elapsed_ms,
                detail: format!(
                    "single dead key ended {} after {} attempts",
                    report.outcome.name(),
                    report.attempts
                ),
            });
        }
    }
    part.worlds += 1;
    part.digest = part.digest.wrapping_add(mix(seed, report.digest));
    part.marks.merge(&report.marks);
    // The tally has a dozen names: find this one without building it.
    let (a, b) = report.outcome.name_parts();
    let tallied = part
        .outcomes
        .iter_mut()
        .find(|(k, _)| k.len() == a.len() + b.len() && k.starts_with(a) && k.ends_with(b));
    match tallied {
        Some((_, n)) => *n += 1,
        None => {
            part.outcomes.insert(report.outcome.name(), 1);
        }
    }
    *part.attempts.entry(report.attempts).or_default() += 1;
    times.push(report.virtual_elapsed_ms);
    if !violations.is_empty() {
        part.failing_seeds += 1;
        if part.failures.len() < 100 {
            part.failures.push(Failure {
                seed,
                violations,
                reproduce: format!("relent sim replay --seed {seed}"),
            });
        }
    }
}

/// A world with exactly one key, dead from the start, no pool changes and no cancel.
pub fn is_single_dead_key(s: &crate::Schedule) -> bool {
    use crate::schedule::{FaultKind, FaultScope};
    let keys = s.all_keys();
    keys.len() == 1
        && s.calls.is_empty()
        && s.pool_changes.is_empty()
        && s.cancel_at_ms.is_none()
        && s.heal_at_ms.is_none()
        && s.faults.first().is_some_and(|f| {
            f.kind == FaultKind::KeyRejected
                && f.scope == FaultScope::Key(keys[0])
                && f.from_ms == 0
                && f.until_ms.is_none()
                && f.first_sends.is_none()
                && f.probability >= 1.0
        })
}

/// A 64-bit FNV-1a hash of the trace's JSON.
pub fn fingerprint(trace: &[relent::machine::TraceEntry]) -> u64 {
    let bytes = serde_json::to_vec(trace).unwrap_or_default();
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn merge(into: &mut Summary, part: Summary) {
    into.worlds += part.worlds;
    into.digest = into.digest.wrapping_add(part.digest);
    into.failing_seeds += part.failing_seeds;
    into.failures.extend(part.failures);
    into.marks.merge(&part.marks);
    for (k, v) in part.outcomes {
        *into.outcomes.entry(k).or_default() += v;
    }
    for (k, v) in part.attempts {
        *into.attempts.entry(k).or_default() += v;
    }
    into.single_dead_key_worlds += part.single_dead_key_worlds;
    into.determinism_checked += part.determinism_checked;
}
