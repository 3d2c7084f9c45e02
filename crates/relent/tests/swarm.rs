//! The simulator's swarm, run from the core's own tests: seeded fault worlds, every step
//! checked by the simulator's reference-model checker, every coverage mark required. The
//! full million-seed run lives in `sim/tests/swarm.rs`; this one is here so that a tool
//! that runs only this package's tests (cargo-mutants, `docs/MUTATION.md`) still meets
//! the proof. `RELENT_SWARM_SEEDS` sets its size (default 100 000).

use relent_sim::swarm::run_seeds;

#[test]
fn swarm_finds_no_violation_and_reaches_every_mark() {
    let seeds = std::env::var("RELENT_SWARM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let summary = run_seeds(0, seeds, 2, 16, &|_| {});
    let first: Vec<String> = summary
        .failures
        .iter()
        .take(5)
        .map(|f| format!("seed {}: {:?}", f.seed, f.violations))
        .collect();
    assert_eq!(summary.failing_seeds, 0, "{}", first.join("\n"));
    assert!(
        summary.missing_marks.is_empty(),
        "marks never reached: {:?}",
        summary.missing_marks
    );
}
