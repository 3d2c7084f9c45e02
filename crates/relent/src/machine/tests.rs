//! Unit tests of the machine's decisions, driven by hand. Scenario snapshots live in
//! `sim/tests/scenarios.rs`; invariant properties in `tests/properties.rs`.

use super::*;
use crate::classify::{HttpResponse, Observation, Provider};
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
    let before = format!("{m:?}");
    assert!(matches!(
        m.handle(Time(5), Event::StreamEnded),
        Err(EventError::Unexpected { .. })
    ));
    assert!(matches!(
        m.handle_pool_change(Time(5), PoolChange::Removed { key: KeyId(9) }),
        Err(EventError::Pool(_))
    ));
    assert_eq!(before, format!("{m:?}"));
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
