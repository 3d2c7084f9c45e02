//! The built-in scenarios, each a small world that shows one behaviour of the machine (see
//! `relent scenario --list`). Each run is checked against the invariant catalog, its outcome
//! is asserted, and its whole trace is pinned by an insta snapshot, so any change in a
//! decision shows up as a reviewed diff.

use relent::{
    AbortReason, Action, Event, EventError, HttpResponse, KeySpec, Observation, Policy, Provider,
    RetryMachine, Target, Time,
};
use relent_sim::{run, scenarios, Outcome, RunOptions};

fn outcome_of(name: &str) -> relent_sim::RunReport {
    let scenario = scenarios::find(name).unwrap_or_else(|| panic!("no scenario {name}"));
    let report = run(
        &scenario.schedule,
        RunOptions {
            keep_trace: true,
            deep_secret_scan: true,
            raw_responses: true,
        },
    );
    assert!(
        report.violations.is_empty(),
        "{name}: {:?}",
        report.violations
    );
    insta::assert_yaml_snapshot!(name, report);
    report
}

#[test]
fn single_key_401_twice() {
    let r = outcome_of("single-key-401-twice");
    assert_eq!(r.outcome, Outcome::Aborted(AbortReason::AuthPermanent));
    assert_eq!(r.attempts, 2);
    assert!(!r
        .trace
        .iter()
        .flat_map(|e| &e.actions)
        .any(|a| matches!(a, Action::Sleep { .. })));
}

#[test]
fn single_key_401_then_success() {
    let r = outcome_of("single-key-401-then-success");
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert_eq!(r.attempts, 2);
}

#[test]
fn three_keys_first_revoked() {
    let r = outcome_of("three-keys-first-revoked");
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert_eq!(r.sends_per_key.get("key-1"), Some(&1));
}

#[test]
fn rate_limit_two_keys() {
    let r = outcome_of("rate-limit-two-keys");
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert!(r.virtual_elapsed_ms < 1_000, "rotated without sleeping");
}

#[test]
fn all_keys_cooling_key_added() {
    let r = outcome_of("all-keys-cooling-key-added");
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert_eq!(
        r.virtual_elapsed_ms, 5_150,
        "the added key ended the sleep at once"
    );
}

#[test]
fn overload_then_success() {
    let r = outcome_of("overload-then-success");
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert_eq!(
        r.sends_per_key.get("key-2"),
        None,
        "overload is provider-wide: no rotation"
    );
}

#[test]
fn quota_only_key() {
    let r = outcome_of("quota-only-key");
    assert_eq!(r.outcome, Outcome::Aborted(AbortReason::QuotaExhausted));
    assert_eq!(r.attempts, 1);
}

#[test]
fn context_overflow_no_fallback() {
    let r = outcome_of("context-overflow-no-fallback");
    assert_eq!(r.outcome, Outcome::Aborted(AbortReason::NotRetryable));
    assert_eq!(r.attempts, 1);
}

#[test]
fn context_overflow_fallback() {
    let r = outcome_of("context-overflow-fallback");
    assert_eq!(r.outcome, Outcome::Succeeded);
    assert_eq!(r.sends_per_key.get("gemini-1"), Some(&1));
}

#[test]
fn deadline_rate_limited() {
    let r = outcome_of("deadline-rate-limited");
    assert_eq!(r.outcome, Outcome::Aborted(AbortReason::DeadlineExceeded));
    assert_eq!(r.attempts, 1);
    let abort = r
        .trace
        .iter()
        .flat_map(|e| &e.actions)
        .find_map(|a| match a {
            Action::Abort(abort) => Some(abort.clone()),
            _ => None,
        });
    assert_eq!(abort.and_then(|a| a.retry_at), Some(Time(300_150)));
}

#[test]
fn committed_stream_fails() {
    let r = outcome_of("committed-stream-fails");
    assert_eq!(r.outcome, Outcome::Aborted(AbortReason::FailedAfterCommit));
    assert_eq!(r.attempts, 1);
}

#[test]
fn cancel_during_sleep() {
    let r = outcome_of("cancel-during-sleep");
    assert_eq!(r.outcome, Outcome::Aborted(AbortReason::Cancelled));
}

/// Issue #13 item 6: a 90 s overload no longer ends the call after about 50 s; the ladder
/// keeps probing (never more than the congestion cap apart) until the outage is over.
#[test]
fn overload_outage_spends_the_deadline() {
    let r = outcome_of("overload-outage-spends-the-deadline");
    assert!(matches!(r.outcome, Outcome::Succeeded), "{:?}", r.outcome);
    assert!(r.virtual_elapsed_ms >= 90_000 && r.virtual_elapsed_ms < 120_000);
    let cap = Policy::default().congestion_backoff.cap_ms;
    let sleeps: Vec<u64> = r
        .trace
        .iter()
        .flat_map(|e| e.actions.iter().map(move |a| (e.at, a)))
        .filter_map(|(at, a)| match a {
            Action::Sleep { until, .. } => Some(until.since(at).0),
            _ => None,
        })
        .collect();
    assert!(sleeps.len() >= 5, "{sleeps:?}");
    assert!(sleeps.iter().all(|s| *s <= cap), "{sleeps:?}");
}

/// Issue #13 item 6: after two overloads the ready fallback target is used instead of a
/// third wait.
#[test]
fn overload_falls_back_after_two() {
    let r = outcome_of("overload-falls-back-after-two");
    assert!(matches!(r.outcome, Outcome::Succeeded), "{:?}", r.outcome);
    assert_eq!(r.attempts, 3);
    assert_eq!(r.sends_per_key.get("gemini-1"), Some(&1));
}

/// Issue #13 item 6: every key of the first target cools for 30 s and the fallback is ready:
/// no 30 s sleep.
#[test]
fn cooling_keys_fall_back() {
    let r = outcome_of("cooling-keys-fall-back");
    assert!(matches!(r.outcome, Outcome::Succeeded), "{:?}", r.outcome);
    assert!(!r
        .trace
        .iter()
        .flat_map(|e| &e.actions)
        .any(|a| matches!(a, Action::Sleep { .. })));
    assert_eq!(r.sends_per_key.get("gemini-1"), Some(&1));
}

/// Issue #13 item 3: a 90 s Retry-After inside a 120 s deadline is waited out.
#[test]
fn long_retry_after_honoured() {
    let r = outcome_of("long-retry-after-honoured");
    assert!(matches!(r.outcome, Outcome::Succeeded), "{:?}", r.outcome);
    assert_eq!(r.attempts, 2);
    assert!(r.virtual_elapsed_ms >= 90_000);
}

/// Issue #13 (revocation): a revoked key is re-probed only after the policy's time, and a
/// probe that works brings it back.
#[test]
fn revoked_key_reprobed() {
    let r = outcome_of("revoked-key-reprobed");
    assert_eq!(r.outcome, Outcome::Aborted(AbortReason::AuthPermanent));
    assert!(
        matches!(r.later_outcomes[0], Outcome::Aborted(_)),
        "{:?}",
        r.later_outcomes
    );
    assert!(
        matches!(r.later_outcomes[1], Outcome::Succeeded),
        "{:?}",
        r.later_outcomes
    );
    // Two sends in the first call, none in the second, one probe in the third.
    assert_eq!(r.attempts, 3);
}

#[test]
fn every_scenario_has_a_test() {
    let names: Vec<_> = scenarios::all().iter().map(|s| s.name).collect();
    assert_eq!(
        names.len(),
        19,
        "add a test (and snapshot) for the new scenario: {names:?}"
    );
}

/// Events that do not fit the state are refused with a typed error and change nothing.
#[test]
fn out_of_order_events_are_rejected() {
    let target = Target::new(Provider::Openai, "gpt-4o", vec![KeySpec::new(1, "prod")]);
    let mut m = RetryMachine::new(Policy::default(), vec![target], 3)
        .unwrap()
        .record_trace(true);
    let before_start = m.handle_response(
        Time(0),
        Observation::Http(HttpResponse {
            status: 200,
            headers: &[],
            body: b"",
        }),
    );
    m.start(Time(0)).unwrap();
    let stream_end_while_waiting = m.handle(Time(10), Event::StreamEnded);
    let trace_len = m.trace().unwrap().len();
    m.handle_response(
        Time(20),
        Observation::Http(HttpResponse {
            status: 200,
            headers: &[],
            body: b"{}",
        }),
    )
    .unwrap();
    m.handle(Time(30), Event::StreamEnded).unwrap();
    let after_end = m.handle_timeout(Time(40));
    let errors: Vec<String> = [before_start, stream_end_while_waiting, after_end]
        .into_iter()
        .map(|r| r.unwrap_err().to_string())
        .collect();
    insta::assert_yaml_snapshot!("out-of-order-events", errors);
    assert_eq!(trace_len, 1, "a refused event leaves no trace");
    assert!(matches!(
        m.handle_timeout(Time(50)),
        Err(EventError::Finished(_))
    ));
}

#[test]
fn removed_key_ends_the_wait() {
    let r = outcome_of("removed-key-ends-the-wait");
    assert_eq!(r.outcome, Outcome::Aborted(AbortReason::NoUsableKey));
    assert_eq!(r.attempts, 1);
    // The removal comes at 5 s; the wait it cut short would have run to 30 s.
    assert_eq!(r.virtual_elapsed_ms, 5_000);
}

#[test]
fn rejected_key_at_the_attempt_limit() {
    let r = outcome_of("rejected-key-at-the-attempt-limit");
    assert_eq!(r.outcome, Outcome::Aborted(AbortReason::AuthPermanent));
    assert_eq!(r.attempts, 1);
}
