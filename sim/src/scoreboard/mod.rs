//! The scoreboard: relent against the published retry policies of other systems, on the
//! same seeded worlds, measured by what they cost a user: failed calls (at a common 120 s
//! deadline and without one), upstream and wasted sends, time to outcome, time to an
//! actionable error, and load amplification; with a true oracle as the bound.

pub mod baselines;
pub mod caller;
pub mod families;
pub mod file;
pub mod fleet;
pub mod many;
pub mod play;
mod report;

pub use report::{render_svg, render_table};

use crate::schedule::Schedule;
use caller::{Caller, Relent};
use families::Family;
use many::Load;
use play::{oracle, play, play_sequence, CallStats, GIVE_UP_MS};
use relent::Policy;
use serde::Serialize;

/// The policies, in report order. `oracle` is a bound, not a contender.
pub const POLICIES: [&str; 10] = [
    "relent",
    "openai-sdk",
    "anthropic-sdk",
    "vercel-ai-sdk",
    "litellm-router",
    "hermes-agent",
    "aws-standard",
    "async-openai",
    "backon",
    "oracle",
];

/// The deadline every policy's success is also reported at.
pub const COMMON_DEADLINE_MS: u64 = 120_000;

/// One policy's results on one family.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The policy.
    pub policy: &'static str,
    /// Logical calls.
    pub calls: u64,
    /// Calls that succeeded within [`COMMON_DEADLINE_MS`] of their start.
    pub successes: u64,
    /// Calls that succeeded at any time (the simulator gives up after an hour).
    pub successes_no_deadline: u64,
    /// Upstream sends per logical call.
    pub upstream_per_call: f64,
    /// Wasted sends (every send whose reply was not a success) per logical call.
    pub wasted_per_call: f64,
    /// Virtual time to outcome, median (ms).
    pub p50_ms: u64,
    /// 99th percentile.
    pub p99_ms: u64,
    /// Median time to give up on calls that cannot succeed (the oracle fails them too), ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_error_ms: Option<u64>,
    /// Peak load amplification (multi-client families only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_amplification: Option<f64>,
    /// Amplification over the load's steady window (multi-client families only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_amplification: Option<f64>,
    /// Metastable family: time after the trigger until goodput is back at 95 %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_ms: Option<u64>,
}

impl Row {
    /// Success rate at the common deadline, in [0, 1].
    pub fn success_rate(&self) -> f64 {
        self.successes as f64 / self.calls.max(1) as f64
    }

    /// Success rate with no deadline, in [0, 1].
    pub fn success_rate_no_deadline(&self) -> f64 {
        self.successes_no_deadline as f64 / self.calls.max(1) as f64
    }
}

/// One family's table and verdict.
#[derive(Clone, Debug, Serialize)]
pub struct FamilyReport {
    /// The family (a sweep point names its parameter).
    pub family: String,
    /// What it is.
    pub about: String,
    /// One row per policy.
    pub rows: Vec<Row>,
    /// Whether relent meets the bar here.
    pub relent_meets_bar: bool,
    /// Why not, when it does not.
    pub notes: Vec<String>,
}

impl FamilyReport {
    /// The row of `policy`.
    pub fn row(&self, policy: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.policy == policy)
    }
}

/// Every family's report.
#[derive(Clone, Debug, Serialize)]
pub struct Scoreboard {
    /// Seeds per family.
    pub seeds: u64,
    /// The families.
    pub families: Vec<FamilyReport>,
}

/// A fresh client of `policy` for one call in `schedule`'s world. relent plays with
/// `relent_policy` when given (a user's `--policy`), else with the world's own policy.
pub fn caller(
    policy: &str,
    schedule: &Schedule,
    seed: u64,
    aws: &std::rc::Rc<std::cell::RefCell<u32>>,
    relent_policy: Option<&Policy>,
) -> Box<dyn Caller> {
    let t = &schedule.targets;
    match policy {
        "relent" => Box::new(Relent::new(
            relent_policy.unwrap_or(&schedule.policy).clone(),
            t.clone(),
            seed,
        )),
        "openai-sdk" | "anthropic-sdk" => Box::new(baselines::PythonSdk::new(t, seed)),
        "vercel-ai-sdk" => Box::new(baselines::Vercel::new(t)),
        "litellm-router" => Box::new(baselines::Litellm::new(t, seed)),
        "hermes-agent" => Box::new(baselines::Hermes::new(t, seed)),
        "aws-standard" => Box::new(baselines::AwsStandard::new(t, seed, aws.clone())),
        "async-openai" => Box::new(baselines::AsyncOpenai::new(t)),
        "backon" => Box::new(baselines::Backon::new(t)),
        other => panic!("no policy {other}"),
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0)
}

fn row(
    policy: &'static str,
    results: &[CallStats],
    no_deadline: &[bool],
    impossible: &[bool],
) -> Row {
    let n = results.len() as u64;
    let mut times: Vec<u64> = results.iter().map(|r| r.elapsed_ms).collect();
    times.sort_unstable();
    let mut errors: Vec<u64> = results
        .iter()
        .zip(impossible)
        .filter(|(r, imp)| **imp && !r.success_within(COMMON_DEADLINE_MS))
        .map(|(r, _)| r.elapsed_ms)
        .collect();
    errors.sort_unstable();
    Row {
        policy,
        calls: n,
        successes: results
            .iter()
            .filter(|r| r.success_within(COMMON_DEADLINE_MS))
            .count() as u64,
        successes_no_deadline: no_deadline.iter().filter(|s| **s).count() as u64,
        upstream_per_call: results.iter().map(|r| u64::from(r.calls)).sum::<u64>() as f64
            / n.max(1) as f64,
        wasted_per_call: results.iter().map(|r| u64::from(r.wasted)).sum::<u64>() as f64
            / n.max(1) as f64,
        p50_ms: percentile(&times, 0.5),
        p99_ms: percentile(&times, 0.99),
        time_to_error_ms: (!errors.is_empty()).then(|| percentile(&errors, 0.5)),
        peak_amplification: None,
        steady_amplification: None,
        recovery_ms: None,
    }
}

/// The oracle's results on `worlds` (at each world's own deadline) and whether it could
/// succeed with no deadline.
pub fn oracle_results(worlds: &[Schedule]) -> (Vec<CallStats>, Vec<bool>) {
    let bounded = worlds
        .iter()
        .map(|w| oracle(w, w.policy.deadline_ms))
        .collect();
    let unbounded = worlds
        .iter()
        .map(|w| oracle(w, GIVE_UP_MS).success)
        .collect();
    (bounded, unbounded)
}

/// Runs one family over `seeds` seeds.
pub fn run_family(family: &Family, seeds: u64, relent_policy: Option<&Policy>) -> FamilyReport {
    let worlds: Vec<Schedule> = (0..seeds).map(|s| family.world(s)).collect();
    let (oracle_stats, oracle_unbounded) = oracle_results(&worlds);
    let impossible: Vec<bool> = oracle_stats.iter().map(|r| !r.success).collect();
    let mut rows = Vec::new();
    for policy in POLICIES {
        if policy == "oracle" {
            rows.push(row(policy, &oracle_stats, &oracle_unbounded, &impossible));
            continue;
        }
        let aws = baselines::aws_bucket();
        let results: Vec<CallStats> = worlds
            .iter()
            .map(|w| play(caller(policy, w, w.seed, &aws, relent_policy).as_mut(), w))
            .collect();
        let no_deadline: Vec<bool> = results.iter().map(|r| r.success).collect();
        rows.push(row(policy, &results, &no_deadline, &impossible));
    }
    let (ok, notes) = verdict(&rows, false);
    FamilyReport {
        family: family.name.clone(),
        about: family.about.clone(),
        rows,
        relent_meets_bar: ok,
        notes,
    }
}

/// Runs `families` over `seeds` seeds each, then every multi-client load once.
pub fn run_with(families: &[Family], seeds: u64, relent_policy: Option<&Policy>) -> Scoreboard {
    let mut reports: Vec<FamilyReport> = families
        .iter()
        .map(|f| run_family(f, seeds, relent_policy))
        .collect();
    reports.extend(
        families::sequences()
            .iter()
            .map(|q| run_sequence(q, seeds, relent_policy)),
    );
    reports.extend(Load::all().iter().map(|l| run_load(l, relent_policy)));
    Scoreboard {
        seeds,
        families: reports,
    }
}

/// Runs every built-in family over `seeds` seeds (and the multi-client loads once).
pub fn run(seeds: u64) -> Scoreboard {
    run_with(&families::all(), seeds, None)
}

/// Runs a sequence family over `seeds` worlds (each `calls` calls over one client) for every
/// contender. There is no oracle row: the oracle bounds one call, not a client's run.
pub fn run_sequence(
    seq: &families::Sequence,
    seeds: u64,
    relent_policy: Option<&Policy>,
) -> FamilyReport {
    let worlds: Vec<Schedule> = (0..seeds).map(|s| (seq.build)(s)).collect();
    let mut rows = Vec::new();
    for policy in POLICIES.iter().filter(|p| **p != "oracle") {
        let aws = baselines::aws_bucket();
        let results: Vec<CallStats> = worlds
            .iter()
            .flat_map(|w| {
                play_sequence(
                    &mut |i| {
                        caller(
                            policy,
                            w,
                            w.seed.wrapping_mul(1_000) + i,
                            &aws,
                            relent_policy,
                        )
                    },
                    w,
                    seq.calls,
                    seq.gap_ms,
                )
            })
            .collect();
        let no_deadline: Vec<bool> = results.iter().map(|r| r.success).collect();
        let impossible = vec![false; results.len()];
        rows.push(row(policy, &results, &no_deadline, &impossible));
    }
    let (ok, notes) = verdict(&rows, false);
    FamilyReport {
        family: seq.name.to_string(),
        about: seq.about.to_string(),
        rows,
        relent_meets_bar: ok,
        notes,
    }
}

/// Runs one multi-client load for every contender.
pub fn run_load(load: &Load, relent_policy: Option<&Policy>) -> FamilyReport {
    let mut rows = Vec::new();
    let schedule = Schedule {
        name: None,
        seed: 0,
        policy: Policy::default(),
        targets: vec![relent::Target::new(
            relent::Provider::Anthropic,
            "claude",
            vec![
                relent::KeySpec::new(1, "key-1"),
                relent::KeySpec::new(2, "key-2"),
            ],
        )],
        faults: Vec::new(),
        pool_changes: Vec::new(),
        cancel_at_ms: None,
        latency_ms: 300,
        heal_at_ms: None,
        calls: Vec::new(),
    };
    for policy in POLICIES.iter().filter(|p| **p != "oracle") {
        let aws = baselines::aws_bucket();
        // relent's calls are one client's: they share its retry budget and breakers, as
        // the AWS SDK's share its retry quota (issue #14).
        let relent_policy_here = relent_policy.unwrap_or(&schedule.policy).clone();
        let overload: caller::SharedOverload = std::rc::Rc::new(std::cell::RefCell::new(
            relent::Overload::new(&relent_policy_here.overload, schedule.targets.len()),
        ));
        let stats = many::run(load, &mut |i| {
            if *policy == "relent" {
                Box::new(caller::Relent::sharing(
                    relent_policy_here.clone(),
                    schedule.targets.clone(),
                    i,
                    overload.clone(),
                ))
            } else {
                caller(policy, &schedule, i, &aws, relent_policy)
            }
        });
        let mut times = stats.elapsed_ms.clone();
        times.sort_unstable();
        rows.push(Row {
            policy,
            calls: stats.calls,
            successes: stats.successes_120s,
            successes_no_deadline: stats.successes,
            upstream_per_call: stats.upstream as f64 / stats.calls.max(1) as f64,
            wasted_per_call: stats.wasted as f64 / stats.calls.max(1) as f64,
            p50_ms: percentile(&times, 0.5),
            p99_ms: percentile(&times, 0.99),
            time_to_error_ms: None,
            peak_amplification: Some(stats.peak_amplification),
            steady_amplification: Some(stats.steady_amplification),
            recovery_ms: load.trigger_end.and(stats.recovery_ms),
        });
    }
    let (ok, notes) = verdict(&rows, true);
    FamilyReport {
        family: load.name.to_string(),
        about: load.about.to_string(),
        relent_meets_bar: ok,
        notes,
        rows,
    }
}

/// The bar (issue #12): relent is on the Pareto front of (success at 120 s ↑, wasted sends
/// per call ↓, p50 time to outcome ↓) among all contenders (the oracle is a bound, not a
/// contender); in a multi-client family the second axis is peak load amplification; and
/// where the oracle wastes at least 0.5 sends per call, relent wastes at most 1.2× as many.
pub fn verdict(rows: &[Row], many: bool) -> (bool, Vec<String>) {
    let relent = rows
        .iter()
        .find(|r| r.policy == "relent")
        .expect("the relent row");
    let cost = |r: &Row| {
        if many {
            r.peak_amplification.unwrap_or(0.0)
        } else {
            r.wasted_per_call
        }
    };
    let cost_name = if many {
        "peak amplification"
    } else {
        "wasted/call"
    };
    let mut notes = Vec::new();
    for b in rows
        .iter()
        .filter(|r| r.policy != "relent" && r.policy != "oracle")
    {
        let no_worse = b.successes >= relent.successes
            && cost(b) <= cost(relent) + 1e-9
            && b.p50_ms <= relent.p50_ms;
        let better = b.successes > relent.successes
            || cost(b) + 1e-9 < cost(relent)
            || b.p50_ms < relent.p50_ms;
        if no_worse && better {
            notes.push(format!(
                "dominated by {} (success {:.1} % vs {:.1} %, {cost_name} {:.2} vs {:.2}, p50 {} vs {})",
                b.policy,
                100.0 * b.success_rate(),
                100.0 * relent.success_rate(),
                cost(b),
                cost(relent),
                relent::Millis(b.p50_ms),
                relent::Millis(relent.p50_ms),
            ));
        }
    }
    if let Some(oracle) = rows.iter().find(|r| r.policy == "oracle") {
        if oracle.wasted_per_call >= 0.5
            && relent.wasted_per_call > 1.2 * oracle.wasted_per_call + 1e-9
        {
            notes.push(format!(
                "{:.2} wasted sends per call, more than 1.2× the oracle's {:.2}",
                relent.wasted_per_call, oracle.wasted_per_call
            ));
        }
    }
    (notes.is_empty(), notes)
}
