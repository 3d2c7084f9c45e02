//! Fuzzing entry points, shared by the cargo-fuzz targets in `fuzz/` and by the ordinary
//! tests that replay the committed corpora (`sim/tests/fuzz_corpora.rs`), so CI needs no
//! nightly toolchain and no cargo-fuzz.
//!
//! Each entry takes raw bytes, decodes them with `arbitrary`, runs relent, and panics on any
//! broken property; a panic is what the fuzzer reports as a crash.

use crate::respond::WALL_EPOCH_UNIX_MS;
use crate::runner::{run, RunOptions};
use crate::schedule::{Fault, FaultKind, FaultScope, Schedule, TimedChange};
use arbitrary::{Arbitrary, Unstructured};
use relent::classify::hints::{self, MAX_HINT_MS};
use relent::classify::redact::{contains_secret, MAX_MESSAGE_CHARS};
use relent::classify::{
    classify, HttpResponse, Observation, Provider, Reason, TransportError, BODY_SCAN_LIMIT,
};
use relent::{
    Action, Event, KeyId, KeySpec, Policy, PoolChange, RetryMachine, SleepReason, State, Target,
    Time,
};

// ---------------------------------------------------------------- classify

/// Arbitrary provider hint, status, headers and body into the classifier.
pub fn fuzz_classify(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let provider = Provider::ALL[u.choose_index(Provider::ALL.len()).unwrap_or(0)];
    let status: u16 = u.arbitrary().unwrap_or(500);
    let headers: Vec<(String, String)> = u.arbitrary().unwrap_or_default();
    let now: Option<u64> = u.arbitrary().unwrap_or(None);
    let body = u.take_rest();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let c = classify(
        provider,
        &Observation::Http(HttpResponse {
            status,
            headers: &pairs,
            body,
        }),
        now,
    );
    if let Some(w) = c.wait {
        assert!(
            w.after_ms <= MAX_HINT_MS,
            "wait {} beyond the clamp",
            w.after_ms
        );
    }
    assert!(
        c.message.chars().count() <= MAX_MESSAGE_CHARS + 1,
        "message too long"
    );
    assert!(
        !contains_secret(&c.message),
        "secret in message: {}",
        c.message
    );
    assert_eq!(c.scope, c.reason.scope());
    // The body-scan bound: what lies past it cannot matter.
    if body.len() > BODY_SCAN_LIMIT {
        let bounded = classify(
            provider,
            &Observation::Http(HttpResponse {
                status,
                headers: &pairs,
                body: &body[..BODY_SCAN_LIMIT],
            }),
            now,
        );
        assert_eq!(
            c, bounded,
            "bytes past the scan bound changed the classification"
        );
    }
}

// ---------------------------------------------------------------- hints

/// The latest Unix time any absolute parser may return: the end of year 9999.
const LATEST_UNIX_MS: u64 = 253_402_300_800_000;

/// Every wait-hint parser on an arbitrary string, and the same string as each header.
pub fn fuzz_hints(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    for parsed in [hints::http_date_unix_ms(text), hints::rfc3339_unix_ms(text)]
        .into_iter()
        .flatten()
    {
        assert!(
            parsed <= LATEST_UNIX_MS,
            "absolute time {parsed} beyond year 9999"
        );
    }
    // Relative parsers saturate; the classifier clamps. Check the parsers agree with
    // themselves, and that every header path ends within the clamp.
    let _ = (
        hints::retry_after_ms(text),
        hints::retry_after_seconds(text),
        hints::go_duration_ms(text),
        hints::proto_duration_ms(text),
        hints::message_wait_ms(text),
    );
    if let Ok(ms) = hints::grpc_pushback_ms(text) {
        assert!(ms <= i32::MAX as u64);
    }
    for name in [
        "retry-after-ms",
        "retry-after",
        "x-ratelimit-reset-requests",
        "anthropic-ratelimit-requests-reset",
        "grpc-retry-pushback-ms",
        "x-should-retry",
    ] {
        let headers = [
            (name, text),
            ("date", "Wed, 21 Oct 2026 07:28:00 GMT"),
            ("x-ratelimit-remaining-requests", "0"),
            ("anthropic-ratelimit-requests-remaining", "0"),
        ];
        let c = classify(
            Provider::Openai,
            &Observation::Http(HttpResponse {
                status: 429,
                headers: &headers,
                body: b"",
            }),
            Some(WALL_EPOCH_UNIX_MS),
        );
        if let Some(w) = c.wait {
            assert!(w.after_ms <= MAX_HINT_MS);
            if w.clamped {
                assert_eq!(w.after_ms, MAX_HINT_MS, "clamped flag without clamping");
            }
        }
    }
    let body = format!("{{\"error\":{{\"message\":{},\"details\":[{{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":{}}}]}}}}", serde_json::Value::String(text.to_string()), serde_json::Value::String(text.to_string()));
    let c = classify(
        Provider::Gemini,
        &Observation::Http(HttpResponse {
            status: 429,
            headers: &[],
            body: body.as_bytes(),
        }),
        None,
    );
    assert!(c.wait.is_none_or(|w| w.after_ms <= MAX_HINT_MS));
}

// ---------------------------------------------------------------- machine

/// One input to the machine, including ones that do not fit its state.
#[derive(Arbitrary, Clone, Debug)]
pub enum Op {
    /// A canned response (index into [`RESPONSES`]).
    Respond(u8),
    /// A transport error.
    Transport(u8),
    /// A timer, now.
    Timeout,
    /// A timer at the time the machine asked for.
    TimeoutAtDue,
    /// Time passes.
    Advance(u32),
    /// Time goes backwards.
    Backwards(u16),
    /// A key is added to a target.
    Add(u8),
    /// A key is removed.
    Remove(u8),
    /// A key is restored.
    Restore(u8),
    /// A key is marked bad, for a while or for good.
    MarkBad(u8, Option<u32>),
    /// A stream ends.
    StreamEnded,
    /// A stream fails.
    StreamFailed,
    /// The caller cancels.
    Cancel,
}

/// Canned responses, each with the reason it must classify as.
pub const RESPONSES: &[(u16, &str, &str, Reason)] = &[
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

const TRANSPORT: [TransportError; 4] = [
    TransportError::Timeout,
    TransportError::Reset,
    TransportError::TlsCertificate,
    TransportError::Dns,
];

/// Arbitrary bytes as a pool shape, a seed and a sequence of operations.
pub fn fuzz_machine(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let n_targets = u.int_in_range(1..=3u32).unwrap_or(1);
    let keys: Vec<u32> = (0..n_targets)
        .map(|_| u.int_in_range(1..=3u32).unwrap_or(1))
        .collect();
    let seed: u64 = u.arbitrary().unwrap_or(0);
    let ops: Vec<Op> = u.arbitrary().unwrap_or_default();
    if let Err(broken) = drive_machine(&keys, seed, &ops) {
        panic!("{broken}\nkeys {keys:?} seed {seed} ops {ops:?}");
    }
}

fn build(keys_per_target: &[u32], seed: u64) -> RetryMachine {
    let mut next = 0;
    let targets = keys_per_target
        .iter()
        .enumerate()
        .map(|(t, n)| {
            let keys = (0..*n)
                .map(|_| {
                    next += 1;
                    KeySpec::new(next, format!("key-{next}"))
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
        .expect("a valid pool")
        .record_trace(true)
}

/// Drives a fresh machine through `ops`, checking the brief's invariants 2, 3, 4, 5, 6, 8, 9
/// and 10 on every action, and that a refused event changes nothing. Returns the trace as
/// JSON (for determinism checks) or what broke.
pub fn drive_machine(keys: &[u32], seed: u64, ops: &[Op]) -> Result<String, String> {
    let mut m = build(keys, seed);
    let policy = m.policy().clone();
    let mut now = Time(0);
    let mut added = 100;
    let mut sends_per_target = vec![0u32; keys.len()];
    let mut refused_targets = vec![false; keys.len()];
    let mut last_target = 0usize;
    m.start(now).map_err(|e| format!("start refused: {e}"))?;
    let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
    // `None` first: check the actions of `start` before any event.
    for op in std::iter::once(None).chain(ops.iter().map(Some)) {
        let keys_before: Vec<_> = m.pool().all_keys().map(|(_, k)| k.state).collect();
        let before = m.clone();
        let mut reason = None;
        let result = match op {
            None => Ok(()),
            Some(Op::Respond(i)) => {
                let (status, retry_after, body, r) = RESPONSES[*i as usize % RESPONSES.len()];
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
            Some(Op::Transport(k)) => m.handle_response(
                now,
                Observation::Transport(TRANSPORT[*k as usize % TRANSPORT.len()]),
            ),
            Some(Op::Timeout) => m.handle_timeout(now),
            Some(Op::TimeoutAtDue) => {
                if let Some(t) = m.next_timeout() {
                    now = now.max(t);
                }
                m.handle_timeout(now)
            }
            Some(Op::Advance(ms)) => {
                now = Time(now.0 + u64::from(*ms % 200_000));
                Ok(())
            }
            Some(Op::Backwards(ms)) => {
                now = Time(now.0.saturating_sub(u64::from(*ms)));
                Ok(())
            }
            Some(Op::Add(t)) => {
                added += 1;
                m.handle_pool_change(
                    now,
                    PoolChange::Added {
                        target: *t as usize % (keys.len() + 1),
                        key: KeySpec::new(added, format!("added-{added}")),
                    },
                )
            }
            Some(Op::Remove(k)) => m.handle_pool_change(
                now,
                PoolChange::Removed {
                    key: KeyId(u32::from(*k % 12)),
                },
            ),
            Some(Op::Restore(k)) => m.handle_pool_change(
                now,
                PoolChange::Restored {
                    key: KeyId(u32::from(*k % 12)),
                },
            ),
            Some(Op::MarkBad(k, until)) => m.handle_pool_change(
                now,
                PoolChange::MarkedBad {
                    key: KeyId(u32::from(*k % 12)),
                    until: until.map(|t| Time(u64::from(t % 300_000))),
                },
            ),
            Some(Op::StreamEnded) => m.handle(now, Event::StreamEnded),
            Some(Op::StreamFailed) => m.handle(
                now,
                Event::StreamFailed(Observation::Transport(TransportError::Reset)),
            ),
            Some(Op::Cancel) => m.cancel(now),
        };
        if result.is_err() {
            check(
                before == m,
                format!("the refused event {op:?} changed the machine"),
            )?;
            continue;
        }
        // Invariant 10: overload and server errors leave every key as it was.
        if matches!(reason, Some(Reason::Overloaded | Reason::ServerError)) {
            let keys_after: Vec<_> = m.pool().all_keys().map(|(_, k)| k.state).collect();
            check(
                keys_before[..] == keys_after[..keys_before.len()],
                format!("{reason:?} changed key states"),
            )?;
        }
        if matches!(
            reason,
            Some(Reason::ContextOverflow | Reason::MalformedRequest | Reason::ModelNotFound)
        ) {
            refused_targets[last_target] = true;
        }
        let at = m.trace().and_then(|t| t.last()).map_or(now, |e| e.at);
        while let Some(action) = m.poll_action() {
            match &action {
                Action::Send(s) => {
                    let state = m.pool().state(s.key);
                    check(
                        state.usable_at(at) && !m.excluded_keys().contains(&s.key),
                        format!("invariant 2: send with {} in {state:?}", s.key),
                    )?;
                    sends_per_target[s.target] += 1;
                    check(
                        s.attempt <= policy.max_attempts
                            && sends_per_target[s.target] <= policy.max_attempts_per_target,
                        "invariant 3: attempt limits".into(),
                    )?;
                    check(
                        !refused_targets[s.target],
                        format!(
                            "invariant 5: resent to target {} after a non-retryable answer",
                            s.target
                        ),
                    )?;
                    last_target = s.target;
                }
                Action::Sleep { until, reason: why } => {
                    check(
                        *until <= m.deadline(),
                        format!("invariant 4: sleep until {until} past the deadline"),
                    )?;
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
                            k.state.usable_at(at) && !m.excluded_keys().contains(&k.spec.id)
                        });
                        check(!ready, format!("invariant 9: slept after a rate limit while target {last_target} had a ready key"))?;
                    }
                }
                Action::Abort(abort) => {
                    check(
                        !abort.message.is_empty(),
                        "invariant 8: abort without a message".into(),
                    )?;
                    check(
                        !contains_secret(&abort.message),
                        format!("invariant 8: secret in {}", abort.message),
                    )?;
                }
                Action::Rotate { .. } | Action::Succeeded { .. } => {}
            }
        }
    }
    // Invariant 6: bounded, and a machine that is not finished is waiting for something.
    check(
        m.attempts() <= policy.max_attempts,
        "invariant 6: attempts beyond the limit".into(),
    )?;
    if matches!(
        m.state(),
        State::AwaitingResponse { .. } | State::Sleeping { .. }
    ) {
        check(
            m.next_timeout().is_some(),
            "invariant 6: waiting without a timer".into(),
        )?;
    }
    serde_json::to_string(m.trace().unwrap_or(&[])).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- world

/// A compact, arbitrary description of a world, mapped onto a [`Schedule`].
#[derive(Arbitrary, Debug)]
struct WorldSpec {
    seed: u64,
    targets: Vec<(u8, u8, Option<u16>)>,
    faults: Vec<FaultSpec>,
    changes: Vec<(u32, u8, u8, Option<u32>)>,
    cancel_at: Option<u32>,
    heal_at: Option<u32>,
    latency: u16,
    deadline: Option<u32>,
}

/// One fault: kind, key- or target-scoped, which one, start, length, first-sends budget, and
/// probability in percent.
#[derive(Arbitrary, Debug)]
struct FaultSpec(u8, bool, u8, u32, Option<u32>, Option<u8>, u8);

fn world_from(spec: WorldSpec) -> Schedule {
    let mut next_key = 0u32;
    let mut targets: Vec<Target> = spec
        .targets
        .iter()
        .take(3)
        .enumerate()
        .map(|(t, (p, n, ctx))| {
            let keys = (0..(1 + n % 4))
                .map(|_| {
                    next_key += 1;
                    KeySpec::new(next_key, format!("t{t}-k{next_key}"))
                })
                .collect();
            Target {
                provider: crate::generate::PROVIDERS
                    [*p as usize % crate::generate::PROVIDERS.len()],
                model: format!("m{t}"),
                context_tokens: ctx.map(|c| u32::from(c) * 16),
                keys,
            }
        })
        .collect();
    if targets.is_empty() {
        next_key = 1;
        targets.push(Target::new(
            Provider::Openai,
            "m0",
            vec![KeySpec::new(1, "only")],
        ));
    }
    let kinds: Vec<FaultKind> = FaultKind::ALL
        .into_iter()
        .chain([FaultKind::Unrecognised])
        .collect();
    let faults = spec
        .faults
        .iter()
        .take(12)
        .map(
            |FaultSpec(kind, key_scoped, which, from, len, first, p)| Fault {
                scope: if *key_scoped {
                    FaultScope::Key(KeyId(1 + u32::from(*which) % next_key))
                } else {
                    FaultScope::Target(*which as usize % targets.len())
                },
                from_ms: u64::from(*from % 200_000),
                until_ms: len.map(|l| u64::from(*from % 200_000) + u64::from(l % 200_000)),
                first_sends: first.map(|f| u32::from(f % 5)),
                probability: f64::from(*p % 101) / 100.0,
                kind: kinds[*kind as usize % kinds.len()],
            },
        )
        .collect();
    let mut added = 1000;
    let pool_changes = spec
        .changes
        .iter()
        .take(6)
        .map(|(at, what, which, until)| {
            let key = KeyId(1 + u32::from(*which) % next_key);
            let change = match what % 4 {
                0 => {
                    added += 1;
                    PoolChange::Added {
                        target: *which as usize % targets.len(),
                        key: KeySpec::new(added, format!("added-{added}")),
                    }
                }
                1 => PoolChange::Removed { key },
                2 => PoolChange::Restored { key },
                _ => PoolChange::MarkedBad {
                    key,
                    until: until.map(|u| Time(u64::from(u % 300_000))),
                },
            };
            TimedChange {
                at_ms: u64::from(*at % 200_000),
                change,
            }
        })
        .collect();
    let mut policy = Policy::default();
    if let Some(d) = spec.deadline {
        policy.deadline_ms = 1 + u64::from(d % 400_000);
    }
    Schedule {
        name: None,
        seed: spec.seed,
        policy,
        targets,
        faults,
        pool_changes,
        cancel_at_ms: spec.cancel_at.map(|c| u64::from(c % 300_000)),
        latency_ms: u64::from(spec.latency % 5_000),
        heal_at_ms: spec.heal_at.map(|h| u64::from(h % 300_000)),
    }
}

/// An arbitrary fault world through the simulator's runner with every invariant check on.
pub fn fuzz_world(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(spec) = WorldSpec::arbitrary(&mut u) else {
        return;
    };
    let schedule = world_from(spec);
    let report = run(&schedule, RunOptions::default());
    if !report.violations.is_empty() {
        panic!(
            "violations {:?}\nschedule {}",
            report.violations,
            serde_json::to_string(&schedule).unwrap_or_default()
        );
    }
}
