//! The oracle is a bound: over seeds of every family, no contender succeeds within the
//! oracle's deadline where the oracle fails, makes fewer sends in a call it completes, or
//! completes earlier.

use relent_sim::scoreboard::play::{oracle, play};
use relent_sim::scoreboard::{baselines, caller, families, POLICIES};

#[test]
fn no_policy_beats_the_oracle() {
    let mut checked = 0;
    for family in families::all() {
        for seed in 0..40 {
            let world = family.world(seed);
            let deadline = world.policy.deadline_ms;
            let bound = oracle(&world, deadline);
            for policy in POLICIES.iter().filter(|p| **p != "oracle") {
                let aws = baselines::aws_bucket();
                let got = play(caller(policy, &world, seed, &aws, None).as_mut(), &world);
                if !got.success_within(deadline) {
                    continue;
                }
                checked += 1;
                let at = format!(
                    "{} seed {seed}: {policy} {got:?}, oracle {bound:?}",
                    family.name
                );
                assert!(bound.success, "success: {at}");
                assert!(bound.calls <= got.calls, "sends: {at}");
                assert!(bound.elapsed_ms <= got.elapsed_ms, "time: {at}");
            }
        }
    }
    assert!(
        checked > 1_000,
        "only {checked} successful calls were compared"
    );
}
