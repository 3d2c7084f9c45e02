//! Random event sequences straight into the machine, including events that do not fit the
//! state, time that goes backwards, spurious timers and pool changes at odd moments. The
//! machine must never panic, must leave itself unchanged when it refuses an event, and the
//! actions it emits must respect the brief's invariants 2, 3, 4, 5, 6, 8, 9 and 10 (checked
//! by `relent_sim::fuzz::drive_machine`, which the `machine` fuzz target shares), and 7:
//! the same seed and events give a byte-identical trace.

use proptest::prelude::*;
use relent_sim::fuzz::{drive_machine, Op, RESPONSES};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..RESPONSES.len() as u8).prop_map(Op::Respond),
        1 => any::<u8>().prop_map(Op::Transport),
        1 => Just(Op::Timeout),
        4 => Just(Op::TimeoutAtDue),
        2 => (0u32..120_000).prop_map(Op::Advance),
        1 => any::<u16>().prop_map(Op::Backwards),
        1 => (0u8..3).prop_map(Op::Add),
        1 => (0u8..8).prop_map(Op::Remove),
        1 => (0u8..8).prop_map(Op::Restore),
        1 => ((0u8..8), proptest::option::of(0u32..200_000)).prop_map(|(k, t)| Op::MarkBad(k, t)),
        1 => Just(Op::StreamEnded),
        1 => Just(Op::StreamFailed),
        1 => Just(Op::Cancel),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_respect_the_invariants(
        keys in proptest::collection::vec(1u32..4, 1..4),
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let first = drive_machine(&keys, seed, &ops).map_err(TestCaseError::fail)?;
        let second = drive_machine(&keys, seed, &ops).map_err(TestCaseError::fail)?;
        prop_assert_eq!(first, second, "invariant 7: the same seed and events gave another trace");
    }
}
