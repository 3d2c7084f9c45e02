//! The standard simulation run: a fixed range of seeded worlds, every invariant checked after
//! every step, every coverage mark required, determinism checked by running seeds twice,
//! and the example schedules in `sim/schedules/` replayed. A failure names the seed and the
//! command that reproduces it.

use relent::AbortReason;
use relent_sim::generate::generate;
use relent_sim::swarm::{fingerprint, is_single_dead_key, run_seeds};
use relent_sim::{run, shrink, FaultKind, Outcome, RunOptions, Schedule};

/// A million worlds: about ten seconds on two cores in the test profile, so every test run
/// repeats the million-seed check of `docs/BENCHMARKS.md`. `RELENT_SWARM_SEEDS` changes
/// the count for the standard run (the mutation campaign of `docs/MUTATION.md` uses it).
const SEEDS: u64 = 1_000_000;

fn seeds() -> u64 {
    std::env::var("RELENT_SWARM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(SEEDS)
}

#[test]
fn standard_run_has_no_violations_and_reaches_every_mark() {
    let seeds = seeds();
    let summary = run_seeds(0, seeds, 2, 8, &|_| {});
    let report: Vec<String> = summary
        .failures
        .iter()
        .map(|f| {
            format!(
                "seed {}: {:?} — reproduce with `{}`",
                f.seed, f.violations, f.reproduce
            )
        })
        .collect();
    assert_eq!(
        summary.failing_seeds,
        0,
        "violations:\n{}",
        report.join("\n")
    );
    assert!(
        summary.missing_marks.is_empty(),
        "marks never reached: {:?}",
        summary.missing_marks
    );
    assert_eq!(summary.worlds, seeds);
    assert!(summary.determinism_checked >= seeds / 8 - 1);
}

/// Seeds past the standard million that once failed, each for a rule fixed since
/// (`docs/ARCHITECTURE.md`, "Beyond the standard million"): they run with the standard
/// range's checks, determinism included, so the rule cannot quietly come back.
#[test]
fn seeds_that_once_failed_beyond_the_standard_range_pass() {
    for seed in [
        1_688_495, 5_638_209, 6_613_393, 6_765_528, 7_096_750, 9_878_483, 18_572_137, 31_443_299,
        13_921_746, 29_774_995, 33_725_303, 35_721_197, 37_912_635, 39_030_374, 80_978_288,
    ] {
        let summary = run_seeds(seed, 1, 1, 1, &|_| {});
        assert_eq!(summary.determinism_checked, 1);
        assert_eq!(
            summary.failing_seeds, 0,
            "seed {seed}: {:?}",
            summary.failures
        );
    }
}

/// The headline claim, on its own: in every world with exactly one key, dead from the
/// start, the call aborts with `auth_permanent` after exactly two sends and never sleeps.
#[test]
fn single_dead_key_aborts_within_two_attempts_in_every_such_world() {
    let mut checked = 0;
    for seed in 0..SEEDS {
        let world = generate(seed);
        if !is_single_dead_key(&world) {
            continue;
        }
        checked += 1;
        let report = run(
            &world,
            RunOptions {
                keep_trace: true,
                deep_secret_scan: true,
                raw_responses: false,
            },
        );
        assert_eq!(
            report.outcome,
            Outcome::Aborted(AbortReason::AuthPermanent),
            "seed {seed}"
        );
        assert_eq!(report.attempts, 2, "seed {seed}");
        let slept = report
            .trace
            .iter()
            .flat_map(|e| &e.actions)
            .any(|a| matches!(a, relent::Action::Sleep { .. }));
        assert!(!slept, "seed {seed} slept between the two attempts");
        assert!(
            report.virtual_elapsed_ms <= 2 * world.latency_ms,
            "seed {seed}: {} ms",
            report.virtual_elapsed_ms
        );
    }
    assert!(
        checked > SEEDS / 20,
        "only {checked} single-dead-key worlds; the generator lost them"
    );
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [1, 77, 4242, 90_001] {
        let world = generate(seed);
        let a = run(
            &world,
            RunOptions {
                keep_trace: true,
                deep_secret_scan: true,
                raw_responses: false,
            },
        );
        let b = run(
            &world,
            RunOptions {
                keep_trace: true,
                deep_secret_scan: true,
                raw_responses: true,
            },
        );
        // The second run classifies the raw replies where the first used kept verdicts.
        assert_eq!(fingerprint(&a.trace), fingerprint(&b.trace), "seed {seed}");
        assert_eq!(
            generate(seed),
            world,
            "generation is a function of the seed"
        );
    }
}

#[test]
fn example_schedules_replay_without_violations() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schedules");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let schedule: Schedule =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let report = run(&schedule, RunOptions::default());
        assert!(
            report.violations.is_empty(),
            "{}: {:?}",
            path.display(),
            report.violations
        );
        assert!(
            !matches!(report.outcome, Outcome::Livelock | Outcome::Invalid(_)),
            "{}: {:?}",
            path.display(),
            report.outcome
        );
        count += 1;
    }
    assert!(count >= 13, "found only {count} example schedules");
}

/// Shrinking keeps a property while dropping everything that does not matter to it.
#[test]
fn shrinking_finds_the_minimal_world() {
    // A noisy world whose call ends in auth_permanent because its only key is dead.
    let mut world = generate(3);
    world.targets.truncate(1);
    world.targets[0].keys.truncate(1);
    let key = world.targets[0].keys[0].id;
    world.pool_changes.clear();
    world.cancel_at_ms = None;
    world
        .faults
        .retain(|f| f.scope == relent_sim::FaultScope::Target(0));
    world.faults.insert(
        0,
        relent_sim::Fault {
            scope: relent_sim::FaultScope::Key(key),
            from_ms: 0,
            until_ms: None,
            first_sends: None,
            probability: 1.0,
            kind: FaultKind::KeyRejected,
        },
    );
    world.faults.push(relent_sim::Fault {
        scope: relent_sim::FaultScope::Target(0),
        from_ms: 50_000,
        until_ms: Some(60_000),
        first_sends: None,
        probability: 0.5,
        kind: FaultKind::Overloaded,
    });
    let auth = |s: &Schedule| {
        run(s, RunOptions::default()).outcome == Outcome::Aborted(AbortReason::AuthPermanent)
    };
    assert!(auth(&world));
    let (small, steps) = shrink::shrink_by(&world, auth);
    assert!(steps > 0);
    assert_eq!(small.faults.len(), 1, "{:?}", small.faults);
    assert_eq!(small.faults[0].kind, FaultKind::KeyRejected);
    assert!(auth(&small));
}
