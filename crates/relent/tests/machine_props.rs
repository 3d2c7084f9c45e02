//! Random event sequences straight into the machine, including events that do not fit the
//! state, time that goes backwards, spurious timers and pool changes at odd moments. The
//! machine must never panic, must leave itself unchanged when it refuses an event, and the
//! actions it emits must respect the brief's invariants 2, 3, 4, 5, 6, 7, 8, 9 and 10.

use proptest::prelude::*;
use relent::classify::redact::contains_secret;
use relent::{
    Action, Event, HttpResponse, KeyId, KeySpec, KeyState, Observation, Policy, PoolChange,
    Provider, Reason, RetryMachine, SleepReason, State, Target, Time, TransportError,
};

/// Canned responses, each with the reason it must classify as.
const RESPONSES: &[(u16, &str, &str, Reason)] = &[
    (200, "", r#"{"choices":[]}"#, Reason::Success),
    (
        401,
        "",
        r#"{"error":{"message":"Incorrect API key provided: sk-abc123456789","code":"invalid_api_key"}}"#,
        Reason::KeyRejected,
    ),
    (
        429,
        "",
        r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota"}}"#,
        Reason::QuotaExhausted,
    ),
    (
        429,
        "7",
        r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
        Reason::RateLimited,
    ),
    (
        429,
        "",
        r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
        Reason::RateLimited,
    ),
    (
        429,
        "400",
        r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
        Reason::RateLimited,
    ),
    (
        529,
        "",
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        Reason::Overloaded,
    ),
    (
        500,
        "",
        r#"{"error":{"message":"server error"}}"#,
        Reason::ServerError,
    ),
    (
        500,
        "2",
        r#"{"error":{"message":"server error"}}"#,
        Reason::ServerError,
    ),
    (
        403,
        "",
        r#"{"error":{"message":"Country, region, or territory not supported"}}"#,
        Reason::PermissionDenied,
    ),
    (
        400,
        "",
        r#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}"#,
        Reason::ContextOverflow,
    ),
    (
        400,
        "",
        r#"{"error":{"message":"messages is required"}}"#,
        Reason::MalformedRequest,
    ),
    (
        404,
        "",
        r#"{"error":{"message":"The model does not exist","code":"model_not_found"}}"#,
        Reason::ModelNotFound,
    ),
];

#[derive(Clone, Debug)]
enum Op {
    Respond(usize),
    Transport(TransportError),
    Timeout,
    TimeoutAtDue,
    Advance(u64),
    Backwards(u64),
    Add(usize),
    Remove(u32),
    Restore(u32),
    MarkBad(u32, Option<u64>),
    StreamEnded,
    StreamFailed,
    Cancel,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..RESPONSES.len()).prop_map(Op::Respond),
        1 => proptest::sample::select(vec![TransportError::Timeout, TransportError::Reset, TransportError::TlsCertificate, TransportError::Dns]).prop_map(Op::Transport),
        1 => Just(Op::Timeout),
        4 => Just(Op::TimeoutAtDue),
        2 => (0u64..120_000).prop_map(Op::Advance),
        1 => (0u64..10_000).prop_map(Op::Backwards),
        1 => (0usize..3).prop_map(Op::Add),
        1 => (1u32..8).prop_map(Op::Remove),
        1 => (1u32..8).prop_map(Op::Restore),
        1 => ((1u32..8), proptest::option::of(0u64..200_000)).prop_map(|(k, t)| Op::MarkBad(k, t)),
        1 => Just(Op::StreamEnded),
        1 => Just(Op::StreamFailed),
        1 => Just(Op::Cancel),
    ]
}

fn build(keys_per_target: &[u32], seed: u64) -> RetryMachine {
    let mut next = 1;
    let targets = keys_per_target
        .iter()
        .enumerate()
        .map(|(t, n)| {
            let keys = (0..*n)
                .map(|_| {
                    next += 1;
                    KeySpec::new(next - 1, format!("key-{}", next - 1))
                })
                .collect();
            Target {
                provider: Provider::Openai,
                model: format!("model-{t}"),
                context_tokens: Some(8_000 * (t as u32 + 1)),
                keys,
            }
        })
        .collect();
    RetryMachine::new(Policy::default(), targets, seed)
        .unwrap()
        .record_trace(true)
}

/// Drives the machine through `ops`, checking every action; returns the trace as JSON.
fn drive(keys: &[u32], seed: u64, ops: &[Op]) -> Result<String, TestCaseError> {
    let mut m = build(keys, seed);
    let mut now = Time(0);
    let mut added = 100;
    let mut sends_per_target = [0u32; 4];
    let mut refused_targets = [false; 4];
    let mut last_target = 0usize;
    m.start(now).unwrap();
    let policy = m.policy().clone();
    // `None` first: check the actions of `start` before any event.
    for op in std::iter::once(None).chain(ops.iter().map(Some)) {
        let keys_before: Vec<KeyState> = m.pool().all_keys().map(|(_, k)| k.state).collect();
        let before = format!("{m:?}");
        let mut reason = None;
        let result = match op {
            None => Ok(()),
            Some(op) => match op {
                Op::Respond(i) => {
                    let (status, retry_after, body, r) = RESPONSES[*i];
                    reason = Some(r);
                    let headers: Vec<(&str, &str)> = if retry_after.is_empty() {
                        vec![]
                    } else {
                        vec![("retry-after", retry_after)]
                    };
                    m.handle_response(
                        now,
                        Observation::Http(HttpResponse {
                            status,
                            headers: &headers,
                            body: body.as_bytes(),
                        }),
                    )
                }
                Op::Transport(kind) => m.handle_response(now, Observation::Transport(*kind)),
                Op::Timeout => m.handle_timeout(now),
                Op::TimeoutAtDue => {
                    if let Some(t) = m.next_timeout() {
                        now = now.max(t);
                    }
                    m.handle_timeout(now)
                }
                Op::Advance(ms) => {
                    now = Time(now.0 + ms);
                    Ok(())
                }
                Op::Backwards(ms) => {
                    now = Time(now.0.saturating_sub(*ms));
                    Ok(())
                }
                Op::Add(t) => {
                    added += 1;
                    m.handle_pool_change(
                        now,
                        PoolChange::Added {
                            target: *t,
                            key: KeySpec::new(added, format!("added-{added}")),
                        },
                    )
                }
                Op::Remove(k) => m.handle_pool_change(now, PoolChange::Removed { key: KeyId(*k) }),
                Op::Restore(k) => {
                    m.handle_pool_change(now, PoolChange::Restored { key: KeyId(*k) })
                }
                Op::MarkBad(k, until) => m.handle_pool_change(
                    now,
                    PoolChange::MarkedBad {
                        key: KeyId(*k),
                        until: until.map(Time),
                    },
                ),
                Op::StreamEnded => m.handle(now, Event::StreamEnded),
                Op::StreamFailed => m.handle(
                    now,
                    Event::StreamFailed(Observation::Transport(TransportError::Reset)),
                ),
                Op::Cancel => m.cancel(now),
            },
        };
        if result.is_err() {
            prop_assert_eq!(
                &before,
                &format!("{m:?}"),
                "a refused event changed the machine"
            );
            continue;
        }
        // Invariant 10: overload and server errors leave every key as it was.
        if matches!(reason, Some(Reason::Overloaded | Reason::ServerError)) {
            let keys_after: Vec<KeyState> = m.pool().all_keys().map(|(_, k)| k.state).collect();
            prop_assert_eq!(&keys_before[..], &keys_after[..keys_before.len()]);
        }
        if matches!(
            reason,
            Some(Reason::ContextOverflow | Reason::MalformedRequest | Reason::ModelNotFound)
        ) && matches!(op, Some(Op::Respond(_)))
        {
            refused_targets[last_target] = true;
        }
        let mom = m.trace().unwrap().last().map(|e| e.at).unwrap_or(now);
        while let Some(action) = m.poll_action() {
            match &action {
                Action::Send(s) => {
                    // Invariant 2: the key is usable now.
                    prop_assert!(
                        m.pool().state(s.key).usable_at(mom),
                        "send with {} in {:?}",
                        s.key,
                        m.pool().state(s.key)
                    );
                    // Invariant 3: limits.
                    sends_per_target[s.target] += 1;
                    prop_assert!(s.attempt <= policy.max_attempts);
                    prop_assert!(sends_per_target[s.target] <= policy.max_attempts_per_target);
                    // Invariant 5: nothing resent to a target that refused the request.
                    prop_assert!(
                        !refused_targets[s.target],
                        "resent to target {} after a non-retryable answer",
                        s.target
                    );
                    last_target = s.target;
                }
                Action::Sleep { until, reason: why } => {
                    // Invariant 4.
                    prop_assert!(*until <= m.deadline());
                    // Invariant 9: no sleep for a rate limit while a key of the target is ready.
                    let after_rate_limit = matches!(
                        why,
                        SleepReason::AllKeysCooling
                            | SleepReason::Backoff {
                                after: Reason::RateLimited
                            }
                            | SleepReason::ServerHint {
                                after: Reason::RateLimited,
                                ..
                            }
                    );
                    if after_rate_limit {
                        let ready = m.pool().keys(last_target).iter().any(|k| {
                            k.state.usable_at(mom) && !m.excluded_keys().contains(&k.spec.id)
                        });
                        prop_assert!(
                            !ready,
                            "slept after a rate limit while target {} had a ready key",
                            last_target
                        );
                    }
                }
                Action::Abort(abort) => {
                    // Invariant 8.
                    prop_assert!(!abort.message.is_empty());
                    prop_assert!(!contains_secret(&abort.message), "{}", abort.message);
                }
                Action::Rotate { .. } | Action::Succeeded { .. } => {}
            }
        }
    }
    // Invariant 6: bounded — the machine never sends more than its limit however long the
    // sequence, and it always either waits on a timer/response or has ended.
    prop_assert!(m.attempts() <= policy.max_attempts);
    match m.state() {
        State::AwaitingResponse { .. } | State::Sleeping { .. } => {
            prop_assert!(m.next_timeout().is_some())
        }
        _ => {}
    }
    Ok(serde_json::to_string(m.trace().unwrap()).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_respect_the_invariants(
        keys in proptest::collection::vec(1u32..4, 1..4),
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        let first = drive(&keys, seed, &ops)?;
        // Invariant 7: the same seed and events give a byte-identical trace.
        let second = drive(&keys, seed, &ops)?;
        prop_assert_eq!(first, second);
    }
}
