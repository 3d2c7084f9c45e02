//! `Pool::merge_call` with concurrent calls: two calls start from the same pool, each changes
//! key states on its own copy, and both are merged into the shared pool in either order.
//! A key only one call changed ends as that call left it; a key both changed ends no less
//! restrictive than either (a removal stays a removal); no other key moves.

use proptest::prelude::*;
use relent::{KeyId, KeySpec, KeyState, Pool, PoolChange, Provider, Target, Time};

const KEYS: u32 = 4;

fn pool() -> Pool {
    let keys = (1..=KEYS)
        .map(|i| KeySpec::new(i, format!("k{i}")))
        .collect();
    Pool::new(vec![Target::new(Provider::Openai, "gpt-4o", keys)]).unwrap()
}

/// A change one call may make to a key.
fn change() -> impl Strategy<Value = PoolChange> {
    let key = (1..=KEYS).prop_map(KeyId);
    prop_oneof![
        key.clone()
            .prop_map(|key| PoolChange::MarkedBad { key, until: None }),
        (key.clone(), 1u64..100_000).prop_map(|(key, t)| PoolChange::MarkedBad {
            key,
            until: Some(Time(t)),
        }),
        key.clone().prop_map(|key| PoolChange::Restored { key }),
        key.prop_map(|key| PoolChange::Removed { key }),
    ]
}

fn applied(start: &Pool, changes: &[PoolChange]) -> Pool {
    let mut pool = start.clone();
    for change in changes {
        pool.apply(change).unwrap();
    }
    pool
}

/// How long a state keeps a key out of use: `None` for never usable again.
fn rank(state: KeyState) -> Option<Time> {
    state.ready_at()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn concurrent_calls_merge_without_losing_a_change(
        setup in prop::collection::vec(change(), 0..4),
        a in prop::collection::vec(change(), 0..4),
        b in prop::collection::vec(change(), 0..4),
        a_first in any::<bool>(),
    ) {
        let before = applied(&pool(), &setup);
        let after_a = applied(&before, &a);
        let after_b = applied(&before, &b);
        let mut shared = before.clone();
        if a_first {
            shared.merge_call(&before, &after_a);
            shared.merge_call(&before, &after_b);
        } else {
            shared.merge_call(&before, &after_b);
            shared.merge_call(&before, &after_a);
        }
        for id in (1..=KEYS).map(KeyId) {
            let (was, by_a, by_b, now) =
                (before.state(id), after_a.state(id), after_b.state(id), shared.state(id));
            match (by_a != was, by_b != was) {
                (false, false) => prop_assert_eq!(now, was, "{} untouched", id),
                (true, false) => prop_assert_eq!(now, by_a, "{} changed by a only", id),
                (false, true) => prop_assert_eq!(now, by_b, "{} changed by b only", id),
                (true, true) => {
                    if by_a == KeyState::Removed || by_b == KeyState::Removed {
                        prop_assert_eq!(now, KeyState::Removed, "{}: a removal stays", id);
                    } else {
                        // No earlier than either call's state allows.
                        for theirs in [by_a, by_b] {
                            match (rank(now), rank(theirs)) {
                                (None, _) => {}
                                (Some(_), None) => prop_assert!(false, "{id}: {now:?} undoes {theirs:?}"),
                                (Some(n), Some(t)) => prop_assert!(n >= t, "{id}: {now:?} is earlier than {theirs:?}"),
                            }
                        }
                        prop_assert!(now == by_a || now == by_b, "{id}: {now:?} is one of the two");
                    }
                }
            }
        }
    }
}
