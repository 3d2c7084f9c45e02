//! Unit tests of the machine's decisions, driven by hand. Scenario snapshots live in
//! `sim/tests/scenarios.rs`; invariant properties in `tests/properties.rs`.

use super::*;
use crate::classify::{Classified, HttpResponse, Observation, Provider};
use crate::pool::{KeySpec, KeyState};

fn http(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> Observation<'static> {
    Observation::Http(HttpResponse {
        status,
        headers,
        body: body.as_bytes(),
    })
}

const UNAUTHORIZED: &str = r#"{"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","code":"invalid_api_key"}}"#;

fn machine(keys: u32) -> RetryMachine {
    let keys = (1..=keys)
        .map(|i| KeySpec::new(i, format!("key-{i}")))
        .collect();
    RetryMachine::new(
        Policy::default(),
        vec![Target::new(Provider::Openai, "gpt-4o", keys)],
        42,
    )
    .unwrap()
}

fn drain(m: &mut RetryMachine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

#[test]
fn single_dead_key_aborts_after_two_attempts_without_sleeping() {
    let mut m = machine(1);
    m.start(Time(0)).unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [Action::Send(Send {
            attempt: 1,
            fresh_connection: false,
            ..
        })]
    ));
    m.handle_response(Time(100), http(401, &[], UNAUTHORIZED))
        .unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(
            actions[..],
            [Action::Send(Send {
                attempt: 2,
                fresh_connection: true,
                ..
            })]
        ),
        "{actions:?}"
    );
    m.handle_response(Time(200), http(401, &[], UNAUTHORIZED))
        .unwrap();
    let actions = drain(&mut m);
    let [Action::Abort(abort)] = &actions[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(abort.reason, AbortReason::AuthPermanent);
    assert!(
        abort.message.contains("key-1") && abort.message.contains("openai"),
        "{}",
        abort.message
    );
    assert!(!abort.message.contains("sk-abc"), "{}", abort.message);
    assert_eq!(m.pool().state(KeyId(1)), KeyState::Revoked);
    assert_eq!(
        m.handle_timeout(Time(300)),
        Err(EventError::Finished("aborted"))
    );
}

#[test]
fn dead_key_in_a_pool_rotates_at_once_and_is_never_used_again() {
    let mut m = machine(3);
    m.start(Time(0)).unwrap();
    drain(&mut m);
    m.handle_response(Time(100), http(401, &[], UNAUTHORIZED))
        .unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(
            actions[..],
            [
                Action::Rotate {
                    why: Reason::KeyRejected,
                    ..
                },
                Action::Send(Send {
                    key: KeyId(2),
                    attempt: 2,
                    ..
                })
            ]
        ),
        "{actions:?}"
    );
    m.handle_response(Time(200), http(500, &[], "{}")).unwrap();
    let actions = drain(&mut m);
    assert!(matches!(actions[..], [Action::Sleep { .. }]), "{actions:?}");
    let until = m.next_timeout().unwrap();
    m.handle_timeout(until).unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(actions[..], [Action::Send(Send { key: KeyId(2), .. })]),
        "{actions:?}"
    );
}

#[test]
fn rate_limit_rotates_to_a_ready_key_without_sleeping() {
    let mut m = machine(2);
    m.start(Time(0)).unwrap();
    drain(&mut m);
    m.handle_response(Time(50), http(429, &[("retry-after", "20")], r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#)).unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(
            actions[..],
            [
                Action::Rotate { .. },
                Action::Send(Send { key: KeyId(2), .. })
            ]
        ),
        "{actions:?}"
    );
    assert_eq!(
        m.pool().state(KeyId(1)),
        KeyState::CoolingDown(Time(20_050))
    );
}

#[test]
fn events_that_do_not_fit_are_rejected_and_change_nothing() {
    let mut m = machine(1);
    assert_eq!(m.handle_timeout(Time(0)), Err(EventError::NotStarted));
    m.start(Time(0)).unwrap();
    drain(&mut m);
    let before = m.clone();
    assert!(matches!(
        m.handle(Time(5), Event::StreamEnded),
        Err(EventError::Unexpected { .. })
    ));
    assert!(matches!(
        m.handle_pool_change(Time(5), PoolChange::Removed { key: KeyId(9) }),
        Err(EventError::Pool(_))
    ));
    assert!(before == m, "the refused event changed the machine");
    assert_eq!(m.start(Time(5)), Err(EventError::AlreadyStarted));
}

#[test]
fn time_going_backwards_is_clamped() {
    let mut m = machine(1);
    m.start(Time(1_000)).unwrap();
    drain(&mut m);
    m.handle_response(Time(500), http(503, &[], "{}")).unwrap();
    let actions = drain(&mut m);
    let [Action::Sleep { until, .. }] = actions[..] else {
        panic!("{actions:?}")
    };
    assert!(until >= Time(1_000));
}

// ----- decisions v2: each test fails on the machine before these rules -----

/// A machine with one key under `policy`, started, its first send drained.
fn one_key_started(policy: Policy) -> RetryMachine {
    let keys = vec![KeySpec::new(1, "only")];
    let target = Target::new(Provider::Openai, "gpt-4o", keys);
    let mut m = RetryMachine::new(policy, vec![target], 1).unwrap();
    m.start(Time(0)).unwrap();
    drain(&mut m);
    m
}

const QUOTA: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#;
const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#;

/// A spent quota is not a rate limit: a `retry-after` beside `insufficient_quota` describes
/// no quota, so the lone key is not sent again after it; the call ends `quota_exhausted`.
#[test]
fn quota_ignores_rate_limit_hints() {
    for headers in [
        &[("retry-after", "5")][..],
        &[
            ("x-ratelimit-remaining-requests", "3"),
            ("x-ratelimit-reset-requests", "120ms"),
        ][..],
    ] {
        let mut m = machine(1);
        m.start(Time(0)).unwrap();
        drain(&mut m);
        m.handle_response(Time(100), http(429, headers, QUOTA))
            .unwrap();
        let actions = drain(&mut m);
        assert!(
            matches!(&actions[..], [Action::Abort(a)] if a.reason == AbortReason::QuotaExhausted),
            "{headers:?}: {actions:?}"
        );
        assert_eq!(
            m.pool().state(KeyId(1)),
            KeyState::Exhausted(Time(100 + Policy::default().quota_cooldown_ms))
        );
    }
}

/// A server wait that ends inside the deadline is honoured, however long: one key, a 429
/// with `retry-after: 90`, a 120 s deadline: sleep 90 s and send again.
#[test]
fn a_long_server_wait_inside_the_deadline_is_honoured() {
    let mut m = machine(1);
    m.start(Time(0)).unwrap();
    drain(&mut m);
    m.handle_response(Time(100), http(429, &[("retry-after", "90")], RATE_LIMITED))
        .unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(
            actions[..],
            [Action::Sleep {
                until: Time(90_100),
                ..
            }]
        ),
        "{actions:?}"
    );
    m.handle_timeout(Time(90_100)).unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [Action::Send(Send { attempt: 2, .. })]
    ));
}

/// With the caller's own cap set, a longer wait ends the call with a reason and a message
/// that name the cap, not the deadline.
#[test]
fn a_wait_beyond_the_callers_cap_names_the_cap() {
    let policy = Policy {
        max_server_wait_ms: Some(60_000),
        ..Policy::default()
    };
    let mut m = one_key_started(policy);
    m.handle_response(Time(100), http(429, &[("retry-after", "90")], RATE_LIMITED))
        .unwrap();
    let actions = drain(&mut m);
    let [Action::Abort(abort)] = &actions[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(abort.reason, AbortReason::ServerWaitTooLong);
    assert_eq!(abort.retry_at, Some(Time(90_100)));
    assert!(
        abort.message.contains("max_server_wait_ms (60000 ms)"),
        "{}",
        abort.message
    );
    assert!(!abort.message.contains("deadline"), "{}", abort.message);
}

/// Reason precedence: a lone key rejected when its one retry is no longer allowed (here the
/// attempt limit is spent) ends `auth_permanent`, not `attempts_exhausted`.
#[test]
fn a_rejection_at_the_attempt_limit_is_still_auth_permanent() {
    let policy = Policy {
        max_attempts: 2,
        ..Policy::default()
    };
    let mut m = one_key_started(policy);
    let overloaded =
        r#"{"error":{"message":"The engine is currently overloaded","type":"server_error"}}"#;
    m.handle_response(Time(100), http(503, &[], overloaded))
        .unwrap();
    drain(&mut m);
    let wake = m.next_timeout().unwrap();
    m.handle_timeout(wake).unwrap();
    drain(&mut m);
    m.handle_response(wake + Millis(100), http(401, &[], UNAUTHORIZED))
        .unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(&actions[..], [Action::Abort(a)] if a.reason == AbortReason::AuthPermanent),
        "{actions:?}"
    );
    assert_eq!(m.pool().state(KeyId(1)), KeyState::Revoked);
}

/// Reason precedence past the deadline: a rejection that comes after the deadline, while
/// the only other key was held by an outside mark until after the deadline (so it is ready
/// when the answer comes, but was never a way forward within it), ends `auth_permanent`,
/// not `deadline_exceeded` (found by the `machine` fuzz target).
#[test]
fn a_rejection_after_the_deadline_with_no_key_free_before_it_is_auth_permanent() {
    let policy = Policy::default();
    let deadline = Time(policy.deadline_ms);
    let mut m = machine(2);
    m.start(Time(0)).unwrap();
    let actions = drain(&mut m);
    let [Action::Send(first)] = &actions[..] else {
        panic!("{actions:?}")
    };
    let (sent, other) = (
        first.key,
        if first.key == KeyId(1) {
            KeyId(2)
        } else {
            KeyId(1)
        },
    );
    m.handle_pool_change(
        Time(0),
        PoolChange::MarkedBad {
            key: other,
            until: Some(deadline + Millis(9_000)),
        },
    )
    .unwrap();
    drain(&mut m);
    let late = deadline + Millis(40_000);
    m.handle_response(late, http(401, &[], UNAUTHORIZED))
        .unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(&actions[..], [Action::Abort(a)] if a.reason == AbortReason::AuthPermanent),
        "{actions:?}"
    );
    assert_eq!(m.pool().state(sent), KeyState::Revoked);
}

/// The same past the deadline with a fallback target whose key became ready after the
/// deadline: no fallback is tried (the call ends `auth_permanent`); and when another key was
/// usable before the deadline, the deadline is what ended the call.
#[test]
fn past_the_deadline_no_fallback_is_tried_and_the_cause_is_named() {
    let policy = Policy::default();
    let deadline = Time(policy.deadline_ms);
    let targets = vec![
        Target::new(Provider::Openai, "a", vec![KeySpec::new(1, "key-1")]),
        Target::new(Provider::Openai, "b", vec![KeySpec::new(2, "key-2")]),
    ];
    let late = deadline + Millis(40_000);
    for (mark_until, want) in [
        (Some(deadline + Millis(9_000)), AbortReason::AuthPermanent),
        (None, AbortReason::DeadlineExceeded),
    ] {
        let mut m = RetryMachine::new(policy.clone(), targets.clone(), 7).unwrap();
        m.start(Time(0)).unwrap();
        drain(&mut m);
        if let Some(until) = mark_until {
            m.handle_pool_change(
                Time(0),
                PoolChange::MarkedBad {
                    key: KeyId(2),
                    until: Some(until),
                },
            )
            .unwrap();
            drain(&mut m);
        }
        m.handle_response(late, http(401, &[], UNAUTHORIZED))
            .unwrap();
        let actions = drain(&mut m);
        assert!(
            matches!(&actions[..], [Action::Abort(a)] if a.reason == want),
            "{mark_until:?}: {actions:?}"
        );
    }
}

/// A revocation that arrives while a request is in flight survives that request's 429: the
/// key is never sent again.
#[test]
fn a_rate_limit_does_not_undo_an_outside_revocation() {
    let mut m = machine(2);
    m.start(Time(0)).unwrap();
    drain(&mut m);
    m.handle_pool_change(
        Time(50),
        PoolChange::MarkedBad {
            key: KeyId(1),
            until: None,
        },
    )
    .unwrap();
    m.handle_response(Time(100), http(429, &[("retry-after", "1")], RATE_LIMITED))
        .unwrap();
    assert_eq!(m.pool().state(KeyId(1)), KeyState::Revoked);
    let sent: Vec<KeyId> = drain(&mut m)
        .iter()
        .filter_map(|a| match a {
            Action::Send(s) => Some(s.key),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![KeyId(2)]);
}

/// A zero wait is no wait: a 429 with `retry-after: 0` on the only key sleeps one backoff
/// delay before the same key is sent again, and that resend counts as a transient retry,
/// so a server that keeps answering so cannot make the machine loop.
#[test]
fn a_zero_server_wait_backs_off_and_is_bounded() {
    let mut m = machine(1);
    m.start(Time(0)).unwrap();
    drain(&mut m);
    let mut now = Time(100);
    let mut sends = 1;
    loop {
        m.handle_response(now, http(429, &[("retry-after", "0")], RATE_LIMITED))
            .unwrap();
        let actions = drain(&mut m);
        match &actions[..] {
            [Action::Sleep { until, .. }] => {
                assert!(
                    until.since(now).0 >= 1_000,
                    "slept only until {until} at {now}"
                );
                m.handle_timeout(*until).unwrap();
                assert!(matches!(drain(&mut m)[..], [Action::Send(_)]));
                sends += 1;
                now = *until + Millis(100);
            }
            [Action::Abort(_)] => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sends, 1 + Policy::default().transient_retries_per_target);
}

/// Pool changes act at once: a sleep that waits only for a key that is then removed ends in
/// the same step (here the call has nothing left and ends `no_usable_key`), instead of
/// sleeping to its end first.
#[test]
fn a_sleep_for_a_removed_key_ends_at_once() {
    let mut m = machine(1);
    m.start(Time(0)).unwrap();
    drain(&mut m);
    m.handle_response(Time(100), http(429, &[("retry-after", "30")], RATE_LIMITED))
        .unwrap();
    assert!(matches!(drain(&mut m)[..], [Action::Sleep { .. }]));
    m.handle_pool_change(Time(5_000), PoolChange::Removed { key: KeyId(1) })
        .unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(&actions[..], [Action::Abort(a)] if a.reason == AbortReason::NoUsableKey),
        "{actions:?}"
    );
}

/// What the machine shows of itself: its policy as given, and the display forms of key ids
/// and idempotency keys that traces, logs and the `Idempotency-Key` header carry.
#[test]
fn getters_and_display_forms() {
    let policy = Policy {
        max_attempts: 7,
        ..Policy::default()
    };
    let m = one_key_started(policy.clone());
    assert_eq!(m.policy(), &policy);
    assert_eq!(KeyId(42).to_string(), "k42");
    assert_eq!(
        IdempotencyKey(0xab).to_string(),
        "relent-000000000000000000000000000000ab"
    );
    assert_eq!(
        IdempotencyKey(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210).to_string(),
        "relent-0123456789abcdeffedcba9876543210"
    );
    assert_eq!(
        IdempotencyKey(u128::MAX).to_string(),
        format!("relent-{}", "f".repeat(32))
    );
    // The key is drawn from both halves of the seeded stream: neither half is lost.
    let key = m.idempotency_key().0;
    assert_ne!(key >> 64, 0);
    assert_ne!(key & u128::from(u64::MAX), 0);
}

/// No attempt outlives the call: a send 10 s before the deadline times out at the deadline,
/// not a whole attempt timeout later.
#[test]
fn an_attempt_timeout_is_capped_at_the_deadline() {
    let policy = Policy {
        deadline_ms: 20_000,
        attempt_timeout_ms: 60_000,
        ..Policy::default()
    };
    let keys = vec![KeySpec::new(1, "only")];
    let mut m = RetryMachine::new(
        policy,
        vec![Target::new(Provider::Openai, "gpt-4o", keys)],
        1,
    )
    .unwrap();
    m.start(Time(0)).unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [Action::Send(Send {
            timeout_at: Time(20_000),
            ..
        })]
    ));
}

/// A clamped wait (a day or more) is never slept on, even under a deadline longer than a
/// day: that sleep would end before the server's real reset.
#[test]
fn a_clamped_day_long_wait_is_never_slept_on() {
    let policy = Policy {
        deadline_ms: 3 * 86_400_000,
        attempt_timeout_ms: 60_000,
        ..Policy::default()
    };
    for (status, body) in [(429, RATE_LIMITED), (503, "")] {
        let mut m = one_key_started(policy.clone());
        m.handle_response(
            Time(100),
            http(status, &[("retry-after", "99999999")], body),
        )
        .unwrap();
        let actions = drain(&mut m);
        match &actions[..] {
            [Action::Abort(a)] => {
                assert_eq!(a.reason, AbortReason::ServerWaitTooLong, "{status}");
                assert_eq!(a.retry_at, None);
                assert!(a.message.contains("a day or more"), "{}", a.message);
            }
            other => panic!("{status}: {other:?}"),
        }
    }
}

/// Two keys, `revoked_reprobe_after_ms` of 60 s. Call 1 gets key 1 rejected while key 2 is
/// usable (revoked at once; key 2 succeeds). Call 2, long after, sends key 2 (still usable,
/// so key 1 is not probed), which is rate limited for 30 s: key 1's revocation is 99.9 s old,
/// so key 1 is probed. Returns call 2 with that probe out.
fn probing_a_revoked_key(policy: &Policy) -> RetryMachine {
    let target = Target::new(
        Provider::Openai,
        "gpt-4o",
        vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")],
    );
    let mut m = RetryMachine::new(policy.clone(), vec![target], 1).unwrap();
    m.start(Time(0)).unwrap();
    drain(&mut m);
    m.handle_response(Time(100), http(401, &[], UNAUTHORIZED))
        .unwrap();
    drain(&mut m);
    m.handle_response(Time(200), http(200, &[], "{}")).unwrap();
    drain(&mut m);
    let pool = m.into_pool();
    assert_eq!(pool.state(KeyId(1)), KeyState::Revoked);
    let mut m = RetryMachine::with_pool(policy.clone(), pool, 2).unwrap();
    m.start(Time(100_000)).unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [Action::Send(Send { key: KeyId(2), .. })]
    ));
    m.handle_response(
        Time(100_100),
        http(429, &[("retry-after", "30")], RATE_LIMITED),
    )
    .unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [
            Action::Rotate { .. },
            Action::Send(Send { key: KeyId(1), .. })
        ]
    ));
    m
}

/// A re-probe that works brings its key back, but not past an outside mark with an end
/// that came while the probe was out: the key cools until the mark ends (found by the
/// simulator's re-probe worlds, seed 28876).
#[test]
fn a_working_reprobe_keeps_an_outside_mark_that_came_meanwhile() {
    let policy = Policy {
        revoked_reprobe_after_ms: Some(60_000),
        ..Policy::default()
    };
    let mut m = probing_a_revoked_key(&policy);
    // While the probe is out, key 1 is marked bad until 500 s.
    m.handle_pool_change(
        Time(100_150),
        PoolChange::MarkedBad {
            key: KeyId(1),
            until: Some(Time(500_000)),
        },
    )
    .unwrap();
    m.handle_response(Time(100_200), http(200, &[], "{}"))
        .unwrap();
    drain(&mut m);
    assert_eq!(
        m.pool().state(KeyId(1)),
        KeyState::CoolingDown(Time(500_000))
    );
}

/// A revoked key is probed again after `revoked_reprobe_after_ms`, only when no other key
/// is usable, and a probe that works brings it back.
#[test]
fn a_revoked_key_is_reprobed_after_the_policy_time() {
    let policy = Policy {
        revoked_reprobe_after_ms: Some(60_000),
        ..Policy::default()
    };
    let target = || {
        Target::new(
            Provider::Openai,
            "gpt-4o",
            vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")],
        )
    };
    let mut m = probing_a_revoked_key(&policy);
    m.handle_response(Time(100_200), http(200, &[], "{}"))
        .unwrap();
    drain(&mut m);
    assert_eq!(m.pool().state(KeyId(1)), KeyState::Ready);
    // Without re-probing, the same pool ends the call instead.
    let mut m = RetryMachine::new(
        Policy {
            revoked_reprobe_after_ms: None,
            ..policy
        },
        vec![target()],
        3,
    )
    .unwrap();
    m.start(Time(0)).unwrap();
    drain(&mut m);
    m.handle_response(Time(100), http(401, &[], UNAUTHORIZED))
        .unwrap();
    drain(&mut m);
    m.handle_response(
        Time(200),
        http(429, &[("retry-after", "300")], RATE_LIMITED),
    )
    .unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [Action::Abort(Abort {
            reason: AbortReason::DeadlineExceeded,
            ..
        })]
    ));
}

/// `with_pool` checks the policy as `new` does.
#[test]
fn with_pool_rejects_an_invalid_policy() {
    let pool = machine(1).into_pool();
    let policy = Policy {
        max_attempts: 0,
        ..Policy::default()
    };
    assert!(matches!(
        RetryMachine::with_pool(policy, pool, 1),
        Err(ConfigError::Policy(_))
    ));
}

// ----- issue #14 item 2: escalating key cooldowns -----

/// A two-key client's call under `policy`, started from `pool`: key 1 draws a rate limit
/// with `headers` and the call rotates to key 2, which succeeds. Returns the pool after and
/// how long key 1 was benched.
fn call_with_a_rate_limit(
    policy: &Policy,
    pool: Pool,
    seed: u64,
    headers: &'static [(&'static str, &'static str)],
) -> (Pool, u64) {
    // Each call starts long after the one before, when every cooldown is over.
    let start = Time(seed * 1_000_000);
    let mut m = RetryMachine::with_pool(policy.clone(), pool, seed).unwrap();
    m.start(start).unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [Action::Send(Send { key: KeyId(1), .. })]
    ));
    m.handle_response(start + Millis(100), http(429, headers, RATE_LIMITED))
        .unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [
            Action::Rotate { .. },
            Action::Send(Send { key: KeyId(2), .. })
        ]
    ));
    let benched = match m.pool().state(KeyId(1)) {
        KeyState::CoolingDown(until) => until.since(start + Millis(100)).0,
        other => panic!("{other:?}"),
    };
    m.handle_response(start + Millis(200), http(200, &[], "{}"))
        .unwrap();
    (m.pool().clone(), benched)
}

fn two_keys() -> Pool {
    Pool::new(vec![Target::new(
        Provider::Openai,
        "gpt-4o",
        vec![KeySpec::new(1, "a"), KeySpec::new(2, "b")],
    )])
    .unwrap()
}

/// Call after call, a key that keeps drawing hint-less 429s is benched for base × n (plus
/// at most the jitter), capped; with escalation off, every call benches it for one
/// congestion backoff, no longer than the backoff's first delay.
#[test]
fn hint_less_cooldowns_escalate_across_calls_up_to_the_cap() {
    let policy = Policy::default();
    let c = policy.key_cooldown;
    let mut pool = two_keys();
    for n in 1..=15u64 {
        let (after, benched) = call_with_a_rate_limit(&policy, pool.clone(), n, &[]);
        let floor = (c.base_ms * n).min(c.max_ms);
        let most = floor + floor * u64::from(c.jitter_percent) / 100;
        assert!(
            (floor..=most).contains(&benched),
            "cooldown {n}: {benched} ms, not in {floor}..={most}"
        );
        assert_eq!(after.find(KeyId(1)).unwrap().1.cooldowns, n as u8);
        pool.merge_call(&pool.clone(), &after);
    }
    let off = Policy {
        key_cooldown: crate::KeyCooldown::off(),
        ..Policy::default()
    };
    let mut pool = two_keys();
    for n in 1..=5 {
        let (after, benched) = call_with_a_rate_limit(&off, pool.clone(), n, &[]);
        assert!(benched <= off.congestion_backoff.base_ms, "{benched}");
        assert_eq!(after.find(KeyId(1)).unwrap().1.cooldowns, 0);
        pool.merge_call(&pool.clone(), &after);
    }
}

/// A server's hint is authoritative: a hinted cooldown is exactly the hint, however many
/// hint-less ones came before, and it neither counts nor resets the run.
#[test]
fn a_hinted_cooldown_is_never_escalated() {
    let policy = Policy::default();
    let mut pool = two_keys();
    for seed in 1..=4 {
        let (after, _) = call_with_a_rate_limit(&policy, pool.clone(), seed, &[]);
        pool.merge_call(&pool.clone(), &after);
    }
    let (after, benched) =
        call_with_a_rate_limit(&policy, pool.clone(), 9, &[("retry-after", "2")]);
    assert_eq!(benched, 2_000);
    assert_eq!(after.find(KeyId(1)).unwrap().1.cooldowns, 4);
}

/// A success with the key ends the run, and so does a restore.
#[test]
fn a_success_or_a_restore_resets_the_escalation() {
    let policy = Policy::default();
    let mut pool = two_keys();
    for seed in 1..=3 {
        let (after, _) = call_with_a_rate_limit(&policy, pool.clone(), seed, &[]);
        pool.merge_call(&pool.clone(), &after);
    }
    assert_eq!(pool.find(KeyId(1)).unwrap().1.cooldowns, 3);
    // Key 1 is used again once it cooled, and succeeds.
    let mut m = RetryMachine::with_pool(policy.clone(), pool.clone(), 5).unwrap();
    m.start(Time(5_000_000)).unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [Action::Send(Send { key: KeyId(1), .. })]
    ));
    m.handle_response(Time(5_000_100), http(200, &[], "{}"))
        .unwrap();
    assert_eq!(m.pool().find(KeyId(1)).unwrap().1.cooldowns, 0);
    let (_, benched) = call_with_a_rate_limit(&policy, m.pool().clone(), 6, &[]);
    let c = policy.key_cooldown;
    assert!(benched <= c.base_ms + c.jitter_ms(c.base_ms), "{benched}");

    pool.apply(&PoolChange::Restored { key: KeyId(1) }).unwrap();
    assert_eq!(pool.find(KeyId(1)).unwrap().1.cooldowns, 0);
}

/// A 400 is the caller's mistake and ends the call, unless the provider says the request
/// may succeed as sent (`x-should-retry: true`, which the OpenAI SDKs obey): then it is
/// retried on the same key after a backoff, as a transient fault.
#[test]
fn x_should_retry_true_turns_a_400_into_a_retry() {
    const BAD: &str = r#"{"error":{"message":"Invalid value for 'temperature'.","type":"invalid_request_error","param":"temperature","code":null}}"#;
    let mut plain = machine(1);
    plain.start(Time(0)).unwrap();
    drain(&mut plain);
    plain
        .handle_response(Time(100), http(400, &[], BAD))
        .unwrap();
    let actions = drain(&mut plain);
    assert!(
        matches!(&actions[..], [Action::Abort(a)] if a.reason == AbortReason::NotRetryable),
        "{actions:?}"
    );

    let mut told = machine(1);
    told.start(Time(0)).unwrap();
    drain(&mut told);
    told.handle_response(Time(100), http(400, &[("x-should-retry", "true")], BAD))
        .unwrap();
    let actions = drain(&mut told);
    let [Action::Sleep { until, .. }] = &actions[..] else {
        panic!("{actions:?}")
    };
    assert!(*until > Time(100), "{actions:?}");
    told.handle_timeout(*until).unwrap();
    let actions = drain(&mut told);
    assert!(
        matches!(
            &actions[..],
            [Action::Send(Send {
                attempt: 2,
                key: KeyId(1),
                ..
            })]
        ),
        "{actions:?}"
    );
}

/// Sends the first request and answers it, and the one after it, with a hint-less 429;
/// returns the actions that followed the second.
fn two_hint_less_rate_limits(m: &mut RetryMachine) -> Vec<Action> {
    m.start(Time(0)).unwrap();
    assert!(matches!(
        drain(m)[..],
        [Action::Send(Send { key: KeyId(1), .. })]
    ));
    m.handle_response(Time(100), http(429, &[], RATE_LIMITED))
        .unwrap();
    let actions = drain(m);
    assert!(
        matches!(
            actions[..],
            [
                Action::Rotate { .. },
                Action::Send(Send { key: KeyId(2), .. })
            ]
        ),
        "the first hint-less rate limit benches its key: {actions:?}"
    );
    m.handle_response(Time(200), http(429, &[], RATE_LIMITED))
        .unwrap();
    drain(m)
}

/// The ejection guard (`Policy::max_ejection_percent`, 50 % by default): with one of two
/// keys cooling after a hint-less rate limit, a hint-less rate limit on the other is read
/// as a limit the keys share. The key is not benched and does not escalate; the call backs
/// off on the target and sends with the same key. With the guard off, the key is benched
/// and escalates, and the call waits for the first key to cool down.
#[test]
fn the_ejection_guard_benches_at_most_its_share_of_the_keys() {
    let mut m = machine(2);
    let actions = two_hint_less_rate_limits(&mut m);
    let [Action::Sleep { until, reason }] = actions[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(
        reason,
        SleepReason::Backoff {
            after: Reason::RateLimited
        }
    );
    let (key2, key1) = (m.pool().find(KeyId(2)).unwrap().1, m.pool().state(KeyId(1)));
    assert_eq!(key2.state, KeyState::Ready);
    assert_eq!(key2.cooldowns, 0);
    assert!(matches!(key1, KeyState::CoolingDown(_)), "{key1:?}");
    m.handle_timeout(until).unwrap();
    assert!(
        matches!(
            drain(&mut m)[..],
            [Action::Send(Send { key: KeyId(2), .. })]
        ),
        "the backoff on the target ends in a send with the same key"
    );

    let off = Policy {
        max_ejection_percent: 100,
        ..Policy::default()
    };
    let keys = vec![KeySpec::new(1, "key-1"), KeySpec::new(2, "key-2")];
    let mut m =
        RetryMachine::new(off, vec![Target::new(Provider::Openai, "gpt-4o", keys)], 42).unwrap();
    let actions = two_hint_less_rate_limits(&mut m);
    assert!(
        matches!(
            actions[..],
            [Action::Sleep {
                reason: SleepReason::AllKeysCooling,
                ..
            }]
        ),
        "{actions:?}"
    );
    let key2 = m.pool().find(KeyId(2)).unwrap().1;
    assert!(matches!(key2.state, KeyState::CoolingDown(_)), "{key2:?}");
    assert_eq!(key2.cooldowns, 1);
}

/// A limit the guard reads as shared sends the call down the chain at once when a later
/// target has a ready key; a server's hint is never second-guessed (the key is benched
/// for it, guard or not); and a key benched for its own fault (out of quota) neither counts
/// nor is limited.
#[test]
fn the_ejection_guard_falls_back_and_leaves_hints_and_own_faults_alone() {
    let keys = vec![KeySpec::new(1, "key-1"), KeySpec::new(2, "key-2")];
    let targets = vec![
        Target::new(Provider::Openai, "gpt-4o", keys),
        Target::new(
            Provider::Anthropic,
            "claude",
            vec![KeySpec::new(9, "fallback")],
        ),
    ];
    let mut m = RetryMachine::new(Policy::default(), targets.clone(), 42).unwrap();
    let actions = two_hint_less_rate_limits(&mut m);
    assert!(
        matches!(
            actions[..],
            [
                Action::Rotate { .. },
                Action::Send(Send {
                    target: 1,
                    key: KeyId(9),
                    ..
                })
            ]
        ),
        "{actions:?}"
    );
    assert_eq!(m.pool().state(KeyId(2)), KeyState::Ready);

    // A hinted 429 on the second key: benched for the hint.
    let mut m = RetryMachine::new(Policy::default(), targets.clone(), 42).unwrap();
    m.start(Time(0)).unwrap();
    drain(&mut m);
    m.handle_response(Time(100), http(429, &[], RATE_LIMITED))
        .unwrap();
    drain(&mut m);
    m.handle_response(Time(200), http(429, &[("retry-after", "3")], RATE_LIMITED))
        .unwrap();
    assert_eq!(m.pool().state(KeyId(2)), KeyState::CoolingDown(Time(3_200)));

    // The first key is out of quota, not cooling: the second's hint-less 429 benches it.
    let mut m = RetryMachine::new(Policy::default(), targets, 42).unwrap();
    m.start(Time(0)).unwrap();
    drain(&mut m);
    let quota = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#;
    m.handle_response(Time(100), http(429, &[], quota)).unwrap();
    assert!(matches!(m.pool().state(KeyId(1)), KeyState::Exhausted(_)));
    drain(&mut m);
    m.handle_response(Time(200), http(429, &[], RATE_LIMITED))
        .unwrap();
    assert!(matches!(m.pool().state(KeyId(2)), KeyState::CoolingDown(_)));
}

/// A verdict classified outside the machine leads to the steps, trace and actions the raw
/// response leads to; one made for another provider is refused and changes nothing.
#[test]
fn a_classified_response_acts_as_the_response() {
    let answers = [
        http(401, &[], UNAUTHORIZED),
        http(
            429,
            &[("retry-after", "3")],
            r#"{"error":{"message":"slow down"}}"#,
        ),
        http(500, &[], "oops"),
        http(200, &[], "{}"),
        Observation::Transport(crate::classify::TransportError::Reset),
    ];
    let run = |classified: bool| {
        let mut m = machine(2)
            .record_trace(true)
            .wall_clock_epoch(1_790_000_000_000);
        m.start(Time(0)).unwrap();
        let mut actions = drain(&mut m);
        for (i, seen) in answers.iter().enumerate() {
            if m.state().is_terminal() {
                break;
            }
            let now = Time(1_000 * (i as u64 + 1));
            if classified {
                let c = Classified::new(Provider::Openai, seen, Some(1_790_000_000_000 + now.0));
                m.handle(now, Event::Classified(&c)).unwrap();
            } else {
                m.handle_response(now, *seen).unwrap();
            }
            actions.extend(drain(&mut m));
            while let Some(at) = m
                .next_timeout()
                .filter(|_| !matches!(m.state(), State::AwaitingResponse { .. }))
            {
                m.handle_timeout(at).unwrap();
                actions.extend(drain(&mut m));
            }
        }
        (actions, m.take_trace())
    };
    let (raw, classified) = (run(false), run(true));
    assert!(raw.0.len() > 3, "{:?}", raw.0);
    assert_eq!(raw, classified);

    let mut m = machine(1);
    m.start(Time(0)).unwrap();
    drain(&mut m);
    let before = m.clone();
    let other = Classified::new(Provider::Anthropic, &http(500, &[], "oops"), None);
    assert_eq!(
        m.handle(Time(5), Event::Classified(&other)),
        Err(EventError::WrongProvider {
            classified: Provider::Anthropic,
            target: Provider::Openai
        })
    );
    assert!(before == m, "the refused event changed the machine");
}

/// A retry that waits for no time is charged only when a key takes it: when the only key was
/// benched while its request was out, the call waits for the key with the retry still in
/// hand, and sends when it is back, instead of ending as `attempts_exhausted` with the
/// retry never made. (Found by the swarm at seed 1 688 495 of `--seeds 2000000`.)
#[test]
fn a_retry_that_finds_no_key_at_once_is_not_charged() {
    let policy = Policy {
        transient_retries_per_target: 1,
        backoff: crate::Backoff {
            jitter: crate::Jitter::Full,
            base_ms: 0,
            cap_ms: 0,
        },
        ..Policy::default()
    };
    let mut m = one_key_started(policy);
    // Benched until 10 s while its request is out; then the request fails on the server.
    m.handle_pool_change(
        Time(50),
        PoolChange::MarkedBad {
            key: KeyId(1),
            until: Some(Time(10_000)),
        },
    )
    .unwrap();
    drain(&mut m);
    m.handle_response(Time(100), http(500, &[], "oops"))
        .unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(
            actions[..],
            [Action::Sleep {
                until: Time(10_000),
                ..
            }]
        ),
        "{actions:?}"
    );
    m.handle_timeout(Time(10_000)).unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(actions[..], [Action::Send(Send { attempt: 2, .. })]),
        "{actions:?}"
    );
    // That was the one retry: the next failure ends the call on the limit.
    m.handle_response(Time(10_100), http(500, &[], "oops"))
        .unwrap();
    assert_eq!(
        m.state(),
        State::Aborted {
            reason: AbortReason::AttemptsExhausted
        }
    );
}

/// A rate limit is an answer only an accepted key gets: it ends the key's run of
/// rejections, so a later rejection of the only key is a first one again and gets its one
/// retry (the brief: a rejected key is retried once when nothing else could be used).
#[test]
fn a_rate_limit_between_two_rejections_gives_the_second_its_own_retry() {
    let mut m = machine(1);
    m.start(Time(0)).unwrap();
    drain(&mut m);
    // Rejected, retried at once on a fresh connection.
    m.handle_response(Time(100), http(401, &[], UNAUTHORIZED))
        .unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [Action::Send(Send {
            attempt: 2,
            fresh_connection: true,
            ..
        })]
    ));
    // The retry is rate limited for 20 s: the key is accepted after all.
    m.handle_response(Time(200), http(429, &[("retry-after", "20")], RATE_LIMITED))
        .unwrap();
    let [Action::Sleep { until, .. }] = drain(&mut m)[..] else {
        panic!("expected a sleep for the rate limit")
    };
    m.handle_timeout(until).unwrap();
    assert!(matches!(
        drain(&mut m)[..],
        [Action::Send(Send { attempt: 3, .. })]
    ));
    // Rejected again: a first rejection after the rate limit, so one more retry, not an
    // abort.
    m.handle_response(Time(until.0 + 100), http(401, &[], UNAUTHORIZED))
        .unwrap();
    let actions = drain(&mut m);
    assert!(
        matches!(
            actions[..],
            [Action::Send(Send {
                attempt: 4,
                fresh_connection: true,
                ..
            })]
        ),
        "{actions:?}"
    );
    // And a rejection of that retry is the second in a row: the call ends.
    m.handle_response(Time(until.0 + 200), http(401, &[], UNAUTHORIZED))
        .unwrap();
    assert!(matches!(
        &drain(&mut m)[..],
        [Action::Abort(a)] if a.reason == AbortReason::AuthPermanent
    ));
}

/// An abort about keys names the target whose keys answered. Here the only key of the
/// first target is rejected and the call moves to the fallback, whose breaker is open: it
/// waits there, and the fallback's only key is removed meanwhile. The call ends
/// `auth_permanent`, and the message names the first target's provider and its key, never
/// the fallback's provider as the one that rejected it.
#[test]
fn a_rejection_is_told_of_the_target_that_rejected_after_a_move_to_a_fallback() {
    use crate::overload::BreakerState;
    use crate::{BreakerPolicy, BudgetPolicy, OverloadPolicy};
    let targets = vec![
        Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "main")]),
        Target::new(
            Provider::Anthropic,
            "claude-x",
            vec![KeySpec::new(2, "backup")],
        ),
    ];
    let policy = Policy {
        overload: OverloadPolicy {
            budget: BudgetPolicy::unlimited(),
            breaker: BreakerPolicy {
                enabled: true,
                ..BreakerPolicy::default()
            },
        },
        ..Policy::default()
    };
    let mut m = RetryMachine::new(policy, targets, 7).unwrap();
    let mut overload = m.overload().clone();
    overload.breakers[1].state = BreakerState::Open { until: Time(8_000) };
    m.sync_overload(&overload);
    m.start(Time(0)).unwrap();
    let mut now = Time(0);
    let mut actions = drain(&mut m);
    // Every send of the first key is rejected, until the call waits for the fallback.
    while let Some(Action::Send { .. }) = actions.last() {
        now = Time(now.0 + 100);
        m.handle_response(now, http(401, &[], UNAUTHORIZED))
            .unwrap();
        actions = drain(&mut m);
    }
    let Some(&Action::Sleep { until, .. }) = actions.last() else {
        panic!("{actions:?}");
    };
    // A wait for the breaker is not a wait for keys: the removal changes nothing until the
    // wait ends.
    m.handle_pool_change(Time(now.0 + 100), PoolChange::Removed { key: KeyId(2) })
        .unwrap();
    assert_eq!(drain(&mut m), []);
    m.handle_timeout(until).unwrap();
    let actions = drain(&mut m);
    let Some(Action::Abort(abort)) = actions.last() else {
        panic!("{actions:?}");
    };
    assert_eq!(abort.reason, AbortReason::AuthPermanent, "{abort:?}");
    assert!(
        abort
            .message
            .starts_with("openai rejected API key \"main\""),
        "{}",
        abort.message
    );
    assert!(!abort.message.contains("anthropic"), "{}", abort.message);
}
